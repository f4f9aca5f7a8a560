"""Progress bars: tqdm's own on a terminal, a start and an end line in a log."""

from __future__ import annotations

import io
import re

from kwshw.progress import LOG_INTERVAL, bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(text: str) -> list[str]:
    # A redraw starts with "\r"; a log viewer shows each one as a line.
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


def test_a_log_gets_the_start_and_the_end_line():
    out = io.StringIO()
    b = bar(total=500, desc="LFBE", unit="clip", file=out)
    for _ in range(500):
        b.update()
    b.close()
    lines = _lines(out.getvalue())
    assert len(lines) == 2, lines
    assert "0/500" in lines[0] and "500/500" in lines[1]
    assert b.mininterval == LOG_INTERVAL and b.maxinterval == LOG_INTERVAL


def test_a_postfix_waits_for_the_next_redraw_in_a_log():
    out = io.StringIO()
    b = bar(range(200), desc="float", unit="epoch", file=out)
    for i in b:
        b.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)
    lines = _lines(out.getvalue())
    assert len(lines) == 2, lines
    assert "200/200" in lines[1] and "loss=0.005" in lines[1]


def test_a_terminal_keeps_tqdms_pace_and_explicit_arguments_win():
    with bar(total=3, file=_Terminal()) as b:
        assert b.mininterval == 0.1  # tqdm's default
    with bar(total=3, file=io.StringIO(), mininterval=5.0) as b:
        assert b.mininterval == 5.0


def test_a_disabled_bar_writes_nothing():
    out = io.StringIO()
    b = bar(total=10, file=out, disable=True)
    b.update(10)
    b.close()
    assert out.getvalue() == ""
