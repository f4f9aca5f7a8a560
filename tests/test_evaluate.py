"""Evaluation: metrics on hand-made cases, the detection rule, run modes, footprints, and
whole evaluations on tiny synthetic corpora (no real data, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from kwshw import evaluate as ev
from kwshw import golden, modelfile, quantize
from kwshw.datasets import SPEECH_COMMANDS_KEYWORDS, DatasetError
from kwshw.features import FeatureConfig

# --- metrics ------------------------------------------------------------------------------------


def test_accuracy_and_confusion():
    y = [0, 0, 1, 2, 2, 2]
    p = [0, 1, 1, 2, 0, 2]
    assert ev.accuracy(y, p) == pytest.approx(4 / 6)
    c = ev.confusion_matrix(y, p, 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert c.sum() == 6 and np.trace(c) == 4
    with pytest.raises(ValueError):
        ev.confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError):
        ev.accuracy([0, 1], [0])


def test_det_curve_and_frr_at_far_by_hand():
    pos = [0.9, 0.8, 0.3]
    neg = [0.1, 0.4, 0.85, 0.2]
    far, frr, thr = ev.det_curve(pos, neg)
    assert thr.tolist() == [0.1, 0.2, 0.3, 0.4, 0.8, 0.85, 0.9, np.inf]
    assert far.tolist() == [1.0, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0]
    assert np.allclose(frr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    # at most 1 of 4 negatives accepted: the lowest such threshold is 0.8 -> 1 of 3 rejected
    assert ev.frr_at_far(pos, neg, 0.25) == (pytest.approx(1 / 3), 0.25, 0.8)
    # no false accept allowed: threshold 0.9, two keywords missed
    assert ev.frr_at_far(pos, neg, 0.0) == (pytest.approx(2 / 3), 0.0, 0.9)
    assert ev.frr_at_far(pos, neg, 1.0)[0] == 0.0
    with pytest.raises(ValueError):
        ev.det_curve([], neg)


def test_smoothing_and_detection_rule():
    s = ev.smooth([3, 0, 0, 3, 3, 3], 3)
    assert s.tolist() == [1, 1, 1, 1, 2, 3]
    post = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1], float)
    # k = 1: fires at or above the threshold unless it fired within the last 3 frames
    assert ev.detect(post, 0.5, k=1, refractory=3).tolist() == [1, 7, 11]
    assert ev.detect(post, 0.5, k=1, refractory=0).tolist() == [1, 2, 3, 7, 8, 9, 10, 11]
    assert ev.detect(post, 0.9, k=3, refractory=5).tolist() == [3, 9]
    assert ev.detect(post, 0.9, k=3, refractory=100).tolist() == [3]
    with pytest.raises(ValueError):
        ev.smooth(post, 0)


def test_stream_detector_equals_batch_rule():
    rng = np.random.default_rng(0)
    for trial in range(20):
        post = rng.random(300) ** 3
        k, refr, thr = int(rng.integers(1, 12)), int(rng.integers(0, 40)), rng.uniform(0.1, 0.6)
        det = ev.StreamDetector(thr, k, refr)
        fired, smoothed = [], []
        for t, p in enumerate(post):
            if det.update(p):
                fired.append(t)
            smoothed.append(det.smoothed)
        assert fired == ev.detect(post, thr, k, refr).tolist(), trial
        assert np.array_equal(smoothed, ev.smooth(post, k))  # the same bits
        det.reset()
        assert det.smoothed == 0.0 and not det.update(0.0)


def test_posteriors_are_a_softmax():
    p = ev.posteriors([[0.0, 0.0], [1000.0, 0.0], [np.log(3.0), 0.0]])
    assert np.allclose(p, [[0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])


# --- models -------------------------------------------------------------------------------------

def _model(bits=4, hidden=(16, 16), cfg=None, n_out=12, seed=0, task="speech_commands",
           labels=None):
    cfg = cfg or FeatureConfig()
    rng = np.random.default_rng(seed)
    shape = [cfg.n_inputs, *hidden, n_out]
    ws = [rng.normal(0, 1 / np.sqrt(a), (a, b)) for a, b in zip(shape[:-1], shape[1:],
                                                                 strict=True)]
    bs = [rng.normal(0, 0.1, b) for b in shape[1:]]
    x = rng.normal(0, 1, (300, cfg.n_inputs))
    fracs = quantize.calibrate_out_fracs(ws, bs, x)
    labels = labels or [*SPEECH_COMMANDS_KEYWORDS, "_unknown_", "_silence_"][:n_out]
    return modelfile.from_float(ws, bs, bits=bits, out_fracs=fracs, features=cfg,
                                norm_mean=np.full(cfg.n_mels, -5.0),
                                norm_std=np.full(cfg.n_mels, 3.0),
                                labels=labels, task=task, in_frac=11,
                                meta={"static_ranges": ev.static_ranges(ws, bs, x)}), x


def test_run_modes():
    m, x = _model(bits=8)
    x = x[:50]
    fl = ev.run_windows(m, x, "float")
    assert np.allclose(fl, golden.float_forward(m.float_weights, m.float_biases, x))
    g = ev.run_windows(m, x, "golden")
    ref = golden.run_network(m.plans(), quantize.features_to_int(x, 11))[-1].y
    assert np.array_equal(g, ref * 2.0 ** -m.layers[-1].out_frac)
    # dynamic8 of an 8-bit file is its own golden model
    assert np.array_equal(ev.run_windows(m, x, "dynamic8"), g)
    d4 = ev.run_windows(m, x, "dynamic4")
    m4 = ev.requantize(m, 4)
    assert m4.bits == 4 and m4.sha256 != m.sha256
    assert np.array_equal(d4, ev.run_windows(m4, x, "golden"))
    # static: per-tensor weights and fixed activation ranges, by hand
    h = x
    for k, (w, b) in enumerate(zip(m.float_weights, m.float_biases, strict=True)):
        lo, hi = m.meta["static_ranges"][k]
        w = np.asarray(w, np.float64)
        h = quantize.static_fake_quant(h, lo, hi, 4) @ \
            quantize.static_fake_quant(w, w.min(), w.max(), 4) + b
        if k < 2:
            h = np.maximum(h, 0)
    assert np.allclose(ev.run_windows(m, x, "static4"), h)
    # 8-bit dynamic is close to float, agreeing on nearly every decision
    assert np.mean(g.argmax(1) == fl.argmax(1)) > 0.9
    with pytest.raises(ValueError):
        ev.run_windows(m, x, "bogus")


def test_footprints():
    m4, _ = _model(bits=4, hidden=(128, 128, 128))
    fp = ev.footprint(m4)
    assert fp["parameters"] == 1000 * 128 + 2 * 128 * 128 + 128 * 12 + 3 * 128 + 12
    assert fp["weight_ratio_to_float32"] == pytest.approx(4 / 32)
    assert fp["ratio_to_float32"] < 0.20  # all constants included
    assert ev.footprint(m4, "float")["ratio_to_float32"] == 1.0
    f8 = ev.footprint(m4, "dynamic", 8)
    assert f8["weight_bits"] == 2 * fp["weight_bits"]
    st = ev.footprint(m4, "static", 4)
    assert st["weight_bits"] == fp["weight_bits"] and st["total_bits"] < fp["total_bits"]


# --- whole evaluations on synthetic corpora -----------------------------------------------------

def _write(path, seconds, freq, rng, fmt="WAV"):
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) + rng.normal(0, 0.01, len(t))
    sf.write(str(path), x.astype(np.float32), 16000, format=fmt, subtype="PCM_16")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    sc = root / "speech_commands_v0.02_test"
    for i, word in enumerate([*SPEECH_COMMANDS_KEYWORDS, "_unknown_", "_silence_"]):
        (sc / word).mkdir(parents=True)
        for j, spk in enumerate(["0a0b0c0d", "1a2b3c4d"]):
            name = f"{j}.wav" if word == "_silence_" else f"{spk}_nohash_{j}.wav"
            _write(sc / word / name, 1.0, 200 + 150 * i, rng)
    ww = root / "wake_word_benchmark"
    for i, word in enumerate(["alexa", "computer", "smart mirror"]):
        (ww / word).mkdir(parents=True)
        for j in range(3):
            _write(ww / word / f"{j}.flac", 1.0 + 0.5 * j, 300 + 400 * i, rng, "FLAC")
    return root


def test_evaluate_speech_commands(corpora, tmp_path):
    m, _ = _model(bits=4)
    path = tmp_path / "m.kwm"
    modelfile.save(m, path)
    res = ev.evaluate(path, corpora, split="all", modes=("golden", "float", "dynamic8",
                                                         "static4"),
                      plots=tmp_path / "plots", progress=False, cache=False)
    assert res["task"] == "speech_commands" and res["n_clips"] == 24
    assert set(res["results"]) == {"golden", "float", "dynamic8", "static4"}
    for r in res["results"].values():
        assert 0.0 <= r["accuracy"] <= 1.0
        assert np.sum(r["confusion"]) == 24
    assert (tmp_path / "plots" / "confusion_golden.png").stat().st_size > 1000
    assert res["results"]["golden"]["footprint"]["weight_ratio_to_float32"] == 4 / 32


def test_evaluate_wake_word(corpora, tmp_path):
    m, _ = _model(bits=8, n_out=2, task="wake_word", labels=["_other_", "alexa"], hidden=(8,))
    res = ev.evaluate(m, corpora, split="all", modes=("golden", "float"),
                      plots=tmp_path, progress=False, cache=False)
    r = res["results"]["golden"]
    # Negatives: the other phrases and every Speech Commands clip (general speech, silence).
    assert r["n_positive"] == 3 and r["n_negative"] == 6 + 24
    assert [op["target_far"] for op in r["operating_points"]] == [0.01, 0.05]
    for op in r["operating_points"]:
        assert 0 <= op["frr"] <= 1 and op["far"] <= op["target_far"]
        assert op["false_accepts_per_hour"] >= 0
    assert r["negative_hours"] == pytest.approx((6 * 1.5 + 24 * 1.0) / 3600, rel=0.05)
    assert (tmp_path / "det.png").stat().st_size > 1000


def test_evaluate_clear_errors(corpora, tmp_path):
    m, _ = _model()
    with pytest.raises(DatasetError, match="does not exist"):
        ev.evaluate(m, tmp_path / "nowhere", progress=False)
    wrong, _ = _model(labels=[f"w{i}" for i in range(12)])
    with pytest.raises(ValueError, match="labels"):
        ev.evaluate(wrong, corpora, split="all", progress=False, cache=False)
    other, _ = _model(task="keyword_x")
    with pytest.raises(ValueError, match="task"):
        ev.evaluate(other, corpora, progress=False)
    no_float = modelfile.Model(**{**m.__dict__, "float_weights": None, "float_biases": None})
    res = ev.evaluate(no_float, corpora, split="all", modes=("golden", "float"),
                      progress=False, cache=False)
    assert "float" in res["skipped"] and "golden" in res["results"]
