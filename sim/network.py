"""Whole-network simulation of the generated Verilog, checked against the golden model.

:func:`run_network_sim` is the library entry point (the ``kwshw sim`` command calls it):
generate the accelerator's Verilog for a model (:func:`kwshw.generate.generate`, with the
trace port), play feature frames through it in Icarus or Verilator under cocotb
(:mod:`sim.tb_network`), and compare every score and every layer output with
:func:`kwshw.golden.run_network` (:mod:`sim.scoreboard`). On a mismatch the result names
the first mismatching frame, layer and column, and the simulation is rerun with waves.

:func:`run_scenario` is the general form used by the tests: a scenario of frame stretches
and interruptions (``rst`` or ``clear`` in the middle of a frame), optionally on a
synthesized gate-level netlist (:mod:`sim.gatelevel`).

Nothing here imports torch or cocotb (cocotb runs in the simulator's process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwshw.modelfile import Model

from . import toolchain
from .scoreboard import SegmentRecord, X, check

__all__ = ["Design", "build_design", "run_network_sim", "run_scenario", "default_frames",
           "cache_root"]

_REPO = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """Where designs and simulator builds are kept between runs (``$KWSHW_SIM_CACHE`` or a
    per-user folder in the temporary directory)."""
    env = os.environ.get("KWSHW_SIM_CACHE")
    root = Path(env) if env else Path(tempfile.gettempdir()) / f"kwshw-sim-{os.getuid()}"
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _source_digest() -> str:
    """Hash of the code that determines the generated Verilog (hardware and arithmetic)."""
    h = hashlib.sha256()
    files = sorted((_REPO / "kwshw" / "hw").glob("*.py"))
    files += [_REPO / "kwshw" / n for n in ("generate.py", "arith.py", "quantize.py",
                                            "golden.py", "modelfile.py")]
    for f in files:
        if f.exists():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (created if missing) for the block."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Design:
    """One generated accelerator: its Verilog, top module name and report."""

    verilog: Path
    top: str
    report: dict
    folder: Path

    @property
    def cycles_per_frame(self) -> int | None:
        return self.report.get("cycles", {}).get("per_frame")


def build_design(model: Model, lanes: int, *, memory: str = "bram", trace: bool = True,
                 name: str = "kwshw_accel", folder: str | Path | None = None) -> Design:
    """Generate (or reuse from the cache) the Verilog of ``model`` on ``lanes`` lanes."""
    from kwshw.generate import generate

    key = hashlib.sha256(f"{model.sha256}:{lanes}:{memory}:{trace}:{name}:"
                         f"{_source_digest()}".encode()).hexdigest()[:20]
    folder = Path(folder) if folder else cache_root() / "designs" / key
    rep_path = folder / "report.json"
    v_path = folder / f"{name}.v"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if not (rep_path.exists() and v_path.exists()):
            generate(model, lanes, folder, memory=memory, name=name, trace=trace)
    report = json.loads(rep_path.read_text())
    return Design(verilog=v_path, top=name, report=report, folder=folder)


def default_frames(model: Model, n_frames: int, *, seed: int = 0) -> tuple[np.ndarray, str]:
    """``n_frames`` integer input frames: real speech features when ``$KWSHW_DATA`` is there,
    else random frames. Returns the frames and a description of their source."""
    from . import stimulus

    if stimulus.data_dir() is not None:
        lfbe, files = stimulus.real_lfbe(n_frames, model.features, seed=seed)
        return stimulus.real_frames(model, lfbe), f"real LFBE frames from {len(files)} recordings"
    return (stimulus.random_frames(n_frames, model.features.n_mels, seed=seed),
            "random frames (KWSHW_DATA not found)")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _segments(ops: Sequence[dict], result: dict, n_mels: int) -> list[SegmentRecord]:
    """Split the recorded transfers into segments at the interrupts."""
    segs: list[SegmentRecord] = []
    cur: list = []
    for op in ops:
        if op["op"] == "frames":
            cur.extend(op["frames"])
        elif op["op"] == "interrupt":
            if len(op.get("partial", [])) == n_mels:
                cur.append(op["partial"])
            segs.append(SegmentRecord(frames=np.array(cur, np.int64).reshape(-1, n_mels),
                                      interrupted=True))
            cur = []
    segs.append(SegmentRecord(frames=np.array(cur, np.int64).reshape(-1, n_mels)))
    bounds = [i["cycle"] for i in result["interrupts"]] + [float("inf")]

    def seg_of(cycle: int) -> int:
        for k, b in enumerate(bounds):
            if cycle <= b:
                return k
        return len(bounds) - 1

    def num(v):
        return X if v is None else int(v)

    for value, cycle in result["scores"]:
        segs[seg_of(cycle)].scores.append(num(value))
    for layer, index, value, cycle in result["trace"]:
        # An X layer or index cannot be placed; it counts as a surplus record.
        segs[seg_of(cycle)].trace.append((-1 if layer is None else int(layer),
                                          -1 if index is None else int(index), num(value)))
    return segs


def _timing(ops: Sequence[dict], result: dict, n_out: int) -> dict:
    """Cycles per frame (steady state: spacing of consecutive frames' last scores within a
    stretch of back-to-back frames) and the latency of the first frame."""
    cyc = [c for _, c in result["scores"]]
    last = cyc[n_out - 1::n_out]
    out: dict = {"cycles_per_frame": None, "first_frame_latency": None}
    if result["frame_done"] and last:
        out["first_frame_latency"] = int(last[0] - result["frame_done"][0])
    if not result["interrupts"] and len(last) >= 3:
        d = np.diff(last[1:])   # skip the first frame (its successor was not yet pending)
        out["cycles_per_frame"] = int(np.median(d))
        out["cycles_per_frame_min"] = int(d.min())
        out["cycles_per_frame_max"] = int(d.max())
    return out


def run_scenario(model: Model, ops: list[dict], *, lanes: int, simulator: str = "icarus",
                 memory: str = "bram", seed: int = 0, gap_prob: float = 0.0,
                 stall_prob: float = 0.0, waves: bool = False, auto_waves: bool = True,
                 build_dir: str | Path | None = None, trace: bool = True,
                 verilog_patch: Callable[[str], str] | None = None,
                 gate_level: str | None = None, stall_cycles: int | None = None,
                 design: Design | None = None, verbose: bool = False) -> dict:
    """Play ``ops`` (see :mod:`sim.tb_network`) through the accelerator and check everything.

    Parameters
    ----------
    verilog_patch : callable, optional
        Test-only: rewrites the generated Verilog text before simulation (bug injection).
    gate_level : {"ecp5", "ice40"}, optional
        Synthesize the Verilog with Yosys for that architecture and simulate the netlist
        with Yosys's cell models instead of the RTL (Icarus only).
    design : Design, optional
        A design already generated with :func:`build_design` (else generated here).

    Returns
    -------
    dict
        See :func:`run_network_sim`.
    """
    waves = waves or toolchain.waves_requested(None)
    plans = model.plans()
    feats = model.features
    n_mels, n_out = feats.n_mels, plans[-1].n_out
    t0 = time.perf_counter()
    if design is None:
        design = build_design(model, lanes, memory=memory, trace=trace)
    text = design.verilog.read_text()
    variant = "rtl"
    if verilog_patch is not None:
        text = verilog_patch(text)
        variant = "patched"
    digest = hashlib.sha256((text + str(gate_level)).encode()).hexdigest()[:16]
    # Absolute: the simulator runs in its own folder and reads these paths from there.
    root = (Path(build_dir) if build_dir else cache_root() / "runs" / digest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    # Other processes (other engineers' test runs) may simulate the same design in the same
    # cache folder at the same time: one at a time per folder.
    with _locked(root / ".lock"):
        src = root / f"{design.top}_{variant}.v"
        _write_if_changed(src, text)
        sources = [src]
        includes: list[Path] = []
        defines: list[str] = []
        netlist_info = None
        if gate_level:
            from . import gatelevel

            if simulator != "icarus":
                raise ValueError("gate-level simulation runs in Icarus (Yosys cell models)")
            net = gatelevel.synthesize(src, design.top, gate_level, root / f"gate-{gate_level}")
            sources = [net.netlist, *net.cell_models]
            includes = net.include_dirs
            defines = net.defines
            netlist_info = {"arch": gate_level, "cells": net.cells, "ram_cells": net.ram_cells,
                            "dsp_cells": net.dsp_cells, "rams": net.rams,
                            "netlist": str(net.netlist), "synth_seconds": round(net.seconds, 1)}
        build_seconds = time.perf_counter() - t0

        per_frame = design.cycles_per_frame or 50_000
        if stall_cycles is None:
            stall_cycles = 4 * per_frame + 2000
            if stall_prob:
                stall_cycles *= 2
        final = 0
        for op in ops:
            final = 0 if op["op"] == "interrupt" else final + (
                len(op["frames"]) * n_out if op["op"] == "frames" else 0)
        result_path = root / f"result-{seed}-{int(waves)}.json"
        cfg = {"n_mels": n_mels, "n_out": n_out, "n_layers": len(plans),
               "max_n_out": max(p.n_out for p in plans), "trace": trace,
               "seed": seed,
               "gap_prob": gap_prob, "stall_prob": stall_prob, "max_gap": 6, "max_stall": 8,
               "stall_cycles": stall_cycles, "tail_cycles": 64 + n_out * 4,
               "final_scores": final, "ops": _jsonable(ops), "out": str(result_path)}
        cfg_path = root / f"scenario-{seed}-{int(waves)}.json"
        cfg_path.write_text(json.dumps(cfg))
        with_result = result_path.exists()
        if with_result:
            result_path.unlink()
        t1 = time.perf_counter()
        run = toolchain.simulate(sources, design.top, "sim.tb_network", simulator=simulator,
                                 build_dir=root, waves=waves,
                                 env={"KWSHW_TB_CONFIG": str(cfg_path)},
                                 seed=seed, includes=includes, defines=defines,
                                 icarus_generation="2012" if gate_level else "2005")
        sim_total = time.perf_counter() - t1
        result = json.loads(result_path.read_text())
    segs = _segments(ops, result, n_mels)
    chk = check(plans, feats.context, feats.stride, segs, use_trace=trace)
    timing = _timing(ops, result, n_out)
    frames = chk.frames
    out = {
        "ok": chk.ok and not result["stalled"],
        "simulator": simulator + (f" gate-level {gate_level}" if gate_level else ""),
        "lanes": lanes,
        "bits": model.bits,
        "shape": model.shape,
        "seed": seed,
        "frames": frames,
        "frames_checked": chk.frames_checked,
        "values_checked": chk.values_checked,
        "mismatches": chk.mismatches,
        "first_mismatch": chk.first.as_dict() if chk.first else None,
        "first_mismatch_text": str(chk.first) if chk.first else None,
        "per_layer_mismatches": chk.per_layer,
        "score_mismatches": chk.score_mismatches,
        "stalled": result["stalled"],
        "segments": len(segs),
        "cycles_per_frame": timing["cycles_per_frame"],
        "first_frame_latency": timing["first_frame_latency"],
        "expected_cycles_per_frame": design.cycles_per_frame,
        "ideal_cycles_per_frame": design.report.get("cycles", {}).get("ideal_per_frame"),
        "simulated_cycles": result["end_cycle"],
        "sim_seconds": round(result["wall_seconds"], 3),
        "sim_total_seconds": round(sim_total, 3),
        "build_seconds": round(build_seconds, 3),
        "frames_per_second": round(frames / result["wall_seconds"], 2)
        if result["wall_seconds"] > 0 else None,
        "wave": str(run.wave) if run.wave else None,
        "log": str(run.log),
        "build_dir": str(root),
        "verilog": str(src),
        "notes": chk.notes,
        "netlist": netlist_info,
    }
    for k in ("cycles_per_frame_min", "cycles_per_frame_max"):
        if k in timing:
            out[k] = timing[k]
    if result["stalled"]:
        out["notes"].append(f"design stopped producing outputs (no transfer for "
                            f"{stall_cycles} cycles)")
    if not out["ok"] and not waves and auto_waves:
        rerun_ops = _truncate(ops, chk.first.frame if chk.first else None)
        again = run_scenario(model, rerun_ops, lanes=lanes, simulator=simulator,
                             memory=memory, seed=seed, gap_prob=gap_prob,
                             stall_prob=stall_prob, waves=True, auto_waves=False,
                             build_dir=root, trace=trace, verilog_patch=verilog_patch,
                             gate_level=gate_level, stall_cycles=stall_cycles, design=design)
        out["wave"] = again["wave"]
        out["wave_rerun_first_mismatch"] = again["first_mismatch_text"]
    if verbose or not out["ok"]:
        msg = f"[kwshw sim] {out['simulator']} seed={seed}: {chk.summary()}"
        if out["wave"]:
            msg += f"\n[kwshw sim] waves: {out['wave']}"
        msg += f"\n[kwshw sim] log: {out['log']}"
        print(msg)
    return out


def _jsonable(ops):
    out = []
    for op in ops:
        op = dict(op)
        for k in ("frames", "partial"):
            if k in op:
                op[k] = np.asarray(op[k], np.int64).tolist()
        out.append(op)
    return out


def _truncate(ops: list[dict], frame: int | None) -> list[dict]:
    """For the wave rerun: a plain frame stream is cut just after the first bad frame."""
    if frame is None or len(ops) != 1 or ops[0]["op"] != "frames":
        return ops
    return [{"op": "frames", "frames": list(ops[0]["frames"])[:frame + 2]}]


def run_network_sim(model: Model, *, lanes: int, simulator: str = "icarus",
                    frames: np.ndarray | None = None, n_frames: int = 50, waves: bool = False,
                    seed: int = 0, build_dir: str | Path | None = None, memory: str = "bram",
                    gap_prob: float = 0.0, stall_prob: float = 0.0, trace: bool = True,
                    verilog_patch: Callable[[str], str] | None = None,
                    gate_level: str | None = None, verbose: bool = False,
                    auto_waves: bool = True) -> dict:
    """Simulate the accelerator generated for ``model`` on a stream of frames and check every
    output against the golden model.

    Parameters
    ----------
    model : Model
        The quantized network.
    lanes : int
        MAC lanes ``P``.
    simulator : {"icarus", "verilator"}
    frames : ndarray (T, n_mels) of int, optional
        Integer input frames (the format the host sends). Default: ``n_frames`` real frames
        from ``$KWSHW_DATA`` recordings (random frames when the data is missing).
    waves : bool
        Write an FST/VCD waveform (also with ``KWSHW_WAVES=1``); a failing run is rerun with
        waves automatically.
    seed : int
        Seeds the frame choice, input gaps and back-pressure.
    gap_prob, stall_prob : float
        Random gaps in the input stream and random back-pressure on the scores.
    auto_waves : bool
        Rerun a failing simulation with waves (default).

    Returns
    -------
    dict
        ``ok``, ``frames``, ``frames_checked``, ``values_checked``, ``mismatches``,
        ``first_mismatch`` (``frame``, ``layer``, ``column``, ``expected``, ``got``, ...)
        and ``first_mismatch_text``, ``cycles_per_frame`` (measured) with
        ``expected_cycles_per_frame`` (report) and ``ideal_cycles_per_frame``,
        ``frames_per_second`` (simulation speed), ``sim_seconds``, ``wave`` (path or None),
        ``log``, ``build_dir``, ``frames_source``.
    """
    source = "given frames"
    if frames is None:
        frames, source = default_frames(model, n_frames, seed=seed)
    frames = np.asarray(frames, np.int64)
    if frames.ndim != 2 or frames.shape[1] != model.features.n_mels:
        raise ValueError(f"frames must have shape (T, {model.features.n_mels}), "
                         f"got {frames.shape}")
    out = run_scenario(model, [{"op": "frames", "frames": frames}], lanes=lanes,
                       simulator=simulator, memory=memory, seed=seed, gap_prob=gap_prob,
                       stall_prob=stall_prob, waves=waves, build_dir=build_dir, trace=trace,
                       verilog_patch=verilog_patch, gate_level=gate_level, verbose=verbose,
                       auto_waves=auto_waves)
    out["frames_source"] = source
    return out
