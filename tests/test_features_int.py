"""The integer front end (kwshw.features_int): derived widths hold on worst-case inputs, the FFT
and the log are within their derived error bounds, streaming equals batch, and the result is
close to the float front end on real speech."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest

from kwshw.arith import ACT_MAX, ACT_MIN, rshift_round
from kwshw.audio import load_audio
from kwshw.features import FeatureConfig, Normalizer, lfbe, log_mel
from kwshw.features_int import (
    DATA_FRAC,
    LOG_FRAC,
    LOG_INDEX,
    LOG_INTERP,
    LOG_TABLE_FRAC,
    MAX_WIDTH,
    PCM_MAX,
    PCM_MIN,
    POWER_FRAC,
    WINDOW_FRAC,
    IntFrontEnd,
    pcm_from_float,
)
from kwshw.quantize import features_to_int

CFG = FeatureConfig()
N = 4000  # samples per synthetic signal: 23 frames


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    rng = np.random.default_rng(1)
    return Normalizer(mean=rng.uniform(-8, 2, CFG.n_mels), std=rng.uniform(1.0, 4.0, CFG.n_mels))


@pytest.fixture(scope="module")
def fe(norm) -> IntFrontEnd:
    return IntFrontEnd(CFG, norm, 11)


def _sine(bin_: float, amp: float = 32767.0, phase: float = 0.3) -> np.ndarray:
    n = np.arange(N)
    return round_clip(amp * np.sin(2 * np.pi * bin_ * n / CFG.n_fft + phase))


def round_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.asarray(x) + 0.5), PCM_MIN, PCM_MAX).astype(np.int64)


def _square(period: int) -> np.ndarray:
    n = np.arange(N)
    return np.where((n % period) < period // 2, PCM_MAX, PCM_MIN).astype(np.int64)


def worst_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    imp = np.zeros(N, np.int64)
    imp[[200, 1000, 1800]] = [PCM_MIN, PCM_MAX, PCM_MIN]
    return {
        "zeros": np.zeros(N, np.int64),
        "dc_min": np.full(N, PCM_MIN, np.int64),
        "dc_max": np.full(N, PCM_MAX, np.int64),
        "impulses": imp,
        "square_2": _square(2),
        "square_8": _square(8),
        "square_64": _square(64),
        **{f"sine_bin{k}": _sine(k) for k in (1, 5, 64, 128, 255, 256)},
        "sine_off_bin": _sine(100.37),
        "clipping_noise": round_clip(rng.normal(0, 3e5, N)),
        "uniform_noise": rng.integers(PCM_MIN, PCM_MAX + 1, N),
        "quiet_noise": rng.integers(-2, 3, N),
    }


# --- widths -----------------------------------------------------------------------------------


def test_every_width_fits_int64_and_is_printed_in_the_docs(fe):
    widths = fe.widths()
    assert max(widths.values()) <= MAX_WIDTH
    # The figures of docs/arithmetic.md section 11.
    assert widths["x"] == 24 and widths["fft"] == 32 and widths["power_exact"] == 62
    assert widths["mel_acc"] == 62 and widths["mel"] == 48 and widths["log_mel"] == 21


@pytest.mark.parametrize("name", sorted(worst_cases()))
def test_worst_case_inputs_stay_within_the_derived_ranges(fe, name):
    trace: dict = {}
    x = fe.frames(worst_cases()[name], trace)
    assert x.dtype == np.int64 and x.min() >= ACT_MIN and x.max() <= ACT_MAX
    for key, (lo, hi) in trace.items():
        bd = fe.bounds[key]
        assert bd.lo <= lo and hi <= bd.hi, (key, lo, hi, bd)


def test_the_fft_bound_is_tight_for_full_scale_dc(fe):
    trace: dict = {}
    fe.log_mel(worst_cases()["dc_min"], trace)
    lo, hi = trace["fft"] if "fft" in trace else trace["fft_stage9"]
    # Full-scale DC reaches the bound of the last stage within 1%: no bit is wasted.
    assert max(-lo, hi) > 0.99 * fe.bounds["fft_stage9"].hi


def test_silence_is_the_floor(fe):
    got = fe.log_mel(np.zeros(N, np.int64))
    assert np.all(got == fe.log_floor)
    assert abs(fe.to_float_log(fe.log_floor) - math.log(CFG.log_floor)) <= 2.0 ** -(LOG_FRAC + 1)
    # Just below and above the floor (in the energy format): monotonic, floored exactly.
    e_floor = CFG.log_floor * 2.0 ** (30 + POWER_FRAC)
    e = np.arange(int(e_floor) - 50, int(e_floor) + 50)
    got = fe.log(e)
    assert np.all(np.diff(got) >= 0) and got[0] == fe.log_floor and got[-1] > fe.log_floor


# --- FFT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["square_8", "sine_bin64", "sine_off_bin", "clipping_noise",
                                  "impulses", "quiet_noise"])
def test_fft_is_within_its_derived_error_of_numpy(fe, name):
    s = worst_cases()[name]
    frames = np.lib.stride_tricks.sliding_window_view(s, CFG.win_length)[::CFG.hop_length]
    x = rshift_round(frames * fe.window, WINDOW_FRAC - DATA_FRAC)
    re, im = fe.fft(x)
    ref = np.fft.rfft(x.astype(np.float64), n=CFG.n_fft, axis=1)
    err = np.hypot(re - ref.real, im - ref.imag)
    assert err.max() <= fe.bounds["fft_error"].hi
    # The bound is a worst case; the typical error is a few LSB.
    assert np.sqrt(np.mean(err**2)) < 128


# --- log ------------------------------------------------------------------------------------


def test_log_table_properties(fe):
    t = fe.log_table
    assert len(t) == (1 << LOG_INDEX) + 1 and t[0] == 0
    assert t[-1] == fe.ln2  # ln(1 + 1) = ln 2: exact powers of two are exact multiples
    assert np.all(np.diff(t) > 0)
    exact = np.log1p(np.arange(len(t)) / 2.0**LOG_INDEX) * 2.0**LOG_TABLE_FRAC
    assert np.abs(t - exact).max() <= 0.5


def test_log_is_exact_on_powers_of_two(fe):
    e0 = 30 + POWER_FRAC
    p = np.arange(12, 48)  # from just above the floor
    got = fe.log(np.int64(1) << p)
    want = np.floor((p - e0) * fe.ln2 / 2.0 ** (LOG_TABLE_FRAC - LOG_FRAC) + 0.5)
    assert np.array_equal(got, want.astype(np.int64))


def test_log_error_over_every_mantissa(fe):
    q = LOG_INDEX + LOG_INTERP
    bound = fe.log_error_bound()
    assert bound < 2.0**-LOG_FRAC  # within one output LSB
    e0 = 30 + POWER_FRAC
    for shift in (0, 5):  # every mantissa at p = q exactly, and truncated at p = q + 5
        e = ((np.int64(1) << q) + np.arange(1 << q, dtype=np.int64)) << shift
        got = fe.to_float_log(fe.log(e))
        want = np.log(e.astype(np.float64)) - e0 * math.log(2)
        assert np.abs(got - want).max() <= bound
    # Small energies (left-shifted mantissas) and the floor.
    e = np.arange(1, 1 << 14, dtype=np.int64)
    got = fe.to_float_log(fe.log(e))
    want = np.maximum(np.log(e.astype(np.float64)) - e0 * math.log(2), math.log(CFG.log_floor))
    assert np.abs(got - want).max() <= bound
    assert np.all(np.diff(got) >= 0)


# --- smoothing, normalization, streaming ------------------------------------------------------


def test_smoothing_is_the_rounded_mean(fe):
    rng = np.random.default_rng(3)
    x = rng.integers(fe.bounds["log_mel"].lo, fe.bounds["log_mel"].hi + 1, (30, CFG.n_mels))
    got = fe.smooth(x)
    for t in (0, 1, 2, 3, 17):
        n = min(CFG.smooth, t + 1)
        mean = x[t - n + 1:t + 1].sum(axis=0) / n
        assert np.abs(got[t] - mean).max() <= 0.5 + 1e-6


def test_normalization_matches_features_to_int_on_exact_values(fe, norm):
    rng = np.random.default_rng(4)
    bd = fe.bounds["lfbe"]
    ls = rng.integers(bd.lo, bd.hi + 1, (200, CFG.n_mels))
    got = fe.normalize(ls)
    want = features_to_int(norm.apply(ls * 2.0**-LOG_FRAC), 11)
    assert np.abs(got - want).max() <= 1
    assert np.mean(got != want) < 0.01
    # Saturation as features_to_int: a narrow normalizer sends most values out of range.
    narrow = Normalizer(mean=np.zeros(CFG.n_mels), std=np.full(CFG.n_mels, 1e-3))
    fe2 = IntFrontEnd(CFG, narrow, 11)
    got = fe2.normalize(ls)
    want = features_to_int(narrow.apply(ls * 2.0**-LOG_FRAC), 11)
    assert got.min() == ACT_MIN and got.max() == ACT_MAX
    assert np.abs(got - want).max() <= 1


@pytest.mark.parametrize("with_norm", [True, False])
def test_streaming_equals_batch(fe, with_norm):
    if not with_norm:
        fe = IntFrontEnd(CFG)
    rng = np.random.default_rng(5)
    pcm = round_clip(np.cumsum(rng.normal(0, 300, 40 * CFG.hop_length)))
    pcm[1500:1700] = PCM_MIN  # a clipped burst
    batch = fe.frames(pcm) if with_norm else fe.lfbe(pcm)
    stream = fe.stream()
    out = []
    for i in range(0, len(pcm), CFG.hop_length):
        f = stream.push(pcm[i:i + CFG.hop_length])
        if i + CFG.hop_length < CFG.win_length:
            assert f is None
        elif f is not None:
            out.append(f)
    assert np.array_equal(np.array(out), batch)
    assert np.array_equal(fe.stream().run(pcm), batch)


def test_smooth_one_and_other_sizes(norm):
    cfg = dataclasses.replace(CFG, smooth=1, n_fft=1024)
    fe = IntFrontEnd(cfg, norm, 11)
    pcm = worst_cases()["sine_off_bin"]
    assert np.array_equal(fe.lfbe(pcm), fe.log_mel(pcm))
    assert np.array_equal(fe.stream().run(pcm[:3200]), fe.frames(pcm[:3200]))


def test_short_clips(norm):
    fe = IntFrontEnd(dataclasses.replace(CFG, smooth=16), norm, 11)
    s = worst_cases()["sine_bin5"]
    assert fe.frames(s[:100]).shape == (1, CFG.n_mels)  # zero-padded to one window
    five = fe.lfbe(s[:CFG.win_length + 4 * CFG.hop_length])
    assert five.shape == (5, CFG.n_mels)
    assert np.array_equal(five, fe.lfbe(s)[:5])  # causal


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [dict(n_fft=500), dict(n_fft=256), dict(smooth=0),
                                    dict(smooth=17), dict(log_floor=1e-12)])
def test_unsupported_configurations_are_refused(change):
    with pytest.raises(ValueError):
        IntFrontEnd(dataclasses.replace(CFG, **change))


def test_bad_inputs_are_refused(fe):
    with pytest.raises(ValueError):
        fe.log_mel(np.zeros(800))  # float samples: convert with pcm_from_float
    with pytest.raises(ValueError):
        fe.log_mel(np.array([0, 40000] * 400))
    with pytest.raises(ValueError):
        fe.stream().push(np.zeros(100, np.int64))
    with pytest.raises(ValueError):
        IntFrontEnd(CFG).frames(np.zeros(800, np.int64))
    with pytest.raises(ValueError):
        IntFrontEnd(CFG, Normalizer(mean=np.zeros(3), std=np.ones(3)))


def test_pcm_from_float_is_exact_for_16_bit_audio():
    q = np.arange(PCM_MIN, PCM_MAX + 1, 7, dtype=np.int64)
    assert np.array_equal(pcm_from_float((q / 32768.0).astype(np.float32)), q)
    assert pcm_from_float(np.array([1.0, -1.0])).tolist() == [PCM_MAX, PCM_MIN]


def test_from_model():
    from boards.refmodel import random_cnn

    model = random_cnn(4)
    fe = IntFrontEnd.from_model(model)
    assert fe.in_frac == model.in_frac and fe.cfg == model.features


# --- against the float front end on real speech ---------------------------------------------


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    root = Path(root)
    paths = []
    for pattern in ("speech_commands_v0.02_test/yes/*.wav", "speech_commands_v0.02_extra/go/*",
                    "wake_word_benchmark/alexa/*"):
        found = sorted(root.glob(pattern))
        if not found:
            pytest.skip(f"no clips {pattern} under {root}")
        paths.append(found[len(found) // 2])
    return [load_audio(p) for p in paths]


@pytest.mark.data
def test_close_to_the_float_front_end_on_speech(clips):
    floats = [lfbe(a, CFG) for a in clips]
    norm = Normalizer.fit(floats)
    fe = IntFrontEnd(CFG, norm, 11)
    for a, f in zip(clips, floats, strict=True):
        pcm = pcm_from_float(a)
        raw = fe.log_mel(pcm)
        assert np.abs(fe.to_float_log(raw) - log_mel(a, CFG)).max() < 0.02
        sm = fe.smooth(raw)
        err = np.abs(fe.to_float_log(sm) - f.astype(np.float64))
        assert err.max() < 0.01 and err.mean() < 2e-4
        codes = fe.normalize(sm)
        diff = np.abs(codes - features_to_int(norm.apply(f), 11))
        assert diff.max() <= 2 and np.mean(diff > 1) < 1e-3 and np.mean(diff > 0) < 0.1
