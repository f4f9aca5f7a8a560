"""Input window: layer 0's vectors are exactly :func:`kwshw.golden.stream_windows`, with their
min/max, while the next frame streams in; ``clear`` restarts from the all-zero window."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from kwshw import golden
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from kwshw.hw.window import Window
from sim.folding import Folded


@pytest.mark.parametrize(("n_mels", "context", "stride"),
                         [(3, 4, 2), (5, 1, 1), (2, 3, 3), (1, 3, 1)])
def test_window_vectors_minmax_and_clear(n_mels, context, stride):
    cfg = FeatureConfig(n_mels=n_mels, context=context, stride=stride)
    rng = np.random.default_rng(n_mels * 7 + context)
    span = cfg.span
    phase1 = rng.integers(-2000, 2000, (span + 5, n_mels))
    phase1[2] = ACT_MAX
    phase1[3] = ACT_MIN
    phase1[4] = 0
    phase2 = rng.integers(1, 50, (span + 2, n_mels))    # all positive: zeros from clear show
    clear = Signal()
    window = Window(cfg)
    folded = Folded(window)
    dut = ResetInserter(clear)(folded)
    state = {"phase2": False}

    async def host(ctx):
        for phase, frames in ((1, phase1), (2, phase2)):
            while phase == 2 and not state["phase2"]:
                await ctx.tick()
            for value in frames.reshape(-1):
                while rng.random() < 0.25:
                    ctx.set(window.feat.valid, 0)
                    await ctx.tick()
                ctx.set(window.feat.valid, 1)
                ctx.set(window.feat.payload, int(value))
                await ctx.tick().until(window.feat.ready)
            ctx.set(window.feat.valid, 0)

    async def consumer(ctx):
        for phase, frames in ((1, phase1), (2, phase2)):
            want = golden.stream_windows(frames, context, stride)
            for t in range(len(frames)):
                await ctx.tick().until(window.frame_valid)
                # Let the host's next frame start streaming in while this one is read.
                await ctx.tick().repeat(int(rng.integers(1, 4)))
                ctx.set(window.take, 1)
                await ctx.tick()
                ctx.set(window.take, 0)
                await ctx.tick().until(window.mm_done)
                assert (ctx.get(folded.tracker.xmin), ctx.get(folded.tracker.xmax)) == \
                    (want[t].min(), want[t].max()), (phase, t)
                for _ in range(2):                    # two passes over the vector
                    got = []
                    for i in range(len(want[t])):
                        ctx.set(window.rd_en, 1)
                        ctx.set(window.rd_first, i == 0)
                        await ctx.tick()
                        got.append(ctx.get(window.rd_data))
                    ctx.set(window.rd_en, 0)
                    assert got == list(want[t]), (phase, t)
            if phase == 1:
                ctx.set(clear, 1)
                await ctx.tick()
                ctx.set(clear, 0)
                state["phase2"] = True

    async def watchdog(ctx):
        # A window that never completes a frame would leave the testbenches waiting forever.
        for _ in range(50_000):
            await ctx.tick()
        raise AssertionError("the window stopped producing vectors")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(consumer)
    sim.add_testbench(watchdog, background=True)
    sim.run()


def test_window_reduce_latency():
    cfg = FeatureConfig(n_mels=2, context=5, stride=1)
    window = Window(cfg)
    folded = Folded(window)

    async def testbench(ctx):
        for v in (3, -4):
            ctx.set(window.feat.valid, 1)
            ctx.set(window.feat.payload, v)
            await ctx.tick().until(window.feat.ready)
        ctx.set(window.feat.valid, 0)
        await ctx.tick().until(window.frame_valid)
        assert not ctx.get(window.feat.ready)           # a pending frame blocks the next
        ctx.set(window.take, 1)
        await ctx.tick()
        ctx.set(window.take, 0)
        cycles = 1
        while not ctx.get(window.mm_done):
            await ctx.tick()
            cycles += 1
        assert cycles == window.reduce_latency
        assert (ctx.get(folded.tracker.xmin), ctx.get(folded.tracker.xmax)) == (-4, 3)
        assert ctx.get(window.feat.ready)

    sim = Simulator(folded)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
