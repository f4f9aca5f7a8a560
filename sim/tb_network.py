"""cocotb testbench of the whole accelerator (the Verilog ``kwshw.generate`` writes).

It is a recorder, not a judge: it plays a scenario of operations against the design and
writes down everything the design produced, with the clock cycle of each transfer; the
host (:mod:`sim.network`, :mod:`sim.scoreboard`) compares with the golden model afterwards.
The scenario is the JSON file named by ``KWSHW_TB_CONFIG``:

``ops``: a list of

- ``{"op": "frames", "frames": [[n_mels ints], ...]}``: send frames back to back;
- ``{"op": "interrupt", "kind": "rst"|"clear", "partial": [ints], "after_scores": n,
  "delay": cycles, "hold": cycles}``: send ``partial`` values (a whole frame if ``n_mels``
  of them), wait until the current segment has ``n`` scores (if given), then ``delay``
  cycles, then assert ``rst`` for ``hold`` cycles or pulse ``clear`` for one cycle;
- ``{"op": "wait_scores", "count": n}``: wait until the current segment has ``n`` scores;
- ``{"op": "idle", "cycles": n}``.

At the end it waits for ``final_scores`` scores in the last segment (or until nothing has
moved for ``stall_cycles``), then ``tail_cycles`` more to catch surplus outputs, and writes
``out`` (JSON): ``scores`` ``[[value, cycle]]``, ``trace`` ``[[layer, index, value,
cycle]]``, ``interrupts`` ``[{"cycle", "kind", "hold"}]``, ``frame_done`` (cycle of each
complete frame's last accepted value), ``end_cycle``, ``stalled``.

A transfer belongs to the segment before an interrupt when its cycle is ``<=`` the
interrupt's ``cycle`` (the rising edge where ``rst``/``clear`` is first sampled).
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.triggers import Event, First, RisingEdge, Timer

from sim.streams import Clocking, StreamSink, StreamSource, ValidMonitor

PERIOD_NS = 10


def _ports(dut, trace: bool, load: bool) -> None:
    need = ["clk", "rst", "clear", "feat__valid", "feat__ready", "feat__payload",
            "score__valid", "score__ready", "score__payload"]
    if trace:
        need += ["trace_valid", "trace_layer", "trace_index", "trace_value"]
    if load:
        need += ["load__valid", "load__ready", "load__payload"]
    missing = [n for n in need if not hasattr(dut, n)]
    if missing:
        have = sorted(h._name for h in dut)
        raise AssertionError(f"top level lacks ports {missing}; it has {have}")


class _Recorder:
    """Everything the design produced, with cycles, split into segments at interrupts."""

    def __init__(self):
        self.progress = Event()
        self.scores: list[list[int]] = []
        self.records: list[list[int]] = []
        self.interrupts: list[dict] = []
        self.frame_done: list[int] = []
        self.seg_start = 0      # index into `scores` where the current segment begins
        self.moved = 0          # input transfers so far (the watchdog's view of progress)

    def on_score(self, value, cycle) -> None:
        self.scores.append([value, cycle])
        self.progress.set()

    def on_trace(self, rec) -> None:
        self.records.append([rec["layer"], rec["index"], rec["value"], rec["cycle"]])
        self.progress.set()

    def on_input(self) -> None:
        self.moved += 1

    def activity(self) -> int:
        return self.moved + len(self.scores) + len(self.records)

    async def wait_scores(self, count: int) -> None:
        """Wait until the current segment holds ``count`` scores."""
        while len(self.scores) - self.seg_start < count:
            self.progress.clear()
            await self.progress.wait()

    def result(self, end_cycle: int, stalled: bool, wall_seconds: float) -> dict:
        return {"scores": self.scores, "trace": self.records, "interrupts": self.interrupts,
                "frame_done": self.frame_done, "end_cycle": end_cycle, "stalled": stalled,
                "wall_seconds": wall_seconds}


def _trace_monitor(dut, clk: Clocking, cfg: dict, rec: _Recorder) -> ValidMonitor:
    # A zero-width port (`trace_layer` of a one-layer network, `trace_index` when no
    # layer has more than one output) is written by the Verilog backend as an undriven
    # `[-1:0]` port (X); its value is 0.
    fields = {"value": (dut.trace_value, True)}
    fixed = {}
    for name, handle, count in (("layer", dut.trace_layer, cfg.get("n_layers", 2)),
                                ("index", dut.trace_index, cfg.get("max_n_out", 2))):
        if count > 1:
            fields[name] = (handle, False)
        else:
            fixed[name] = 0

    def on_trace_fixed(r):
        rec.on_trace({**r, **fixed})

    return ValidMonitor(clk, dut.trace_valid, fields,
                        callback=on_trace_fixed if fixed else rec.on_trace)


async def _interrupt(dut, clk: Clocking, src: StreamSource, op: dict, rec: _Recorder,
                     n_mels: int) -> None:
    """One ``interrupt`` op: the partial frame, the wait, then ``rst`` or ``clear``."""
    partial = op.get("partial", [])
    if partial:
        await src.send(partial)
        if len(partial) == n_mels:
            rec.frame_done.append(clk.cycle())
    if op.get("after_scores"):
        await rec.wait_scores(op["after_scores"])
    await clk.cycles(op.get("delay", 0))
    # Right after a rising edge: the next edge is the first to see the interrupt.
    edge = clk.cycle() + 1
    hold = max(1, op.get("hold", 1)) if op["kind"] == "rst" else 1
    if op["kind"] == "rst":
        dut.rst.value = 1
        await clk.cycles(hold)
        dut.rst.value = 0
    elif op["kind"] == "clear":
        dut.clear.value = 1
        await RisingEdge(dut.clk)
        dut.clear.value = 0
    else:
        raise ValueError(f"unknown interrupt kind {op['kind']!r}")
    rec.interrupts.append({"cycle": edge, "kind": op["kind"], "hold": hold})
    cocotb.log.info("%s at cycle %d", op["kind"], edge)
    # Everything up to and including the interrupt edge is the old segment's.
    rec.seg_start = sum(1 for s in rec.scores if s[1] <= edge)


async def _play(dut, clk: Clocking, src: StreamSource, cfg: dict, rec: _Recorder) -> None:
    """The weights (SPRAM builds), every op of the scenario, then the wait for the last
    segment's scores."""
    if cfg.get("load_words"):
        # The stored weight words, with the same random gaps as the frames.
        loader = StreamSource(clk, dut.load__valid, dut.load__ready, dut.load__payload,
                              rng=random.Random(cfg.get("seed", 0) + 1),
                              gap_prob=cfg.get("gap_prob", 0.0), signed=False)
        loader.on_progress = rec.on_input
        await loader.send(cfg["load_words"])
        cocotb.log.info("%d weight words loaded at cycle %d", len(cfg["load_words"]),
                        clk.cycle())
    for op in cfg["ops"]:
        kind = op["op"]
        if kind == "frames":
            for frame in op["frames"]:
                await src.send(frame)
                rec.frame_done.append(clk.cycle())
                if len(rec.frame_done) % 25 == 1:
                    cocotb.log.info("frame %d sent at cycle %d; %d scores, %d trace records",
                                    len(rec.frame_done) - 1, clk.cycle(), len(rec.scores),
                                    len(rec.records))
        elif kind == "interrupt":
            await _interrupt(dut, clk, src, op, rec, cfg["n_mels"])
        elif kind == "wait_scores":
            await rec.wait_scores(op["count"])
        elif kind == "idle":
            await clk.cycles(op["cycles"])
        else:
            raise ValueError(f"unknown op {kind!r}")
    await rec.wait_scores(cfg["final_scores"])


async def _watchdog(rec: _Recorder, stall_ns: int) -> None:
    """Returns when nothing moved for ``stall_ns``."""
    while True:
        before = rec.activity()
        await Timer(stall_ns, unit="ns")
        if rec.activity() == before:
            return


@cocotb.test()
async def network(dut):
    with open(os.environ["KWSHW_TB_CONFIG"]) as f:
        cfg = json.load(f)
    wall0 = time.perf_counter()
    trace = bool(cfg.get("trace", True))
    _ports(dut, trace, bool(cfg.get("load_words")))
    rng = random.Random(cfg.get("seed", 0))
    clk = Clocking(dut.clk, PERIOD_NS)
    clk.start()
    rec = _Recorder()

    dut.clear.value = 0
    dut.feat__valid.value = 0
    dut.score__ready.value = 0
    if cfg.get("load_words"):
        dut.load__valid.value = 0
    dut.rst.value = 1
    await clk.cycles(3)
    dut.rst.value = 0

    src = StreamSource(clk, dut.feat__valid, dut.feat__ready, dut.feat__payload, rng=rng,
                       gap_prob=cfg.get("gap_prob", 0.0), max_gap=cfg.get("max_gap", 4))
    sink = StreamSink(clk, dut.score__valid, dut.score__ready, dut.score__payload, rng=rng,
                      stall_prob=cfg.get("stall_prob", 0.0), max_stall=cfg.get("max_stall", 4),
                      callback=rec.on_score)
    sink.start()
    if trace:
        mon = _trace_monitor(dut, clk, cfg, rec)
        mon.start()
    stall_ns = cfg.get("stall_cycles", 100_000) * PERIOD_NS
    src.on_progress = rec.on_input

    main = cocotb.start_soon(_play(dut, clk, src, cfg, rec))
    dog = cocotb.start_soon(_watchdog(rec, stall_ns))
    await First(main, dog)
    stalled = not main.done()
    if stalled:
        main.cancel()
        cocotb.log.warning("nothing moved for %d cycles: the design stalled (cycle %d, %d "
                           "frames sent, %d scores)", stall_ns // PERIOD_NS, clk.cycle(),
                           len(rec.frame_done), len(rec.scores))
    else:
        dog.cancel()
    end_cycle = clk.cycle()
    await clk.cycles(cfg.get("tail_cycles", 200))
    sink.stop()
    with open(cfg["out"], "w") as f:
        json.dump(rec.result(end_cycle, stalled, time.perf_counter() - wall0), f)
