"""The QAT network in inference mode is bit-exact with the golden model on real speech.

A small network is trained quickly (QAT at 4 and 8 bits) on the training speakers of the
Speech Commands archive in ``$KWSHW_DATA``; then every frame of every validation utterance,
streamed from reset exactly as the accelerator sees it, goes through both the torch integer
network (:class:`kwshw.train.exact.IntegerNet`) and the NumPy golden model: every layer's
every intermediate must be identical, 0 mismatches.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwshw import golden, quantize  # noqa: E402
from kwshw.evaluate import model_normalizer, open_dataset  # noqa: E402

DATA = os.environ.get("KWSHW_DATA")

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not DATA, reason="KWSHW_DATA is not set: no real speech to test on"),
]


@pytest.fixture(scope="module")
def trained():
    from kwshw.train.trainer import TrainConfig, export, finetune_qat, prepare, train_float

    # No stream windows: exactness does not depend on what the network learnt, and
    # extracting them took most of this suite's longest setup (6 minutes in CI).
    cfg = TrainConfig(hidden=(64, 64, 64), epochs=4, qat_epochs=2, copies=0,
                      stream_windows=0, validate=False)
    data = prepare(DATA, config=cfg, progress=False)
    net, _ = train_float(data, cfg, progress=False)
    models = {}
    for bits in (4, 8):
        q, _ = finetune_qat(net, data, bits, cfg, progress=False)
        models[bits] = export(q, data, bits, cfg, progress=False)
    return models


def _mismatches(traces, ref) -> dict[str, int]:
    """Values that differ between the torch integer net's traces and the golden model's."""
    mismatches = {}
    for k, (tr, gt) in enumerate(zip(traces, ref, strict=True)):
        for name in ("xlo", "r", "recip", "rm", "p", "psum", "acc", "y"):
            bad = int(np.sum(tr[name].numpy() != getattr(gt, name)))
            if bad:
                mismatches[f"layer{k}.{name}"] = bad
    return mismatches


@pytest.fixture(scope="module")
def validation_streams():
    from kwshw.datasets import extract

    ds = open_dataset("speech_commands", DATA, "validation")
    fs = extract(ds, progress=False, on_error="skip")
    return fs


@pytest.mark.parametrize("bits", [4, 8])
def test_integer_qat_forward_equals_golden_on_every_validation_frame(trained, validation_streams,
                                                                     bits):
    from kwshw.train.exact import IntegerNet

    model = trained[bits]
    fs = validation_streams
    norm = model_normalizer(model)
    cfg = model.features
    xs = []
    for c in range(fs.n_clips):
        frames = quantize.features_to_int(norm.apply(fs.clip(c)), model.in_frac)
        xs.append(golden.stream_windows(frames, cfg.context, cfg.stride))
    x = np.concatenate(xs)
    assert fs.n_clips >= 300 and len(x) >= 300 * 90
    ref = golden.run_network(model.plans(), x)
    traces = IntegerNet(model).traces(torch.from_numpy(x))
    assert _mismatches(traces, ref) == {}
    # the decisions are those of a working classifier, not of a degenerate network
    pred = ref[-1].y.reshape(-1)
    assert len(np.unique(ref[-1].y.argmax(1))) > 3 and pred.std() > 0


@pytest.fixture(scope="module")
def trained_cnn():
    from kwshw.train.trainer import TrainConfig, export, finetune_qat, prepare, train_float

    cfg = TrainConfig(convs=((5, 2, 8), (3, 2, 12)), time_conv=None, hidden=(32,), epochs=3,
                      qat_epochs=1, copies=0, stream_windows=0, validate=False)
    data = prepare(DATA, config=cfg, progress=False)
    net, _ = train_float(data, cfg, progress=False)
    q, _ = finetune_qat(net, data, 4, cfg, progress=False)
    return export(q, data, 4, cfg, progress=False), q


def test_integer_cnn_equals_golden_on_every_validation_frame(trained_cnn, validation_streams):
    """The same for the CNN recipe's layers: patches, one range per patch, kernels stored
    once (a version-2 model), on every hop of 100 validation utterances."""
    from kwshw.train.exact import IntegerNet

    model, qat = trained_cnn
    assert model.has_conv and model.layers[0].codes.shape == (5 * 40, 8)
    fs = validation_streams
    norm = model_normalizer(model)
    cfg = model.features
    x = np.concatenate([golden.stream_windows(
        quantize.features_to_int(norm.apply(fs.clip(c)), model.in_frac), cfg.context,
        cfg.stride) for c in range(100)])
    ref = golden.run_network(model.plans(), x)
    traces = IntegerNet(model).traces(torch.from_numpy(x))
    assert _mismatches(traces, ref) == {}
    # The QAT forward pass (float, fake-quantized) decides like the integers it trained for.
    xf = (x * 2.0 ** -model.in_frac).astype(np.float32)  # the inputs the integers stand for
    with torch.no_grad():
        fq = qat(torch.from_numpy(xf)).argmax(1).numpy()
    assert np.mean(fq == ref[-1].y.argmax(1)) > 0.95
