"""Cycles per frame of the accelerator for the reference network, simulated vs ideal.

Reference network (:data:`boards.refmodel.REFERENCE_SHAPE`): 40 bands x 25 frames = 1000
inputs -> 176 -> 128 -> 128 -> 12, random weights calibrated on real speech features when
``$KWSHW_DATA`` is set (random normal frames otherwise; the schedule does not depend on the
data). For each lane count the accelerator is
simulated (Amaranth simulator) over a few frames fed back to back; the frame period measured
is compared with the ideal ``sum ceil(n_out / P) * n_in`` and with the schedule's exact
formula (``kwshw.generate.accelerator_cycles``), which must agree cycle for cycle.

Usage: ``python bench/cycles.py [--bits 4] [--lanes 1 2 4 8 16 32] [--frames 3]``
writes ``bench/results/cycles.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from common import Timer, provenance, write_json

from boards.refmodel import REFERENCE_SHAPE
from kwshw.features import FeatureConfig, stack_windows
from kwshw.generate import accelerator_cycles
from kwshw.hw.accelerator import Accelerator
from sim.pysim import int_frames, random_model_for_windows, simulate, speech_frames

HIDDEN = list(REFERENCE_SHAPE[1:-1])
N_OUT = REFERENCE_SHAPE[-1]


def _frames(cfg: FeatureConfig, count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Normalized frames to run and calibration windows, from real speech if available."""
    if os.environ.get("KWSHW_DATA"):
        clips = speech_frames(cfg, clips=4)
        calib = np.concatenate([stack_windows(c, cfg) for c in clips])
        return clips[0][40:40 + count], calib, "speech_commands"
    rng = np.random.default_rng(0)
    f = rng.normal(0, 1, (200, cfg.n_mels)).astype(np.float32)
    return f[:count], stack_windows(f, cfg), "random_normal"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("-o", "--output", default=str(Path(__file__).parent / "results" /
                                                  "cycles.json"))
    args = ap.parse_args()
    timer = Timer()
    cfg = FeatureConfig()
    frames, calib, source = _frames(cfg, args.frames)
    model = random_model_for_windows(HIDDEN, args.bits, N_OUT, cfg, calib)
    ints = int_frames(frames, model.in_frac)
    rows = []
    for lanes in args.lanes:
        dut = Accelerator(model, lanes, trace=True)
        start = time.perf_counter()
        res = simulate(model, lanes, ints, dut=dut)
        secs = time.perf_counter() - start
        periods = sorted(set(res.periods))
        formula = accelerator_cycles(model, lanes)
        row = {
            "lanes": lanes,
            "ideal": dut.ideal_cycles,
            "simulated": periods[0] if len(periods) == 1 else periods,
            "formula": formula,
            "simulated_equals_formula": periods == [formula],
            "overhead_percent": round(100.0 * (formula - dut.ideal_cycles) / dut.ideal_cycles,
                                      3),
            "latency_last_feature_to_last_score": res.score_done[0] - res.feat_done[0],
            "frames_simulated": len(ints),
            "sim_cycles": res.cycles,
            "sim_seconds": round(secs, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "network": model.shape,
        "bits": args.bits,
        "features": source,
        "definition": "frame period in clock cycles with frames always pending and scores "
                      "read at once; ideal = sum over layers of ceil(n_out/P) * n_in",
        "results": sorted(rows, key=lambda r: r["lanes"]),
    }
    write_json(args.output, out, meta=provenance("bench/cycles.py", timer))
    print("wrote", args.output)


if __name__ == "__main__":
    main()
