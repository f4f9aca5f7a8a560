# amaranth: UnusedElaboratable=no
"""Convolution history: every streamed patch (and its min/max) is the streaming golden model's
``history[-1 - taps].reshape(-1)``, from reset and after ``clear``, with random gaps on the
write side and back-pressure on the read side."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from kwshw import streaming
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from kwshw.hw.history import ConvHistory
from sim.stimulus import random_model

# (channels, depth, taps, rest): a single tap, a history deeper than its oldest tap, a newest
# read position older than 0 (window_ages when (P - K) % S != 0), uneven ages, rest extremes.
HAND_CASES = [
    (1, 1, [0], [-3]),
    (3, 5, [4, 2, 0], [7, -2, 0]),
    (2, 9, [7, 4, 1], [ACT_MAX, ACT_MIN]),
    (4, 6, [5, 1, 0], [0, 0, 0, 0]),
]


def _model_histories(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(initial history, read ages)`` of every history of a random small convolutional
    model, as :func:`kwshw.streaming.stream_network` sets them up: one per convolution input
    (read at its taps) and the last convolution's outputs (read at its window ages)."""
    rng = np.random.default_rng(100 + seed)
    features = FeatureConfig(n_mels=int(rng.integers(2, 5)), context=int(rng.integers(6, 12)),
                             stride=int(rng.integers(1, 3)))
    convs, positions = [], features.context
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(min(positions, 2), min(positions, 4) + 1))
        s = int(rng.integers(1, 4))
        convs.append((k, s, int(rng.integers(1, 5))))
        positions = (positions - k) // s + 1
    model = random_model([3], 4, n_out=2, features=features, convs=convs, seed=seed)
    plans = model.plans()
    timing = streaming.layer_timing(plans, features.stride)
    n_conv = len(convs)
    histories = streaming._initial_histories(plans, timing, n_conv)
    ages = [t.taps for t in timing[:n_conv]] + [timing[n_conv - 1].window_ages]
    return list(zip(histories, ages, strict=True))


MODEL_CASES = [(seed, k) for seed in range(6) for k in range(len(_model_histories(seed)))]


def _phases(rng, channels: int, depth: int, rest: np.ndarray) -> list[np.ndarray]:
    """Step vectors of three runs from reset: wide values with extremes, then values all above
    the rest vector (its min shows while rest taps remain), then all below (its max shows)."""
    hops = depth + 3
    wide = rng.integers(ACT_MIN, ACT_MAX + 1, (hops, channels))
    wide[rng.random(wide.shape) < 0.1] = ACT_MAX
    wide[rng.random(wide.shape) < 0.1] = ACT_MIN
    above = rng.integers(min(int(rest.max()) + 1, ACT_MAX), ACT_MAX + 1, (hops, channels))
    below = rng.integers(ACT_MIN, max(int(rest.min()), ACT_MIN + 1), (hops, channels))
    return [wide, above, below]


MEMORIES = pytest.mark.parametrize("memory", ["bram", "spram"])


def _run(initial: np.ndarray, taps: np.ndarray, seed: int, memory: str = "bram") -> None:
    """Drive ``ConvHistory`` hop by hop and compare with the golden model's history."""
    initial, taps = np.asarray(initial, np.int64), np.asarray(taps)
    depth, channels = initial.shape
    rest = initial[0]
    assert np.all(initial == rest[None, :])
    rng = np.random.default_rng(seed)
    phases = _phases(rng, channels, depth, rest)
    hist = ConvHistory(channels, depth, taps, rest, memory)
    clear = Signal()
    dut = ResetInserter(clear)(hist)
    size = hist.patch_size
    expected: list[np.ndarray] = []
    got: list[tuple[int, int, int]] = []

    async def driver(ctx):
        for phase, steps in enumerate(phases):
            history = [initial.copy()]
            assert ctx.get(hist.mm_valid)
            assert (ctx.get(hist.xmin), ctx.get(hist.xmax)) == (rest.min(), rest.max())
            for t, step in enumerate(steps):
                for value in step:
                    while rng.random() < 0.3:
                        ctx.set(hist.inp.valid, 0)
                        await ctx.tick()
                    ctx.set(hist.inp.valid, 1)
                    ctx.set(hist.inp.payload, int(value))
                    await ctx.tick().until(hist.inp.ready)
                ctx.set(hist.inp.valid, 0)
                streaming._push(history, 0, step)           # the golden model's append
                want = history[0][-1 - taps].reshape(-1)
                check_first = rng.random() < 0.5             # min/max before or after reading
                if check_first:
                    await ctx.tick().until(hist.mm_valid)
                for _ in range(int(rng.integers(1, 4))):     # passes over the patch
                    for _ in range(int(rng.integers(0, 3))):
                        await ctx.tick()
                    ctx.set(hist.req.valid, 1)
                    await ctx.tick().until(hist.req.ready)
                    ctx.set(hist.req.valid, 0)
                    expected.append(want)
                if not check_first:
                    await ctx.tick().until(hist.mm_valid)
                assert (ctx.get(hist.xmin), ctx.get(hist.xmax)) == (want.min(), want.max()), \
                    (phase, t)
            while len(got) < len(expected) * size:
                await ctx.tick()
            # Clear in the middle of an entry: the partial entry and every real one are gone.
            for value in rng.integers(ACT_MIN, ACT_MAX + 1, int(rng.integers(0, channels))):
                ctx.set(hist.inp.valid, 1)
                ctx.set(hist.inp.payload, int(value))
                await ctx.tick().until(hist.inp.ready)
            ctx.set(hist.inp.valid, 0)
            ctx.set(clear, 1)
            await ctx.tick()
            ctx.set(clear, 0)

    async def consumer(ctx):
        while True:
            ctx.set(hist.patch.ready, rng.random() < 0.7)
            _, _, valid, ready, value, first, last = await ctx.tick().sample(
                hist.patch.valid, hist.patch.ready, hist.patch.payload.value,
                hist.patch.payload.first, hist.patch.payload.last)
            if valid and ready:
                got.append((value, first, last))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(consumer, background=True)
    sim.run()
    first, last = np.eye(size, dtype=np.int64)[[0, -1]]
    want = np.concatenate([np.stack([p, first, last], axis=1) for p in expected])
    np.testing.assert_array_equal(np.array(got), want)


@MEMORIES
@pytest.mark.parametrize("case", range(len(HAND_CASES)))
def test_history_patches_hand_cases(case, memory):
    channels, depth, taps, rest = HAND_CASES[case]
    initial = np.tile(np.array(rest, np.int64), (depth, 1))
    _run(initial, np.array(taps), seed=case, memory=memory)


@MEMORIES
@pytest.mark.parametrize(("seed", "k"), MODEL_CASES)
def test_history_patches_of_random_models(seed, k, memory):
    """Every history of random small models: taps from ``streaming.layer_timing``, rest vectors
    and depths from ``streaming._initial_histories``."""
    initial, taps = _model_histories(seed)[k]
    _run(initial, taps, seed=10 * seed + k, memory=memory)


@MEMORIES
def test_history_handshakes_and_cycles(memory):
    """Writes wait for a pass, requests for a whole entry (and win at a boundary); passes
    stream one value per cycle back to back; the reduce takes ``reduce_latency`` cycles.
    With SPRAM a write also waits for the pass's last value to leave the output register."""
    hist = ConvHistory(2, 3, [2, 0], [5, -7], memory)
    size = hist.patch_size

    async def testbench(ctx):
        for v in (1, 2):
            ctx.set(hist.inp.valid, 1)
            ctx.set(hist.inp.payload, v)
            await ctx.tick().until(hist.inp.ready)
        ctx.set(hist.inp.valid, 0)
        cycles = 1                              # the cycle of the entry's last transfer
        while not ctx.get(hist.mm_valid):
            await ctx.tick()
            cycles += 1
        assert cycles == hist.reduce_latency
        assert (ctx.get(hist.xmin), ctx.get(hist.xmax)) == (-7, 5)
        # A stalled pass holds off the writer.
        ctx.set(hist.req.valid, 1)
        await ctx.tick().until(hist.req.ready)
        ctx.set(hist.req.valid, 0)
        ctx.set(hist.inp.valid, 1)
        ctx.set(hist.inp.payload, 9)
        for _ in range(4):
            assert ctx.get(hist.patch.valid) and not ctx.get(hist.inp.ready)
            await ctx.tick()
        # Two passes back to back: the request waiting at the entry boundary beats the writer,
        # which goes in with the last value of the second pass (SPRAM: the cycle after).
        ctx.set(hist.patch.ready, 1)
        ctx.set(hist.req.valid, 1)
        values, writes = [], []
        while len(values) < 2 * size:
            _, _, valid, req_ready, wr_ready, value = await ctx.tick().sample(
                hist.patch.valid, hist.req.ready, hist.inp.ready, hist.patch.payload.value)
            assert valid
            if req_ready:
                ctx.set(hist.req.valid, 0)
            values.append(value)
            writes.append(wr_ready)
        assert values == [5, -7, 1, 2] * 2
        if memory == "bram":
            assert writes == [0] * (2 * size - 1) + [1]
        else:
            assert writes == [0] * (2 * size)
            assert ctx.get(hist.inp.ready) and not ctx.get(hist.patch.valid)
            await ctx.tick()                    # the write of 9 goes in
        # A half-written entry holds off a request.
        ctx.set(hist.inp.valid, 0)
        ctx.set(hist.req.valid, 1)
        for _ in range(3):
            await ctx.tick()
            assert not ctx.get(hist.req.ready)
        ctx.set(hist.inp.valid, 1)
        ctx.set(hist.inp.payload, -4)
        await ctx.tick().until(hist.inp.ready)
        ctx.set(hist.inp.valid, 0)
        await ctx.tick().until(hist.req.ready)
        ctx.set(hist.req.valid, 0)
        values = []
        while len(values) < size:
            _, _, valid, value = await ctx.tick().sample(hist.patch.valid,
                                                         hist.patch.payload.value)
            if valid:
                values.append(value)
        assert values == [5, -7, 9, -4]

    sim = Simulator(hist)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_history_refuses_bad_parameters():
    with pytest.raises(ValueError, match="memory"):
        ConvHistory(2, 3, [2, 0], [0, 0], "flash")
    with pytest.raises(ValueError, match="taps"):
        ConvHistory(2, 3, [3, 0], [0, 0])
    with pytest.raises(ValueError, match="rest"):
        ConvHistory(2, 3, [2, 0], [0])
    with pytest.raises(ValueError, match="rest"):
        ConvHistory(1, 3, [2, 0], [ACT_MAX + 1])
