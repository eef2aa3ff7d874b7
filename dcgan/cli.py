"""What every command-line entry point shares: logging set-up and one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Sequence

from dcgan.errors import UserError


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ start-up chatter; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(main: Callable[[Sequence[str] | None], int | None],
        argv: Sequence[str] | None = None) -> int:
    """Runs a command's `main`, turning a UserError into one line on stderr and exit code 1.

    Returns `main`'s exit code when it returns one, else 0.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        code = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; outputs written so far are complete, the rest are not "
              "written", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
