"""Training windows of a stream of non-keyword clips, at every alignment.

A 12-class model trained only on centred 1 s clips has never seen what a detector sees most of
the time in a stream: a word the window only half covers, the end of one word and the start of
the next, half a word beside noise. Run over ordinary speech it fires thousands of times per
hour. These windows teach it that such audio is not a keyword: the training split's
non-keyword clips (``_unknown_`` and ``_silence_``) are spliced into one stream in a seeded
order (:func:`kwshw.streams.build_stream`), its features are computed as the board computes
them (:func:`kwshw.features.lfbe` of the whole stream), and windows are drawn at random among
all of the stream's windows (``crossing_only=True``: only among those whose span crosses a
clip boundary). A window is ``_silence_`` when every sample it covers comes from
``_silence_`` clips, ``_unknown_`` otherwise. Only training clips go in, so nothing held back
is seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .features import FeatureConfig, Normalizer, stack_windows
from .frontends import lfbe
from .streams import build_stream

__all__ = ["stream_windows"]


def _windows(starts: np.ndarray, n_frames: int, cfg: FeatureConfig,
             crossing_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newest-frame indices of the stream's windows (or only those that cross a segment
    boundary), with the first and last segment each one covers."""
    ends = np.arange(cfg.span - 1, n_frames)
    lo = (ends - (cfg.span - 1)) * cfg.hop_length
    hi = ends * cfg.hop_length + cfg.win_length - 1  # last sample of the newest frame
    first = np.searchsorted(starts, lo, side="right") - 1
    last = np.searchsorted(starts, hi, side="right") - 1
    keep = last > first if crossing_only else np.ones(len(ends), bool)
    return ends[keep], first[keep], last[keep]


def stream_windows(clips: Sequence[tuple[str, np.ndarray, int]], cfg: FeatureConfig,
                   normalizer: Normalizer, *, n_windows: int, silence: int, unknown: int,
                   seed: int = 0, crossing_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Normalized model windows of a stream of the clips, and their labels.

    Parameters
    ----------
    clips : sequence of (str, numpy.ndarray, int)
        ``(key, audio, label)`` of the training split's non-keyword clips, at
        ``cfg.sample_rate``.
    cfg : FeatureConfig
        Front end and model window.
    normalizer : Normalizer
        The training normalization.
    n_windows : int
        Windows wanted (fewer when the stream has fewer).
    silence, unknown : int
        Label indices of ``_silence_`` and ``_unknown_``.
    seed : int
        Order of the clips and choice of the windows.
    crossing_only : bool
        Only windows whose span crosses a clip boundary.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``float32 (n, n_inputs)`` windows and ``int64 (n,)`` labels, in stream order.
    """
    if n_windows <= 0 or not clips:
        return np.zeros((0, cfg.n_inputs), np.float32), np.zeros(0, np.int64)
    stream = build_stream([(k, a) for k, a, _ in clips], [], sample_rate=cfg.sample_rate,
                          seed=seed, min_gap_s=0.0)
    label_of = {k: lab for k, _, lab in clips}
    starts = np.array([a for a, _, _ in stream.segments], np.int64)
    spoken = np.array([label_of[k] != silence for _, _, k in stream.segments], np.int64)
    spoken_before = np.concatenate([[0], np.cumsum(spoken)])
    frames = lfbe(stream.audio, cfg)
    ends, first, last = _windows(starts, len(frames), cfg, crossing_only)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ends), size=min(n_windows, len(ends)), replace=False))
    ends, first, last = ends[pick], first[pick], last[pick]
    any_speech = spoken_before[last + 1] - spoken_before[first] > 0
    y = np.where(any_speech, unknown, silence).astype(np.int64)
    x = stack_windows(normalizer.apply(frames), cfg, ends)
    return np.ascontiguousarray(x, dtype=np.float32), y
