"""Model windows of a clip: where the keyword is and which windows a clip gives.

The rules are named by :attr:`kwshw.datasets.Item.window` (``"last"``, ``"centroid"``,
``"all:S"``); the package docstring says which corpus uses which.
"""

from __future__ import annotations

import re

import numpy as np

from kwshw.features import FeatureConfig
from kwshw.quantize import round_half_up

__all__ = ["WINDOW_RE", "keyword_end", "window_ends"]

#: Syntax of a window rule; group 2 is the step of ``"all:S"``.
WINDOW_RE = re.compile(r"^(last|centroid|all:([1-9][0-9]*))$")


def keyword_end(audio: np.ndarray, cfg: FeatureConfig) -> int:
    """Newest-frame index of the window centred on the keyword of a clean clip.

    1. ``P[t]``: energy (sum of squared samples) of LFBE frame ``t`` (the framing of
       :func:`kwshw.features.lfbe`, rectangular window).
    2. Background level ``b``: the 20th percentile of ``P`` over the frames above one LSB of
       16-bit audio (``P > win_length * 2**-30``), 0 if there are none. Digital silence, which
       the benchmark clips have at both ends, is left out so it cannot pull ``b`` to 0.
    3. ``w[t] = max(10 log10(P[t] / b) - 6, 0)``: decibels by which the frame exceeds the
       background by more than 6 dB (``P[t]`` if ``b`` is 0). Decibels rather than energy
       because many benchmark clips start with a microphone pop that holds more energy than
       the word but lasts only a few frames.
    4. The ``span``-frame stretch ``[a, a + span)`` with the largest ``sum(w)`` (first one on
       ties), so that such a pop far from the word cannot pull the window off it.
    5. Centroid ``c = sum(t * w[t]) / sum(w[t])`` over that stretch (its middle when all ``w``
       are 0) and the result ``floor(c + (span - 1) / 2 + 0.5)``, limited to
       ``[min(span, n) - 1, n - 1]`` for ``n`` frames.

    Parameters
    ----------
    audio : numpy.ndarray
        Clean clip (before augmentation), samples in ``[-1, 1]``.
    cfg : FeatureConfig
        Front end and window configuration.

    Returns
    -------
    int
        The frame index.
    """
    x = np.asarray(audio, dtype=np.float64)
    if len(x) < cfg.win_length:
        x = np.concatenate([x, np.zeros(cfg.win_length - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.win_length)[:: cfg.hop_length]
    p = np.einsum("ij,ij->i", frames, frames)
    n = len(p)
    audible = p[p > cfg.win_length * 2.0**-30]
    background = float(np.percentile(audible, 20)) if audible.size else 0.0
    if background > 0.0:
        w = np.maximum(10.0 * np.log10(np.maximum(p, 1e-300) / background) - 6.0, 0.0)
    else:
        w = p
    span = min(cfg.span, n)
    sums = np.convolve(w, np.ones(span), mode="valid")  # sums[a] = w[a:a + span].sum()
    a = int(np.argmax(sums))
    t = np.arange(a, a + span)
    ws = w[a : a + span]
    c = (a + (span - 1) / 2) if ws.sum() <= 0 else float(np.einsum("i,i->", t, ws) / ws.sum())
    return _clip_end(int(round_half_up(c + (cfg.span - 1) / 2)), n, cfg)


def _clip_end(end: int, n: int, cfg: FeatureConfig) -> int:
    return int(min(max(end, min(cfg.span, n) - 1), n - 1))


def window_ends(
    window: str, n: int, cfg: FeatureConfig, centroid_end: int | None = None
) -> np.ndarray:
    """Newest-frame indices of the model windows of a clip with ``n`` feature frames.

    Parameters
    ----------
    window : str
        ``"last"`` -> ``[n - 1]``; ``"centroid"`` -> ``[centroid_end]`` (limited to
        ``[min(span, n) - 1, n - 1]``); ``"all:S"`` -> ``n - 1, n - 1 - S, ...`` down to
        ``min(span, n) - 1``, in increasing order.
    n : int
        Number of feature frames of the clip.
    cfg : FeatureConfig
        Gives the window span.
    centroid_end : int, optional
        Required for ``"centroid"`` (from :func:`keyword_end`, moved by any time shift).

    Returns
    -------
    numpy.ndarray
        ``int64`` indices.
    """
    m = WINDOW_RE.match(window)
    if not m:
        raise ValueError(f"unknown window rule {window!r}")
    if window == "last":
        return np.array([n - 1], dtype=np.int64)
    if window == "centroid":
        if centroid_end is None:
            raise ValueError("window rule 'centroid' needs centroid_end")
        return np.array([_clip_end(centroid_end, n, cfg)], dtype=np.int64)
    step = int(m.group(2))
    first = min(cfg.span, n) - 1
    return np.arange(n - 1, first - 1, -step, dtype=np.int64)[::-1].copy()

