"""Simulation speed of the same accelerator in Icarus, Verilator and the Amaranth simulator.

One network, one set of real feature frames, three simulators, one run; every run is also
checked against the golden model (a speed of a wrong simulation is worth nothing).

- Icarus and Verilator: the generated Verilog under the cocotb testbench of ``sim/``
  (:func:`sim.network.run_network_sim`, trace port on, no random stalls); frames/s is
  measured inside the simulation (testbench wall time), the build time is reported apart.
- Amaranth: :func:`sim.pysim.simulate` (the hardware's own Python testbench, trace
  port on).

::

    python bench/simspeed.py                 # test network, -> bench/results/simspeed.json
    python bench/simspeed.py --quick         # tiny network, a few frames (CI)
    python bench/simspeed.py --reference     # also the reference network (boards.refmodel)

Writes ``simspeed.json`` with a ``meta`` block (machine, versions, command).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import Timer, provenance, results_dir, write_json

from boards.refmodel import REFERENCE_SHAPE
from kwshw import golden
from kwshw.features import FeatureConfig
from sim import stimulus, toolchain
from sim.network import SimSettings, build_design, run_network_sim


def _network(name: str):
    if name == "tiny":
        return FeatureConfig(n_mels=40, context=2, stride=3), [16], 4, 4
    if name == "test":
        return stimulus.SMALL_FEATURES, [32, 16], 4, 4
    if name == "reference":
        return FeatureConfig(), list(REFERENCE_SHAPE[1:-1]), 4, 8
    raise ValueError(name)


def _frames(model, features, n: int, seed: int) -> np.ndarray:
    if stimulus.data_dir() is not None:
        lf, _ = stimulus.real_lfbe(n, features, seed=seed)
        return stimulus.real_frames(model, lf)
    return stimulus.random_frames(n, features.n_mels, seed=seed)


def amaranth_speed(model, lanes: int, frames: np.ndarray) -> dict:
    from sim.pysim import simulate

    t0 = time.perf_counter()
    res = simulate(model, lanes, frames)
    wall = time.perf_counter() - t0
    ctx, stride = model.features.context, model.features.stride
    want = golden.run_network(model.plans(), golden.stream_windows(frames, ctx, stride))[-1].y
    ok = bool(np.array_equal(res.scores, want))
    return {"frames": len(frames), "seconds": round(wall, 3), "ok": ok,
            "frames_per_second": round(len(frames) / wall, 3),
            "cycles_per_second": round(res.cycles / wall, 1), "cycles": res.cycles,
            "note": "sim.pysim.simulate (Amaranth pysim), including elaboration"}


def hdl_speed(model, lanes: int, frames: np.ndarray, simulator: str) -> dict:
    build_design(model, lanes)                   # generation is not part of the speed
    t0 = time.perf_counter()
    res = run_network_sim(model, SimSettings(lanes=lanes, simulator=simulator, seed=1),
                          frames=frames)
    wall = time.perf_counter() - t0
    cps = res.simulated_cycles / res.sim_seconds if res.sim_seconds else None
    return {"frames": res.frames, "ok": res.ok, "mismatches": res.mismatches,
            "seconds": res.sim_seconds, "frames_per_second": res.frames_per_second,
            "cycles_per_second": round(cps, 1) if cps else None,
            "build_and_run_seconds": round(wall, 2),
            "cycles_per_frame": res.cycles_per_frame,
            "note": "cocotb testbench (sim/tb_network.py), time inside the simulation"}


def measure(name: str, counts: dict[str, int], seed: int = 3) -> dict:
    features, hidden, bits, lanes = _network(name)
    calib = None
    if stimulus.data_dir() is not None:
        calib, _ = stimulus.real_lfbe(300, features, seed=1001)
    model = stimulus.random_model(hidden, bits, features=features, calib=calib, seed=seed)
    design = build_design(model, lanes)
    out = {"network": {"name": name, "shape": model.shape, "bits": bits, "lanes": lanes,
                       "cycles_per_frame": design.cycles_per_frame,
                       "frames": "real LFBE" if calib is not None else "random"},
           "simulators": {}}
    for sim, n in counts.items():
        if n <= 0:
            continue
        if sim != "amaranth" and not toolchain.have_simulator(sim):
            out["simulators"][sim] = {"skipped": f"{sim} not installed"}
            continue
        frames = _frames(model, features, n, seed=seed + 100)
        print(f"[simspeed] {name}: {sim}, {n} frames ...", flush=True)
        r = amaranth_speed(model, lanes, frames) if sim == "amaranth" else \
            hdl_speed(model, lanes, frames, sim)
        print(f"[simspeed] {name}: {sim}: {r['frames_per_second']} frames/s "
              f"({r.get('cycles_per_second')} cycles/s), ok={r['ok']}", flush=True)
        out["simulators"][sim] = r
    fps = {k: v.get("frames_per_second") for k, v in out["simulators"].items()
           if v.get("frames_per_second")}
    if "icarus" in fps:
        out["speedup_vs_icarus"] = {k: round(v / fps["icarus"], 2) for k, v in fps.items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny network, a few frames")
    ap.add_argument("--reference", action="store_true",
                    help="also measure the reference network (boards.refmodel.REFERENCE_SHAPE)")
    ap.add_argument("--output", help="result file (default bench/results/simspeed.json)")
    args = ap.parse_args(argv)
    timer = Timer()
    toolchain.setup_env()
    if args.quick:
        runs = {"tiny": {"icarus": 6, "verilator": 30, "amaranth": 2}}
    else:
        runs = {"test": {"icarus": 40, "verilator": 400, "amaranth": 5}}
        if args.reference:
            runs["reference"] = {"icarus": 3, "verilator": 50, "amaranth": 1}
    results = {name: measure(name, counts) for name, counts in runs.items()}
    path = Path(args.output) if args.output else \
        results_dir(args.quick, os.environ.get("KWSHW_BENCH_OUT")) / "simspeed.json"
    write_json(path, {"networks": results},
               meta=provenance("bench/simspeed.py", timer, quick=args.quick))
    print(f"[simspeed] wrote {path}")
    ok = all(v.get("ok", True) for r in results.values() for v in r["simulators"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
