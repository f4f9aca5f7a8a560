"""The accelerator's port contract, the one place its names, widths and directions are stated.

The accelerator (:class:`kwshw.hw.accelerator.Accelerator`) has these ports; the host link
(:class:`kwshw.link.gateware.HostLink`) has them flipped; the board top
(:class:`boards.top.KWSCore`) and test stand-ins connect the two through them.
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH

__all__ = ["AcceleratorSignature"]


class AcceleratorSignature(wiring.Signature):
    """Feature frames in, scores out, and a clear: the accelerator's side of the contract.

    Parameters
    ----------
    width : int
        Bits of the signed feature values and scores; :data:`kwshw.arith.ACT_WIDTH` by default
        (the int16 of the host link's wire format).

    Members
    -------
    feat : In(stream.Signature(signed(width)))
        Feature values, ``n_mels`` per frame in band order; after a frame's last value an
        inference runs.
    score : Out(stream.Signature(signed(width)))
        ``n_out`` scores per frame in class order; back-pressure is honoured.
    clear : In(1)
        One-cycle pulse: empty the window of past frames, drop any partial frame, running
        inference and unread scores.
    """

    def __init__(self, width: int = ACT_WIDTH):
        self._width = width
        super().__init__({
            "feat": In(stream.Signature(signed(width))),
            "score": Out(stream.Signature(signed(width))),
            "clear": In(1),
        })

    @property
    def width(self) -> int:
        return self._width

    def is_provided_by(self, obj) -> bool:
        """Whether ``obj`` (a component such as the accelerator, whose signature may have more
        members, like ``load``) has these ports, with these names, shapes and directions."""
        members = obj.signature.members
        return all(name in members and members[name] == member
                   for name, member in self.members.items())

    def __eq__(self, other):
        return type(other) is type(self) and other.width == self.width

    def __repr__(self) -> str:
        return f"AcceleratorSignature({self._width})"
