"""Host side of the building-block tests: convert one Amaranth component to Verilog, drive it
with a per-cycle schedule (:mod:`sim.tb_units`) and unpack what it produced.

Struct payloads (``amaranth.lib.data`` layouts) are packed to and unpacked from raw bit
patterns here, from the component's own layouts, so the tests name fields, not bit offsets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import data

from kwshw.generate import Family

from . import gatelevel, toolchain

__all__ = ["pack", "unpack", "run_schedule", "port_shape"]


def _to_raw(value: int, width: int) -> int:
    return int(value) & ((1 << width) - 1)


def _from_raw(raw: int, shape) -> int:
    shape = Shape.cast(shape)
    raw &= (1 << shape.width) - 1
    if shape.signed and raw >> (shape.width - 1):
        raw -= 1 << shape.width
    return raw


def pack(shape, value) -> int:
    """Raw bit pattern of ``value`` for ``shape`` (a Shape or a data layout; for a struct a
    dict of field values, for an array a list)."""
    if isinstance(shape, data.Layout):
        raw = 0
        if isinstance(shape, data.ArrayLayout):
            items = enumerate(value)
            fields = dict(shape)
            for k, v in items:
                f = fields[k]
                raw |= pack(f.shape, v) << f.offset
            return raw
        fields = dict(shape)
        for name, v in value.items():
            f = fields[name]
            raw |= pack(f.shape, v) << f.offset
        return raw
    return _to_raw(value, Shape.cast(shape).width)


def unpack(shape, raw: int):
    """Inverse of :func:`pack` (structs to dicts, arrays to lists, numbers to ints)."""
    if raw is None:
        return None
    if isinstance(shape, data.Layout):
        out = {}
        for name, f in shape:
            sub = (raw >> f.offset) & ((1 << f.width) - 1)
            out[name] = unpack(f.shape, sub)
        if isinstance(shape, data.ArrayLayout):
            return [out[k] for k in range(shape.length)]
        return out
    return _from_raw(raw, shape)


def port_shape(component, path: str):
    """Shape/layout of a port given as ``"inp__payload"`` or ``"xlo"``."""
    parts = path.split("__")
    sig = component.signature
    member = None
    for p in parts:
        member = sig.members[p]
        if member.is_signature:
            sig = member.signature
    return member.shape


def run_schedule(component, inputs: Mapping[str, Sequence], outputs: Sequence[str], *,
                 record_when: str | None, build_dir: str | Path, extra_cycles: int = 16,
                 simulator: str = "icarus", name: str = "unit", family: str | None = None,
                 gate_level: str | None = None) -> list[dict]:
    """Simulate ``component`` with per-cycle input values and return the recorded cycles.

    ``inputs`` maps port paths (``"inp__valid"``, ``"inp__payload"``, ``"xlo"``) to one value
    per cycle (structs as dicts). Returns one dict per recorded cycle: ``cycle`` and every
    output port, unpacked. With ``family="iCE40"`` the component is elaborated for that FPGA
    family and its primitives (e.g. ``SB_SPRAM256KA``) simulated with Yosys's cell models.
    With ``gate_level="ecp5"`` or ``"ice40"`` its Verilog is synthesized by Yosys for that
    architecture (:func:`sim.gatelevel.synthesize`) and the netlist is simulated instead.
    """
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    platform = None if family is None else Family(family)
    src = toolchain.convert(component, build_dir / f"{name}.v", name=name, platform=platform)
    sources, options = [src], {}
    if gate_level is not None:
        net = gatelevel.synthesize(src, name, gate_level, build_dir / f"gate-{gate_level}")
        sources = [net.netlist, *net.cell_models]
        options = {"icarus_generation": "2012", "includes": net.include_dirs,
                   "defines": net.defines}
    elif family is not None:
        sources.append(toolchain.yosys_share_dir() / family.lower() / "cells_sim.v")
        # As in the iCE40 gate-level runs (sim.gatelevel): Icarus parses the models as
        # SystemVerilog, without the input ports' default values it does not support.
        options = {"icarus_generation": "2012", "defines": ["NO_ICE40_DEFAULT_ASSIGNMENTS"]}
    raw_inputs = {}
    for port, vals in inputs.items():
        shape = port_shape(component, port)
        raw_inputs[port] = [pack(shape, v) for v in vals]
    out_path = build_dir / "records.json"
    cfg = {"inputs": raw_inputs, "outputs": list(outputs), "record_when": record_when,
           "extra_cycles": extra_cycles, "out": str(out_path)}
    cfg_path = build_dir / "schedule.json"
    cfg_path.write_text(json.dumps(cfg))
    toolchain.simulate(sources, name, "sim.tb_units", simulator=simulator, build_dir=build_dir,
                       env={"KWSHW_TB_CONFIG": str(cfg_path)}, **options)
    res = json.loads(out_path.read_text())
    shapes = [port_shape(component, p) for p in res["outputs"]]
    records = []
    for rec in res["records"]:
        d = {"cycle": rec[0]}
        for port, shape, raw in zip(res["outputs"], shapes, rec[1:], strict=True):
            d[port] = unpack(shape, raw)
        records.append(d)
    return records
