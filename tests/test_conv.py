# amaranth: UnusedElaboratable=no
"""Temporal convolutions in the contract: layout, golden model, model file, QAT integer net.

A convolution is stored once (its kernel, one column per output channel) and applied to one
patch per output position, each patch requantized with its own min-max range
(docs/arithmetic.md, "Convolutions"). These tests hold the golden model to the float
convolution it approximates (within the contract's error bound), the torch integer network to
the golden model (bit-exact), and the model file to its versions.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from boards import refmodel
from kwshw import golden, modelfile, quantize
from kwshw.features import FeatureConfig
from kwshw.layers import (
    Conv,
    Geometry,
    conv_positions,
    float_activations,
    gather_patches,
    network_shapes,
)

FEATURES = FeatureConfig(context=12, n_mels=8)
LABELS = [f"c{i}" for i in range(5)]


def random_cnn(bits: int, convs, hidden, seed: int = 0, features: FeatureConfig = FEATURES):
    """A random CNN model file of this file's small window and five classes."""
    return refmodel.random_cnn(bits, convs, hidden, seed=seed, features=features,
                               labels=LABELS)


def inputs(model, n: int = 64, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return quantize.features_to_int(rng.normal(0, 1, (n, model.features.n_inputs)),
                                    model.in_frac)


def test_patches_are_the_torch_conv1d_layout():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    geo, conv, c_out = Geometry(10, 3), Conv(4, 2), 5
    x = rng.normal(size=(2, geo.size))
    w = rng.normal(size=(conv.kernel * geo.channels, c_out))
    ours = gather_patches(x, geo, conv) @ w  # (2, positions, c_out)
    # torch: (N, C, T) input, (C_out, C_in, K) weight; our rows are step-major.
    xt = torch.tensor(x).reshape(2, geo.positions, geo.channels).transpose(1, 2)
    wt = torch.tensor(w).reshape(conv.kernel, geo.channels, c_out).permute(2, 1, 0)
    ref = torch.nn.functional.conv1d(xt, wt, stride=conv.stride).transpose(1, 2).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    torch_patches = gather_patches(torch.tensor(x), geo, conv).numpy()
    np.testing.assert_array_equal(torch_patches, gather_patches(x, geo, conv))


@pytest.mark.parametrize("k,s,positions", [(1, 1, 5), (3, 1, 3), (4, 3, 11), (12, 1, 12)])
def test_conv_positions(k, s, positions):
    assert conv_positions(12, Conv(k, s)) == (12 - k) // s + 1
    assert len(np.unique(gather_patches(np.arange(12.0)[None, :], Geometry(12, 1),
                                        Conv(k, s))[0, :, 0])) == (12 - k) // s + 1


def test_bad_conv_shapes_are_refused():
    with pytest.raises(ValueError, match="kernel >= 1"):
        Conv(0, 1)
    with pytest.raises(ValueError, match="does not fit"):
        conv_positions(4, Conv(5, 1))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_golden_conv_is_the_float_conv_within_the_error_bound(bits):
    model = random_cnn(bits, [(3, 1, 6), (4, 2, 7)], [9], seed=bits)
    x = inputs(model)
    plans = model.plans()
    traces = golden.run_network(plans, x, check_widths=True)
    assert traces[0].y.shape == (len(x), 10, 6) and traces[1].y.shape == (len(x), 4, 7)
    # One range per patch: every position of a convolution has its own XLO and R.
    assert traces[0].xlo.shape == (len(x), 10)
    for plan, tr in zip(plans, traces, strict=True):
        ideal = golden.dequantized_layer(plan, tr)
        lo = 0 if plan.layer.relu else quantize.ACT_MIN
        err = np.abs(tr.y - np.clip(ideal, lo, quantize.ACT_MAX))
        assert np.all(err <= golden.layer_error_bound(plan, tr)[..., None] + 1e-9)


def test_float_forward_of_a_conv_model_uses_its_geometry():
    model = random_cnn(8, [(3, 2, 4)], [6], seed=3)
    x = np.random.default_rng(0).normal(size=(7, model.features.n_inputs))
    acts = float_activations(model.float_weights, model.float_biases, x, convs=model.convs,
                             geometry=model.geometries()[0])
    assert [a.shape[1] for a in acts] == [5 * 4, 6, 5]
    # The 8-bit golden model follows the float network closely (a sanity check of the wiring).
    g = golden.run_network(model.plans(), quantize.features_to_int(x, model.in_frac))[-1].y
    f = acts[-1] * 2.0 ** model.layers[-1].out_frac
    assert np.corrcoef(g.ravel(), f.ravel())[0, 1] > 0.99


def test_integer_net_equals_golden_on_every_intermediate():
    torch = pytest.importorskip("torch")
    from kwshw.train.exact import IntegerNet

    for bits in (3, 4, 8):
        model = random_cnn(bits, [(5, 1, 8), (3, 2, 8)], [10], seed=10 + bits)
        x = inputs(model, 50, seed=bits)
        want = golden.run_network(model.plans(), x)
        got = IntegerNet(model).traces(torch.from_numpy(x))
        for tg, tw in zip(got, want, strict=True):
            for name, value in tg.items():
                np.testing.assert_array_equal(value.numpy(), getattr(tw, name), err_msg=name)


def test_model_file_round_trip_and_versions(tmp_path):
    conv = random_cnn(4, [(3, 1, 6)], [8])
    path = tmp_path / "cnn.kwm"
    digest = modelfile.save(conv, path)
    back = modelfile.load(path)
    assert back.sha256 == digest and back.convs == conv.convs
    assert json.loads(zipfile.ZipFile(path).read("header.json"))["version"] == 2
    assert back.footprint()["weight_bits"] == sum(lay.codes.size for lay in conv.layers) * 4
    assert conv.macs() == 3 * 8 * 6 * 10 + 10 * 6 * 8 + 8 * 5
    # A network of dense layers only is still written as version 1.
    dense = random_cnn(4, [(12, 1, 6)], [8])
    dense = modelfile.Model(**{**dense.__dict__, "layers": [
        quantize.IntLayer(**{**lay.__dict__, "conv": None}) for lay in dense.layers]})
    modelfile.save(dense, tmp_path / "dense.kwm")
    assert json.loads(zipfile.ZipFile(tmp_path / "dense.kwm").read("header.json"))[
        "version"] == 1


def _rewrite_header(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "header.json":
                head = json.loads(data)
                edit(head)
                data = json.dumps(head).encode()
            zout.writestr(item, data)


@pytest.mark.parametrize("edit,message", [
    (lambda h: h.update(version=1), "convolutions need version 2"),
    (lambda h: h.update(version=3), "unknown model file version 3"),
    (lambda h: h["layers"][0].update(conv={"kernel": 4, "stride": 1}), "rows"),
    (lambda h: h["layers"][0].update(conv={"kernel": "3", "stride": 1}), "malformed convolution"),
    (lambda h: h["layers"][0].update(conv={"kernel": 3, "stride": 0}), "stride >= 1"),
])
def test_bad_convolution_headers_are_refused(tmp_path, edit, message):
    path = tmp_path / "cnn.kwm"
    modelfile.save(random_cnn(4, [(3, 1, 6)], [8]), path)
    bad = tmp_path / "bad.kwm"
    _rewrite_header(path, bad, edit)
    with pytest.raises(modelfile.ModelFileError, match=message):
        modelfile.load(bad)


def test_the_accelerator_takes_a_convolution_model(tmp_path):
    """A convolution model (convolutions first) is generated and passes the board fit check,
    whose memory list includes the convolution histories as the accelerator counts them."""
    from boards import get_board
    from boards.fit import fit_check, memory_needs
    from kwshw.app.cli import main
    from kwshw.hw.accelerator import memory_bits

    model = random_cnn(4, [(3, 1, 6)], [8])
    path = tmp_path / "cnn.kwm"
    modelfile.save(model, path)
    assert main(["generate", "--model", str(path), "-o", str(tmp_path / "v")]) == 0
    assert any((tmp_path / "v").iterdir())
    fit_check(get_board("icebreaker"), model, 4)
    needs = memory_needs(model, 4)
    hist = sum(n.bits for n in needs if n.kind == "histories")
    assert hist == memory_bits(model, 4)["histories"] > 0
    window = sum(n.bits for n in needs if n.kind == "window")
    assert window == memory_bits(model, 4)["window"]


def test_quant_cnn_folds_its_batch_norm_and_refuses_quantizers_before():
    torch = pytest.importorskip("torch")
    from kwshw.train.cnn import QuantCNN

    torch.manual_seed(0)
    net = QuantCNN(12, 8, ((3, 1, 6), (2, 2, 5)), (7,), 4, batch_norm=True)
    for bn in net.norms:  # non-trivial running statistics and affine parameters
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(9, 12 * 8)
    folded = net.folded().eval()
    assert folded.norms is None
    torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="fold the batch norm"):
        net.bits = 4
    assert net.convs == [Conv(3, 1), Conv(2, 2), None, None]
    # The exported kernels have the model file's shapes.
    ws, _ = folded.numpy_params()
    assert [w.shape for w in ws] == [(24, 6), (12, 5), (25, 7), (7, 4)]


def test_recipes_and_their_options():
    pytest.importorskip("torch")
    from kwshw.train.trainer import TrainConfig

    cnn = TrainConfig.recipe("cnn", seed=3)
    assert cnn.convs and cnn.time_conv is None and cnn.seed == 3
    assert TrainConfig.recipe("dnn").convs is None
    with pytest.raises(ValueError, match="unknown recipe"):
        TrainConfig.recipe("rnn")
    with pytest.raises(ValueError, match="replaces time_conv"):
        TrainConfig(convs=((3, 1, 4),))
    # A DNN's recorded config (and so its model file's hash) is what it was before convs.
    assert "convs" not in TrainConfig().to_meta()
    assert "label_smoothing" not in TrainConfig().to_meta()
    assert "label_smoothing" not in cnn.to_meta()
    assert cnn.to_meta()["convs"] == [list(c) for c in cnn.convs]
    assert TrainConfig.recipe("cnn", label_smoothing=0.1).to_meta()["label_smoothing"] == 0.1


def test_info_describes_the_layer_kinds(tmp_path, capsys):
    from kwshw.app.cli import main

    path = tmp_path / "cnn.kwm"
    modelfile.save(random_cnn(4, [(3, 1, 6), (2, 2, 5)], [8]), path)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "12x8 -> conv 3/1 x6 [10] -> conv 2/2 x5 [5] -> dense 8 -> dense 5" in text
    assert main(["info", str(path), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert layers[1]["conv"] == {"kernel": 2, "stride": 2, "positions": 5}
    assert "conv" not in layers[2]


def test_network_shapes_of_the_reference_cnn():
    """The one shape walk the trainer, the stand-in models and the stimuli share."""
    kinds, matrices, geos = network_shapes(Geometry(25, 40), ((5, 1, 64), (3, 2, 64),
                                                              (3, 2, 64)), [128, 12])
    assert kinds == [Conv(5, 1), Conv(3, 2), Conv(3, 2), None, None]
    assert matrices == [(200, 64), (192, 64), (192, 64), (256, 128), (128, 12)]
    assert geos == [Geometry(25, 40), Geometry(21, 64), Geometry(10, 64), Geometry(4, 64)]
    assert network_shapes(Geometry(3, 5), (), [4])[1] == [(15, 4)]
    with pytest.raises(ValueError, match="kernel, stride, channels"):
        network_shapes(Geometry(5, 2), [(2, 1)], [3])
    with pytest.raises(ValueError, match="does not fit"):
        network_shapes(Geometry(2, 2), [(3, 1, 4)], [3])
