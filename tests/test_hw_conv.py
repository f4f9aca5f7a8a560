# amaranth: UnusedElaboratable=no
"""Convolutional networks on the accelerator: every layer output of every hop equal to the
streaming schedule (:func:`kwshw.streaming.stream_network`, itself equal to the golden window
model), from reset and after ``clear``, with random input gaps and score back-pressure; the
cycles per hop equal to :attr:`FrameSchedule.cycles_per_frame`."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from kwshw import golden, streaming
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from kwshw.hw.accelerator import Accelerator, frame_schedule, memory_bits
from kwshw.hw.common import check_plans
from sim.stimulus import random_model


def stream_layers(plans, frames: np.ndarray, hop_stride: int) -> list[np.ndarray]:
    """Every layer's output per hop in the streaming schedule (a convolution: its newest
    position), computed as :func:`kwshw.streaming.stream_network` does."""
    timing = streaming.layer_timing(plans, hop_stride)
    n_conv = sum(t is not None for t in timing)
    histories = streaming._initial_histories(plans, timing, n_conv)
    outs: list[list[np.ndarray]] = [[] for _ in plans]
    for frame in np.asarray(frames, np.int64):
        streaming._push(histories, 0, frame)
        for k in range(n_conv):
            patch = histories[k][-1 - timing[k].taps].reshape(-1)
            y = golden.run_layer(plans[k], patch[None, :]).y[0]
            outs[k].append(y)
            streaming._push(histories, k + 1, y)
        x = histories[n_conv][-1 - timing[n_conv - 1].window_ages].reshape(-1)
        for k in range(n_conv, len(plans)):
            x = golden.run_layer(plans[k], x[None, :]).y[0]
            outs[k].append(x)
    layers = [np.array(o) for o in outs]
    np.testing.assert_array_equal(layers[-1], streaming.stream_network(plans, frames,
                                                                       hop_stride))
    return layers


def _frames(rng, hops: int, n_mels: int, scale: int) -> np.ndarray:
    """Random frames with extremes, a constant stretch and zeros (constant patches)."""
    f = np.clip(np.round(rng.standard_normal((hops, n_mels)) * scale), ACT_MIN, ACT_MAX)
    f[2] = ACT_MAX
    f[3, ::2] = ACT_MIN
    f[5:8] = 1234
    f[-3:] = 0
    return f.astype(np.int64)


def _case(seed: int):
    """A random small convolutional model (1-2 convolutions, strides that leave offsets),
    its frames, the lanes and the stalls."""
    rng = np.random.default_rng(300 + seed)
    cfg = FeatureConfig(n_mels=int(rng.integers(1, 5)), context=int(rng.integers(4, 10)),
                        stride=int(rng.integers(1, 3)))
    convs, positions = [], cfg.context
    for _ in range(int(rng.integers(1, 3))):
        if positions < 2:
            break
        k = int(rng.integers(1, min(positions, 4) + 1))
        s = int(rng.integers(1, 4))
        convs.append((k, s, int(rng.integers(1, 6))))
        positions = (positions - k) // s + 1
    bits = int(rng.choice([2, 3, 4, 5, 8]))
    lanes = int(rng.choice([1, 2, 4, 8]))
    hidden = [int(h) for h in rng.integers(1, 8, int(rng.integers(0, 2)))]
    model = random_model(hidden, bits, n_out=int(rng.integers(1, 6)), features=cfg,
                         convs=convs, seed=seed, constant_column=seed % 2 == 0)
    frames = _frames(rng, 14, cfg.n_mels, 4096)
    return model, frames, lanes


def _run_and_check(model, frames, lanes, *, feed_gap=0.0, score_stall=0.0, seed=0):
    from sim.pysim import simulate

    dut = Accelerator(model, lanes, trace=True)
    result = simulate(model, lanes, frames, dut=dut, seed=seed, feed_gap=feed_gap,
                      score_stall=score_stall)
    want = stream_layers(model.plans(), frames, model.features.stride)
    for k, w in enumerate(want):
        bad = np.argwhere(result.layers[k] != w)
        assert not len(bad), (f"layer {k} hop {bad[0][0]} column {bad[0][1]}: hardware "
                              f"{result.layers[k][tuple(bad[0])]}, streaming "
                              f"{w[tuple(bad[0])]} ({len(bad)} mismatches)")
    np.testing.assert_array_equal(result.scores, want[-1])
    return dut, result


@pytest.mark.parametrize("seed", range(8))
def test_random_conv_networks_bit_exact(seed):
    model, frames, lanes = _case(seed)
    stalls = seed % 2 == 1
    dut, result = _run_and_check(model, frames, lanes, seed=seed,
                                 feed_gap=0.3 if stalls else 0.0,
                                 score_stall=0.5 if stalls else 0.0)
    if not stalls:
        assert set(result.periods) == {dut.cycles_per_frame}, (result.periods,
                                                               dut.cycles_per_frame)
