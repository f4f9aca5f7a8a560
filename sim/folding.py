"""A min/max reduce with the tracker that folds its pairs, as the accelerator wires them.

:class:`~kwshw.hw.window.Window` and :class:`~kwshw.hw.history.HistoryBank` send their stored
min/max pairs out on ``fold`` and keep no ``xmin``/``xmax`` of their own: in the accelerator
the min-max tracker folds them. Their tests read the result from such a tracker.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect

from kwshw.hw.minmax import MinMax

__all__ = ["Folded"]


class Folded(Elaboratable):
    """``reduce`` (a component with a ``fold`` stream of pairs) and the
    :class:`~kwshw.hw.minmax.MinMax` ``tracker`` that folds them."""

    def __init__(self, reduce) -> None:
        self.reduce, self.tracker = reduce, MinMax(pairs=True)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.reduce, m.submodules.tracker = self.reduce, self.tracker
        connect(m, self.reduce.fold, self.tracker.pairs)
        return m
