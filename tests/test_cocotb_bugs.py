"""Tests of the checker: deliberately broken variants of the design must be caught, and the
report must name the first mismatching frame, layer and column exactly.

Each variant's first wrong value is predicted independently with a correspondingly broken
NumPy model; the simulation's report must agree with the prediction.

- rounding: the scaler's rounding shifts lose their rounding bit (floor instead of half-up),
  built by generating the design with a test-only replacement of the scaler's
  ``select_rshift_round`` that drops the rounding bit (the hardware's files are untouched);
- weight bit: one bit of one packed weight word flipped in the generated Verilog text, the
  first weight (in a fixed order) whose flipped code changes an output of the golden model on
  the test's frames, so the test does not depend on which recordings the frames come from;
- clear: the ``clear`` input disconnected in the generated Verilog text.

Also here: regression tests for hardware bugs found by these benches.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from kwshw import arith, golden
from kwshw.hw.memories import weight_words
from sim import stimulus, toolchain
from sim.network import SimSettings, build_design, run_network_sim, run_scenario

pytestmark = pytest.mark.skipif(not toolchain.have_simulator("icarus"),
                                reason="Icarus Verilog not installed")

LANES = 4


@pytest.fixture(scope="module")
def model_frames():
    calib = frames = None
    if stimulus.data_dir() is not None:
        calib, _ = stimulus.real_lfbe(400, stimulus.SMALL_FEATURES, seed=1001)
    model = stimulus.random_model([32, 16], 4, calib=calib, seed=4)
    if stimulus.data_dir() is not None:
        lf, _ = stimulus.real_lfbe(12, stimulus.SMALL_FEATURES, seed=99)
        frames = stimulus.real_frames(model, lf)
    else:
        frames = stimulus.random_frames(12, model.features.n_mels, seed=99)
    return model, frames


def _layers(plans, x, scale=None, codes=None):
    """Golden model with an optionally replaced scaler and replaced weight codes; returns
    the ``y`` of every layer."""
    out = []
    for k, plan in enumerate(plans):
        if codes is not None and k in codes:
            plan = dataclasses.replace(plan, layer=dataclasses.replace(plan.layer,
                                                                        codes=codes[k]))
        t = golden.run_layer(plan, x)
        if scale is not None:
            lay = plan.layer
            t.y = scale(t.acc, t.psum[..., None], t.rm[..., None], t.xlo[..., None],
                        st=lay.st, lo=lay.lo, wsr=plan.wsr, bias=lay.bias, bits=plan.bits,
                        shifts=plan.shifts, relu=lay.relu)
        out.append(t.y)
        x = t.y
    return out


def _first_difference(good, bad, frame_offset=0):
    """(frame, layer, column) of the first differing value, frame-major."""
    for f in range(good[0].shape[0]):
        for k, (g, b) in enumerate(zip(good, bad, strict=True)):
            diff = np.flatnonzero(g[f] != b[f])
            if diff.size:
                return frame_offset + f, k, int(diff[0])
    return None


def _assert_caught(res, predicted):
    assert not res.ok and res.mismatches > 0, "the broken design was not caught"
    first = res.first_mismatch
    assert (first["frame"], first["layer"], first["column"]) == predicted, (
        f"reported {res.first_mismatch_text}, predicted frame/layer/column {predicted}")
    text = res.first_mismatch_text
    assert f"frame {predicted[0]}" in text and f"layer {predicted[1]}" in text \
        and f"column {predicted[2]}" in text
    # A failing run is rerun with waves, and the path is reported.
    assert res.wave and res.wave.endswith((".fst", ".vcd"))
    assert res.wave_rerun_first_mismatch == text


# --- rounding bit ------------------------------------------------------------------------------

def _floor_scale(a, p, rm, xlo, *, st, lo, wsr, bias, bits, shifts, relu):
    """arith.scale_column with the rounding constant of both shifts dropped (floor)."""
    def fshift(x, s):
        return x >> s if s > 0 else arith.rshift_round(x, s)
    v = st * a + ((lo * p) << bits)
    vr = fshift(v, shifts.sv)
    z = ((xlo * wsr) << shifts.align1) + ((rm * vr) << shifts.align2)
    y = fshift(z, shifts.out) + bias
    return np.clip(y, 0 if relu else arith.ACT_MIN, arith.ACT_MAX)


def test_flipped_rounding_bit_is_caught(model_frames, tmp_path, monkeypatch):
    from amaranth.hdl import C

    import kwshw.hw.scaler as scaler_mod

    model, frames = model_frames
    plans = model.plans()
    assert any(p.shifts.out > 0 or p.shifts.sv > 0 for p in plans)
    exact = scaler_mod.select_rshift_round

    def floor_shift(m, sel, x, shifts):
        floor, _ = exact(m, sel, x, shifts)
        return floor, C(0, 1)  # the rounding bit dropped: half-up rounding becomes floor

    monkeypatch.setattr(scaler_mod, "select_rshift_round", floor_shift)
    design = build_design(model, LANES, folder=tmp_path / "design")
    monkeypatch.undo()

    x = golden.stream_windows(frames, model.features.context, model.features.stride)
    predicted = _first_difference(_layers(plans, x), _layers(plans, x, scale=_floor_scale))
    assert predicted is not None
    res = run_scenario(model, [{"op": "frames", "frames": frames}],
                       SimSettings(lanes=LANES, build_dir=tmp_path / "run"), design=design)
    _assert_caught(res, predicted)


# --- one weight bit ----------------------------------------------------------------------------

def _flip_weight_bit(text: str, top: str, addr: int, bit: int) -> str:
    module = text.index(f"module \\{top}.weights ")
    pat = re.compile(rf"mem\[{addr}\] = (\d+)'h([0-9a-f]+);")
    m = pat.search(text, module)
    assert m is not None, "weight ROM init not found in the Verilog"
    width, value = int(m.group(1)), int(m.group(2), 16) ^ (1 << bit)
    new = f"mem[{addr}] = {width}'h{value:0{(width + 3) // 4}x};"
    return text[:m.start()] + new + text[m.end():]


def _weight_address(plans, layer: int, column: int, row: int) -> int:
    """Address of the packed weight word holding ``codes[row, column]`` of ``layer``: the
    layers' words one after another, each layer pass by pass (``LANES`` columns), a word per
    input row."""
    passes = [-(-p.n_out // LANES) for p in plans]
    base = sum(passes[k] * plans[k].n_in for k in range(layer))
    return base + (column // LANES) * plans[layer].n_in + row


def _weight_candidates(plans):
    """(layer, column, row) positions to try, in a fixed order: layer 1 first, then the
    others in order; in a layer, first the positions that exercise every term of the address
    (pass, lane and row all nonzero), then the rest; each group pass by pass, lane by lane,
    row by row. Only columns < n_out (the last pass may be partial)."""
    order = [1, *(k for k in range(len(plans)) if k != 1)] if len(plans) > 1 else [0]
    for layer in order:
        n_in, n_out = plans[layer].n_in, plans[layer].n_out
        cands = [(p, lane, row) for p in range(-(-n_out // LANES)) for lane in range(LANES)
                 for row in range(n_in) if p * LANES + lane < n_out]
        cands.sort(key=lambda c: not all(c))  # stable: interior positions first
        for p, lane, row in cands:
            yield layer, p * LANES + lane, row


def _pick_weight_bit(plans, x):
    """The first candidate (layer, column, row) whose weight code, with its LSB flipped,
    changes some output of the golden model on ``x``; and the predicted first difference."""
    good = _layers(plans, x)
    for layer, column, row in _weight_candidates(plans):
        codes = plans[layer].layer.codes.copy()
        codes[row, column] ^= 1
        predicted = _first_difference(good, _layers(plans, x, codes={layer: codes}))
        if predicted is not None:
            return (layer, column, row), predicted
    pytest.fail("no weight bit affects the outputs on these frames: flipping the LSB of any "
                "weight code changes no value of the golden model, so a flipped weight bit "
                "cannot be caught with this stimulus")


def test_flipped_weight_bit_is_caught(model_frames, tmp_path):
    model, frames = model_frames
    plans = model.plans()
    x = golden.stream_windows(frames, model.features.context, model.features.stride)
    (layer, column, row), predicted = _pick_weight_bit(plans, x)
    assert predicted[1:] == (layer, column)
    lane = column % LANES
    addr = _weight_address(plans, layer, column, row)
    words = weight_words(plans, LANES)
    assert (words[addr] >> (lane * model.bits)) & arith.code_max(model.bits) == \
        int(plans[layer].layer.codes[row, column])
    res = run_network_sim(
        model, SimSettings(lanes=LANES, build_dir=tmp_path, verilog_patch=lambda t:
                           _flip_weight_bit(t, "kwshw_accel", addr, lane * model.bits)),
        frames=frames)
    _assert_caught(res, predicted)


# --- clear disconnected ------------------------------------------------------------------------

def test_ignored_clear_is_caught(model_frames, tmp_path):
    model, frames = model_frames
    n_out = model.shape[-1]
    plans = model.plans()
    a, b = frames[:6], frames[6:]
    ops = [{"op": "frames", "frames": a},
           {"op": "interrupt", "kind": "clear", "after_scores": len(a) * n_out, "delay": 5},
           {"op": "frames", "frames": b}]

    def cut_clear(text: str) -> str:
        new, n = re.subn(r"\.clear\(clear\)", ".clear(1'h0)", text)
        assert n >= 1, "no clear connection found in the Verilog"
        return new

    ctx, stride = model.features.context, model.features.stride
    good = _layers(plans, golden.stream_windows(b, ctx, stride))
    # Without clear the window still holds the first stretch's frames.
    cont = golden.stream_windows(np.concatenate([a, b]), ctx, stride)[len(a):]
    predicted = _first_difference(good, _layers(plans, cont), frame_offset=len(a))
    assert predicted is not None
    res = run_scenario(model, ops, SimSettings(lanes=LANES, verilog_patch=cut_clear,
                                               build_dir=tmp_path))
    _assert_caught(res, predicted)
    assert res.first_mismatch["segment"] == 1


# --- regressions for hardware bugs found by these benches ------------------------------------

def test_two_outputs_back_to_back():
    """Regression (fixed in 1b2953d): with n_out == 2 and lanes >= 2 the last layer's two
    outputs reach the score FIFO on consecutive cycles; the depth-2 SyncFIFOBuffered dropped
    the second (w_en without w_rdy), so every wake-word model lost half its scores."""
    feats = stimulus.SMALL_FEATURES
    model = stimulus.random_model([8], 4, n_out=2, features=feats, seed=2)
    frames = stimulus.random_frames(6, feats.n_mels, seed=2)
    res = run_network_sim(model, SimSettings(lanes=2, stall_prob=0.3), frames=frames)
    assert res.ok, res.first_mismatch_text
