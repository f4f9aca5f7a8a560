"""Google Speech Commands, full set or test archive, as the 12-class task.

Labels, split rules and how silence clips are cut: see the package docstring.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .folders import audio_files, check_root, read_list, subfolders
from .items import Dataset, DatasetError, Item
from .silence import cut_background
from .splits import DEFAULT_SPLIT_SALT, SPLITS, check_split_args, speaker_of, stable_rank, which_set

__all__ = ["BACKGROUND", "SILENCE", "SPEECH_COMMANDS_KEYWORDS", "UNKNOWN", "SpeechCommands"]

SPEECH_COMMANDS_KEYWORDS: tuple[str, ...] = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
)
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
BACKGROUND = "_background_noise_"


class SpeechCommands(Dataset):
    """Speech Commands (v0.01/v0.02, full set or the test archive), 12 classes.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding one sub-folder per word (and ``_unknown_``/``_silence_`` or
        ``_background_noise_``).
    split : str, default "train"
        ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.
    keywords : sequence of str, default SPEECH_COMMANDS_KEYWORDS
        Target words; labels are ``[*keywords, "_unknown_", "_silence_"]``.
    validation_percentage, testing_percentage : float, default 10.0
        Split sizes for the hash rule (:func:`which_set`) and for the background-noise regions.
    split_salt : str, default DEFAULT_SPLIT_SALT
        Salt of the hash rule; ``""`` gives TensorFlow's assignment (which puts the whole
        canonical test archive into "test").
    silence_percentage : float, default 10.0
        Only when silence is cut from ``_background_noise_``: number of silence clips in a
        split, in percent of its word clips (TensorFlow's default is 10).
    unknown_percentage : float, optional
        Keep only ``ceil(unknown_percentage / 100 * K)`` ``_unknown_`` clips per split (``K`` =
        keyword clips of the split), the ones with the smallest ``sha1`` of their relative
        path. ``None`` (default) keeps all; the full set has ~20x more unknown than keyword
        clips, so training on it usually wants 10-30 or class weights.
    sample_rate : int, default 16000
        Rate the clips are read at; silence clips are 1 s at this rate.
    training_only : bool, default False
        Every clip of the corpus is training data (an extra training corpus whose speakers are
        not those of the evaluation corpus): split ``"train"`` holds all of it, the silence
        clips are cut from the whole background recordings, and ``"validation"`` / ``"test"``
        are empty (no error).
    allow_missing : sequence of str, default ()
        Keyword folders that may be absent because another corpus of the task supplies them;
        each absent one is named in :attr:`Dataset.notes`, never skipped silently.

    Raises
    ------
    DatasetError
        When the root is missing, a keyword folder is missing (and not allowed to be) or
        empty, there is no source of unknown or silence clips, or a background-noise file
        cannot be read.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        keywords: Sequence[str] = SPEECH_COMMANDS_KEYWORDS,
        validation_percentage: float = 10.0,
        testing_percentage: float = 10.0,
        split_salt: str = DEFAULT_SPLIT_SALT,
        silence_percentage: float = 10.0,
        unknown_percentage: float | None = None,
        sample_rate: int = 16000,
        training_only: bool = False,
        allow_missing: Sequence[str] = (),
    ) -> None:
        check_split_args(split, validation_percentage, testing_percentage)
        r = check_root(root, "Speech Commands")
        keywords = list(keywords)
        labels = [*keywords, UNKNOWN, SILENCE]
        if len(set(labels)) != len(labels):
            raise ValueError(f"keywords must be distinct and not {UNKNOWN}/{SILENCE}: {keywords}")
        k_unknown, k_silence = len(keywords), len(keywords) + 1
        folders = subfolders(r)
        present, unknown_folders, notes = _class_folders(r, folders, keywords, allow_missing)
        files = _labelled_files(folders, keywords, present, unknown_folders)
        rule = _SplitRule.read(
            r, validation_percentage, testing_percentage, split_salt, training_only
        )
        by_split = _assign_splits(files, rule, k_unknown, unknown_percentage)
        if SILENCE not in folders:
            cuts = cut_background(
                folders[BACKGROUND],
                {s: sum(it.label_index != k_silence for it in by_split[s]) for s in SPLITS},
                silence_percentage,
                0.0 if training_only else validation_percentage,
                0.0 if training_only else testing_percentage,
                sample_rate,
            )
            for s in SPLITS:
                by_split[s] += [dataclasses.replace(c, label_index=k_silence) for c in cuts[s]]

        chosen = SPLITS if split == "all" else (split,)
        items = [it for s in chosen for it in by_split[s]]
        if not items and not training_only:
            raise DatasetError(f"{r}: no audio files in split {split!r}")
        items.sort(key=lambda it: (it.label_index, it.path, it.offset))
        noise = [it for it in items if it.label_index == k_silence]
        super().__init__(labels, items, split, r, noise, sample_rate, notes=notes)
        self.training_only = training_only


def _class_folders(
    r: Path, folders: dict[str, Path], keywords: list[str], allow_missing: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """The keyword folders present, the folders of ``_unknown_`` clips and the notes on absent
    keywords; :class:`DatasetError` when a keyword or the source of a class is missing."""
    missing = [w for w in keywords if w not in folders]
    refused = [w for w in missing if w not in allow_missing]
    if refused:
        raise DatasetError(
            f"{r}: missing class folders {refused} (found: {sorted(folders) or 'none'})"
        )
    notes = [f"{r.name}: no {', '.join(w + '/' for w in missing)} folder(s); another corpus "
             "of the task supplies those words"] if missing else []
    unknown_folders = [n for n in folders if n == UNKNOWN or not n.startswith("_")]
    unknown_folders = [n for n in unknown_folders if n not in keywords]
    if not unknown_folders:
        raise DatasetError(
            f"{r}: no source of {UNKNOWN} clips: neither a {UNKNOWN}/ folder nor word "
            "folders other than the keywords"
        )
    if SILENCE not in folders and BACKGROUND not in folders:
        raise DatasetError(
            f"{r}: no source of {SILENCE} clips: need {SILENCE}/ or {BACKGROUND}/"
        )
    present = [w for w in keywords if w in folders]
    return present, unknown_folders, notes


@dataclass(frozen=True)
class _File:
    """A word or silence file: path relative to the root, absolute path, label, speaker."""

    rel: str
    path: Path
    label: int
    speaker: str | None


def _labelled_files(
    folders: dict[str, Path], keywords: list[str], present: list[str], unknown_folders: list[str]
) -> list[_File]:
    """Every file of the keyword, unknown and ``_silence_`` folders, labelled, in folder order."""
    k_unknown, k_silence = len(keywords), len(keywords) + 1
    files: list[_File] = []
    for name in [*present, *unknown_folders] + ([SILENCE] if SILENCE in folders else []):
        found = audio_files(folders[name])
        if not found:
            raise DatasetError(f"{folders[name]}: class folder holds no .wav/.flac files")
        label = (
            keywords.index(name)
            if name in keywords
            else k_silence
            if name == SILENCE
            else k_unknown
        )
        for p in found:
            spk = None if name == SILENCE else speaker_of(p.name)
            files.append(_File(f"{name}/{p.name}", p, label, spk))
    return files


@dataclass(frozen=True)
class _SplitRule:
    """Which split a file of the corpus is in (the rules of the package docstring, "Splits").

    ``lists`` holds the validation and testing lists when the corpus has either file.
    """

    validation_percentage: float
    testing_percentage: float
    salt: str
    lists: tuple[set[str], set[str]] | None = None
    training_only: bool = False

    @classmethod
    def read(
        cls,
        r: Path,
        validation_percentage: float,
        testing_percentage: float,
        salt: str,
        training_only: bool,
    ) -> _SplitRule:
        """The rule of the corpus at ``r``, with its list files if it has any."""
        val_list_path, test_list_path = r / "validation_list.txt", r / "testing_list.txt"
        lists = None
        if val_list_path.is_file() or test_list_path.is_file():
            lists = (
                read_list(val_list_path) if val_list_path.is_file() else set(),
                read_list(test_list_path) if test_list_path.is_file() else set(),
            )
        return cls(validation_percentage, testing_percentage, salt, lists, training_only)

    def __call__(self, f: _File) -> str:
        if self.training_only:
            return "train"
        if self.lists is not None:
            val_list, test_list = self.lists
            if f.rel in val_list:
                return "validation"
            if f.rel in test_list:
                return "test"
            if f.speaker is not None:
                return "train"
        # No speaker: the file itself is the unit (TF hashes the base name too).
        key = f.speaker if f.speaker is not None else f.path.name
        return which_set(key, self.validation_percentage, self.testing_percentage, self.salt)


def _assign_splits(
    files: list[_File],
    split_of: Callable[[_File], str],
    k_unknown: int,
    unknown_percentage: float | None,
) -> dict[str, list[Item]]:
    """The items of every split; with ``unknown_percentage``, only that share of unknowns.

    The kept ``_unknown_`` clips of a split are the ``ceil(unknown_percentage / 100 * K)`` with
    the smallest hash of their relative path (``K`` = keyword clips of the split).
    """
    by_split: dict[str, list[Item]] = {s: [] for s in SPLITS}
    unknown_rel: dict[Item, str] = {}
    for f in files:
        it = Item(str(f.path), f.label, f.speaker)
        by_split[split_of(f)].append(it)
        if f.label == k_unknown:
            unknown_rel[it] = f.rel
    if unknown_percentage is None:
        return by_split
    for s in SPLITS:
        n_known = sum(it.label_index < k_unknown for it in by_split[s])
        keep_n = math.ceil(unknown_percentage / 100.0 * n_known)
        unknown = [it for it in by_split[s] if it.label_index == k_unknown]
        keep = set(sorted(unknown, key=lambda it: stable_rank(unknown_rel[it]))[:keep_n])
        by_split[s] = [it for it in by_split[s] if it.label_index != k_unknown or it in keep]
    return by_split
