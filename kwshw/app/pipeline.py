"""The whole job, end to end: speech in, verified bitstreams and one summary table out.

``kwshw all`` (the README's main command) runs, in order: QAT training of the reference
network on ``$KWSHW_DATA`` and export of the model file; evaluation on speakers not used
for training; Verilog generation; the bit-exact cocotb check of that Verilog against the
golden model; bitstream builds for the chosen boards; and a summary table (also written
as ``summary.json``). Each step is a library call; this module only strings them together
and records what they return.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .. import modelfile
from ..evaluate import evaluate
from ..generate import generate

__all__ = ["run_all", "format_summary", "DEFAULT_BOARDS"]

#: Boards built by default: ``(board name, MAC lanes)``.
DEFAULT_BOARDS: tuple[tuple[str, int], ...] = (("ulx3s-85f", 8), ("icebreaker", 4))


def _step(log: Callable[[str], None], name: str):
    class _Timer:
        def __enter__(self):
            self.t0 = time.monotonic()
            log(f"==> {name}")
            return self

        def __exit__(self, *exc):
            self.seconds = round(time.monotonic() - self.t0, 1)
            if exc[0] is None:
                log(f"    {name}: {self.seconds} s")
            return False

    return _Timer()


def run_all(data: str | Path, out: str | Path, *, recipe: str = "cnn", bits: int = 4,
            lanes: int = 8, boards: Sequence[tuple[str, int]] = DEFAULT_BOARDS,
            frames: int = 200,
            simulator: str = "verilator", epochs: int | None = None, seed: int = 0,
            model_path: str | Path | None = None, clock: float | str | None = "auto",
            jobs: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Run the whole job and return the summary (also written to ``out/summary.json``).

    Parameters
    ----------
    data : path
        Folder with ``speech_commands_v0.02_test/`` (``$KWSHW_DATA``) or a Speech Commands tree.
    out : path
        Output folder: model file, evaluation, Verilog, simulation, builds, summary.
    recipe : {"cnn", "dnn"}
        The network trained (``kwshw train --recipe``; docs/training.md).
    bits : int
        Code width of the trained model.
    lanes : int
        MAC lanes of the generated and simulated Verilog.
    boards : sequence of (board, lanes)
        Bitstreams to build.
    frames : int
        Real feature frames checked bit-exactly in cocotb.
    simulator : {"verilator", "icarus"}
    epochs : int, optional
        Training epochs (the trainer's default otherwise).
    seed : int
        Seeds training and the simulation's stimulus.
    model_path : path, optional
        Use this trained model file instead of training one.
    clock : float, "auto" or None
        Design clock of the builds in Hz (``boards.build.build``'s ``sys_clk_hz``): by
        default ``"auto"``, each board at the fastest clock its PLL makes within 90% of the
        design's fmax; None: the board's own clock (docs/boards.md).
    jobs : int, optional
        Boards built at a time, each in its own process; by default one per core.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"data": str(data), "out": str(out), "steps": {}}
    steps = summary["steps"]
    t_start = time.monotonic()
    if model_path is None:
        model_path = out / f"model-{recipe}-{bits}b.kwm"
        steps["train_s"] = _train(data, model_path, recipe, bits, epochs, seed, log)
    model = modelfile.load(model_path)
    summary["model"] = {"path": str(model_path), "sha256": model.sha256, "bits": model.bits,
                        "shape": model.shape, "footprint": model.footprint()}
    steps["eval_s"], summary["accuracy"] = _evaluate(model, data, out / "eval", log)
    steps["generate_s"], summary["verilog"] = _generate(model, lanes, out / "verilog", log)
    steps["sim_s"], summary["sim"] = _simulate(model, lanes, simulator, seed, frames,
                                               out / "sim", log)
    summary["builds"] = []
    if boards:
        steps["builds_s"], summary["builds"] = _build_all(model, boards, out / "build", clock,
                                                          log, jobs)
    summary["total_s"] = round(time.monotonic() - t_start, 1)
    summary["ok"] = bool(summary["sim"]["ok"]) and all("error" not in b
                                                       for b in summary["builds"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def _train(data: str | Path, model_path: Path, recipe: str, bits: int, epochs: int | None,
           seed: int, log: Callable[[str], None]) -> float:
    """Train and export the recipe's QAT reference network; returns the seconds it took."""
    # Imported only here: the training package is the one that needs torch.
    from ..train import train_reference

    with _step(log, f"train: {bits}-bit QAT reference network ({recipe} recipe)") as st:
        train_reference(data, model_path, bits=bits, epochs=epochs, seed=seed, recipe=recipe)
    return st.seconds


def _evaluate(model: modelfile.Model, data: str | Path, eval_dir: Path,
              log: Callable[[str], None]) -> tuple[float, dict]:
    """Evaluate on the validation speakers, results and plots in ``eval_dir``; returns the
    seconds and the accuracy per mode."""
    with _step(log, "evaluate on speakers not used for training") as st:
        ev = evaluate(model, data, split="validation", modes=("golden", "float"),
                      plots=eval_dir, progress=False)
        eval_dir.mkdir(exist_ok=True)
        (eval_dir / "results.json").write_text(json.dumps(ev, indent=1, default=float))
    return st.seconds, {mode: r.get("accuracy") for mode, r in ev["results"].items()}


def _generate(model: modelfile.Model, lanes: int, verilog_dir: Path,
              log: Callable[[str], None]) -> tuple[float, dict]:
    """Generate the accelerator's Verilog; returns the seconds and its summary entry."""
    with _step(log, f"generate Verilog ({lanes} lanes)") as st:
        rep = generate(model, lanes, verilog_dir)
    return st.seconds, {"path": str(verilog_dir / rep["files"]["verilog"]), "lanes": lanes,
                        "cycles": rep["cycles"], "memory_bits": rep["memory_bits"]}


def _simulate(model: modelfile.Model, lanes: int, simulator: str, seed: int, frames: int,
              build_dir: Path, log: Callable[[str], None]) -> tuple[float, dict]:
    """Check the Verilog bit-exactly against the golden model in cocotb; returns the seconds
    and the simulation's summary entry."""
    from sim.network import SimSettings, run_network_sim

    with _step(log, f"cocotb: {frames} real frames in {simulator}, bit-exact check") as st:
        sim = run_network_sim(model, SimSettings(lanes=lanes, simulator=simulator, seed=seed,
                                                 gap_prob=0.1, stall_prob=0.1,
                                                 build_dir=build_dir),
                              n_frames=frames)
    if not sim.ok:
        log(f"    MISMATCH: {sim.first_mismatch_text}")
    return st.seconds, {k: getattr(sim, k) for k in (
        "ok", "simulator", "frames_checked", "values_checked", "mismatches",
        "first_mismatch_text", "cycles_per_frame", "frames_per_second", "wave")}


def _build_all(model: modelfile.Model, boards: Sequence[tuple[str, int]], build_root: Path,
               clock: float | str | None, log: Callable[[str], None],
               workers: int | None = None) -> tuple[float, list]:
    """Build every board's bitstream, ``workers`` at a time (by default as many as there are
    cores); returns the seconds it took and the summary entries, in the order of ``boards``.

    Each build is one single-threaded synthesis and place-and-route, so two boards on two
    cores take at best the time of the slower one (on a shared 2-vCPU machine the two slow
    each other down: docs/training.md). The builds run in spawned processes ("fork" is
    unsafe after training has started torch's threads) and do not share any file.
    """
    if workers is None:
        workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    workers = max(1, min(len(boards), workers))
    names = ", ".join(board for board, _ in boards)
    entries: list = [None] * len(boards)
    with _step(log, f"build {names} ({workers} at a time)") as st:
        if workers == 1:
            for i, (board, lanes) in enumerate(boards):
                entries[i] = _log_build(log, _build(model, board, lanes, build_root, clock))
        else:
            with ProcessPoolExecutor(max_workers=workers,
                                     mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_build, model, board, lanes, build_root, clock): i
                           for i, (board, lanes) in enumerate(boards)}
                for fut in as_completed(futures):
                    entries[futures[fut]] = _log_build(log, fut.result())
    return st.seconds, entries


def _log_build(log: Callable[[str], None], entry: dict) -> dict:
    log(f"    {entry['board']}: "
        + (f"not built: {entry['error']}" if "error" in entry else
           f"{entry['fmax_mhz']} MHz fmax, clock {entry['clock_mhz']:g} MHz")
        + f" ({entry['build_s']} s)")
    return entry


def _build(model: modelfile.Model, board: str, lanes: int, build_root: Path,
           clock: float | str | None) -> dict:
    """Build one board's bitstream; its summary entry (with ``error`` if it failed)."""
    from boards.build import build

    t0 = time.monotonic()
    try:
        b = build(board, model, lanes=lanes, out_dir=build_root / f"{board}-{model.bits}b",
                  sys_clk_hz=clock)
        entry = _build_entry(b)
    except Exception as e:  # a refused or failed build is a result, not a crash
        entry = {"board": board, "lanes": lanes, "error": str(e)}
    entry["build_s"] = round(time.monotonic() - t0, 1)
    return entry


def _build_entry(rep: dict) -> dict:
    clock, util, thr = rep["clock"], rep["utilization"], rep["throughput"]

    def used(kind):
        e = util.get(kind)
        return None if not e else f"{e['used']:,}/{e['available']:,}"

    return {
        "board": rep["board"], "fpga": rep["fpga"], "lanes": rep["lanes"],
        "luts": used("luts") or used("lcs"), "ffs": used("ffs"), "dsps": used("dsps"),
        "bram": used("bram"), "spram": used("spram"),
        "fmax_mhz": clock["achieved_mhz"], "clock_mhz": clock["target_mhz"],
        "timing_met": clock["timing_met"],
        "cycles_per_frame": thr["cycles_per_frame"],
        "latency_ms": thr["compute_ms_per_frame"],
        "bitstream": rep["files"]["bitstream"],
    }


def format_summary(s: dict) -> str:
    """The summary as a text table."""
    m = s["model"]
    fp = m["footprint"]
    acc = s.get("accuracy", {})
    lines = [
        f"model      {m['path']} ({m['sha256'][:12]}), {' -> '.join(map(str, m['shape']))}, "
        f"{m['bits']}-bit",
        "accuracy   " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()
                                  if v is not None) + " (validation speakers, 12-class top-1)",
        f"memory     {fp['total_bits']:,} bits = {100 * fp['ratio_to_float32']:.1f}% of "
        f"float32 ({fp['float32_bits']:,} bits)",
        f"cycles     {s['verilog']['cycles']['per_frame']:,}/frame at "
        f"{s['verilog']['lanes']} lanes (ideal {s['verilog']['cycles']['ideal_per_frame']:,})",
        f"cocotb     {s['sim']['frames_checked']} frames in {s['sim']['simulator']}: "
        f"{s['sim']['mismatches']} mismatches",
        "",
        f"{'board':<12} {'lanes':>5} {'LUTs':>14} {'FFs':>14} {'DSPs':>8} {'BRAM':>8} "
        f"{'SPRAM':>6} {'fmax MHz':>9} {'clock':>6} {'latency/frame':>14}",
    ]
    for b in s["builds"]:
        if "error" in b:
            lines.append(f"{b['board']:<12} {b['lanes']:>5}  not built: {b['error']}")
            continue
        lines.append(
            f"{b['board']:<12} {b['lanes']:>5} {b['luts'] or '-':>14} {b['ffs'] or '-':>14} "
            f"{b['dsps'] or '-':>8} {b['bram'] or '-':>8} {b['spram'] or '-':>6} "
            f"{b['fmax_mhz']:>9.1f} {b['clock_mhz']:>6g} {b['latency_ms']:>11.2f} ms")
    lines.append("")
    lines.append(f"total {s['total_s']:.0f} s; everything in {s['out']} (summary.json)")
    return "\n".join(lines)
