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

    cfg = TrainConfig(hidden=(64, 64, 64), epochs=4, qat_epochs=2, copies=0,
                      validate=False)
    data = prepare(DATA, config=cfg, progress=False)
    net, _ = train_float(data, cfg, progress=False)
    models = {}
    for bits in (4, 8):
        q, _ = finetune_qat(net, data, bits, cfg, progress=False)
        models[bits] = export(q, data, bits, cfg, progress=False)
    return models


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
    mismatches = {}
    for k, (tr, gt) in enumerate(zip(traces, ref, strict=True)):
        for name in ("xlo", "r", "recip", "rm", "p", "psum", "acc", "y"):
            bad = int(np.sum(tr[name].numpy() != getattr(gt, name)))
            if bad:
                mismatches[f"layer{k}.{name}"] = bad
    assert mismatches == {}
    # the decisions are those of a working classifier, not of a degenerate network
    pred = ref[-1].y.reshape(-1)
    assert len(np.unique(ref[-1].y.argmax(1))) > 3 and pred.std() > 0
