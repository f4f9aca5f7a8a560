"""Training windows across clip boundaries: only crossing windows, the silence/unknown rule,
and the same features the board computes on the stream."""

from __future__ import annotations

import numpy as np

from kwshw.features import FeatureConfig, Normalizer, lfbe, stack_window
from kwshw.stream_windows import stream_windows
from kwshw.streams import build_stream

CFG = FeatureConfig(context=5, stride=2)
SIL, UNK = 11, 10


def _clips():
    rng = np.random.default_rng(0)
    clips = []
    for i in range(12):
        n = int(rng.integers(8000, 20000))
        speech = i % 3 != 0
        amp = 0.2 if speech else 0.01
        clips.append((f"c{i}", (amp * rng.standard_normal(n)).astype(np.float32),
                      UNK if speech else SIL))
    return clips


def test_crossing_windows_with_the_stream_features():
    clips = _clips()
    norm = Normalizer(mean=np.full(CFG.n_mels, -5.0), std=np.full(CFG.n_mels, 2.0))
    x, y = stream_windows(clips, CFG, norm, n_windows=60, silence=SIL, unknown=UNK, seed=3,
                          crossing_only=True)
    assert x.shape == (60, CFG.n_inputs) and x.dtype == np.float32 and y.shape == (60,)
    # The same stream as the function builds: every window must be one of its windows.
    stream = build_stream([(k, a) for k, a, _ in clips], [], seed=3, min_gap_s=0.0)
    feats = norm.apply(lfbe(stream.audio, CFG))
    every = {stack_window(feats, CFG, e).tobytes(): e for e in range(CFG.span - 1, len(feats))}
    starts = [a for a, _, _ in stream.segments]
    label_of = {k: lab for k, _, lab in clips}
    for row, lab in zip(x, y, strict=True):
        e = every[row.astype(np.float32).tobytes()]
        lo = (e - CFG.span + 1) * CFG.hop_length
        hi = e * CFG.hop_length + CFG.win_length - 1
        inside = [k for (a, b, k) in stream.segments if a <= hi and b > lo]
        assert len(inside) >= 2, "a window that crosses no boundary"
        assert any(lo < s <= hi for s in starts)
        want = SIL if all(label_of[k] == SIL for k in inside) else UNK
        assert lab == want
    assert set(y.tolist()) == {SIL, UNK}


def test_deterministic_and_bounded():
    clips = _clips()
    norm = Normalizer(mean=np.zeros(CFG.n_mels), std=np.ones(CFG.n_mels))
    a = stream_windows(clips, CFG, norm, n_windows=40, silence=SIL, unknown=UNK, seed=1)
    b = stream_windows(clips, CFG, norm, n_windows=40, silence=SIL, unknown=UNK, seed=1)
    c = stream_windows(clips, CFG, norm, n_windows=40, silence=SIL, unknown=UNK, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    many = stream_windows(clips, CFG, norm, n_windows=10**6, silence=SIL, unknown=UNK,
                          crossing_only=True)
    every = stream_windows(clips, CFG, norm, n_windows=10**6, silence=SIL, unknown=UNK)
    # capped at the windows that exist: all of them, or those crossing a boundary
    total = sum(len(a) for _, a, _ in clips)
    assert len(every[0]) == (total - CFG.win_length) // CFG.hop_length + 1 - (CFG.span - 1)
    assert 0 < len(many[0]) < len(every[0])
    none = stream_windows(clips, CFG, norm, n_windows=0, silence=SIL, unknown=UNK)
    assert none[0].shape == (0, CFG.n_inputs)
