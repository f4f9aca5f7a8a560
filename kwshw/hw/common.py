"""Small helpers shared by the hardware modules: the contract's rounding on Amaranth values,
parameter checks, and the widths of a register that serves every layer.

Every width here comes from :class:`kwshw.arith.LayerWidths` (through
:class:`kwshw.quantize.LayerPlan`); nothing is re-derived by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, Value, ValueLike

from .. import arith
from ..quantize import LayerPlan

__all__ = [
    "rshift_round",
    "clamp",
    "check_lanes",
    "max_width",
    "delay",
]


def rshift_round(x: ValueLike, shift: int) -> Value:
    """:func:`kwshw.arith.rshift_round` for an Amaranth value and a constant shift.

    The result is wide enough for every value (Amaranth arithmetic never wraps), so it is
    exact as long as the register it is assigned to has the width the plan declares.
    """
    x = Value.cast(x)
    if shift > 0:
        return (x + (1 << (shift - 1))) >> shift
    if shift < 0:
        return x << -shift
    return x


def clamp(x: ValueLike, lo: int, hi: int) -> Value:
    """Saturate ``x`` to ``[lo, hi]`` (ReLU is ``lo = 0``)."""
    x = Value.cast(x)
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


def check_lanes(lanes: int) -> int:
    """Return ``lanes`` if it is a power of two >= 1, else raise ``ValueError``."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 \
            or lanes & (lanes - 1):
        raise ValueError(f"lanes must be a power of two >= 1 (1, 2, 4, 8, ...), got {lanes!r}")
    return lanes


def max_width(plans: Sequence[LayerPlan], name: str) -> int:
    """Largest width of intermediate ``name`` (a :class:`~kwshw.arith.LayerWidths` field)
    over ``plans``: the width of a register shared by all layers."""
    return max(getattr(p.widths, name) for p in plans)


def check_plans(plans: Sequence[LayerPlan]) -> int:
    """Check that ``plans`` form one network the hardware can run; return its code width."""
    if not plans:
        raise ValueError("network has no layers")
    bits = plans[0].bits
    arith.check_bits(bits)
    for k, plan in enumerate(plans):
        if plan.bits != bits:
            raise ValueError(f"layer {k} has {plan.bits}-bit codes, layer 0 {bits}-bit")
        if k and plan.n_in != plans[k - 1].n_out:
            raise ValueError(f"layer {k} has {plan.n_in} inputs, layer {k - 1} "
                             f"{plans[k - 1].n_out} outputs")
    return bits


def delay(m: Module, value: ValueLike, cycles: int, *, name: str = "dly") -> Value:
    """``value`` delayed by ``cycles`` clock cycles through a chain of registers."""
    value = Value.cast(value)
    for k in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
