"""Corpus layouts, speaker splits, windows of a clip, augmentation and the feature cache."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwshw.datasets import (
    SILENCE,
    SPEECH_COMMANDS_KEYWORDS,
    SPLITS,
    UNKNOWN,
    Augmentation,
    Augmenter,
    Dataset,
    DatasetError,
    Item,
    SpeechCommands,
    WakeWord,
    extract,
    keyword_end,
    load_item,
    mix_at_snr,
    speaker_of,
    which_set,
    window_ends,
)
from kwshw.features import FeatureConfig, Normalizer, lfbe, stack_window

CFG = FeatureConfig()


def _speakers_in_every_split(per_split: int = 2) -> tuple[str, ...]:
    """Speaker ids of which the default (salted) rule at 20/20 % puts 2 in every split."""
    chosen: dict[str, list[str]] = {s: [] for s in SPLITS}
    i = 0
    while any(len(v) < per_split for v in chosen.values()):
        spk = hashlib.sha1(str(i).encode()).hexdigest()[:8]
        s = which_set(spk, 20, 20, "kwshw")
        if len(chosen[s]) < per_split:
            chosen[s].append(spk)
        i += 1
    return tuple(sorted(sum(chosen.values(), [])))


SPEAKERS = _speakers_in_every_split()


@pytest.fixture(scope="module")
def data_root() -> Path:
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    return Path(root)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never touch the user's ~/.cache/kwshw from the tests.
    monkeypatch.setenv("KWSHW_CACHE", str(tmp_path / "cache"))


def _write(path: Path, n: int = 1600, seed: int = 0, amp: float = 0.1, fmt: str = "WAV"):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.clip(amp * np.random.default_rng(seed).standard_normal(n), -1, 1)
    sf.write(path, x, 16000, format=fmt, subtype="PCM_16")


def make_archive(root: Path, n: int = 1600) -> Path:
    """The layout of the canonical test archive: keywords, _unknown_/, _silence_/."""
    s = 0
    for w in SPEECH_COMMANDS_KEYWORDS:
        for spk in SPEAKERS:
            _write(root / w / f"{spk}_nohash_0.wav", n, s := s + 1)
    for spk in SPEAKERS:
        _write(root / UNKNOWN / f"bed_{spk}_nohash_1.wav.wav", n, s := s + 1)
        _write(root / UNKNOWN / f"marvin_{spk}_nohash_0.wav.wav", n, s := s + 1)
    for i in (7, 42, 1024, 3329, 4698, 77):
        _write(root / SILENCE / f"{i}.wav", n, s := s + 1)
    return root


def make_full(root: Path, lists: bool = False) -> Path:
    """The layout of the full set: 10 keywords, other words, _background_noise_/."""
    s = 0
    for w in (*SPEECH_COMMANDS_KEYWORDS, "bed", "cat"):
        for spk in SPEAKERS:
            for k in range(2):
                _write(root / w / f"{spk}_nohash_{k}.wav", 800, s := s + 1)
    _write(root / "_background_noise_" / "white_noise.wav", 12 * 16000, 100)
    _write(root / "_background_noise_" / "pink_noise.wav", 11 * 16000, 101)
    (root / "README.md").write_text("not a class")
    if lists:
        (root / "validation_list.txt").write_text(
            f"yes/{SPEAKERS[0]}_nohash_0.wav\nbed/{SPEAKERS[1]}_nohash_1.wav\n"
        )
        (root / "testing_list.txt").write_text(f"no/{SPEAKERS[2]}_nohash_1.wav\n")
    return root


# --- TensorFlow's which_set, verbatim logic (speech_commands/input_data.py) ----------------------


def tf_which_set(filename: str, validation_percentage: float, testing_percentage: float) -> str:
    max_num_wavs_per_class = 2**27 - 1
    base_name = os.path.basename(filename)
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode()).hexdigest()
    percentage_hash = (int(hash_name_hashed, 16) % (max_num_wavs_per_class + 1)) * (
        100.0 / max_num_wavs_per_class
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < (testing_percentage + validation_percentage):
        return "test"
    return "train"


def test_speaker_of():
    assert speaker_of("022cd682_nohash_0.wav") == "022cd682"
    assert speaker_of("backward_0cb74144_nohash_2.wav.wav") == "0cb74144"
    assert speaker_of("/x/yes/0A7C2A8D_nohash_12.wav") == "0a7c2a8d"
    assert speaker_of("1024.wav") is None


def test_unsalted_which_set_is_tensorflows():
    rng = np.random.default_rng(0)
    for _ in range(300):
        spk = "".join(rng.choice(list("0123456789abcdef"), 8))
        name = f"{spk}_nohash_{rng.integers(5)}.wav"
        assert which_set(spk, 10, 10) == tf_which_set(name, 10, 10)
        assert which_set(spk, 20, 5) == tf_which_set(name, 20, 5)


def test_which_set_percentages():
    keys = [f"{i:08x}" for i in range(4000)]
    got = [which_set(k, 10, 20, salt="kwshw") for k in keys]
    assert abs(got.count("validation") / 4000 - 0.10) < 0.02
    assert abs(got.count("test") / 4000 - 0.20) < 0.02


def test_archive_layout(tmp_path):
    root = make_archive(tmp_path / "sc")
    ds = SpeechCommands(root, "all")
    assert ds.labels == [*SPEECH_COMMANDS_KEYWORDS, UNKNOWN, SILENCE]
    counts = ds.counts()
    assert all(counts[w] == len(SPEAKERS) for w in SPEECH_COMMANDS_KEYWORDS)
    assert counts[UNKNOWN] == 2 * len(SPEAKERS) and counts[SILENCE] == 6
    assert ds.speakers() == set(SPEAKERS)
    unknown = [it for it in ds if it.label_index == 10]
    assert {it.speaker for it in unknown} == set(SPEAKERS)
    assert all(it.speaker is None for it in ds if it.label_index == 11)
    assert len(ds.noise_items) == 6 and all(it.label_index == 11 for it in ds.noise_items)
    assert ds.load(0).shape == (1600,)


def test_splits_partition_by_speaker_and_are_deterministic(tmp_path):
    root = make_archive(tmp_path / "sc")
    parts = {
        s: SpeechCommands(root, s, validation_percentage=20, testing_percentage=20) for s in SPLITS
    }
    everything = SpeechCommands(root, "all", validation_percentage=20, testing_percentage=20)
    keys = [sorted(it.key for it in parts[s]) for s in SPLITS]
    assert sorted(sum(keys, [])) == sorted(it.key for it in everything)
    spk = {s: parts[s].speakers() for s in SPLITS}
    assert not (spk["train"] & spk["validation"] or spk["train"] & spk["test"])
    assert not spk["validation"] & spk["test"]
    for s in SPLITS:  # every clip of a speaker where the rule says
        for it in parts[s]:
            if it.speaker is not None:
                assert which_set(it.speaker, 20, 20, "kwshw") == s
    assert all(len(spk[s]) == 2 for s in SPLITS)
    again = SpeechCommands(root, "train", validation_percentage=20, testing_percentage=20)
    assert again.items == parts["train"].items


def test_full_layout_unknown_and_silence_cut_from_background(tmp_path):
    root = make_full(tmp_path / "full")
    per_split = {
        s: SpeechCommands(root, s, validation_percentage=20, testing_percentage=20) for s in SPLITS
    }
    regions = {}
    for s, ds in per_split.items():
        c = ds.counts()
        words = sum(v for k, v in c.items() if k != SILENCE)
        assert c[SILENCE] == math.ceil(0.10 * words)
        # Other words are _unknown_: 2 folders x 6 speakers x 2 clips, by speaker split.
        assert all(it.speaker for it in ds if it.label_index == 10)
        for it in ds.noise_items:
            assert it.num_samples == 16000 and it.speaker is None
            length = sf.info(it.path).frames
            assert 0 <= it.offset and it.offset + 16000 <= length
            regions.setdefault(s, []).append((it.path, it.offset, it.offset + 16000, length))
    # No stretch of a background recording lies in two splits.
    bounds = {"train": (0.0, 0.6), "validation": (0.6, 0.8), "test": (0.8, 1.0)}
    for s, cuts in regions.items():
        lo, hi = bounds[s]
        for _, a, b, length in cuts:
            assert round(lo * length) <= a and b <= round(hi * length)
    all_ = SpeechCommands(root, "all", validation_percentage=20, testing_percentage=20)
    assert all_.counts()[UNKNOWN] == 2 * 6 * 2


def test_full_layout_lists_and_unknown_subsampling(tmp_path):
    root = make_full(tmp_path / "full", lists=True)
    val = SpeechCommands(root, "validation")
    test = SpeechCommands(root, "test")
    tail = lambda ds: {"/".join(Path(it.path).parts[-2:]) for it in ds if it.speaker}  # noqa: E731
    assert tail(val) == {f"yes/{SPEAKERS[0]}_nohash_0.wav", f"bed/{SPEAKERS[1]}_nohash_1.wav"}
    assert tail(test) == {f"no/{SPEAKERS[2]}_nohash_1.wav"}
    train = SpeechCommands(root, "train")
    assert len(tail(train)) == 12 * 6 * 2 - 3
    sub = SpeechCommands(root, "train", unknown_percentage=10)
    known = sum(v for k, v in sub.counts().items() if k not in (UNKNOWN, SILENCE))
    assert sub.counts()[UNKNOWN] == math.ceil(0.10 * known)


def test_speech_commands_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        SpeechCommands(tmp_path / "nowhere")
    root = make_archive(tmp_path / "sc")
    for f in (root / "yes").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"yes.*holds no \.wav/\.flac"):
        SpeechCommands(root)
    (root / "yes").rmdir()
    with pytest.raises(DatasetError, match=r"missing class folders \['yes'\]"):
        SpeechCommands(root)
    root2 = make_archive(tmp_path / "sc2")
    for f in (root2 / UNKNOWN).iterdir():
        f.unlink()
    (root2 / UNKNOWN).rmdir()
    with pytest.raises(DatasetError, match="no source of _unknown_"):
        SpeechCommands(root2)
    root3 = make_archive(tmp_path / "sc3")
    for f in (root3 / SILENCE).iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"_silence_.*holds no"):
        SpeechCommands(root3)
    (root3 / SILENCE).rmdir()
    with pytest.raises(DatasetError, match="no source of _silence_"):
        SpeechCommands(root3)
    with pytest.raises(ValueError, match="split"):
        SpeechCommands(make_archive(tmp_path / "sc4"), "dev")


def _wake_clip(n: int, burst: tuple[int, int], click_at: int | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 0.003 * rng.standard_normal(n)
    t = np.arange(burst[1] - burst[0]) / 16000
    x[burst[0] : burst[1]] += 0.2 * np.sin(2 * np.pi * 500 * t) * np.hanning(len(t))
    if click_at is not None:
        x[click_at : click_at + 200] += 0.9 * np.sign(rng.standard_normal(200))
    x[:800] = 0.0  # digital silence at the start, as in the benchmark clips
    return np.clip(x, -1, 1)


def make_wake(root: Path) -> Path:
    for folder, nfiles in (("alexa", 6), ("computer", 4), ("smart mirror", 4)):
        for i in range(nfiles):
            p = root / folder / f"{i}.flac"
            p.parent.mkdir(parents=True, exist_ok=True)
            x = _wake_clip(40000, (20000 + 1000 * i, 29000 + 1000 * i), 1200, i)
            sf.write(p, x, 16000, format="FLAC", subtype="PCM_16")
    return root


def test_keyword_end_centres_the_word_despite_a_click():
    x = _wake_clip(48000, (25000, 34000), click_at=1500, seed=1)
    end = keyword_end(x, CFG)
    first, last = end - CFG.span + 1, end
    # The burst covers frames ~156..210; the window must hold all of it, centred.
    assert first * 160 <= 25000 and (last * 160 + 400) >= 34000
    centre = (first + last) / 2 * 160 + 200
    assert abs(centre - 29500) < 1600


def test_window_ends():
    assert window_ends("last", 98, CFG).tolist() == [97]
    assert window_ends("centroid", 300, CFG, 150).tolist() == [150]
    assert window_ends("centroid", 300, CFG, 10).tolist() == [96]  # first complete window
    assert window_ends("centroid", 300, CFG, 999).tolist() == [299]
    assert window_ends("centroid", 50, CFG, 10).tolist() == [49]  # clip shorter than a window
    e = window_ends("all:10", 300, CFG)
    assert e[-1] == 299 and e[0] >= 96 and np.all(np.diff(e) == 10) and e[0] - 10 < 96
    with pytest.raises(ValueError):
        window_ends("middle", 300, CFG)


def test_wake_word_layout(tmp_path):
    root = make_wake(tmp_path / "ww")
    ds = WakeWord(root, "alexa", "all")
    assert ds.labels == ["_other_", "alexa"]
    assert ds.counts() == {"_other_": 8, "alexa": 6}
    assert all(it.window == "centroid" and it.speaker is None for it in ds)
    parts = [
        WakeWord(root, "alexa", s, validation_percentage=30, testing_percentage=30) for s in SPLITS
    ]
    assert sorted(it.path for p in parts for it in p) == sorted(it.path for it in ds)
    for p, s in zip(parts, SPLITS, strict=True):
        for it in p:
            rel = "/".join(Path(it.path).parts[-2:])
            assert which_set(rel, 30, 30, "kwshw") == s
    allw = WakeWord(root, "alexa", "all", negative_windows="all", all_step=5)
    assert {it.window for it in allw if it.label_index == 0} == {"all:5"}
    fs = extract(allw, CFG, progress=False, cache=False)
    pos = fs.example_labels == 1
    assert pos.sum() == 6 and (~pos).sum() > 8


def test_wake_word_with_speech_commands_negatives(tmp_path):
    root = make_wake(tmp_path / "ww")
    sc = make_archive(tmp_path / "sc")
    ds = WakeWord(root, "alexa", "all", speech_commands=sc)
    assert ds.counts() == {"_other_": 8 + 10 * 6 + 12 + 6, "alexa": 6}
    assert len(ds.noise_items) == 6 and all(it.label_index == 0 for it in ds.noise_items)
    assert {it.window for it in ds if "sc" in Path(it.path).parts} == {"last"}


def test_wake_word_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        WakeWord(tmp_path / "none")
    root = make_wake(tmp_path / "ww")
    with pytest.raises(DatasetError, match="missing keyword folder 'jarvis'"):
        WakeWord(root, "jarvis")
    (root / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty.*holds no"):
        WakeWord(root)
    only = tmp_path / "only"
    _write(only / "alexa" / "1.flac", fmt="FLAC")
    with pytest.raises(DatasetError, match="no negatives"):
        WakeWord(only, split="all")


def test_mix_at_snr_is_exact():
    rng = np.random.default_rng(5)
    s, n = 0.1 * rng.standard_normal(8000), 0.7 * rng.standard_normal(8000)
    for snr in (0.0, 7.5, 20.0, -3.0):
        y = mix_at_snr(s, n, snr)
        measured = 10 * np.log10(np.sum(s**2) / np.sum((y - s) ** 2))
        assert measured == pytest.approx(snr, abs=1e-9)
    np.testing.assert_array_equal(mix_at_snr(np.zeros(10), n[:10], 5.0), np.zeros(10))


def test_augmenter_measured_snr_shift_and_gain():
    rng = np.random.default_rng(11)
    speech = 0.05 * rng.standard_normal(16000)
    noise = [0.2 * rng.standard_normal(7000), 0.01 * rng.standard_normal(20000), np.zeros(5000)]
    aug = Augmenter(Augmentation(time_shift_ms=0, noise_prob=1.0, gain_db=(0, 0)), noise)
    assert len(aug.noise) == 2  # the digital-silence clip is dropped
    snrs = []
    for k in range(40):
        a = aug(speech, np.random.default_rng(k))
        assert a.shift == 0 and a.gain_db == 0.0 and a.snr_db is not None
        residual = a.audio.astype(np.float64) - speech
        measured = 10 * np.log10(np.sum(speech**2) / np.sum(residual**2))
        assert measured == pytest.approx(a.snr_db, abs=0.01)  # float32 rounding only
        snrs.append(a.snr_db)
    assert 0.0 <= min(snrs) and max(snrs) <= 20.0 and max(snrs) - min(snrs) > 10

    shifter = Augmenter(Augmentation(noise_prob=0.0, gain_db=(0, 0)), noise)
    ramp = np.linspace(-0.5, 0.5, 16000)
    shifts = set()
    for k in range(30):
        a = shifter(ramp, np.random.default_rng(k))
        assert a.snr_db is None and abs(a.shift) <= 1600
        shifts.add(a.shift)
        want = np.zeros(16000)
        if a.shift >= 0:
            want[a.shift :] = ramp[: 16000 - a.shift]
        else:
            want[: 16000 + a.shift] = ramp[-a.shift :]
        np.testing.assert_allclose(a.audio, want, atol=1e-7)
    assert len(shifts) > 20

    gainer = Augmenter(Augmentation(time_shift_ms=0, noise_prob=0.0, gain_db=(-6, 6)))
    a = gainer(speech, np.random.default_rng(3))
    np.testing.assert_allclose(a.audio, speech * 10 ** (a.gain_db / 20), atol=1e-7)

    full = Augmenter(Augmentation(), noise)
    one = full(speech, np.random.default_rng(123))
    two = full(speech, np.random.default_rng(123))
    np.testing.assert_array_equal(one.audio, two.audio)


def test_extract_windows_cache_and_errors(tmp_path):
    root = make_archive(tmp_path / "sc", n=16000)
    ds = SpeechCommands(root, "all")
    small = ds.subset(range(0, len(ds), 6))
    fs = extract(small, CFG, progress=False)
    assert fs.n_clips == len(small) == fs.n_examples
    assert np.all(np.diff(fs.offsets) == 98) and np.all(fs.example_end == 97)
    np.testing.assert_array_equal(fs.clip(2), lfbe(load_item(small[2]), CFG))
    norm = fs.fit_normalizer()
    x, y = fs.windows(norm)
    assert x.shape == (len(small), 1000) and x.dtype == np.float32
    for c in (0, 3, len(small) - 1):
        np.testing.assert_array_equal(x[c], stack_window(norm.apply(fs.clip(c)), CFG, 97))
        assert y[c] == small[c].label_index

    cache_files = list((tmp_path / "cache").glob("features-*.npz"))
    assert len(cache_files) == 1
    again = extract(small, CFG, progress=False)
    np.testing.assert_array_equal(again.frames, fs.frames)
    assert len(list((tmp_path / "cache").glob("features-*.npz"))) == 1
    # A changed file is a new cache entry.
    _write(Path(small[0].path), 16000, seed=999)
    os.utime(small[0].path, ns=(1, 1))
    changed = extract(small, CFG, progress=False)
    assert len(list((tmp_path / "cache").glob("features-*.npz"))) == 2
    assert not np.array_equal(changed.clip(0), fs.clip(0))

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    items = [*small.items[:3], Item(str(bad), 0, None)]
    with pytest.raises(DatasetError, match=r"bad\.wav"):
        extract(items, CFG, progress=False, cache=False)
    with pytest.warns(UserWarning, match=r"bad\.wav"):
        fs2 = extract(items, CFG, progress=False, on_error="skip")
    assert fs2.n_clips == 3 and fs2.skipped[0][0].path == str(bad)
    with pytest.warns(UserWarning, match=r"bad\.wav"):  # also when served from the cache
        assert extract(items, CFG, progress=False, on_error="skip").n_clips == 3


def test_augmented_copies_are_deterministic_and_order_free(tmp_path):
    root = make_archive(tmp_path / "sc", n=16000)
    ds = SpeechCommands(root, "all")
    small = ds.subset(range(0, len(ds), 8))
    aug = Augmenter(Augmentation(), ds.noise_items)
    fs = extract(small, CFG, augment=aug, copies=2, seed=7, progress=False, cache=False)
    assert fs.n_clips == 3 * len(small) and fs.copy.tolist() == [0] * len(small) + [1] * len(
        small
    ) + [2] * len(small)
    rev = extract(
        list(reversed(small.items)), CFG, augment=aug, copies=2, seed=7, progress=False, cache=False
    )
    n = len(small)
    for c in range(3 * n):
        k, i = divmod(c, n)
        np.testing.assert_array_equal(fs.clip(c), rev.clip(k * n + (n - 1 - i)))
    assert not np.array_equal(fs.clip(0), fs.clip(n))  # augmented differs from clean
    other = extract(small, CFG, augment=aug, copies=1, seed=8, progress=False, cache=False)
    assert not np.array_equal(other.clip(n), fs.clip(n))
    pooled = extract(
        small, CFG, augment=aug, copies=2, seed=7, workers=2, progress=False, cache=False
    )
    np.testing.assert_array_equal(pooled.frames, fs.frames)


def test_dataset_interface(tmp_path):
    ds = Dataset(["a", "b"], [Item("/x.wav", 1, "s1"), Item("/y.wav", 0, None)], "train")
    assert len(ds) == 2 and ds[0].label_index == 1 and list(ds)[1].path == "/y.wav"
    assert ds.counts() == {"a": 1, "b": 1} and ds.speakers() == {"s1"}
    assert len(ds[:1]) == 1
    with pytest.raises(DatasetError):
        Dataset(["a"], [Item("/x.wav", 3, None)])
    with pytest.raises(ValueError):
        Item("/x.wav", 0, None, window="middle")
    with pytest.raises(DatasetError, match="unreadable audio.*x.wav"):
        load_item(Item(str(tmp_path / "x.wav"), 0, None))


# --- real data -----------------------------------------------------------------------------------


@pytest.mark.data
def test_real_speech_commands_split_by_speaker(data_root):
    root = data_root / "speech_commands_v0.02_test"
    parts = {s: SpeechCommands(root, s) for s in SPLITS}
    all_ = SpeechCommands(root, "all")
    assert len(all_) == 3181 and sum(len(p) for p in parts.values()) == 3181
    spk = {s: p.speakers() for s, p in parts.items()}
    assert not spk["train"] & spk["validation"]
    assert not spk["train"] & spk["test"]
    assert not spk["validation"] & spk["test"]
    assert all(len(spk[s]) > 5 for s in SPLITS)
    assert all(c > 0 for p in parts.values() for c in p.counts().values())
    # Unknown clips carry the speaker of their name; silence clips none.
    assert all(it.speaker for it in all_ if it.label_index == 10)
    assert all(it.speaker is None for it in all_ if it.label_index == 11)
    # Why the split is salted: TensorFlow's rule sends every speaker here to "test".
    tf_test = SpeechCommands(root, "test", split_salt="")
    assert tf_test.speakers() == all_.speakers()


@pytest.mark.data
def test_real_wake_word_and_features(data_root):
    root = data_root / "wake_word_benchmark"
    ds = WakeWord(root, "alexa", "all")
    assert ds.labels == ["_other_", "alexa"] and len(ds) == 1585
    assert ds.counts()["alexa"] == len(list((root / "alexa").glob("*.flac")))
    pos = [it for it in ds if it.label_index == 1][:4]
    neg = [it for it in ds if it.label_index == 0][::300]
    fs = extract(pos + neg, CFG, progress=False, cache=False, on_error="skip")
    for e, c in zip(fs.example_end, fs.example_clip, strict=True):
        n = fs.offsets[c + 1] - fs.offsets[c]
        assert min(CFG.span, n) - 1 <= e <= n - 1


@pytest.mark.data
def test_real_noise_mixing_snr(data_root):
    root = data_root / "speech_commands_v0.02_test"
    ds = SpeechCommands(root, "train")
    noise = ds.noise_items[:20]
    aug = Augmenter(Augmentation(time_shift_ms=0, noise_prob=1.0, gain_db=(0, 0)), noise)
    speech = [it for it in ds if it.label_index == 0][:5]
    for k, it in enumerate(speech):
        x = load_item(it).astype(np.float64)
        a = aug(x, np.random.default_rng(k))
        residual = a.audio.astype(np.float64) - x
        measured = 10 * np.log10(np.sum(x**2) / np.sum(residual**2))
        assert 0.0 <= a.snr_db <= 20.0
        assert measured == pytest.approx(a.snr_db, abs=0.05)


@pytest.mark.data
def test_real_extract_one_second_clips(data_root):
    root = data_root / "speech_commands_v0.02_test"
    ds = SpeechCommands(root, "validation")
    small = ds.subset(range(0, len(ds), 40))
    fs = extract(small, CFG, progress=False)
    assert np.all(np.diff(fs.offsets) == 98) and np.all(fs.example_end == 97)
    norm: Normalizer = fs.fit_normalizer()
    x, y = fs.windows(norm)
    assert x.shape == (len(small), 1000) and np.all(np.isfinite(x))
    assert dataclasses.asdict(small[0])["path"].endswith(".wav")


# --- the package ---------------------------------------------------------------------------------


def test_the_package_exports_its_api():
    import kwshw.datasets as ds

    for name in ds.__all__:
        assert getattr(ds, name) is not None, name
    # The function, not the module of the same stage (kwshw.datasets.extraction).
    assert callable(ds.extract) and ds.extract.__name__ == "extract"


def test_feature_cache_file_names_are_stable():
    """Existing caches stay valid: the names computed before the package was split up. A
    deliberate change (new FeatureConfig field, _CACHE_VERSION bump) updates these."""
    from kwshw.datasets.cache import cache_file

    items = [
        Item("/nonexistent/kwshw/yes/a.wav", 0, "a"),
        Item("/nonexistent/kwshw/bg.wav", 1, None, offset=16000, num_samples=16000,
             window="all:10"),
    ]
    noise = [np.linspace(-0.5, 0.5, 4000, dtype=np.float32)]
    aug = Augmenter(Augmentation(), noise)
    assert cache_file("/c", CFG, items, [0], 0, None) == Path(
        "/c/features-a66caeab15b7ed4246a650798f47a696.npz"
    )
    assert cache_file("/c", CFG, items, [0, 1, 2], 7, aug) == Path(
        "/c/features-29d1dd7900e28d5cb4e74672bcefe461.npz"
    )
