"""Silence clips cut from the ``_background_noise_`` recordings of the full Speech Commands set.

Each recording is divided in time (train, then validation, then test) so that no stretch of
noise is in two splits; the rule is in the package docstring, "Silence clips".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

from .folders import audio_files
from .items import DatasetError, Item

__all__ = ["cut_background"]


def _lengths(files: list[Path], sample_rate: int) -> list[int]:
    """Lengths of the recordings in samples at ``sample_rate``, read from their headers."""
    lengths = []
    for p in files:
        try:
            info = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError) as e:
            raise DatasetError(f"unreadable audio: {p}: {e}") from e
        # Lengths at the dataset's rate, as load_audio returns the file after resampling.
        lengths.append(math.ceil(info.frames * sample_rate / info.samplerate))
    return lengths


def cut_background(
    folder: Path,
    n_words: dict[str, int],
    silence_percentage: float,
    validation_percentage: float,
    testing_percentage: float,
    sample_rate: int,
) -> dict[str, list[Item]]:
    """Silence clips (label index 0) cut from the background recordings of ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        The ``_background_noise_`` folder.
    n_words : dict of str to int
        Number of word clips of every split; a split gets ``ceil(silence_percentage / 100 *
        n_words[split])`` clips.
    silence_percentage, validation_percentage, testing_percentage : float
        Number of silence clips and the time division of the recordings, in percent.
    sample_rate : int
        Rate of the dataset; clips are 1 s.

    Returns
    -------
    dict of str to list of Item
        The clips of every split.
    """
    files = audio_files(folder)
    if not files:
        raise DatasetError(f"{folder}: holds no .wav/.flac files to cut silence clips from")
    lengths = _lengths(files, sample_rate)
    clip = sample_rate  # 1 s
    t_frac = testing_percentage / 100.0
    v_frac = validation_percentage / 100.0
    bounds = {
        "train": (0.0, 1.0 - v_frac - t_frac),
        "validation": (1.0 - v_frac - t_frac, 1.0 - t_frac),
        "test": (1.0 - t_frac, 1.0),
    }
    out: dict[str, list[Item]] = {}
    for s, (a, b) in bounds.items():
        n = math.ceil(silence_percentage / 100.0 * n_words[s])
        regions = []  # (path, first start, number of possible starts)
        for p, length in zip(files, lengths, strict=True):
            lo, hi = int(round(a * length)), int(round(b * length))
            if hi - lo >= clip:
                regions.append((p, lo, hi - lo - clip + 1))
        total = sum(r[2] for r in regions)
        if n and not total:
            raise DatasetError(
                f"{folder}: background recordings too short to cut 1 s {s} silence clips"
            )
        cum = np.cumsum([0] + [r[2] for r in regions])
        clips = []
        for i in range(n):
            u = int((i + 0.5) * total / n)  # evenly spread over all possible starts
            j = int(np.searchsorted(cum, u, side="right") - 1)
            p, lo, _ = regions[j]
            clips.append(Item(str(p), 0, None, offset=lo + u - int(cum[j]), num_samples=clip))
        out[s] = clips
    return out
