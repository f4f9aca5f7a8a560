"""Reading WAV/FLAC: scaling, channels, sample rates and the errors of unusable files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwshw.audio import RESAMPLE_WINDOW, AudioError, load_audio, resample


@pytest.fixture(scope="module")
def data_root() -> Path:
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    return Path(root)


def _pcm16(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, n).astype(np.int16)


@pytest.mark.parametrize("fmt, suffix", [("WAV", ".wav"), ("FLAC", ".flac")])
def test_pcm16_is_scaled_exactly(tmp_path, fmt, suffix):
    q = _pcm16(4000)
    p = tmp_path / f"x{suffix}"
    sf.write(p, q, 16000, format=fmt, subtype="PCM_16")
    x = load_audio(p)
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, q.astype(np.float32) / 32768.0)
    assert -1.0 <= x.min() and x.max() < 1.0


def test_format_comes_from_the_header_not_the_name(tmp_path):
    q = _pcm16(1000)
    p = tmp_path / "bed_0c40e715_nohash_1.wav.wav"
    sf.write(p, q, 16000, format="WAV", subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(p), q / np.float32(32768))


def test_stereo_is_averaged(tmp_path):
    left, right = _pcm16(2000, 1), _pcm16(2000, 2)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    expected = ((left.astype(np.float64) + right) / 2 / 32768).astype(np.float32)
    np.testing.assert_allclose(load_audio(p), expected, atol=1e-7)


def test_float_file_is_clipped_to_unit_range(tmp_path):
    p = tmp_path / "float.wav"
    sf.write(p, np.array([0.5, 1.5, -2.0, -0.25], np.float32), 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(p), np.array([0.5, 1.0, -1.0, -0.25], np.float32))


def test_wrong_rate_is_refused_without_resampling(tmp_path):
    p = tmp_path / "x8k.wav"
    sf.write(p, _pcm16(800), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"x8k\.wav.*8000 Hz.*16000 Hz"):
        load_audio(p, 16000, resample=False)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_sine_keeps_its_frequency(tmp_path, rate):
    n = rate // 2  # 0.5 s
    t = np.arange(n) / rate
    p = tmp_path / f"sine{rate}.wav"
    sf.write(p, 0.5 * np.sin(2 * np.pi * 1000.0 * t), rate, subtype="FLOAT")
    y = load_audio(p, 16000)
    g = math.gcd(rate, 16000)
    assert len(y) == math.ceil(n * (16000 // g) / (rate // g))
    # No delay: sample m of the output lies at time m / 16000. The ends see the zero extension.
    ref = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(len(y)) / 16000)
    mid = slice(800, len(y) - 800)
    assert np.max(np.abs(y[mid] - ref[mid])) < 2e-3


def test_resample_is_scipy_resample_poly_with_the_documented_filter():
    from scipy.signal import resample_poly

    x = np.random.default_rng(3).standard_normal(4410)
    np.testing.assert_array_equal(
        resample(x, 44100, 16000), resample_poly(x, 160, 441, window=RESAMPLE_WINDOW)
    )
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


def test_resampling_removes_content_above_the_new_nyquist(tmp_path):
    rate = 48000
    t = np.arange(rate) / rate
    p = tmp_path / "high.wav"
    sf.write(p, 0.5 * np.sin(2 * np.pi * 12000.0 * t), rate, subtype="FLOAT")  # > 8 kHz
    y = load_audio(p, 16000)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3


def test_empty_file_is_an_error_naming_it(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"empty\.wav.*no audio samples"):
        load_audio(p)


@pytest.mark.parametrize("name", ["corrupt.wav", "corrupt.flac"])
def test_corrupt_bytes_are_an_error_naming_the_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"RIFF\x00\x00garbage" + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match=name.replace(".", r"\.") + r".*cannot read audio"):
        load_audio(p)


def test_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    assert issubclass(AudioError, ValueError)


def test_offset_and_length(tmp_path):
    q = _pcm16(3000)
    p = tmp_path / "x.wav"
    sf.write(p, q, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(p, offset=100, num_samples=50), q[100:150] / 32768)
    np.testing.assert_array_equal(load_audio(p, offset=2990), q[2990:] / 32768)
    with pytest.raises(AudioError, match="requested"):
        load_audio(p, offset=2990, num_samples=11)
    # At another rate, offset and length count output samples.
    p8 = tmp_path / "x8.wav"
    sf.write(p8, q, 8000, subtype="PCM_16")
    full = load_audio(p8, 16000)
    np.testing.assert_array_equal(load_audio(p8, 16000, offset=10, num_samples=20), full[10:30])


@pytest.mark.data
def test_real_files(data_root):
    sc = sorted((data_root / "speech_commands_v0.02_test" / "yes").glob("*.wav"))[0]
    x = load_audio(sc)
    assert x.dtype == np.float32 and x.shape == (16000,)
    assert np.all(np.abs(x) <= 1.0) and np.abs(x).max() > 0
    ww = sorted((data_root / "wake_word_benchmark" / "smart mirror").glob("*.flac"))[0]
    y = load_audio(ww)
    assert 16000 <= len(y) <= 4 * 16000 and y.dtype == np.float32
