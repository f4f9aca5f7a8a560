"""Reading audio files: WAV and FLAC, mono, float32, at the front end's sample rate.

Every recording that reaches the LFBE front end (:mod:`kwshw.features`) goes through
:func:`load_audio`, so training, evaluation and the host runtime see the same samples.

Rules
-----
- Files are read with ``soundfile`` (libsndfile). WAV and FLAC are the supported and
  tested containers; the format is detected from the file's header, not its name (the
  Speech Commands archive has ``.wav.wav`` names).
- Integer PCM is scaled to ``[-1, 1)`` by libsndfile (``int16 / 32768``). Float files are
  taken as they are and clipped to ``[-1, 1]``.
- Several channels are averaged into one (``mean`` over channels).
- A different sample rate is converted with :func:`resample`, an exact rational polyphase
  resampler, or refused with :class:`AudioError` when ``resample=False``.
- Result: a C-contiguous 1-D ``float32`` array with values in ``[-1, 1]``.
"""

from __future__ import annotations

import os
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["AudioError", "load_audio", "resample", "RESAMPLE_WINDOW"]

#: Window of the anti-aliasing FIR filter used by :func:`resample` (``scipy.signal.firwin``
#: window spec). Pinned here, rather than left to scipy's default, so that the definition
#: cannot silently change with a scipy release.
RESAMPLE_WINDOW: tuple[str, float] = ("kaiser", 5.0)


class AudioError(ValueError):
    """An audio file cannot be used: unreadable, empty, or at an unwanted sample rate."""


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Convert ``audio`` from ``orig_rate`` to ``target_rate`` by rational polyphase filtering.

    The ratio is reduced to ``up / down = target_rate / orig_rate`` with ``g = gcd``; the
    signal is upsampled by ``up`` (zero insertion), low-pass filtered and downsampled by
    ``down`` in one polyphase step (``scipy.signal.resample_poly``). The FIR filter is
    ``scipy.signal.firwin(2 * 10 * max(up, down) + 1, 1 / max(up, down),
    window=RESAMPLE_WINDOW)`` scaled by ``up``, i.e. a Kaiser (beta = 5) windowed sinc with its
    cut-off at the lower of the two Nyquist frequencies; the signal is zero-extended at both
    ends. The output has ``ceil(len(audio) * up / down)`` samples and sample ``n`` of the
    output is aligned in time with sample ``n * down / up`` of the input (no delay).

    Parameters
    ----------
    audio : numpy.ndarray
        1-D signal.
    orig_rate, target_rate : int
        Sample rates in Hz (positive integers).

    Returns
    -------
    numpy.ndarray
        The resampled signal, ``float64``. Equal rates return a ``float64`` copy.

    Raises
    ------
    ValueError
        On non-positive rates or a non-1-D input.
    """
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {x.shape}")
    if orig_rate == target_rate:
        return x.copy()
    # Imported here: scipy is needed only when a file is not already at the front end's rate.
    from scipy.signal import resample_poly

    g = gcd(int(orig_rate), int(target_rate))
    up, down = int(target_rate) // g, int(orig_rate) // g
    return resample_poly(x, up, down, window=RESAMPLE_WINDOW, padtype="constant", cval=0.0)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    *,
    resample: bool = True,
    offset: int = 0,
    num_samples: int | None = None,
) -> np.ndarray:
    """Read a WAV or FLAC file as mono ``float32`` in ``[-1, 1]`` at ``sample_rate``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    sample_rate : int, default 16000
        Wanted sample rate in Hz.
    resample : bool, default True
        Convert other sample rates with :func:`kwshw.audio.resample`; when False, a file at
        another rate raises :class:`AudioError`.
    offset : int, default 0
        First sample to return, counted at ``sample_rate`` (after any resampling).
    num_samples : int, optional
        Number of samples to return from ``offset``; ``None`` reads to the end of the file.
        Asking for more than the file holds is an error.

    Returns
    -------
    numpy.ndarray
        1-D ``float32`` array, C-contiguous.

    Raises
    ------
    AudioError
        When the file is missing, unreadable (corrupt or not an audio format libsndfile
        knows), holds no samples, is at another sample rate with ``resample=False``, or the
        requested ``offset``/``num_samples`` lie outside it. The message names the file.
    """
    p = Path(path)
    if offset < 0 or (num_samples is not None and num_samples < 0):
        raise AudioError(f"{p}: negative offset/num_samples ({offset}, {num_samples})")
    if not p.is_file():
        raise AudioError(f"{p}: no such file")
    data, file_rate = _read_file(p, sample_rate, resample, offset, num_samples)
    mono = _mix_down(p, data)
    if file_rate != sample_rate:
        mono = _resample_span(p, mono, file_rate, sample_rate, offset, num_samples)
    return _finish(p, mono)


def _read_file(p: Path, sample_rate: int, convert: bool, offset: int,
               num_samples: int | None) -> tuple[np.ndarray, int]:
    """The file's samples ``(frames, channels)`` as decoded by libsndfile, and its rate;
    every libsndfile failure becomes an :class:`AudioError` naming the file."""
    try:
        with sf.SoundFile(str(p)) as f:
            return _read_open(f, p, sample_rate, convert, offset, num_samples)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
        raise AudioError(f"{p}: cannot read audio ({e})") from e


def _read_open(f: sf.SoundFile, p: Path, sample_rate: int, convert: bool, offset: int,
               num_samples: int | None) -> tuple[np.ndarray, int]:
    """Read from the open file ``f``: at the wanted rate only the requested span, at another
    rate (to be resampled) everything."""
    file_rate = int(f.samplerate)
    n_file = int(f.frames)
    if n_file <= 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    if file_rate != sample_rate and not convert:
        raise AudioError(
            f"{p}: sample rate is {file_rate} Hz, {sample_rate} Hz is required "
            "(pass resample=True to convert it)"
        )
    if file_rate != sample_rate:
        return f.read(dtype="float32", always_2d=True), file_rate
    # Read only the requested part: background-noise files are minutes long and the datasets
    # cut 1 s clips out of them.
    stop = _span_stop(p, offset, num_samples, n_file, "")
    f.seek(offset)
    return f.read(stop - offset, dtype="float32", always_2d=True), file_rate


def _span_stop(p: Path, offset: int, num_samples: int | None, n: int, unit: str) -> int:
    """End of the requested span ``[offset, stop)`` of ``n`` samples, refused if it does not
    fit (``unit`` qualifies ``n`` in the message)."""
    stop = n if num_samples is None else offset + num_samples
    if stop > n or offset > n:
        raise AudioError(f"{p}: samples [{offset}, {stop}) requested, the file has {n}{unit}")
    return stop


def _mix_down(p: Path, data: np.ndarray) -> np.ndarray:
    """One channel from ``(frames, channels)``: the mean over channels (``float64``) when
    there are several."""
    if data.shape[0] == 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    return data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0]


def _resample_span(p: Path, mono: np.ndarray, file_rate: int, sample_rate: int, offset: int,
                   num_samples: int | None) -> np.ndarray:
    """The whole file converted to ``sample_rate``, then the requested span of it."""
    mono = resample(mono, file_rate, sample_rate)
    stop = _span_stop(p, offset, num_samples, len(mono), f" at {sample_rate} Hz")
    return mono[offset:stop]


def _finish(p: Path, mono: np.ndarray) -> np.ndarray:
    """Refuse non-finite samples; clip to ``[-1, 1]``; C-contiguous ``float32``."""
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{p}: the file holds NaN or infinite samples")
    # Float files and the resampler's overshoot can leave [-1, 1]; a 16-bit ADC cannot.
    out = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    return np.ascontiguousarray(out)
