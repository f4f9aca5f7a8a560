"""Models of the integer front end (``FeatureConfig.integer``): the configuration and the
model file record it, and every path from audio to the network (feature extraction for
training and evaluation, the normalization, the host that feeds a board, training itself)
gives the integers the gateware front end computes (kwshw.features_int, bit for bit)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from boards.refmodel import random_cnn
from kwshw import golden, modelfile, quantize
from kwshw.audio import load_audio
from kwshw.corpora import open_dataset
from kwshw.datasets import extract
from kwshw.evaluate import model_normalizer
from kwshw.features import FeatureConfig, Normalizer
from kwshw.features import lfbe as float_lfbe
from kwshw.features_int import LOG_FRAC, IntFrontEnd, IntNormalizer, pcm_from_float
from kwshw.frontends import lfbe, normalizer
from kwshw.host.runtime import audio_frames, stream_frames
from kwshw.train.exact import IntegerNet
from kwshw.train.trainer import TrainConfig, export, finetune_qat, prepare, train_float
from tests.test_datasets import make_full

INT = FeatureConfig(integer=True)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KWSHW_CACHE", str(tmp_path / "cache"))


def _speech(n: int = 4) -> list[np.ndarray]:
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder")
    ds = open_dataset("speech_commands", root, "test")
    want = {ds.labels.index(k) for k in ("yes", "stop", "_unknown_")}
    items = [it for it in ds if it.label_index in want][:n]
    return [ds.load(it) for it in items]


# --- configuration and model file ----------------------------------------------------------

def test_integer_is_recorded_only_when_set(tmp_path):
    assert "integer" not in FeatureConfig().to_dict()
    assert INT.to_dict()["integer"] is True
    assert FeatureConfig.from_dict(INT.to_dict()) == INT
    # Written before the field existed: the float front end.
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()).integer is False
    with pytest.raises(ValueError, match="integer must be True or False"):
        lfbe(np.zeros(1600), replace(INT, integer=1))
    m = random_cnn(4, convs=((3, 1, 4),), hidden=(6,), features=INT, seed=1)
    modelfile.save(m, tmp_path / "m.kwm")
    back = modelfile.load(tmp_path / "m.kwm")
    assert back.features.integer and isinstance(model_normalizer(back), IntNormalizer)
    float_model = random_cnn(4, convs=((3, 1, 4),), hidden=(6,), seed=1)
    assert type(model_normalizer(float_model)) is Normalizer


# --- features and normalization --------------------------------------------------------------

def test_integer_lfbe_is_the_integer_front_end_on_real_speech():
    fe = IntFrontEnd(INT)
    for audio in _speech():
        got = lfbe(audio, INT)
        want = fe.lfbe(pcm_from_float(audio))
        assert got.dtype == np.float32
        assert np.array_equal(got.astype(np.float64) * 2.0**LOG_FRAC, want)
        # The float front end is another function: close, not equal.
        ref = float_lfbe(audio, FeatureConfig())
        assert not np.array_equal(got, ref) and np.abs(got - ref).max() < 0.05


def test_int_normalizer_gives_the_gateware_codes():
    audio = np.concatenate(_speech(3))
    feats = lfbe(audio, INT)
    fitted = Normalizer.fit(feats)
    mean, std = fitted.mean.astype(np.float32), fitted.std.astype(np.float32)
    norm = normalizer(mean, std, INT, 11)
    codes = IntFrontEnd(INT, Normalizer(mean, std), 11).frames(pcm_from_float(audio))
    assert np.array_equal(quantize.features_to_int(norm.apply(feats), 11), codes)
    with pytest.raises(ValueError, match="float front end given to a model"):
        norm.apply(float_lfbe(audio, FeatureConfig()))
    assert type(normalizer(mean, std, FeatureConfig(), 11)) is Normalizer


def test_extract_caches_the_two_front_ends_apart(tmp_path):
    root = make_full(tmp_path / "full")
    ds = open_dataset("speech_commands", root, "train")
    items = list(ds)[:6]
    got_int = extract(items, INT, progress=False)
    got_float = extract(items, FeatureConfig(), progress=False)
    again = extract(items, INT, progress=False)  # from the cache
    fe = IntFrontEnd(INT)
    for c, it in enumerate(items):
        want = fe.lfbe(pcm_from_float(load_audio(it.path, 16000)))
        assert np.array_equal(got_int.clip(c).astype(np.float64) * 2.0**LOG_FRAC, want)
        assert np.array_equal(again.clip(c), got_int.clip(c))
        assert not np.array_equal(got_float.clip(c), got_int.clip(c))


# --- the host feeding a board ------------------------------------------------------------------

def test_host_frames_of_an_integer_model_are_the_gateware_frames():
    m = random_cnn(4, convs=((3, 1, 4),), hidden=(6,), features=INT, seed=2)
    m = replace(m, norm_mean=np.full(40, -4.0, np.float32), norm_std=np.full(40, 3.0, np.float32))
    audio = np.concatenate(_speech(2))
    want = IntFrontEnd.from_model(m).frames(pcm_from_float(audio))
    assert np.array_equal(audio_frames(audio, m), want)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(audio), 40, replace=False))
    streamed = np.stack(list(stream_frames(np.split(audio, cuts), m)))
    # Hop by hop, as the gateware: every frame whose window ends at a whole hop.
    n = (len(audio) // m.features.hop_length * m.features.hop_length
         - m.features.win_length) // m.features.hop_length + 1
    assert len(streamed) == n and np.array_equal(streamed, want[:n])


# --- training ------------------------------------------------------------------------------

def test_training_on_the_integer_front_end_sees_the_gateware_integers(tmp_path):
    """prepare -> float training -> QAT -> export on a tiny corpus with the integer front end:
    every training window is the gateware's codes, the model file says so, and the exported
    network is bit-exact with the golden model on them."""
    root = make_full(tmp_path / "full")
    cfg = TrainConfig(hidden=(8,), time_conv=None, epochs=2, qat_epochs=1, batch_size=32,
                      copies=0, stream_windows=0, general_speech=False, validate=False)
    feats = FeatureConfig(context=5, stride=2, integer=True)
    data = prepare(root, config=cfg, features=feats, progress=False)
    assert isinstance(data.normalizer, IntNormalizer)
    # Input codes 2^-in_frac (IntNormalizer's), where the float normalization gives any float.
    codes = data.x_clean.astype(np.float64) * 2.0**cfg.in_frac
    assert np.array_equal(codes, np.round(codes))
    net, _ = train_float(data, cfg, progress=False)
    q, _ = finetune_qat(net, data, 4, cfg, progress=False)
    model = export(q, data, 4, cfg, progress=False)
    modelfile.save(model, tmp_path / "int.kwm")
    model = modelfile.load(tmp_path / "int.kwm")
    assert model.features.integer
    xi = quantize.features_to_int(data.x_clean, model.in_frac)
    ref = golden.run_network(model.plans(), xi)[-1].y
    assert np.array_equal(IntegerNet(model)(torch.from_numpy(xi)).numpy(), ref)
