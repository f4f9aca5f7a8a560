"""cocotb testbench of the standalone core (``kwshw_standalone_tb.v`` around
:class:`sim.standalone.StandaloneProbe`).

A recorder, not a judge: the Verilog microphone plays the bit file on its own; this testbench
resets the design, watches the low-rate streams (feature values into the accelerator, scores
out of it, detection events) and decodes the UART line, and writes down what it saw with the
cycle of each event; :mod:`sim.standalone` compares with the golden chain afterwards. The
configuration is the JSON file named by ``KWSHW_TB_CONFIG``:

``bits`` (the microphone's bit file), ``uart_divisor`` (cycles per UART bit), ``want_scores``
(scores the golden chain computes), ``tail_cycles`` (after the last microphone bit, the longest
wait for them), ``drain_cycles`` (then, for the last packets on the UART), ``out`` (the result
JSON: ``feat``, ``scores``, ``events`` ``[[cls, frame, sum, cycle]]``, ``uart`` ``[[byte,
cycle]]``, ``framing_errors``, ``audio_end_cycle``, ``end_cycle``, ``bits_played``,
``overrun``, ``wall_seconds``).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from sim.streams import Clocking, ValidMonitor, signal_value

PERIOD_NS = 10


async def _uart(pin, clk: Clocking, divisor: int, rec: dict) -> None:
    """8N1 receiver on ``pin``: sample the middle of every bit."""
    bit_ps = divisor * PERIOD_NS * 1000
    while True:
        await FallingEdge(pin)
        await Timer(bit_ps // 2, unit="ps")
        if pin.value != 0:
            continue   # a glitch, not a start bit
        byte = 0
        for i in range(8):
            await Timer(bit_ps, unit="ps")
            byte |= int(pin.value) << i
        await Timer(bit_ps, unit="ps")
        if pin.value == 1:
            rec["uart"].append([byte, clk.cycle()])
        else:
            rec["framing_errors"] += 1
            await RisingEdge(pin)


def _monitors(dut, clk: Clocking, rec: dict) -> list[ValidMonitor]:
    def value_of(key):
        return lambda r: rec[key].append(r["v"])

    def event(r):
        rec["events"].append([r["cls"], r["frame"], r["sum"], r["cycle"]])

    return [
        ValidMonitor(clk, dut.feat_fire, {"v": (dut.feat, True)}, callback=value_of("feat")),
        ValidMonitor(clk, dut.score_fire, {"v": (dut.score, True)},
                     callback=value_of("scores")),
        ValidMonitor(clk, dut.event_fire, {"cls": (dut.event_cls, False),
                                             "frame": (dut.event_frame, False),
                                             "sum": (dut.event_sum, False)}, callback=event),
    ]


@cocotb.test()
async def standalone(dut):
    with open(os.environ["KWSHW_TB_CONFIG"]) as f:
        cfg = json.load(f)
    wall0 = time.perf_counter()
    rec = {"feat": [], "scores": [], "events": [], "uart": [], "framing_errors": 0}
    clk = Clocking(dut.clk, PERIOD_NS)
    # Before the first edge: the microphone opens its file at the first rising edge.
    dut.bits_path.value = int.from_bytes(cfg["bits"].encode(), "big")
    await clk.cycles(4)     # the power-on reset of kwshw_standalone_tb.v
    for mon in _monitors(dut, clk, rec):
        mon.start()
    cocotb.start_soon(_uart(dut.tx, clk, cfg["uart_divisor"], rec))

    if dut.audio_done.value != 1:
        await RisingEdge(dut.audio_done)
    audio_end = clk.cycle()
    cocotb.log.info("audio ends at cycle %d; %d scores so far", audio_end, len(rec["scores"]))
    # The last hops still go through the front end, the network and the detector.
    while len(rec["scores"]) < cfg["want_scores"] and clk.cycle() < audio_end + cfg["tail_cycles"]:
        await clk.cycles(1000)
    await clk.cycles(cfg["drain_cycles"])
    rec.update(audio_end_cycle=audio_end, end_cycle=clk.cycle(),
               bits_played=signal_value(dut.bits_played) + 1,
               overrun=signal_value(dut.overrun), wall_seconds=time.perf_counter() - wall0)
    with open(cfg["out"], "w") as f:
        json.dump(rec, f)
