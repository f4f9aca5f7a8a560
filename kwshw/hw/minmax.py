"""Min-max tracking: the per-frame ``XLO = min`` and ``R = max - min`` of a vector that streams
past one value at a time (:func:`kwshw.arith.frame_range`).

It watches a layer's outputs as the scaler produces them, so the next layer's range is known
two cycles after its last input was written, with no extra pass over the activation buffer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH

__all__ = ["MinMax", "pair_layout"]


def pair_layout(width: int = ACT_WIDTH) -> data.StructLayout:
    """A stored min/max pair folded into a :class:`MinMax`, and whether it starts a vector."""
    return data.StructLayout({"min": signed(width), "max": signed(width), "first": 1})


class MinMax(wiring.Component):
    """Running minimum and maximum of a stream of signed values.

    Every value (or pair) is registered before it is compared: the comparison and the
    min/max registers' enable then start at a register beside them rather than at the far
    scaler's output through the value/pair multiplexer (that path, eight LUT levels, set
    the iCEBreaker reference's clock). A value is therefore folded the cycle after its beat.

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
        Minimum and maximum of the values since the last ``first``: a value counts from the
        second cycle after its beat (registered, then folded).
    range : Signal, out
        ``xmax - xmin`` (unsigned, one bit wider than the values).
    pairs : stream, in (``pairs=True`` only)
        Min/max pairs (:func:`pair_layout`) of parts of a vector, registered and folded like
        values. Never valid with ``inp``. They come straight from block RAMs, whose output is
        slow (on ECP5 its clock-to-output alone is about 6 ns), so only the choice between a
        pair and a value lies before the register. The accelerator's tracker reduces the
        stored pairs of the input window's frames (:class:`~kwshw.hw.window.Window`) and of a
        convolution's patch (:class:`~kwshw.hw.history.HistoryBank`) this way, which then
        need no comparators and min/max registers of their own.
    """

    #: Cycles from a value's (or pair's) beat to the first cycle ``xmin``/``xmax`` include it.
    LATENCY = 2

    def __init__(self, width: int = ACT_WIDTH, *, pairs: bool = False) -> None:
        layout = data.StructLayout({"value": signed(width), "first": 1})
        self._width, self._pairs = width, pairs
        super().__init__({
            "inp": In(stream.Signature(layout, always_ready=True)),
            **({"pairs": In(stream.Signature(pair_layout(width), always_ready=True))}
               if pairs else {}),
            "xmin": Out(signed(width)),
            "xmax": Out(signed(width)),
            "range": Out(unsigned(width + 1)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        value = self.inp.payload.value
        take = Signal(pair_layout(self._width), name="take")
        take_valid = Signal()
        m.d.sync += [take.eq(Cat(value, value, self.inp.payload.first)),
                     take_valid.eq(self.inp.valid)]
        if self._pairs:
            with m.If(self.pairs.valid):
                m.d.sync += [take.eq(self.pairs.payload), take_valid.eq(1)]
        with m.If(take_valid & (take.first | (take.min < self.xmin))):
            m.d.sync += self.xmin.eq(take.min)
        with m.If(take_valid & (take.first | (take.max > self.xmax))):
            m.d.sync += self.xmax.eq(take.max)
        m.d.comb += self.range.eq(self.xmax - self.xmin)
        return m
