"""Per-frame reciprocal and step dividers, and the requantizer that codes activations.

Once per frame and layer the range ``R`` of the layer's input vector is known (from the
min-max tracker, or from the window for layer 0). Two sequential dividers then compute

- ``RECIP = round(M * 2**K / R)`` (:func:`kwshw.arith.reciprocal`; 0 for ``R = 0``), which
  the requantizer needs before the first code of the layer, and
- ``RM = round(R * 2**b / M)`` (:func:`kwshw.arith.step`), which only the scaler needs,

both with the contract's rounding (half up), as exact integer quotients
``floor((2 * num + den) / (2 * den))``. The :class:`Requantizer` then turns every input value
into its code ``p = min(M, round((X - XLO) * RECIP / 2**K))`` as the MAC array consumes it.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import arith
from ..arith import ACT_WIDTH, RECIP_FRAC
from .common import rshift_round

__all__ = ["Divider", "FrameDivider", "Requantizer", "divider_latency", "frame_divider_latency"]


def divider_latency(quot_width: int, radix_bits: int) -> int:
    """Cycles a :class:`Divider` takes from ``start`` to ``done``: one per ``radix_bits`` quotient
    bits."""
    return -(-quot_width // radix_bits)


def frame_divider_latency(recip_width: int, step_width: int, radix_bits: int) -> int:
    """Cycles a :class:`FrameDivider` takes from ``start`` to ``done``: one to register the
    range, then the slower of its two dividers (``RECIP`` and ``RM`` quotients of these
    widths)."""
    return 1 + max(divider_latency(recip_width, radix_bits),
                   divider_latency(step_width, radix_bits))


class Divider(wiring.Component):
    """Sequential restoring divider: ``quotient = numerator // denominator``.

    Produces ``radix_bits`` quotient bits per cycle, most significant first, and takes a fixed
    :attr:`latency` so that the sequencer's schedule (and so the cycle count) does not
    depend on the data.

    Parameters
    ----------
    num_width, den_width : int
        Widths of the unsigned numerator and (non-zero) denominator.
    quot_width : int
        Width of the quotient. The caller guarantees ``quotient < 2**quot_width``; that is what
        lets the division start with ``numerator >> quot_width`` already below the denominator.
    radix_bits : int
        Quotient bits per cycle (1 = radix 2, 2 = radix 4, ...): a chain of that many
        compare-subtract steps per cycle.
    held_denominator : bool
        The caller holds ``denominator`` from ``start`` until ``done`` (a register of its own,
        or a constant), so the divider keeps no copy of it.

    Attributes
    ----------
    start : Signal, in
        Pulse: sample ``numerator`` (and ``denominator``) and begin.
    done : Signal, out
        High from :attr:`latency` cycles after ``start`` until the next ``start``.
    quotient : Signal, out
        Valid while ``done``.
    """

    def __init__(self, num_width: int, den_width: int, quot_width: int, *,
                 radix_bits: int = 1, held_denominator: bool = False) -> None:
        if radix_bits < 1:
            raise ValueError(f"radix_bits must be >= 1, got {radix_bits}")
        self._nw, self._dw, self._qw, self._k = num_width, den_width, quot_width, radix_bits
        self._held = held_denominator
        self._cycles = divider_latency(quot_width, radix_bits)
        super().__init__({
            "start": In(1),
            "numerator": In(unsigned(num_width)),
            "denominator": In(unsigned(den_width)),
            "done": Out(1, init=1),
            "quotient": Out(unsigned(quot_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from the ``start`` cycle to the first cycle with ``done`` and the quotient."""
        return self._cycles

    def elaborate(self, platform) -> Module:
        m = Module()
        k, total = self._k, self._cycles * self._k
        den = self.denominator if self._held else Signal(self._dw)
        rem = Signal(self._dw + 1)
        # The numerator bits still to shift in (MSB first) and, below them, the quotient bits
        # found so far: each step moves one bit from the top into the remainder and its
        # quotient bit in at the bottom, so one register holds both.
        bits = Signal(total)
        left = Signal(range(self._cycles + 1))

        def iterate(divisor, rem_in, bits_in):
            r, b = rem_in, bits_in
            for _ in range(k):
                trial = (r << 1) | b[total - 1]
                take = trial >= divisor
                r = Mux(take, trial - divisor, trial)[:self._dw + 1]
                b = ((b << 1) | take)[:total]
            return r, b

        with m.If(self.start):
            # The first step runs in the start cycle, on the ports themselves.
            num = self.numerator
            r, b = iterate(self.denominator, num >> total,
                           Cat(num, C(0, max(0, total - self._nw)))[:total])
            m.d.sync += [rem.eq(r), bits.eq(b), left.eq(self._cycles - 1),
                         self.done.eq(self._cycles == 1)]
            if not self._held:
                m.d.sync += den.eq(self.denominator)
        with m.Elif(left != 0):
            r, b = iterate(den, rem, bits)
            m.d.sync += [rem.eq(r), bits.eq(b), left.eq(left - 1), self.done.eq(left == 1)]
        m.d.comb += self.quotient.eq(bits)
        return m


class FrameDivider(wiring.Component):
    """The two per-frame divisions of a layer: ``RECIP`` (:func:`kwshw.arith.reciprocal`) and
    ``RM`` (:func:`kwshw.arith.step`) from the range ``R``, in parallel.

    Parameters
    ----------
    bits : int
        Code width ``b``.
    range_width, recip_width, step_width : int
        Widths of ``R``, ``RECIP`` and ``RM`` (from :class:`kwshw.arith.LayerWidths`, the
        largest over the layers).
    radix_bits : int
        Quotient bits per cycle of each divider.

    Attributes
    ----------
    start : Signal, in
        Pulse: sample ``range`` and begin.
    range : Signal, in
        ``R = max - min`` of the layer's input vector.
    done : Signal, out
        High from :attr:`latency` cycles after ``start`` until the next ``start``.
    recip, step : Signal, out
        ``RECIP`` and ``RM``, valid while ``done``.
    """

    def __init__(self, bits: int, range_width: int, recip_width: int, step_width: int, *,
                 radix_bits: int = 1) -> None:
        self._bits = arith.check_bits(bits)
        m_code = arith.code_max(bits)
        # RECIP = floor(((M << (K + 1)) + R) / (2 R)); RM = floor(((R << (b + 1)) + M) / (2 M)).
        recip_num = ((m_code << (RECIP_FRAC + 1)) + (1 << range_width)).bit_length()
        step_num = ((((1 << range_width) - 1) << (bits + 1)) + m_code).bit_length()
        # Both denominators hold while the dividers run (the range register, a constant).
        self._recip_div = Divider(recip_num, range_width + 1, recip_width, radix_bits=radix_bits,
                                  held_denominator=True)
        self._step_div = Divider(step_num, (2 * m_code).bit_length(), step_width,
                                 radix_bits=radix_bits, held_denominator=True)
        self._latency = frame_divider_latency(recip_width, step_width, radix_bits)
        super().__init__({
            "start": In(1),
            "range": In(unsigned(range_width)),
            "done": Out(1),
            "recip": Out(unsigned(recip_width)),
            "step": Out(unsigned(step_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to ``done`` (:func:`frame_divider_latency`)."""
        return self._latency

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.recip_div = rd = self._recip_div
        m.submodules.step_div = sd = self._step_div
        b, m_code = self._bits, arith.code_max(self._bits)
        # The range is registered before the dividers start: it comes from the multiplexer
        # over the window's, the histories' and the tracker's min/max and their difference,
        # and with a divider's first quotient step behind it in the same cycle that was one
        # of the iCE40's longest paths. One cycle more per layer. R = 0 is told from the
        # register (it holds until the next start), not on the way into it.
        rng, pending = Signal.like(self.range), Signal()
        zero = rng == 0
        m.d.sync += pending.eq(self.start)
        with m.If(self.start):
            m.d.sync += rng.eq(self.range)
        m.d.comb += [
            rd.start.eq(pending),
            rd.numerator.eq((m_code << (RECIP_FRAC + 1)) + rng),
            # R = 0 would divide by zero; its RECIP is defined as 0 and masked below.
            rd.denominator.eq(rng << 1),
            sd.start.eq(pending),
            sd.numerator.eq((rng << (b + 1)) + m_code),
            sd.denominator.eq(2 * m_code),
            self.done.eq(rd.done & sd.done & ~pending),
            self.recip.eq(rd.quotient & ~zero.replicate(len(self.recip))),
            self.step.eq(sd.quotient),
        ]
        return m


class Requantizer(wiring.Component):
    """Codes of a layer's input values: ``p = min(M, round((X - XLO) * RECIP / 2**K))``
    (:func:`kwshw.arith.requantize`), one per cycle, pipelined.

    Parameters
    ----------
    bits : int
        Code width ``b``.
    range_width, recip_width : int
        Widths of ``R`` (so of ``X - XLO``) and of ``RECIP``.

    Attributes
    ----------
    x : stream, in
        Input values (signed ``ACT_WIDTH``); never stalls.
    xlo, recip : Signal, in
        Per-frame minimum and reciprocal of the vector being coded (held for the layer, from
        no later than its first value).
    code : stream, out
        The codes, :attr:`LATENCY` cycles after their values.
    """

    #: Cycles from an input value to its code: an input register, then four stages.
    LATENCY = 5

    #: Width of the low part of ``RECIP`` in the first of the two products on ECP5 (within
    #: its DSPs' 18-bit operands).
    SPLIT = 16

    def __init__(self, bits: int, range_width: int, recip_width: int) -> None:
        self._bits = arith.check_bits(bits)
        self._rw, self._qw = range_width, recip_width
        super().__init__({
            "x": In(stream.Signature(signed(ACT_WIDTH), always_ready=True)),
            "xlo": In(signed(ACT_WIDTH)),
            "recip": In(unsigned(recip_width)),
            "code": Out(stream.Signature(unsigned(bits), always_ready=True)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # Stage 0: register the value. In the accelerator it comes from a block RAM through
        # the read multiplexers (window, activations, histories); the subtraction after them
        # was the ECP5's longest path. XLO is held for the layer, so it needs no register.
        x = Signal.like(self.x.payload)
        v0 = Signal()
        m.d.sync += [x.eq(self.x.payload), v0.eq(self.x.valid)]
        # Stage 1: offset from the minimum, in [0, R] by construction of XLO.
        diff = Signal(self._rw)
        v1 = Signal()
        m.d.sync += [diff.eq(x - self.xlo), v1.eq(v0)]
        # Stage 2: the one multiplication per code. RECIP is held for the layer too, but it
        # comes from the divider's quotient logic: registered, so that logic is not on the
        # path into the multiplier (on ECP5 the longest once the block RAM reads were
        # fixed). A RECIP set with a layer's first value is still in time: the value spends
        # two cycles in stages 0 and 1.
        recip = Signal.like(self.recip)
        m.d.sync += recip.eq(self.recip)
        split = getattr(platform, "family", None) == "ecp5" and self._qw > self.SPLIT
        if split:
            prod, valid = self._split_product(m, diff, recip, v1)
        else:
            prod, valid = Signal(self._rw + self._qw), Signal()
            m.d.sync += [prod.eq(diff * recip), valid.eq(v1)]
        # Then: round half up and clip the overshoot at X = max.
        rounded = rshift_round(prod, RECIP_FRAC)
        m_code = arith.code_max(self._bits)
        code, code_valid = Signal.like(self.code.payload), Signal()
        m.d.sync += [code.eq(Mux(rounded > m_code, m_code, rounded)), code_valid.eq(valid)]
        if split:
            m.d.comb += [self.code.payload.eq(code), self.code.valid.eq(code_valid)]
        else:
            # The product took one stage: the code waits one cycle (a few flip-flops), so
            # the latency, and the schedule, are the same on every platform.
            m.d.sync += [self.code.payload.eq(code), self.code.valid.eq(code_valid)]
        return m

    def _split_product(self, m: Module, diff: Signal, recip: Signal,
                       valid: Signal) -> tuple[Signal, Signal]:
        """``diff * recip`` in two stages (ECP5): ``RECIP`` is wider than a DSP's operand, so
        the product is two, each registered at its DSP's output, summed in the next cycle.
        As one multiplier, a DSP's output and a carry chain as wide as the product shared a
        cycle: the ECP5 CNN reference's critical path (90.9 MHz). Elsewhere the extra stage
        costs more logic cells than it gains (iCE40: 65 on the trained CNN)."""
        split = self.SPLIT
        lo = Signal(self._rw + split)
        hi = Signal(self._rw + self._qw - split)
        v2, v3 = Signal(), Signal()
        m.d.sync += [lo.eq(diff * recip[:split]), hi.eq(diff * recip[split:]), v2.eq(valid)]
        prod = Signal(self._rw + self._qw)
        m.d.sync += [prod.eq(lo + (hi << split)), v3.eq(v2)]
        return prod, v3

