"""Keyword-spotting corpora, splits, augmentation and cached feature extraction.

Two layouts are read, both into one :class:`Dataset` interface (a list of :class:`Item`, each
``path``, ``label_index``, ``speaker`` and where it sits in the file, plus ``labels``):

:class:`SpeechCommands`
    Google Speech Commands (one folder per word). Labels, in this order: ``yes no up down left
    right on off stop go _unknown_ _silence_`` (indices 0..11).

    - ``_unknown_``: the ``_unknown_/`` folder of the test archive *and* every word folder
      that is not a keyword (the 25 other words of the full set).
    - ``_silence_``: the ``_silence_/`` folder when it exists; otherwise 1 s clips cut
      deterministically from ``_background_noise_/`` (see "Silence clips" below).
    - Speaker: the 8-hex-digit id before ``_nohash_`` (``022cd682_nohash_0.wav`` and
      ``backward_0cb74144_nohash_2.wav.wav`` give ``022cd682`` and ``0cb74144``); silence
      clips have none (``None``).

:class:`WakeWord`
    The Picovoice wake-word benchmark layout (one folder per phrase, FLAC, 1-4 s clips).
    Binary labels ``["_other_", keyword]``: the keyword is index 1, every other folder (and,
    optionally, every Speech Commands clip) is ``_other_``. Speakers are unknown (``None``).

Splits
------
``split`` is one of ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.

- Speech Commands with ``validation_list.txt`` / ``testing_list.txt`` at the root: the lists
  decide (paths relative to the root); every other speaker clip is ``train``.
- Otherwise :func:`which_set` on the speaker id, the hash rule of the original TensorFlow
  ``input_data.which_set`` with a salt: ``sha1(salt + ":" + speaker)`` as an integer, modulo
  ``2**27``, scaled to ``[0, 100]``; below ``validation_percentage`` is validation, below
  ``validation_percentage + testing_percentage`` test, the rest train. All clips of a speaker
  land in one split, in every class, and the assignment of a speaker never depends on which
  other files exist. The default salt is ``"kwshw"`` (:data:`DEFAULT_SPLIT_SALT`) because the
  canonical test archive *is* the set of speakers that the unsalted rule sends to "test":
  unsalted, every one of its speakers would land in the test split and nothing would be left
  to train on. ``split_salt=""`` reproduces TensorFlow's assignment exactly.
- Clips without a speaker (silence clips, wake-word clips) are split by :func:`which_set` on
  the key of the file instead: its base name for Speech Commands silence files, its path
  relative to the root (``"alexa/12.flac"``) for wake-word clips. Wake-word validation and
  test scores are therefore optimistic: a speaker's clips can be on both sides.

Silence clips (full Speech Commands only)
-----------------------------------------
Each ``_background_noise_`` recording is divided in time: the first ``100 - v - t`` percent
belong to train, the next ``v`` percent to validation and the last ``t`` percent to test, so
no stretch of noise is in two splits. A split gets ``ceil(silence_percentage / 100 * N)``
clips of 1 s (``N`` = its number of word clips), their start offsets spread evenly over the
split's regions of all the recordings (clips overlap when more are asked than fit).

How a clip becomes training examples
------------------------------------
Every :class:`Item` names its window rule (``Item.window``); :func:`extract` computes the
features of the whole clip and the ends (newest frame index) of its model windows:

- ``"last"`` (Speech Commands, 1 s clips): one window, ending at the last frame. A 1 s clip
  has 98 frames and the default window spans 97, so frames 1..97 are seen.
- ``"centroid"`` (wake-word clips, positives and by default negatives): one window centred on
  the energy centroid of the loudest stretch of the clip, see :func:`keyword_end`. Negatives
  get the same rule so that the position of the window cannot tell a keyword from a hard
  negative.
- ``"all:S"`` (wake-word negatives with ``negative_windows="all"``): every ``S``-th window,
  counting back from the one ending at the last frame down to the first complete one.

Windows that reach before the start of a clip are padded with zeros after normalization,
i.e. with the training mean (:func:`kwshw.features.stack_window`).

Augmentation
------------
:class:`Augmenter` (numpy, driven by a seeded ``numpy.random.Generator``) applies, in order,
to the audio before the front end: a random time shift (uniform integer samples within
``+-time_shift_ms``, zero fill, length kept), mixing of a random excerpt of real background
noise at a uniform random SNR with probability ``noise_prob``, a uniform random gain in dB,
and clipping to ``[-1, 1]``. :func:`extract` precomputes the features of ``copies``
augmented copies of every clip and caches them like the clean ones; the random stream of a
clip depends only on ``(seed, copy, clip)``, never on the order of processing or the number
of worker processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwshw.audio import AudioError, load_audio
from kwshw.features import FeatureConfig, Normalizer, lfbe
from kwshw.quantize import round_half_up

__all__ = [
    "AUDIO_SUFFIXES",
    "Augmentation",
    "Augmented",
    "Augmenter",
    "BACKGROUND",
    "DEFAULT_SPLIT_SALT",
    "Dataset",
    "DatasetError",
    "FeatureSet",
    "Item",
    "OTHER",
    "SILENCE",
    "SPEECH_COMMANDS_KEYWORDS",
    "SPLITS",
    "SpeechCommands",
    "UNKNOWN",
    "WakeWord",
    "cache_dir",
    "extract",
    "keyword_end",
    "load_item",
    "mix_at_snr",
    "speaker_of",
    "which_set",
    "window_ends",
]

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
OTHER = "_other_"
#: Salt of the hash split of the datasets (see the module docstring for why it is not empty).
DEFAULT_SPLIT_SALT = "kwshw"
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: File name endings taken as audio (case-insensitive); ``.wav.wav`` ends in ``.wav`` too.
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")

# The constant of TensorFlow's speech_commands/input_data.py: with an empty salt the rule
# assigns every speaker exactly as that reference implementation does.
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
_SPEAKER_RE = re.compile(r"([0-9a-fA-F]{8})_nohash_")
_WINDOW_RE = re.compile(r"^(last|centroid|all:([1-9][0-9]*))$")


class DatasetError(ValueError):
    """A corpus cannot be used: missing folders, empty classes, no files, unreadable audio."""


# ---------------------------------------------------------------------------------------------
# Items and the common interface
# ---------------------------------------------------------------------------------------------


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
        if not _WINDOW_RE.match(self.window):
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


# ---------------------------------------------------------------------------------------------
# Split rules
# ---------------------------------------------------------------------------------------------


def speaker_of(filename: str) -> str | None:
    """Speaker id of a Speech Commands file name: the 8 hex digits before ``_nohash_``.

    Parameters
    ----------
    filename : str
        Base name or path (``"0a7c2a8d_nohash_0.wav"``, ``"bed_0c40e715_nohash_1.wav.wav"``).

    Returns
    -------
    str or None
        The lower-case id, or ``None`` when the name has no ``<8 hex>_nohash_`` part.
    """
    m = _SPEAKER_RE.search(os.path.basename(filename))
    return m.group(1).lower() if m else None


def which_set(
    key: str, validation_percentage: float, testing_percentage: float, salt: str = ""
) -> str:
    """Deterministic split of ``key`` (a speaker id, or a file key when no speaker is known).

    The rule of TensorFlow's ``input_data.which_set``: ``h = int(sha1(s), 16)`` with
    ``s = key`` (no salt) or ``s = salt + ":" + key``, ``p = (h % 2**27) * 100 / (2**27 - 1)``;
    ``"validation"`` if ``p < validation_percentage``, ``"test"`` if ``p <
    validation_percentage + testing_percentage``, otherwise ``"train"``.

    Parameters
    ----------
    key : str
        The string to hash (UTF-8).
    validation_percentage, testing_percentage : float
        Sizes of the two held-out parts in percent.
    salt : str, default ""
        Empty: TensorFlow's exact assignment. The datasets use :data:`DEFAULT_SPLIT_SALT`.

    Returns
    -------
    str
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    s = f"{salt}:{key}" if salt else key
    h = int(hashlib.sha1(s.encode("utf-8")).hexdigest(), 16)
    p = (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if p < validation_percentage:
        return "validation"
    if p < validation_percentage + testing_percentage:
        return "test"
    return "train"


def _check_split_args(split: str, validation_percentage: float, testing_percentage: float) -> None:
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
    v, t = validation_percentage, testing_percentage
    if v < 0 or t < 0 or v + t > 100:
        raise ValueError(f"need 0 <= validation, testing percentages and sum <= 100: {v}, {t}")


def _stable_rank(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def _audio_files(folder: Path) -> list[Path]:
    """Audio files directly in ``folder``, sorted by name; hidden files are skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(AUDIO_SUFFIXES)
    )


def _subfolders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _check_root(root: str | os.PathLike, what: str) -> Path:
    r = Path(root).expanduser()
    if not r.exists():
        raise DatasetError(f"{what} root folder {r} does not exist")
    if not r.is_dir():
        raise DatasetError(f"{what} root {r} is not a folder")
    return r.resolve()


def _read_list(path: Path) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {line.strip().replace("\\", "/") for line in f if line.strip()}


# ---------------------------------------------------------------------------------------------
# Speech Commands
# ---------------------------------------------------------------------------------------------


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
        _check_split_args(split, validation_percentage, testing_percentage)
        r = _check_root(root, "Speech Commands")
        keywords = list(keywords)
        labels = [*keywords, UNKNOWN, SILENCE]
        if len(set(labels)) != len(labels):
            raise ValueError(f"keywords must be distinct and not {UNKNOWN}/{SILENCE}: {keywords}")
        k_unknown, k_silence = len(keywords), len(keywords) + 1
        folders = _subfolders(r)

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

        # Gather (relative path, absolute path, label, speaker) of every word/silence file.
        files: list[tuple[str, Path, int, str | None]] = []
        present = [w for w in keywords if w in folders]
        for name in [*present, *unknown_folders] + ([SILENCE] if SILENCE in folders else []):
            found = _audio_files(folders[name])
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
                files.append((f"{name}/{p.name}", p, label, spk))

        val_list_path, test_list_path = r / "validation_list.txt", r / "testing_list.txt"
        use_lists = val_list_path.is_file() or test_list_path.is_file()
        val_list = _read_list(val_list_path) if val_list_path.is_file() else set()
        test_list = _read_list(test_list_path) if test_list_path.is_file() else set()

        def split_of(rel: str, path: Path, speaker: str | None) -> str:
            if training_only:
                return "train"
            if use_lists:
                if rel in val_list:
                    return "validation"
                if rel in test_list:
                    return "test"
                if speaker is not None:
                    return "train"
            # No speaker: the file itself is the unit (TF hashes the base name too).
            key = speaker if speaker is not None else path.name
            return which_set(key, validation_percentage, testing_percentage, split_salt)

        by_split: dict[str, list[Item]] = {s: [] for s in SPLITS}
        unknown_rel: dict[Item, str] = {}
        for rel, path, label, spk in files:
            it = Item(str(path), label, spk)
            by_split[split_of(rel, path, spk)].append(it)
            if label == k_unknown:
                unknown_rel[it] = rel

        if unknown_percentage is not None:
            for s in SPLITS:
                n_known = sum(it.label_index < k_unknown for it in by_split[s])
                keep_n = math.ceil(unknown_percentage / 100.0 * n_known)
                unknown = [it for it in by_split[s] if it.label_index == k_unknown]
                keep = set(sorted(unknown, key=lambda it: _stable_rank(unknown_rel[it]))[:keep_n])
                by_split[s] = [
                    it for it in by_split[s] if it.label_index != k_unknown or it in keep
                ]

        if SILENCE not in folders:
            cuts = _cut_background(
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


def _cut_background(
    folder: Path,
    n_words: dict[str, int],
    silence_percentage: float,
    validation_percentage: float,
    testing_percentage: float,
    sample_rate: int,
) -> dict[str, list[Item]]:
    """Silence clips cut from the background recordings (rule in the module docstring)."""
    import soundfile as sf  # only needed here, for the lengths of the recordings

    files = _audio_files(folder)
    if not files:
        raise DatasetError(f"{folder}: holds no .wav/.flac files to cut silence clips from")
    lengths = []
    for p in files:
        try:
            info = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError) as e:
            raise DatasetError(f"unreadable audio: {p}: {e}") from e
        # Lengths at the dataset's rate, as load_audio returns the file after resampling.
        lengths.append(math.ceil(info.frames * sample_rate / info.samplerate))
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


# ---------------------------------------------------------------------------------------------
# Wake-word benchmark
# ---------------------------------------------------------------------------------------------


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
        _check_split_args(split, validation_percentage, testing_percentage)
        if negative_windows not in ("centroid", "all"):
            raise ValueError(
                f"negative_windows must be 'centroid' or 'all', got {negative_windows!r}"
            )
        if all_step < 1:
            raise ValueError(f"all_step must be >= 1, got {all_step}")
        r = _check_root(root, "wake-word")
        folders = _subfolders(r)
        if keyword not in folders:
            raise DatasetError(
                f"{r}: missing keyword folder {keyword!r} (found: {sorted(folders) or 'none'})"
            )
        neg_window = "centroid" if negative_windows == "centroid" else f"all:{all_step}"
        items: list[Item] = []
        n_neg_folders = 0
        for name, folder in folders.items():
            found = _audio_files(folder)
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


# ---------------------------------------------------------------------------------------------
# Windows of a clip
# ---------------------------------------------------------------------------------------------


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
    m = _WINDOW_RE.match(window)
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


# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Feature extraction with an on-disk cache
# ---------------------------------------------------------------------------------------------

# Bump when the features or augmentation computed for the same inputs change, so that stale
# cache files are not reused.
_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Feature cache folder: ``$KWSHW_CACHE`` if set, else ``~/.cache/kwshw``."""
    env = os.environ.get("KWSHW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kwshw"


def _file_stamp(path: str, missing_ok: bool = False) -> list:
    try:
        st = os.stat(path)
    except OSError as e:
        if missing_ok:
            return [os.path.abspath(path), -1, -1]
        raise DatasetError(f"unreadable audio: {path}: {e.strerror or e}") from e
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def _item_seed(item: Item) -> int:
    return int(hashlib.sha1(item.key.encode("utf-8")).hexdigest()[:16], 16)


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


_WORKER: dict = {}


def _init_worker(
    cfg: FeatureConfig, params: Augmentation | None, noise: list, sr: int, seed: int
) -> None:
    _WORKER.clear()
    _WORKER.update(
        cfg=cfg, seed=seed, sr=sr, aug=None if params is None else Augmenter(params, noise, sr)
    )


def _process(tasks: list[tuple[int, int, Item]]) -> list[tuple[int, np.ndarray | None, object]]:
    """Features and window ends of (clip number, copy, item) tasks, in the worker's context.

    A clip whose audio cannot be read gives ``(c, None, message)`` so that the caller can
    report every bad file at once, or skip them.
    """
    cfg: FeatureConfig = _WORKER["cfg"]
    aug: Augmenter | None = _WORKER["aug"]
    out: list[tuple[int, np.ndarray | None, object]] = []
    for c, copy, item in tasks:
        try:
            audio = load_item(item, _WORKER["sr"])
        except DatasetError as e:
            out.append((c, None, str(e)))
            continue
        # The keyword's position is found on the clean audio: added noise must not move it.
        centroid = keyword_end(audio, cfg) if item.window == "centroid" else None
        if copy > 0:
            assert aug is not None
            rng = np.random.default_rng([_WORKER["seed"], copy, _item_seed(item)])
            a = aug(audio, rng)
            audio = a.audio
            if centroid is not None:
                centroid += int(round_half_up(a.shift / cfg.hop_length))
        frames = lfbe(audio, cfg)
        out.append((c, frames, window_ends(item.window, frames.shape[0], cfg, centroid)))
    return out


# Thread-count variables of the BLAS/OpenMP libraries numpy may be linked with.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _run_pool(tasks: list, results: list, bar, workers: int, initargs: tuple) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    chunk = 64
    # Each worker gets one BLAS thread: with the default (one thread per core in every
    # process) two workers on two cores spin against each other and run ~8x slower than one
    # process. The variables are read when a spawned child starts numpy, so they are set for
    # the lifetime of the pool (children start lazily) and restored afterwards.
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        # "spawn" behaves the same on every OS and is safe when the parent runs threads
        # (torch, BLAS), which "fork" is not.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=initargs,
        ) as ex:
            futures = [
                ex.submit(_process, tasks[i : i + chunk]) for i in range(0, len(tasks), chunk)
            ]
            for fut in as_completed(futures):
                done = fut.result()
                for c, f, e in done:
                    results[c] = (f, e)
                bar.update(len(done))
    except BrokenProcessPool as e:
        raise RuntimeError(
            "feature extraction worker processes died; with workers > 1 the calling script "
            "must guard its top level with `if __name__ == '__main__':` (processes are "
            "spawned), or use workers=1"
        ) from e
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def extract(
    items: Dataset | Sequence[Item],
    cfg: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen, immutable)
    *,
    augment: Augmenter | None = None,
    copies: int = 1,
    include_clean: bool = True,
    seed: int = 0,
    workers: int = 1,
    cache: bool | str | os.PathLike = True,
    on_error: str = "raise",
    progress: bool = True,
) -> FeatureSet:
    """LFBE features (and model windows) of every clip, cached on disk.

    Parameters
    ----------
    items : Dataset or sequence of Item
        The clips.
    cfg : FeatureConfig
        Front end configuration.
    augment : Augmenter, optional
        When given, ``copies`` augmented copies of every clip are added (copy 1..copies).
    copies : int, default 1
        Number of augmented copies (ignored without ``augment``).
    include_clean : bool, default True
        Include the clean features (copy 0). Without ``augment`` they are always included.
    seed : int, default 0
        Seed of the augmentation; copy ``k`` of a clip uses
        ``numpy.random.default_rng([seed, k, int(sha1(item.key)[:16], 16)])``.
    workers : int, default 1
        Worker processes (spawned, one BLAS thread each). Worth it only on an idle machine
        with many clips; a script using ``workers > 1`` must guard its top level with
        ``if __name__ == "__main__":``.
    cache : bool or path, default True
        ``True``: cache under :func:`cache_dir`; a path: cache there; ``False``: no cache.
        The cache file is named by a SHA-256 of the file list with sizes and modification
        times, offsets, window rules, ``cfg``, the augmentation (parameters and noise clips),
        the copies and ``seed``.
    on_error : {"raise", "skip"}, default "raise"
        What to do with clips whose audio cannot be read: raise one :class:`DatasetError`
        listing all of them, or leave them out with a warning (they are listed in
        :attr:`FeatureSet.skipped`). 10 of the benchmark's ``alexa`` FLAC files hold samples
        outside the 16-bit range and libsndfile refuses them.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    FeatureSet

    Raises
    ------
    DatasetError
        When there are no clips, or a file is missing or unreadable and ``on_error="raise"``
        (naming every such file).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    labels = items.labels if isinstance(items, Dataset) else None
    sr = items.sample_rate if isinstance(items, Dataset) else cfg.sample_rate
    if sr != cfg.sample_rate:
        raise ValueError(f"dataset sample rate {sr} differs from the front end's {cfg.sample_rate}")
    item_list = list(items)
    if not item_list:
        raise DatasetError("extract: no clips given")
    if augment is None:
        copy_ids = [0]
    else:
        if copies < 1:
            raise ValueError(f"copies must be >= 1 with augmentation, got {copies}")
        if augment.sample_rate != cfg.sample_rate:
            raise ValueError("the augmenter's sample rate differs from the front end's")
        copy_ids = ([0] if include_clean else []) + list(range(1, copies + 1))

    key_src = {
        "version": _CACHE_VERSION,
        "cfg": cfg.to_dict(),
        "items": [
            [*_file_stamp(it.path, missing_ok=True), it.offset, it.num_samples, it.window]
            for it in item_list
        ],
        "copies": copy_ids,
        "seed": seed if augment is not None else None,
        "augment": augment.cache_key() if augment is not None else None,
    }
    digest = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    cache_path = None
    if cache is not False:
        folder = cache_dir() if cache is True else Path(cache)
        cache_path = folder / f"features-{digest[:32]}.npz"
        loaded = _load_cache(cache_path, cfg, item_list, labels, copy_ids)
        if loaded is not None:
            _report_skipped(loaded.skipped, on_error)
            return loaded

    tasks = [
        (c * len(item_list) + i, k, it)
        for c, k in enumerate(copy_ids)
        for i, it in enumerate(item_list)
    ]
    results: list = [None] * len(tasks)
    params = augment.params if augment is not None else None
    noise = augment.noise if augment is not None else []

    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="LFBE", unit="clip", disable=not progress)
    try:
        if workers <= 1:
            _WORKER.clear()
            _WORKER.update(cfg=cfg, seed=seed, sr=cfg.sample_rate, aug=augment)
            for t in tasks:
                ((c, f, e),) = _process([t])
                results[c] = (f, e)
                bar.update()
        else:
            _run_pool(tasks, results, bar, workers, (cfg, params, noise, cfg.sample_rate, seed))
    finally:
        bar.close()
        _WORKER.clear()

    # Reading happens before augmentation, so a clip fails in all copies or in none.
    n_items = len(item_list)
    errors = {c % n_items: e for c, (f, e) in enumerate(results) if f is None}
    kept = np.array([i not in errors for i in range(n_items)], dtype=bool)
    skipped = [(item_list[i], str(errors[i])) for i in sorted(errors)]
    _report_skipped(skipped, on_error)
    fs = _assemble(cfg, item_list, labels, copy_ids, results, kept, skipped)
    if cache_path is not None:
        _save_cache(cache_path, fs, kept)
    return fs


def _report_skipped(skipped: list[tuple[Item, str]], on_error: str) -> None:
    if not skipped:
        return
    listing = "\n  ".join(msg for _, msg in skipped)
    if on_error == "raise":
        raise DatasetError(
            f"{len(skipped)} clip(s) cannot be read (pass on_error='skip' to leave them "
            f"out):\n  {listing}"
        )
    warnings.warn(f"skipping {len(skipped)} unreadable clip(s):\n  {listing}", stacklevel=3)


def _assemble(
    cfg: FeatureConfig,
    item_list: list[Item],
    labels: list[str] | None,
    copy_ids: list[int],
    results: list,
    kept: np.ndarray,
    skipped: list[tuple[Item, str]],
) -> FeatureSet:
    keep_clip = np.tile(kept, len(copy_ids))
    res = [r for r, k in zip(results, keep_clip, strict=True) if k]
    items_kept = [it for it, k in zip(item_list, kept, strict=True) if k]
    if not res:
        raise DatasetError("extract: no clip could be read")
    lengths = np.array([r[0].shape[0] for r in res], dtype=np.int64)
    n_ends = np.array([len(r[1]) for r in res], dtype=np.int64)
    return FeatureSet(
        cfg=cfg,
        items=items_kept,
        label_names=labels,
        frames=np.concatenate([r[0] for r in res]).astype(np.float32, copy=False),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        item_index=np.tile(np.arange(len(items_kept), dtype=np.int64), len(copy_ids)),
        copy=np.repeat(np.asarray(copy_ids, dtype=np.int64), len(items_kept)),
        example_clip=np.repeat(np.arange(len(res), dtype=np.int64), n_ends),
        example_end=np.concatenate([r[1] for r in res]).astype(np.int64),
        skipped=skipped,
    )


_CACHE_ARRAYS = ("frames", "offsets", "item_index", "copy", "example_clip", "example_end")


def _save_cache(path: Path, fs: FeatureSet, kept: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a crash or a concurrent run never leaves a
        # truncated cache file under the final name.
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                kept=kept,
                skip_reasons=np.array([msg for _, msg in fs.skipped], dtype=np.str_),
                **{k: getattr(fs, k) for k in _CACHE_ARRAYS},
            )
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the feature cache {path}: {e}", stacklevel=3)


def _load_cache(
    path: Path,
    cfg: FeatureConfig,
    items: list[Item],
    labels: list[str] | None,
    copy_ids: list[int],
) -> FeatureSet | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _CACHE_ARRAYS}
            kept = z["kept"].astype(bool)
            reasons = [str(r) for r in z["skip_reasons"]]
        if kept.shape != (len(items),) or len(reasons) != int((~kept).sum()):
            raise ValueError("cache does not match the item list")
        items_kept = [it for it, k in zip(items, kept, strict=True) if k]
        skipped = list(
            zip([it for it, k in zip(items, kept, strict=True) if not k], reasons, strict=True)
        )
        fs = FeatureSet(cfg, items_kept, labels, **arrays, skipped=skipped)
        ok = (
            fs.frames.ndim == 2
            and fs.frames.shape[1] == cfg.n_mels
            and fs.n_clips == len(items_kept) * len(copy_ids)
            and fs.offsets[-1] == fs.frames.shape[0]
            and np.array_equal(np.unique(fs.copy), np.asarray(sorted(copy_ids)))
        )
        if ok:
            return fs
        raise ValueError("inconsistent arrays")
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"ignoring unusable feature cache {path}: {e}", stacklevel=3)
    return None
