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


def _ports(dut, trace: bool) -> None:
    need = ["clk", "rst", "clear", "feat__valid", "feat__ready", "feat__payload",
            "score__valid", "score__ready", "score__payload"]
    if trace:
        need += ["trace_valid", "trace_layer", "trace_index", "trace_value"]
    missing = [n for n in need if not hasattr(dut, n)]
    if missing:
        have = sorted(h._name for h in dut)
        raise AssertionError(f"top level lacks ports {missing}; it has {have}")


@cocotb.test()
async def network(dut):
    with open(os.environ["KWSHW_TB_CONFIG"]) as f:
        cfg = json.load(f)
    log = cocotb.log
    wall0 = time.perf_counter()
    trace = bool(cfg.get("trace", True))
    _ports(dut, trace)
    rng = random.Random(cfg.get("seed", 0))
    clk = Clocking(dut.clk, PERIOD_NS)
    clk.start()

    progress = Event()
    scores: list[list[int]] = []
    records: list[list[int]] = []
    interrupts: list[dict] = []
    frame_done: list[int] = []
    seg_start = [0]   # index into `scores` where the current segment begins

    def on_score(value, cycle):
        scores.append([value, cycle])
        progress.set()

    def on_trace(rec):
        records.append([rec["layer"], rec["index"], rec["value"], rec["cycle"]])
        progress.set()

    dut.clear.value = 0
    dut.feat__valid.value = 0
    dut.score__ready.value = 0
    dut.rst.value = 1
    await clk.cycles(3)
    dut.rst.value = 0

    src = StreamSource(clk, dut.feat__valid, dut.feat__ready, dut.feat__payload, rng=rng,
                       gap_prob=cfg.get("gap_prob", 0.0), max_gap=cfg.get("max_gap", 4))
    sink = StreamSink(clk, dut.score__valid, dut.score__ready, dut.score__payload, rng=rng,
                      stall_prob=cfg.get("stall_prob", 0.0), max_stall=cfg.get("max_stall", 4),
                      callback=on_score)
    sink.start()
    if trace:
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
        record = on_trace

        def on_trace_fixed(rec):
            record({**rec, **fixed})

        mon = ValidMonitor(clk, dut.trace_valid, fields,
                           callback=on_trace_fixed if fixed else on_trace)
        mon.start()

    stall_ns = cfg.get("stall_cycles", 100_000) * PERIOD_NS
    moved = [0]           # transfers of any kind so far (the watchdog's view of progress)
    src.on_progress = lambda: moved.__setitem__(0, moved[0] + 1)

    async def wait_scores(count: int) -> None:
        """Wait until the current segment holds ``count`` scores."""
        while len(scores) - seg_start[0] < count:
            progress.clear()
            await progress.wait()

    n_mels = cfg["n_mels"]

    async def play() -> None:
        for op in cfg["ops"]:
            kind = op["op"]
            if kind == "frames":
                for frame in op["frames"]:
                    await src.send(frame)
                    frame_done.append(clk.cycle())
                    if len(frame_done) % 25 == 1:
                        log.info("frame %d sent at cycle %d; %d scores, %d trace records",
                                 len(frame_done) - 1, clk.cycle(), len(scores), len(records))
            elif kind == "interrupt":
                partial = op.get("partial", [])
                if partial:
                    await src.send(partial)
                    if len(partial) == n_mels:
                        frame_done.append(clk.cycle())
                if op.get("after_scores"):
                    await wait_scores(op["after_scores"])
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
                interrupts.append({"cycle": edge, "kind": op["kind"], "hold": hold})
                log.info("%s at cycle %d", op["kind"], edge)
                # Everything up to and including the interrupt edge is the old segment's.
                seg_start[0] = sum(1 for s in scores if s[1] <= edge)
            elif kind == "wait_scores":
                await wait_scores(op["count"])
            elif kind == "idle":
                await clk.cycles(op["cycles"])
            else:
                raise ValueError(f"unknown op {kind!r}")
        await wait_scores(cfg["final_scores"])

    async def watchdog() -> None:
        while True:
            before = moved[0] + len(scores) + len(records)
            await Timer(stall_ns, unit="ns")
            if moved[0] + len(scores) + len(records) == before:
                return

    main = cocotb.start_soon(play())
    dog = cocotb.start_soon(watchdog())
    await First(main, dog)
    stalled = not main.done()
    if stalled:
        main.cancel()
        log.warning("nothing moved for %d cycles: the design stalled (cycle %d, %d frames "
                    "sent, %d scores)", stall_ns // PERIOD_NS, clk.cycle(), len(frame_done),
                    len(scores))
    else:
        dog.cancel()
    end_cycle = clk.cycle()
    await clk.cycles(cfg.get("tail_cycles", 200))
    sink.stop()
    out = {"scores": scores, "trace": records, "interrupts": interrupts,
           "frame_done": frame_done, "end_cycle": end_cycle, "stalled": stalled,
           "wall_seconds": time.perf_counter() - wall0}
    with open(cfg["out"], "w") as f:
        json.dump(out, f)
