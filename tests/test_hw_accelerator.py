# amaranth: UnusedElaboratable=no
"""The whole accelerator against the golden model: every layer output of every frame equal,
on real speech features; cycles per frame equal to the schedule's formula; clear, SPRAM
loading, stalls on both streams, and parameter checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kwshw import golden
from kwshw.features import FeatureConfig, stack_windows
from kwshw.hw.accelerator import Accelerator
from sim.pysim import (
    int_frames,
    random_model_for_windows,
    simulate,
    simulate_clears,
    speech_frames,
)

# Small enough for the Amaranth simulator: 7 bands x 3 frames = 21 inputs (a multiple of
# nothing useful), hidden layers of 10 and 6 (n_in < P for P = 8), 5 outputs.
CFG = FeatureConfig(n_mels=7, context=3, stride=2)
HIDDEN = [10, 6]
N_OUT = 5


def _first_mismatch(model, result, frames) -> str | None:
    """Name the first layer/frame/column where the hardware differs from the golden model."""
    x = golden.stream_windows(frames, model.features.context, model.features.stride)
    traces = golden.run_network(model.plans(), x, check_widths=True)
    for k, trace in enumerate(traces):
        bad = np.argwhere(result.layers[k] != trace.y)
        if len(bad):
            t, j = bad[0]
            return (f"layer {k} frame {t} column {j}: hardware {result.layers[k][t, j]}, "
                    f"golden {trace.y[t, j]} ({len(bad)} mismatches in this layer)")
    if not np.array_equal(result.scores, traces[-1].y):
        return "scores differ from the last layer's trace"
    return None


@pytest.fixture(scope="module")
def speech():
    if not os.environ.get("KWSHW_DATA"):
        pytest.skip("KWSHW_DATA is not set: no real speech to run the network on")
    clips = speech_frames(CFG, clips=6)
    calib = np.concatenate([stack_windows(c, CFG) for c in clips])
    return clips, calib


@pytest.mark.data
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("lanes", [1, 4, 8])
def test_network_bit_exact_on_speech(speech, bits, lanes):
    clips, calib = speech
    model = random_model_for_windows(HIDDEN, bits, N_OUT, CFG, calib, seed=bits + lanes,
                                     constant_column=True)
    clip = clips[(bits + lanes) % len(clips)]
    # 60 frames of speech, then silence at the mean long enough that the whole window is
    # zero (a constant input vector, R = 0).
    frames = np.concatenate([int_frames(clip[:60], model.in_frac),
                             np.zeros((CFG.span + 3, CFG.n_mels), np.int64)])
    stalls = lanes == 4
    dut = Accelerator(model, lanes, trace=True)
    result = simulate(model, lanes, frames, dut=dut, seed=lanes,
                      feed_gap=0.3 if stalls else 0.0, score_stall=0.6 if stalls else 0.0)
    mismatch = _first_mismatch(model, result, frames)
    assert mismatch is None, mismatch
    assert len(frames) >= 50
    if not stalls:
        # Frames are always pending and scores read at once: the period is the formula's.
        assert set(result.periods) == {dut.cycles_per_frame}


def _random_case(shape_hidden, n_out, cfg, bits, seed, frames=6):
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 1, (frames, cfg.n_mels))
    windows = stack_windows(f.astype(np.float32), cfg)
    model = random_model_for_windows(shape_hidden, bits, n_out, cfg, windows, seed=seed)
    return model, int_frames(f, model.in_frac)


@pytest.mark.parametrize(("hidden", "n_out", "lanes", "bits"), [
    ([], 3, 2, 4),              # a single layer: no activation buffer
    ([10, 6], 5, 16, 8),        # n_in < P in two layers, one pass each
    ([9], 17, 32, 4),           # n_out > P? no: 17 < 32, and n_in = 9 < P
    ([12], 7, 4, 2),            # 2-bit codes
])
def test_cycles_per_frame_equal_simulation(hidden, n_out, lanes, bits):
    cfg = FeatureConfig(n_mels=3, context=2, stride=3)
    model, frames = _random_case(hidden, n_out, cfg, bits, seed=lanes + n_out)
    dut = Accelerator(model, lanes, trace=True)
    result = simulate(model, lanes, frames, dut=dut)
    mismatch = _first_mismatch(model, result, frames)
    assert mismatch is None, mismatch
    assert set(result.periods) == {dut.cycles_per_frame}
    from kwshw.generate import accelerator_cycles
    assert accelerator_cycles(model, lanes) == dut.cycles_per_frame


def test_spram_weights_loaded_through_load_port():
    cfg = FeatureConfig(n_mels=4, context=2, stride=2)
    model, frames = _random_case([6], 3, cfg, 4, seed=11, frames=8)
    dut = Accelerator(model, 4, memory="spram", trace=True)
    assert "load" in dut.signature.members
    result = simulate(model, 4, frames, dut=dut, memory="spram", feed_gap=0.2,
                      score_stall=0.3)
    mismatch = _first_mismatch(model, result, frames)
    assert mismatch is None, mismatch


@pytest.mark.parametrize("width", [4, 16])
def test_spram_weight_memory_of_one_word(width):
    """A network of one weight word: one ``load`` word sets ``loaded`` (the memory's read
    depth of two words must not make it wait for a second)."""
    from amaranth.sim import Simulator

    from kwshw.hw.memories import WeightMemory

    dut = WeightMemory([5], width, "spram")
    assert dut.load_depth == 1

    async def testbench(ctx):
        ctx.set(dut.load.valid, 1)
        ctx.set(dut.load.payload, 5)
        await ctx.tick()
        ctx.set(dut.load.valid, 0)
        assert ctx.get(dut.loaded) == 1
        ctx.set(dut.addr, 0)
        await ctx.tick().repeat(WeightMemory.LATENCY)
        assert ctx.get(dut.data) == 5

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_clear_restarts_from_zero_window():
    """Frames A, all scores read, clear; then frames C with a clear in the middle of an
    inference of frame B: only C's scores come out, as from reset."""
    cfg = FeatureConfig(n_mels=4, context=3, stride=1)
    model, frames = _random_case([5], 3, cfg, 4, seed=5, frames=10)
    a, b, c = frames[:4], frames[4:5], frames[5:]
    dut = Accelerator(model, 2)
    scores = simulate_clears(dut, a, b, c, interrupt_after=20)  # frame B is being computed
    plans = model.plans()
    want_a = golden.run_network(plans, golden.stream_windows(a, 3, 1))[-1].y
    want_c = golden.run_network(plans, golden.stream_windows(c, 3, 1))[-1].y
    assert scores == [int(v) for v in np.concatenate([want_a.ravel(), want_c.ravel()])]


def test_invalid_parameters_rejected():
    cfg = FeatureConfig(n_mels=3, context=2, stride=1)
    model, _ = _random_case([4], 2, cfg, 4, seed=1)
    for lanes in (0, 3, 6, -4, 2.0, True):
        with pytest.raises(ValueError, match="lanes"):
            Accelerator(model, lanes)
    with pytest.raises(ValueError, match="memory"):
        Accelerator(model, 2, memory="dram")
    model.bits = 12
    with pytest.raises(ValueError, match="b=12"):
        Accelerator(model, 2)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_bit_exact(seed):
    """Random shapes, code widths and lane counts, with inputs at the extremes of the input
    format (the widest layer-0 range), constant frames and random stalls."""
    rng = np.random.default_rng(100 + seed)
    cfg = FeatureConfig(n_mels=int(rng.integers(1, 6)), context=int(rng.integers(1, 4)),
                        stride=int(rng.integers(1, 4)))
    bits = int(rng.choice([2, 3, 4, 5, 8]))
    lanes = int(rng.choice([1, 2, 4, 8]))
    hidden = [int(h) for h in rng.integers(1, 12, int(rng.integers(0, 3)))]
    n_out = int(rng.integers(1, 10))
    f = rng.normal(0, 1, (10, cfg.n_mels))
    windows = stack_windows(f.astype(np.float32), cfg)
    model = random_model_for_windows(hidden, bits, n_out, cfg, windows, seed=seed,
                                     constant_column=seed % 2 == 0)
    frames = int_frames(f, model.in_frac)
    frames[3] = 32767
    frames[4, ::2] = -32768
    frames[5:7] = 1234
    dut = Accelerator(model, lanes, trace=True)
    result = simulate(model, lanes, frames, dut=dut, seed=seed, feed_gap=0.2, score_stall=0.3)
    mismatch = _first_mismatch(model, result, frames)
    assert mismatch is None, f"{mismatch} (shape {model.shape}, b={bits}, P={lanes})"
