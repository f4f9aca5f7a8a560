"""Log-mel filterbank energy (LFBE) front end.

The configuration is carried by every model file, so a model is always paired
with the exact front end it was trained on.

The front end, exactly (``docs/features.md`` has the same text with the numbers):

1. Framing without padding: frame ``t`` holds samples ``[t * hop, t * hop + win)``;
   ``n_frames = 1 + (len(audio) - win) // hop``. Audio shorter than one window is zero-padded
   at the end to ``win`` samples (one frame). No pre-emphasis, no DC removal, no dither.
2. Each frame is multiplied by a periodic Hann window ``w[n] = 0.5 - 0.5 cos(2 pi n / win)``.
3. Power spectrum ``P[k] = |rfft(frame, n_fft)[k]|^2`` (frame zero-padded to ``n_fft``; no
   scaling by the window or the FFT length), ``k = 0 .. n_fft / 2``.
4. Mel energies ``E[m] = sum_k P[k] H[k, m]`` with the HTK-mel triangular filterbank ``H`` of
   :func:`mel_filterbank` (peak 1, no area normalization).
5. ``LFBE[t, m] = ln(max(E[m], log_floor))``.
6. Smoothing (``smooth = k``, default 4): the feature frame ``t`` is the mean of ``LFBE[t - k +
   1 .. t]`` (fewer at the clip start, ``t < k - 1``), computed in float64. With the window's
   stride of 4 hops every stacked frame then summarizes the 40 ms it stands for instead of
   sampling one 25 ms slice of it (``smooth = 1`` turns this off).

The model input of one step is :func:`stack_window` over *normalized* features
(:class:`Normalizer`): ``context`` frames, ``stride`` hops apart, the newest last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "FeatureConfig",
    "parse_counts",
    "Normalizer",
    "FrameSmoother",
    "n_frames",
    "hann_window",
    "hz_to_mel",
    "lfbe",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
    "smooth_frames",
    "stack_window",
    "stack_windows",
]


def parse_counts(text: str, names: Sequence[str], meaning: str) -> tuple[int, ...]:
    """``"a,b,..."``: ``len(names)`` comma-separated integers of at least 1 (the command-line
    form of a window, :meth:`FeatureConfig.parse_window`, or of a convolution,
    :func:`kwshw.layers.parse_conv`).

    Raises
    ------
    ValueError
        Naming the fields (``names``) and what they are (``meaning``).
    """
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != len(names):
        raise ValueError(f"expected {','.join(names)} ({len(names)} integers: {meaning}), "
                         f"got {text!r}")
    if min(values) < 1:
        raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must be at least 1, "
                         f"got {text!r}")
    return values


@dataclass(frozen=True)
class FeatureConfig:
    """Exact definition of the front end and of the stacked input window.

    Attributes
    ----------
    sample_rate : int
        Audio sample rate in Hz; other rates are resampled or refused by :mod:`kwshw.audio`.
    win_length : int
        Analysis window length in samples (25 ms).
    hop_length : int
        Hop between feature frames in samples (10 ms); the host sends one frame per hop.
    n_fft : int
        FFT size (>= ``win_length``).
    n_mels : int
        Number of mel bands (one feature frame has ``n_mels`` values).
    fmin, fmax : float
        Edges of the mel filterbank in Hz.
    log_floor : float
        Energies are floored at this value before the natural logarithm.
    context : int
        Number of feature frames stacked into the model's input window.
    stride : int
        Hops between two stacked frames; the window spans ``(context - 1) * stride + 1`` frames.
    smooth : int
        Every feature frame is the mean of the last ``smooth`` log-mel frames
        (:func:`smooth_frames`); 1 is none. Model files written before this field existed
        read as 1, the front end they were trained with.
    integer : bool
        ``True``: the features are those of the integer front end
        (:class:`kwshw.features_int.IntFrontEnd`, the one the standalone gateware computes),
        so that training, the golden model and the chip see the same integers;
        :mod:`kwshw.frontends` picks the front end a configuration names. ``False`` (the
        default, and every model file written before the field existed): the float64 front
        end of this module.
    """

    sample_rate: int = 16000
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    log_floor: float = 1e-6
    context: int = 25
    stride: int = 4
    smooth: int = 4
    integer: bool = False

    @property
    def n_inputs(self) -> int:
        """Length of the model's input vector (``context * n_mels``)."""
        return self.context * self.n_mels

    @property
    def span(self) -> int:
        """Number of consecutive feature frames the input window covers."""
        return (self.context - 1) * self.stride + 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # Recorded only when set: a float-front-end model file (and its hash, and the feature
        # caches named by this dict) stays what it was before the field existed.
        if not self.integer:
            del d["integer"]
        return d

    @staticmethod
    def parse_window(text: str) -> dict[str, int]:
        """``"STEPS,STRIDE,SMOOTH"`` (time steps in the window, 10 ms frames per step, frames
        averaged per step; the default window is ``25,4,4``) as the fields ``context``,
        ``stride`` and ``smooth``.

        Raises
        ------
        ValueError
            Unless three integers of at least 1.
        """
        steps, stride, smooth = parse_counts(
            text, ("STEPS", "STRIDE", "SMOOTH"),
            "time steps in the window, 10 ms frames per step, frames averaged per step")
        return {"context": steps, "stride": stride, "smooth": smooth}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature configuration keys: {sorted(unknown)}")
        # Written before smoothing existed: those models were trained without it.
        return cls(**{"smooth": 1, **d})


# ---------------------------------------------------------------------------------------------
# Mel scale and filterbank
# ---------------------------------------------------------------------------------------------


def hz_to_mel(f: float | np.ndarray) -> float | np.ndarray:
    """HTK mel scale: ``mel = 2595 * log10(1 + f / 700)``.

    Parameters
    ----------
    f : float or numpy.ndarray
        Frequency in Hz.

    Returns
    -------
    float or numpy.ndarray
        Mel value(s).
    """
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`hz_to_mel`: ``f = 700 * (10 ** (mel / 2595) - 1)``.

    Parameters
    ----------
    m : float or numpy.ndarray
        Mel value(s).

    Returns
    -------
    float or numpy.ndarray
        Frequency in Hz.
    """
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _check_config(cfg: FeatureConfig) -> None:
    if cfg.sample_rate <= 0 or cfg.win_length <= 0 or cfg.hop_length <= 0:
        raise ValueError(f"sample_rate, win_length and hop_length must be positive: {cfg}")
    if cfg.n_fft < cfg.win_length:
        raise ValueError(f"n_fft ({cfg.n_fft}) must be >= win_length ({cfg.win_length})")
    if cfg.n_mels <= 0:
        raise ValueError(f"n_mels must be positive, got {cfg.n_mels}")
    if not 0.0 <= cfg.fmin < cfg.fmax <= cfg.sample_rate / 2:
        raise ValueError(
            f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={cfg.fmin}, fmax={cfg.fmax}, "
            f"sample_rate={cfg.sample_rate}"
        )
    if not cfg.log_floor > 0.0:
        raise ValueError(f"log_floor must be positive, got {cfg.log_floor}")
    if cfg.context <= 0 or cfg.stride <= 0:
        raise ValueError(f"context and stride must be positive, got {cfg.context}, {cfg.stride}")
    if not isinstance(cfg.smooth, int) or cfg.smooth < 1:
        raise ValueError(f"smooth must be a positive number of frames, got {cfg.smooth!r}")
    if not isinstance(cfg.integer, bool):
        raise ValueError(f"integer must be True or False, got {cfg.integer!r}")


@lru_cache(maxsize=16)
def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular HTK-mel filterbank of ``cfg``, shape ``(n_fft // 2 + 1, n_mels)``.

    ``n_mels + 2`` edge frequencies ``e_0 .. e_{n_mels+1}`` are equally spaced on the HTK mel
    scale (:func:`hz_to_mel`) from ``fmin`` to ``fmax`` and mapped back to Hz. Filter ``m``
    (``0``-based) rises linearly from 0 at ``e_m`` to 1 at ``e_{m+1}`` and falls back to 0 at
    ``e_{m+2}``, evaluated at the FFT bin frequencies ``f_k = k * sample_rate / n_fft``::

        H[k, m] = max(0, min((f_k - e_m) / (e_{m+1} - e_m), (e_{m+2} - f_k) / (e_{m+2} - e_{m+1})))

    No area normalization is applied (every filter peaks at 1 where a bin hits its centre).
    The matrix is computed once per configuration and cached; it is returned read-only.

    Parameters
    ----------
    cfg : FeatureConfig
        Front end configuration.

    Returns
    -------
    numpy.ndarray
        ``float64`` weights, read-only.

    Raises
    ------
    ValueError
        When the configuration is inconsistent, or a band covers no FFT bin (it would feed the
        model a constant; use fewer bands, a larger ``n_fft`` or a higher ``fmin``).
    """
    _check_config(cfg)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    bins_hz = np.arange(cfg.n_fft // 2 + 1, dtype=np.float64) * cfg.sample_rate / cfg.n_fft
    lo, mid, hi = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (bins_hz[:, None] - lo[None, :]) / (mid - lo)[None, :]
    falling = (hi[None, :] - bins_hz[:, None]) / (hi - mid)[None, :]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(fb.max(axis=0) <= 0.0)
    if empty.size:
        raise ValueError(
            f"mel bands {empty.tolist()} cover no FFT bin with n_fft={cfg.n_fft}, "
            f"n_mels={cfg.n_mels}, fmin={cfg.fmin}"
        )
    fb.setflags(write=False)
    return fb


@lru_cache(maxsize=16)
def _band_slices(cfg: FeatureConfig) -> tuple[tuple[int, int, np.ndarray], ...]:
    """Non-zero bin range and weights of every mel filter, for the sparse product in lfbe."""
    fb = mel_filterbank(cfg)
    out = []
    for m in range(cfg.n_mels):
        nz = np.flatnonzero(fb[:, m])
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        out.append((lo, hi, np.ascontiguousarray(fb[lo:hi, m])))
    return tuple(out)


@lru_cache(maxsize=16)
def hann_window(win_length: int) -> np.ndarray:
    """Periodic Hann window ``w[n] = 0.5 - 0.5 cos(2 pi n / win_length)``, read-only ``float64``.

    Parameters
    ----------
    win_length : int
        Window length in samples.

    Returns
    -------
    numpy.ndarray
        The window; ``w[0] = 0`` and the (absent) sample ``w[win_length]`` would be 0 again,
        which is what makes overlapping windows at a hop of ``win_length / 2`` sum to 1.
    """
    n = np.arange(win_length, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    w.setflags(write=False)
    return w


# ---------------------------------------------------------------------------------------------
# LFBE
# ---------------------------------------------------------------------------------------------


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of LFBE frames :func:`lfbe` returns for ``n_samples`` samples of audio.

    Parameters
    ----------
    n_samples : int
        Length of the audio.
    cfg : FeatureConfig
        Front end configuration.

    Returns
    -------
    int
        ``1 + (n_samples - win_length) // hop_length``, and 1 for audio shorter than a window.
    """
    if n_samples <= cfg.win_length:
        return 1
    return 1 + (n_samples - cfg.win_length) // cfg.hop_length


def lfbe(audio: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:  # noqa: B008
    """Log-mel filterbank energies of ``audio`` (see the module docstring for the definition).

    Parameters
    ----------
    audio : numpy.ndarray
        1-D signal at ``cfg.sample_rate`` with samples in ``[-1, 1]`` (as returned by
        :func:`kwshw.audio.load_audio`). Computation is in ``float64`` whatever the input type.
    cfg : FeatureConfig
        Front end configuration.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n_frames, n_mels)``, frame ``t`` starting at sample
        ``t * hop_length``.

    Raises
    ------
    ValueError
        When ``audio`` is not 1-D or holds NaN/inf.
    """
    return smooth_frames(log_mel(audio, cfg), cfg.smooth)


def log_mel(audio: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:  # noqa: B008
    """Steps 1-6 of the front end: the unsmoothed log-mel energies, ``float64 (n_frames,
    n_mels)``. :func:`lfbe` smooths them and rounds to float32; a streaming host smooths them
    one frame at a time (:class:`FrameSmoother`) and gets the same bits."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"lfbe expects 1-D audio, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("lfbe: audio holds NaN or infinite samples")
    bands = _band_slices(cfg)
    win, hop = cfg.win_length, cfg.hop_length
    if len(x) < win:
        x = np.concatenate([x, np.zeros(win - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    spec = np.fft.rfft(frames * hann_window(win), n=cfg.n_fft, axis=1)
    power = spec.real**2 + spec.imag**2
    # Band by band over the few non-zero bins of each filter rather than ``power @ H``: a
    # quarter of the work, and a dense matmul of this size goes multi-threaded in OpenBLAS,
    # which becomes 10x slower on a loaded machine or next to worker processes.
    energy = np.empty((power.shape[0], cfg.n_mels))
    for m, (lo, hi, w) in enumerate(bands):
        energy[:, m] = power[:, lo:hi] @ w
    return np.log(np.maximum(energy, cfg.log_floor))


def smooth_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """Causal running mean over the last ``k`` frames (fewer at the start), as ``float32``.

    ``out[t] = (frames[t - n + 1] + ... + frames[t]) / n`` along axis 0 with
    ``n = min(k, t + 1)``, summed oldest first in float64. Causal, so a streaming host applies
    it frame by frame (:class:`FrameSmoother`, the same additions in the same order, so the
    same bits).
    """
    x = np.asarray(frames, dtype=np.float64)
    if k == 1:
        return x.astype(np.float32)
    acc = np.zeros_like(x)
    for j in range(k - 1, -1, -1):  # oldest first; the zeros before the start add exactly 0
        acc[j:] += x[: len(x) - j]
    n = np.minimum(np.arange(1, len(x) + 1), k).reshape(-1, *([1] * (x.ndim - 1)))
    return (acc / n).astype(np.float32)


class FrameSmoother:
    """:func:`smooth_frames` one frame at a time, for live input.

    Each call takes the newest unsmoothed log-mel frame and returns the smoothed one, equal
    bit for bit to :func:`smooth_frames` over the whole stream.
    """

    def __init__(self, k: int) -> None:
        self.k = int(k)
        self._recent: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self._recent = [*self._recent, np.asarray(frame, np.float64)][-self.k:]
        acc = np.zeros_like(self._recent[0])
        for f in self._recent:
            acc += f
        return (acc / len(self._recent)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Stacked input window
# ---------------------------------------------------------------------------------------------


def _check_frames(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    f = np.asarray(frames)
    if f.ndim != 2 or f.shape[1] != cfg.n_mels:
        raise ValueError(f"frames must have shape (n_frames, {cfg.n_mels}), got {f.shape}")
    return f


def stack_window(frames: np.ndarray, cfg: FeatureConfig, end: int) -> np.ndarray:
    """The model input vector of the window whose newest frame is ``frames[end]``.

    ``x[k * n_mels + band] = frames[end - (context - 1 - k) * stride, band]`` for
    ``k = 0`` (oldest) ``.. context - 1`` (newest). Frame indices below 0 contribute zeros.

    The stacking is meant for *normalized* features (:meth:`Normalizer.apply`), where 0 is the
    training mean of each band: a window reaching back before the start of a recording is
    filled with the mean, i.e. "no information", not with a silence that never occurs in real
    audio. The hardware's window buffer starts from the same zeros after a reset.

    Parameters
    ----------
    frames : numpy.ndarray
        Normalized features, shape ``(n_frames, n_mels)``.
    cfg : FeatureConfig
        Gives ``n_mels``, ``context`` and ``stride``.
    end : int
        Index of the newest frame, ``0 <= end < n_frames``.

    Returns
    -------
    numpy.ndarray
        ``float32`` vector of length ``cfg.n_inputs``.

    Raises
    ------
    IndexError
        When ``end`` is outside ``[0, n_frames)``.
    """
    return stack_windows(frames, cfg, [end])[0]


def stack_windows(
    frames: np.ndarray, cfg: FeatureConfig, ends: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Several :func:`stack_window` vectors at once, shape ``(len(ends), n_inputs)``.

    Parameters
    ----------
    frames : numpy.ndarray
        Normalized features, shape ``(n_frames, n_mels)``.
    cfg : FeatureConfig
        Gives ``n_mels``, ``context`` and ``stride``.
    ends : sequence of int, optional
        Newest-frame indices; ``None`` means every frame ``0 .. n_frames - 1`` (what a
        streaming detector sees, one decision per hop).

    Returns
    -------
    numpy.ndarray
        ``float32`` array, row ``i`` is ``stack_window(frames, cfg, ends[i])``.

    Raises
    ------
    IndexError
        When an end is outside ``[0, n_frames)``.
    """
    f = _check_frames(frames, cfg)
    n = f.shape[0]
    e = np.arange(n) if ends is None else np.asarray(ends, dtype=np.int64).reshape(-1)
    if e.size and (e.min() < 0 or e.max() >= n):
        raise IndexError(f"window ends must lie in [0, {n}), got {e.min()}..{e.max()}")
    offsets = (np.arange(cfg.context) - (cfg.context - 1)) * cfg.stride  # oldest .. 0
    idx = e[:, None] + offsets[None, :]  # (n_windows, context)
    valid = idx >= 0
    out = f[np.where(valid, idx, 0)].astype(np.float32)  # (n_windows, context, n_mels)
    out[~valid] = 0.0
    return out.reshape(len(e), cfg.context * cfg.n_mels)


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Normalizer:
    """Per-band global mean/standard-deviation normalization of LFBE frames.

    ``apply(frames) = float32((float64(frames) - mean) / std)``, with ``mean`` and ``std``
    taken over every frame of every training clip (one value per mel band).

    Attributes
    ----------
    mean : numpy.ndarray
        ``float64`` per-band mean, shape ``(n_mels,)``.
    std : numpy.ndarray
        ``float64`` per-band standard deviation (population, floored at ``min_std`` when
        fitted), shape ``(n_mels,)``.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if mean.shape != std.shape or mean.size == 0:
            raise ValueError(
                f"mean and std must be equal-length vectors: {mean.shape}, {std.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError("normalizer mean must be finite and std finite and > 0")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_mels(self) -> int:
        """Number of bands."""
        return int(self.mean.size)

    @classmethod
    def fit(cls, features: np.ndarray | Iterable[np.ndarray], min_std: float = 1e-3) -> Normalizer:
        """Estimate per-band mean and standard deviation from training features.

        Parameters
        ----------
        features : numpy.ndarray or iterable of numpy.ndarray
            One ``(n_frames, n_mels)`` array, or several (one per clip); all frames count
            equally.
        min_std : float, default 1e-3
            Floor for the standard deviation, so that a constant band (e.g. always at the log
            floor) does not divide by zero.

        Returns
        -------
        Normalizer

        Raises
        ------
        ValueError
            When no frames are given or the arrays disagree on ``n_mels``.
        """
        chunks = [features] if isinstance(features, np.ndarray) else features
        count, mean, m2 = 0, None, None
        for chunk in chunks:
            c = np.asarray(chunk, dtype=np.float64)
            if c.ndim != 2:
                raise ValueError(f"features must be (n_frames, n_mels) arrays, got {c.shape}")
            if c.shape[0] == 0:
                continue
            if mean is not None and c.shape[1] != mean.size:
                raise ValueError(f"n_mels differs between arrays: {mean.size} vs {c.shape[1]}")
            n_b = c.shape[0]
            mean_b = c.mean(axis=0)
            m2_b = ((c - mean_b) ** 2).sum(axis=0)
            if mean is None:
                count, mean, m2 = n_b, mean_b, m2_b
                continue
            # Chan et al. pairwise update: exact and stable whatever the number of clips.
            delta = mean_b - mean
            total = count + n_b
            mean = mean + delta * (n_b / total)
            m2 = m2 + m2_b + delta**2 * (count * n_b / total)
            count = total
        if mean is None:
            raise ValueError("Normalizer.fit: no feature frames given")
        std = np.maximum(np.sqrt(m2 / count), min_std)
        return cls(mean=mean, std=std)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Normalize ``frames`` (shape ``(..., n_mels)``), returning ``float32``.

        Parameters
        ----------
        frames : numpy.ndarray
            LFBE frames.

        Returns
        -------
        numpy.ndarray
            ``float32((float64(frames) - mean) / std)``.
        """
        f = np.asarray(frames, dtype=np.float64)
        if f.shape[-1] != self.n_mels:
            raise ValueError(f"frames have {f.shape[-1]} bands, the normalizer {self.n_mels}")
        return ((f - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-ready form: ``{"mean": [...], "std": [...]}`` (Python floats, exact)."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            With keys ``"mean"`` and ``"std"`` (equal-length lists of numbers).

        Returns
        -------
        Normalizer

        Raises
        ------
        ValueError
            On missing/unknown keys, unequal lengths, non-finite values or ``std <= 0``.
        """
        if set(d) != {"mean", "std"}:
            raise ValueError(f"normalizer dict needs exactly the keys mean, std; got {sorted(d)}")
        return cls(
            mean=np.asarray(d["mean"], dtype=np.float64), std=np.asarray(d["std"], dtype=np.float64)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normalizer):
            return NotImplemented
        return bool(np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std))

    __hash__ = None  # type: ignore[assignment]
