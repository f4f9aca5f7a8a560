"""Min-max tracking: the per-frame ``XLO = min`` and ``R = max - min`` of a vector that streams
past one value at a time (:func:`kwshw.arith.frame_range`).

It watches a layer's outputs as the scaler produces them, so the next layer's range is known
the cycle after its last input was written, with no extra pass over the activation buffer.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH

__all__ = ["MinMax", "pair_layout"]


def pair_layout(width: int = ACT_WIDTH) -> data.StructLayout:
    """A stored min/max pair folded into a :class:`MinMax`, and whether it starts a vector."""
    return data.StructLayout({"min": signed(width), "max": signed(width), "first": 1})


class MinMax(wiring.Component):
    """Running minimum and maximum of a stream of signed values.

    Parameters
    ----------
    width : int
        Width of the signed values (``ACT_WIDTH`` by default).
    pairs : bool
        Add the input ``pairs``.

    Attributes
    ----------
    inp : stream, in
        ``value`` and ``first`` (the vector's first value: restart the tracking). Never stalls.
    xmin, xmax : Signal, out
        Minimum and maximum of the values since the last ``first``, including the value of the
        previous cycle.
    next_min, next_max : Signal, out
        The same including the value of this cycle (while ``inp.valid``; with ``pairs``, the
        pair taken in the cycle before): what ``xmin`` and ``xmax`` become. (The history
        bank takes ``xmin``/``xmax`` the cycle after an entry's last value instead: this
        compare feeding a block RAM's write data set the ECP5 clock.)
    range : Signal, out
        ``xmax - xmin`` (unsigned, one bit wider than the values).
    pairs : stream, in (``pairs=True`` only)
        Min/max pairs (:func:`pair_layout`) of parts of a vector, folded like values but a
        cycle later (they are registered first: they come from block RAMs, whose output is
        slow: on ECP5 its clock-to-output alone is about 6 ns). Never valid with ``inp`` nor
        in the cycle before. The accelerator's tracker reduces the stored pairs of the input
        window's frames (:class:`~kwshw.hw.window.Window`) and of a convolution's patch
        (:class:`~kwshw.hw.history.HistoryBank`) this way, which then need no comparators
        and min/max registers of their own.
    """

    def __init__(self, width: int = ACT_WIDTH, *, pairs: bool = False) -> None:
        layout = data.StructLayout({"value": signed(width), "first": 1})
        self._pairs = pairs
        super().__init__({
            "inp": In(stream.Signature(layout, always_ready=True)),
            **({"pairs": In(stream.Signature(pair_layout(width), always_ready=True))}
               if pairs else {}),
            "xmin": Out(signed(width)),
            "xmax": Out(signed(width)),
            "next_min": Out(signed(width)),
            "next_max": Out(signed(width)),
            "range": Out(unsigned(width + 1)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        lo = hi = self.inp.payload.value
        first, valid = self.inp.payload.first, self.inp.valid
        if self._pairs:
            pair, pair_valid = Signal.like(self.pairs.payload), Signal()
            m.d.sync += [pair.eq(self.pairs.payload), pair_valid.eq(self.pairs.valid)]
            lo, hi = Mux(pair_valid, pair.min, lo), Mux(pair_valid, pair.max, hi)
            first = Mux(pair_valid, pair.first, first)
            valid = valid | pair_valid
        m.d.comb += [
            self.next_min.eq(Mux(first | (lo < self.xmin), lo, self.xmin)),
            self.next_max.eq(Mux(first | (hi > self.xmax), hi, self.xmax)),
        ]
        with m.If(valid):
            m.d.sync += [self.xmin.eq(self.next_min), self.xmax.eq(self.next_max)]
        m.d.comb += self.range.eq(self.xmax - self.xmin)
        return m
