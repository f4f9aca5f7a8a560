"""QAT: quantizers equal the golden model's, STE gradients, reproducibility, export round trip,
and the bit-exact integer network on synthetic models (real data: tests/test_qat_exact.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kwshw import arith, golden, modelfile, quantize  # noqa: E402
from kwshw.features import FeatureConfig, Normalizer  # noqa: E402
from kwshw.train.exact import IntegerNet  # noqa: E402
from kwshw.train.qat import (  # noqa: E402
    QuantMLP,
    align_zero,
    expand_time_conv,
    fake_quant_act,
    fake_quant_weight,
    round_half_up,
    weight_grid,
)
from kwshw.train.trainer import TrainConfig, TrainData, export, finetune_qat, train_float  # noqa: E402

TINY = FeatureConfig(n_mels=8, context=3, stride=2, n_fft=512)


def _weights(rng, n_in, n_out, constant_cols=()):
    w = rng.normal(0, 1, (n_in, n_out)) * 10.0 ** rng.uniform(-2, 0.5, n_out)
    for j in constant_cols:
        w[:, j] = w[0, j]
    return w


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_round_half_up_equals_the_contract(dtype):
    """QAT's ``floor(x + 1/2)`` is the contract's ``(x + 0.5) // 1`` on every finite value:
    ties (halves, negative ones too), values next to ties, integers, huge values. (On an
    infinity the floor division gives NaN, the floor the infinity; no activation or weight
    is infinite.)"""
    rng = np.random.default_rng(0)
    halves = np.arange(-2000, 2001) / 2.0
    near = np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf)
    values = np.concatenate([halves, *near, rng.normal(0, 1e3, 20_000),
                             rng.normal(0, 1, 20_000) * 10.0 ** rng.uniform(-8, 30, 20_000),
                             [0.0, -0.0, 2.0**52, -2.0**52, 2.0**60, -2.0**60]])
    x = torch.tensor(values, dtype=dtype)
    want = arith.round_half_up(x)
    assert want.dtype == round_half_up(x).dtype
    assert torch.equal(round_half_up(x), want)


@pytest.mark.parametrize("bits", range(2, 9))
def test_fake_quant_weights_equal_the_exported_integers(bits):
    rng = np.random.default_rng(bits)
    w = _weights(rng, 37, 11, constant_cols=(3,))
    fq = fake_quant_weight(torch.from_numpy(w), bits).numpy()
    lay = quantize.quantize_layer(w, np.zeros(11), bits=bits, out_frac=8, relu=True)
    assert np.array_equal(fq, lay.dequantized_weights(bits))
    codes, lo, st, e = weight_grid(torch.from_numpy(w), bits)
    assert np.array_equal(codes.numpy().astype(np.uint8), lay.codes)
    assert np.array_equal(lo.numpy().astype(np.int64), lay.lo)
    assert np.array_equal(st.numpy().astype(np.int64), lay.st)
    assert e == lay.w_exp


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_fake_quant_act_codes_equal_golden_away_from_ties(bits):
    """Per-frame codes of the float quantizer equal the golden model's (RECIP-based) codes
    except within 1/8 of a rounding tie, where the contract allows the reciprocal to decide."""
    rng = np.random.default_rng(bits + 100)
    x = np.clip(np.round(rng.normal(0, 1, (64, 50)) * 10.0 ** rng.uniform(1, 4, (64, 1))),
                arith.ACT_MIN, arith.ACT_MAX).astype(np.int64)
    x[0] = 17  # a constant frame (R = 0)
    lay = quantize.quantize_layer(rng.normal(0, 1, (50, 4)), np.zeros(4), bits=bits,
                                  out_frac=8, relu=False)
    plan = quantize.plan_layer(lay, bits=bits, in_frac=6, in_signed=True)
    tr = golden.run_layer(plan, x)
    xf = torch.from_numpy(x.astype(np.float64) * 2.0**-6)
    fq = fake_quant_act(xf, bits).numpy() * 2.0**6
    m = arith.code_max(bits)
    r = np.maximum(tr.r, 1)[:, None]
    u = (x - tr.xlo[:, None]) * m / r
    p_float = np.where(tr.r[:, None] > 0, np.round((fq - tr.xlo[:, None]) * m / r), 0)
    clear = np.abs(u - np.floor(u) - 0.5) > 1 / 8
    assert np.array_equal(p_float[clear], tr.p[clear])
    # and the dequantized values agree with the golden model's x_hat to within its step rounding
    x_hat = tr.xlo[:, None] + tr.rm[:, None] * tr.p * 2.0**-bits
    assert np.all(np.abs(fq - x_hat)[clear] <= 0.5 + 1e-9)
    assert np.array_equal(fq[0], x[0].astype(np.float64))


def test_ste_gradients_flow_through_both_quantizers():
    torch.manual_seed(0)
    net = QuantMLP(20, (16, 16), 5, bits=4).double()
    x = torch.randn(32, 20, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(net(x), torch.randint(0, 5, (32,)))
    loss.backward()
    for p in [*net.weights, *net.biases]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    # straight-through: the quantizers' own gradient is the identity
    w = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    fake_quant_weight(w, 3).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    a = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    (fake_quant_act(a, 2) * torch.arange(9.0, dtype=torch.float64)).sum().backward()
    assert torch.equal(a.grad, torch.arange(9.0, dtype=torch.float64).expand(4, 9))


def test_quant_mlp_float_mode_is_plain_mlp():
    torch.manual_seed(1)
    net = QuantMLP(10, (7,), 3).double().eval()
    x = torch.randn(5, 10, dtype=torch.float64)
    ws, bs = net.numpy_params()
    assert np.allclose(net(x).detach().numpy(), golden.float_forward(ws, bs, x.numpy()))
    with pytest.raises(ValueError):
        net.bits = 9


def test_batch_norm_folds_into_the_same_function():
    torch.manual_seed(2)
    net = QuantMLP(12, (9, 7), 4, batch_norm=True).double()
    net.train()
    for _ in range(4):  # non-trivial running statistics
        net(torch.randn(50, 12, dtype=torch.float64) * 2 + 0.5)
    with torch.no_grad():
        for bn in net.norms:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    net.eval()
    x = torch.randn(30, 12, dtype=torch.float64)
    folded = net.folded()
    assert folded.norms is None and not folded.training
    assert torch.allclose(net(x), folded(x), rtol=0, atol=1e-12)
    ws, bs = net.numpy_params()  # folds implicitly: what the model file stores
    assert np.allclose(golden.float_forward(ws, bs, x.numpy()), net(x).detach().numpy(),
                       rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="fold the batch norm"):
        net.bits = 4
    folded.bits = 4  # the folded network takes the quantizers
    assert folded(x).shape == (30, 4)


def test_time_conv_is_a_convolution_and_expands_to_one_tied_layer():
    torch.manual_seed(3)
    n_mels, context, k, stride, channels = 4, 7, 3, 2, 5
    kernel = torch.randn(k * n_mels, channels, dtype=torch.float64)
    bias = torch.randn(channels, dtype=torch.float64)
    w, b = expand_time_conv(kernel, bias, context, n_mels, stride)
    assert w.shape == (context * n_mels, 3 * channels) and b.shape == (3 * channels,)
    x = torch.randn(6, context * n_mels, dtype=torch.float64)
    # the same numbers as torch's own 1-D convolution over time (bands = input channels)
    conv = torch.nn.functional.conv1d(x.view(6, context, n_mels).transpose(1, 2),
                                      kernel.T.reshape(channels, k, n_mels).transpose(1, 2),
                                      bias, stride=stride)
    assert torch.allclose(x @ w + b, conv.transpose(1, 2).reshape(6, -1), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="does not fit"):
        expand_time_conv(torch.zeros(8 * n_mels, 1), torch.zeros(1), context, n_mels, 1)

    net = QuantMLP(context * n_mels, (6,), 3, batch_norm=True, time_conv=(k, stride, channels),
                   n_mels=n_mels).double()
    assert net.sizes == [28, 15, 6, 3] and net.weights[0].shape == (12, 5)
    net.train()
    for _ in range(3):
        net(torch.randn(40, context * n_mels, dtype=torch.float64) * 2 + 1)
    with torch.no_grad():
        for bn in net.norms:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    net.eval()
    folded = net.folded()
    assert torch.allclose(net(x), folded(x), rtol=0, atol=1e-12)
    ws, bs = net.numpy_params()  # the model file's dense layers
    assert [w.shape for w in ws] == [(28, 15), (15, 6), (6, 3)]
    assert np.allclose(golden.float_forward(ws, bs, x.numpy()), net(x).detach().numpy(),
                       rtol=0, atol=1e-12)
    # the positions stay tied through folding: every column of a channel holds its kernel
    w0 = ws[0]
    for p in range(3):
        block = w0[p * stride * n_mels:(p * stride + k) * n_mels, p * channels:(p + 1) * channels]
        assert np.array_equal(block, ws[0][:k * n_mels, :channels])
        assert np.count_nonzero(w0[:, p * channels:(p + 1) * channels]) == block.size
    # ... and quantize the same way at every position (column-wise ranges are equal)
    folded.bits = 4
    fq = fake_quant_weight(folded.layer(0)[0], 4).detach().numpy()
    assert np.array_equal(fq[:k * n_mels, :channels],
                          fq[2 * stride * n_mels:(2 * stride + k) * n_mels, 2 * channels:])
    with pytest.raises(ValueError, match="n_mels"):
        QuantMLP(28, (6,), 3, time_conv=(3, 2, 5))


@pytest.mark.parametrize("bits", [4, 8])
def test_aligned_time_conv_zeros_stay_zero_after_quantization(bits):
    torch.manual_seed(4)
    n_mels, context = 10, 9
    kernel = torch.randn(3 * n_mels, 7, dtype=torch.float64)
    kernel[:, 0] = kernel[:, 0].abs()          # no negatives: 0 is the column's min already
    kernel[:, 1] = -kernel[:, 1].abs()         # no positives: 0 is its max
    aligned = align_zero(kernel, 15)
    assert torch.equal(aligned[:, :2], kernel[:, :2])
    assert torch.equal(aligned[kernel >= 0], kernel[kernel >= 0])  # only negatives move
    assert torch.allclose(align_zero(aligned, 15), aligned, rtol=1e-13, atol=0)  # idempotent
    assert torch.allclose(align_zero(-3 * aligned, 15), -3 * aligned, rtol=1e-13, atol=0)
    w, b = expand_time_conv(aligned, torch.zeros(7, dtype=torch.float64), context, n_mels, 2)
    lay = quantize.quantize_layer(w.numpy(), b.numpy(), bits=bits, out_frac=8, relu=True)
    deq = lay.dequantized_weights(bits)
    step = lay.st * 2.0 ** -(lay.w_exp + bits)
    zeros = w.numpy() == 0
    # every structural zero is code k of its column, off 0 only by LO's and ST's rounding
    # (LO's rounding is shifted up by b bits: at 8 bits it is a few thousandths of a step)
    assert np.all(np.abs(deq[zeros]) <= (step * 2.0**-7)[np.nonzero(zeros)[1]])
    # without the alignment the zeros land up to half a step away from 0
    w0, _ = expand_time_conv(kernel, torch.zeros(7, dtype=torch.float64), context, n_mels, 2)
    raw = quantize.quantize_layer(w0.numpy(), b.numpy(), bits=bits, out_frac=8, relu=True)
    raw_step = raw.st * 2.0 ** -(raw.w_exp + bits)
    off = np.abs(raw.dequantized_weights(bits)) / raw_step[None, :]
    assert off[w0.numpy() == 0].max() > 0.1


def test_training_with_a_time_conv_exports_a_bit_exact_model():
    data = _synthetic_data(n=200)
    cfg = TrainConfig(**{**_FAST.__dict__, "time_conv": (2, 1, 3), "batch_norm": True})
    net, _ = train_float(data, cfg, progress=False)
    q, _ = finetune_qat(net, data, 4, cfg, progress=False)
    model = export(q, data, 4, cfg, progress=False)
    assert model.shape == [TINY.n_inputs, 6, 12, 12, 3]
    assert model.meta["config"]["time_conv"] == [2, 1, 3]
    xi = quantize.features_to_int(data.x_clean, model.in_frac)
    ref = golden.run_network(model.plans(), xi)[-1].y
    assert np.array_equal(IntegerNet(model)(torch.from_numpy(xi)).numpy(), ref)


def test_shift_bands_moves_every_window_along_the_mel_axis():
    from kwshw.train.trainer import shift_bands

    n_mels, context = 6, 3
    x = torch.arange(4 * context * n_mels, dtype=torch.float32).view(4, -1)
    assert shift_bands(x, n_mels, 0, torch.Generator().manual_seed(0)) is x
    y = shift_bands(x, n_mels, 2, torch.Generator().manual_seed(1))
    seen = set()
    for row_x, row_y in zip(x.view(4, context, n_mels), y.view(4, context, n_mels), strict=True):
        # the same whole-band shift in every frame of a window, edge bands repeated
        s = int(row_y[0, 2] - row_x[0, 2])
        seen.add(s)
        assert -2 <= s <= 2
        src = (torch.arange(n_mels) + s).clamp(0, n_mels - 1)
        assert torch.equal(row_y, row_x[:, src])
    assert len(seen) > 1


def _synthetic_data(n=240, seed=0) -> TrainData:
    rng = np.random.default_rng(seed)
    n_in = TINY.n_inputs
    centers = rng.normal(0, 1.5, (3, n_in))
    y = rng.integers(0, 3, n)
    x = (centers[y] + rng.normal(0, 1, (n, n_in))).astype(np.float32)
    norm = Normalizer(mean=np.zeros(TINY.n_mels, np.float32), std=np.ones(TINY.n_mels, np.float32))
    return TrainData(x=torch.from_numpy(x), y=torch.from_numpy(y.astype(np.int64)),
                     x_clean=x, normalizer=norm, labels=["a", "b", "c"], task="speech_commands",
                     features=TINY, info={"train_clips": n}, data_root=None)


_FAST = TrainConfig(hidden=(12, 12), time_conv=None, epochs=3, qat_epochs=2, batch_size=32,
                    copies=0, validate=False)


def test_training_is_reproducible_with_a_seed():
    data = _synthetic_data()
    a, la = train_float(data, _FAST, progress=False)
    b, lb = train_float(data, _FAST, progress=False)
    assert la == lb
    for wa, wb in zip(a.numpy_params()[0], b.numpy_params()[0], strict=True):
        assert np.array_equal(wa, wb)
    qa, _ = finetune_qat(a, data, 4, _FAST, progress=False)
    qb, _ = finetune_qat(b, data, 4, _FAST, progress=False)
    assert all(np.array_equal(u, v) for u, v in zip(qa.numpy_params()[0], qb.numpy_params()[0],
                                                    strict=True))
    assert a.bits is None and qa.bits == 4  # fine-tuning works on a copy
    c, _ = train_float(data, TrainConfig(**{**_FAST.__dict__, "seed": 1}), progress=False)
    assert not np.array_equal(c.numpy_params()[0][0], a.numpy_params()[0][0])


def test_training_runs_at_the_configured_thread_count():
    """``TrainConfig.threads`` is what the loops run at (the model's bits depend on it) and
    what the model file records, once, in ``meta["threads"]``."""
    data = _synthetic_data()
    before = torch.get_num_threads()
    try:
        for n in (2, 1):
            cfg = TrainConfig(**{**_FAST.__dict__, "epochs": 1, "threads": n})
            net, _ = train_float(data, cfg, progress=False)
            assert torch.get_num_threads() == n
        meta = export(net, data, 8, cfg, progress=False).meta
        assert meta["threads"] == 1 and "threads" not in meta["config"]
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        TrainConfig(threads=0)


def test_training_learns_and_qat_keeps_accuracy():
    data = _synthetic_data(n=600)
    cfg = TrainConfig(**{**_FAST.__dict__, "epochs": 15, "qat_epochs": 5})
    net, losses = train_float(data, cfg, progress=False)
    assert losses[-1] < losses[0]
    q, _ = finetune_qat(net, data, 4, cfg, progress=False)
    model = export(q, data, 4, cfg, progress=False)
    xi = quantize.features_to_int(data.x_clean, model.in_frac)
    pred = golden.run_network(model.plans(), xi)[-1].y.argmax(1)
    assert np.mean(pred == data.y.numpy()) > 0.8


def test_export_load_round_trip(tmp_path):
    data = _synthetic_data()
    net, _ = train_float(data, _FAST, progress=False)
    q, _ = finetune_qat(net, data, 8, _FAST, progress=False)
    model = export(q, data, 8, _FAST, meta={"note": "x"}, progress=False)
    path = tmp_path / "m.kwm"
    digest = modelfile.save(model, path)
    back = modelfile.load(path)
    assert back.sha256 == digest == model.sha256
    assert back.bits == 8 and back.shape == [TINY.n_inputs, 12, 12, 3]
    assert back.meta["note"] == "x" and back.meta["qat"] is True
    assert len(back.meta["static_ranges"]) == 3
    ws, _ = q.numpy_params()
    for w, fw in zip(ws, back.float_weights, strict=True):
        assert np.array_equal(w.astype(np.float32), fw)
    # the stored float weights quantize to exactly the stored integers
    for k, w in enumerate(back.float_weights):
        lay = quantize.quantize_layer(w, back.float_biases[k], bits=8,
                                      out_frac=back.layers[k].out_frac,
                                      relu=back.layers[k].relu)
        assert np.array_equal(lay.codes, back.layers[k].codes)


def _random_model(bits, rng, shape=(30, 16, 16, 5)):
    ws = [_weights(rng, a, b, constant_cols=(1,) if k == 0 else ())
          for k, (a, b) in enumerate(zip(shape[:-1], shape[1:], strict=True))]
    bs = [rng.normal(0, 1, b) for b in shape[1:]]
    x = rng.normal(0, 2, (200, shape[0]))
    fracs = quantize.calibrate_out_fracs(ws, bs, x)
    cfg = FeatureConfig(n_mels=shape[0] // 3, context=3, stride=1)
    return modelfile.from_float(ws, bs, bits=bits, out_fracs=fracs, features=cfg,
                                norm_mean=np.zeros(cfg.n_mels), norm_std=np.ones(cfg.n_mels),
                                labels=[str(i) for i in range(shape[-1])], task="test",
                                in_frac=10), x


@pytest.mark.parametrize("bits", range(2, 9))
def test_integer_net_is_bit_exact_on_synthetic_models(bits):
    rng = np.random.default_rng(1000 + bits)
    model, x = _random_model(bits, rng)
    xi = quantize.features_to_int(x, model.in_frac)
    # edge cases: a constant frame, saturated frames, a frame of two extremes
    xi[0] = 123
    xi[1] = arith.ACT_MAX
    xi[2] = np.where(np.arange(xi.shape[1]) % 2, arith.ACT_MAX, arith.ACT_MIN)
    xi[3] = quantize.features_to_int(x[3] * 1e4, model.in_frac)
    ref = golden.run_network(model.plans(), xi)
    net = IntegerNet(model)
    traces = net.traces(torch.from_numpy(xi))
    for tr, gt in zip(traces, ref, strict=True):
        for name in ("xlo", "r", "recip", "rm", "p", "psum", "acc", "y"):
            assert np.array_equal(tr[name].numpy(), getattr(gt, name)), name
    assert np.array_equal(net(torch.from_numpy(xi)).numpy(), ref[-1].y)
    with pytest.raises(TypeError):
        net(torch.from_numpy(xi).float())


def test_time_conv_longer_than_the_window_is_refused_before_any_work(tmp_path):
    from kwshw.train.trainer import train_variants

    with pytest.raises(ValueError, match="kernel 30 / stride 1 does not fit a 25-frame window"):
        train_variants(tmp_path / "no-such-corpus", config=TrainConfig(time_conv=(30, 1, 8)),
                       progress=False)


def test_class_weights_balance_a_rare_class():
    """Inverse class frequency, average 1 over the windows: a class with five times fewer
    windows (on/off on the data folder's corpora) weighs five times more."""
    data = _synthetic_data()
    y = np.array([0] * 50 + [1] * 50 + [2] * 10)
    data.y = torch.from_numpy(y)
    w = data.class_weights.numpy()
    assert w == pytest.approx([110 / 150, 110 / 150, 110 / 30])
    assert (w * np.bincount(y)).sum() == pytest.approx(len(y)) and w[2] / w[0] == pytest.approx(5.0)
    # The weighted loss is the balanced one: each class contributes equally.
    logits = torch.randn(len(y), 3, generator=torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(logits, data.y, weight=data.class_weights)
    per = torch.nn.functional.cross_entropy(logits, data.y, reduction="none")
    balanced = sum(per[data.y == c].mean() for c in range(3)) / 3
    assert float(loss) == pytest.approx(float(balanced), rel=1e-5)
    assert TrainConfig().balance_classes is True


def test_unknown_weight_scales_only_the_unknown_class():
    """``unknown_weight`` multiplies ``_unknown_``'s balanced weight and nothing else; 1 (the
    recipes) leaves the loss and the model file's training record as they were; <= 0 is
    refused."""
    from kwshw.train.trainer import _loss_weights

    data = _synthetic_data()
    data.labels = ["a", "_unknown_", "c"]
    balanced = data.class_weights
    assert torch.equal(_loss_weights(data, TrainConfig()), balanced)
    w = _loss_weights(data, TrainConfig(unknown_weight=3.0))
    assert torch.allclose(w, balanced * torch.tensor([1.0, 3.0, 1.0]))
    plain = _loss_weights(data, TrainConfig(balance_classes=False, unknown_weight=2.0))
    assert plain.tolist() == [1.0, 2.0, 1.0]
    assert _loss_weights(data, TrainConfig(balance_classes=False)) is None
    assert "unknown_weight" not in TrainConfig().to_meta()
    assert TrainConfig(unknown_weight=2.5).to_meta()["unknown_weight"] == 2.5
    with pytest.raises(ValueError, match="unknown_weight"):
        TrainConfig(unknown_weight=0)


def test_distillation_loss_is_class_weighted_like_the_teacher():
    from kwshw.train.trainer import _distillation_loss

    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 3, generator=g)
    target = torch.softmax(torch.randn(6, 3, generator=g), dim=1)
    labels = torch.tensor([0, 0, 0, 0, 1, 2])
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits, 1), target,
                                    reduction="none").sum(1)
    plain = torch.nn.functional.kl_div(torch.log_softmax(logits, 1), target,
                                       reduction="batchmean")
    assert float(_distillation_loss(logits, target, labels, None)) == pytest.approx(float(plain))
    w = torch.tensor([0.5, 2.0, 2.0])  # class 0 four times as frequent: a quarter the weight
    want = (0.5 * kl[:4].sum() + 2.0 * kl[4] + 2.0 * kl[5]) / (0.5 * 4 + 2.0 + 2.0)
    assert float(_distillation_loss(logits, target, labels, w)) == pytest.approx(float(want))


def test_training_the_cnn_exports_a_bit_exact_version_2_model(tmp_path):
    """The CNN recipe's path end to end on synthetic data: float training with batch norm,
    QAT, export of kernels stored once, bit-exact integers, the static and post-training
    rows of the evaluation."""
    from kwshw.evaluate import run_windows

    data = _synthetic_data(n=600)
    cfg = TrainConfig(**{**_FAST.__dict__, "convs": ((2, 1, 6),), "hidden": (12,),
                         "batch_norm": True, "epochs": 15, "qat_epochs": 5,
                         "label_smoothing": 0.1})
    net, _ = train_float(data, cfg, progress=False)
    q, _ = finetune_qat(net, data, 4, cfg, progress=False)
    model = export(q, data, 4, cfg, progress=False)
    assert model.has_conv and model.layers[0].codes.shape == (2 * TINY.n_mels, 6)
    assert model.meta["config"]["convs"] == [[2, 1, 6]]
    assert model.meta["config"]["label_smoothing"] == 0.1
    assert len(model.meta["static_ranges"]) == 3
    modelfile.save(model, tmp_path / "cnn.kwm")
    model = modelfile.load(tmp_path / "cnn.kwm")
    xi = quantize.features_to_int(data.x_clean, model.in_frac)
    ref = golden.run_network(model.plans(), xi)[-1].y
    assert np.array_equal(IntegerNet(model)(torch.from_numpy(xi)).numpy(), ref)
    assert np.mean(ref.argmax(1) == data.y.numpy()) > 0.8
    for mode in ("float", "dynamic8", "static8"):
        logits = run_windows(model, data.x_clean, mode)
        assert np.mean(logits.argmax(1) == data.y.numpy()) > 0.8, mode
