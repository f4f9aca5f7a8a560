"""Whole-network simulation of the generated Verilog, checked against the golden model.

:func:`run_network_sim` is the library entry point (the ``kwshw sim`` command calls it):
generate the accelerator's Verilog for a model (:func:`kwshw.generate.generate`, with the
trace port), play feature frames through it in Icarus or Verilator under cocotb
(:mod:`sim.tb_network`), and compare every score and every layer output with
:func:`kwshw.golden.run_network` (:mod:`sim.scoreboard`). On a mismatch the result names
the first mismatching frame, layer and column, and the simulation is rerun with waves.

:func:`run_scenario` is the general form used by the tests: a scenario of frame stretches
and interruptions (``rst`` or ``clear`` in the middle of a frame), optionally on a
synthesized gate-level netlist (:mod:`sim.gatelevel`). Both take a :class:`SimSettings`
and return a :class:`SimResult`; its stages are the simulator's sources (:func:`_sources`),
the testbench run (:func:`_simulate`), the scoreboard (:func:`sim.scoreboard.check` on
:func:`_segments`) and the summary (:func:`_summarize`).

Nothing here imports torch or cocotb (cocotb runs in the simulator's process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kwshw.hw.memories import load_words
from kwshw.modelfile import Model

from . import toolchain
from .scoreboard import CheckResult, SegmentRecord, X, check

__all__ = ["SimSettings", "SimResult", "Design", "build_design", "run_network_sim",
           "run_scenario", "default_frames", "cache_root"]

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


@dataclass(frozen=True)
class SimSettings:
    """How to simulate a design: the design point, the simulator and the stimulus timing.

    Attributes
    ----------
    lanes : int
        MAC lanes ``P``.
    simulator : {"icarus", "verilator"}
    memory : {"bram", "spram"}
        Weight memory of the generated design.
    seed : int
        Seeds the input gaps and back-pressure (and the frame choice of
        :func:`run_network_sim`).
    gap_prob, stall_prob : float
        Random gaps in the input stream and random back-pressure on the scores.
    waves : bool
        Write an FST/VCD waveform (also with ``KWSHW_WAVES=1``).
    auto_waves : bool
        Rerun a failing simulation with waves.
    build_dir : path, optional
        Folder of the simulator build and the run files (default: in :func:`cache_root`).
    trace : bool
        Generate and record the trace port (every layer output), not only the scores.
    verilog_patch : callable, optional
        Test-only: rewrites the generated Verilog text before simulation (bug injection).
    gate_level : {"ecp5", "ice40"}, optional
        Synthesize the Verilog with Yosys for that architecture and simulate the netlist
        with Yosys's cell models instead of the RTL (Icarus only).
    stall_cycles : int, optional
        Cycles without any transfer after which the design counts as stalled (default:
        from the design's cycles per frame).
    verbose : bool
        Print the outcome also when the run passes.
    """

    lanes: int
    simulator: str = "icarus"
    memory: str = "bram"
    seed: int = 0
    gap_prob: float = 0.0
    stall_prob: float = 0.0
    waves: bool = False
    auto_waves: bool = True
    build_dir: str | Path | None = None
    trace: bool = True
    verilog_patch: Callable[[str], str] | None = None
    gate_level: str | None = None
    stall_cycles: int | None = None
    verbose: bool = False


#: The FPGA family (:func:`kwshw.generate.generate`) of each gate-level architecture.
GATE_LEVEL_FAMILIES = {"ecp5": "ecp5", "ice40": "iCE40"}

#: :class:`SimResult` fields that :meth:`SimResult.to_dict` leaves out when unset.
_OPTIONAL_FIELDS = ("cycles_per_frame_min", "cycles_per_frame_max",
                    "wave_rerun_first_mismatch", "frames_source")


@dataclass
class SimResult:
    """Outcome of :func:`run_scenario` / :func:`run_network_sim`; :meth:`to_dict` is its JSON.

    ``first_mismatch`` (``frame``, ``layer``, ``column``, ``expected``, ``got``, ...) and
    ``first_mismatch_text`` locate the first wrong value; ``cycles_per_frame`` is measured,
    ``expected_cycles_per_frame`` is the generator's report; ``frames_per_second`` is the
    simulation speed; ``wave`` is the waveform's path (or None).
    """

    ok: bool
    simulator: str
    lanes: int
    bits: int
    shape: list[int]
    seed: int
    frames: int
    frames_checked: int
    values_checked: int
    mismatches: int
    first_mismatch: dict | None
    first_mismatch_text: str | None
    per_layer_mismatches: list[int]
    score_mismatches: int
    stalled: bool
    segments: int
    cycles_per_frame: int | None
    first_frame_latency: int | None
    expected_cycles_per_frame: int | None
    ideal_cycles_per_frame: int | None
    simulated_cycles: int
    sim_seconds: float
    sim_total_seconds: float
    build_seconds: float
    frames_per_second: float | None
    wave: str | None
    log: str
    build_dir: str
    verilog: str
    notes: list[str]
    netlist: dict | None
    # Only set when measured (a steady stretch of frames), rerun with waves, or given.
    cycles_per_frame_min: int | None = None
    cycles_per_frame_max: int | None = None
    wave_rerun_first_mismatch: str | None = None
    frames_source: str | None = None

    def to_dict(self) -> dict:
        """The result as JSON-ready dict; the optional fields only when set."""
        d = dataclasses.asdict(self)
        for k in _OPTIONAL_FIELDS:
            if d[k] is None:
                del d[k]
        return d


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
                 name: str = "kwshw_accel", folder: str | Path | None = None,
                 family: str | None = None) -> Design:
    """Generate (or reuse from the cache) the Verilog of ``model`` on ``lanes`` lanes (for
    ``family``, :func:`kwshw.generate.generate`)."""
    from kwshw.generate import generate

    key = hashlib.sha256(f"{model.sha256}:{lanes}:{memory}:{trace}:{name}:{family}:"
                         f"{_source_digest()}".encode()).hexdigest()[:20]
    folder = Path(folder) if folder else cache_root() / "designs" / key
    rep_path = folder / "report.json"
    v_path = folder / f"{name}.v"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if not (rep_path.exists() and v_path.exists()):
            generate(model, lanes, folder, memory=memory, name=name, trace=trace,
                     family=family)
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


@dataclass
class _Sources:
    """What the simulator compiles for one variant (RTL, patched RTL or netlist)."""

    root: Path                  # run folder (absolute: the simulator reads it from elsewhere)
    verilog: Path               # the (possibly patched) RTL written there
    files: list[Path]
    includes: list[Path] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    netlist: dict | None = None


@dataclass
class _Raw:
    """What the testbench recorded, and the simulator run that recorded it."""

    result: dict                # the testbench's JSON (see :mod:`sim.tb_network`)
    run: toolchain.SimRun
    seconds: float              # wall time of the simulator call, build included


def _resolve(settings: SimSettings, design: Design) -> SimSettings:
    """``settings`` with the environment's waves request and the stall limit filled in."""
    stall_cycles = settings.stall_cycles
    if stall_cycles is None:
        stall_cycles = 4 * (design.cycles_per_frame or 50_000) + 2000
        if settings.stall_prob:
            stall_cycles *= 2
    return dataclasses.replace(settings, stall_cycles=stall_cycles,
                               waves=settings.waves or toolchain.waves_requested(None))


def _variant(design: Design, settings: SimSettings) -> tuple[str, str]:
    """The Verilog text to simulate and its variant name (``rtl`` or ``patched``)."""
    text = design.verilog.read_text()
    if settings.verilog_patch is None:
        return text, "rtl"
    return settings.verilog_patch(text), "patched"


def _run_folder(text: str, settings: SimSettings) -> Path:
    digest = hashlib.sha256((text + str(settings.gate_level)).encode()).hexdigest()[:16]
    root = Path(settings.build_dir) if settings.build_dir else cache_root() / "runs" / digest
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _sources(design: Design, text: str, variant: str, root: Path,
             settings: SimSettings) -> _Sources:
    """Write the Verilog to simulate into its run folder (synthesized if asked).

    Call it under the folder's lock (:func:`_locked`).
    """
    src = root / f"{design.top}_{variant}.v"
    _write_if_changed(src, text)
    if not settings.gate_level:
        return _Sources(root=root, verilog=src, files=[src])
    from . import gatelevel

    if settings.simulator != "icarus":
        raise ValueError("gate-level simulation runs in Icarus (Yosys cell models)")
    arch = settings.gate_level
    net = gatelevel.synthesize(src, design.top, arch, root / f"gate-{arch}")
    info = {"arch": arch, "cells": net.cells, "ram_cells": net.ram_cells,
            "dsp_cells": net.dsp_cells, "rams": net.rams, "netlist": str(net.netlist),
            "synth_seconds": round(net.seconds, 1)}
    return _Sources(root=root, verilog=src, files=[net.netlist, *net.cell_models],
                    includes=net.include_dirs, defines=net.defines, netlist=info)


def _testbench_config(model: Model, ops: Sequence[dict], settings: SimSettings,
                      result_path: Path) -> dict:
    """The scenario file of :mod:`sim.tb_network`."""
    plans = model.plans()
    n_out = plans[-1].n_out
    final = 0   # scores expected in the last segment
    for op in ops:
        final = 0 if op["op"] == "interrupt" else final + (
            len(op["frames"]) * n_out if op["op"] == "frames" else 0)
    s = settings
    return {"n_mels": model.features.n_mels, "n_out": n_out, "n_layers": len(plans),
            "max_n_out": max(p.n_out for p in plans), "trace": s.trace, "seed": s.seed,
            "gap_prob": s.gap_prob, "stall_prob": s.stall_prob, "max_gap": 6, "max_stall": 8,
            "stall_cycles": s.stall_cycles, "tail_cycles": 64 + n_out * 4,
            "final_scores": final, "ops": _jsonable(ops), "out": str(result_path),
            "load_words": load_words(plans, s.lanes)[0] if s.memory == "spram" else []}


def _jsonable(ops):
    out = []
    for op in ops:
        op = dict(op)
        for k in ("frames", "partial"):
            if k in op:
                op[k] = np.asarray(op[k], np.int64).tolist()
        out.append(op)
    return out


def _simulate(model: Model, ops: Sequence[dict], design: Design, src: _Sources,
              settings: SimSettings) -> _Raw:
    """Run the testbench on ``src`` and read back what it recorded."""
    s = settings
    result_path = src.root / f"result-{s.seed}-{int(s.waves)}.json"
    cfg_path = src.root / f"scenario-{s.seed}-{int(s.waves)}.json"
    cfg_path.write_text(json.dumps(_testbench_config(model, ops, s, result_path)))
    if result_path.exists():
        result_path.unlink()
    t0 = time.perf_counter()
    run = toolchain.simulate(src.files, design.top, "sim.tb_network", simulator=s.simulator,
                             build_dir=src.root, waves=s.waves,
                             env={"KWSHW_TB_CONFIG": str(cfg_path)},
                             seed=s.seed, includes=src.includes, defines=src.defines,
                             icarus_generation="2012" if s.gate_level else "2005")
    seconds = time.perf_counter() - t0
    return _Raw(result=json.loads(result_path.read_text()), run=run, seconds=seconds)


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


def _timing(result: dict, n_out: int) -> dict:
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


def _summarize(model: Model, design: Design, settings: SimSettings, src: _Sources,
               raw: _Raw, chk: CheckResult, segments: int, build_seconds: float) -> SimResult:
    result, s = raw.result, settings
    timing = _timing(result, model.plans()[-1].n_out)
    wall = result["wall_seconds"]
    notes = chk.notes
    if result["stalled"]:
        notes.append(f"design stopped producing outputs (no transfer for "
                     f"{s.stall_cycles} cycles)")
    return SimResult(
        ok=chk.ok and not result["stalled"],
        simulator=s.simulator + (f" gate-level {s.gate_level}" if s.gate_level else ""),
        lanes=s.lanes, bits=model.bits, shape=model.shape, seed=s.seed,
        frames=chk.frames, frames_checked=chk.frames_checked,
        values_checked=chk.values_checked, mismatches=chk.mismatches,
        first_mismatch=chk.first.as_dict() if chk.first else None,
        first_mismatch_text=str(chk.first) if chk.first else None,
        per_layer_mismatches=chk.per_layer, score_mismatches=chk.score_mismatches,
        stalled=result["stalled"], segments=segments,
        cycles_per_frame=timing["cycles_per_frame"],
        first_frame_latency=timing["first_frame_latency"],
        expected_cycles_per_frame=design.cycles_per_frame,
        ideal_cycles_per_frame=design.report.get("cycles", {}).get("ideal_per_frame"),
        simulated_cycles=result["end_cycle"], sim_seconds=round(wall, 3),
        sim_total_seconds=round(raw.seconds, 3), build_seconds=round(build_seconds, 3),
        frames_per_second=round(chk.frames / wall, 2) if wall > 0 else None,
        wave=str(raw.run.wave) if raw.run.wave else None, log=str(raw.run.log),
        build_dir=str(src.root), verilog=str(src.verilog), notes=notes, netlist=src.netlist,
        cycles_per_frame_min=timing.get("cycles_per_frame_min"),
        cycles_per_frame_max=timing.get("cycles_per_frame_max"))


def _truncate(ops: list[dict], frame: int | None) -> list[dict]:
    """For the wave rerun: a plain frame stream is cut just after the first bad frame."""
    if frame is None or len(ops) != 1 or ops[0]["op"] != "frames":
        return ops
    return [{"op": "frames", "frames": list(ops[0]["frames"])[:frame + 2]}]


def run_scenario(model: Model, ops: list[dict], settings: SimSettings, *,
                 design: Design | None = None) -> SimResult:
    """Play ``ops`` (see :mod:`sim.tb_network`) through the accelerator and check everything.

    Parameters
    ----------
    model : Model
        The quantized network.
    ops : list of dict
        The scenario: frame stretches, interrupts, waits.
    settings : SimSettings
        Lanes, simulator, stimulus timing, waves, variant (patched, gate level).
    design : Design, optional
        A design already generated with :func:`build_design` (else generated here).

    Returns
    -------
    SimResult
    """
    t0 = time.perf_counter()
    if design is None:
        # A netlist of a family is synthesized from that family's Verilog, as a board's is.
        design = build_design(model, settings.lanes, memory=settings.memory,
                              trace=settings.trace,
                              family=GATE_LEVEL_FAMILIES.get(settings.gate_level))
    settings = _resolve(settings, design)
    # Other processes (other engineers' test runs) may simulate the same design in the same
    # cache folder at the same time: one at a time per folder.
    text, variant = _variant(design, settings)
    root = _run_folder(text, settings)
    with _locked(root / ".lock"):
        src = _sources(design, text, variant, root, settings)
        build_seconds = time.perf_counter() - t0
        raw = _simulate(model, ops, design, src, settings)
    segs = _segments(ops, raw.result, model.features.n_mels)
    chk = check(model.plans(), model.features.context, model.features.stride, segs,
                use_trace=settings.trace)
    res = _summarize(model, design, settings, src, raw, chk, len(segs), build_seconds)
    if not res.ok and not settings.waves and settings.auto_waves:
        rerun_ops = _truncate(ops, chk.first.frame if chk.first else None)
        again = run_scenario(model, rerun_ops, dataclasses.replace(
            settings, waves=True, auto_waves=False, build_dir=src.root), design=design)
        res.wave = again.wave
        res.wave_rerun_first_mismatch = again.first_mismatch_text
    if settings.verbose or not res.ok:
        msg = f"[kwshw sim] {res.simulator} seed={settings.seed}: {chk.summary()}"
        if res.wave:
            msg += f"\n[kwshw sim] waves: {res.wave}"
        msg += f"\n[kwshw sim] log: {res.log}"
        print(msg)
    return res


def run_network_sim(model: Model, settings: SimSettings, *, frames: np.ndarray | None = None,
                    n_frames: int = 50) -> SimResult:
    """Simulate the accelerator generated for ``model`` on a stream of frames and check every
    output against the golden model.

    Parameters
    ----------
    model : Model
        The quantized network.
    settings : SimSettings
        Lanes, simulator, stimulus timing, waves (a failing run is rerun with waves unless
        ``auto_waves`` is off); ``seed`` also chooses the default frames.
    frames : ndarray (T, n_mels) of int, optional
        Integer input frames (the format the host sends). Default: ``n_frames`` real frames
        from ``$KWSHW_DATA`` recordings (random frames when the data is missing).

    Returns
    -------
    SimResult
        With ``frames_source`` set.
    """
    source = "given frames"
    if frames is None:
        frames, source = default_frames(model, n_frames, seed=settings.seed)
    frames = np.asarray(frames, np.int64)
    if frames.ndim != 2 or frames.shape[1] != model.features.n_mels:
        raise ValueError(f"frames must have shape (T, {model.features.n_mels}), "
                         f"got {frames.shape}")
    res = run_scenario(model, [{"op": "frames", "frames": frames}], settings)
    res.frames_source = source
    return res
