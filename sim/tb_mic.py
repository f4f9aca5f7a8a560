"""cocotb testbench of one microphone receiver (:mod:`sim.mic`'s harness around
:class:`kwshw.hw.microphone.PDMReceiver` or :class:`~kwshw.hw.microphone.I2SReceiver`).

A recorder, not a judge: a microphone model watches the receiver's bit clock pin ``bclk``
(and ``ws``) in simulated time, answers each clock edge after a random delay in picoseconds,
not on system clock edges, and a sink with random back-pressure records every PCM sample;
:mod:`sim.mic` compares them with the golden model. Configuration (JSON named by
``KWSHW_TB_CONFIG``):

``kind`` (``"pdm"`` or ``"i2s"``), ``seed`` (per-bit delays, junk, back-pressure),
``start_ps`` (microphone power-on after reset), ``idle`` (line level while undriven),
``tdv_ps`` / ``th_ps`` (inclusive delay ranges, see :mod:`sim.mic`), PDM: ``edge``,
``bits`` (a string of ``0``/``1``), ``bits_per_sample``; I2S: ``channel``, ``words`` (24-bit
samples); ``tail_cycles`` (longest wait for the last sample once the microphone is done),
``period_ns``, ``stall_prob``, ``max_stall``, ``out`` (the record: ``got``, ``cycles``,
``first`` / ``lock_cycle``, ``count``, ``tdv_used``, ``th_used``, ``start_cycle``,
``overrun``, ``timed_out``, ``wall_seconds``).

Indices count from reset: PDM level ``i`` is the ``i``-th clock level the receiver samples
(closed by the ``i + 1``-th sampling edge after reset), I2S cycle ``k`` is the SCK cycle
begun by the ``k``-th falling edge (cycle 0 begins at reset).
"""

from __future__ import annotations

import json
import math
import os
import random
import time

import cocotb
from cocotb.triggers import Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from kwshw.microphone import I2S_BITS, I2S_FRAME, I2S_SLOT
from sim.streams import Clocking, StreamSink, signal_value

#: System cycles of reset before the receiver runs.
RESET_CYCLES = 3


class _Delays:
    """Per-bit delays drawn from the configured ranges, with the extremes drawn (an I2S junk
    delay not shorter than its bit's ``tdv`` is drawn but has no junk to place)."""

    def __init__(self, rng: random.Random, tdv: list[int], th: list[int]):
        self.rng, self.tdv, self.th = rng, tdv, th
        self.used = {"tdv_used": [math.inf, -math.inf], "th_used": [math.inf, -math.inf]}

    def _draw(self, key: str, lo: int, hi: int) -> int:
        v = self.rng.randint(lo, hi)
        u = self.used[key]
        u[0], u[1] = min(u[0], v), max(u[1], v)
        return v

    def bit(self) -> int:
        return self._draw("tdv_used", *self.tdv)

    def junk(self) -> int:
        return self._draw("th_used", *self.th)


def _now_ps() -> int:
    return int(get_sim_time(unit="ps"))


async def _pdm_mic(dut, cfg: dict, t_on: int, delays: _Delays, rec: dict) -> None:
    """PDM microphone: from its first clock edge that opens a level after power-on, bit ``n``
    ``tdv`` after the edge opening its level, junk ``th`` after the edge closing it."""
    bclk, pin, rng = dut.bclk, dut.din, delays.rng
    falling = cfg["edge"] == "falling"
    drive_level = 1 if falling else 0
    drive, sample = ((RisingEdge(bclk), FallingEdge(bclk)) if falling
                     else (FallingEdge(bclk), RisingEdge(bclk)))
    bits = cfg["bits"]
    level = 0                 # sampling edges seen since reset: the level the next one closes
    if signal_value(bclk) == drive_level:
        # A level open at reset (the clock starts high) has no opening edge to answer.
        await sample
        level = 1
    sent, first = 0, None
    while sent < len(bits):
        await drive
        if first is None:
            if _now_ps() < t_on:
                await sample
                level += 1
                continue
            first = level
            rec["first"] = first
            rec["count"] = (first + len(bits)) // cfg["bits_per_sample"]
        await Timer(delays.bit(), unit="ps")
        # The receiver's contract: valid before the level ends; a late bit is a bench bug.
        assert signal_value(bclk) == drive_level, f"bit {sent} later than its clock level"
        pin.value = int(bits[sent])
        sent += 1
        await sample
        level += 1
        await Timer(delays.junk(), unit="ps")
        assert signal_value(bclk) != drive_level, f"junk after bit {sent - 1} too late"
        pin.value = rng.getrandbits(1) if sent < len(bits) else cfg["idle"]


async def _i2s_mic(dut, cfg: dict, t_on: int, delays: _Delays, rec: dict) -> None:
    """I2S microphone: samples WS at each rising SCK edge once powered; a WS edge into its
    slot starts a word, MSB on the next SCK cycle. Each bit ``tdv`` after the falling edge,
    junk before it (from ``th``) and in every cycle outside a word after the first."""
    sck, ws, pin, rng = dut.bclk, dut.ws, dut.din, delays.rng
    slot_ws = 0 if cfg["channel"] == "left" else 1
    words = cfg["words"]
    cycle, prev, nxt = 0, None, 0
    pending: list[int] = []
    while True:
        await RisingEdge(sck)
        w = signal_value(ws)
        if prev is not None and w != prev and w == slot_ws and nxt < len(words):
            if nxt == 0:
                base = 0 if slot_ws == 0 else I2S_SLOT
                rec["lock_cycle"] = cycle
                rec["count"] = (cycle - base) // I2S_FRAME + len(words)
            raw = words[nxt] & ((1 << I2S_BITS) - 1)
            pending = [(raw >> (I2S_BITS - 1 - j)) & 1 for j in range(I2S_BITS)]
            nxt += 1
        if _now_ps() >= t_on:
            prev = w
        await FallingEdge(sck)
        cycle += 1
        if nxt == 0:
            continue                              # not locked yet: the line stays idle
        if not pending and nxt == len(words):
            pin.value = cfg["idle"]               # done: the line goes idle again
            return
        value = pending.pop(0) if pending else rng.getrandbits(1)
        tdv, th = delays.bit(), delays.junk()
        if th < tdv:
            await Timer(th, unit="ps")
            pin.value = rng.getrandbits(1)
            await Timer(tdv - th, unit="ps")
        else:
            await Timer(tdv, unit="ps")
        assert signal_value(sck) == 0, f"SCK cycle {cycle}: bit later than the rising edge"
        pin.value = value


@cocotb.test()
async def microphone(dut):
    with open(os.environ["KWSHW_TB_CONFIG"]) as f:
        cfg = json.load(f)
    wall0 = time.perf_counter()
    rng = random.Random(cfg["seed"])
    clk = Clocking(dut.clk, cfg["period_ns"])
    clk.start()
    dut.rst.value = 1
    dut.din.value = cfg["idle"]
    rec: dict = {"count": math.inf}
    done = Event()

    def on_sample(_value: int, _cycle: int) -> None:
        if len(sink.received) >= rec["count"]:
            done.set()

    sink = StreamSink(clk, dut.pcm__valid, dut.pcm__ready, dut.pcm__payload,
                      rng=random.Random(rng.getrandbits(32)), stall_prob=cfg["stall_prob"],
                      max_stall=cfg["max_stall"], callback=on_sample)
    await clk.cycles(RESET_CYCLES)
    dut.rst.value = 0
    # Right after the last reset edge: cycle 0 of the receiver begins here.
    t0 = _now_ps()
    t_on = t0 + cfg["start_ps"]
    sink.start()
    delays = _Delays(rng, cfg["tdv_ps"], cfg["th_ps"])
    mic = _pdm_mic if cfg["kind"] == "pdm" else _i2s_mic
    await mic(dut, cfg, t_on, delays, rec)
    if len(sink.received) < rec["count"]:
        done.clear()
        await First(done.wait(), Timer(cfg["tail_cycles"] * cfg["period_ns"], unit="ns"))
    sink.stop()
    count = rec.pop("count")
    rec.update(delays.used)
    rec.update(got=sink.received[:count], cycles=sink.cycles[:count], count=count,
               timed_out=len(sink.received) < count, overrun=signal_value(dut.overrun),
               start_cycle=cfg["start_ps"] / (cfg["period_ns"] * 1000),
               wall_seconds=time.perf_counter() - wall0)
    with open(cfg["out"], "w") as f:
        json.dump(rec, f)
