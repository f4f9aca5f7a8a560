"""Small helpers shared by the hardware modules: the contract's rounding on Amaranth values,
parameter checks, and the widths of a register that serves every layer.

Every width here comes from :class:`kwshw.arith.LayerWidths` (through
:class:`kwshw.quantize.LayerPlan`); nothing is re-derived by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from amaranth.hdl import C, Module, Mux, Signal, Value, ValueLike, signed
from amaranth.lib import memory

from .. import arith
from ..quantize import LayerPlan

__all__ = [
    "DISJOINT_PORTS",
    "ICE40_DSP_BITS",
    "STRIP_BITS",
    "dsp_product",
    "RegisteredRead",
    "disjoint_read_port",
    "rshift_round",
    "select_rshift_round",
    "clamp",
    "saturate",
    "check_lanes",
    "check_plans",
    "conv_layers",
    "max_width",
    "delay",
]


#: ``attrs`` of a :class:`~amaranth.lib.memory.Memory` read through
#: :func:`disjoint_read_port`: Yosys may then leave a read of the word being written
#: undefined.
DISJOINT_PORTS = {"no_rw_check": 1}


@dataclasses.dataclass(frozen=True)
class RegisteredRead:
    """A read port with one cycle of latency: ``data`` is the word at the ``addr`` of the
    previous cycle in which ``en`` was high (``en`` is 1 unless driven)."""

    addr: Value
    en: Signal
    data: Value


def disjoint_read_port(m: Module, mem: memory.Memory, name: str) -> RegisteredRead:
    """A read port of ``mem`` with the latency of ``mem.read_port()``, for a user whose reads
    never address the word written in the same cycle (each user says why). ``mem`` needs
    :data:`DISJOINT_PORTS` in its ``attrs``.

    ``read_port()`` fixes in its RTLIL that such a read returns the old word; iCE40 block RAMs
    leave it undefined, so Yosys emulates it, delaying every write a cycle and bypassing it
    into the read: flip-flops on the data and address that take logic cells of their own
    (about 200 on the iCEBreaker CNN). Built here as an asynchronous port and a register,
    which Yosys merges into the block RAM's port, marking the collision undefined because of
    ``no_rw_check``. Simulation is unchanged: the register takes the word before the write.
    """
    port = mem.read_port(domain="comb")
    en = Signal(init=1, name=f"{name}_en")
    data = Signal(mem.shape, name=f"{name}_data")
    with m.If(en):
        m.d.sync += data.eq(port.data)
    return RegisteredRead(port.addr, en, data)


def rshift_round(x: ValueLike, shift: int) -> Value:
    """:func:`kwshw.arith.rshift_round` for an Amaranth value and a constant shift.

    Computed as ``(x >> shift) + bit shift - 1 of x``, which equals ``(x + 2^(shift-1)) >>
    shift`` for every integer (the low ``shift`` bits only decide the carry into the kept
    ones, and that carry is the bit): an incrementer over the kept bits instead of an adder
    over all of them. The result is wide enough for every value (Amaranth arithmetic never
    wraps), so it is exact as long as the register it is assigned to has the width the plan
    declares.
    """
    x = Value.cast(x)
    if shift <= 0:
        return x << -shift
    if shift > len(x) and not x.shape().signed:
        return x >> shift                           # 0: no bit below the point is set
    # Past the top of a signed value its bits are copies of the sign bit.
    return (x >> shift) + x[min(shift, len(x)) - 1]


def select_rshift_round(m: Module, sel: Value, x: Value,
                        shifts: Sequence[int]) -> tuple[Signal, Signal]:
    """``rshift_round(x, shifts[sel])`` for a run-time index ``sel``, as ``(floor, half)``,
    with ``sel`` as of the cycle before: the shift is chosen by a register loaded from ``sel``
    (one code per distinct shift), so ``sel`` must be set a cycle before the first ``x`` it
    shifts. On the scaler of a trained iCEBreaker model the register saved 36 of 392 LUTs:
    the index's decode no longer sits in front of every bit's multiplexer.

    The caller adds the two: ``rshift_round(x, s) = (x >> s) + (bit s - 1 of x)`` for
    ``s > 0`` (adding half, then flooring, carries into bit ``s`` exactly when bit ``s - 1`` is
    set), an exact left shift for ``s <= 0`` (``half`` is 0). Selecting the shifted value and
    the rounding bit, then adding once, costs one adder instead of one per choice of shift
    (iCE40 logic is scarce). ``x`` is a signed or unsigned value; ``floor`` is signed.
    """
    x = Value.cast(x)
    signed_x = x.shape().signed

    def floor_of(s: int) -> Value:
        if s <= 0:
            return x << -s
        if s < len(x):
            return x >> s
        # Shifted past every bit: only the sign is left (-1 or 0), or 0 when unsigned.
        return x >> (len(x) - 1) if signed_x else C(0, 1)

    def half_of(s: int) -> Value | None:
        if s <= 0:
            return None
        if s - 1 < len(x):
            return x[s - 1]
        return x[-1] if signed_x else None

    # One case per distinct shift, taken by every index with that shift.
    users = {s: [k for k, t in enumerate(shifts) if t == s] for s in dict.fromkeys(shifts)}
    cases = {s: (floor_of(s), half_of(s)) for s in users}
    floor = Signal(signed(max(c.shape().width for c, _ in cases.values()) + 1))
    half = Signal()
    code = Signal(range(len(cases)))
    with m.Switch(sel):
        for i, s in enumerate(cases):
            with m.Case(*users[s]):
                m.d.sync += code.eq(i)
    with m.Switch(code):
        for i, (c, h) in enumerate(cases.values()):
            with m.Case(i):
                m.d.comb += floor.eq(c)
                if h is not None:
                    m.d.comb += half.eq(h)
    return floor, half


#: Operand bits of an iCE40 ``SB_MAC16`` product (16 x 16).
ICE40_DSP_BITS = 16
#: Widest operand strip beyond :data:`ICE40_DSP_BITS` that :func:`dsp_product` adds in logic.
STRIP_BITS = 2


def dsp_product(x: Value, y: Value, family: str | None) -> Value:
    """``x * y``, exactly, shaped for ``family``'s DSPs (``platform.family``; ``None``: any).

    Yosys (``mul2dsp``) cuts an iCE40 multiplier's operands into 16-bit pieces and gives every
    pair of pieces of at least 2 bits each an ``SB_MAC16`` of its own: an 18 x 18 product
    takes 3 of the iCE40UP5K's 8 DSPs, an 18 x 17 one 2. On iCE40 an operand of up to
    ``16 + STRIP_BITS`` bits is therefore split into its low 16 bits (unsigned) and a signed
    strip ``h`` above them (of the operand's signedness), ``x y = xl yl + 2^16 (xh y + yh
    xl)``: the low product is one DSP (its 17th bit, a zero sign bit where ``xl`` meets a
    signed operand, goes to logic) and each strip's product is one shifted addition per
    strip bit (a signed strip's top one subtracted). Elsewhere, and for wider strips,
    ``x * y``.
    """
    def split(v: Value) -> tuple[Value, Value | None]:
        if len(v) <= ICE40_DSP_BITS:
            return v, None
        high = v[ICE40_DSP_BITS:]
        return v[:ICE40_DSP_BITS], high.as_signed() if v.shape().signed else high

    if family != "iCE40" or any(len(v) > ICE40_DSP_BITS + STRIP_BITS for v in (x, y)):
        return x * y
    (xl, xh), (yl, yh) = split(x), split(y)
    if xh is None and yh is None:
        return x * y
    strips = [_strip_product(h, v) for h, v in ((xh, y), (yh, xl)) if h is not None]
    return xl * yl + (sum(strips[1:], strips[0]) << ICE40_DSP_BITS)


def _strip_product(h: Value, v: Value) -> Value:
    """``h v`` for a strip ``h`` of a few bits: ``v`` shifted by each set bit, added (a
    signed strip's sign bit subtracted)."""
    top = len(h) - 1 if h.shape().signed else len(h)
    terms = sum((Mux(h[i], v << i, 0) for i in range(top)), 0)
    return terms - Mux(h[top], v << top, 0) if h.shape().signed else terms


def clamp(x: ValueLike, lo: ValueLike, hi: ValueLike) -> Value:
    """Saturate ``x`` to ``[lo, hi]`` (ReLU is ``lo = 0``); bounds may be constants or signals."""
    x = Value.cast(x)
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


def saturate(x: ValueLike, width: int, relu: ValueLike = 0) -> Value:
    """A signed ``x`` saturated to ``width`` bits: ``clamp(x, lo, 2**(width-1) - 1)`` with
    ``lo = 0`` while ``relu`` is high and ``-2**(width-1)`` otherwise.

    The function of :func:`clamp` with those bounds, without its comparators: ``x`` fits
    ``width`` bits exactly when its bits from ``width - 1`` up all equal its sign, so each
    bound's test is an AND or an OR of those bits (a LUT tree), not a carry chain as wide as
    ``x`` (on iCE40 the two chains after the scaler's last adder were the longest path).
    """
    x = Value.cast(x)
    if not x.shape().signed:
        raise TypeError(f"saturate needs a signed value, not {x.shape()!r}")
    top = (1 << (width - 1)) - 1
    sign = x[-1]
    if len(x) <= width:
        return Mux(relu & sign, 0, x)
    high = x[width - 1:-1]
    over = ~sign & high.any()
    under = sign & (relu | ~high.all())
    return Mux(over, top, Mux(under, Mux(relu, 0, -top - 1), x[:width].as_signed()))


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


def conv_layers(plans: Sequence[LayerPlan]) -> int:
    """Number of temporal convolutions at the start of ``plans``: the layers the streaming
    schedule (:mod:`kwshw.streaming`) computes one new position of per hop.

    Raises
    ------
    ValueError
        When a convolution follows a dense layer, or no dense layer follows the convolutions.
    """
    kinds = [p.conv is not None for p in plans]
    n_conv = kinds.index(False) if False in kinds else len(kinds)
    for k in range(n_conv, len(plans)):
        if kinds[k]:
            raise ValueError(
                f"layer {k} is a temporal convolution after the dense layer {n_conv}: the "
                f"accelerator runs the convolutions first, then the dense layers (a "
                f"convolution after a dense layer has no time axis left to slide over)")
    if n_conv and n_conv == len(plans):
        raise ValueError("the accelerator needs a dense layer after the convolutions (it "
                         "gives the scores)")
    return n_conv


def _expected_inputs(plans: Sequence[LayerPlan], k: int) -> int:
    """Inputs layer ``k >= 1`` takes from layer ``k - 1``: a patch of ``kernel`` output steps
    for a convolution, the previous layer's whole (flattened) output for a dense layer."""
    prev = plans[k - 1]
    if plans[k].conv is not None:
        return plans[k].conv.kernel * prev.n_out
    return prev.out_geometry.size


def check_plans(plans: Sequence[LayerPlan]) -> int:
    """Check that ``plans`` form one network the hardware can run; return its code width."""
    if not plans:
        raise ValueError("network has no layers")
    bits = plans[0].bits
    arith.check_bits(bits)
    conv_layers(plans)
    for k, plan in enumerate(plans):
        if plan.bits != bits:
            raise ValueError(f"layer {k} has {plan.bits}-bit codes, layer 0 {bits}-bit")
        if k and plan.n_in != _expected_inputs(plans, k):
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
