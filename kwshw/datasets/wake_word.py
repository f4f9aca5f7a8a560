"""The Picovoice wake-word benchmark layout as a binary task (package docstring)."""

from __future__ import annotations

import dataclasses
import os

from .folders import audio_files, check_root, subfolders
from .items import Dataset, DatasetError, Item
from .speech_commands import SpeechCommands
from .splits import DEFAULT_SPLIT_SALT, check_split_args, which_set

__all__ = ["OTHER", "WakeWord"]

OTHER = "_other_"


class WakeWord(Dataset):
    """The wake-word benchmark layout as a binary task: ``labels = ["_other_", keyword]``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with one sub-folder per phrase (``alexa/``, ``computer/``, ``smart mirror/`` ...).
    keyword : str, default "alexa"
        Folder name of the positive class (label index 1).
    split : str, default "train"
        ``"train"``, ``"validation"``, ``"test"`` or ``"all"``; by :func:`which_set` on each
        clip's path relative to the root (speakers are unknown).
    validation_percentage, testing_percentage : float, default 10.0
        Split sizes.
    split_salt : str, default DEFAULT_SPLIT_SALT
        Salt of the hash rule (:func:`which_set`).
    negative_windows : {"centroid", "all"}, default "centroid"
        Window rule of the negative clips: one window at the energy centroid like the
        positives, or every ``all_step``-th window of the clip.
    all_step : int, default 10
        Frames between the windows of ``negative_windows="all"`` (10 = 100 ms).
    speech_commands : str or os.PathLike, optional
        Root of a Speech Commands corpus whose clips (all classes, same split by its own
        rules, window ``"last"``) are added as ``_other_``; its silence clips also become the
        dataset's :attr:`noise_items`.
    sample_rate : int, default 16000
        Rate the clips are read at.

    Raises
    ------
    DatasetError
        When the root or the keyword folder is missing, a phrase folder is empty, or there are
        no negatives.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        keyword: str = "alexa",
        split: str = "train",
        *,
        validation_percentage: float = 10.0,
        testing_percentage: float = 10.0,
        split_salt: str = DEFAULT_SPLIT_SALT,
        negative_windows: str = "centroid",
        all_step: int = 10,
        speech_commands: str | os.PathLike | None = None,
        sample_rate: int = 16000,
    ) -> None:
        check_split_args(split, validation_percentage, testing_percentage)
        if negative_windows not in ("centroid", "all"):
            raise ValueError(
                f"negative_windows must be 'centroid' or 'all', got {negative_windows!r}"
            )
        if all_step < 1:
            raise ValueError(f"all_step must be >= 1, got {all_step}")
        r = check_root(root, "wake-word")
        folders = subfolders(r)
        if keyword not in folders:
            raise DatasetError(
                f"{r}: missing keyword folder {keyword!r} (found: {sorted(folders) or 'none'})"
            )
        neg_window = "centroid" if negative_windows == "centroid" else f"all:{all_step}"
        items: list[Item] = []
        n_neg_folders = 0
        for name, folder in folders.items():
            found = audio_files(folder)
            if not found:
                raise DatasetError(f"{folder}: class folder holds no .wav/.flac files")
            positive = name == keyword
            n_neg_folders += not positive
            for p in found:
                rel = f"{name}/{p.name}"
                s = which_set(rel, validation_percentage, testing_percentage, split_salt)
                if split in ("all", s):
                    items.append(
                        Item(
                            str(p),
                            int(positive),
                            None,
                            window="centroid" if positive else neg_window,
                        )
                    )
        noise: list[Item] = []
        if speech_commands is not None:
            sc = SpeechCommands(
                speech_commands,
                split,
                validation_percentage=validation_percentage,
                testing_percentage=testing_percentage,
                split_salt=split_salt,
                sample_rate=sample_rate,
            )
            items += [dataclasses.replace(it, label_index=0) for it in sc.items]
            noise = [dataclasses.replace(it, label_index=0) for it in sc.noise_items]
        elif n_neg_folders == 0:
            raise DatasetError(
                f"{r}: no negatives: only the keyword folder {keyword!r} and no speech_commands"
            )
        if not items:
            raise DatasetError(f"{r}: no audio files in split {split!r}")
        self.keyword = keyword
        super().__init__([OTHER, keyword], items, split, r, noise, sample_rate)
