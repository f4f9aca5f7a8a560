"""Augmentation of the audio before the front end: time shift, real background noise at a
random SNR, gain (the order and distributions are in the package docstring)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .items import Item, load_item

__all__ = ["Augmentation", "Augmented", "Augmenter", "mix_at_snr"]


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``signal`` at ``snr_db``: ``signal + a * noise``.

    ``a`` is chosen so that ``10 log10(sum(signal^2) / sum((a * noise)^2)) = snr_db``.
    Powers are taken over the whole clip (silent parts of the signal included).

    Parameters
    ----------
    signal, noise : numpy.ndarray
        Equal-length 1-D arrays.
    snr_db : float
        Wanted signal-to-noise ratio in dB.

    Returns
    -------
    numpy.ndarray
        ``float64`` mixture; ``signal`` unchanged (as ``float64``) when either power is 0, as
        no noise level gives the asked ratio then.
    """
    s = np.asarray(signal, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    if s.shape != n.shape:
        raise ValueError(f"signal and noise lengths differ: {s.shape} vs {n.shape}")
    # einsum, not np.dot: OpenBLAS runs long dot products multi-threaded, which is ~100x
    # slower on a busy machine.
    ps, pn = float(np.einsum("i,i->", s, s)), float(np.einsum("i,i->", n, n))
    if ps <= 0.0 or pn <= 0.0:
        return s.copy()
    a = math.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return s + a * n


@dataclass(frozen=True)
class Augmentation:
    """Parameters of :class:`Augmenter` (hashable, part of the feature cache key).

    Attributes
    ----------
    time_shift_ms : float
        Maximum absolute time shift; the shift is uniform over the integer samples in
        ``[-time_shift_ms, +time_shift_ms]``. Positive shifts delay the audio.
    noise_prob : float
        Probability of mixing in background noise.
    snr_db : tuple of float
        ``(low, high)`` of the uniform SNR distribution in dB (see :func:`mix_at_snr`).
    gain_db : tuple of float
        ``(low, high)`` of the uniform gain in dB applied after mixing.
    min_noise_rms : float
        Noise clips quieter than this RMS are not used: scaling near-digital silence to an SNR
        would only amplify quantization noise.
    """

    time_shift_ms: float = 100.0
    noise_prob: float = 0.8
    snr_db: tuple[float, float] = (0.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    min_noise_rms: float = 1e-4

    def __post_init__(self) -> None:
        if self.time_shift_ms < 0 or not 0.0 <= self.noise_prob <= 1.0:
            raise ValueError(f"bad augmentation parameters: {self}")
        for lo, hi in (self.snr_db, self.gain_db):
            if lo > hi:
                raise ValueError(f"range low > high in {self}")


@dataclass
class Augmented:
    """Result of one :class:`Augmenter` call.

    Attributes
    ----------
    audio : numpy.ndarray
        Augmented ``float32`` clip, same length as the input.
    shift : int
        Applied time shift in samples (positive = later).
    snr_db : float or None
        SNR the noise was mixed at, ``None`` when no noise was added.
    gain_db : float
        Applied gain.
    noise_index : int or None
        Index of the noise clip used (into :attr:`Augmenter.noise`).
    """

    audio: np.ndarray
    shift: int
    snr_db: float | None
    gain_db: float
    noise_index: int | None


class Augmenter:
    """Random time shift, real background noise at a random SNR, random gain.

    Parameters
    ----------
    params : Augmentation
        Distributions of the random choices.
    noise : sequence of Item or numpy.ndarray
        Background-noise clips (e.g. ``Dataset.noise_items`` of the *training* split, so that
        no held-out noise leaks into training); arrays are used as given, items are read at
        ``sample_rate``. Clips below ``params.min_noise_rms`` are dropped. May be empty: then
        no noise is mixed.
    sample_rate : int, default 16000
        Rate of the audio the augmenter is applied to.
    """

    def __init__(
        self,
        params: Augmentation = Augmentation(),  # noqa: B008 (frozen, immutable)
        noise: Sequence[Item | np.ndarray] = (),
        sample_rate: int = 16000,
    ) -> None:
        self.params = params
        self.sample_rate = sample_rate
        clips = []
        for n in noise:
            x = load_item(n, sample_rate) if isinstance(n, Item) else np.asarray(n, np.float32)
            if (
                x.ndim == 1
                and x.size
                and np.sqrt(np.mean(np.square(x, dtype=np.float64))) >= params.min_noise_rms
            ):
                clips.append(x.astype(np.float32, copy=False))
        self.noise: list[np.ndarray] = clips
        self.max_shift = int(round(params.time_shift_ms * sample_rate / 1000.0))

    def cache_key(self) -> dict:
        """What the augmented features depend on: the parameters and the noise samples."""
        h = hashlib.sha256()
        for x in self.noise:  # by content: a few ms for the archive's 218 clips
            h.update(np.int64(len(x)).tobytes())
            h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        return {
            "params": dataclasses.asdict(self.params),
            "sample_rate": self.sample_rate,
            "noise": h.hexdigest(),
        }

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> Augmented:
        """Augment one clip.

        Parameters
        ----------
        audio : numpy.ndarray
            1-D clip in ``[-1, 1]``.
        rng : numpy.random.Generator
            Source of all random choices.

        Returns
        -------
        Augmented
            The new clip and the choices made.
        """
        x = np.asarray(audio, dtype=np.float64)
        n = len(x)
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1)) if self.max_shift else 0
        y = np.zeros(n)
        if 0 <= shift < n:
            y[shift:] = x[: n - shift]
        elif -n < shift < 0:
            y[: n + shift] = x[-shift:]

        snr = noise_index = None
        if self.noise and rng.random() < self.params.noise_prob:
            noise_index = int(rng.integers(len(self.noise)))
            src = self.noise[noise_index]
            start = int(rng.integers(len(src)))
            # Excerpt of n samples from a random start, wrapping around short noise clips.
            seg = np.take(src, np.arange(start, start + n), mode="wrap")
            snr = float(rng.uniform(*self.params.snr_db))
            if np.einsum("i,i->", y, y) > 0.0 and np.einsum("i,i->", seg, seg) > 0.0:
                y = mix_at_snr(y, seg, snr)
            else:  # no noise level gives an SNR against digital silence
                snr = noise_index = None
        gain = float(rng.uniform(*self.params.gain_db))
        y = np.clip(y * 10.0 ** (gain / 20.0), -1.0, 1.0)
        return Augmented(y.astype(np.float32), shift, snr, gain, noise_index)
