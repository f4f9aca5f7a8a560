"""The LFBE front end against a slow by-the-definition version, windows and normalization."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kwshw.features import (
    FeatureConfig,
    FrameSmoother,
    Normalizer,
    hann_window,
    lfbe,
    log_mel,
    mel_filterbank,
    n_frames,
    smooth_frames,
    stack_window,
    stack_windows,
)

CFG = FeatureConfig()


@pytest.fixture(scope="module")
def data_root() -> Path:
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    return Path(root)


# --- independent, slow reference: scalar math, explicit DFT, loops -------------------------


def _mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _hz(m: float) -> float:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def slow_filterbank(cfg: FeatureConfig) -> np.ndarray:
    lo, hi = _mel(cfg.fmin), _mel(cfg.fmax)
    edges = [_hz(lo + (hi - lo) * i / (cfg.n_mels + 1)) for i in range(cfg.n_mels + 2)]
    h = np.zeros((cfg.n_fft // 2 + 1, cfg.n_mels))
    for m in range(cfg.n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(cfg.n_fft // 2 + 1):
            f = k * cfg.sample_rate / cfg.n_fft
            if left < f <= centre:
                h[k, m] = (f - left) / (centre - left)
            elif centre < f < right:
                h[k, m] = (right - f) / (right - centre)
    return h


def slow_lfbe(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    x = [float(v) for v in audio]
    if len(x) < cfg.win_length:
        x += [0.0] * (cfg.win_length - len(x))
    count = 1 + (len(x) - cfg.win_length) // cfg.hop_length
    win = [0.5 - 0.5 * math.cos(2 * math.pi * i / cfg.win_length) for i in range(cfg.win_length)]
    k = np.arange(cfg.n_fft // 2 + 1)[:, None]
    i = np.arange(cfg.win_length)[None, :]
    dft = np.exp(-2j * np.pi * k * i / cfg.n_fft)  # zero padding to n_fft = fewer terms
    h = slow_filterbank(cfg)
    out = np.zeros((count, cfg.n_mels))
    for t in range(count):
        frame = np.array([x[t * cfg.hop_length + j] * win[j] for j in range(cfg.win_length)])
        spec = dft @ frame
        power = spec.real**2 + spec.imag**2
        for m in range(cfg.n_mels):
            e = sum(power[b] * h[b, m] for b in range(len(power)) if h[b, m] > 0)
            out[t, m] = math.log(max(e, cfg.log_floor))
    smoothed = np.zeros_like(out)  # step 6: mean of the last `smooth` frames, fewer at the start
    for t in range(count):
        first = max(0, t - cfg.smooth + 1)
        smoothed[t] = sum(out[u] for u in range(first, t + 1)) / (t + 1 - first)
    return smoothed


# --- tests -------------------------------------------------------------------------------------


def test_feature_config_defaults_unchanged():
    assert CFG.to_dict() == dict(
        sample_rate=16000,
        win_length=400,
        hop_length=160,
        n_fft=512,
        n_mels=40,
        fmin=20.0,
        fmax=7600.0,
        log_floor=1e-6,
        context=25,
        stride=4,
        smooth=4,
    )
    assert CFG.n_inputs == 1000 and CFG.span == 97


def test_smoothing_is_a_causal_mean_and_streams_bit_exactly():
    x = np.random.default_rng(3).normal(-5.0, 4.0, (60, 40))
    for k in (1, 2, 4, 7):
        s = smooth_frames(x, k)
        for t in (0, 1, k - 1, k, 59):
            ref = x[max(0, t - k + 1): t + 1].mean(axis=0)
            np.testing.assert_allclose(s[t], ref, rtol=1e-6, atol=1e-6)
        one = FrameSmoother(k)
        np.testing.assert_array_equal(np.stack([one(f) for f in x]), s)
    # lfbe is smooth_frames of the float64 log-mel frames, and FrameSmoother fed one log-mel
    # frame at a time (as the live host path computes them) gives the same bits.
    audio = 0.2 * np.random.default_rng(4).standard_normal(8000)
    raw = log_mel(audio, CFG)
    assert raw.dtype == np.float64
    np.testing.assert_array_equal(lfbe(audio, CFG), smooth_frames(raw, 4))
    live = FrameSmoother(4)
    one_by_one = [live(log_mel(audio[t * 160: t * 160 + 400], CFG)[0]) for t in range(len(raw))]
    np.testing.assert_array_equal(np.stack(one_by_one), lfbe(audio, CFG))


def test_smoothing_field_reads_old_files_and_is_validated():
    d = CFG.to_dict()
    del d["smooth"]  # a model file from before the field: trained without smoothing
    assert FeatureConfig.from_dict(d).smooth == 1
    with pytest.raises(ValueError, match="smooth"):
        lfbe(np.zeros(1000), FeatureConfig(smooth=0))


def test_filterbank_matches_definition_and_is_cached():
    fb = mel_filterbank(CFG)
    assert fb.shape == (257, 40)
    np.testing.assert_allclose(fb, slow_filterbank(CFG), atol=1e-12)
    assert mel_filterbank(FeatureConfig()) is fb  # cached per (equal) configuration
    assert not fb.flags.writeable
    assert np.all(fb.max(axis=0) > 0) and fb.max() <= 1.0


def test_filterbank_rejects_bands_without_bins():
    with pytest.raises(ValueError, match="cover no FFT bin"):
        mel_filterbank(FeatureConfig(n_mels=128, n_fft=400, fmin=0.0))
    with pytest.raises(ValueError, match="fmax"):
        mel_filterbank(FeatureConfig(fmax=9000.0))


def test_periodic_hann():
    w = hann_window(400)
    assert w[0] == 0.0 and w[200] == pytest.approx(1.0)
    np.testing.assert_allclose(w[1:], w[1:][::-1], atol=1e-15)  # periodic: symmetric about 200
    overlap = w[:200] + w[200:]
    np.testing.assert_allclose(overlap, 1.0, atol=1e-12)


@pytest.mark.parametrize("n", [16000, 5000, 401, 400, 399, 1])
def test_lfbe_matches_slow_reference(n):
    x = 0.3 * np.random.default_rng(n).standard_normal(n)
    fast = lfbe(x, CFG)
    assert fast.dtype == np.float32 and fast.shape == (n_frames(n, CFG), 40)
    np.testing.assert_allclose(fast, slow_lfbe(x, CFG), rtol=0, atol=2e-5)


def test_frame_count_has_no_padding():
    assert n_frames(16000, CFG) == 98
    assert lfbe(np.zeros(16000), CFG).shape == (98, 40)
    assert lfbe(np.zeros(559), CFG).shape == (1, 40)
    assert lfbe(np.zeros(560), CFG).shape == (2, 40)
    assert lfbe(np.zeros(0), CFG).shape == (1, 40)


@given(st.integers(min_value=0, max_value=5000))
@settings(max_examples=40, deadline=None)
def test_frame_count_formula(n):
    expected = 1 if n < CFG.win_length else 1 + (n - CFG.win_length) // CFG.hop_length
    assert lfbe(np.zeros(n), CFG).shape[0] == expected == n_frames(n, CFG)


def test_silence_is_at_the_log_floor():
    np.testing.assert_array_equal(lfbe(np.zeros(1000), CFG), np.float32(math.log(1e-6)))


@pytest.mark.parametrize("band", [3, 12, 20, 30, 38])
def test_pure_tone_lands_in_its_mel_band(band):
    lo, hi = _mel(CFG.fmin), _mel(CFG.fmax)
    centre = _hz(lo + (hi - lo) * (band + 1) / (CFG.n_mels + 1))
    t = np.arange(16000) / 16000
    feats = lfbe(0.5 * np.sin(2 * np.pi * centre * t), CFG)
    assert np.all(feats.argmax(axis=1) == band)


def test_tone_energy_scales_as_power():
    t = np.arange(4000) / 16000
    x = np.sin(2 * np.pi * 1000.0 * t)
    a, b = lfbe(0.1 * x, CFG), lfbe(0.2 * x, CFG)
    band = int(a[0].argmax())
    np.testing.assert_allclose(b[:, band] - a[:, band], math.log(4.0), atol=1e-5)


def test_lfbe_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        lfbe(np.zeros((2, 400)), CFG)
    with pytest.raises(ValueError, match="NaN"):
        lfbe(np.full(500, np.nan), CFG)


def test_stack_window_layout():
    cfg = FeatureConfig(context=5, stride=3, n_mels=4)
    frames = np.arange(20 * 4, dtype=np.float32).reshape(20, 4) + 1.0
    for end in (19, 12, 5, 0):
        x = stack_window(frames, cfg, end)
        assert x.shape == (20,) and x.dtype == np.float32
        for k in range(5):
            idx = end - (5 - 1 - k) * 3
            want = frames[idx] if idx >= 0 else np.zeros(4)
            np.testing.assert_array_equal(x[k * 4 : (k + 1) * 4], want)
    # Newest frame last.
    np.testing.assert_array_equal(stack_window(frames, cfg, 19)[-4:], frames[19])


def test_stack_windows_equals_stack_window():
    frames = np.random.default_rng(0).standard_normal((130, 40)).astype(np.float32)
    all_ = stack_windows(frames, CFG)
    assert all_.shape == (130, 1000)
    for end in (0, 50, 96, 97, 129):
        np.testing.assert_array_equal(all_[end], stack_window(frames, CFG, end))
    with pytest.raises(IndexError):
        stack_window(frames, CFG, 130)
    with pytest.raises(IndexError):
        stack_window(frames, CFG, -1)
    with pytest.raises(ValueError, match="shape"):
        stack_window(frames[:, :39], CFG, 0)


def test_normalizer_fit_apply_roundtrip():
    rng = np.random.default_rng(1)
    clips = [rng.normal(loc=-5, scale=2, size=(rng.integers(1, 200), 40)) for _ in range(30)]
    allf = np.concatenate(clips)
    norm = Normalizer.fit(clips)
    np.testing.assert_allclose(norm.mean, allf.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, allf.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(Normalizer.fit(allf).mean, norm.mean, rtol=1e-12)
    z = norm.apply(allf)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back == norm  # exact through JSON


def test_normalizer_floors_constant_bands_and_validates():
    f = np.zeros((10, 3))
    f[:, 0] = np.arange(10)
    norm = Normalizer.fit(f, min_std=1e-3)
    assert norm.std[1] == 1e-3 and np.all(np.isfinite(norm.apply(f)))
    with pytest.raises(ValueError, match="no feature frames"):
        Normalizer.fit([])
    with pytest.raises(ValueError):
        Normalizer.from_dict({"mean": [0.0, 1.0], "std": [1.0]})
    with pytest.raises(ValueError):
        Normalizer.from_dict({"mean": [0.0], "std": [0.0]})
    with pytest.raises(ValueError):
        Normalizer.from_dict({"mean": [0.0], "std": [1.0], "extra": 1})
    with pytest.raises(ValueError, match="bands"):
        norm.apply(np.zeros((2, 4)))


@pytest.mark.data
def test_real_clip_features(data_root):
    from kwshw.audio import load_audio

    p = sorted((data_root / "speech_commands_v0.02_test" / "stop").glob("*.wav"))[0]
    x = load_audio(p)
    f = lfbe(x, CFG)
    assert f.shape == (98, 40) and np.all(np.isfinite(f))
    np.testing.assert_allclose(f[:3], slow_lfbe(x[: 400 + 2 * 160], CFG), atol=2e-5)
    # Speech is louder than the quietest frames of the same clip in every band.
    assert np.all(f.max(axis=0) > f.min(axis=0) + 1.0)
