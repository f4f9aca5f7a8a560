"""The scoreboard on synthetic observations (no simulator): clean runs pass, every kind of
fault is counted and the first one is located by frame, layer and column."""

from __future__ import annotations

import numpy as np

from kwshw import golden
from kwshw.features import FeatureConfig
from sim.scoreboard import SegmentRecord, X, check
from sim.stimulus import random_frames, random_model

FEATS = FeatureConfig(n_mels=5, context=3, stride=2)
MODEL = random_model([6, 4], 4, n_out=3, features=FEATS, seed=1)
PLANS = MODEL.plans()


def _observe(frames):
    """What a correct design would produce for ``frames`` from an empty window."""
    ys = [t.y for t in golden.run_network(PLANS, golden.stream_windows(frames, 3, 2))]
    trace = [(k, j, int(y[f, j])) for f in range(len(frames)) for k, y in enumerate(ys)
             for j in range(y.shape[1])]
    return ys[-1].reshape(-1).tolist(), trace


def _seg(frames, **kw):
    scores, trace = _observe(frames)
    return SegmentRecord(frames=frames, scores=kw.pop("scores", scores),
                         trace=kw.pop("trace", trace), **kw)


def test_clean_run_passes():
    frames = random_frames(7, 5, seed=2)
    res = check(PLANS, 3, 2, [_seg(frames)])
    assert res.ok and res.frames_checked == 7
    assert res.values_checked == 7 * (6 + 4 + 3) + 7 * 3


def test_first_mismatch_is_earliest_frame_then_layer_then_column():
    frames = random_frames(6, 5, seed=3)
    seg = _seg(frames)
    trace = list(seg.trace)
    per_frame = 6 + 4 + 3

    def poke(frame, layer, col, delta=None, value=None):
        base = frame * per_frame + [0, 6, 10][layer] + col
        k, j, v = trace[base]
        assert (k, j) == (layer, col)
        trace[base] = (k, j, v + delta if value is None else value)

    poke(4, 0, 1, 1)      # later frame
    poke(2, 2, 0, 1)      # frame 2, last layer
    poke(2, 1, 3, -1)     # frame 2, layer 1, column 3  <- first
    poke(2, 1, 2, value=X)  # ...and column 2 of the same layer (an X) <- really first
    seg.trace = trace
    res = check(PLANS, 3, 2, [seg])
    assert not res.ok and res.mismatches == 4
    assert (res.first.frame, res.first.layer, res.first.column) == (2, 1, 2)
    assert "got X" in str(res.first)
    assert res.per_layer == [1, 2, 1]


def test_missing_extra_and_score_only_faults():
    frames = random_frames(4, 5, seed=4)
    seg = _seg(frames)
    seg.scores = seg.scores[:-2] + [seg.scores[-1] + 1]     # last frame: one lost, one wrong
    res = check(PLANS, 3, 2, [seg])
    assert res.score_mismatches == 2 and res.first.source == "score"
    assert (res.first.frame, res.first.layer, res.first.column) == (3, 2, 1)
    seg = _seg(frames)
    seg.scores = seg.scores + [5]                            # a surplus score
    res = check(PLANS, 3, 2, [seg])
    assert res.mismatches == 1 and res.first.kind == "extra"


def test_segments_restart_from_zero_and_interrupted_frames_may_be_cut():
    a, b = random_frames(5, 5, seed=5), random_frames(4, 5, seed=6)
    first = _seg(a, interrupted=True)
    # The interruption cut the last frame: its scores and last-layer trace never came.
    first.scores = first.scores[:-3]
    first.trace = first.trace[:-3]
    res = check(PLANS, 3, 2, [first, _seg(b)])
    assert res.ok and res.frames == 9 and res.frames_checked == 8
    # A design that did not restart the window after the interruption is caught in the
    # second segment, frame 0 of it (frame 5 overall).
    cont = np.concatenate([a, b])
    scores, trace = _observe(cont)
    bad = SegmentRecord(frames=b, scores=scores[5 * 3:], trace=trace[5 * 13:])
    res = check(PLANS, 3, 2, [_seg(a, interrupted=True), bad])
    assert not res.ok and res.first.segment == 1 and res.first.frame == 5
    assert res.first.segment_frame == 0
