"""Min-max tracker: ``(XLO, R)`` of a streamed vector, :func:`kwshw.arith.frame_range`."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.hw.minmax import MinMax


def test_minmax_tracks_vectors_with_gaps():
    """Every cycle, ``xmin``/``xmax`` are the range of the values up to ``LATENCY`` cycles
    before (the value is registered, then folded); they hold while idle."""
    rng = np.random.default_rng(3)
    dut = MinMax()
    vectors = [np.array([7]), np.full(5, -3), np.array([ACT_MIN, ACT_MAX]),
               np.array([ACT_MAX, ACT_MAX - 1]), rng.integers(ACT_MIN, ACT_MAX + 1, 50),
               rng.integers(0, 100, 13)]

    async def testbench(ctx):
        ranges = []     # per cycle: the range of the values beaten so far (None: nothing yet)

        def check():
            seen = ranges[-1 - MinMax.LATENCY] if len(ranges) > MinMax.LATENCY else None
            if seen is not None:
                _, r = arith.frame_range(*seen)
                assert (ctx.get(dut.xmin), ctx.get(dut.xmax)) == seen, len(ranges)
                assert ctx.get(dut.range) == r

        for x in vectors:
            for k, v in enumerate(x):
                while rng.random() < 0.3:           # idle cycles between values
                    ctx.set(dut.inp.valid, 0)
                    ranges.append(ranges[-1] if ranges else None)
                    check()
                    await ctx.tick()
                ctx.set(dut.inp.valid, 1)
                ctx.set(dut.inp.payload, {"value": int(v), "first": k == 0})
                ranges.append((int(x[:k + 1].min()), int(x[:k + 1].max())))
                check()
                await ctx.tick()
            ctx.set(dut.inp.valid, 0)
            for _ in range(MinMax.LATENCY + 1):     # and it holds
                ranges.append(ranges[-1])
                check()
                await ctx.tick()
            assert (ctx.get(dut.xmin), ctx.get(dut.xmax)) == (int(x.min()), int(x.max()))

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
