"""Min-max tracker: ``(XLO, R)`` of a streamed vector, :func:`kwshw.arith.frame_range`."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.hw.minmax import MinMax


def test_minmax_tracks_vectors_with_gaps():
    rng = np.random.default_rng(3)
    dut = MinMax()
    vectors = [np.array([7]), np.full(5, -3), np.array([ACT_MIN, ACT_MAX]),
               np.array([ACT_MAX, ACT_MAX - 1]), rng.integers(ACT_MIN, ACT_MAX + 1, 50),
               rng.integers(0, 100, 13)]

    async def testbench(ctx):
        for x in vectors:
            for k, v in enumerate(x):
                while rng.random() < 0.3:           # idle cycles between values
                    ctx.set(dut.inp.valid, 0)
                    await ctx.tick()
                ctx.set(dut.inp.valid, 1)
                ctx.set(dut.inp.payload, {"value": int(v), "first": k == 0})
                # What the history bank stores: the range so far, this value included.
                assert (ctx.get(dut.next_min), ctx.get(dut.next_max)) == \
                    (int(x[:k + 1].min()), int(x[:k + 1].max()))
                await ctx.tick()
            ctx.set(dut.inp.valid, 0)
            xlo, r = arith.frame_range(int(x.min()), int(x.max()))
            assert (ctx.get(dut.xmin), ctx.get(dut.xmax)) == (int(x.min()), int(x.max()))
            assert ctx.get(dut.range) == r
            await ctx.tick()
            assert ctx.get(dut.xmin) == xlo      # holds while idle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_minmax_folds_pairs_and_values():
    """With ``pairs`` the tracker reduces min/max pairs (a convolution patch's stored ones)
    as well as values; a vector of either kind restarts with its ``first``."""
    rng = np.random.default_rng(5)
    dut = MinMax(pairs=True)

    async def testbench(ctx):
        for trial in range(30):
            n = int(rng.integers(1, 6))
            lo = rng.integers(ACT_MIN, ACT_MAX + 1, n)
            hi = np.minimum(lo + rng.integers(0, 2000, n), ACT_MAX)
            if trial % 2:   # a vector of values between two of pairs
                for k, v in enumerate(lo):
                    ctx.set(dut.inp.valid, 1)
                    ctx.set(dut.inp.payload, {"value": int(v), "first": k == 0})
                    await ctx.tick()
                ctx.set(dut.inp.valid, 0)
                want = (int(lo.min()), int(lo.max()))
            else:
                for k in range(n):
                    ctx.set(dut.pairs.valid, 1)
                    ctx.set(dut.pairs.payload, {"min": int(lo[k]), "max": int(hi[k]),
                                                "first": k == 0})
                    await ctx.tick()
                ctx.set(dut.pairs.valid, 0)
                want = (int(lo.min()), int(hi.max()))
            await ctx.tick()
            assert (ctx.get(dut.xmin), ctx.get(dut.xmax)) == want, trial

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
