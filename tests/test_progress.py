"""Progress lines in a log come at most once an interval, and never on a terminal."""

import pytest

from dcgan import progress


@pytest.mark.parametrize("terminal", [False, True])
def test_log_lines_come_once_an_interval_and_only_in_a_log(monkeypatch, terminal):
    monkeypatch.setattr(progress, "on_terminal", lambda: terminal)
    lines = progress.LogLines(10.0)
    start = lines.last
    due = [lines.due(start + 5), lines.due(start + 11), lines.due(start + 12),
           lines.due(start + 13, force=True), lines.due(start + 22), lines.due(start + 24)]
    assert due == ([False] * 6 if terminal else [False, True, False, True, False, True])
