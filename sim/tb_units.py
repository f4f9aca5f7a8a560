"""Generic cycle-schedule testbench for the accelerator's building blocks.

Configuration (JSON named by ``KWSHW_TB_CONFIG``)::

    {"inputs": {"port": [value per cycle, ...], ...},   # all lists of equal length N
     "outputs": ["port", ...],
     "record_when": "port" | null,                       # record cycles where it is 1 (else all)
     "extra_cycles": k,                                  # keep recording k cycles after the last
     "reset_cycles": r, "out": "path.json"}

Cycle ``c`` of the schedule: the input values are applied right after rising edge ``c``
(edge 0 is the first after reset) and the outputs are sampled at the next falling edge, so
a record of cycle ``c`` shows the combinational response to cycle ``c``'s inputs and the
registered state after edge ``c``. Values are raw bit patterns (unsigned); the host packs
and unpacks struct payloads (:mod:`sim.units`).
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from sim.streams import Clocking


def _raw(handle):
    try:
        return int(handle.value)
    except ValueError:      # X or Z bits
        return None


@cocotb.test()
async def schedule(dut):
    with open(os.environ["KWSHW_TB_CONFIG"]) as f:
        cfg = json.load(f)
    clk = Clocking(dut.clk)
    clk.start()
    inputs = {name: (getattr(dut, name), vals) for name, vals in cfg["inputs"].items()}
    outputs = [(name, getattr(dut, name)) for name in cfg["outputs"]]
    when = getattr(dut, cfg["record_when"]) if cfg.get("record_when") else None
    for h, _ in inputs.values():
        h.value = 0
    if hasattr(dut, "rst"):
        dut.rst.value = 1
        await clk.cycles(cfg.get("reset_cycles", 2))
        dut.rst.value = 0
    else:
        await RisingEdge(dut.clk)
    n = len(next(iter(cfg["inputs"].values()))) if inputs else 0
    records = []
    for c in range(n + cfg.get("extra_cycles", 0)):
        for h, vals in inputs.values():
            h.value = vals[c] if c < n else 0
        await FallingEdge(dut.clk)
        if when is None or when.value == 1:
            records.append([c] + [_raw(h) for _, h in outputs])
        await RisingEdge(dut.clk)
    with open(cfg["out"], "w") as f:
        json.dump({"records": records, "outputs": [n for n, _ in outputs]}, f)
