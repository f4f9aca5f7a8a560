# amaranth: UnusedElaboratable=no
"""The score buffer behaves cycle for cycle like ``amaranth.lib.fifo.SyncFIFOBuffered``."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import fifo
from amaranth.sim import Simulator

from kwshw.hw.score_buffer import ScoreBuffer


@pytest.mark.parametrize("depth", [2, 3, 13])
def test_score_buffer_matches_sync_fifo_buffered(depth):
    """Random writes and reads, both ends stalling, at every fill level: ``ready``, ``valid``,
    the value and the level (and ``empty``) equal the library FIFO's in every cycle, and
    every value comes out once, in order."""
    rng = random.Random(depth)
    m = Module()
    m.submodules.dut = dut = ScoreBuffer(signed(16), depth)
    m.submodules.ref = ref = fifo.SyncFIFOBuffered(width=16, depth=depth)
    sent, got = [], []

    async def testbench(ctx):
        for cycle in range(600):
            # Phases of mostly writing and mostly reading, so the buffer fills and drains.
            p_write, p_read = (0.8, 0.3) if (cycle // 60) % 2 == 0 else (0.3, 0.8)
            value = rng.randrange(-2**15, 2**15)
            w, r = rng.random() < p_write, rng.random() < p_read
            ctx.set(dut.w_stream.valid, w)
            ctx.set(dut.w_stream.payload, value)
            ctx.set(dut.r_stream.ready, r)
            ctx.set(ref.w_en, w)
            ctx.set(ref.w_data, value & 0xFFFF)
            ctx.set(ref.r_en, r)
            state = (ctx.get(dut.w_stream.ready), ctx.get(dut.r_stream.valid),
                     ctx.get(dut.level))
            assert state == (ctx.get(ref.w_rdy), ctx.get(ref.r_rdy), ctx.get(ref.level)), cycle
            assert ctx.get(dut.empty) == (ctx.get(ref.level) == 0), cycle
            if state[1]:
                assert ctx.get(dut.r_stream.payload) & 0xFFFF == ctx.get(ref.r_data), cycle
                if r:
                    got.append(ctx.get(dut.r_stream.payload))
            if w and state[0]:
                sent.append(value)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert len(got) > 100 and got == sent[:len(got)]


def test_score_buffer_refuses_depth_below_two():
    with pytest.raises(ValueError, match="at least 2"):
        ScoreBuffer(signed(16), 1)
