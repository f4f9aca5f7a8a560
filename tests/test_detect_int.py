# amaranth: UnusedElaboratable=no
"""The integer keyword detection rule (:mod:`kwshw.detect_int`): exact values, edge cases,
agreement with the float rule of :mod:`kwshw.evaluate`, and the gateware
(:class:`kwshw.hw.detection.KeywordDetector`) bit for bit against it in simulation.

``python -m tests.test_detect_int`` prints the agreement measurements of ``docs/detection.md``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.sim import Simulator

from kwshw import evaluate
from kwshw.arith import ACT_MAX, ACT_MIN, rshift_round
from kwshw.detect_int import (
    D_MAX,
    EXP_FRAC,
    Detection,
    IntDetectRule,
    IntStreamDetector,
    compare_with_float,
    detect_int,
    exp_table,
    int_posteriors,
    moving_sums,
    rshift_round_var,
    threshold_int,
)
from kwshw.hw.detection import KeywordDetector, frame_cycles, memory_depth

ONE = 1 << 15   # posterior 1.0 at the default POST_FRAC


def synthetic_scores(rng, frames: int, n_out: int, keywords, out_frac: int) -> np.ndarray:
    """A score stream of realistic shape: correlated noise (logits +-3), a filler class ahead
    by 4, and keyword events (15-80 frames, a half sine of 2-12 logits on one keyword)."""
    noise = rng.normal(0.0, 1.5, (frames, n_out))
    for t in range(1, frames):
        noise[t] = 0.8 * noise[t - 1] + 0.6 * noise[t]
    others = [c for c in range(n_out) if c not in keywords] or [0]
    noise[:, others[0]] += 4.0
    t = int(rng.integers(0, 40))
    while t < frames:
        n = int(rng.integers(15, 80))
        seg = rng.uniform(2.0, 12.0) * np.sin(np.linspace(0.0, np.pi, n))[:frames - t]
        noise[t:t + n, int(rng.choice(keywords))] += seg
        t += n + int(rng.integers(30, 200))
    return np.clip(np.round(noise * 2.0**out_frac), ACT_MIN, ACT_MAX).astype(np.int64)


def random_rule(rng, **kw) -> IntDetectRule:
    n_out = int(rng.integers(2, 13))
    n_kw = int(rng.integers(1, n_out + 1))
    keywords = tuple(sorted(int(c) for c in rng.choice(n_out, n_kw, replace=False)))
    levels = [0.3, 0.5, 0.7, 0.9]
    # Half the rules give every keyword class its own threshold (a model file's offsets).
    threshold = (tuple(float(t) for t in rng.choice(levels, n_kw)) if rng.random() < 0.5
                 else float(rng.choice(levels)))
    args = dict(n_out=n_out, keywords=keywords, out_frac=int(rng.integers(6, 13)),
                threshold=threshold)
    return IntDetectRule(**(args | kw))


# --- a scalar reference in plain Python integers ---------------------------------------------

def _ref_posteriors(z: list[int], rule: IntDetectRule) -> list[int]:
    """Steps 1-4 of the module docstring, one class at a time, Python ``int`` only."""
    table = [int(v) for v in exp_table(rule.exp_index)]
    log2e = math.floor(math.log2(math.e) * 2**15 + 0.5)     # 47274.23 -> 47274
    assert log2e == rule.log2e
    shift = 15 - rule.exp_index + rule.out_frac
    e = []
    for zj in z:
        u = min(rshift_round((max(z) - zj) * log2e, shift), (EXP_FRAC + 2) << rule.exp_index)
        e.append(rshift_round(table[u % (1 << rule.exp_index)], u >> rule.exp_index))
    s = sum(e)
    return [(e[c] * 2 ** (rule.post_frac + 1) + s) // (2 * s) for c in rule.keywords]


def test_exp_table_and_constants():
    table = exp_table(7)
    assert len(table) == 128 and table[0] == ONE and np.all(np.diff(table) < 0)
    assert table[64] == round(ONE / math.sqrt(2))           # 2^-1/2
    rule = IntDetectRule(3, (1, 2), out_frac=8, threshold=0.5)
    assert rule.log2e == 47274 and rule.log2e_shift == 16 and rule.u_end == 17 << 7
    assert rule.exp(0) == ONE and rule.exp(D_MAX) == 0
    # One logit below the maximum: u = rshift_round(256 LOG2E, 16) = 185 (184.66), so 2^-1
    # times POW2[57] = 24066, rounded: 12033 (exp(-1) 2^15 = 12054.6; u's step is 2^-7).
    assert rule.exp(256) == 12033
    assert threshold_int(0.5, 10) == 5 * ONE


def test_the_gateware_shortcuts_change_no_exponent():
    """The gateware clips d at d_end (a shorter multiply) and not u at U_END (every u from
    U_END on gives e = 0): the same e for every d."""
    for out_frac in (-32, -3, 0, 6, 7, 10, 13, 16, 32):
        rule = IntDetectRule(2, (1,), out_frac=out_frac, threshold=0.5)
        d = np.arange(D_MAX + 1)
        u = rshift_round(np.minimum(d, rule.d_end) * rule.log2e, rule.log2e_shift)
        mask = (1 << rule.exp_index) - 1
        e = rshift_round_var(rule.table[u & mask], u >> rule.exp_index)
        assert np.array_equal(e, rule.exp(d)), out_frac
        assert rule.d_end == D_MAX or rule.exp(rule.d_end) == 0


def test_exponent_error_is_within_the_table_step():
    rule = IntDetectRule(2, (1,), out_frac=10, threshold=0.5)
    d = np.arange(0, 20000)
    ref = np.exp(-d * 2.0**-10) * ONE
    # u's step is 2^-7 in log2 units (relative 0.27%), plus half an LSB from each rounding.
    assert np.max(np.abs(rule.exp(d) - ref) - ref * (2.0**(2.0**-8) - 1)) <= 1.0


def test_exact_posteriors():
    rule = IntDetectRule(3, (0, 1, 2), out_frac=8, threshold=0.5)
    # Equal scores: P = floor((2^16 + 3) / 6) = round(2^15 / 3) for every class.
    assert int_posteriors([[5, 5, 5]], rule).tolist() == [[10923] * 3]
    # One class far ahead: the others' e are 0 and its posterior is exactly 1.
    assert int_posteriors([[ACT_MAX, ACT_MIN, ACT_MIN]], rule).tolist() == [[ONE, 0, 0]]
    # One logit apart: e = (2^15, 12033, 12033), S = 56834, P0 = round(18892.6).
    assert int_posteriors([[256, 0, 0]], rule).tolist() == [[18893, 6938, 6938]]
    two = IntDetectRule(2, (1,), out_frac=8, threshold=0.5)
    assert int_posteriors([[7, 7], [0, 256]], two).tolist() == [[ONE // 2], [23967]]


@pytest.mark.parametrize("seed", range(3))
def test_posteriors_match_a_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    rule = random_rule(rng, out_frac=int(rng.integers(-4, 16)))
    z = rng.integers(ACT_MIN, ACT_MAX + 1, (40, rule.n_out))
    z[:5] = rng.integers(-300, 300, (5, rule.n_out))        # close scores
    z[5] = ACT_MAX
    got = int_posteriors(z, rule)
    for t in range(len(z)):
        assert got[t].tolist() == _ref_posteriors([int(v) for v in z[t]], rule), t


def test_moving_sums():
    post = np.array([[1], [2], [3], [4], [5]])
    assert moving_sums(post, 3)[:, 0].tolist() == [1, 3, 6, 9, 12]
    assert moving_sums(post, 1)[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert moving_sums(post, 9)[:, 0].tolist() == [1, 3, 6, 10, 15]


def test_threshold_int_is_exact():
    assert threshold_int(0.5, 4) == 2 * ONE
    # 0.1 is 0.1000000000000000055...: just above 32768 / 327680, so the ceiling is 32769.
    assert threshold_int(0.1, 10) == 32769
    assert threshold_int(0.0, 10) == 0 and threshold_int(-3.0, 10) == 0
    assert threshold_int(1.0, 10) == 10 * ONE and threshold_int(7.0, 10) == 10 * ONE + 1
    with pytest.raises(ValueError, match="finite"):
        threshold_int(float("nan"), 10)


def _frames_with_posterior(rule: IntDetectRule, p_target: int) -> list[int]:
    """Scores of a two-class frame whose class-1 posterior is the nearest to ``p_target``."""
    z = np.stack([np.zeros(4001, np.int64), np.arange(-2000, 2001)], axis=1)
    p = int_posteriors(z, rule)[:, 0]
    return z[int(np.argmin(np.abs(p - p_target)))].tolist()


def test_threshold_edge_sum_equal_fires_one_below_does_not():
    base = IntDetectRule(2, (1,), out_frac=8, threshold=0.5, k=4, refractory=0)
    frame = _frames_with_posterior(base, ONE * 3 // 4)
    total = 4 * int(int_posteriors([frame], base)[0, 0])
    for thr, fires in ((total / (4 * ONE), True), ((total + 1) / (4 * ONE), False)):
        rule = IntDetectRule(2, (1,), out_frac=8, threshold=thr, k=4, refractory=0)
        assert rule.t_ints == (total if fires else total + 1,)
        dets = detect_int([frame] * 5, rule)
        # The sum reaches 4 P at frame 3 (3 frames of history before it).
        assert [d.frame for d in dets] == ([3, 4] if fires else [])
        if fires:
            assert dets[0] == Detection(3, 1, total)


@pytest.mark.parametrize("refractory", [0, 1, 7])
def test_refractory_boundary(refractory):
    rule = IntDetectRule(2, (1,), out_frac=8, threshold=0.9, k=1, refractory=refractory)
    frames = [[0, 4000]] * 30
    got = [d.frame for d in detect_int(frames, rule)]
    assert got == list(range(0, 30, refractory + 1))
    post = evaluate.posteriors(np.asarray(frames) / 256.0)[:, 1]
    assert got == evaluate.detect(post, 0.9, 1, refractory).tolist()


def test_classes_firing_on_the_same_frame_each_keep_their_own_refractory():
    rule = IntDetectRule(4, (1, 2, 3), out_frac=8, threshold=0.3, k=2, refractory=3)
    frames = [[0, 1000, 1000, 0]] * 6 + [[0, 0, 0, 2000]] * 3
    got = [(d.frame, d.cls) for d in detect_int(frames, rule)]
    assert got == [(1, 1), (1, 2), (5, 1), (5, 2), (6, 3)]


def test_clear_forgets_history_refractory_and_frame():
    rng = np.random.default_rng(5)
    rule = IntDetectRule(5, (0, 3, 4), out_frac=9, threshold=0.5, k=5, refractory=20)
    z = synthetic_scores(rng, 300, 5, rule.keywords, 9)
    det = IntStreamDetector(rule)
    det.run(z[:150])
    det.clear()
    assert det.frame == 0
    assert det.run(z[150:]) == detect_int(z[150:], rule)


@pytest.mark.parametrize("seed", range(4))
def test_stream_detector_agrees_with_batch(seed):
    rng = np.random.default_rng(100 + seed)
    rule = random_rule(rng, k=int(rng.integers(1, 12)), refractory=int(rng.integers(0, 60)))
    z = synthetic_scores(rng, 1500, rule.n_out, rule.keywords, rule.out_frac)
    batch = detect_int(z, rule)
    assert batch and IntStreamDetector(rule).run(z) == batch
    sums = moving_sums(int_posteriors(z, rule), rule.k)
    for d in batch:
        col = rule.keywords.index(d.cls)
        assert d.sum == sums[d.frame, col] >= rule.t_ints[col]


def test_from_model():
    model = SimpleNamespace(labels=["_silence_", "_unknown_", "yes", "no"],
                            layers=[SimpleNamespace(out_frac=3), SimpleNamespace(out_frac=9)],
                            meta={"detection": {"threshold": 0.8}})
    rule = IntDetectRule.from_model(model)
    assert (rule.n_out, rule.keywords, rule.out_frac, rule.thresholds) == (4, (2, 3), 9,
                                                                            (0.8, 0.8))
    assert (rule.k, rule.refractory) == (evaluate.DEFAULT_SMOOTHING,
                                         evaluate.DEFAULT_REFRACTORY)
    assert IntDetectRule.from_model(model, 0.25, k=3).thresholds == (0.25, 0.25)
    model.meta["detection"]["class_offsets"] = {"no": 1.0}
    rule = IntDetectRule.from_model(model)
    assert rule.thresholds == (0.8, 1 - 0.2 * 0.1)
    assert rule.t_ints == tuple(threshold_int(t, rule.k) for t in rule.thresholds)
    assert IntDetectRule.from_model(model, 0.25).thresholds == (0.25, 0.25)


def test_each_keyword_class_detects_at_its_own_threshold():
    # Both keyword classes at posterior 0.42 every frame: only the one whose threshold is
    # below it fires, in the integer rule, the float rule and one frame at a time.
    rule = IntDetectRule(3, (1, 2), out_frac=8, threshold=(0.3, 0.5), k=2, refractory=5)
    p = evaluate.posteriors(np.array([[0.0, 1.0, 1.0]]))[0]
    assert 0.3 < p[1] == p[2] < 0.5
    frames = [[0, 256, 256]] * 12
    want = [(1, 1), (7, 1)]
    assert [(d.frame, d.cls) for d in detect_int(frames, rule)] == want
    assert [(d.frame, d.cls) for d in IntStreamDetector(rule).run(frames)] == want
    a = compare_with_float(frames, rule)
    assert (a.int_detections, a.float_detections, a.mismatches) == (2, 2, 0)
    swapped = IntDetectRule(3, (1, 2), out_frac=8, threshold=(0.5, 0.3), k=2, refractory=5)
    assert [(d.frame, d.cls) for d in detect_int(frames, swapped)] == [(1, 2), (7, 2)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_out=1, keywords=(0,)), "n_out"),
    (dict(keywords=()), "keywords"),
    (dict(keywords=(3,)), "keywords"),
    (dict(keywords=(2, 1)), "keywords"),
    (dict(keywords=(1, 1)), "keywords"),
    (dict(out_frac=33), "out_frac"),
    (dict(out_frac=2.5), "out_frac"),
    (dict(k=0), "smoothing"),
    (dict(refractory=-1), "refractory"),
    (dict(threshold=float("inf")), "finite"),
    (dict(threshold=(0.5,)), "one per keyword class"),
    (dict(threshold=(0.5, 0.6, 0.7)), "one per keyword class"),
    (dict(threshold=(0.5, float("nan"))), "finite"),
    (dict(exp_index=3), "exp_index"),
    (dict(post_frac=30), "post_frac"),
])
def test_bad_parameters_raise(kwargs, match):
    args = dict(n_out=3, keywords=(1, 2), out_frac=8, threshold=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        IntDetectRule(**args)


def test_bad_scores_and_hardware_parameters_raise():
    rule = IntDetectRule(3, (1, 2), out_frac=8, threshold=0.5)
    with pytest.raises(ValueError, match="shape"):
        int_posteriors(np.zeros((4, 2)), rule)
    with pytest.raises(ValueError, match="16-bit"):
        int_posteriors([[0, 0, ACT_MAX + 1]], rule)
    with pytest.raises(ValueError, match="hold"):
        KeywordDetector(rule, hold=0)
    with pytest.raises(ValueError, match="frame_width"):
        KeywordDetector(rule, frame_width=0)
    with pytest.raises(TypeError, match="IntDetectRule"):
        KeywordDetector(None)


# --- agreement with the float rule ------------------------------------------------------------

def agreement(seed: int, trials: int, frames: int, thresholds=(0.3, 0.5, 0.7, 0.9)):
    """Over ``trials`` random models and synthetic streams: the largest posterior error, and
    detections of the integer / float rule and their symmetric difference, summed."""
    rng = np.random.default_rng(seed)
    err, n_int, n_float, diff = 0.0, 0, 0, 0
    for _ in range(trials):
        rule = random_rule(rng)
        z = synthetic_scores(rng, frames, rule.n_out, rule.keywords, rule.out_frac)
        for thr in thresholds:
            a = compare_with_float(z, IntDetectRule(rule.n_out, rule.keywords, rule.out_frac,
                                                    thr))
            err = max(err, a.max_posterior_error)
            n_int, n_float, diff = n_int + a.int_detections, n_float + a.float_detections, \
                diff + a.mismatches
    return err, n_int, n_float, diff


def uniform_error(seed: int, frames: int, lo: int, hi: int) -> float:
    rng = np.random.default_rng(seed)
    err = 0.0
    for out_frac in (4, 8, 12):
        rule = IntDetectRule(12, tuple(range(12)), out_frac=out_frac, threshold=0.5)
        z = rng.integers(lo, hi + 1, (frames, 12))
        err = max(err, compare_with_float(z, rule).max_posterior_error)
    return err


def test_posterior_error_on_random_logits():
    # Measured 7.5e-4 (full 16-bit range) and 7.8e-4 (+-1024: +-4 logits at out_frac 8).
    assert uniform_error(0, 5000, ACT_MIN, ACT_MAX) < 1e-3
    assert uniform_error(1, 5000, -1024, 1024) < 1e-3


def test_detections_agree_with_the_float_rule():
    # Measured (seed 1, 20 streams of 3000 frames, 4 thresholds): posterior error 7.8e-4,
    # 10 of 1964 detections differ, 0.5% (a detection one frame off counts twice).
    err, n_int, n_float, diff = agreement(1, 20, 3000)
    assert err < 1e-3
    assert n_float > 1000 and abs(n_int - n_float) <= 0.005 * n_float
    assert diff <= 0.01 * n_float


# --- the gateware against the golden model -----------------------------------------------------

def _ops(rng, rule: IntDetectRule, frames: int, n_clears: int) -> tuple[list, list]:
    """Producer operations (``("score", v)`` / ``("clear", offer)``) and the golden events.

    A clear goes at a random point of a random frame: the scores before it are a partial
    frame the golden model never sees; ``offer`` also offers the next score in the clear
    cycle (which must not be taken)."""
    z = synthetic_scores(rng, frames, rule.n_out, rule.keywords, rule.out_frac)
    z[rng.integers(0, frames, 3)] = rng.integers(ACT_MIN, ACT_MAX + 1, (3, rule.n_out))
    cuts = sorted(set(int(c) for c in rng.integers(1, frames, n_clears)))
    ops, events = [], []
    gold = IntStreamDetector(rule)
    for t in range(frames):
        if t in cuts:
            # The first clear right after a frame: it comes while that frame is processed.
            part = 0 if t == cuts[0] else int(rng.integers(0, rule.n_out))
            ops += [("score", int(v)) for v in rng.integers(ACT_MIN, ACT_MAX, part)]
            ops.append(("clear", bool(rng.integers(0, 2))))
            gold.clear()
        ops += [("score", int(v)) for v in z[t]]
        events += gold.update(z[t])
    return ops, events


def _producer(dut: KeywordDetector, ops: list, gaps, tail: int):
    """Offer the scores (``valid`` low for the cycles ``gaps`` says), pulse ``clear``."""
    async def producer(ctx):
        s, g = dut.scores, iter(gaps)
        for i, op in enumerate(ops):
            while next(g, False):
                await ctx.tick()
            if op[0] == "clear":
                nxt = next((o for o in ops[i + 1:] if o[0] == "score"), None)
                if op[1] and nxt is not None:
                    ctx.set(s.payload, nxt[1])
                    ctx.set(s.valid, 1)
                ctx.set(dut.clear, 1)
                assert not ctx.get(s.ready)       # the score offered now is not taken
                await ctx.tick()
                ctx.set(dut.clear, 0)
                continue
            ctx.set(s.payload, op[1])
            ctx.set(s.valid, 1)
            while not ctx.get(s.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(s.valid, 0)
        for _ in range(tail):
            await ctx.tick()
    return producer


def _consumer(dut: KeywordDetector, readies, got: list):
    """Take events when ``readies`` says (and at least every 64 cycles) into ``got``."""
    async def consumer(ctx):
        e, cyc = dut.events, 0
        while True:
            ctx.set(e.ready, int(readies[cyc % len(readies)]) or cyc % 64 == 63)
            if ctx.get(e.valid) and ctx.get(e.ready):
                p = e.payload
                got.append((ctx.get(p.frame), ctx.get(p.cls), ctx.get(p.sum)))
            await ctx.tick()
            cyc += 1
    return consumer


def _simulate(dut: KeywordDetector, ops: list, rng, p_gap: float, p_ready: float,
              tail: int) -> list[tuple[int, int, int]]:
    """Run ``ops`` with random gaps; take events with probability ``p_ready`` per cycle."""
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(_producer(dut, ops, rng.random(len(ops) * 4) < p_gap, tail))
    sim.add_testbench(_consumer(dut, rng.random(1 << 16) < p_ready, got), background=True)
    sim.run()
    return got


@pytest.mark.parametrize("seed, n_out, keywords", [
    (0, 2, (1,)),
    (1, 4, (0, 2, 3)),
    (2, 12, (2, 3, 4, 5, 6, 7, 8, 9, 10, 11)),
    (3, 7, (6,)),
])
def test_gateware_matches_golden(seed, n_out, keywords):
    rng = np.random.default_rng(1000 + seed)
    # Several keyword classes: each its own threshold (the detector's per-class table).
    thr = tuple(float(t) for t in rng.choice([0.3, 0.5, 0.6], len(keywords)))
    rule = IntDetectRule(n_out, keywords, out_frac=int(rng.integers(6, 13)),
                         threshold=thr if len(keywords) > 1 else thr[0],
                         k=int(rng.integers(1, 5)), refractory=int(rng.integers(0, 6)))
    frames = 2400 // (n_out + len(keywords)) + 20
    ops, want = _ops(rng, rule, frames, n_clears=3)
    dut = KeywordDetector(rule, hold=3, frame_width=6)
    got = _simulate(dut, ops, rng, p_gap=0.3, p_ready=0.3, tail=frame_cycles(rule) + 200)
    assert len(want) >= 5
    assert got == [(d.frame % 64, d.cls, d.sum) for d in want]


@pytest.mark.parametrize("n_out, keywords, exp_index, post_frac, threshold", [
    (3, (0, 2), 5, 20, 0.4),               # posteriors wider than S
    (17, (1, 16), 4, 8, 0.1),              # more scores than ROM words
])
def test_gateware_other_formats(n_out, keywords, exp_index, post_frac, threshold):
    rng = np.random.default_rng(n_out)
    rule = IntDetectRule(n_out, keywords, out_frac=9, threshold=threshold, k=2, refractory=3,
                         exp_index=exp_index, post_frac=post_frac)
    ops, want = _ops(rng, rule, 50, n_clears=1)
    got = _simulate(KeywordDetector(rule), ops, rng, p_gap=0.2, p_ready=0.5,
                    tail=frame_cycles(rule) + 100)
    assert len(want) >= 3 and got == [(d.frame, d.cls, d.sum) for d in want]


def test_gateware_threshold_edge():
    base = IntDetectRule(2, (1,), out_frac=8, threshold=0.5, k=4, refractory=0)
    frame = _frames_with_posterior(base, ONE * 3 // 4)
    total = 4 * int(int_posteriors([frame], base)[0, 0])
    ops = [("score", v) for v in frame] * 5
    rng = np.random.default_rng(0)
    for extra, want in ((0, [(3, 1, total), (4, 1, total)]), (1, [])):
        rule = IntDetectRule(2, (1,), out_frac=8, threshold=(total + extra) / (4 * ONE), k=4,
                             refractory=0)
        got = _simulate(KeywordDetector(rule), ops, rng, p_gap=0.0, p_ready=1.0,
                        tail=frame_cycles(rule))
        assert got == want


def test_gateware_each_keyword_class_at_its_own_threshold():
    # The scores of test_each_keyword_class_detects_at_its_own_threshold, three keyword classes
    # with three thresholds: a table off by one class fires the wrong ones.
    frames = [[0, 256, 256, 256]] * 12
    for thr in ((0.3, 0.5, 0.2), (0.5, 0.2, 0.3), (0.5, 0.5, 0.2)):
        rule = IntDetectRule(4, (1, 2, 3), out_frac=8, threshold=thr, k=2, refractory=5)
        want = detect_int(frames, rule)
        assert {d.cls for d in want} == {c for c, t in zip((1, 2, 3), thr, strict=True)
                                          if t < 0.3}
        ops = [("score", v) for f in frames for v in f]
        got = _simulate(KeywordDetector(rule), ops, np.random.default_rng(0), p_gap=0.0,
                        p_ready=1.0, tail=frame_cycles(rule))
        assert got == [(d.frame, d.cls, d.sum) for d in want]


def test_gateware_default_rule_and_one_block_ram():
    rule = IntDetectRule(12, tuple(range(2, 12)), out_frac=10, threshold=0.5)
    assert memory_depth(rule) == 250 <= 256
    rng = np.random.default_rng(7)
    ops, want = _ops(rng, rule, 140, n_clears=1)
    got = _simulate(KeywordDetector(rule, frame_width=16), ops, rng, p_gap=0.0, p_ready=1.0,
                    tail=frame_cycles(rule) + 50)
    assert got == [(d.frame, d.cls, d.sum) for d in want]


def test_gateware_frame_time_and_led():
    rule = IntDetectRule(3, (1, 2), out_frac=8, threshold=0.5, k=1, refractory=100)
    dut = KeywordDetector(rule, hold=7)
    frames = [[0, 0, 0], [0, 4000, 0], [0, 0, 0]]
    busy, lit = [], []

    async def testbench(ctx):
        await ctx.tick().until(dut.scores.ready)
        ctx.set(dut.events.ready, 1)
        for f in frames:
            for v in f:
                ctx.set(dut.scores.payload, v)
                ctx.set(dut.scores.valid, 1)
                await ctx.tick()
            ctx.set(dut.scores.valid, 0)
            n = 0
            while not ctx.get(dut.scores.ready):
                lit.append(ctx.get(dut.led))
                await ctx.tick()
                n += 1
            busy.append(n)
        for _ in range(20):
            lit.append(ctx.get(dut.led))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert max(busy) <= frame_cycles(rule)
    assert sum(lit) == 7 and "1111111" in "".join(str(v) for v in lit)


if __name__ == "__main__":
    full = uniform_error(0, 5000, ACT_MIN, ACT_MAX)
    near = uniform_error(1, 5000, -1024, 1024)
    print(f"posterior error, uniform 16-bit scores: {full:.2e}; uniform +-1024: {near:.2e}")
    e, i, f, d = agreement(1, 20, 3000)
    print(f"synthetic streams: posterior error {e:.2e}, detections int {i} float {f}, "
          f"differing {d} ({d / f:.2%})")
