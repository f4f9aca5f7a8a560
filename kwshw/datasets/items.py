"""Clips and the labelled list of clips every corpus reader returns."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwshw.audio import AudioError, load_audio

from .windows import WINDOW_RE

__all__ = ["Dataset", "DatasetError", "Item", "load_item"]


class DatasetError(ValueError):
    """A corpus cannot be used: missing folders, empty classes, no files, unreadable audio."""



@dataclass(frozen=True)
class Item:
    """One clip of a corpus.

    Attributes
    ----------
    path : str
        Absolute path of the audio file.
    label_index : int
        Index into the dataset's ``labels``.
    speaker : str or None
        Speaker id, ``None`` when unknown (silence, wake-word clips).
    offset : int
        First sample of the clip in the file (at the dataset's sample rate); 0 for whole files.
    num_samples : int or None
        Length of the clip in samples, ``None`` for "to the end of the file".
    window : str
        Rule that turns the clip into model windows: ``"last"``, ``"centroid"`` or ``"all:S"``
        (see the module docstring and :func:`window_ends`).
    """

    path: str
    label_index: int
    speaker: str | None
    offset: int = 0
    num_samples: int | None = None
    window: str = "last"

    def __post_init__(self) -> None:
        if not WINDOW_RE.match(self.window):
            raise ValueError(f"unknown window rule {self.window!r} (last, centroid, all:S)")

    @property
    def key(self) -> str:
        """Identity of the clip's audio: path plus, for cut clips, offset and length."""
        if self.offset == 0 and self.num_samples is None:
            return self.path
        return f"{self.path}#{self.offset}+{self.num_samples}"


class Dataset(Sequence):
    """A labelled list of clips: ``labels`` (class names) and ``items`` (:class:`Item`).

    Parameters
    ----------
    labels : sequence of str
        Class names; ``Item.label_index`` indexes this list.
    items : sequence of Item
        The clips, in a deterministic order.
    split : str
        ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.
    root : str or os.PathLike, optional
        Folder the corpus was read from.
    noise_items : sequence of Item, optional
        Background-noise clips of the same split usable by :class:`Augmenter`.
    sample_rate : int, default 16000
        Rate at which the clips are read.
    notes : sequence of str, optional
        One-line remarks on how the corpus was read (e.g. keyword folders another corpus
        supplies), for the user to see.
    """

    def __init__(
        self,
        labels: Sequence[str],
        items: Sequence[Item],
        split: str = "all",
        root: str | os.PathLike | None = None,
        noise_items: Sequence[Item] = (),
        sample_rate: int = 16000,
        notes: Sequence[str] = (),
    ) -> None:
        self.notes: list[str] = list(notes)
        self.labels: list[str] = list(labels)
        self.items: list[Item] = list(items)
        self.split = split
        self.root = None if root is None else Path(root)
        self.noise_items: list[Item] = list(noise_items)
        self.sample_rate = sample_rate
        for it in self.items:
            if not 0 <= it.label_index < len(self.labels):
                raise DatasetError(f"{it.path}: label index {it.label_index} out of range")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.subset(range(len(self.items))[i])
        return self.items[i]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"{len(self)} clips, counts={self.counts()})"
        )

    def counts(self) -> dict[str, int]:
        """Number of clips per class name (every class listed, also when 0)."""
        c = dict.fromkeys(self.labels, 0)
        for it in self.items:
            c[self.labels[it.label_index]] += 1
        return c

    def speakers(self) -> set[str]:
        """Set of the known speaker ids in the dataset."""
        return {it.speaker for it in self.items if it.speaker is not None}

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """A :class:`Dataset` with the clips at ``indices`` (same labels and noise clips)."""
        return Dataset(
            self.labels,
            [self.items[int(i)] for i in indices],
            self.split,
            self.root,
            self.noise_items,
            self.sample_rate,
            self.notes,
        )

    def load(self, i: int | Item) -> np.ndarray:
        """Audio of clip ``i`` (or of the given item); see :func:`load_item`."""
        item = self.items[i] if isinstance(i, int | np.integer) else i
        return load_item(item, self.sample_rate)


def load_item(item: Item, sample_rate: int = 16000) -> np.ndarray:
    """Read the audio of ``item`` (mono ``float32`` at ``sample_rate``).

    Parameters
    ----------
    item : Item
        The clip.
    sample_rate : int, default 16000
        Wanted sample rate; other rates are resampled (:func:`kwshw.audio.load_audio`).

    Returns
    -------
    numpy.ndarray
        The samples.

    Raises
    ------
    DatasetError
        When the file is missing, unreadable or empty (the message names the file).
    """
    try:
        return load_audio(item.path, sample_rate, offset=item.offset, num_samples=item.num_samples)
    except AudioError as e:
        raise DatasetError(f"unreadable audio: {e}") from e
