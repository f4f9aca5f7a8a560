"""Scaler against :func:`kwshw.arith.scale_column`: every column, every layer, edge cases."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Fragment, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.hw.common import dsp_product, saturate, select_rshift_round
from kwshw.hw.memories import const_roms
from kwshw.hw.scaler import Scaler, z_offsets
from kwshw.hw.sequencer import COLUMN_INTERVAL
from kwshw.quantize import plan_layer, quantize_layer


def _plans(bits: int, seed: int):
    """Two layers (ReLU, then linear) with a constant column (ST = 0), a column that
    saturates high and one that saturates low, and ordinary columns."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(0, 0.3, (13, 7))
    w0[:, 1] = 0.25                       # constant column: ST_j = 0
    b0 = rng.normal(0, 0.1, 7)
    b0[2], b0[3] = 1e4, -1e4               # saturation at ACT_MAX, and ReLU to 0
    w1 = rng.normal(0, 0.5, (7, 5))
    w1[:, 4] = -0.5                       # constant column in the linear layer
    b1 = rng.normal(0, 0.1, 5)
    b1[0], b1[1] = 1e4, -1e4               # saturation at ACT_MAX and ACT_MIN
    lay0 = quantize_layer(w0, b0, bits=bits, out_frac=9, relu=True)
    lay1 = quantize_layer(w1, b1, bits=bits, out_frac=5, relu=False)
    p0 = plan_layer(lay0, bits=bits, in_frac=11, in_signed=True)
    p1 = plan_layer(lay1, bits=bits, in_frac=9, in_signed=False)
    # The layers must need different shifts, or selecting them per layer goes untested.
    assert p0.shifts != p1.shifts
    return [p0, p1]


def _cases(plan, rng):
    """Consistent (codes -> A, P) inputs with per-frame RM and XLO, extremes included."""
    m_code = arith.code_max(plan.bits)
    rm_max = (1 << plan.widths.step) - 1
    rm_max = min(rm_max, arith.step(ACT_MAX - (ACT_MIN if plan.in_signed else 0), plan.bits))
    xlo_lo = ACT_MIN if plan.in_signed else 0
    codes = [np.full(plan.n_in, m_code), np.zeros(plan.n_in, np.int64)]
    codes += [rng.integers(0, m_code + 1, plan.n_in) for _ in range(4)]
    rms = [rm_max, 0, *rng.integers(0, rm_max + 1, 4)]
    xlos = [xlo_lo, ACT_MAX, *rng.integers(xlo_lo, ACT_MAX + 1, 4)]
    return list(zip(codes, rms, xlos, strict=True))


class _OnFamily(Elaboratable):
    """``dut`` elaborated as for a platform of ``family`` (the scaler's ROM split)."""

    def __init__(self, dut, family):
        self.dut, self.family = dut, family

    def elaborate(self, platform):
        return Fragment.get(self.dut, SimpleNamespace(family=self.family))


@pytest.mark.parametrize("family, roms, strips", [(None, 2, False), ("iCE40", 1, False),
                                                  ("iCE40", 1, True)])
@pytest.mark.parametrize("bits", [4, 8])
def test_scaler_matches_scale_column(bits, family, roms, strips):
    """Both ways of reading the constants: WSR and B from a second ROM read at cycle 4, and
    (where two ROMs would take more block RAMs: these layers' 8 x 16-bit iCE40 blocks) one
    ROM whose WSR and B are carried down the pipeline from cycle 2; on iCE40 also with the
    products' operand strips in logic (``dsp_strips``: M2's 18 x 18 at both widths, M1's
    18 x 13 at 4 bits)."""
    rng = np.random.default_rng(bits)
    plans = _plans(bits, seed=bits)
    assert len(const_roms(plans, family)) == roms
    _check_scaler(plans, family, rng, dsp_strips=strips)


@pytest.mark.parametrize("bits", [4, 8])
def test_scaler_with_z_offsets_matches_scale_column(bits):
    """A third layer whose shifts make the scaler compute Z further left for some layers
    (:func:`~kwshw.hw.scaler.z_offsets`; the first output format that does): still exactly
    ``scale_column``."""
    for seed, out_frac, scale in itertools.product(range(10), range(16), (0.4, 2.0)):
        rng = np.random.default_rng(seed)
        lay = quantize_layer(rng.normal(0, scale, (5, 6)), rng.normal(0, 0.1, 6), bits=bits,
                             out_frac=out_frac, relu=True)
        # The layer after _plans' linear layer (5 signed outputs with 5 fraction bits).
        plans = _plans(bits, seed=bits) + [plan_layer(lay, bits=bits, in_frac=5,
                                                      in_signed=True)]
        if any(z_offsets(plans)):
            break
    else:
        pytest.fail("no third layer gives these layers an offset")
    _check_scaler(plans, None, rng)


def test_z_offsets_trade_shift_choices():
    """Two trained CNNs' shifts: for one an equal ``align2`` leaves 1 + 0 + 2 choices, not
    0 + 1 + 3; for the other no shift made equal gains anything, offsets of 0 and 1 leave
    1 + 1 + 2 choices, not 0 + 2 + 3; shifts that gain nothing keep no offset."""
    def plans(*shifts):
        return [SimpleNamespace(shifts=arith.LayerShifts(sv=12, sw=7, align1=a1, align2=a2,
                                                         out=out))
                for a1, a2, out in shifts]

    trained = plans((0, 3, 17), (0, 1, 13), (0, 1, 13), (0, 1, 14), (0, 1, 15))
    assert z_offsets(trained) == [0, 2, 2, 2, 2]
    trained = plans((0, 2, 17), (0, 0, 13), (0, 1, 13), (0, 1, 14), (0, 1, 15))
    assert z_offsets(trained) == [0, 1, 1, 0, 0]
    assert z_offsets(plans((0, 1, 15), (0, 1, 14), (0, 0, 14), (0, 1, 14))) == [0, 0, 0, 0]
    assert z_offsets(plans((0, 2, 20))) == [0]


def _check_scaler(plans, family, rng, *, dsp_strips: bool = False) -> None:
    """Every column of every layer of ``plans`` through a :class:`Scaler` against
    :func:`kwshw.arith.scale_column`, saturation and ReLU included."""
    bits = plans[0].bits
    dut = Scaler(plans, dsp_strips=dsp_strips)
    jobs = []
    for k, plan in enumerate(plans):
        for p, rm, xlo in _cases(plan, rng):
            a = p.astype(np.int64) @ plan.layer.codes.astype(np.int64)
            psum = int(p.sum())
            lay = plan.layer
            want = arith.scale_column(a, psum, int(rm), int(xlo), st=lay.st, lo=lay.lo,
                                      wsr=plan.wsr, bias=lay.bias, bits=bits,
                                      shifts=plan.shifts, relu=lay.relu)
            jobs.append((k, a, psum, int(rm), int(xlo), [int(v) for v in want]))
    # The edge cases must really be exercised.
    outs = np.concatenate([j[5] for j in jobs])
    assert (outs == ACT_MAX).any() and (outs == ACT_MIN).any() and (outs == 0).any()
    got = []

    async def driver(ctx):
        for k, a, psum, rm, xlo, _ in jobs:
            ctx.set(dut.layer, k)
            ctx.set(dut.psum, psum)
            ctx.set(dut.step, rm)
            ctx.set(dut.xlo, xlo)
            await ctx.tick()  # the layer is set a cycle before its first column (contract)
            n_out = len(a)
            for j in range(n_out):
                ctx.set(dut.inp.valid, 1)
                ctx.set(dut.inp.payload, {"acc": int(a[j]), "column": j,
                                          "last": j == n_out - 1})
                await ctx.tick()
                # `acc` holds one cycle more (the contract), then anything may be there.
                # Columns COLUMN_INTERVAL cycles apart (as the hold bank sends them), or
                # further (between passes and layers), odd distances included.
                ctx.set(dut.inp.valid, 0)
                ctx.set(dut.inp.payload.column, int(rng.integers(0, n_out)))
                ctx.set(dut.inp.payload.last, int(rng.integers(0, 2)))
                await ctx.tick()
                ctx.set(dut.inp.payload.acc, int(rng.integers(0, 1 << len(dut.inp.payload.acc))))
                for _ in range(COLUMN_INTERVAL - 2 + int(rng.integers(0, 3) == 0)
                               * int(rng.integers(1, 4))):
                    await ctx.tick()
            ctx.set(dut.inp.valid, 0)
            await ctx.tick().repeat(Scaler.LATENCY)

    async def monitor(ctx):
        async for _, _, valid, value, column, last in ctx.tick().sample(
                dut.out.valid, dut.out.payload.value, dut.out.payload.column,
                dut.out.payload.last):
            if valid:
                got.append((value, column, last))

    sim = Simulator(_OnFamily(dut, family))
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(monitor, background=True)
    sim.run()
    want = [(v, j, int(j == len(job[5]) - 1)) for job in jobs for j, v in enumerate(job[5])]
    assert got == want


@pytest.mark.parametrize("signed_x", [True, False])
def test_select_rshift_round_equals_arith_for_every_shift(signed_x):
    """The scaler's shared-adder rounding shift: every selectable shift (left, none, right,
    up to past the value's width) against :func:`kwshw.arith.rshift_round`."""
    width = 9
    shifts = [-3, 0, 1, 2, 5, width - 1, width, width + 4]
    m = Module()
    x = Signal(signed(width) if signed_x else unsigned(width))
    sel = Signal(range(len(shifts)))
    floor, half = select_rshift_round(m, sel, x, shifts)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed_x else (0, (1 << width) - 1)
    values = sorted({lo, hi, 0, -1 if signed_x else 1, *range(lo, hi + 1, 7)})
    bad = []

    async def bench(ctx):
        for k, s in enumerate(shifts):
            ctx.set(sel, k)
            await ctx.tick()  # the shift is chosen by a register loaded from sel
            for v in values:
                ctx.set(x, v)
                got = ctx.get(floor) + ctx.get(half)
                if got != arith.rshift_round(v, s):
                    bad.append((s, v, got))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


@pytest.mark.parametrize("width_x", [5, 8, 12])
def test_saturate_equals_clamp_for_every_value(width_x):
    """The comparator-free clamp: every value of a ``width_x``-bit signed input (narrower,
    as wide as and wider than the 8-bit result), ReLU and plain, against ``np.clip``."""
    width = 8
    x, relu = Signal(signed(width_x)), Signal()
    y = Signal(signed(width))
    m = Module()
    m.d.comb += y.eq(saturate(x, width, relu))
    top = (1 << (width - 1)) - 1
    bad = []

    async def bench(ctx):
        for r in (0, 1):
            ctx.set(relu, r)
            for v in range(-(1 << (width_x - 1)), 1 << (width_x - 1)):
                ctx.set(x, v)
                want = int(np.clip(v, 0 if r else -top - 1, top))
                if ctx.get(y) != want:
                    bad.append((r, v, ctx.get(y), want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


def _scaler_rtlil(plans, family: str | None = None, *, dsp_strips: bool = False) -> str:
    """RTLIL of a scaler for ``plans``, elaborated for ``family``, its ports as a top's."""
    from amaranth.back import rtlil

    scaler = Scaler(plans, dsp_strips=dsp_strips)
    top = Module()
    top.submodules.scaler = scaler
    ports = []
    for port, out in ((scaler.inp.valid, False), (scaler.inp.payload.as_value(), False),
                      (scaler.layer, False), (scaler.psum, False), (scaler.step, False),
                      (scaler.xlo, False), (scaler.out.valid, True),
                      (scaler.out.payload.as_value(), True)):
        outer = Signal.like(port)
        top.d.comb += outer.eq(port) if out else port.eq(outer)
        ports.append(outer)
    return rtlil.convert(top, name="top", ports=ports,
                         platform=family and SimpleNamespace(family=family))


#: The scaler's inputs that :class:`kwshw.arith.LayerWidths` counts as unsigned.
UNSIGNED_FIELDS = {"acc", "psum", "st", "step"}


@pytest.mark.parametrize("bits", [4, 8])
def test_multiplier_operands_are_exactly_as_wide_as_needed(bits):
    """Each shared multiplier's operands are the narrowest signed values holding both of its
    products' operands: one bit more made the 8-bit reference's ``ST * A`` 19 bits wide in
    x, its 19th bit's partial products logic beside the ECP5 MULT18X18D (on the longest path
    of its ULX3S build)."""
    from boards.dsp import multipliers
    from boards.refmodel import random_cnn

    plans = random_cnn(bits).plans()
    il = _scaler_rtlil(plans)

    def signed_width(name: str) -> int:
        # An unsigned field needs a sign bit more as a signed operand.
        return max(getattr(p.widths, name) for p in plans) + (name in UNSIGNED_FIELDS)

    m1 = (max(signed_width("st"), signed_width("lo")),
          max(signed_width("acc"), signed_width("psum")))
    m2 = (max(signed_width("xlo"), signed_width("step")),
          max(signed_width("wsr"), signed_width("vr")))
    got = sorted((m["a"], m["b"]) for m in multipliers(il))
    assert got == sorted([m1, m2])
    assert m1[0] <= 18 and m2 == (18, 18)   # one ECP5 MULT18X18D wide in x (M2 in both)


@pytest.mark.parametrize("wx, wy", [(18, 18), (18, 17), (17, 17), (17, 12), (16, 18), (19, 18)])
@pytest.mark.parametrize("sx, sy", [(True, True), (False, True), (True, False), (False, False)])
def test_dsp_product_is_the_product(wx, wy, sx, sy):
    """The iCE40 split product (low 16 bits times low 16 bits in a DSP, 1- or 2-bit strips
    in logic) equals ``x * y`` for extremes and random operands of either signedness; 19
    bits (a 3-bit strip) and operands of 16 bits or fewer stay ``x * y``."""
    x = Signal(signed(wx) if sx else unsigned(wx))
    y = Signal(signed(wy) if sy else unsigned(wy))
    out = Signal(signed(wx + wy + 1))
    m = Module()
    m.d.comb += out.eq(dsp_product(x, y, "iCE40"))

    def span(w, s):
        return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if s else (0, (1 << w) - 1)

    (xl, xh), (yl, yh) = span(wx, sx), span(wy, sy)
    rng = np.random.default_rng(wx * 100 + wy)
    edges_x = [xl, xh, 0, 1, -1 if sx else 2, (1 << 16) - 1, 1 << 16]
    edges_y = [yl, yh, 0, 1, -1 if sy else 2, (1 << 15), (1 << 16) - 1]
    pairs = [(a, b) for a in edges_x for b in edges_y if xl <= a <= xh and yl <= b <= yh]
    pairs += list(zip(rng.integers(xl, xh + 1, 300).tolist(),
                      rng.integers(yl, yh + 1, 300).tolist(), strict=True))
    bad = []

    async def bench(ctx):
        for a, b in pairs:
            ctx.set(x, a)
            ctx.set(y, b)
            if ctx.get(out) != a * b:
                bad.append((a, b, ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


def test_ice40_scaler_multipliers_take_one_dsp_each_with_strips():
    """With ``dsp_strips`` on iCE40 the reference CNN's two shared multipliers (18 x 13 and
    18 x 18 operands, which Yosys gives 2 and 3 DSPs) are one ``$mul`` each of at most 17 x
    17 bits: one SB_MAC16 each (:func:`boards.dsp.dsp_tiles`); without it, and on ECP5,
    the 18-bit products stay whole."""
    from boards.dsp import dsp_tiles, multipliers
    from boards.refmodel import random_cnn

    plans = random_cnn(4).plans()
    for family, strips, want in (("iCE40", True, [1, 1]), ("iCE40", False, [2, 3]),
                                 ("ecp5", True, [2, 3])):
        muls = multipliers(_scaler_rtlil(plans, family, dsp_strips=strips))
        assert [dsp_tiles(m["a"], m["b"]) for m in muls] == want, (family, strips, muls)
