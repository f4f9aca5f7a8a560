"""Error of the integer front end (kwshw.features_int) against the float front end on speech.

Runs both front ends on ``--clips`` real clips (a seeded choice spread over every corpus under
``$KWSHW_DATA``: Speech Commands test and extra, the wake-word benchmark, background noise) and
compares like with like:

- ``log_mel``: :meth:`IntFrontEnd.log_mel` against :func:`kwshw.features.log_mel`, unsmoothed
  (nat);
- ``lfbe``: :meth:`IntFrontEnd.lfbe` against :func:`kwshw.features.lfbe`, smoothed (nat);
- ``codes``: :meth:`IntFrontEnd.frames` against ``features_to_int(normalizer.apply(lfbe))``
  (what :func:`kwshw.host.runtime.audio_frames` sends) for two normalizations: one fitted on
  these clips' float features (a trained model's statistics look like it) and the identity of
  ``boards.refmodel.random_cnn(4)`` (mean 0, std 1: every code step is 2^-in_frac nat, the most
  sensitive case), both with the model's ``in_frac``.

Usage: ``python bench/frontend.py [--clips 200] [--seed 0] [--out DIR]`` writes
``frontend.json`` (default folder ``bench/results``; ``--quick``: 20 clips, to
``bench/results/quick``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import Timer, have_data, provenance, results_dir, write_json

from boards.refmodel import random_cnn
from kwshw.audio import AudioError, load_audio
from kwshw.evaluate import model_normalizer
from kwshw.features import FeatureConfig, Normalizer, lfbe, log_mel
from kwshw.features_int import IntFrontEnd, pcm_from_float
from kwshw.quantize import features_to_int

#: Corpus folders under the data root and the file patterns of their clips.
CORPORA = {
    "speech_commands_v0.02_test": "*/*.wav",
    "speech_commands_v0.02_extra": "*/*.flac",
    "wake_word_benchmark": "*/*.flac",
}
#: Background noise recordings are minutes long: this many 2 s excerpts of them are added.
NOISE_EXCERPTS = 6


def choose_clips(root: Path, n: int, seed: int) -> list[tuple[str, Path, int, int | None]]:
    """``(corpus, path, offset, num_samples)`` of ``n`` clips: an equal seeded share of every
    corpus (the remainder to the first ones), plus 2 s excerpts of the background noise."""
    rng = np.random.default_rng(seed)
    per = {}
    for corpus, pattern in CORPORA.items():
        files = sorted(p for p in (root / corpus).glob(pattern)
                       if "_background_noise_" not in p.parts)
        if files:
            per[corpus] = files
    if not per:
        raise SystemExit(f"no clips under {root} (see its README.md)")
    out = []
    names = list(per)
    for i, corpus in enumerate(names):
        k = n // len(names) + (1 if i < n % len(names) else 0)
        files = per[corpus]
        for j in rng.choice(len(files), size=min(k, len(files)), replace=False):
            out.append((corpus, files[int(j)], 0, None))
    noise = sorted((root / "speech_commands_v0.02_extra" / "_background_noise_").glob("*.flac"))
    for j in range(min(NOISE_EXCERPTS, len(noise))):
        out.append(("background_noise", noise[j], 16000 * int(rng.integers(0, 30)), 32000))
    return out


def load_clips(clips: list, sample_rate: int) -> tuple[list, list[np.ndarray], list[str]]:
    """The clips that load, their audio, and ``path: reason`` of those that do not (the data
    folder may hold corrupt files; they are reported, not fatal)."""
    kept, audio, unreadable = [], [], []
    for clip in clips:
        _, path, offset, num = clip
        try:
            audio.append(load_audio(path, sample_rate, offset=offset, num_samples=num))
        except AudioError as e:
            unreadable.append(str(e))
            continue
        kept.append(clip)
    if unreadable:
        print(f"left out {len(unreadable)} unreadable clip(s)", file=sys.stderr)
    return kept, audio, unreadable


def _stats(err: np.ndarray) -> dict:
    return {"max": float(err.max()), "mean": float(err.mean()),
            "p99": float(np.quantile(err, 0.99)), "p99_9": float(np.quantile(err, 0.999)),
            "values": int(err.size)}


def _code_stats(diff: np.ndarray) -> dict:
    counts = np.bincount(diff.ravel())
    return {"fraction_differ": float(np.mean(diff > 0)),
            "fraction_differ_more_than_1": float(np.mean(diff > 1)),
            "max_difference": int(diff.max()), "codes": int(diff.size),
            "histogram": {str(d): int(c) for d, c in enumerate(counts) if c}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("KWSHW_DATA"),
                    help="data folder (default $KWSHW_DATA)")
    ap.add_argument("--clips", type=int, default=200, help="speech clips (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="20 clips, results to bench/results/quick")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    out = results_dir(args.quick, args.out)
    meta = dict(script="bench/frontend.py", quick=args.quick, argv=argv)
    if not have_data(args.data, out / "frontend.json", meta, timer):
        return
    n = 20 if args.quick else args.clips
    cfg = FeatureConfig()
    clips = choose_clips(Path(args.data), n, args.seed)
    clips, audio, unreadable = load_clips(clips, cfg.sample_rate)
    t0 = time.perf_counter()
    floats = [(log_mel(a, cfg), lfbe(a, cfg)) for a in audio]
    t_float = time.perf_counter() - t0

    cnn = random_cnn(4)
    norms = {"fitted_on_clips": (Normalizer.fit([f for _, f in floats]), cnn.in_frac),
             "random_cnn_identity": (model_normalizer(cnn), cnn.in_frac)}
    fes = {name: IntFrontEnd(cfg, nm, frac) for name, (nm, frac) in norms.items()}
    fe = fes["fitted_on_clips"]
    raw_err, sm_err, by_corpus = [], [], {}
    diffs: dict[str, list[np.ndarray]] = {name: [] for name in fes}
    trace: dict = {}
    t_int = 0.0
    for (corpus, *_), a, (raw_f, sm_f) in zip(clips, audio, floats, strict=True):
        pcm = pcm_from_float(a)
        t0 = time.perf_counter()
        raw = fe.log_mel(pcm, trace)
        sm = fe.smooth(raw, trace)
        t_int += time.perf_counter() - t0
        e_raw = np.abs(fe.to_float_log(raw) - raw_f)
        e_sm = np.abs(fe.to_float_log(sm) - sm_f.astype(np.float64))
        raw_err.append(e_raw.ravel())
        sm_err.append(e_sm.ravel())
        c = by_corpus.setdefault(corpus, {"clips": 0, "frames": 0, "lfbe_max": 0.0,
                                          "lfbe_sum": 0.0})
        c["clips"] += 1
        c["frames"] += int(sm.shape[0])
        c["lfbe_max"] = max(c["lfbe_max"], float(e_sm.max()))
        c["lfbe_sum"] += float(e_sm.sum())
        for name, f in fes.items():
            nm, frac = norms[name]
            codes = f.normalize(sm, trace if f is fe else None)
            diffs[name].append(np.abs(codes - features_to_int(nm.apply(sm_f), frac)).ravel())
    for c in by_corpus.values():
        c["lfbe_mean"] = c.pop("lfbe_sum") / (c["frames"] * cfg.n_mels)
    frames = sum(c["frames"] for c in by_corpus.values())
    result = {
        "clips": len(clips), "frames": frames, "seed": args.seed, "unreadable": unreadable,
        "config": cfg.to_dict(),
        "log_mel_error_nat": _stats(np.concatenate(raw_err)),
        "lfbe_error_nat": _stats(np.concatenate(sm_err)),
        "by_corpus": by_corpus,
        "codes": {name: {"in_frac": norms[name][1],
                         "code_step_nat_median": float(np.median(norms[name][0].std))
                         * 2.0 ** -norms[name][1],
                         **_code_stats(np.concatenate(d))} for name, d in diffs.items()},
        "widths": fe.widths(),
        "observed_ranges": {k: list(v) for k, v in trace.items()},
        "log_error_bound_nat": fe.log_error_bound(),
        "seconds": {"float_front_end": round(t_float, 2), "integer_front_end": round(t_int, 2)},
    }
    path = write_json(out / "frontend.json", result, meta=provenance(timer=timer, **meta))
    print(f"{len(clips)} clips, {frames} frames -> {path}")
    for key in ("log_mel_error_nat", "lfbe_error_nat"):
        s = result[key]
        print(f"  {key}: max {s['max']:.2e}  mean {s['mean']:.2e}  p99.9 {s['p99_9']:.2e}")
    for name, s in result["codes"].items():
        print(f"  codes ({name}): {100 * s['fraction_differ']:.2f}% differ, "
              f"{100 * s['fraction_differ_more_than_1']:.4f}% by more than 1, "
              f"max {s['max_difference']}")


if __name__ == "__main__":
    main()
