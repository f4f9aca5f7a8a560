"""cocotb test of the stream drivers and the valid-only monitor on :class:`sim.fixtures.StreamPipe`.

Configuration comes from the JSON file named by ``KWSHW_TB_CONFIG`` (``n``, ``seed``,
``gap_prob``, ``stall_prob``).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.triggers import RisingEdge, with_timeout

from sim.streams import Clocking, StreamSink, StreamSource, ValidMonitor


def _wrap16(v: int) -> int:
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


@cocotb.test()
async def stream_roundtrip(dut):
    cfg = json.loads(open(os.environ["KWSHW_TB_CONFIG"]).read())
    rng = random.Random(cfg["seed"])
    clk = Clocking(dut.clk)
    clk.start()
    dut.rst.value = 1
    await clk.cycles(3)
    dut.rst.value = 0
    n = cfg["n"]
    values = [rng.choice([-32768, 32767, 0, -1, rng.randint(-32768, 32767)]) for _ in range(n)]
    src = StreamSource(clk, dut.i__valid, dut.i__ready, dut.i__payload, rng=rng,
                       gap_prob=cfg["gap_prob"], max_gap=5)
    sink = StreamSink(clk, dut.o__valid, dut.o__ready, dut.o__payload, rng=rng,
                      stall_prob=cfg["stall_prob"], max_stall=6)
    mon = ValidMonitor(clk, dut.mon_valid, {"value": (dut.mon_value, True)})
    sink.start()
    mon.start()
    await src.send(values)

    async def drain():
        while len(sink.received) < n:
            await RisingEdge(dut.clk)

    await with_timeout(drain(), 100 * n + 1000, "ns")
    await clk.cycles(20)   # anything extra (duplicates) would show up here
    expect = [_wrap16(3 * v + 1) for v in values]
    assert sink.received == expect, "stream output differs (lost, duplicated or wrong values)"
    assert [r["value"] for r in mon.records] == values, "monitor saw different values"
    with open(cfg["out"], "w") as f:
        json.dump({"received": len(sink.received), "monitored": len(mon.records),
                   "cycles": clk.cycle()}, f)
