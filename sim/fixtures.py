"""Small Amaranth components that exercise the testbench infrastructure itself.

They are not part of the accelerator: the stream drivers, monitors and runner helpers of
:mod:`sim` are tested on them, independently of the design under test.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamPipe"]


class StreamPipe(wiring.Component):
    """``o = 3 * i + 1`` through a small FIFO, refusing input every ``busy_every`` values for
    ``busy_for`` cycles (back-pressure towards the source), plus a valid-only ``mon`` port that
    pulses with every accepted input (like the accelerator's trace port).
    """

    def __init__(self, *, depth: int = 4, busy_every: int = 5, busy_for: int = 3):
        self._depth, self._every, self._for = depth, busy_every, busy_for
        super().__init__({
            "i": In(stream.Signature(signed(16))),
            "o": Out(stream.Signature(signed(16))),
            "mon_valid": Out(1),
            "mon_value": Out(signed(16)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=16, depth=self._depth)
        count = Signal(range(self._every + 1))
        busy = Signal(range(self._for + 1))
        accept = Signal()
        m.d.comb += [
            accept.eq((busy == 0) & q.w_rdy),
            self.i.ready.eq(accept),
            q.w_en.eq(self.i.valid & accept),
            q.w_data.eq(self.i.payload * 3 + 1),
            self.o.valid.eq(q.r_rdy),
            self.o.payload.eq(q.r_data),
            q.r_en.eq(self.o.ready),
        ]
        with m.If(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        with m.If(self.i.valid & accept):
            m.d.sync += [self.mon_valid.eq(1), self.mon_value.eq(self.i.payload)]
            with m.If(count == self._every - 1):
                m.d.sync += [count.eq(0), busy.eq(self._for)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.Else():
            m.d.sync += self.mon_valid.eq(0)
        return m
