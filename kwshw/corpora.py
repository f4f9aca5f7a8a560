"""Every corpus of a task under a data folder, read as one dataset.

A data folder (``$KWSHW_DATA``, ``kwshw train --data DIR``) holds one or more corpora. This
module finds the ones a task uses, gives each a *role*, and joins their clips into one
:class:`kwshw.datasets.Dataset` per split.

Roles
-----
``"split"``
    The corpus is divided into train / validation / test: by its ``validation_list.txt`` /
    ``testing_list.txt`` where present (the full Speech Commands set), otherwise by speaker
    (:func:`kwshw.datasets.which_set`). The canonical test archive
    (``speech_commands_v0.02_test/``) has this role, so validation and test numbers stay
    comparable however many training corpora lie beside it.
``"train"``
    Every clip is training data: a corpus of other speakers that only adds training examples
    (``speech_commands_v0.02_extra/``). Its ``_background_noise_/`` recordings feed the
    augmenter and the training ``_silence_`` clips; no evaluation ever sees them.

Which folders are corpora
-------------------------
- ``DIR`` itself, when it is a Speech Commands corpus (holds keyword folders): the one corpus,
  role ``"split"`` (a user's full Speech Commands set, or their own recordings).
- Otherwise every sub-folder of ``DIR`` holding at least one keyword folder is a Speech
  Commands corpus. The test archive (:data:`EVALUATION_CORPUS`) and any corpus with list
  files get role ``"split"``; every other one is ``"train"``. A ``"train"`` corpus may lack
  keyword folders (``on/``, ``off/`` in the extra corpus) when a corpus of role ``"split"``
  supplies them; the dataset says so in :attr:`~kwshw.datasets.Dataset.notes`.
- The wake-word task reads ``wake_word_benchmark/`` (or ``DIR`` itself in that layout) and,
  as negatives, every Speech Commands corpus found as above: other words, silence and
  background noise, so that the detector learns to stay quiet when nobody says the word.

General speech for the 12-class task
------------------------------------
A 12-class model whose only ``_unknown_`` examples are a few dozen isolated words fires on
ordinary speech thousands of times per hour. When ``wake_word_benchmark/`` lies beside the
Speech Commands corpora, its phrases are general speech to the 12-class task, divided *by
phrase* (:func:`general_speech_phrases`): every second phrase in sorted order (``computer``,
``smart mirror``, ``view glass``) is ``_unknown_`` training speech, every clip of it, with a
window every 300 ms (``"all:30"``); the others (``alexa``, ``jarvis``, ``snowboy``) are never
trained on and go into the held-back evaluation stream as speech the model has never heard,
words included (:mod:`kwshw.stream_eval`). The clip-level validation and test splits are not
changed by it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .datasets import (
    SPEECH_COMMANDS_KEYWORDS,
    UNKNOWN,
    Dataset,
    DatasetError,
    SpeechCommands,
    WakeWord,
)

__all__ = [
    "GENERAL_SPEECH_WINDOWS",
    "Corpus",
    "EVALUATION_CORPUS",
    "TASKS",
    "WAKE_WORD_CORPUS",
    "find_corpora",
    "general_speech_phrases",
    "open_dataset",
]

TASKS = ("speech_commands", "wake_word")
#: Folder name of the Speech Commands corpus that is always divided by speaker.
EVALUATION_CORPUS = "speech_commands_v0.02_test"
#: Folder name of the wake-word benchmark corpus.
WAKE_WORD_CORPUS = "wake_word_benchmark"
#: Window rule of the general-speech clips: a window every 30 frames (300 ms) of each clip.
GENERAL_SPEECH_WINDOWS = "all:30"


@dataclass(frozen=True)
class Corpus:
    """One corpus folder of a task.

    Attributes
    ----------
    root : pathlib.Path
        The corpus folder.
    layout : str
        ``"speech_commands"`` or ``"wake_word"``.
    role : str
        ``"split"`` (divided into train/validation/test) or ``"train"`` (all training data).
    """

    root: Path
    layout: str
    role: str

    def describe(self) -> str:
        """One line for logs: folder, layout, role."""
        what = "all training data" if self.role == "train" else "train/validation/test split"
        return f"{self.root.name} ({self.layout}): {what}"


def _check_data_root(data_root: str | os.PathLike | None) -> Path:
    if data_root is None or str(data_root) == "":
        raise DatasetError("no data folder given (set KWSHW_DATA or pass a path)")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data folder {root} does not exist or is not a folder")
    return root.resolve()


def _is_speech_commands(folder: Path, keywords: Sequence[str]) -> bool:
    return any((folder / w).is_dir() for w in keywords)


def _has_lists(folder: Path) -> bool:
    return (folder / "validation_list.txt").is_file() or (folder / "testing_list.txt").is_file()


def _speech_commands_corpora(root: Path, keywords: Sequence[str]) -> list[Corpus]:
    if _is_speech_commands(root, keywords):
        return [Corpus(root, "speech_commands", "split")]
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = [Corpus(p, "speech_commands",
                    "split" if p.name == EVALUATION_CORPUS or _has_lists(p) else "train")
             for p in subs if _is_speech_commands(p, keywords)]
    return sorted(found, key=lambda c: (c.role != "split", c.root.name))


def find_corpora(data_root: str | os.PathLike | None, task: str, *,
                 keywords: Sequence[str] = SPEECH_COMMANDS_KEYWORDS) -> list[Corpus]:
    """The corpora ``task`` reads under ``data_root`` (rules in the module docstring).

    Parameters
    ----------
    data_root : path
        A data folder holding corpora, or a corpus folder itself.
    task : {"speech_commands", "wake_word"}
    keywords : sequence of str
        Speech Commands target words (what makes a folder a Speech Commands corpus).

    Returns
    -------
    list of Corpus
        For ``speech_commands`` the Speech Commands corpora, those of role ``"split"`` first,
        then by name; for ``wake_word`` the wake-word corpus, then those that give negatives.

    Raises
    ------
    DatasetError
        No data folder, or no corpus of the task in it; no corpus of role ``"split"`` (nothing
        to validate on).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    root = _check_data_root(data_root)
    sc = _speech_commands_corpora(root, keywords)
    if task == "speech_commands":
        if not sc:
            raise DatasetError(
                f"{root}: no Speech Commands corpus (a folder with keyword folders such as "
                f"{', '.join(w + '/' for w in keywords[:3])}...) here or one level below")
        if not any(c.role == "split" for c in sc):
            raise DatasetError(
                f"{root}: every Speech Commands corpus here is training-only "
                f"({', '.join(c.root.name for c in sc)}); need {EVALUATION_CORPUS}/ or a "
                "corpus with validation_list.txt / testing_list.txt to validate on")
        return sc
    ww = root / WAKE_WORD_CORPUS
    if ww.is_dir():
        return [Corpus(ww, "wake_word", "split"), *sc]
    if sc and sc[0].root == root:  # a Speech Commands folder is no wake-word corpus
        raise DatasetError(f"{root}: no wake-word corpus ({WAKE_WORD_CORPUS}/)")
    return [Corpus(root, "wake_word", "split"), *sc]


def general_speech_phrases(data_root: str | os.PathLike | None) -> tuple[list[str], list[str]]:
    """``(training phrases, held-back phrases)`` of the wake-word corpus as general speech for
    the 12-class task: its phrase folders in sorted order, the second, fourth, ... for
    training, the first, third, ... held back. Both empty without a wake-word corpus."""
    root = _check_data_root(data_root)
    ww = root / WAKE_WORD_CORPUS
    if not ww.is_dir():
        return [], []
    names = sorted(p.name for p in ww.iterdir() if p.is_dir() and not p.name.startswith("."))
    return names[1::2], names[0::2]


def _general_speech(data_root, labels: list[str], phrases: Sequence[str]) -> Dataset:
    """Every clip of ``phrases`` of the wake-word corpus as ``_unknown_`` (12-class task)."""
    root = _check_data_root(data_root) / WAKE_WORD_CORPUS
    unknown = labels.index(UNKNOWN)
    ww = WakeWord(root, phrases[0], "all")
    items = [dataclasses.replace(it, label_index=unknown, window=GENERAL_SPEECH_WINDOWS)
             for it in ww.items if Path(it.path).parent.name in phrases]
    return Dataset(labels, items, "train", root, notes=[
        f"{WAKE_WORD_CORPUS}: phrases {', '.join(phrases)} are {UNKNOWN} training speech "
        "(the other phrases are held back for the evaluation stream)"])


def _join(parts: Sequence[Dataset], split: str, root: Path) -> Dataset:
    first = parts[0]
    items = [it for p in parts for it in p.items]
    noise = [it for p in parts for it in p.noise_items]
    notes = [n for p in parts for n in p.notes]
    return Dataset(first.labels, items, split, root, noise, first.sample_rate, notes)


def _speech_commands(corpora: Sequence[Corpus], split: str, **kwargs) -> list[Dataset]:
    keywords = list(kwargs.get("keywords", SPEECH_COMMANDS_KEYWORDS))
    supplied = {w for c in corpora if c.role == "split" for w in keywords
                if (c.root / w).is_dir()}
    parts = []
    for c in corpora:
        training_only = c.role == "train"
        if training_only and split not in ("train", "all"):
            continue
        allow = sorted(supplied) if training_only else ()
        parts.append(SpeechCommands(c.root, split, training_only=training_only,
                                    allow_missing=allow, **kwargs))
    return parts


def open_dataset(task: str, data_root: str | os.PathLike | None, split: str = "validation",
                 *, general_negatives: bool = True, general_speech: bool = True,
                 **kwargs) -> Dataset:
    """The clips of ``task`` in ``split`` from every corpus of the task under ``data_root``.

    Parameters
    ----------
    task : {"speech_commands", "wake_word"}
    data_root : path
        The data folder (or a corpus folder).
    split : str
        ``"train"``, ``"validation"``, ``"test"``, ``"all"``, or several joined by ``+``
        (``"validation+test"``). Training-only corpora add clips to ``"train"`` (and
        ``"all"``) only.
    general_negatives : bool, default True
        Wake word: add every clip of the Speech Commands corpora (other words, silence, and
        the training corpora's background noise) as ``_other_``, split by their own rules.
    general_speech : bool, default True
        Speech Commands, splits ``"train"`` / ``"all"``: add the training phrases of the
        wake-word corpus as ``_unknown_`` (:func:`general_speech_phrases`), when it is there.
    **kwargs
        Passed to :class:`kwshw.datasets.SpeechCommands` or :class:`kwshw.datasets.WakeWord`
        (``keyword``, ``negative_windows``, ...).

    Returns
    -------
    Dataset
        The joined clips; ``notes`` holds one line per corpus (its role) and any remark of the
        loaders (e.g. keyword folders a training corpus lacks).
    """
    corpora = find_corpora(data_root, task,
                           keywords=kwargs.get("keywords", SPEECH_COMMANDS_KEYWORDS))
    root = _check_data_root(data_root)
    parts: list[Dataset] = []
    for s in split.split("+"):
        if task == "speech_commands":
            parts += _speech_commands(corpora, s, **kwargs)
            train_phrases, _ = general_speech_phrases(data_root)
            if general_speech and s in ("train", "all") and train_phrases:
                parts.append(_general_speech(data_root, parts[0].labels, train_phrases))
            continue
        ww = WakeWord(corpora[0].root, split=s, **kwargs)
        parts.append(ww)
        if general_negatives and len(corpora) > 1:
            for sc in _speech_commands(corpora[1:], s):
                parts.append(Dataset(ww.labels,
                                     [dataclasses.replace(it, label_index=0) for it in sc.items],
                                     s, sc.root,
                                     [dataclasses.replace(it, label_index=0)
                                      for it in sc.noise_items],
                                     sc.sample_rate, sc.notes))
    joined = _join(parts, split, root if len(corpora) > 1 else corpora[0].root)
    joined.notes = [c.describe() for c in corpora] + list(dict.fromkeys(joined.notes))
    if not joined.items:
        raise DatasetError(f"{root}: no audio files in split {split!r}")
    if task == "wake_word":
        joined.keyword = parts[0].keyword  # type: ignore[attr-defined]
    return joined
