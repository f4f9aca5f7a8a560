"""The gateware front end against its golden model on real speech, frame by frame.

Runs :class:`kwshw.hw.frontend.FrontEnd` (the RTL in Verilator) on ``--clips`` real clips (the
seeded choice of ``bench/frontend.py``: every corpus under ``$KWSHW_DATA`` and background noise)
and the Yosys netlists of both FPGA families (Verilator, Yosys's cell models) on
``--gate-clips`` of them, and compares every frame with
:class:`kwshw.features_int.IntFrontEndStream` (``sim/frontend_check.py``). The normalization is
the one a model trained on these clips would carry: mean and std of their integer features.

Usage: ``python bench/frontend_sim.py [--clips 100] [--gate-clips 3] [--seed 0] [--out DIR]``
writes ``frontend-sim.json`` (``--quick``: 5 clips, 1 gate-level clip, to
``bench/results/quick``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import Timer, have_data, provenance, results_dir, write_json
from frontend import choose_clips, load_clips

from kwshw.features import FeatureConfig, Normalizer
from kwshw.features_int import IntFrontEnd, pcm_from_float
from kwshw.progress import bar
from sim.frontend_check import FrontEndSim

#: The netlists simulated at gate level.
FAMILIES = ("ice40", "ecp5")


def _front_end(pcms: list[np.ndarray], cfg: FeatureConfig) -> IntFrontEnd:
    """The integer front end with the statistics of these clips' own integer features."""
    raw = IntFrontEnd(cfg)
    feats = [IntFrontEnd.to_float_log(raw.lfbe(p)) for p in pcms]
    fitted = Normalizer.fit(feats)
    norm = Normalizer(fitted.mean.astype(np.float32), fitted.std.astype(np.float32))
    return IntFrontEnd(cfg, norm, 11)


def _run(sim: FrontEndSim, clips: list, pcms: list[np.ndarray], label: str) -> dict:
    """Every clip through ``sim``: totals and the clips that differ."""
    rows, bad = [], []
    for i, (clip, pcm) in enumerate(bar(list(zip(clips, pcms, strict=True)), desc=label,
                                        unit="clip")):
        r = sim.run(pcm, name=f"clip{i}")
        rows.append(r)
        if not r.ok:
            bad.append({"clip": str(clip[1]), "mismatched_frames": r.mismatched_frames,
                        "frames": r.frames, "frames_out": r.frames_out})
    cycles = sum(r.cycles for r in rows)
    seconds = sum(r.seconds for r in rows)
    return {"simulator": sim.simulator, "netlist": sim.gate_level, "cells": sim.cells,
            "clips": len(rows), "frames": sum(r.frames for r in rows),
            "mismatched_frames": sum(len(r.mismatched_frames) for r in rows),
            "missing_frames": sum(max(0, r.frames - r.frames_out) for r in rows),
            "differing_clips": bad, "cycles": cycles, "sim_seconds": round(seconds, 1),
            "cycles_per_second": round(cycles / seconds) if seconds else None,
            "audio_seconds": round(sum(len(p) for p in pcms) / 16000, 2),
            "build_seconds": round(sim.build_seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("KWSHW_DATA"),
                    help="data folder (default $KWSHW_DATA)")
    ap.add_argument("--clips", type=int, default=100, help="clips in Verilator (default 100)")
    ap.add_argument("--gate-clips", type=int, default=3,
                    help="clips per netlist, iCE40 and ECP5 (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="5 clips, 1 per netlist")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    out = results_dir(args.quick, args.out)
    meta = dict(script="bench/frontend_sim.py", quick=args.quick, argv=argv)
    if not have_data(args.data, out / "frontend-sim.json", meta, timer):
        return 0
    n, n_gate = (5, 1) if args.quick else (args.clips, args.gate_clips)
    cfg = FeatureConfig()
    clips, audio, unreadable = load_clips(choose_clips(Path(args.data), n, args.seed),
                                          cfg.sample_rate)
    pcms = [pcm_from_float(a) for a in audio]
    fe = _front_end(pcms, cfg)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="kwshw-fe-sim-") as tmp:
        sim = FrontEndSim(fe, Path(tmp) / "rtl", simulator="verilator")
        cycles_per_hop = sim.dut.cycles_per_hop()
        runs["rtl_verilator"] = _run(sim, clips, pcms, "RTL, Verilator")
        for family in FAMILIES:
            sim = FrontEndSim(fe, Path(tmp) / family, simulator="verilator", gate_level=family)
            runs[f"netlist_{family}"] = _run(sim, clips[:n_gate], pcms[:n_gate],
                                             f"{family} netlist, Verilator")
    result = {"config": cfg.to_dict(), "cycles_per_hop": cycles_per_hop,
              "unreadable": unreadable, "runs": runs,
              "ok": all(r["mismatched_frames"] == 0 and r["missing_frames"] == 0
                        for r in runs.values())}
    path = write_json(out / "frontend-sim.json", result, meta=provenance(timer=timer, **meta))
    for name, r in runs.items():
        print(f"{name:<16} {r['clips']:>4} clips {r['frames']:>6} frames: "
              f"{r['mismatched_frames']} mismatched, {r['missing_frames']} missing; "
              f"{r['cycles_per_second']:,} cycles/s")
    print(f"wrote {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
