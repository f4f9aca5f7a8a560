"""Verilog and a JSON report for one model on one accelerator configuration.

``generate(model, lanes, out_dir)`` writes ``<name>.v`` (memories initialised inline from the
model) and ``report.json``: ports, memory bits by kind, every per-layer width and shift,
the schedule and the exact cycles per frame, and the model's identity.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from .hw.accelerator import Accelerator, frame_schedule
from .hw.memories import spram_blocks
from .modelfile import Model

__all__ = ["FAMILIES", "Family", "accelerator_cycles", "generate", "report"]


def accelerator_cycles(model: Model, lanes: int) -> int:
    """Exact cycles per frame of the accelerator for ``model`` on ``lanes`` MAC lanes.

    This is the sequencer's schedule (:attr:`kwshw.hw.sequencer.FrameSchedule.cycles_per_frame`):
    the frame period when frames are always pending and scores are read as they come. The
    tests check it against simulation cycle for cycle.
    """
    return frame_schedule(model, lanes).cycles_per_frame


def _ports(dut: Accelerator) -> list[dict]:
    ports = [{"name": "clk", "direction": "in", "width": 1},
             {"name": "rst", "direction": "in", "width": 1}]
    for path, member, value in dut.signature.flatten(dut):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "in" if member.flow == wiring.In else "out",
            "width": len(value),
            "signed": value.shape().signed,
        })
    return ports


def report(dut: Accelerator) -> dict:
    """The report of one accelerator build (everything but the generation time)."""
    model, plans = dut.model, dut.plans
    layers = []
    for k, (plan, sched) in enumerate(zip(plans, dut.schedule.layers, strict=True)):
        layers.append({
            "index": k,
            "n_in": plan.n_in,
            "n_out": plan.n_out,
            "relu": plan.layer.relu,
            "in_frac": plan.in_frac,
            "out_frac": plan.layer.out_frac,
            "in_signed": plan.in_signed,
            "passes": sched.passes,
            "ideal_cycles": sched.ideal_cycles,
            "issue_cycles": sched.issue_cycles,
            "shifts": dataclasses.asdict(plan.shifts),
            "widths": dataclasses.asdict(plan.widths),
        })
    mem = dut.memory_bits()
    ideal, actual = dut.ideal_cycles, dut.cycles_per_frame
    out = {
        "model": {
            "sha256": model.sha256,
            "bits": model.bits,
            "shape": model.shape,
            "labels": list(model.labels),
            "task": model.task,
            "features": model.features.to_dict(),
            "in_frac": model.in_frac,
        },
        "config": {
            "lanes": dut.lanes,
            "memory": dut.memory,
            "trace": dut.trace,
            "word_width": dut.word_width,
            "weight_words": dut.weight_depth,
            "window_frames": model.features.span + 1,
            "activation_depth": dut.act_depth,
        },
        "ports": _ports(dut),
        "memory_bits": {**mem, "total": sum(mem.values())},
        "layers": layers,
        "cycles": {
            "ideal_per_frame": ideal,
            "per_frame": actual,
            "source": "sequencer schedule (kwshw.hw.sequencer.FrameSchedule), "
                      "equal to simulation (tests/test_hw_accelerator.py)",
            "overhead": actual - ideal,
            "overhead_percent": round(100.0 * (actual - ideal) / ideal, 3),
            "divider_latency": dut.divider_latency,
            "pipeline_latency": dut.pipeline_latency,
        },
    }
    if dut.memory == "spram":
        load = dut.weight_load_words()
        cols, rows = spram_blocks(dut.load_width, len(load))
        out["config"]["load"] = {"words": len(load), "width": dut.load_width,
                                 "weights_per_word": dut.load_width // dut.word_width}
        out["config"]["spram_blocks"] = {"columns": cols, "rows": rows, "total": cols * rows}
    return out


@dataclasses.dataclass(frozen=True)
class Family:
    """What an accelerator's elaboration reads of a platform: the FPGA family (Amaranth's
    ``platform.family`` spelling, ``"ecp5"`` or ``"iCE40"``), which sets the shape of its
    memories (:func:`~kwshw.hw.memories.ecp5_bram_slices`, the iCE40 SPRAM blocks)."""

    family: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")


#: The families :class:`Family` knows.
FAMILIES = ("ecp5", "iCE40")


def generate(model: Model, lanes: int, out_dir: str | Path, *, memory: str = "bram",
             name: str = "kwshw_accel", trace: bool = False,
             family: str | None = None) -> dict:
    """Write the accelerator's Verilog and ``report.json`` into ``out_dir``.

    Parameters
    ----------
    model : Model
        The quantized network.
    lanes : int
        MAC lanes ``P`` (a power of two).
    out_dir : str or Path
        Output folder (created if missing).
    memory : {"bram", "spram"}
        Weight memory style.
    name : str
        Verilog top module name (and file stem).
    trace : bool
        Include the ``trace_*`` observation port.
    family : {"ecp5", "iCE40"}, optional
        The FPGA family the Verilog is for (:class:`Family`): its memories (and, on ECP5,
        the requantizer's product) take the shapes that family's board builds give them.
        ``None``: family-neutral.

    Returns
    -------
    dict
        The report (also written to ``report.json``), with ``files`` and ``generate_seconds``.
    """
    start = time.perf_counter()
    dut = Accelerator(model, lanes, memory=memory, trace=trace)
    platform = None if family is None else Family(family)
    text = verilog.convert(dut, name=name, emit_src=False, platform=platform)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{name}.v"
    v_path.write_text(text)
    rep = report(dut)
    rep["name"] = name
    rep["files"] = {"verilog": v_path.name, "report": "report.json"}
    rep["generate_seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    return rep
