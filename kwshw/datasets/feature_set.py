"""The features of a list of clips and their model windows (what :func:`kwshw.datasets.extract`
returns)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kwshw.features import FeatureConfig, Normalizer

from .items import Item

__all__ = ["FeatureSet"]


@dataclass
class FeatureSet:
    """LFBE features of a list of clips (and augmented copies) plus their model windows.

    Clips are stored back to back: clip ``c`` is ``frames[offsets[c]:offsets[c + 1]]``. Clip
    ``c`` is copy ``copy[c]`` (0 = clean, 1.. = augmented) of ``items[item_index[c]]``; copies
    are in copy-major order. Example ``e`` is the window ending at frame ``example_end[e]`` of
    clip ``example_clip[e]``.

    Attributes
    ----------
    cfg : FeatureConfig
    items : list of Item
    label_names : list of str or None
    frames : numpy.ndarray
        ``float32 (total_frames, n_mels)``, unnormalized LFBE.
    offsets : numpy.ndarray
        ``int64 (n_clips + 1,)``.
    item_index, copy : numpy.ndarray
        ``int64 (n_clips,)``.
    example_clip, example_end : numpy.ndarray
        ``int64 (n_examples,)``.
    skipped : list of (Item, str)
        Clips left out because their audio could not be read, with the reason.
    """

    cfg: FeatureConfig
    items: list[Item]
    label_names: list[str] | None
    frames: np.ndarray
    offsets: np.ndarray
    item_index: np.ndarray
    copy: np.ndarray
    example_clip: np.ndarray
    example_end: np.ndarray
    skipped: list[tuple[Item, str]] = dataclasses.field(default_factory=list)

    @property
    def n_clips(self) -> int:
        """Number of clips (items times copies)."""
        return len(self.item_index)

    @property
    def n_examples(self) -> int:
        """Number of model windows."""
        return len(self.example_clip)

    @property
    def clip_labels(self) -> np.ndarray:
        """``int64`` label index of every clip."""
        return np.array([self.items[i].label_index for i in self.item_index], dtype=np.int64)

    @property
    def example_labels(self) -> np.ndarray:
        """``int64`` label index of every example."""
        return self.clip_labels[self.example_clip]

    def clip(self, c: int) -> np.ndarray:
        """Features of clip ``c``, ``(n_frames, n_mels)``."""
        return self.frames[self.offsets[c] : self.offsets[c + 1]]

    def fit_normalizer(self, clean_only: bool = True, min_std: float = 1e-3) -> Normalizer:
        """:meth:`kwshw.features.Normalizer.fit` over all frames (of the clean copies only by
        default, so that the statistics do not depend on the augmentation)."""
        sel = np.flatnonzero(self.copy == 0) if clean_only else np.arange(self.n_clips)
        if sel.size == 0:
            raise ValueError("no clean copies in this FeatureSet; pass clean_only=False")
        return Normalizer.fit((self.clip(int(c)) for c in sel), min_std=min_std)

    def windows(
        self, normalizer: Normalizer, examples: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs and labels of the examples.

        Identical to :func:`kwshw.features.stack_window` on ``normalizer.apply(clip)`` for each
        example (frames before the clip start are 0), but vectorized.

        Parameters
        ----------
        normalizer : Normalizer
            Feature normalization (fit on the training set).
        examples : sequence of int, optional
            Which examples (default all); use it to build batches of a large set.

        Returns
        -------
        X : numpy.ndarray
            ``float32 (n, n_inputs)``.
        y : numpy.ndarray
            ``int64 (n,)`` label indices.
        """
        e = np.arange(self.n_examples) if examples is None else np.asarray(examples, np.int64)
        cfg = self.cfg
        clip = self.example_clip[e]
        rel = (
            self.example_end[e][:, None] + (np.arange(cfg.context) - (cfg.context - 1)) * cfg.stride
        )
        valid = rel >= 0
        rows = np.where(valid, self.offsets[clip][:, None] + rel, 0)
        x = normalizer.apply(self.frames[rows])  # (n, context, n_mels)
        x[~valid] = 0.0
        return x.reshape(len(e), cfg.n_inputs), self.clip_labels[clip]

