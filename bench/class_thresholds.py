"""One detection threshold for every keyword, or one per keyword class: misses at false accepts
per hour on held-back streams, with the per-class offsets chosen where a user would choose them.

A 12-class model is not equally sure of itself on every word, so with one shared threshold the
most over-confident word on ordinary speech sets the threshold of all ten
(``docs/training.md``, "Where the stream's misses come from"). The trainer now gives every
keyword class an offset in "nines" (:func:`kwshw.streams.estimate_class_offsets`) and the
threshold on top of them, both on the *validation* stream (:func:`kwshw.stream_eval.
choose_threshold`). This script measures what that buys on audio the choice never saw::

    python bench/class_thresholds.py --model /tmp/mainout/model-cnn-4b.kwm
    python bench/class_thresholds.py --model M1 --model M2 --out DIR  # DIR/class-thresholds.json

For each model, in golden mode (the accelerator's integers), on the ``validation`` and the
``test`` streams of :func:`kwshw.stream_eval.held_out_stream` (disjoint speakers, and disjoint
halves of the held-back general speech):

- the offsets, estimated on the validation stream only;
- for both rules (``shared``: every class at one threshold; ``per_class``: the offsets), the
  FRR at each target FA/h read off each stream's own curve (the figure ``kwshw eval --stream``
  reports: the best point of the rule's one-parameter family on that stream);
- the deployable figure: the threshold chosen on the validation stream for the target, applied
  to the test stream (FRR *and* the FA/h it really makes there).

The streams are short (about 0.3 h without keywords each), so a few FA/h is a handful of
false accepts; the JSON keeps the counts.
"""

from __future__ import annotations

import argparse
import os
import sys

from common import Timer, provenance, results_dir, write_json

from kwshw.evaluate import keyword_classes
from kwshw.modelfile import load
from kwshw.stream_eval import held_out_stream
from kwshw.streams import (
    estimate_class_offsets,
    frr_at_fa_per_hour,
    multiclass_operating_points,
    stream_posteriors,
)

#: The two rules: no offsets, and the offsets of the validation stream.
RULES = ("shared", "per_class")


def _streams(model, data: str, seed: int) -> dict:
    """``{split: (stream, posteriors)}`` for the validation and the test stream."""
    out = {}
    for split in ("validation", "test"):
        stream, info = held_out_stream(model.task, data, split=split, seed=seed,
                                       sample_rate=model.features.sample_rate, progress=False)
        print(f"  {split}: {info['negative_hours']:.3f} h without keywords, "
              f"{len(stream.events)} keywords; running the golden model", flush=True)
        out[split] = (stream, stream_posteriors(model, stream, "golden"))
    return out


def _points(model, stream, post, offsets, thresholds=None) -> dict:
    return multiclass_operating_points(post, stream.events, model.features.hop_length,
                                       stream.negative_hours, keyword_classes(model.labels),
                                       thresholds, class_offsets=offsets)


def compare(model, data: str, *, seed: int = 0, fa_targets=(1.0, 5.0)) -> dict:
    """Both rules on both streams of one model (see the module docstring)."""
    if model.task != "speech_commands":
        raise SystemExit(f"per-class thresholds are for the 12-class task, not {model.task!r}")
    streams = _streams(model, data, seed)
    val_stream, val_post = streams["validation"]
    offsets = estimate_class_offsets(val_post, val_stream.events, model.features.hop_length,
                                     keyword_classes(model.labels))
    rules = {"shared": None, "per_class": offsets}
    res = {"sha256": model.sha256, "bits": model.bits,
           "class_offsets": {model.labels[c]: v for c, v in offsets.items()},
           "streams": {s: {"negative_hours": st.negative_hours, "events": len(st.events)}
                       for s, (st, _) in streams.items()}, "rules": {}}
    for name, off in rules.items():
        curves = {s: _points(model, st, post, off) for s, (st, post) in streams.items()}
        rule = {f"frr_at_fa{t:g}_{s}": frr_at_fa_per_hour(curves[s], t)[0]
                for s in streams for t in fa_targets}
        test_stream, test_post = streams["test"]
        for t in fa_targets:
            _, _, level = frr_at_fa_per_hour(curves["validation"], t)
            p = _points(model, test_stream, test_post, off, [level])
            rule[f"validation_chosen_fa{t:g}"] = {
                "threshold": level, "frr_test": float(p["frr"][0]),
                "fa_per_hour_test": float(p["fa_per_hour"][0]),
                "false_accepts_test": int(p["false_accepts"][0])}
        res["rules"][name] = rule
    return res


def summary(name: str, res: dict, fa_targets) -> str:
    lines = [f"{name} (sha256 {res['sha256'][:12]}), offsets in nines: "
             + ", ".join(f"{k} {v:+.2f}" for k, v in res["class_offsets"].items())]
    for rule, r in res["rules"].items():
        parts = []
        for t in fa_targets:
            v = r[f"validation_chosen_fa{t:g}"]
            parts.append(f"@{t:g} FA/h: FRR val {100 * r[f'frr_at_fa{t:g}_validation']:.1f}% "
                         f"test {100 * r[f'frr_at_fa{t:g}_test']:.1f}%, chosen on val -> test "
                         f"FRR {100 * v['frr_test']:.1f}% at {v['fa_per_hour_test']:.1f} FA/h")
        lines.append(f"  {rule:>9}: " + "; ".join(parts))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True,
                    help="a 12-class model file (repeat for several)")
    ap.add_argument("--data", default=os.environ.get("KWSHW_DATA"),
                    help="data folder (default $KWSHW_DATA)")
    ap.add_argument("--seed", type=int, default=0, help="order of the streams' clips")
    ap.add_argument("--fa-per-hour", default="1,5", help="targets, comma list (default 1,5)")
    ap.add_argument("--out", default=None, help="folder of class-thresholds.json "
                                                "(default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    if not args.data:
        ap.error("no data folder: set KWSHW_DATA or pass --data")
    targets = tuple(float(t) for t in args.fa_per_hour.split(","))
    models = {}
    for path in args.model:
        print(f"{path}:", flush=True)
        res = compare(load(path), args.data, seed=args.seed, fa_targets=targets)
        name = os.path.join(os.path.basename(os.path.dirname(os.path.abspath(path))),
                            os.path.basename(path))    # the seeds' files share a file name
        if name in models:
            raise SystemExit(f"{path}: given twice")
        models[name] = res
        print(summary(name, res, targets), flush=True)
    # No means stored: bench/readme.py derives them (its class-thresholds table).
    out = write_json(results_dir(override=args.out) / "class-thresholds.json",
                     {"seed": args.seed, "fa_targets": list(targets), "models": models},
                     meta=provenance("bench/class_thresholds.py", timer, argv=sys.argv))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
