"""Keyword spotting in long streams: the stream builder, keyword-time files, the matching of
detections with keywords, FA/h and FRR on hand-made posteriors, multi-class scoring and the
plot (synthetic arrays only, no data, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from kwshw import evaluate as ev
from kwshw import modelfile, quantize
from kwshw import streams as st
from kwshw.features import FeatureConfig, stack_windows
from kwshw.features_int import IntFrontEnd, pcm_from_float
from kwshw.frontends import lfbe
from sim.stimulus import random_model

SR = 16000
HOP = 160


def _clips(n, seconds, rng, prefix):
    return [(f"{prefix}{i}.wav", rng.uniform(-0.5, 0.5, int(seconds * SR)).astype(np.float32))
            for i in range(n)]


def _corpus(seed=0, n_neg=30, n_kw=5):
    rng = np.random.default_rng(seed)
    negs = _clips(n_neg, 1.0, rng, "neg/")
    kws = [(k, a[: int(0.8 * SR)], 1) for k, a in _clips(n_kw, 1.0, rng, "kw/")]
    return negs, kws


# --- building streams ---------------------------------------------------------------------------


def test_build_stream_splices_keywords_at_recorded_positions():
    negs, kws = _corpus()
    s = st.build_stream(negs, kws, sample_rate=SR, seed=3, min_gap_s=2.0)
    assert s.audio.dtype == np.float32 and s.sample_rate == SR
    assert len(s.audio) == sum(len(a) for _, a in negs) + sum(len(a) for _, a, _ in kws)
    by_key = {k: a for k, a, _ in kws}
    assert sorted(e.source for e in s.events) == sorted(by_key)
    for e in s.events:  # the audio of every event is exactly its clip
        assert np.array_equal(s.audio[e.start:e.end], by_key[e.source]) and e.label == 1
    # every negative clip appears whole, at a clip boundary (splice, not mix)
    neg_audio = np.concatenate([s.audio[p:q] for p, q in zip(
        [0] + [e.end for e in s.events], [e.start for e in s.events] + [len(s.audio)],
        strict=True)])
    pieces = {a.tobytes() for _, a in negs}
    assert len(neg_audio) == 30 * SR
    assert all(neg_audio[i * SR:(i + 1) * SR].tobytes() in pieces for i in range(30))
    # >= 2 s of negative audio before the first keyword, between keywords and after the last
    starts = [0] + [e.end for e in s.events]
    ends = [e.start for e in s.events] + [len(s.audio)]
    assert min(b - a for a, b in zip(starts, ends, strict=True)) >= 2 * SR
    # sources: every clip, and durations
    assert sorted(s.sources) == sorted([k for k, _ in negs] + [k for k, _, _ in kws])
    assert s.duration_s == pytest.approx(34.0)
    assert s.negative_seconds == pytest.approx(30.0)
    assert s.negative_hours == pytest.approx(30.0 / 3600)
    assert np.allclose(s.keyword_times, [[e.start / SR, e.end / SR] for e in s.events])
    assert st.shared_sources(s, ["kw/2.wav", "other.wav", "neg/7.wav"]) == ["kw/2.wav",
                                                                          "neg/7.wav"]
    # segments: every clip in stream order, back to back, keyed like the sources
    assert [k for _, _, k in s.segments] and sorted(k for _, _, k in s.segments) == \
        sorted(s.sources)
    assert s.segments[0][0] == 0 and s.segments[-1][1] == len(s.audio)
    assert all(a[1] == b[0] for a, b in zip(s.segments, s.segments[1:], strict=False))
    for a, b, k in s.segments:
        src = by_key.get(k)
        if src is None:
            src = dict(negs)[k]
        assert np.array_equal(s.audio[a:b], src)


def test_build_stream_of_negatives_only():
    negs, _ = _corpus()
    s = st.build_stream(negs, [], sample_rate=SR, seed=1)
    assert s.events == [] and len(s.segments) == len(negs)
    assert s.negative_seconds == pytest.approx(s.duration_s)
    with pytest.raises(ValueError, match="at least one clip"):
        st.build_stream([], [])


def test_build_stream_is_deterministic_per_seed():
    negs, kws = _corpus()
    a = st.build_stream(negs, kws, seed=1)
    b = st.build_stream(negs, kws, seed=1)
    c = st.build_stream(negs, kws, seed=2)
    assert np.array_equal(a.audio, b.audio) and a.events == b.events and a.sources == b.sources
    assert not np.array_equal(a.audio, c.audio)
    assert [e.start for e in a.events] != [e.start for e in c.events]


def test_build_stream_spacing_holds_for_many_seeds_and_tight_budgets():
    rng = np.random.default_rng(5)
    negs = [(f"n{i}", np.zeros(int(rng.integers(1000, 40000)), np.float32)) for i in range(40)]
    kws = [(f"k{i}", np.ones(8000, np.float32), 1 + i % 3) for i in range(6)]
    for seed in range(30):
        gap_s = [0.5, 2.0, 5.0][seed % 3]
        try:
            s = st.build_stream(negs, kws, seed=seed, min_gap_s=gap_s)
        except ValueError:
            assert gap_s == 5.0  # 7 gaps of 5 s > the ~43 s of negatives
            continue
        gaps = np.diff(np.concatenate([[0], np.ravel([[e.start, e.end] for e in s.events]),
                                       [len(s.audio)]]))[::2]
        assert gaps.min() >= gap_s * SR
        assert sorted(e.label for e in s.events) == [1, 1, 2, 2, 3, 3]


def test_build_stream_too_short_names_the_numbers():
    negs, kws = _corpus(n_neg=10)
    with pytest.raises(ValueError, match=r"need at least 12\.0 s .* have 10\.0 s in 10 clips"):
        st.build_stream(negs, kws, min_gap_s=2.0)
    st.build_stream(negs, kws, min_gap_s=1.0)  # 6 gaps of 1 s: fits between 1 s clips
    # 9 s of gaps "fit" in 10 s, but not between 1 s clips: every gap takes 2 whole clips
    with pytest.raises(ValueError, match="more when clips are long"):
        st.build_stream(negs, kws, min_gap_s=1.5)
    with pytest.raises(ValueError):
        st.build_stream(negs, [("bad", np.zeros((2, 3)), 1)])


def test_build_stream_with_noise_at_snr():
    negs, kws = _corpus()
    clean = st.build_stream(negs, kws, seed=4)
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 1, 3 * SR).astype(np.float32)
    noisy = st.build_stream(negs, kws, seed=4, noise=("bg.wav", noise), snr_db=10.0)
    assert noisy.events == clean.events and noisy.sources == clean.sources + ["bg.wav"]
    added = noisy.audio.astype(np.float64) - clean.audio
    p_kw = np.mean(np.concatenate([a for _, a, _ in kws]).astype(np.float64) ** 2)
    assert 10 * np.log10(p_kw / np.mean(added ** 2)) == pytest.approx(10.0, abs=0.05)
    with pytest.raises(ValueError):
        st.build_stream(negs, kws, noise=("bg.wav", noise))


def test_stream_save_and_load(tmp_path):
    negs, kws = _corpus(n_kw=3)
    s = st.build_stream(negs, kws, seed=0)
    wav = s.save(tmp_path / "eval_stream")
    assert wav.name == "eval_stream.wav" and wav.with_suffix(".json").is_file()
    back = st.Stream.load(wav)
    assert back.events == s.events and back.sources == s.sources and back.sample_rate == SR
    assert back.segments == s.segments
    assert np.max(np.abs(back.audio - s.audio)) <= 1 / 32768 + 1e-7  # 16-bit PCM
    # the CSV sidecar is a keyword-times file
    times = st.load_keyword_times(wav.with_suffix(".csv"))
    assert np.allclose([t[:2] for t in times], s.keyword_times, atol=1e-6)
    wav.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="does not exist"):
        st.Stream.load(wav)


def test_keyword_event_and_stream_validation():
    with pytest.raises(ValueError):
        st.KeywordEvent(10, 10)
    with pytest.raises(ValueError):
        st.KeywordEvent(-1, 10)
    with pytest.raises(ValueError, match="ends after"):
        st.Stream(np.zeros(100), SR, [st.KeywordEvent(50, 101)])
    s = st.Stream(np.zeros(SR * 10), SR, [st.KeywordEvent(SR * 5, SR * 7, 1, "b"),
                                          st.KeywordEvent(SR, SR * 3, 1, "a"),
                                          st.KeywordEvent(SR * 2, SR * 4, 2, "c")])
    assert [e.source for e in s.events] == ["a", "c", "b"]  # sorted by start
    assert s.negative_seconds == pytest.approx(5.0)  # 1..4 and 5..7 s covered, overlap once


# --- keyword-time files -------------------------------------------------------------------------


def test_load_keyword_times_good_lines(tmp_path):
    p = tmp_path / "times.txt"
    p.write_text("# my recording\n\n1.5,2.25,3\n 4.0 , 5.0\n10.0\n0.2\n7.0\t7.5\t2\n")
    assert st.load_keyword_times(p) == [(1.5, 2.25, 3), (4.0, 5.0, 1), (9.5, 10.5, 1),
                                        (0.0, 0.7, 1), (7.0, 7.5, 2)]
    assert st.load_keyword_times(p, default_duration_s=0.4, default_label=5)[2] == \
        pytest.approx((9.8, 10.2, 5))
    # a centre near the end is cut at the recording's end
    assert st.load_keyword_times(p, duration_s=10.2)[2] == pytest.approx((9.5, 10.2, 1))


@pytest.mark.parametrize("bad, why", [
    ("1.0,abc", "numeric"),
    ("1,2,3,4", "4 fields"),
    ("-0.5,1.0", "negative time"),
    ("2.0,1.0", "must be after"),
    ("1.0,2.0,-1", "negative label"),
    ("1.0,2.0,1.5", "integer label"),
    ("nan", "finite"),
    ("1.0,,2", "numeric"),
    ("30.0,31.0", "beyond"),
])
def test_load_keyword_times_malformed_lines(tmp_path, bad, why):
    p = tmp_path / "times.csv"
    p.write_text(f"# header\n1.0,2.0\n{bad}\n")
    with pytest.raises(ValueError, match=f"line 3 .*{why}"):
        st.load_keyword_times(p, duration_s=20.0)


def test_user_stream_from_file_and_from_times(tmp_path):
    audio = np.zeros(20 * SR, np.float32)
    p = tmp_path / "times.txt"
    p.write_text("1.0,2.0\n10.0\n")
    s = st.user_stream(audio, p, sample_rate=SR, source="rec.wav")
    assert [(e.start, e.end, e.label, e.source) for e in s.events] == \
        [(SR, 2 * SR, 1, "rec.wav"), (int(9.5 * SR), int(10.5 * SR), 1, "rec.wav")]
    assert s.sources == ["rec.wav"] and s.negative_seconds == pytest.approx(18.0)
    s2 = st.user_stream(audio, [(1.0, 2.0), 10.0, (3.0, 4.0, 2)], sample_rate=SR)
    assert [(e.start, e.end, e.label) for e in s2.events] == \
        [(SR, 2 * SR, 1), (3 * SR, 4 * SR, 2), (int(9.5 * SR), int(10.5 * SR), 1)]
    p.write_text("1.0,2.0\n25.0\n")
    with pytest.raises(ValueError, match="line 2"):
        st.user_stream(audio, p, sample_rate=SR)
    with pytest.raises(ValueError, match="keyword time 1"):
        st.user_stream(audio, [(1.0, 2.0), (5.0, 21.0)], sample_rate=SR)
    # an audio file works too
    import soundfile as sf

    sf.write(tmp_path / "rec.wav", audio, SR)
    p.write_text("1.0,2.0\n")
    s3 = st.user_stream(tmp_path / "rec.wav", p, sample_rate=SR)
    assert len(s3.audio) == len(audio) and s3.sources == [str(tmp_path / "rec.wav")]


# --- detection rule and matching ----------------------------------------------------------------


def _fire_frame_by_frame(s, threshold, refractory):
    """The refractory rule one frame at a time (what evaluate.fire skips ahead over)."""
    fires, last = [], None
    for t in np.flatnonzero(s >= threshold):
        if last is None or t - last > refractory:
            fires.append(int(t))
            last = int(t)
    return fires


def test_fire_equals_the_frame_by_frame_rule():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 600))
        post = rng.random(n) ** float(rng.uniform(0.5, 6))
        if trial % 7 == 0:
            post[rng.integers(0, n, 5)] = np.nan
        k, refr = int(rng.integers(1, 15)), int(rng.integers(0, 150))
        s = ev.smooth(post, k)
        thrs = [rng.uniform(0, 1), 0.0, 1.0, float(np.nanmax(s)) if np.any(np.isfinite(s))
                else 0.5, float(s[rng.integers(n)])]
        for thr in thrs:
            assert ev.fire(s, thr, refr).tolist() == _fire_frame_by_frame(s, thr, refr), \
                (trial, thr)


def test_frame_of_sample_and_windows():
    assert st.frame_of_sample(0, HOP) == 0 and st.frame_of_sample(159, HOP) == 0
    assert st.frame_of_sample(160, HOP) == 1
    assert st.frame_of_sample(np.array([0, 320, 479]), HOP).tolist() == [0, 2, 2]
    ev_ = [st.KeywordEvent(1000 * HOP, 1100 * HOP), st.KeywordEvent(5 * HOP + 3, 9 * HOP + 1)]
    lo, hi = st.event_windows(ev_, HOP)
    assert lo.tolist() == [1000, 5] and hi.tolist() == [1199, 109]
    lo, hi = st.event_windows(ev_, HOP, tolerance_frames_before=10, tolerance_frames_after=0)
    assert lo.tolist() == [990, 0] and hi.tolist() == [1099, 9]


def test_match_detections_rule():
    events = [st.KeywordEvent(1000 * HOP, 1100 * HOP), st.KeywordEvent(3000 * HOP, 3050 * HOP)]
    # windows [1000, 1199] and [3000, 3149]
    hits, n_fa, fa = st.match_detections([5, 1000, 1150, 1199, 1200, 3149, 3150], events, HOP)
    assert hits.tolist() == [True, True] and n_fa == 3 and fa.tolist() == [5, 1200, 3150]
    hits, n_fa, fa = st.match_detections([999, 3200], events, HOP)
    assert hits.tolist() == [False, False] and n_fa == 2
    hits, n_fa, _ = st.match_detections([999], events, HOP, tolerance_frames_before=1)
    assert hits.tolist() == [True, False] and n_fa == 0
    hits, n_fa, _ = st.match_detections([], events, HOP)
    assert hits.tolist() == [False, False] and n_fa == 0
    hits, n_fa, fa = st.match_detections([7], [], HOP)
    assert hits.size == 0 and n_fa == 1


def test_match_detections_overlapping_windows():
    # windows [100, 249] and [150, 299]: one detection hits one keyword, the earliest unhit
    events = [st.KeywordEvent(150 * HOP, 200 * HOP), st.KeywordEvent(100 * HOP, 150 * HOP)]
    hits, n_fa, _ = st.match_detections([200], events, HOP)
    assert hits.tolist() == [False, True] and n_fa == 0
    hits, n_fa, _ = st.match_detections([200, 240], events, HOP)
    assert hits.tolist() == [True, True] and n_fa == 0
    hits, n_fa, _ = st.match_detections([120, 130, 260, 300], events, HOP)
    assert hits.tolist() == [True, True] and n_fa == 1


# --- FA/h and FRR on a hand-made hour -----------------------------------------------------------

def _bump(post, b, length=20):
    # Rectangular posterior of 1s: with smoothing 10 the smoothed value first reaches 0.5 at
    # b + 4 and stays >= 0.5 up to b + length + 4.
    post[b:b + length] = 1.0


def _hour():
    """An hour of negative audio plus four 1 s keywords, with hand-placed posterior bumps."""
    T = 360_400  # 3604 s; 4 s of keywords -> exactly 1 h of negative audio
    post = np.zeros(T)
    events = [st.KeywordEvent(f * HOP, (f + 100) * HOP, 1, f"kw{f}")
              for f in (1000, 50_000, 200_000, 300_000)]
    _bump(post, 1090)       # fires at 1094: inside window [1000, 1199], hit
    _bump(post, 50_195)     # fires at 50_199: the last frame of the window, hit
    _bump(post, 200_196)    # fires at 200_200: one frame after the window, FA and a miss
    _bump(post, 300_010)    # fires at 300_014: hit ...
    _bump(post, 300_150)    # ... and again at 300_154, same window: neither hit nor FA
    _bump(post, 100_000)    # FA at 100_004
    _bump(post, 250_000, 250)  # FA at 250_004, 250_105, 250_206 (refractory 100)
    neg_hours = (T * HOP - sum(e.end - e.start for e in events)) / SR / 3600
    return post, events, neg_hours


def test_fa_per_hour_and_frr_by_hand():
    post, events, neg_hours = _hour()
    assert neg_hours == 1.0
    det = ev.detect(post, 0.5)
    assert det.tolist() == [1094, 50_199, 100_004, 200_200, 250_004, 250_105, 250_206,
                            300_014, 300_154]
    hits, n_fa, fa = st.match_detections(det, events, HOP)
    assert hits.tolist() == [True, True, False, True]
    assert fa.tolist() == [100_004, 200_200, 250_004, 250_105, 250_206] and n_fa == 5
    pts = st.stream_operating_points(post, events, HOP, neg_hours, thresholds=[0.5])
    assert pts["fa_per_hour"].tolist() == [5.0] and pts["frr"].tolist() == [0.25]
    assert pts["false_accepts"].tolist() == [5] and pts["misses"].tolist() == [1]
    # a longer refractory time merges the plateau's detections into one
    pts = st.stream_operating_points(post, events, HOP, neg_hours, [0.5], refractory=1000)
    assert pts["fa_per_hour"].tolist() == [3.0] and pts["frr"].tolist() == [0.25]
    # a longer tolerance makes the late detection a hit
    pts = st.stream_operating_points(post, events, HOP, neg_hours, [0.5],
                                     tolerance_frames_after=101)
    assert pts["fa_per_hour"].tolist() == [4.0] and pts["frr"].tolist() == [0.0]
    # at 0.6 the smoothed bumps cross one frame later: the window's last-frame hit turns into
    # a false accept (FA/h is not monotone in the threshold)
    pts = st.stream_operating_points(post, events, HOP, neg_hours, [0.6])
    assert pts["fa_per_hour"].tolist() == [6.0] and pts["frr"].tolist() == [0.5]


def test_default_sweep_on_the_hand_made_hour():
    post, events, neg_hours = _hour()
    pts = st.stream_operating_points(post, events, HOP, neg_hours)
    thr = pts["thresholds"]
    assert np.all(np.diff(thr) > 0) and 0.5 in thr and thr[-1] > 1.0
    assert pts["fa_per_hour"][-1] == 0 and pts["frr"][-1] == 1.0
    i = int(np.flatnonzero(thr == 0.5)[0])
    assert (pts["fa_per_hour"][i], pts["frr"][i]) == (5.0, 0.25)
    assert st.frr_at_fa_per_hour(pts, 5.0)[0] <= 0.25
    assert st.frr_at_fa_per_hour(pts, 0.0) == (1.0, 0.0, thr[-1])


def test_sweep_equals_detect_and_match_at_every_threshold():
    rng = np.random.default_rng(1)
    T = 12_000
    post = rng.random(T) ** 6
    events = []
    for f in range(500, T - 300, 700):
        post[f + 20:f + int(rng.integers(25, 90))] = rng.uniform(0.3, 1.0)
        events.append(st.KeywordEvent(f * HOP, (f + 60) * HOP))
    for refr in (0, 7, 100):
        pts = st.stream_operating_points(post, events, HOP, 0.05, refractory=refr)
        assert len(pts["thresholds"]) > 100
        for t, fa, frr in zip(pts["thresholds"], pts["fa_per_hour"], pts["frr"], strict=True):
            hits, n_fa, _ = st.match_detections(ev.detect(post, t, 10, refr), events, HOP)
            assert fa == n_fa / 0.05 and frr == np.mean(~hits)
        if refr == 0:  # without refractory time both rates are monotone in the threshold
            assert np.all(np.diff(pts["fa_per_hour"]) <= 0)
            assert np.all(np.diff(pts["frr"]) >= 0)
        assert pts["frr"][0] < 0.1  # the lowest threshold fires (almost) everywhere
        assert pts["fa_per_hour"][-1] == 0 and pts["frr"][-1] == 1


def test_frr_at_fa_per_hour_by_hand():
    pts = {"thresholds": np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
           "fa_per_hour": np.array([20.0, 4.0, 5.0, 1.0, 1.0, 0.0]),
           "frr": np.array([0.0, 0.1, 0.05, 0.3, 0.3, 1.0])}
    assert st.frr_at_fa_per_hour(pts, 5.0) == (0.05, 5.0, 0.3)  # the best admissible point
    assert st.frr_at_fa_per_hour(pts, 4.5) == (0.1, 4.0, 0.2)
    assert st.frr_at_fa_per_hour(pts, 1.0) == (0.3, 1.0, 0.4)  # tie: the lower threshold
    assert st.frr_at_fa_per_hour(pts, 100) == (0.0, 20.0, 0.1)
    pts["fa_per_hour"][-1] = 0.5
    with pytest.raises(ValueError, match="lowest: 0.5"):
        st.frr_at_fa_per_hour(pts, 0.1)


def test_sweep_on_one_hour_has_a_fine_grid():
    # An hour of frames with the default grid (no timing here: the machines are shared).
    rng = np.random.default_rng(2)
    post = rng.random(360_000) ** 4
    events = [st.KeywordEvent(f * HOP, (f + 80) * HOP) for f in range(300, 359_000, 600)]
    pts = st.stream_operating_points(post, events, HOP, 0.9)
    assert len(pts["thresholds"]) > 150
    assert pts["frr"][-1] == 1.0 and pts["fa_per_hour"][-1] == 0.0


# --- multi-class --------------------------------------------------------------------------------


def test_multiclass_rule():
    T, C = 5000, 4  # classes 2 and 3 are keywords
    post = np.zeros((T, C))
    post[:, 0] = 1.0  # e.g. _silence_, never a keyword
    events = [st.KeywordEvent(1000 * HOP, 1100 * HOP, 2, "a"),
              st.KeywordEvent(2000 * HOP, 2100 * HOP, 3, "b"),
              st.KeywordEvent(3000 * HOP, 3100 * HOP, 2, "c")]
    post[1050:1070, 2] = 1.0  # right class in a's window: hit
    post[2050:2070, 2] = 1.0  # wrong class in b's window: FA, b missed
    post[3050:3070, 2] = 1.0  # right class in c's window: hit ...
    post[3060:3080, 3] = 1.0  # ... and the wrong class there too: FA
    post[4000:4020, 3] = 1.0  # outside every window: FA
    det = st.multiclass_detections(post, [2, 3], 0.5)
    assert det == [(1054, 2), (2054, 2), (3054, 2), (3064, 3), (4004, 3)]
    assert [t for t, c in det if c == 2] == ev.detect(post[:, 2], 0.5).tolist()
    hits, n_fa, fa = st.match_multiclass_detections(det, events, HOP)
    assert hits.tolist() == [True, False, True] and n_fa == 3
    assert fa == [(2054, 2), (3064, 3), (4004, 3)]
    pts = st.multiclass_operating_points(post, events, HOP, 2.0, [2, 3], thresholds=[0.5])
    assert pts["fa_per_hour"].tolist() == [1.5] and pts["frr"].tolist() == [pytest.approx(1 / 3)]
    assert pts["keyword_classes"] == [2, 3]
    full = st.multiclass_operating_points(post, events, HOP, 2.0, [2, 3])
    assert full["fa_per_hour"][-1] == 0 and full["frr"][-1] == 1
    for t, fa_h, frr in zip(full["thresholds"], full["fa_per_hour"], full["frr"], strict=True):
        h, n, _ = st.match_multiclass_detections(st.multiclass_detections(post, [2, 3], t),
                                                 events, HOP)
        assert fa_h == n / 2.0 and frr == np.mean(~h)
    with pytest.raises(ValueError, match=r"labels \[2\]"):
        st.multiclass_operating_points(post, events, HOP, 2.0, [3])


def test_offset_threshold():
    assert ev.offset_threshold(0.3, 0.0) == 0.3            # bit for bit, not 1 - (1 - 0.3)
    assert ev.offset_threshold(0.99, 1.0) == pytest.approx(0.999, abs=1e-15)
    assert ev.offset_threshold(0.999, -1.0) == pytest.approx(0.99, abs=1e-15)
    assert ev.offset_threshold(1.0, 2.0) == 1.0
    assert ev.offset_threshold(1.5, -1.0) > 1.0            # never fires, whatever the offset


def _two_confidences():
    """Keyword classes 2 and 3 with one event each; on negative audio class 2 bumps to 0.9999,
    class 3 only to 0.99 (each bump 30 frames, five of each)."""
    T = 20000
    post = np.zeros((T, 4))
    post[:, 0] = 1.0
    for i in range(5):
        post[3000 + 2000 * i:3030 + 2000 * i, 2] = 0.9999
        post[4000 + 2000 * i:4030 + 2000 * i, 3] = 0.99
    events = [st.KeywordEvent(500 * HOP, 600 * HOP, 2, "a"),
              st.KeywordEvent(1500 * HOP, 1600 * HOP, 3, "b")]
    post[550:580, 2] = 0.99995      # the keywords: class 2 above its false accepts,
    post[1550:1580, 3] = 0.995      # class 3 above its own, below class 2's
    return post, events


def test_class_offsets_from_the_negative_frames():
    post, events = _two_confidences()
    off = st.estimate_class_offsets(post, events, HOP, [2, 3], quantile=1e-3)
    assert off == {2: 1.0, 3: -1.0}       # 4 and 2 nines, around their mean
    # One shared threshold cannot take both keywords without a false accept ...
    shared = st.multiclass_operating_points(post, events, HOP, 1.0, [2, 3])
    assert shared["frr"][shared["fa_per_hour"] == 0].min() == 0.5
    # ... the offsets can, and every point is the per-class rule at the offset thresholds.
    pts = st.multiclass_operating_points(post, events, HOP, 1.0, [2, 3], class_offsets=off)
    assert pts["class_offsets"] == off
    assert pts["frr"][pts["fa_per_hour"] == 0].min() == 0.0
    for level, n_fa, miss in zip(pts["thresholds"], pts["false_accepts"], pts["misses"],
                                 strict=True):
        thr = {c: ev.offset_threshold(level, o) for c, o in off.items()}
        h, n, _ = st.match_multiclass_detections(st.multiclass_detections(post, [2, 3], thr),
                                                 events, HOP)
        assert (n_fa, miss) == (n, int((~h).sum()))
    # Zero offsets are the shared threshold, bit for bit.
    zero = st.multiclass_operating_points(post, events, HOP, 1.0, [2, 3],
                                          class_offsets={2: 0.0, 3: 0.0})
    for key in ("thresholds", "false_accepts", "misses"):
        assert np.array_equal(zero[key], shared[key])
    with pytest.raises(ValueError, match=r"no threshold for keyword classes \[3\]"):
        st.multiclass_detections(post, [2, 3], {2: 0.5})
    with pytest.raises(ValueError, match=r"no offset for keyword classes \[2\]"):
        st.multiclass_operating_points(post, events, HOP, 1.0, [2, 3], class_offsets={3: 0.0})
    with pytest.raises(ValueError, match="quantile"):
        st.estimate_class_offsets(post, events, HOP, [2, 3], quantile=0.0)


# --- running a model over a stream -------------------------------------------------------------


@pytest.mark.parametrize("integer", [False, True], ids=["float-front-end", "integer-front-end"])
def test_stream_posteriors_chunked_equals_whole(integer):
    cfg = FeatureConfig(context=6, stride=3, smooth=4, integer=integer)
    rng = np.random.default_rng(0)
    shape = [cfg.n_inputs, 8, 3]
    ws = [rng.normal(0, 1 / np.sqrt(a), (a, b)) for a, b in zip(shape[:-1], shape[1:],
                                                                 strict=True)]
    bs = [rng.normal(0, 0.1, b) for b in shape[1:]]
    fracs = quantize.calibrate_out_fracs(ws, bs, rng.normal(0, 1, (100, cfg.n_inputs)))
    m = modelfile.from_float(ws, bs, bits=8, out_fracs=fracs, features=cfg,
                             norm_mean=np.full(cfg.n_mels, -5.0), norm_std=np.full(cfg.n_mels, 3.0),
                             labels=["_other_", "kw", "x"], task="wake_word", in_frac=11)
    audio = rng.normal(0, 0.1, int(2.5 * SR) + 3 * HOP).astype(np.float32)  # 251 frames
    stream = st.Stream(audio, SR, [st.KeywordEvent(SR, 2 * SR)])
    norm = ev.model_normalizer(m)
    feats = lfbe(audio, cfg)
    if integer:
        # The golden model's input is the gateware front end's, bit for bit.
        codes = IntFrontEnd.from_model(m).frames(pcm_from_float(audio))
        assert np.array_equal(quantize.features_to_int(norm.apply(feats), m.in_frac), codes)
    for mode in ("float", "golden"):
        whole = ev.posteriors(ev.run_windows(m, stack_windows(norm.apply(feats), cfg), mode))
        for chunk in (1, 37, 64, 100, 10_000):
            got = st.stream_posteriors(m, stream, mode, chunk_frames=chunk)
            assert np.array_equal(got, whole), (mode, chunk)
    assert np.array_equal(st.stream_posteriors(m, stream, "float")[:, 1],
                          ev.stream_scores(m, [feats], "float")[0])
    with pytest.raises(ValueError, match="8000 Hz"):
        st.stream_posteriors(m, st.Stream(audio, 8000), "float")


@pytest.mark.parametrize("integer", [False, True], ids=["float-front-end", "integer-front-end"])
def test_a_cnn_streams_new_positions_only_with_the_windows_numbers(integer, monkeypatch):
    """In golden mode a convolutional model's stream is computed by :mod:`kwshw.streaming`
    (each convolution's new position per hop), never window by window, and every chunking
    gives the window definition's posteriors bit for bit; other modes keep the windows."""
    cfg = FeatureConfig(context=9, stride=3, smooth=4, integer=integer)
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.1, int(2.5 * SR) + 3 * HOP).astype(np.float32)
    feats = lfbe(audio, cfg)
    m = random_model([6], 4, n_out=3, features=cfg, calib=feats, convs=[(3, 1, 5), (3, 2, 4)],
                     seed=1)
    x = stack_windows(ev.model_normalizer(m).apply(feats), cfg)
    whole = {mode: ev.posteriors(ev.run_windows(m, x, mode)) for mode in ("golden", "float")}
    streamed, windowed = [], []
    monkeypatch.setattr(ev.streaming, "stream_network", _spy(ev.streaming.stream_network,
                                                             streamed))
    monkeypatch.setattr(ev, "run_windows", _spy(ev.run_windows, windowed))
    stream = st.Stream(audio, SR, [st.KeywordEvent(SR, 2 * SR)])
    for chunk in (1, 37, 64, 100, 10_000):
        for mode in ("golden", "float"):
            got = st.stream_posteriors(m, stream, mode, chunk_frames=chunk)
            assert np.array_equal(got, whole[mode]), (mode, chunk)
    chunks = sum(-(-len(feats) // (-(-c // 64) * 64)) for c in (1, 37, 64, 100, 10_000))
    assert (len(streamed), len(windowed)) == (chunks, chunks)
    # Clips, each from reset (the wake-word evaluation): also new positions only.
    clips = ev.stream_scores(m, [feats[:50], feats], "golden", keyword=2)
    assert np.array_equal(clips[1], whole["golden"][:, 2])
    assert np.array_equal(clips[0], whole["golden"][:50, 2])
    assert (len(streamed), len(windowed)) == (chunks + 2, chunks)
    assert len(whole["golden"]) == len(feats) and not np.array_equal(whole["golden"],
                                                                     whole["float"])


def _spy(fn, calls: list):
    def wrapped(*args, **kwargs):
        calls.append(args)
        return fn(*args, **kwargs)
    return wrapped


# --- plot ---------------------------------------------------------------------------------------


def test_plot_stream_det_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    post, events, neg_hours = _hour()
    pts = st.stream_operating_points(post, events, HOP, neg_hours)
    path = st.plot_stream_det({"golden": (pts["fa_per_hour"], pts["frr"]),
                               "float": ([0.0, 2.0, 50.0], [0.5, 0.1, 0.0])},
                              tmp_path / "stream_det.png", "hand-made hour")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
