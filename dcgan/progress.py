"""Progress bars that show on a terminal and stay quiet in logs and CI."""

from __future__ import annotations

import sys

from tqdm import tqdm


def on_terminal() -> bool:
    """Whether stderr, where progress bars and logs go, is an interactive terminal."""
    return sys.stderr.isatty()


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar, disabled when stderr is not a terminal (a log file, DVC's queue, CI)."""
    return tqdm(iterable, disable=not on_terminal(), dynamic_ncols=True, **kwargs)
