"""Held-back evaluation streams of a task (no training clip in them) and a model judged on
them: FRR at false accepts per hour, the default threshold chosen for a stated rate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kwshw.corpora import EVALUATION_CORPUS, WAKE_WORD_CORPUS, open_dataset
from kwshw.evaluate import (
    default_threshold,
    detection_thresholds,
    keyword_classes,
    offset_threshold,
)
from kwshw.features import FeatureConfig
from kwshw.stream_eval import choose_threshold, evaluate_stream, held_out_stream
from kwshw.streams import (
    match_multiclass_detections,
    multiclass_detections,
    shared_sources,
    stream_posteriors,
)
from sim.stimulus import random_model

from .test_corpora import _wake, make_extra
from .test_datasets import make_archive

GAP = 0.05
FEATURES = FeatureConfig(n_mels=16, context=3, stride=2, n_fft=512)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("streamdata")
    make_archive(root / EVALUATION_CORPUS)
    make_extra(root / "speech_commands_v0.02_extra")
    _wake(root / WAKE_WORD_CORPUS)
    for f in sorted((root / WAKE_WORD_CORPUS / "computer").iterdir()):  # a third phrase
        (root / WAKE_WORD_CORPUS / "jarvis").mkdir(exist_ok=True)
        (root / WAKE_WORD_CORPUS / "jarvis" / f.name).write_bytes(f.read_bytes())
    return root


def _training_keys(task: str, data: Path) -> list[str]:
    kw = {"keyword": "alexa"} if task == "wake_word" else {}
    ds = open_dataset(task, data, "train", **kw)
    return [it.key for it in ds] + [it.key for it in ds.noise_items]


@pytest.mark.parametrize("task", ["wake_word", "speech_commands"])
def test_held_out_stream_holds_no_training_clip(task, data):
    stream, info = held_out_stream(task, data, min_gap_s=GAP, progress=False)
    assert stream.events and info["keyword_clips"] == len(stream.events)
    assert shared_sources(stream, _training_keys(task, data)) == []
    if task == "wake_word":
        assert all(e.label == 1 and "alexa" in e.source for e in stream.events)
        # General speech and silence of both Speech Commands corpora' held-back splits.
        assert any(EVALUATION_CORPUS in s for s in stream.sources)
        assert not any("speech_commands_v0.02_extra" in s for s in stream.sources)
    else:
        assert {e.label for e in stream.events} <= set(range(10))
        # General speech the 12-class model never trained on: the held-back phrases only.
        ww = [s for s in stream.sources if WAKE_WORD_CORPUS in s]
        assert len(ww) == 24 and all("/alexa/" in s or "/jarvis/" in s for s in ww)
        # ... in halves: thresholds chosen on the validation stream meet other clips in test.
        halves = [{s for s in held_out_stream(task, data, split=split, min_gap_s=GAP,
                                              progress=False)[0].sources
                   if WAKE_WORD_CORPUS in s} for split in ("validation", "test")]
        assert halves[0] and halves[1] and not halves[0] & halves[1]
        assert halves[0] | halves[1] == set(ww)
    with pytest.raises(ValueError, match="held-back"):
        held_out_stream(task, data, split="train", progress=False)


def _model(labels):
    m = random_model([8], 4, n_out=len(labels), features=FEATURES, seed=3)
    return dataclasses.replace(m, labels=list(labels), task=(
        "wake_word" if len(labels) == 2 else "speech_commands"))


def test_evaluate_stream_reports_frr_at_fa_and_a_plot(data, tmp_path):
    stream, _ = held_out_stream("wake_word", data, min_gap_s=GAP, progress=False)
    m = _model(["_other_", "alexa"])
    res = evaluate_stream(m, stream, modes=("golden", "float"), fa_targets=(1, 5),
                          plot=tmp_path / "det.png", threshold=0.3)
    assert res["events"] == len(stream.events) and res["keyword_classes"] == [1]
    for r in res["results"].values():
        assert set(r["frr_at"]) == {"1", "5"}
        for target, v in r["frr_at"].items():
            assert 0 <= v["frr"] <= 1 and v["fa_per_hour"] <= float(target)
        assert r["at_threshold"]["threshold"] == 0.3
    assert Path(res["plot"]).stat().st_size > 1000


def test_default_threshold_is_chosen_for_a_stated_rate(data):
    m = _model(["_other_", "alexa"])
    assert default_threshold(m) == 0.5  # no choice stored: the fallback
    det = choose_threshold(m, data, fa_per_hour=50.0, split="validation+test", min_gap_s=GAP)
    assert det["fa_per_hour"] <= 50.0 and det["mode"] == "golden"
    chosen = dataclasses.replace(m, meta={**m.meta, "detection": det})
    assert default_threshold(chosen) == det["threshold"]
    assert det["class_offsets"] == {}          # one keyword class: nothing to offset


def test_twelve_class_thresholds_get_an_offset_per_class(data):
    stream, info = held_out_stream("speech_commands", data, min_gap_s=GAP, progress=False)
    m = _model(info["labels"])
    keywords = keyword_classes(m.labels)
    det = choose_threshold(m, data, fa_per_hour=1e4, stream=stream)
    assert set(det["class_offsets"]) == {m.labels[c] for c in keywords}
    assert sum(det["class_offsets"].values()) == pytest.approx(0.0, abs=0.01)
    chosen = dataclasses.replace(m, meta={**m.meta, "detection": det})
    thr = detection_thresholds(chosen)
    assert thr == {c: offset_threshold(det["threshold"], det["class_offsets"][m.labels[c]])
                   for c in keywords}
    assert len(set(thr.values())) > 1
    assert detection_thresholds(chosen, 0.7) == dict.fromkeys(keywords, 0.7)
    # The model's own operating point is the per-class rule, and the choice is read back.
    res = evaluate_stream(chosen, stream, fa_targets=(1e4,))
    at = res["results"]["golden"]["at_threshold"]
    assert res["class_offsets"] == det["class_offsets"]
    assert (at["frr"], at["fa_per_hour"]) == (det["frr"], det["fa_per_hour"])
    post = stream_posteriors(chosen, stream, "golden")
    hits, n_fa, _ = match_multiclass_detections(
        multiclass_detections(post, keywords, thr), stream.events, chosen.features.hop_length)
    assert at["false_accepts"] == n_fa and at["frr"] == np.mean(~hits)
    bad = dataclasses.replace(m, meta={"detection": {"threshold": 0.5,
                                                     "class_offsets": {"seven": 1.0}}})
    with pytest.raises(ValueError, match="seven"):
        detection_thresholds(bad)
