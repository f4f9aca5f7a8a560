"""The model file: round trip, content hash, and every rejected case."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from kwshw import golden, modelfile, quantize
from kwshw.features import FeatureConfig
from kwshw.modelfile import ModelFileError


def small_model(bits: int = 4, seed: int = 0) -> modelfile.Model:
    cfg = FeatureConfig(n_mels=8, context=3, stride=2)
    rng = np.random.default_rng(seed)
    shape = [cfg.n_inputs, 10, 6, 3]
    ws = [rng.normal(0, 1 / np.sqrt(a), (a, b))
          for a, b in zip(shape[:-1], shape[1:], strict=False)]
    bs = [rng.normal(0, 0.1, b) for b in shape[1:]]
    fracs = quantize.calibrate_out_fracs(ws, bs, rng.normal(0, 1, (32, shape[0])))
    return modelfile.from_float(ws, bs, bits=bits, out_fracs=fracs, features=cfg,
                                norm_mean=rng.normal(0, 1, 8), norm_std=rng.uniform(0.5, 2, 8),
                                labels=["a", "b", "c"], task="speech_commands", in_frac=11,
                                meta={"note": "test"})


def _read(path):
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("header.json"))
        arrays = {n[:-4]: np.load(io.BytesIO(zf.read(n))) for n in zf.namelist()
                  if n.endswith(".npy")}
    return header, arrays


def _write(path, header, arrays, rehash=True):
    """Write a (deliberately broken) file; with ``rehash`` its hash is made to match, so
    that the check under test, not the hash, has to catch the problem."""
    if rehash:
        h = {k: v for k, v in header.items() if k != "sha256"}
        header = {**h, "sha256": modelfile._content_hash(h, arrays)}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("header.json", json.dumps(header))
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a)
            zf.writestr(f"{name}.npy", buf.getvalue())


@pytest.mark.parametrize("bits", [4, 8])
def test_round_trip_is_exact(tmp_path, bits):
    m = small_model(bits)
    digest = modelfile.save(m, tmp_path / "m.kwm")
    m2 = modelfile.load(tmp_path / "m.kwm")
    assert m2.sha256 == digest == m.sha256
    assert m2.shape == m.shape and m2.labels == m.labels and m2.features == m.features
    x = np.random.default_rng(1).integers(-3000, 3000, (4, m.shape[0]))
    y1 = golden.run_network(m.plans(), x)[-1].y
    y2 = golden.run_network(m2.plans(), x)[-1].y
    assert np.array_equal(y1, y2)
    assert not (tmp_path / "m.kwm.part").exists()


def test_footprint_counts_every_constant():
    m = small_model(4)
    fp = m.footprint()
    n_w = sum(a * b for a, b in zip(m.shape[:-1], m.shape[1:], strict=False))
    assert fp["weight_bits"] == 4 * n_w
    assert fp["constant_bits"] == 4 * 18 * sum(m.shape[1:])
    assert fp["float32_bits"] == 32 * (n_w + sum(m.shape[1:]))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.kwm"
    modelfile.save(small_model(4), path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        modelfile.load(tmp_path / "nope.kwm")


def test_truncated_file(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.kwm"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated|unreadable|not a kwshw"):
            modelfile.load(bad)


def test_not_a_model(tmp_path):
    p = tmp_path / "x.kwm"
    p.write_text("hello")
    with pytest.raises(ModelFileError, match="truncated or not a kwshw model"):
        modelfile.load(p)
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(ModelFileError, match="no header.json"):
        modelfile.load(p)


def test_unknown_version(saved):
    header, arrays = _read(saved)
    _write(saved, {**header, "version": 99}, arrays)
    with pytest.raises(ModelFileError, match="unknown model file version 99"):
        modelfile.load(saved)


def test_wrong_format(saved):
    header, arrays = _read(saved)
    _write(saved, {**header, "format": "onnx"}, arrays)
    with pytest.raises(ModelFileError, match="not a kwshw model file"):
        modelfile.load(saved)


def test_hash_mismatch_on_modified_content(saved):
    header, arrays = _read(saved)
    arrays["layer1.codes"] = arrays["layer1.codes"].copy()
    arrays["layer1.codes"][0, 0] ^= 1
    _write(saved, header, arrays, rehash=False)
    with pytest.raises(ModelFileError, match="content hash mismatch"):
        modelfile.load(saved)


def test_nan_rejected(saved):
    header, arrays = _read(saved)
    arrays["norm_std"] = arrays["norm_std"].copy()
    arrays["norm_std"][2] = np.nan
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="norm_std: contains NaN or inf"):
        modelfile.load(saved)
    header, arrays = _read(saved)
    arrays["float0.weight"] = np.full_like(arrays["float0.weight"], np.inf)
    arrays["norm_std"] = np.ones_like(arrays["norm_std"])
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="float0.weight: contains NaN or inf"):
        modelfile.load(saved)


def test_shape_mismatch_rejected(saved):
    header, arrays = _read(saved)
    arrays["layer1.codes"] = arrays["layer1.codes"][:-1]
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match=r"layer1.codes: shape \(9, 6\), expected \(10, 6\)"):
        modelfile.load(saved)


def test_layer_chain_mismatch_rejected(saved):
    header, arrays = _read(saved)
    header["layers"][1]["n_in"] = 11
    arrays["layer1.codes"] = np.zeros((11, 6), np.uint8)
    arrays["float1.weight"] = np.zeros((11, 6), np.float32)
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="layer 1 has 11 inputs but layer 0 has 10 outputs"):
        modelfile.load(saved)


def test_window_mismatch_rejected(saved):
    header, arrays = _read(saved)
    header["features"]["context"] = 4
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="layer 0 has 24 inputs but the feature window"):
        modelfile.load(saved)


def test_labels_mismatch_rejected(saved):
    header, arrays = _read(saved)
    header["labels"] = ["a", "b"]
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="last layer has 3 outputs but there are 2 labels"):
        modelfile.load(saved)


def test_out_of_range_codes_rejected(saved):
    header, arrays = _read(saved)
    arrays["layer0.codes"] = arrays["layer0.codes"].copy()
    arrays["layer0.codes"][3, 1] = 16
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="weight code 16 out of range for 4 bits"):
        modelfile.load(saved)


def test_out_of_range_constants_rejected(saved):
    header, arrays = _read(saved)
    arrays["layer0.st"] = arrays["layer0.st"].copy()
    arrays["layer0.st"][0] = -1
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="ST out of its 17-bit unsigned range"):
        modelfile.load(saved)


def test_missing_array_and_wrong_dtype_rejected(saved):
    header, arrays = _read(saved)
    del arrays["layer2.bias"]
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="missing array 'layer2.bias'"):
        modelfile.load(saved)
    header, arrays = _read(saved)
    arrays["layer2.bias"] = np.zeros(3, np.float64)
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="layer2.bias: dtype float64, expected int32"):
        modelfile.load(saved)


def test_unsupported_bits_rejected(saved):
    header, arrays = _read(saved)
    _write(saved, {**header, "bits": 12}, arrays)
    with pytest.raises(ModelFileError, match="unsupported bits 12"):
        modelfile.load(saved)


def test_malformed_header_rejected(saved):
    header, arrays = _read(saved)
    del header["layers"]
    _write(saved, header, arrays)
    with pytest.raises(ModelFileError, match="malformed header"):
        modelfile.load(saved)


def test_save_refuses_inconsistent_model(tmp_path):
    m = small_model(4)
    m.labels = ["only-one"]
    with pytest.raises(ValueError, match="labels"):
        modelfile.save(m, tmp_path / "bad.kwm")
    assert not (tmp_path / "bad.kwm").exists()
