"""New positions only: the streaming schedule equals the window definition on every hop.

A streaming accelerator computes, per hop, one new output position per convolution and keeps
the rest in histories that start in the rest state (:mod:`kwshw.streaming`). That is only an
optimization if it gives exactly the integers of recomputing the whole window at every hop
(:func:`kwshw.golden.run_network` on :func:`kwshw.golden.stream_windows`), from reset: the
rest state stands for the zero frames before the first hop.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwshw import golden, streaming
from kwshw.features import FeatureConfig
from sim.stimulus import adversarial_frames, random_frames, random_model

# (convs, window): strides that leave an offset ((P - K) % S != 0) included.
CASES = [
    ([(3, 1, 6)], FeatureConfig(n_mels=8, context=7, stride=2)),
    ([(3, 2, 6), (2, 1, 5)], FeatureConfig(n_mels=8, context=9, stride=3)),
    ([(4, 3, 4), (2, 2, 6)], FeatureConfig(n_mels=6, context=14, stride=1)),
    ([(1, 1, 5), (5, 2, 4), (2, 1, 3)], FeatureConfig(n_mels=5, context=12, stride=2)),
]


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_stream_equals_window_on_every_hop(case, bits):
    convs, features = CASES[case]
    model = random_model([7], bits, n_out=4, features=features, convs=convs, seed=case)
    frames = np.concatenate([random_frames(60, features.n_mels, seed=case, scale=3000),
                             adversarial_frames(features.n_mels, seed=case)])
    plans = model.plans()
    want = golden.run_network(
        plans, golden.stream_windows(frames, features.context, features.stride))[-1].y
    got = streaming.stream_network(plans, frames, features.stride)
    np.testing.assert_array_equal(got, want)


def test_rest_vectors_are_the_layers_on_a_zero_past():
    convs, features = CASES[1]
    model = random_model([7], 4, n_out=4, features=features, convs=convs, seed=9)
    plans = model.plans()
    window = golden.stream_windows(np.zeros((1, features.n_mels), np.int64), features.context,
                                   features.stride)
    traces = golden.run_network(plans, window)
    for k, rest in enumerate(streaming.rest_vectors(plans)[:2]):
        # Every position of an all-zero window is the rest vector.
        assert np.all(traces[k].y[0] == rest[None, :])


def test_macs_per_hop_counts_new_positions_only():
    convs, features = CASES[1]
    model = random_model([7], 4, n_out=4, features=features, convs=convs, seed=2)
    plans = model.plans()
    m = streaming.macs_per_hop(plans)
    assert m["window"] == model.macs()
    # conv 0: 4 positions of 3*8 x 6, conv 1: 3 positions of 2*6 x 5, dense 15x7, 7x4.
    assert m["window"] == 4 * 24 * 6 + 3 * 12 * 5 + 15 * 7 + 7 * 4
    assert m["stream"] == 24 * 6 + 12 * 5 + 15 * 7 + 7 * 4


def test_a_convolution_after_a_dense_layer_cannot_stream():
    convs, features = CASES[0]
    model = random_model([7], 4, n_out=4, features=features, convs=convs, seed=1)
    plans = model.plans()
    with pytest.raises(ValueError, match="before the dense"):
        streaming.stream_network([plans[1], plans[0]], np.zeros((2, 8), np.int64), 2)


def _random_config(rng):
    n_conv = int(rng.integers(1, 4))
    features = FeatureConfig(n_mels=int(rng.integers(2, 9)), context=int(rng.integers(6, 16)),
                             stride=int(rng.integers(1, 4)))
    convs, positions = [], features.context
    for _ in range(n_conv):
        k = int(rng.integers(1, min(positions, 5) + 1))
        s = int(rng.integers(1, 4))
        convs.append((k, s, int(rng.integers(1, 9))))
        positions = (positions - k) // s + 1
    return convs, features, int(rng.integers(2, 9))


@pytest.mark.parametrize("seed", range(24))
def test_random_convolutional_networks(seed):
    """24 random shapes (1-3 convolutions, kernels, strides, channels, windows, 2..8 bits):
    widths hold, the streaming schedule equals the window definition, and the torch integer
    network equals the golden model, on random and adversarial frames."""
    rng = np.random.default_rng(seed)
    convs, features, bits = _random_config(rng)
    model = random_model([int(rng.integers(1, 9))], bits, n_out=3, features=features,
                         convs=convs, seed=seed, constant_column=bool(seed % 2))
    frames = np.concatenate([random_frames(40, features.n_mels, seed=seed, scale=3000),
                             adversarial_frames(features.n_mels, seed=seed)])
    plans = model.plans()
    windows = golden.stream_windows(frames, features.context, features.stride)
    traces = golden.run_network(plans, windows, check_widths=True)
    np.testing.assert_array_equal(streaming.stream_network(plans, frames, features.stride),
                                  traces[-1].y)
    torch = pytest.importorskip("torch")
    from kwshw.train.exact import IntegerNet

    got = IntegerNet(model).traces(torch.from_numpy(windows))
    for g, w in zip(got, traces, strict=True):
        for name in ("xlo", "rm", "p", "acc", "y"):
            np.testing.assert_array_equal(g[name].numpy(), getattr(w, name), err_msg=name)
