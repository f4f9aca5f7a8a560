"""Every corpus of a task under one data folder: discovery, roles, training-only corpora,
keyword folders another corpus supplies, noise kept in the training split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwshw.corpora import EVALUATION_CORPUS, WAKE_WORD_CORPUS, find_corpora, open_dataset
from kwshw.datasets import SILENCE, SPEECH_COMMANDS_KEYWORDS, SPLITS, UNKNOWN, DatasetError

from .test_datasets import SPEAKERS, _write, make_archive, make_full

EXTRA_SPEAKERS = ("e0e0e0e0", "e1e1e1e1", "e2e2e2e2")
NO_ON_OFF = [w for w in SPEECH_COMMANDS_KEYWORDS if w not in ("on", "off")]


def make_extra(root: Path) -> Path:
    """The training layout without on/ and off/, as FLAC, with other words and noise."""
    s = 500
    for w in (*NO_ON_OFF, "bed", "happy"):
        for spk in EXTRA_SPEAKERS:
            _write(root / w / f"{spk}_nohash_0.flac", 800, s := s + 1, fmt="FLAC")
    _write(root / "_background_noise_" / "dishes.flac", 10 * 16000, 7, fmt="FLAC")
    _write(root / "_background_noise_" / "tap.flac", 9 * 16000, 8, fmt="FLAC")
    (root / "_background_noise_" / "README.md").write_text("noise recordings")
    return root


@pytest.fixture
def data(tmp_path) -> Path:
    make_archive(tmp_path / EVALUATION_CORPUS)
    make_extra(tmp_path / "speech_commands_v0.02_extra")
    return tmp_path


def test_roles_and_notes(data):
    corpora = find_corpora(data, "speech_commands")
    assert [(c.root.name, c.role) for c in corpora] == [
        (EVALUATION_CORPUS, "split"), ("speech_commands_v0.02_extra", "train")]
    train = open_dataset("speech_commands", data, "train")
    # One line per corpus, and one naming the folders the extra corpus lacks.
    assert any("on/, off/" in n and "speech_commands_v0.02_extra" in n for n in train.notes)
    assert sum("all training data" in n for n in train.notes) == 1


def test_training_only_corpus_is_all_train(data):
    extra = data / "speech_commands_v0.02_extra"
    parts = {s: open_dataset("speech_commands", data, s) for s in SPLITS}
    extra_items = {s: [it for it in parts[s] if Path(it.path).is_relative_to(extra)]
                   for s in SPLITS}
    # Every extra clip (3 speakers x 10 words) is in train, none held out.
    words = [it for it in extra_items["train"] if it.label_index != 11]
    assert len(words) == len(EXTRA_SPEAKERS) * (len(NO_ON_OFF) + 2)
    assert extra_items["validation"] == [] and extra_items["test"] == []
    # bed/ and happy/ are _unknown_; _background_noise_ is not a class.
    labels = parts["train"].labels
    unknown = [it for it in extra_items["train"] if labels[it.label_index] == UNKNOWN]
    assert {Path(it.path).parent.name for it in unknown} == {"bed", "happy"}
    assert not any(Path(it.path).parent.name == "_background_noise_" and
                   labels[it.label_index] != SILENCE for it in extra_items["train"])
    # The evaluation corpus keeps its own speaker split: same clips as read alone.
    from kwshw.datasets import SpeechCommands

    for s in ("validation", "test"):
        alone = SpeechCommands(data / EVALUATION_CORPUS, s)
        assert [it.path for it in parts[s]] == [it.path for it in alone]


def test_noise_of_training_corpus_feeds_training_only(data):
    train = open_dataset("speech_commands", data, "train")
    held = open_dataset("speech_commands", data, "validation+test")
    noise_dir = data / "speech_commands_v0.02_extra" / "_background_noise_"
    train_noise = [it for it in train.noise_items if Path(it.path).parent == noise_dir]
    assert train_noise, "the background recordings feed the augmenter"
    # Silence clips cut from the whole recordings, as training silence.
    sil = train.labels.index(SILENCE)
    assert {it.path for it in train if it.label_index == sil} >= {it.path for it in train_noise}
    assert not any(Path(it.path).parent == noise_dir for it in held)
    assert not any(Path(it.path).parent == noise_dir for it in held.noise_items)


def test_missing_keyword_needs_a_supplier(tmp_path):
    make_extra(tmp_path / "speech_commands_v0.02_extra")
    # Alone, the extra corpus has no evaluation role and lacks on/ and off/.
    with pytest.raises(DatasetError, match="training-only"):
        open_dataset("speech_commands", tmp_path, "train")
    with pytest.raises(DatasetError, match=r"missing class folders \['on', 'off'\]"):
        open_dataset("speech_commands", tmp_path / "speech_commands_v0.02_extra", "train")
    # An evaluation corpus that also lacks "off" supplies only "on": "off" is still refused.
    arch = make_archive(tmp_path / EVALUATION_CORPUS)
    for f in (arch / "off").iterdir():
        f.unlink()
    (arch / "off").rmdir()
    with pytest.raises(DatasetError, match=r"missing class folders \['off'\]"):
        open_dataset("speech_commands", tmp_path, "train")


def test_full_set_with_lists_is_one_split_corpus(tmp_path):
    root = make_full(tmp_path / "full", lists=True)
    assert [(c.root, c.role) for c in find_corpora(root, "speech_commands")] == \
        [(root.resolve(), "split")]
    val = open_dataset("speech_commands", root, "validation")
    assert sorted(Path(it.path).name for it in val if it.speaker) == \
        sorted([f"{SPEAKERS[0]}_nohash_0.wav", f"{SPEAKERS[1]}_nohash_1.wav"])
    # A full set beside the data folder's other corpora keeps its lists, as role "split".
    data = tmp_path / "data"
    make_full(data / "my_full_set", lists=True)
    make_extra(data / "more")
    roles = {c.root.name: c.role for c in find_corpora(data, "speech_commands")}
    assert roles == {"my_full_set": "split", "more": "train"}


def test_no_corpus_errors(tmp_path):
    with pytest.raises(DatasetError, match="no data folder"):
        find_corpora(None, "speech_commands")
    with pytest.raises(DatasetError, match="does not exist"):
        find_corpora(tmp_path / "nowhere", "speech_commands")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no Speech Commands corpus"):
        find_corpora(tmp_path / "empty", "speech_commands")
    with pytest.raises(ValueError, match="unknown task"):
        find_corpora(tmp_path, "nope")


def _wake(root: Path) -> Path:
    for name in ("alexa", "computer"):
        for k in range(12):
            x = 0.05 * np.random.default_rng(k).standard_normal(24000)
            (root / name).mkdir(parents=True, exist_ok=True)
            sf.write(root / name / f"{k}.flac", x, 16000, format="FLAC", subtype="PCM_16")
    return root


def test_wake_word_gets_general_negatives(data):
    _wake(data / WAKE_WORD_CORPUS)
    corpora = find_corpora(data, "wake_word")
    assert corpora[0].layout == "wake_word" and len(corpora) == 3
    train = open_dataset("wake_word", data, "train", keyword="alexa")
    assert train.labels == ["_other_", "alexa"]
    sources = {Path(it.path).parts[-3] if len(Path(it.path).parts) > 2 else ""
               for it in train if it.label_index == 0}
    assert {"speech_commands_v0.02_extra", EVALUATION_CORPUS, WAKE_WORD_CORPUS} <= sources
    # Silence and background noise are negatives; the noise feeds the augmenter.
    assert any("_background_noise_" in it.path for it in train.noise_items)
    only = open_dataset("wake_word", data, "train", keyword="alexa", general_negatives=False)
    assert all(WAKE_WORD_CORPUS in it.path for it in only)
    # Held-out splits never hold a training-only clip.
    held = open_dataset("wake_word", data, "validation+test", keyword="alexa")
    assert not any("speech_commands_v0.02_extra" in it.path for it in held)


@pytest.mark.data
def test_real_data_folder():
    root = os.environ.get("KWSHW_DATA")
    if not root or not (Path(root) / "speech_commands_v0.02_extra").is_dir():
        pytest.skip("KWSHW_DATA does not hold speech_commands_v0.02_extra/")
    train = open_dataset("speech_commands", root, "train")
    held = open_dataset("speech_commands", root, "validation+test")
    counts = train.counts()
    # on/off only from the test archive: about five times fewer than the other words.
    assert counts["yes"] > 3 * counts["on"] > 0
    assert len(held) == 674  # the held-out clips of the archive, as before the extra corpus
    assert not train.speakers() & held.speakers()


def test_wake_word_phrases_are_general_speech_for_the_12_class_task(data):
    from kwshw.corpora import GENERAL_SPEECH_WINDOWS, general_speech_phrases

    assert general_speech_phrases(data) == ([], [])  # no wake-word corpus yet
    _wake(data / WAKE_WORD_CORPUS)
    train_phrases, held = general_speech_phrases(data)
    assert (train_phrases, held) == (["computer"], ["alexa"])  # every second one, sorted
    train = open_dataset("speech_commands", data, "train")
    unknown = train.labels.index(UNKNOWN)
    speech = [it for it in train if WAKE_WORD_CORPUS in it.path]
    assert len(speech) == 12 and all(
        it.label_index == unknown and it.window == GENERAL_SPEECH_WINDOWS and
        Path(it.path).parent.name == "computer" for it in speech)
    assert any("computer" in n and UNKNOWN in n for n in train.notes)
    # Held-out clips unchanged; without general speech the training set is as before.
    for s in ("validation", "test"):
        assert not any(WAKE_WORD_CORPUS in it.path for it in open_dataset(
            "speech_commands", data, s))
    plain = open_dataset("speech_commands", data, "train", general_speech=False)
    assert len(plain) == len(train) - 12
