"""The gateware front end (:class:`kwshw.hw.frontend.FrontEnd`) against its golden model on
audio, in Verilator or Icarus, as RTL or as a Yosys netlist of either FPGA family.

A plain Verilog testbench (``sim/kwshw_frontend_tb.v``) plays a clip's int16 samples into the
``pcm`` stream as fast as the front end takes them and writes every ``feat`` code to a file:
the simulator runs free, with no Python in the loop, and the codes are compared frame by
frame with :class:`kwshw.features_int.IntFrontEndStream` afterwards. The design is built once
and run once per clip (each run starts from reset).

``python bench/frontend_sim.py`` runs it on real clips; ``tests/test_frontend_check.py`` on a
short one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kwshw.features_int import IntFrontEnd, IntFrontEndStream
from kwshw.generate import Family
from kwshw.hw.frontend import FrontEnd

from .gatelevel import synthesize
from .toolchain import (
    VERILATOR_TIMING,
    SimulationError,
    convert,
    setup_env,
    verilator_makeflags,
)

__all__ = ["ClipResult", "FrontEndSim", "expected_frames"]

TESTBENCH = Path(__file__).with_name("kwshw_frontend_tb.v")
TOP = "kwshw_frontend_tb"


def expected_frames(fe: IntFrontEnd, pcm: np.ndarray) -> np.ndarray:
    """The golden frames of ``pcm`` cut to whole hops (what the testbench plays)."""
    hop = fe.cfg.hop_length
    return IntFrontEndStream(fe).run(np.asarray(pcm)[:len(pcm) // hop * hop])


@dataclass
class ClipResult:
    """One clip through the simulated front end.

    Attributes
    ----------
    frames : int
        Frames the golden model gives.
    frames_out : int
        Complete frames the simulation gave.
    mismatched_frames : list of int
        Frames whose codes differ (a missing frame counts as differing).
    cycles : int
        Simulated clock cycles.
    seconds : float
        Wall time of the run.
    """

    frames: int
    frames_out: int
    mismatched_frames: list[int] = field(default_factory=list)
    cycles: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatched_frames and self.frames_out == self.frames


class FrontEndSim:
    """A built simulation of one front end.

    Parameters
    ----------
    fe : IntFrontEnd
        The golden front end, with its normalization (the model's).
    work_dir : path
        Build folder (Verilog, netlist, simulator build, per-clip files).
    simulator : {"verilator", "icarus"}
        The simulator (Icarus is far slower than Verilator on a netlist: use it for a few
        hops only).
    gate_level : {None, "ice40", "ecp5"}
        Simulate the Yosys netlist of this family instead of the RTL.
    work_memory : str
        :class:`~kwshw.hw.frontend.FrontEnd`'s FFT work memory. At iCE40 gate level the SPRAM
        ones are ``SB_SPRAM256KA`` blocks (Yosys's models); elsewhere their model, a
        memory with the same contract.
    """

    def __init__(self, fe: IntFrontEnd, work_dir: str | os.PathLike, *,
                 simulator: str = "verilator", gate_level: str | None = None,
                 work_memory: str = "bram") -> None:
        if simulator not in ("verilator", "icarus"):
            raise ValueError(f"simulator must be 'verilator' or 'icarus', got {simulator!r}")
        self.fe, self.simulator, self.gate_level = fe, simulator, gate_level
        self.dir = Path(work_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dut = FrontEnd(fe, work_memory)
        self._platform = Family("iCE40") if gate_level == "ice40" else None
        self.build_seconds = 0.0
        self.cells: dict[str, int] = {}
        self._exe: list[str] = []
        setup_env()
        self._build()

    # --- build ---------------------------------------------------------------------------

    def _build(self) -> None:
        t0 = time.monotonic()
        rtl = convert(self.dut, self.dir / "frontend.v", name="frontend",
                      platform=self._platform)
        sources, incs, defines = [rtl], [], []
        if self.gate_level:
            net = synthesize(rtl, "frontend", self.gate_level, self.dir / self.gate_level)
            self.cells = net.cells
            sources = [net.netlist, *net.cell_models]
            incs, defines = net.include_dirs, net.defines
        if self.simulator == "icarus":
            self._exe = self._build_icarus(sources, incs, defines)
        else:
            self._exe = self._build_verilator(sources, incs, defines)
        self.build_seconds = time.monotonic() - t0

    def _build_icarus(self, sources: Sequence[Path], incs, defines) -> list[str]:
        out = self.dir / "tb.vvp"
        cmd = ["iverilog", "-g2012", "-o", str(out), "-s", TOP,
               *(f"-I{d}" for d in incs), *(f"-D{d}" for d in defines),
               str(TESTBENCH), *map(str, sources)]
        self._run(cmd, "iverilog")
        return ["vvp", "-n", str(out)]

    def _build_verilator(self, sources: Sequence[Path], incs, defines) -> list[str]:
        obj = self.dir / "obj_dir"
        cmd = ["verilator", "--binary", *VERILATOR_TIMING, "-O3",
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", TOP, "-Mdir", str(obj),
               "-o", "tb", "-j", "1", *(f"-I{d}" for d in incs), *(f"+define+{d}" for d in defines),
               str(TESTBENCH), *map(str, sources)]
        with verilator_makeflags(True):
            self._run(cmd, "verilator")
        return [str(obj / "tb")]

    def _run(self, cmd: list[str], what: str) -> None:
        log = self.dir / f"{what}.log"
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=self.dir)
        if proc.returncode != 0:
            tail = log.read_text().splitlines()[-15:]
            raise SimulationError(f"{what} failed:\n" + "\n".join(tail), log)

    # --- runs ----------------------------------------------------------------------------

    def run(self, pcm: np.ndarray, name: str = "clip") -> ClipResult:
        """Simulate ``pcm`` (int16 values) from reset and compare with the golden frames."""
        want = expected_frames(self.fe, pcm)
        hop, n_mels = self.fe.cfg.hop_length, self.fe.cfg.n_mels
        played = np.asarray(pcm, np.int64)[:len(pcm) // hop * hop]
        samples, out = self.dir / f"{name}.pcm", self.dir / f"{name}.out"
        samples.write_text("".join(f"{int(s) & 0xFFFF:04x}\n" for s in played))
        # Every hop's frame within its worst-case cycles, a few hops of margin.
        max_cycles = (len(played) // hop + 4) * self.dut.cycles_per_hop() * 2
        t0 = time.monotonic()
        proc = subprocess.run([*self._exe, f"+samples={samples}", f"+out={out}",
                               f"+values={want.size}", f"+max_cycles={max_cycles}"],
                              cwd=self.dir, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        if proc.returncode != 0 or not out.exists():
            raise SimulationError(f"the {self.simulator} run of {name} failed: "
                                  f"{(proc.stdout + proc.stderr)[-2000:]}")
        codes, cycles = _read_output(out.read_text())
        got = codes[:len(codes) // n_mels * n_mels].reshape(-1, n_mels)
        bad = [t for t in range(len(want))
               if t >= len(got) or not np.array_equal(got[t], want[t])]
        return ClipResult(frames=len(want), frames_out=len(got), mismatched_frames=bad,
                          cycles=cycles, seconds=seconds)

    def clean(self) -> None:
        """Remove the build folder."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_output(text: str) -> tuple[np.ndarray, int]:
    """The codes and the cycle count the testbench wrote."""
    lines = text.split()
    cycles = 0
    if "cycles" in lines:
        i = lines.index("cycles")
        cycles = int(lines[i + 1])
        lines = lines[:i]
    return np.array([int(v) for v in lines], np.int64), cycles
