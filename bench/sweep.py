"""Design-space sweep: bits x MAC lanes x boards -> fit, resources, fmax, cycles, latency.

::

    python bench/sweep.py                 # the full sweep -> bench/results/sweep.json
    python bench/sweep.py --jobs 2        # two builds at a time (the machine has 2 cores)
    python bench/sweep.py --quick         # tiny network, one tiny build -> bench/results/quick/
    python bench/sweep.py --no-build      # fit checks and cycles only (seconds)

For every point of bits {4, 8} x lanes {1, 2, 4, 8, 16} x boards {ulx3s-85f, icebreaker}:

1. the fit check (:func:`boards.build.check_fit`) first: a point that does not fit is recorded as
   ``"does not fit"`` with the numbers (memory needed / available) and not built;
2. cycles per frame (:func:`kwshw.generate.accelerator_cycles`, equal to simulation, see
   ``bench/cycles.py``) and the ideal ``sum ceil(n_out/P) * n_in``;
3. a board build (:func:`boards.build.build`, Yosys + nextpnr): LUTs, FFs, DSPs, block RAM,
   SPRAM and the achieved fmax; latency per frame at the design clock and at fmax, and the
   real-time factor against the 10 ms hop (``rtf = latency / hop``; below 1 is real time).

Builds run as child processes (``--jobs`` at a time, each killable on ``--timeout``) and their
results are cached in ``bench/cache/`` keyed by model hash, board, lanes, bits and the hash of
the hardware sources and tool versions (:func:`kwshw.app.report.cache_key`), so a rerun only builds
what changed. The network is the reference shape of :mod:`boards.refmodel` with random weights
(resources depend on the shape, not the values) unless ``--model`` names a trained file (its
float reference is re-quantized for the other bit width).

The sweep also tabulates cycles per frame against the ideal for P = 1..32 (the accelerator takes
power-of-two lane counts; the ideal is given for every P).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CACHE, Timer, logic_overflow, provenance, read_json, results_dir, write_json

BOARDS = ("ulx3s-85f", "icebreaker")
BITS = (4, 8)
LANES = (1, 2, 4, 8, 16)
QUICK_SHAPE = (50, 16, 12)
#: The one build of --quick: small and on the faster iCE40 flow.
QUICK_BUILD = ("icebreaker", 4, 4)


#: ``--network``: the reference network whose shape the random-weight models take.
NETWORKS = ("dnn", "cnn")


def _model_for(bits: int, shape, seed: int, source_model=None, network: str = "dnn"):
    if source_model is not None:
        if source_model.bits == bits:
            return source_model
        from kwshw.evaluate import requantize

        return requantize(source_model, bits)
    from boards.refmodel import random_cnn, random_model

    if network == "cnn":
        return random_cnn(bits, seed=seed)
    return random_model(bits, shape, seed=seed)


def fit_numbers(board, model, lanes: int) -> dict:
    """Fit check of one point: ``{"fits": bool, ...numbers..., "message"}``."""
    from boards.errors import FitError
    from boards.fit import bram_blocks, memory_needs
    from kwshw.hw.memories import spram_block_count

    fpga = board.fpga
    needs = memory_needs(model, lanes, board.memory, spram=board.fpga.spram_blocks,
                         family=fpga.family)
    bram = sum(bram_blocks(fpga.family, n.width, n.depth) for n in needs if n.target == "bram")
    spram = sum(spram_block_count(n.width, n.depth) for n in needs if n.target == "spram")
    fp = model.footprint()
    out = {
        "memory": board.memory,
        "weight_bits": fp["weight_bits"],
        "memory_bits_needed": sum(n.bits for n in needs),
        "bram_blocks_needed": bram, "bram_blocks_available": fpga.bram_blocks,
        "bram_bits_available": fpga.bram_bits,
        "spram_blocks_needed": spram, "spram_blocks_available": fpga.spram_blocks,
        "spram_bits_available": fpga.spram_bits,
    }
    from boards.build import check_fit

    try:
        check_fit(board, model, lanes=lanes)
        out["fits"] = True
    except FitError as e:
        out["fits"] = False
        out["message"] = str(e)
    return out


def cycles_vs_lanes(model, max_lanes: int = 32) -> list[dict]:
    """Cycles per frame against the ideal for P = 1..max_lanes (actual for powers of two)."""
    from kwshw.generate import accelerator_cycles

    macs = sum(lay.n_in * lay.n_out for lay in model.layers)
    rows = []
    for p in range(1, max_lanes + 1):
        ideal = sum(-(-lay.n_out // p) * lay.n_in for lay in model.layers)
        row = {"lanes": p, "ideal": ideal, "macs_over_lanes": macs / p, "cycles": None,
               "overhead_percent": None}
        if p & (p - 1) == 0:
            cyc = accelerator_cycles(model, p)
            row["cycles"] = cyc
            row["overhead_percent"] = round(100.0 * (cyc - ideal) / ideal, 3)
        rows.append(row)
    return rows


# --- one build (child process) -------------------------------------------------------------------

def _build_child(args) -> int:
    """``sweep.py _build``: build one point and write its cache entry (run in a child)."""
    from boards.build import BuildError, build
    from kwshw.app.report import build_summary
    from kwshw.modelfile import load

    model = load(args.model_file)
    t0 = time.perf_counter()
    entry = {"board": args.board, "lanes": args.lanes, "bits": model.bits,
             "model": {"sha256": model.sha256, "shape": model.shape},
             "source_hash": args.source_hash, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime())}
    try:
        rep = build(args.board, model, lanes=args.lanes, out_dir=args.work,
                    allow_timing_fail=True)
        entry.update(status="built", resources=build_summary(rep), build_report=rep)
    except BuildError as e:  # includes FitError and ToolError
        msg = str(e)
        logic = logic_overflow(msg)
        entry.update(status="does not fit" if logic else "failed",
                     error=msg[-3000:], reason="logic (place and route)" if logic else None)
    entry["wall_s"] = round(time.perf_counter() - t0, 1)
    Path(args.entry).write_text(json.dumps(entry, indent=1, default=float) + "\n")
    return 0


class Builder:
    """Runs builds as child processes, ``jobs`` at a time, through the cache."""

    def __init__(self, cache: Path, jobs: int, timeout: float, keep: bool, retry_failed: bool,
                 log=print) -> None:
        self.cache, self.jobs, self.timeout = cache, jobs, timeout
        self.keep, self.retry_failed, self.log = keep, retry_failed, log
        self.lock = threading.Lock()
        self.stats = {"run": 0, "cached": 0, "wall_s": []}

    def cached(self, key: str) -> dict | None:
        entry = read_json(self.cache / f"{key}.json")
        if entry is None or not entry.get("status"):
            return None
        if entry["status"] == "failed" and self.retry_failed:
            return None
        return entry

    def run(self, key: str, board: str, lanes: int, model_file: Path, src: str) -> dict:
        entry = self.cached(key)
        if entry is not None:
            with self.lock:
                self.stats["cached"] += 1
            return {**entry, "cached": True}
        work = self.cache / "work" / key
        path = self.cache / f"{key}.json"
        part = self.cache / f"{key}.json.part"
        part.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "_build", "--board", board,
               "--lanes", str(lanes), "--model-file", str(model_file), "--work", str(work),
               "--entry", str(part), "--source-hash", src]
        self.log(f"  building {key} ...")
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            import os
            import signal

            os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group only
            proc.communicate()
            wall = round(time.perf_counter() - t0, 1)
            self.log(f"  {key}: timeout after {wall} s")
            return {"status": "timeout", "error": f"build took longer than {self.timeout:g} s",
                    "wall_s": wall, "cached": False}
        wall = round(time.perf_counter() - t0, 1)
        entry = read_json(part)
        if entry is None:
            tail = err.decode(errors="replace")[-2000:]
            self.log(f"  {key}: build process failed\n{tail}")
            return {"status": "failed", "error": f"build process exited {proc.returncode}: "
                                                 f"{tail}", "wall_s": wall, "cached": False}
        part.replace(path)  # cached (also deterministic failures; --retry-failed redoes them)
        if not self.keep:
            shutil.rmtree(work, ignore_errors=True)
        with self.lock:
            self.stats["run"] += 1
            self.stats["wall_s"].append(wall)
        res = entry.get("resources") or {}
        self.log(f"  {key}: {entry['status']} in {wall} s"
                 + (f" (LUTs {res.get('luts')}, fmax {res.get('fmax_mhz')} MHz)"
                    if entry["status"] == "built" else ""))
        return {**entry, "cached": False}


# --- the sweep -----------------------------------------------------------------------------------

def _latency_block(cycles: int, hz: float | None, hop_ms: float) -> dict | None:
    if not hz:
        return None
    ms = cycles / hz * 1e3
    return {"mhz": round(hz / 1e6, 3), "ms": round(ms, 6), "rtf": round(ms / hop_ms, 7),
            "realtime": ms < hop_ms}


def _sweep_models(bits, shape, seed: int, model_path, cache: Path, network: str = "dnn"):
    """The model of every code width (and its file in the cache, for the build children).

    Returns the network shape, ``{bits: model}`` and ``{bits: model file}``.
    """
    from boards.refmodel import REFERENCE_SHAPE
    from kwshw.modelfile import load, save

    source_model = load(model_path) if model_path else None
    if source_model is not None:
        shape = source_model.shape
    shape = list(shape or REFERENCE_SHAPE)
    models, model_files = {}, {}
    (cache / "models").mkdir(parents=True, exist_ok=True)
    for b in bits:
        m = _model_for(b, shape, seed, source_model, network)
        models[b] = m
        shape = m.shape
        f = cache / "models" / f"{m.sha256[:16]}.kwm"
        if not f.exists():
            save(m, f)
        model_files[b] = f
    return shape, models, model_files


def _point(board, bits: int, lanes: int, model, hop_ms: float) -> dict:
    """One design point before any build: fit check, cycles, clocks, latency."""
    from kwshw.generate import accelerator_cycles

    cyc = accelerator_cycles(model, lanes)
    ideal = sum(-(-lay.n_out // lanes) * lay.n_in for lay in model.layers)
    return {
        "board": board.name, "fpga": board.fpga.name, "family": board.family,
        "bits": bits, "lanes": lanes,
        "model": {"sha256": model.sha256, "shape": model.shape},
        "fit": fit_numbers(board, model, lanes),
        "cycles_per_frame": cyc, "ideal_cycles_per_frame": ideal,
        "overhead_percent": round(100.0 * (cyc - ideal) / ideal, 3),
        "clock": {"board_mhz": board.clock_hz / 1e6,
                  "design_mhz": board.sys_clk_hz / 1e6, "fmax_mhz": None},
        "hop_ms": hop_ms,
        "latency": {
            "board_clock": _latency_block(cyc, board.clock_hz, hop_ms),
            "design_clock": _latency_block(cyc, board.sys_clk_hz, hop_ms),
            "fmax": None,
        },
        "resources": None, "build": None,
    }


def _plan(boards, bits, lanes, models: dict, model_files: dict, *, build: bool,
          only_builds, src: str) -> tuple[list[dict], list[tuple]]:
    """Every point, and the builds to run: ``(point, cache key, board, lanes, model file)``."""
    from boards import get_board
    from kwshw.app.report import cache_key

    points, todo = [], []
    for board_name in boards:
        board = get_board(board_name)
        for b in bits:
            m = models[b]
            hop_ms = 1e3 * m.features.hop_length / m.features.sample_rate
            for p in lanes:
                point = _point(board, b, p, m, hop_ms)
                if not point["fit"]["fits"]:
                    point["status"] = "does not fit"
                    point["reason"] = "memory (fit check, not built)"
                elif not build or (only_builds is not None
                                   and (board.name, b, p) not in only_builds):
                    point["status"] = "not built"
                else:
                    point["status"] = "pending"
                    key = cache_key(m.sha256, board.name, p, b, src)
                    todo.append((point, key, board.name, p, model_files[b]))
                points.append(point)
    # Biggest first, so that two jobs finish together: ECP5 and wide lanes take longest.
    todo.sort(key=lambda t: (t[2] != "ulx3s-85f", -t[0]["lanes"] * t[0]["bits"]))
    return points, todo


def _record_build(point: dict, key: str, entry: dict) -> None:
    """Put a build's cache entry (status, resources, fmax) into its point."""
    from kwshw.app.report import build_summary

    point["status"] = entry["status"]
    if entry.get("reason"):
        point["reason"] = entry["reason"]
    if entry.get("error"):
        point["error"] = entry["error"]
    point["build"] = {"cache_key": key, "cached": entry.get("cached", False),
                      "wall_s": entry.get("wall_s"), "date": entry.get("date")}
    if entry["status"] != "built":
        return
    rep = entry.get("build_report") or {}
    res = build_summary(rep) if rep else entry["resources"]
    point["resources"] = res
    point["build"]["times"] = res.get("build_times")
    point["build"]["uart_ms_per_frame"] = rep.get("throughput", {}).get("uart_ms_per_frame")
    fmax = res.get("fmax_mhz")
    point["clock"]["fmax_mhz"] = fmax
    point["clock"]["timing_met"] = res.get("timing_met")
    point["latency"]["fmax"] = _latency_block(point["cycles_per_frame"],
                                              fmax * 1e6 if fmax else None, point["hop_ms"])


def run_sweep(*, boards=BOARDS, bits=BITS, lanes=LANES, shape=None, seed: int = 0,
              model_path=None, build: bool = True, only_builds=None, jobs: int = 1,
              timeout: float = 3600.0, cache: Path = CACHE, keep: bool = False,
              retry_failed: bool = False, network: str = "dnn", log=print) -> dict:
    """Run the sweep and return its results (without the ``meta`` block).

    ``network``: the reference network (:data:`NETWORKS`) of the random-weight models.

    ``only_builds``: a set of ``(board, bits, lanes)`` to build (``None``: every fitting point).
    """
    from kwshw.app.report import source_hash

    shape, models, model_files = _sweep_models(bits, shape, seed, model_path, cache, network)
    src = source_hash()
    points, todo = _plan(boards, bits, lanes, models, model_files, build=build,
                         only_builds=only_builds, src=src)
    builder = Builder(cache, jobs, timeout, keep, retry_failed, log)
    if todo:
        log(f"sweep: {len(todo)} builds ({jobs} at a time; cache {cache})")

    def do(item):
        point, key, board_name, p, mf = item
        _record_build(point, key, builder.run(key, board_name, p, mf, src))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(do, todo))

    return {
        "config": {
            "boards": list(boards), "bits": list(bits), "lanes": list(lanes), "shape": shape,
            "model": (str(model_path) if model_path else
                      f"random weights of the reference {network.upper()} "
                      f"(boards.refmodel, seed {seed})"),
            "network": network,
            "jobs": jobs, "source_hash": src, "cache": str(cache),
            "latency_note": "latency = cycles per frame / clock; rtf = latency / hop "
                            "(< 1 is real time); UART transfer time is not included",
        },
        "models": {str(b): {"sha256": m.sha256, "shape": m.shape, "footprint": m.footprint()}
                   for b, m in models.items()},
        "points": points,
        "cycles_vs_lanes": {str(b): cycles_vs_lanes(m) for b, m in models.items()},
        "timing": {"builds_run": builder.stats["run"], "builds_cached": builder.stats["cached"],
                   "build_wall_s": builder.stats["wall_s"]},
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.replace(",", " ").split()]


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_build"]:
        ap = argparse.ArgumentParser(prog="sweep.py _build")
        for opt in ("--board", "--model-file", "--work", "--entry", "--source-hash"):
            ap.add_argument(opt, required=True)
        ap.add_argument("--lanes", type=int, required=True)
        return _build_child(ap.parse_args(argv[1:]))

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"tiny network {QUICK_SHAPE}, one tiny build, to bench/results/quick")
    ap.add_argument("--out", help="results folder (default bench/results or bench/results/quick)")
    ap.add_argument("--jobs", type=int, default=1, help="builds at a time (1 or 2; default 1)")
    ap.add_argument("--boards", nargs="+", default=list(BOARDS))
    ap.add_argument("--bits", type=_ints, default=list(BITS), help="e.g. '4,8'")
    ap.add_argument("--lanes", type=_ints, default=list(LANES), help="e.g. '1,2,4,8,16'")
    ap.add_argument("--shape", type=_ints, help="network shape, e.g. '1000,128,128,128,12'")
    ap.add_argument("--model", help="a trained model file instead of random weights")
    ap.add_argument("--network", choices=NETWORKS, default="dnn",
                    help="reference network of the random weights: dnn (-> sweep.json) or "
                         "cnn, the CNN recipe's (-> sweep-cnn.json)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random-weight model")
    ap.add_argument("--no-build", action="store_true", help="fit checks and cycles only")
    ap.add_argument("--timeout", type=float,
                    help="seconds per build (default 3600; 150 with --quick)")
    ap.add_argument("--cache", default=str(CACHE), help="build cache folder")
    ap.add_argument("--keep-builds", action="store_true", help="keep the build folders")
    ap.add_argument("--retry-failed", action="store_true", help="rebuild cached failures")
    args = ap.parse_args(argv)
    timer = Timer()
    shape = args.shape or (QUICK_SHAPE if args.quick else None)
    only = {QUICK_BUILD} if args.quick else None
    res = run_sweep(boards=args.boards, bits=args.bits, lanes=args.lanes, shape=shape,
                    seed=args.seed, model_path=args.model, build=not args.no_build,
                    only_builds=only, jobs=args.jobs,
                    timeout=args.timeout or (150.0 if args.quick else 3600.0),
                    cache=Path(args.cache), keep=args.keep_builds,
                    retry_failed=args.retry_failed, network=args.network)
    name = "sweep.json" if args.network == "dnn" else f"sweep-{args.network}.json"
    out = results_dir(args.quick, args.out) / name
    write_json(out, res, meta=provenance("bench/sweep.py", timer, quick=args.quick,
                                         argv=[__file__, *argv]))
    counts = {}
    for p in res["points"]:
        counts[p["status"]] = counts.get(p["status"], 0) + 1
    print(f"sweep: {len(res['points'])} points ({', '.join(f'{v} {k}' for k, v in counts.items())}"
          f") in {timer.seconds:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
