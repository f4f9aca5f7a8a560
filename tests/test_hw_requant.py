# amaranth: UnusedElaboratable=no
"""Frame dividers and requantizer against :mod:`kwshw.arith`, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.generate import Family
from kwshw.hw import common
from kwshw.hw.requant import Divider, FrameDivider, Requantizer

R_MAX = ACT_MAX - ACT_MIN  # widest range of a signed input vector
RANGE_W = arith.unsigned_width(R_MAX)


def _widths(bits: int) -> tuple[int, int]:
    w = arith.layer_widths(n_in=4, bits=bits, st_max=1, lo_min=0, lo_max=0, v_lo=0, v_hi=1,
                           wsr_lo=0, wsr_hi=0, bias_lo=0, bias_hi=0,
                           shifts=arith.LayerShifts(0, 0, 0, 0, 0))
    return w.recip, w.step


def _run(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("radix_bits", [1, 2, 3])
def test_divider_quotients(radix_bits, held):
    rng = np.random.default_rng(radix_bits)
    dut = Divider(20, 9, 14, radix_bits=radix_bits, held_denominator=held)
    cases = [(0, 1), (1, 1), ((1 << 14) - 1, 1), (100, 255), ((1 << 20) - 1, 511)]
    while len(cases) < 60:
        den = int(rng.integers(1, 512))
        cases.append((int(rng.integers(0, min(1 << 20, den << 14))), den))

    async def testbench(ctx):
        for num, den in cases:
            ctx.set(dut.numerator, num)
            ctx.set(dut.denominator, den)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            if not held:  # the divider's own copy is used: the port may change
                ctx.set(dut.denominator, den ^ 0x55)
            cycles = 1
            while not ctx.get(dut.done):
                await ctx.tick()
                cycles += 1
            assert cycles == dut.latency
            assert ctx.get(dut.quotient) == num // den, (num, den)

    _run(dut, testbench)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("radix_bits", [1, 2])
def test_frame_divider_matches_reciprocal_and_step(bits, radix_bits):
    rng = np.random.default_rng(bits * 10 + radix_bits)
    recip_w, step_w = _widths(bits)
    dut = FrameDivider(bits, RANGE_W, recip_w, step_w, radix_bits=radix_bits)
    # R = 0 (constant vector), the smallest and largest ranges, rounding ties nearby.
    ranges = [0, 1, 2, 3, arith.code_max(bits), 2 * arith.code_max(bits), R_MAX - 1, R_MAX]
    ranges += [int(r) for r in rng.integers(0, R_MAX + 1, 40)]

    async def testbench(ctx):
        for r in ranges:
            ctx.set(dut.range, r)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(dut.done)
            assert ctx.get(dut.recip) == arith.reciprocal(r, bits), r
            assert ctx.get(dut.step) == arith.step(r, bits), r

    _run(dut, testbench)


class _OnFamily(Elaboratable):
    """Elaborates ``dut`` as for a platform of ``family`` (the requantizer's ECP5 product)."""

    def __init__(self, dut: Elaboratable, family: str) -> None:
        self.dut, self.family = dut, family

    def elaborate(self, platform):
        return self.dut.elaborate(Family(self.family))


@pytest.mark.parametrize("family", [None, "ecp5"])
@pytest.mark.parametrize("bits", [4, 8])
def test_requantizer_matches_requantize(bits, family):
    """Codes, and their latency, on both forms of the product (one multiplier; on ECP5 two
    DSP-wide products summed a stage later)."""
    rng = np.random.default_rng(bits)
    recip_w, _ = _widths(bits)
    dut = Requantizer(bits, RANGE_W, recip_w)
    assert recip_w > Requantizer.SPLIT  # the ECP5 form is really the split one
    vectors = [
        np.full(7, 1234),                                   # R = 0: all codes 0
        np.array([ACT_MIN, ACT_MAX, 0, -1, 1]),             # widest range
        np.array([5, 6]),                                   # R = 1
        rng.integers(-300, 300, 40),
        rng.integers(ACT_MIN, ACT_MAX + 1, 40),
    ]

    async def testbench(ctx):
        for x in vectors:
            xlo, r = arith.frame_range(int(x.min()), int(x.max()))
            recip = arith.reciprocal(r, bits)
            want = [int(v) for v in arith.requantize(x.astype(np.int64), xlo, recip, bits)]
            ctx.set(dut.xlo, xlo)
            ctx.set(dut.recip, recip)
            got, sent, came = [], [], []
            values = list(x)
            cycle = 0
            while len(got) < len(want):
                # Random gaps between input values: codes keep their order and timing.
                if values and rng.random() < 0.7:
                    ctx.set(dut.x.valid, 1)
                    ctx.set(dut.x.payload, int(values.pop(0)))
                    sent.append(cycle)
                else:
                    ctx.set(dut.x.valid, 0)
                _, _, valid, code = await ctx.tick().sample(dut.code.valid, dut.code.payload)
                cycle += 1
                if valid:
                    got.append(code)
                    came.append(cycle)
            ctx.set(dut.x.valid, 0)
            assert got == want
            # A code LATENCY edges after its value is sampled at the edge after that.
            lags = {c - s for s, c in zip(sent, came, strict=True)}
            assert lags == {Requantizer.LATENCY + 1}
            await ctx.tick().repeat(Requantizer.LATENCY)

    _run(dut if family is None else _OnFamily(dut, family), testbench)


def test_divider_rejects_bad_radix():
    with pytest.raises(ValueError, match="radix_bits"):
        Divider(8, 4, 4, radix_bits=0)


@pytest.mark.parametrize("shape", [signed(5), unsigned(4)])
def test_hw_rshift_round_is_the_contract_for_every_value_and_shift(shape):
    """``hw.common.rshift_round`` (floor plus the rounding bit) equals
    :func:`kwshw.arith.rshift_round` for every value of a small signed and unsigned width and
    every shift, also past the top bit."""
    shifts = range(-2, shape.width + 3)
    x = Signal(shape)
    outs = {s: Signal(signed(shape.width + 4), name=f"y{s + 2}") for s in shifts}
    m = Module()
    m.d.comb += [y.eq(common.rshift_round(x, s)) for s, y in outs.items()]
    values = range(-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed \
        else range(1 << shape.width)

    async def testbench(ctx):
        for v in values:
            ctx.set(x, v)
            for s, y in outs.items():
                assert ctx.get(y) == arith.rshift_round(v, s), (v, s)

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
