"""Where a 12-class model's misses in the held-out stream come from, at fixed false accepts per
hour.

``kwshw eval --model M --stream`` reports one FRR per false-accept rate. This script takes the
same stream (:func:`kwshw.stream_eval.held_out_stream`: the held-back ``validation+test``
clips, seed 0), the same per-hop posteriors (:func:`kwshw.streams.stream_posteriors`), the
same threshold sweep and operating points (:func:`kwshw.streams.multiclass_operating_points`,
:func:`kwshw.streams.frr_at_fa_per_hour`) and the same detection rule and matching
(:func:`kwshw.streams.multiclass_detections`, :func:`kwshw.streams.match_multiclass_detections`:
smoothing, threshold, refractory time, tolerance windows), with one threshold shared by every
keyword class (a model's per-class offsets are not applied here; ``bench/class_thresholds.py``
compares the shared and the per-class rule), and sorts every keyword occurrence
at each operating point into

``a_detected``
    a detection of its own class inside its tolerance window (a hit);
``b_wrong_keyword``
    no hit, but a detection of another keyword class inside its window (the confusion table
    says which class fired);
``c_suppressed``
    no detection at all in its window although the *per-hop* posterior of its class reaches
    the threshold at some hop of the window: the rule hides it, either the moving average
    (``smoothing``: the smoothed score stays below the threshold) or the refractory time of
    an earlier detection of the same class (``refractory``);
``d_below_threshold``
    the posterior of its class never reaches the threshold in its window. For these the
    script reports how far below the best smoothed score stays and whether the model
    classifies the *clip itself* right (one window ending at the clip's last frame, exactly
    as ``kwshw eval`` on clips) and what the stream's window ending at the clip's last sample
    says, i.e. whether the miss is the stream's alignment / context or the model.

False accepts are attributed to the clip of the stream that fills most of the model's input
window at the detection (general speech: the held-back wake-word phrases; ``_unknown_``
words; ``_silence_`` noise; or a keyword clip, of another class or of the same class after its
tolerance window). Per-keyword FRR is reported at every operating point::

    python bench/stream_misses.py --model /tmp/mainout/model-cnn-4b.kwm
    python bench/stream_misses.py --model M --fa-per-hour 1,5 --out misses.json

Needs ``$KWSHW_DATA`` (or ``--data``); runs one mode of the model (``golden`` by default, the
integers the accelerator computes, the first row of ``kwshw eval --stream``). The JSON
(``--out``) holds every number of the summary plus one record per keyword occurrence.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from common import Timer, command_line, machine_info, versions, write_json

from kwshw.corpora import general_speech_phrases, open_dataset
from kwshw.datasets import extract
from kwshw.evaluate import (
    DEFAULT_REFRACTORY,
    DEFAULT_SMOOTHING,
    keyword_classes,
    model_normalizer,
    posteriors,
    run_windows,
    smooth,
)
from kwshw.modelfile import Model, load
from kwshw.stream_eval import held_out_stream
from kwshw.streams import (
    Stream,
    event_windows,
    frr_at_fa_per_hour,
    match_multiclass_detections,
    multiclass_detections,
    multiclass_operating_points,
    stream_posteriors,
)

#: Categories of a keyword occurrence, in the order they are tested.
CATEGORIES = ("a_detected", "b_wrong_keyword", "c_suppressed", "d_below_threshold")
#: Edges of the histogram of the best smoothed score of a ``d`` occurrence over the threshold.
RATIO_EDGES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


# ---------------------------------------------------------------------------------------------
# What each clip of the stream is
# ---------------------------------------------------------------------------------------------

def clip_kinds(data: str | os.PathLike, split: str) -> tuple[dict[str, str], list]:
    """Kind of every clip the held-out stream can hold, by its key, and the keyword items.

    The composition is that of :func:`kwshw.stream_eval.held_out_stream`: Speech Commands
    clips of ``split`` (``_unknown_``, ``_silence_`` and the ten keywords) and every clip of
    the held-back wake-word phrases (general speech).

    Returns
    -------
    (dict, list)
        ``{key: kind}`` with kinds ``"keyword:<word>"``, ``"_unknown_:<word>"``,
        ``"_silence_"``, ``"general_speech:<phrase>"``; and the keyword items (for the clip
        classification).
    """
    ds = open_dataset("speech_commands", data, split)
    kw = set(keyword_classes(ds.labels))
    kinds: dict[str, str] = {}
    kw_items = []
    for it in ds:
        label = ds.labels[it.label_index]
        if it.label_index in kw:
            kinds[it.key] = f"keyword:{label}"
            kw_items.append(it)
        elif label == "_unknown_":
            # The archive's _unknown_ files are named <word>_<speaker>_nohash_<n>.wav.wav.
            kinds[it.key] = f"_unknown_:{Path(it.path).name.split('_', 1)[0]}"
        else:
            kinds[it.key] = label
    _, held = general_speech_phrases(data)
    if held:
        ww = open_dataset("wake_word", data, "all", keyword=held[0], general_negatives=False)
        for it in ww:
            phrase = Path(it.path).parent.name
            if phrase in held:
                kinds[it.key] = f"general_speech:{phrase}"
    return kinds, kw_items


def kind_group(kind: str) -> str:
    """The coarse group of a clip kind (``general_speech``, ``_unknown_``, ...)."""
    return kind.split(":", 1)[0]


# ---------------------------------------------------------------------------------------------
# The model on the keyword clips themselves
# ---------------------------------------------------------------------------------------------

def clip_predictions(model: Model, items: list, mode: str) -> dict[str, dict]:
    """The clip-level decision of every keyword clip, as ``kwshw eval`` makes it on clips.

    One window per clip (the one ending at the clip's last frame, the Speech Commands window
    rule), :func:`kwshw.evaluate.run_windows` in ``mode``.

    Returns
    -------
    dict
        ``{key: {"pred": class, "p_true": posterior of the true class, "p_pred": ...}}``.
    """
    fs = extract(items, model.features, cache=True, on_error="skip", progress=False)
    x, y = fs.windows(model_normalizer(model))
    post = posteriors(run_windows(model, x, mode))
    out = {}
    for e, c in enumerate(fs.example_clip):
        key = fs.items[int(fs.item_index[int(c)])].key
        pred = int(post[e].argmax())
        out[key] = {"pred": pred, "p_true": float(post[e, int(y[e])]),
                    "p_pred": float(post[e, pred])}
    return out


# ---------------------------------------------------------------------------------------------
# One operating point
# ---------------------------------------------------------------------------------------------

def _segment_finder(stream: Stream):
    """A function ``(lo, hi) -> key`` of the spliced clip overlapping samples ``[lo, hi)``
    most."""
    seg = stream.segments
    starts = np.array([s for s, _, _ in seg], np.int64)

    def find(lo: int, hi: int) -> str:
        i = max(0, int(np.searchsorted(starts, lo, side="right")) - 1)
        best, key = -1, ""
        while i < len(seg) and seg[i][0] < hi:
            ov = min(hi, seg[i][1]) - max(lo, seg[i][0])
            if ov > best:
                best, key = ov, seg[i][2]
            i += 1
        return key

    return find


def analyse_threshold(model: Model, stream: Stream, post: np.ndarray, threshold: float,
                      clips: dict[str, dict], kinds: dict[str, str], *, smoothing: int,
                      refractory: int) -> dict:
    """Every keyword occurrence and every false accept of the detector at ``threshold``.

    Parameters
    ----------
    model : Model
    stream : Stream
    post : numpy.ndarray
        ``(T, C)`` posteriors of the stream (:func:`kwshw.streams.stream_posteriors`).
    threshold : float
        The detection threshold.
    clips : dict
        :func:`clip_predictions` of the keyword clips.
    kinds : dict
        :func:`clip_kinds` of the stream's clips.
    smoothing, refractory : int
        The detection rule (frames).

    Returns
    -------
    dict
        ``events`` (one record each), ``false_accepts`` (one record each), and the
        aggregates: ``counts``, ``fractions``, ``per_keyword``, ``confusion``,
        ``suppressed_by``, ``below_threshold``, ``false_accepts_by``.
    """
    labels = list(model.labels)
    classes = keyword_classes(labels)
    cfg = model.features
    hop = cfg.hop_length
    events = stream.events
    dets = multiclass_detections(post, classes, threshold, smoothing, refractory)
    hits, n_fa, fa = match_multiclass_detections(dets, events, hop)
    lo, hi = event_windows(events, hop)
    d = np.asarray(dets, np.int64).reshape(-1, 2)
    sm = {c: smooth(post[:, c], smoothing) for c in classes}
    recs = []
    for i, ev in enumerate(events):
        c, a, b = ev.label, int(lo[i]), int(hi[i]) + 1
        inside = d[(d[:, 0] >= a) & (d[:, 0] < b)]
        wrong = [(int(t), int(k)) for t, k in inside if k != c]
        raw, s = post[a:b, c], sm[c][a:b]
        before = d[(d[:, 1] == c) & (d[:, 0] < a)]
        last_own = int(before[-1, 0]) if len(before) else None
        end_frame = (ev.end - 1) // hop
        # The stream's window whose newest frame ends at or before the clip's last sample:
        # the stream's counterpart of the clip-level window.
        aligned = max(0, (ev.end - cfg.win_length) // hop)
        r = {"source": ev.source, "label": labels[c], "start_s": ev.start / stream.sample_rate,
             "window_frames": [a, b - 1], "raw_max": float(raw.max()),
             "smoothed_max": float(s.max()),
             "smoothed_peak_after_end": int(a + int(s.argmax()) - end_frame),
             "fired_wrong": [labels[k] for _, k in wrong],
             "stream_aligned_pred": labels[int(post[aligned].argmax())],
             "stream_aligned_p_true": float(post[aligned, c])}
        cl = clips.get(ev.source)
        if cl is not None:
            r.update(clip_pred=labels[cl["pred"]], clip_correct=cl["pred"] == c,
                     clip_p_true=cl["p_true"])
        r.update(_category(bool(hits[i]), [labels[k] for _, k in wrong], r, threshold,
                           first_above=a + int(np.argmax(s >= threshold)),
                           last_own=last_own, refractory=refractory))
        recs.append(r)
    fas = _false_accepts(stream, fa, labels, kinds, lo, hi, cfg)
    out = _aggregate(recs, labels, classes, threshold)
    out["false_accepts_by"] = _fa_tables(fas)
    out["n_false_accepts"] = n_fa
    out["frr"] = float(np.mean(~hits)) if len(events) else float("nan")
    out["false_accepts"] = fas
    out["events"] = recs
    return out


def _category(hit: bool, wrong: list[str], r: dict, threshold: float, *, first_above: int,
              last_own: int | None, refractory: int) -> dict:
    """The category of one keyword occurrence (:data:`CATEGORIES`) and its detail: the
    keyword that fired instead (b), or what hid a posterior above the threshold (c)."""
    if hit:
        return {"category": "a_detected"}
    if wrong:
        return {"category": "b_wrong_keyword", "fired": wrong[0]}
    if r["raw_max"] < threshold:
        return {"category": "d_below_threshold"}
    if r["smoothed_max"] < threshold:
        return {"category": "c_suppressed", "suppressed_by": "smoothing"}
    if last_own is not None and first_above - last_own <= refractory:
        return {"category": "c_suppressed", "suppressed_by": "refractory",
                "refractory_from_frame": last_own}
    return {"category": "c_suppressed", "suppressed_by": "other"}


def _false_accepts(stream: Stream, fa: list[tuple[int, int]], labels: list[str],
                   kinds: dict[str, str], lo: np.ndarray, hi: np.ndarray, cfg) -> list[dict]:
    """One record per false accept: the class that fired and what it fired on."""
    find = _segment_finder(stream)
    ev_by_source = {e.source: e for e in stream.events}
    out = []
    for t, c in fa:
        a = max(0, (t - cfg.span + 1) * cfg.hop_length)
        key = find(a, t * cfg.hop_length + cfg.win_length)
        kind = kinds.get(key, "unknown")
        if key in ev_by_source:
            same = ev_by_source[key].label == c
            kind = ("keyword_same_class:" if same else "keyword_other_class:") \
                + labels[ev_by_source[key].label]
        in_window = bool(np.any((lo <= t) & (t <= hi)))
        out.append({"frame": int(t), "time_s": t * cfg.hop_length / stream.sample_rate,
                    "fired": labels[c], "on": kind, "on_group": kind_group(kind),
                    "clip": key, "in_keyword_window": in_window})
    return out


def _fa_tables(fas: list[dict]) -> dict:
    return {"fired": dict(Counter(f["fired"] for f in fas).most_common()),
            "on_group": dict(Counter(f["on_group"] for f in fas).most_common()),
            "on": dict(Counter(f["on"] for f in fas).most_common()),
            "fired_on_group": dict(Counter(f"{f['fired']} <- {f['on_group']}"
                                           for f in fas).most_common())}


def _quantiles(v) -> dict:
    v = np.asarray(v, np.float64)
    if v.size == 0:
        return {}
    qs = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
    return {f"q{int(q * 100)}": float(np.quantile(v, q)) for q in qs} | {"mean": float(v.mean())}


def nines(p) -> np.ndarray:
    """``-log10(1 - p)``: the number of nines of a posterior (0.999 -> 3). The operating
    points of an over-confident model sit at 0.9997 and above, where ratios to the threshold
    say nothing; nines keep the distances readable. Capped at 16 (float64)."""
    return -np.log10(np.maximum(1.0 - np.asarray(p, np.float64), 1e-16))


def _aggregate(recs: list[dict], labels: list[str], classes: list[int],
               threshold: float) -> dict:
    n = len(recs)
    counts = Counter(r["category"] for r in recs)
    per_kw = {}
    for c in classes:
        mine = [r for r in recs if r["label"] == labels[c]]
        k = Counter(r["category"] for r in mine)
        per_kw[labels[c]] = {"n": len(mine),
                             "frr": 1 - k["a_detected"] / len(mine) if mine else float("nan"),
                             **{cat: k[cat] for cat in CATEGORIES}}
    conf: dict[str, dict[str, int]] = {}
    for r in recs:
        if r["category"] == "b_wrong_keyword":
            row = conf.setdefault(r["label"], {})
            row[r["fired"]] = row.get(r["fired"], 0) + 1
    d = [r for r in recs if r["category"] == "d_below_threshold"]
    ratio = np.array([r["smoothed_max"] / threshold for r in d])
    hist = np.histogram(np.clip(ratio, 0, 1 - 1e-12), bins=RATIO_EDGES)[0] if d else []
    clip_known = [r for r in d if "clip_correct" in r]
    all_known = [r for r in recs if "clip_correct" in r]

    def clip_acc(rs):
        return float(np.mean([r["clip_correct"] for r in rs])) if rs else float("nan")

    missed = [r for r in recs if r["category"] != "a_detected"]
    below = {
        "n": len(d),
        "smoothed_max_over_threshold": _quantiles(ratio),
        "threshold_minus_smoothed_max": _quantiles([threshold - r["smoothed_max"] for r in d]),
        "threshold_nines": float(nines(threshold)),
        "smoothed_max_nines": _quantiles(nines([r["smoothed_max"] for r in d])),
        "raw_max_over_threshold": _quantiles([r["raw_max"] / threshold for r in d]),
        "ratio_histogram": {"edges": list(RATIO_EDGES), "counts": list(map(int, hist))},
        "clip_correct": int(sum(r["clip_correct"] for r in clip_known)),
        "clip_known": len(clip_known),
        "clip_correct_fraction": clip_acc(clip_known),
        "clip_pred": dict(Counter(r["clip_pred"] for r in clip_known).most_common()),
        "clip_p_true": _quantiles([r["clip_p_true"] for r in clip_known]),
        "stream_aligned_correct_fraction": float(np.mean(
            [r["stream_aligned_pred"] == r["label"] for r in d])) if d else float("nan"),
        "stream_aligned_pred": dict(Counter(r["stream_aligned_pred"] for r in d)
                                    .most_common()),
        # Right as clips, yet even the clip's own posterior stays below the threshold.
        "clip_correct_and_threshold_above_clip_p_true": int(sum(
            r["clip_correct"] and r["clip_p_true"] < threshold for r in clip_known)),
    }
    return {
        "threshold": threshold, "n_events": n,
        "counts": {cat: counts[cat] for cat in CATEGORIES},
        "fractions": {cat: counts[cat] / n if n else float("nan") for cat in CATEGORIES},
        "detected_with_extra_wrong_fire": sum(1 for r in recs if r["category"] == "a_detected"
                                              and r["fired_wrong"]),
        "per_keyword": per_kw,
        "confusion": conf,
        "suppressed_by": dict(Counter(r["suppressed_by"] for r in recs
                                      if r["category"] == "c_suppressed")),
        "below_threshold": below,
        "clip_accuracy": {"all_keywords": clip_acc(all_known),
                          **{cat: clip_acc([r for r in all_known if r["category"] == cat])
                             for cat in CATEGORIES},
                          "missed": clip_acc([r for r in missed if "clip_correct" in r])},
        "smoothed_max_nines_by_category": {
            cat: _quantiles(nines([r["smoothed_max"] for r in recs if r["category"] == cat]))
            for cat in CATEGORIES},
        "smoothed_peak_after_end_frames": _quantiles([r["smoothed_peak_after_end"]
                                                      for r in recs]),
    }


# ---------------------------------------------------------------------------------------------
# The whole analysis
# ---------------------------------------------------------------------------------------------

def _posteriors(model: Model, stream: Stream, mode: str, cache: Path | None,
                stream_id: tuple[str, int]) -> np.ndarray:
    """:func:`kwshw.streams.stream_posteriors`, kept in ``cache`` when given."""
    tag = np.array([model.sha256, mode, stream_id[0], str(stream_id[1]), str(len(stream.audio))])
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            if np.array_equal(f["tag"], tag):
                print(f"posteriors: read {cache}", flush=True)
                return f["post"]
    post = stream_posteriors(model, stream, mode)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, tag=tag, post=post)
    return post


def analyse(model: Model, data: str | os.PathLike, *, split: str = "validation+test",
            seed: int = 0, mode: str = "golden", fa_targets=(1.0, 5.0),
            smoothing: int = DEFAULT_SMOOTHING, refractory: int = DEFAULT_REFRACTORY,
            posteriors_cache: Path | None = None) -> dict:
    """Build the held-out stream, run the model once and analyse each operating point.

    ``posteriors_cache``: an ``.npz`` file keeping the stream's posteriors between runs (used
    only when it was written for the same model, mode, split, seed and stream length).

    Returns
    -------
    dict
        ``stream`` (its description), ``clip_accuracy`` of the keyword clips, and
        ``operating_points``: ``{target: analyse_threshold(...) plus "fa_per_hour"}``.
    """
    if model.task != "speech_commands":
        raise SystemExit(f"this analysis is for the 12-class task, the model is {model.task!r}")
    classes = keyword_classes(model.labels)
    stream, info = held_out_stream(model.task, data, split=split, seed=seed,
                                   keyword=model.labels[-1],
                                   sample_rate=model.features.sample_rate)
    kinds, kw_items = clip_kinds(data, split)
    print(f"stream: {info['hours']:.3f} h, {stream.negative_hours:.3f} h without keywords, "
          f"{len(stream.events)} keywords; running the model ({mode})", flush=True)
    post = _posteriors(model, stream, mode, posteriors_cache, (split, seed))
    # The curve of kwshw eval --stream (evaluate_stream) with one shared threshold: same call,
    # same default grid.
    points = multiclass_operating_points(post, stream.events, model.features.hop_length,
                                         stream.negative_hours, classes, smoothing=smoothing,
                                         refractory=refractory)
    used = {e.source for e in stream.events}
    clips = clip_predictions(model, [it for it in kw_items if it.key in used], mode)
    ops = {}
    for target in fa_targets:
        frr, fa_h, thr = frr_at_fa_per_hour(points, target)
        res = analyse_threshold(model, stream, post, thr, clips, kinds, smoothing=smoothing,
                                refractory=refractory)
        # The detections must be those of the sweep: the same count of missed keywords.
        missed = sum(r["category"] != "a_detected" for r in res["events"])
        if missed != round(frr * len(stream.events)):
            raise RuntimeError(f"{missed} keywords missed at threshold {thr}, the sweep "
                               f"says FRR {frr}")
        ops[f"{target:g}"] = {"fa_per_hour_target": target, "fa_per_hour": fa_h, **res}
    labels = list(model.labels)
    known = [(clips[e.source]["pred"], e.label) for e in stream.events if e.source in clips]
    return {
        "model": {"sha256": model.sha256, "bits": model.bits, "labels": labels},
        "mode": mode, "smoothing": smoothing, "refractory": refractory,
        "stream": {**{k: v for k, v in info.items() if k != "unreadable_clips"},
                   "unreadable_clips": len(info["unreadable_clips"]),
                   "events": len(stream.events),
                   "negative_composition": dict(Counter(
                       kind_group(kinds.get(k, "unknown")) for _, _, k in stream.segments
                       if k not in used).most_common())},
        "clip_accuracy_keyword_clips": float(np.mean([p == y for p, y in known])),
        "operating_points": ops,
    }


def summary(res: dict) -> str:
    """The human-readable digest of :func:`analyse`."""
    s = res["stream"]
    lines = [f"stream: {s['events']} keywords, {s['negative_hours']:.3f} h without keywords "
             f"({', '.join(f'{k} {v}' for k, v in s['negative_composition'].items())} "
             f"negative clips); mode {res['mode']}",
             f"clip-level accuracy of the same keyword clips: "
             f"{100 * res['clip_accuracy_keyword_clips']:.1f}%"]
    for target, op in res["operating_points"].items():
        f, c = op["fractions"], op["counts"]
        lines.append(f"\n== {target} FA/h: threshold {op['threshold']:.4f}, "
                     f"{op['fa_per_hour']:.2f} FA/h ({op['n_false_accepts']} false accepts), "
                     f"FRR {100 * op['frr']:.1f}%")
        lines.append("  " + ", ".join(f"{cat} {c[cat]} ({100 * f[cat]:.1f}%)"
                                      for cat in CATEGORIES))
        if op["confusion"]:
            lines.append("  wrong keyword (true -> fired): " + "; ".join(
                f"{k} -> " + ",".join(f"{w}:{n}" for w, n in row.items())
                for k, row in op["confusion"].items()))
        if op["suppressed_by"]:
            lines.append(f"  suppressed by: {op['suppressed_by']}")
        b = op["below_threshold"]
        if b["n"]:
            q = b["smoothed_max_over_threshold"]
            lines.append(f"  below threshold: best smoothed score / threshold median "
                         f"{q['q50']:.2f} (q10 {q['q10']:.2f}, q90 {q['q90']:.2f}); "
                         f"histogram {b['ratio_histogram']['counts']} over "
                         f"{b['ratio_histogram']['edges']}")
            n9 = b["smoothed_max_nines"]
            lines.append(f"  below threshold, in nines (-log10(1 - p)): threshold "
                         f"{b['threshold_nines']:.2f}, best smoothed score median "
                         f"{n9['q50']:.2f} (q10 {n9['q10']:.2f}, q90 {n9['q90']:.2f})")
            med = b["clip_p_true"].get("q50", float("nan"))
            lines.append(f"  below threshold: clip right as a clip {b['clip_correct']}/"
                         f"{b['clip_known']} ({100 * b['clip_correct_fraction']:.1f}%), "
                         f"stream window at the clip's end right "
                         f"{100 * b['stream_aligned_correct_fraction']:.1f}%; clip posterior "
                         f"of the true class median {med:.2f}")
        ca = op["clip_accuracy"]
        lines.append("  clip accuracy by category: " + ", ".join(
            f"{k} {100 * v:.0f}%" for k, v in ca.items() if v == v))
        lines.append("  per-keyword FRR: " + ", ".join(
            f"{k} {100 * v['frr']:.0f}% (n={v['n']})" for k, v in op["per_keyword"].items()))
        fb = op["false_accepts_by"]
        if fb["fired"]:
            lines.append(f"  false accepts fired: {fb['fired']}")
            lines.append(f"  false accepts on: {fb['on_group']}")
            lines.append(f"  false accepts (fired <- on): {fb['fired_on_group']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
        epilog="Categories: a = detected as its keyword; b = another keyword fired in its "
               "window; c = its per-hop posterior reaches the threshold but smoothing or the "
               "refractory time hides it; d = never reaches the threshold (how far below, and "
               "whether the clip alone is classified right).")
    ap.add_argument("--model", required=True, type=Path, help="a 12-class model file (.kwm)")
    ap.add_argument("--data", default=os.environ.get("KWSHW_DATA"),
                    help="data folder (default: $KWSHW_DATA)")
    ap.add_argument("--split", default="validation+test",
                    help="held-back splits of the stream (default validation+test, as "
                         "kwshw eval --stream)")
    ap.add_argument("--seed", type=int, default=0, help="the stream's seed (default 0)")
    ap.add_argument("--mode", default="golden",
                    help="golden, float, dynamicN or staticN (default golden)")
    ap.add_argument("--fa-per-hour", default="1,5",
                    help="operating points, false accepts per hour (default 1,5)")
    ap.add_argument("--smoothing", type=int, default=DEFAULT_SMOOTHING,
                    help=f"moving average of the detector, frames (default {DEFAULT_SMOOTHING})")
    ap.add_argument("--refractory", type=int, default=DEFAULT_REFRACTORY,
                    help=f"refractory time, frames (default {DEFAULT_REFRACTORY})")
    ap.add_argument("--posteriors", type=Path, default=None,
                    help="keep the stream's posteriors in this .npz between runs (optional)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/stream_analysis/misses.json"),
                    help="JSON output (default /tmp/stream_analysis/misses.json)")
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("no data folder: set $KWSHW_DATA or pass --data")
    timer = Timer()
    targets = [float(v) for v in args.fa_per_hour.split(",")]
    res = analyse(load(args.model), args.data, split=args.split, seed=args.seed,
                  mode=args.mode, fa_targets=targets, smoothing=args.smoothing,
                  refractory=args.refractory, posteriors_cache=args.posteriors)
    res["model"]["path"] = str(args.model)
    meta = {"script": "bench/stream_misses.py", "command": command_line(argv),
            "date": timer.started, "wall_s": timer.seconds, "machine": machine_info(),
            "versions": versions()}
    write_json(args.out, res, meta=meta)
    print(summary(res))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
