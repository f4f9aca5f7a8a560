# amaranth: UnusedElaboratable=no
"""Convolutional networks on the accelerator: every layer output of every hop equal to the
streaming schedule (:func:`kwshw.streaming.stream_network`, itself equal to the golden window
model), from reset and after ``clear``, with random input gaps and score back-pressure; the
cycles per hop equal to :attr:`FrameSchedule.cycles_per_frame`."""

from __future__ import annotations

import numpy as np
import pytest

from kwshw import golden, streaming
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from kwshw.hw.accelerator import Accelerator, frame_schedule, memory_bits
from kwshw.hw.common import check_plans
from kwshw.hw.convs import history_memories
from kwshw.hw.history import spram_groups
from sim.pysim import simulate, simulate_clears
from sim.stimulus import random_model


def stream_layers(plans, frames: np.ndarray, hop_stride: int) -> list[np.ndarray]:
    """Every layer's output per hop in the streaming schedule (a convolution: its newest
    position); the dense layers' equal the golden window model's."""
    layers = streaming.stream_layers(plans, frames, hop_stride)
    np.testing.assert_array_equal(layers[-1], streaming.stream_network(plans, frames,
                                                                       hop_stride))
    n_conv = sum(p.conv is not None for p in plans)
    context = plans[0].in_geometry.positions
    windows = golden.stream_windows(frames, context, hop_stride)
    traces = golden.run_network(plans, windows)
    for k in range(n_conv, len(plans)):
        np.testing.assert_array_equal(layers[k], traces[k].y)
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


MEMORIES = pytest.mark.parametrize("memory", ["bram", "spram"])


def _run_and_check(model, frames, lanes, *, feed_gap=0.0, score_stall=0.0, seed=0,
                   memory="bram"):
    # SPRAM for every history (wide weight words may take all of a real UP5K's 4 blocks).
    dut = Accelerator(model, lanes, memory=memory, trace=True, spram_blocks=16)
    assert dut.history_memories == (memory,) * len(dut.history_specs)
    result = simulate(model, lanes, frames, dut=dut, seed=seed, feed_gap=feed_gap,
                      score_stall=score_stall, memory=memory)
    want = stream_layers(model.plans(), frames, model.features.stride)
    for k, w in enumerate(want):
        bad = np.argwhere(result.layers[k] != w)
        assert not len(bad), (f"layer {k} hop {bad[0][0]} column {bad[0][1]}: hardware "
                              f"{result.layers[k][tuple(bad[0])]}, streaming "
                              f"{w[tuple(bad[0])]} ({len(bad)} mismatches)")
    np.testing.assert_array_equal(result.scores, want[-1])
    return dut, result


@MEMORIES
@pytest.mark.parametrize("seed", range(8))
def test_random_conv_networks_bit_exact(seed, memory):
    model, frames, lanes = _case(seed)
    stalls = seed % 2 == 1
    dut, result = _run_and_check(model, frames, lanes, seed=seed,
                                 feed_gap=0.3 if stalls else 0.0,
                                 score_stall=0.5 if stalls else 0.0, memory=memory)
    if not stalls:
        assert set(result.periods) == {dut.cycles_per_frame}, (result.periods,
                                                               dut.cycles_per_frame)


# (features, convs, hidden, n_out, bits, lanes): strides that leave offsets (window ages whose
# newest is older than 0), single-position outputs, K = 1, three convolutions, n_in < P.
SHAPES = [
    (FeatureConfig(n_mels=3, context=7, stride=1), [(3, 2, 4)], [5], 3, 4, 2),
    (FeatureConfig(n_mels=2, context=9, stride=2), [(2, 3, 3), (2, 1, 2)], [], 4, 2, 8),
    (FeatureConfig(n_mels=4, context=6, stride=1), [(1, 1, 3), (3, 2, 5)], [6], 2, 8, 4),
    (FeatureConfig(n_mels=1, context=12, stride=1), [(3, 1, 2), (2, 2, 3), (2, 2, 2)], [4],
     3, 5, 1),
    (FeatureConfig(n_mels=5, context=5, stride=3), [(5, 1, 9)], [], 6, 3, 4),
]


@MEMORIES
@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_conv_shapes_bit_exact_and_cycles(case, memory):
    cfg, convs, hidden, n_out, bits, lanes = SHAPES[case]
    model = random_model(hidden, bits, n_out=n_out, features=cfg, convs=convs, seed=case,
                         constant_column=case % 2 == 1)
    frames = _frames(np.random.default_rng(case), 12 + cfg.span, cfg.n_mels, 8192)
    dut, result = _run_and_check(model, frames, lanes, seed=case, memory=memory)
    assert set(result.periods) == {dut.cycles_per_frame}
    from kwshw.generate import accelerator_cycles
    assert accelerator_cycles(model, lanes) == dut.cycles_per_frame
    assert frame_schedule(model, lanes).cycles_per_frame == dut.cycles_per_frame


@MEMORIES
@pytest.mark.parametrize("case", [0, 3])
def test_conv_stalls_bit_exact(case, memory):
    cfg, convs, hidden, n_out, bits, lanes = SHAPES[case]
    model = random_model(hidden, bits, n_out=n_out, features=cfg, convs=convs, seed=case)
    frames = _frames(np.random.default_rng(10 + case), 10 + cfg.span, cfg.n_mels, 8192)
    _run_and_check(model, frames, lanes, seed=case, feed_gap=0.4, score_stall=0.7,
                   memory=memory)


def test_conv_clear_restarts_from_rest():
    """Frames A, all scores read, clear; then frames C with a clear in the middle of the
    inference of frame B: only C's scores come out, each as from reset (the histories read
    their rest vectors again)."""
    cfg = FeatureConfig(n_mels=3, context=8, stride=1)
    model = random_model([4], 4, n_out=3, features=cfg, convs=[(3, 1, 3), (2, 2, 2)], seed=7)
    frames = _frames(np.random.default_rng(7), 22, cfg.n_mels, 4096)
    a, b, c = frames[:9], frames[9:10], frames[10:]
    dut = Accelerator(model, 2)
    scores = simulate_clears(dut, a, b, c, interrupt_after=dut.cycles_per_frame // 2)
    plans = model.plans()
    want = [streaming.stream_network(plans, x, cfg.stride) for x in (a, c)]
    assert scores == [int(v) for v in np.concatenate([w.ravel() for w in want])]
    # The window model from an all-zero past agrees (stream_network's own contract).
    win = golden.run_network(plans, golden.stream_windows(c, cfg.context, cfg.stride))[-1].y
    np.testing.assert_array_equal(want[1], win)


def test_conv_memory_bits():
    cfg, convs, hidden, n_out, bits, lanes = SHAPES[3]
    model = random_model(hidden, bits, n_out=n_out, features=cfg, convs=convs, seed=0)
    dut = Accelerator(model, lanes)
    mem = memory_bits(model, lanes)
    assert mem == dut.memory_bits()
    # Every history's entries and a min/max pair per entry; the rest vectors one row each
    # of the widest history's power of two.
    specs = dut.history_specs
    rest_words = len(specs) * 2 ** (max(s.channels for s in specs) - 1).bit_length()
    assert mem["histories"] == (sum(s.depth * (s.channels + 2) for s in specs)
                                + rest_words) * 16
    assert len(dut.history_specs) == 3
    # The window holds the first convolution's patch only: K_0 = 3 frames and a spare slot.
    assert mem["window"] == (3 + 1) * (cfg.n_mels + 2) * 16
    assert mem["activations"] == 2 * 4 * 16          # the one dense hidden layer
    assert mem["weights"] == frame_schedule(model, lanes).reads * lanes * bits


def test_convolution_after_dense_layer_refused():
    cfg = FeatureConfig(n_mels=2, context=6, stride=1)
    conv = random_model([3], 4, n_out=2, features=cfg, convs=[(2, 1, 3)], seed=1).plans()
    dense = random_model([3], 4, n_out=2, features=cfg, seed=1).plans()
    with pytest.raises(ValueError, match="layer 1 is a temporal convolution after the dense"):
        check_plans([dense[0], conv[0]])
    with pytest.raises(ValueError, match="needs a dense layer after the convolutions"):
        check_plans(conv[:1])


def test_conv_spram_weights_loaded_through_load_port():
    cfg, convs, hidden, n_out, bits, lanes = SHAPES[2]
    model = random_model(hidden, bits, n_out=n_out, features=cfg, convs=convs, seed=2)
    frames = _frames(np.random.default_rng(2), 12, cfg.n_mels, 8192)
    from sim.pysim import simulate

    dut = Accelerator(model, lanes, memory="spram", trace=True)
    result = simulate(model, lanes, frames, dut=dut, memory="spram", feed_gap=0.2,
                      score_stall=0.3, seed=2)
    want = stream_layers(model.plans(), frames, cfg.stride)
    for k, w in enumerate(want):
        np.testing.assert_array_equal(result.layers[k], w, err_msg=f"layer {k}")


def test_history_memories_largest_first_into_spare_spram():
    """SPRAM builds put the largest histories into the SPRAM blocks the weights leave, those
    of one parity sharing a block: three histories take two."""
    cfg, convs, hidden, n_out, bits, lanes = SHAPES[3]
    model = random_model(hidden, bits, n_out=n_out, features=cfg, convs=convs, seed=0)
    dut = Accelerator(model, lanes, memory="spram")
    specs = dut.history_specs
    assert dut.weight_spram_blocks == 1 and dut.history_memories == ("spram",) * 3
    assert spram_groups(dut.history_memories) == [[0, 2], [1]]
    assert history_memories(specs, "spram", 2) == ("spram",) * 3
    assert history_memories(specs, "bram", 4) == ("bram",) * 3
    assert Accelerator(model, lanes, memory="spram", spram_blocks=1).history_memories == \
        ("bram",) * 3
    # One block: the largest history (the third, 14 words) and the one of its parity.
    assert [s.values for s in specs] == [4, 9, 14]
    assert history_memories(specs, "spram", 1) == ("spram", "bram", "spram")


def test_dense_network_builds_no_history():
    """A dense network: no histories, no sequencer port for them, the feature window."""
    cfg = FeatureConfig(n_mels=3, context=4, stride=2)
    model = random_model([5], 4, n_out=3, features=cfg, seed=0)
    dut = Accelerator(model, 2)
    assert dut.n_conv == 0 and dut.history_specs == []
    assert dut.window_features == cfg
    assert "histories" not in memory_bits(model, 2)
    assert frame_schedule(model, 2).history_waits == ()
    from kwshw.hw.sequencer import Sequencer
    assert "hist_valid" not in Sequencer(dut.schedule.layers, 2).signature.members


@pytest.mark.parametrize("seed", range(4))
def test_sequencer_kind_follows_the_layer(seed):
    """``Sequencer.kind`` is a register of its own: it must say what ``layer`` reads and
    writes in every cycle of a frame, across frames and after a reset."""
    from amaranth.sim import Simulator

    from kwshw.hw.sequencer import Sequencer

    model, _, lanes = _case(seed)
    dut = Accelerator(model, lanes)
    n_conv, last = dut.n_conv, len(dut.schedule.layers) - 1
    seq = Sequencer(dut.schedule.layers, lanes, histories=n_conv)
    seen = set()

    def want(layer: int) -> dict[str, int]:
        return {"first": int(layer == 0), "reads_history": int(1 <= layer <= n_conv),
                "writes_history": int(layer < n_conv), "last": int(layer == last)}

    async def bench(ctx):
        for name in ("frame_valid", "mm_done", "div_done", "out_room", "hist_valid"):
            if hasattr(seq, name):
                ctx.set(getattr(seq, name), 1)
        drained = 0
        for cycle in range(4000):
            layer = ctx.get(seq.layer)
            got = {f: ctx.get(getattr(seq.kind, f)) for f in want(layer)}
            assert got == want(layer), (cycle, layer, got)
            seen.add(layer)
            # The scaler's last column a few cycles into every DRAIN.
            drained = drained + 1 if ctx.get(seq.busy) and not ctx.get(seq.issue.valid) else 0
            ctx.set(seq.layer_done, drained == 3)
            await ctx.tick()

    sim = Simulator(seq)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == set(range(last + 1))
