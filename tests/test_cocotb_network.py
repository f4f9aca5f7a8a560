"""The whole accelerator as generated Verilog, in Icarus and Verilator, against the golden model.

Every score and every layer output (trace port) of every frame is compared exactly with
:func:`kwshw.golden.run_network`. Models: random weights calibrated on real LFBE features
(until a trained model exists) on a reduced window (40 bands x 4 frames), 4-bit and 8-bit.
The reference-size network runs in the ``slow`` tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from boards.refmodel import REFERENCE_SHAPE
from sim import stimulus, toolchain
from sim.network import SimResult, SimSettings, build_design, run_network_sim, run_scenario

_no_data = pytest.mark.skipif(stimulus.data_dir() is None,
                              reason="no speech data ($KWSHW_DATA)")


def needs_data(f):
    return pytest.mark.data(_no_data(f))


needs_verilator = pytest.mark.skipif(not toolchain.have_simulator("verilator"),
                                     reason="Verilator not installed")
needs_icarus = pytest.mark.skipif(not toolchain.have_simulator("icarus"),
                                  reason="Icarus Verilog not installed")

N_REAL = 200


@pytest.fixture(scope="module")
def calib():
    """LFBE frames for normalization and calibration (other recordings than the test's)."""
    if stimulus.data_dir() is None:
        return None
    lf, _ = stimulus.real_lfbe(400, stimulus.SMALL_FEATURES, seed=1001)
    return lf


@pytest.fixture(scope="module")
def test_lfbe():
    if stimulus.data_dir() is None:
        pytest.skip("no speech data ($KWSHW_DATA)")
    lf, files = stimulus.real_lfbe(2000, stimulus.SMALL_FEATURES, seed=7)
    return lf


@pytest.fixture(scope="module")
def models(calib):
    return {
        4: stimulus.random_model([32, 16], 4, calib=calib, seed=4),
        8: stimulus.random_model([32, 16], 8, calib=calib, seed=8),
    }


LANES = {4: 4, 8: 8}


def _assert_clean(res: SimResult) -> None:
    assert res.mismatches == 0 and res.ok, (
        f"{res.mismatches} mismatches; first: {res.first_mismatch_text}; "
        f"waves: {res.wave}; log: {res.log}")


@needs_data
@pytest.mark.parametrize("simulator,bits", [
    pytest.param("icarus", 4, marks=needs_icarus),
    pytest.param("verilator", 8, marks=needs_verilator),
    # Slow: each simulator and each width is covered once above (40 s each).
    pytest.param("icarus", 8, marks=[needs_icarus, pytest.mark.slow]),
    pytest.param("verilator", 4, marks=[needs_verilator, pytest.mark.slow]),
])
def test_real_frames(models, test_lfbe, simulator, bits):
    """200 real speech frames, every output exact; Icarus also checks the cycle count."""
    model = models[bits]
    frames = stimulus.real_frames(model, test_lfbe[:N_REAL])
    jitter = 0.2 if simulator == "verilator" else 0.0
    res = run_network_sim(model, SimSettings(lanes=LANES[bits], simulator=simulator, seed=bits,
                                             gap_prob=jitter, stall_prob=jitter),
                          frames=frames)
    _assert_clean(res)
    assert res.frames_checked == N_REAL
    assert res.values_checked == N_REAL * sum(model.shape[1:]) * 1 + N_REAL * model.shape[-1]
    if not jitter:
        # Frames pending back to back: the period is the sequencer's exact schedule.
        assert res.cycles_per_frame == res.expected_cycles_per_frame
        assert res.cycles_per_frame_min is not None
        assert res.cycles_per_frame_min == res.cycles_per_frame_max
    print(f"\n{simulator} {bits}-bit lanes={LANES[bits]}: {res.frames} frames, "
          f"{res.frames_per_second} frames/s, {res.cycles_per_frame} cycles/frame")


@pytest.mark.parametrize("simulator,bits", [
    pytest.param("icarus", 4, marks=needs_icarus),
    pytest.param("verilator", 8, marks=needs_verilator),
    pytest.param("verilator", 4, marks=needs_verilator),
])
def test_adversarial_frames(models, simulator, bits):
    """Constant windows (R = 0), extremes, alternating extremes, spikes, random full range,
    under random input gaps and score back-pressure."""
    model = models[bits]
    n_mels = model.features.n_mels
    frames = np.concatenate([stimulus.adversarial_frames(n_mels, seed=bits),
                             stimulus.random_frames(20, n_mels, seed=bits)])
    res = run_network_sim(model, SimSettings(lanes=LANES[bits], simulator=simulator, seed=11,
                                             gap_prob=0.3, stall_prob=0.4),
                          frames=frames)
    _assert_clean(res)
    assert res.frames_checked == len(frames)


def _interrupt_ops(frames: np.ndarray, n_mels: int, n_out: int, cpf: int) -> list[dict]:
    """A stream cut by every kind of interruption, each followed by frames to check."""
    it = iter(range(len(frames)))

    def take(n):
        return [frames[next(it)] for _ in range(n)]

    return [
        {"op": "frames", "frames": take(5)},
        # clear in the middle of feeding a frame
        {"op": "interrupt", "kind": "clear", "partial": take(1)[0][:17].tolist()},
        {"op": "frames", "frames": take(6)},
        # rst (3 cycles) in the middle of computing a frame
        {"op": "interrupt", "kind": "rst", "partial": take(1)[0].tolist(), "delay": cpf // 2,
         "hold": 3},
        {"op": "frames", "frames": take(4)},
        # clear while a frame's scores are half read (and the next frame pending)
        {"op": "interrupt", "kind": "clear", "partial": take(1)[0].tolist(),
         "after_scores": 4 * n_out + n_out // 2},
        {"op": "frames", "frames": take(5)},
        # rst in the middle of feeding a frame
        {"op": "interrupt", "kind": "rst", "partial": take(1)[0][:n_mels - 1].tolist(),
         "hold": 1},
        {"op": "frames", "frames": take(3)},
        # clear just after the last value of a frame (inference about to start)
        {"op": "interrupt", "kind": "clear", "partial": take(1)[0].tolist(), "delay": 1},
        {"op": "frames", "frames": take(2)},
        # clear with one frame computing and the next pending
        {"op": "interrupt", "kind": "clear", "partial": take(1)[0].tolist(), "delay": 3},
        {"op": "frames", "frames": take(8)},
    ]


@needs_data
@pytest.mark.parametrize("simulator", [
    pytest.param("icarus", marks=needs_icarus),
    pytest.param("verilator", marks=needs_verilator),
])
def test_reset_and_clear_mid_frame(models, test_lfbe, simulator):
    """rst and clear in the middle of a frame (feeding, computing, reading scores): every
    output before is right, and the stream after restarts from an all-zero window."""
    model = models[4]
    frames = stimulus.real_frames(model, test_lfbe[200:260])
    design = build_design(model, LANES[4])
    ops = _interrupt_ops(frames, model.features.n_mels, model.shape[-1],
                         design.cycles_per_frame)
    res = run_scenario(model, ops, SimSettings(lanes=LANES[4], simulator=simulator, seed=3,
                                               gap_prob=0.2, stall_prob=0.3),
                       design=design)
    _assert_clean(res)
    assert res.segments == 7
    # An interrupt may cut the one or two frames in flight (their outputs are dropped by
    # design); every other frame, and all of the last segment, were checked.
    total = sum(len(op.get("frames", [])) for op in ops) + sum(
        len(op.get("partial", [])) == model.features.n_mels for op in ops)
    assert res.frames == total
    assert res.frames_checked >= total - 2 * 6


@needs_data
@needs_verilator
def test_long_stream(models, test_lfbe):
    """A long stream with random gaps and back-pressure: no frame lost or duplicated."""
    model = models[8]
    n = 1500
    frames = stimulus.real_frames(model, test_lfbe[:n])
    res = run_network_sim(model, SimSettings(lanes=LANES[8], simulator="verilator", seed=5,
                                             gap_prob=0.3, stall_prob=0.5),
                          frames=frames)
    _assert_clean(res)
    assert res.frames_checked == n


# --- Reference-size network (slow) -----------------------------------------------------------

@pytest.fixture(scope="module")
def reference_models():
    from kwshw.features import FeatureConfig

    feats = FeatureConfig()          # 40 bands x 25 frames, stride 4: 1000 inputs
    if stimulus.data_dir() is None:
        pytest.skip("no speech data ($KWSHW_DATA)")
    calib, _ = stimulus.real_lfbe(600, feats, seed=1001)
    lf, _ = stimulus.real_lfbe(220, feats, seed=7)
    return feats, lf, {b: stimulus.random_model(list(REFERENCE_SHAPE[1:-1]), b, features=feats,
                                                calib=calib, seed=b) for b in (4, 8)}


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("simulator,bits,n", [
    pytest.param("verilator", 4, 220, marks=needs_verilator),
    pytest.param("verilator", 8, 220, marks=needs_verilator),
    pytest.param("icarus", 4, 20, marks=needs_icarus),
])
def test_reference_network(reference_models, simulator, bits, n):
    """The reference shape (``boards.refmodel.REFERENCE_SHAPE``) on 8 lanes."""
    _, lf, models = reference_models
    model = models[bits]
    res = run_network_sim(model, SimSettings(lanes=8, simulator=simulator, seed=bits),
                          frames=stimulus.real_frames(model, lf[:n]))
    _assert_clean(res)
    assert res.frames_checked == n
    assert res.cycles_per_frame == res.expected_cycles_per_frame


@needs_icarus
def test_relative_build_folder(models, tmp_path, monkeypatch):
    """A relative output folder (``kwshw all``'s default ``out``) works: the simulator runs in
    its own folder, so every path handed to it must be absolute."""
    monkeypatch.chdir(tmp_path)
    model = models[4]
    rng = np.random.default_rng(11)
    frames = rng.integers(-2**11, 2**11, (4, model.features.n_mels))
    res = run_network_sim(model, SimSettings(lanes=4, simulator="icarus", seed=3,
                                             build_dir="out/sim"),
                          frames=frames)
    _assert_clean(res)
    assert (tmp_path / "out" / "sim").is_dir()
    # The JSON form (``kwshw sim --json``, ``kwshw all``'s summary) keeps its keys and order;
    # the optional ones only when set.
    d = res.to_dict()
    assert list(d) == [*RESULT_KEYS, "cycles_per_frame_min", "cycles_per_frame_max",
                       "frames_source"]
    assert d["frames_source"] == "given frames" and d["frames"] == 4
    json.dumps(d)


RESULT_KEYS = [
    "ok", "simulator", "lanes", "bits", "shape", "seed", "frames", "frames_checked",
    "values_checked", "mismatches", "first_mismatch", "first_mismatch_text",
    "per_layer_mismatches", "score_mismatches", "stalled", "segments", "cycles_per_frame",
    "first_frame_latency", "expected_cycles_per_frame", "ideal_cycles_per_frame",
    "simulated_cycles", "sim_seconds", "sim_total_seconds", "build_seconds",
    "frames_per_second", "wave", "log", "build_dir", "verilog", "notes", "netlist"]


@needs_icarus
def test_sim_command_json(tmp_path, capsys):
    """``kwshw sim --json`` prints the result's JSON form; the exit status is its ``ok``."""
    from kwshw.app import cli
    from kwshw.features import FeatureConfig
    from kwshw.modelfile import save

    model = stimulus.random_model([8], 4, features=FeatureConfig(n_mels=40, context=2,
                                                                   stride=3), seed=5)
    save(model, tmp_path / "m.kwm")
    assert cli.main(["sim", "--model", str(tmp_path / "m.kwm"), "-P", "4", "--frames", "5",
                     "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d)[:len(RESULT_KEYS)] == RESULT_KEYS and "frames_source" in d
    assert d["ok"] and d["frames_checked"] == 5 and d["lanes"] == 4


@needs_icarus
@pytest.mark.slow
def test_conv_network_icarus_matches_streaming():
    """A small convolutional network (two convolutions, the second with a stride that leaves
    an offset, then dense layers) in the generated Verilog under Icarus, with input gaps and
    score stalls: every layer output equals the streaming schedule, the cycles the formula."""
    from kwshw.features import FeatureConfig

    cfg = FeatureConfig(n_mels=3, context=8, stride=1)
    model = stimulus.random_model([4], 4, n_out=3, features=cfg, convs=[(3, 1, 3), (2, 2, 2)],
                                  seed=7)
    rng = np.random.default_rng(7)
    f = np.clip(np.round(rng.standard_normal((24, 3)) * 4096), -32768, 32767).astype(np.int64)
    f[2] = 32767
    f[3, ::2] = -32768
    f[5:8] = 1234
    f[-3:] = 0
    res = run_network_sim(model, SimSettings(lanes=2, gap_prob=0.2, stall_prob=0.3, seed=1),
                          frames=f)
    assert res.ok, res.first_mismatch_text
    assert res.mismatches == 0 and res.values_checked == 24 * 15
    assert res.cycles_per_frame == res.expected_cycles_per_frame


@needs_data
@needs_verilator
# 8-bit is slow (35 s): the 8-bit convolutions run on speech in test_gate_level_convolutions.
@pytest.mark.parametrize("bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_conv_network_real_frames_verilator(calib, test_lfbe, bits):
    """A convolutional network (two convolutions, kernels stored once) on 200 real speech
    frames in Verilator, with input gaps and score stalls: every layer's every output equals
    the streaming schedule of the golden model."""
    model = stimulus.random_model([12], bits, calib=calib, seed=40 + bits,
                                  convs=[(2, 1, 16), (2, 1, 8)])
    frames = stimulus.real_frames(model, test_lfbe[:N_REAL])
    res = run_network_sim(model, SimSettings(lanes=LANES[bits], simulator="verilator",
                                             seed=bits, gap_prob=0.2, stall_prob=0.2),
                          frames=frames)
    _assert_clean(res)
    assert res.frames_checked == N_REAL
    assert res.values_checked == N_REAL * (16 + 8 + 12 + 12 + 12)
