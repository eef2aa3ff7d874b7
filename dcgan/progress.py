"""Progress bars that show on a terminal and stay quiet in logs and CI."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def on_terminal() -> bool:
    """Whether stderr, where progress bars and logs go, is an interactive terminal."""
    return sys.stderr.isatty()


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar, disabled when stderr is not a terminal (a log file, DVC's queue, CI)."""
    return tqdm(iterable, disable=not on_terminal(), dynamic_ncols=True, **kwargs)


class LogLines:
    """Paces progress lines for a log: one when `interval` seconds have passed since the last.

    None on a terminal, where the progress bar shows the same.
    """

    def __init__(self, interval: float):
        self.interval, self.quiet, self.last = interval, not on_terminal(), time.perf_counter()

    def due(self, now: float, force: bool = False) -> bool:
        """Whether a line is due at `now` (time.perf_counter); force: due in a log regardless."""
        if not self.quiet or not (force or now - self.last > self.interval):
            return False
        self.last = now
        return True
