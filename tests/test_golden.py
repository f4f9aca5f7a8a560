"""Properties of the arithmetic contract and the integer golden model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwshw import arith, golden, quantize
from kwshw.arith import ACT_MAX, ACT_MIN

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layers(draw):
    """A random layer with the edge cases mixed in: constant columns, huge biases,
    per-column scales spanning decades, inputs that are constant or at the extremes."""
    bits = draw(st.integers(2, 8))
    n_in = draw(st.integers(1, 48))
    n_out = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    col_scale = 10.0 ** rng.uniform(-3, 1, n_out)
    w = rng.normal(0, 1, (n_in, n_out)) * col_scale
    for j in range(n_out):
        if rng.random() < 0.15:  # constant column: s_j = 0
            w[:, j] = rng.normal() * col_scale[j]
    bias = rng.normal(0, 1, n_out) * 10.0 ** rng.uniform(-2, 2, n_out)
    relu = draw(st.booleans())
    in_frac = draw(st.integers(0, 14))
    out_frac = draw(st.integers(-2, 14))
    frames = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["normal", "constant", "extreme", "alternating", "tiny"]))
    if kind == "normal":
        x = rng.normal(0, 1, (frames, n_in)) * 10.0 ** rng.uniform(0, 4)
    elif kind == "constant":  # R = 0
        x = np.full((frames, n_in), rng.integers(ACT_MIN, ACT_MAX + 1))
    elif kind == "extreme":
        x = rng.choice([ACT_MIN, ACT_MAX], (frames, n_in))
    elif kind == "alternating":
        x = np.where(np.arange(n_in) % 2, ACT_MAX, ACT_MIN)[None, :].repeat(frames, 0)
    else:  # ranges of a few LSBs
        x = rng.integers(-2, 3, (frames, n_in))
    x = np.clip(np.round(x), ACT_MIN, ACT_MAX).astype(np.int64)
    layer = quantize.quantize_layer(w, bias, bits=bits, out_frac=out_frac, relu=relu)
    in_signed = draw(st.booleans())
    if not in_signed:
        x = np.abs(x).clip(0, ACT_MAX)
    plan = quantize.plan_layer(layer, bits=bits, in_frac=in_frac, in_signed=in_signed)
    return plan, x, w


@SETTINGS
@given(layers())
def test_golden_within_derived_bound_of_float_on_dequantized_values(case):
    plan, x, _ = case
    trace = golden.run_layer(plan, x, check_widths=True)
    ref = golden.dequantized_layer(plan, trace)
    lo = 0 if plan.layer.relu else ACT_MIN
    err = np.abs(trace.y - np.clip(ref, lo, ACT_MAX))
    bound = golden.layer_error_bound(plan, trace)[..., None]
    assert np.all(err <= bound + 1e-9 * np.abs(ref).clip(1)), (err.max(), bound.max())


@SETTINGS
@given(layers())
def test_golden_is_deterministic_and_batch_independent(case):
    plan, x, _ = case
    a = golden.run_layer(plan, x).y
    b = golden.run_layer(plan, x.copy()).y
    one_by_one = np.stack([golden.run_layer(plan, row).y for row in x])
    assert np.array_equal(a, b)
    assert np.array_equal(a, one_by_one)


@SETTINGS
@given(layers())
def test_activation_codes_within_five_eighths_of_exact(case):
    plan, x, _ = case
    trace = golden.run_layer(plan, x)
    m = arith.code_max(plan.bits)
    r = trace.r[..., None].astype(np.float64)
    exact = np.where(r > 0, (x - trace.xlo[..., None]) * m / np.maximum(r, 1), 0.0)
    assert np.all(np.abs(trace.p - exact) <= 0.625)
    assert trace.p.min() >= 0 and trace.p.max() <= m
    # R = 0: a constant vector is represented exactly by XLO.
    const = trace.r == 0
    assert np.all(trace.p[const] == 0)


@SETTINGS
@given(layers())
def test_weight_quantization_is_columnwise_min_max(case):
    plan, _, w = case
    lay, bits = plan.layer, plan.bits
    w_hat = lay.dequantized_weights(bits)
    step = lay.st * 2.0 ** -(lay.w_exp + bits)
    # Half a step of rounding, plus the representation of LO and ST in CONST_WIDTH bits.
    bound = step / 2 + 2.0 ** -lay.w_exp
    assert np.all(np.abs(w_hat - w) <= bound[None, :] * (1 + 1e-12))
    # Each column's codes span its own range: minimum at code 0, maximum at code M, wherever
    # the column's step is resolved finer than the shared exponent's LSB (ST > 2**(b+1)).
    cols = np.flatnonzero(lay.st > 2 ** (bits + 1))
    assert np.all(lay.codes[np.argmin(w, axis=0)[cols], cols] == 0)
    assert np.all(lay.codes[np.argmax(w, axis=0)[cols], cols] == arith.code_max(bits))
    const_cols = np.ptp(w, axis=0) == 0
    assert np.all(lay.codes[:, const_cols] == 0)


@SETTINGS
@given(st.integers(2, 8), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_network_intermediates_never_exceed_declared_widths(bits, depth, seed):
    rng = np.random.default_rng(seed)
    shape = [int(rng.integers(1, 40))] + [int(rng.integers(1, 20)) for _ in range(depth)]
    ws = [rng.normal(0, 1 / np.sqrt(a), (a, b))
          for a, b in zip(shape[:-1], shape[1:], strict=False)]
    bs = [rng.normal(0, 0.3, b) for b in shape[1:]]
    xf = rng.normal(0, 1, (16, shape[0]))
    fracs = quantize.calibrate_out_fracs(ws, bs, xf, headroom=rng.uniform(0.1, 4))
    plans, in_frac, in_signed = [], 11, True
    for k, (w, b, f) in enumerate(zip(ws, bs, fracs, strict=True)):
        lay = quantize.quantize_layer(w, b, bits=bits, out_frac=f, relu=k < depth - 1)
        plans.append(quantize.plan_layer(lay, bits=bits, in_frac=in_frac, in_signed=in_signed))
        in_frac, in_signed = f, not lay.relu
    x = quantize.features_to_int(xf * rng.uniform(0.1, 30))
    golden.run_network(plans, x, check_widths=True)  # raises on any width violation


def test_rshift_round_is_half_up_for_both_signs():
    vals = np.arange(-9, 10)
    assert list(arith.rshift_round(vals, 1)) == [int(np.floor(v / 2 + 0.5)) for v in vals]
    assert arith.rshift_round(-3, 1) == -1 and arith.rshift_round(3, 1) == 2
    assert arith.rshift_round(5, 0) == 5 and arith.rshift_round(5, -2) == 20


def test_reciprocal_and_step_exhaustive_small_ranges():
    for bits in (4, 8):
        m = arith.code_max(bits)
        r = np.arange(0, 1 << arith.ACT_WIDTH)
        recip = arith.reciprocal(r, bits)
        assert recip[0] == 0
        exact = m * 2.0**arith.RECIP_FRAC / r[1:]
        assert np.all(np.abs(recip[1:] - exact) <= 0.5)
        rm = arith.step(r, bits)
        assert np.all(np.abs(rm - r * 2.0**bits / m) <= 0.5)
        assert arith.reciprocal(7, bits) == recip[7] and arith.step(7, bits) == rm[7]


def test_saturation_and_relu_clamp():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (8, 3))
    lay = quantize.quantize_layer(w, np.array([1e9, -1e9, 0.0]), bits=4, out_frac=8, relu=False)
    plan = quantize.plan_layer(lay, bits=4, in_frac=8, in_signed=True)
    y = golden.run_layer(plan, rng.integers(-100, 100, (5, 8))).y
    assert np.all(y[:, 0] == ACT_MAX) and np.all(y[:, 1] == ACT_MIN)
    lay_r = quantize.quantize_layer(w, np.array([0.0, -1e9, 0.0]), bits=4, out_frac=8, relu=True)
    plan_r = quantize.plan_layer(lay_r, bits=4, in_frac=8, in_signed=True)
    assert np.all(golden.run_layer(plan_r, rng.integers(-100, 100, (5, 8))).y[:, 1] == 0)


def test_unsupported_bits_rejected():
    with pytest.raises(ValueError, match="unsupported code width"):
        quantize.quantize_layer(np.ones((2, 2)), np.zeros(2), bits=9, out_frac=0, relu=False)
    with pytest.raises(ValueError, match="unsupported code width"):
        arith.code_max(1)


def test_stream_windows_matches_definition():
    frames = np.arange(7 * 3).reshape(7, 3)
    win = golden.stream_windows(frames, context=3, stride=2)
    assert win.shape == (7, 9)
    # t = 5: frames 1, 3, 5 (oldest first)
    assert list(win[5]) == list(frames[1]) + list(frames[3]) + list(frames[5])
    # t = 1: frames -3 (zero), -1 (zero), 1
    assert list(win[1]) == [0, 0, 0, 0, 0, 0] + list(frames[1])


def _static_forward(ws, bs, x, bits, act_ranges):
    """Per-tensor static min-max: one range per weight tensor, activation ranges fixed
    from calibration data."""
    h = x
    for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
        wq = quantize.static_fake_quant(w, w.min(), w.max(), bits)
        hq = quantize.static_fake_quant(h, *act_ranges[k], bits)
        h = hq @ wq + b
        if k < len(ws) - 1:
            h = np.maximum(h, 0)
    return h


@pytest.mark.parametrize("bits", [4, 8])
def test_dynamic_beats_static_per_tensor(bits):
    """The paper's claim: column-wise weights and per-frame activations beat one static
    per-tensor range, on inputs whose level varies from frame to frame (as speech does)
    and weights whose columns differ in scale (as trained layers do)."""
    rng = np.random.default_rng(2019)
    shape = [200, 64, 64, 12]
    ws = [rng.normal(0, 1, (a, b)) / np.sqrt(a) * 10 ** rng.uniform(-1, 0.5, b)
          for a, b in zip(shape[:-1], shape[1:], strict=False)]
    bs = [rng.normal(0, 0.1, b) for b in shape[1:]]
    level = 10 ** rng.uniform(-1, 0.7, (400, 1))
    xf = rng.normal(0.5, 1, (400, shape[0])) * level
    ref = golden.float_forward(ws, bs, xf)
    calib, test = slice(0, 200), slice(200, 400)
    act_ranges, h = [], xf[calib]
    for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
        act_ranges.append((h.min(), h.max()))
        h = h @ w + b
        h = np.maximum(h, 0) if k < len(ws) - 1 else h
    static = _static_forward(ws, bs, xf[test], bits, act_ranges)
    fracs = quantize.calibrate_out_fracs(ws, bs, xf[calib])
    plans, in_frac, in_signed = [], 9, True
    for k, (w, b, f) in enumerate(zip(ws, bs, fracs, strict=True)):
        lay = quantize.quantize_layer(w, b, bits=bits, out_frac=f, relu=k < len(ws) - 1)
        plans.append(quantize.plan_layer(lay, bits=bits, in_frac=in_frac, in_signed=in_signed))
        in_frac, in_signed = f, not lay.relu
    y = golden.run_network(plans, quantize.features_to_int(xf[test], 9))[-1].y
    dynamic = y * 2.0 ** -plans[-1].layer.out_frac
    err_dyn = np.abs(dynamic - ref[test]).mean()
    err_static = np.abs(static - ref[test]).mean()
    assert err_dyn < err_static, (err_dyn, err_static)


def test_exact_matmul_equals_integer_matmul():
    """The float64 BLAS product of the golden model is exact: equal to int64 matmul on the
    largest codes, and the int64 path is taken when 2**53 could be reached."""
    rng = np.random.default_rng(7)
    for bits, n_in in ((8, 4096), (4, 1000), (2, 17)):
        top = 2**bits - 1
        p = rng.integers(0, top + 1, (64, n_in))
        codes = rng.integers(0, top + 1, (n_in, 33))
        p[0] = top
        codes[:, 0] = top  # the extreme sum n_in * top**2
        assert np.array_equal(golden._exact_matmul(p, codes, bits), p @ codes)
    # Past the float64 bound the integer path is taken (27-bit "codes", 2**54 sums).
    huge = np.full((2, 3), 2**27 - 1, np.int64)
    assert np.array_equal(golden._exact_matmul(huge, huge.T, 27), huge @ huge.T)
