"""``kwshw all`` (:func:`kwshw.app.pipeline.run_all`): the order of its steps, the summary it
returns and writes, and how failures show in it. Every step's library call is replaced by a
stand-in, so this runs no training, simulator or synthesis (the stand-in builds run in this
process: ``jobs=1``); the worker-process builds are tested on real builds that the fit check
refuses."""

from __future__ import annotations

import json
import sys
import types

import pytest

import boards.build
import sim.network
from boards.refmodel import random_model
from kwshw import modelfile
from kwshw.app import pipeline


class _Calls:
    """Stand-ins of the library calls of ``run_all``, recording their order."""

    def __init__(self, *, sim_ok=True, failing_board=None):
        self.order, self.sim_ok, self.failing_board = [], sim_ok, failing_board

    def train_reference(self, data, out_path, *, bits, epochs, seed, recipe):
        self.order.append(("train", recipe, bits, epochs, seed))
        modelfile.save(random_model(bits, [200, 32, 16, 12], seed=seed), out_path)

    def evaluate(self, model, data, *, split, modes, plots, progress):
        self.order.append(("evaluate", split, tuple(modes)))
        return {"task": "speech_commands",
                "results": {m: {"accuracy": 0.5 + 0.25 * i} for i, m in enumerate(modes)}}

    def generate(self, model, lanes, out_dir):
        self.order.append(("generate", lanes))
        return {"files": {"verilog": "kwshw_accel.v"}, "memory_bits": 1234,
                "cycles": {"per_frame": 900, "ideal_per_frame": 800}}

    def run_network_sim(self, model, settings, *, n_frames):
        self.order.append(("sim", settings.lanes, settings.simulator, n_frames))
        return types.SimpleNamespace(
            ok=self.sim_ok, simulator=settings.simulator, frames_checked=n_frames,
            values_checked=12 * n_frames, mismatches=0 if self.sim_ok else 1,
            first_mismatch_text=None if self.sim_ok else "frame 3, score 7: 5 != 6",
            cycles_per_frame=900, frames_per_second=1.5, wave=None)

    def build(self, board, model, *, lanes, out_dir, sys_clk_hz):
        self.order.append(("build", board, lanes, out_dir.name, sys_clk_hz))
        if board == self.failing_board:
            raise RuntimeError(f"{board} does not fit")
        return {"board": board, "fpga": "X", "lanes": lanes,
                "clock": {"achieved_mhz": 60.0, "target_mhz": 25, "timing_met": True},
                "utilization": {"luts": {"used": 1000, "available": 5000}},
                "throughput": {"cycles_per_frame": 900, "compute_ms_per_frame": 0.04},
                "files": {"bitstream": f"{board}.bit"}}


@pytest.fixture
def calls(monkeypatch):
    def install(**kwargs):
        c = _Calls(**kwargs)
        monkeypatch.setitem(sys.modules, "kwshw.train",
                            types.SimpleNamespace(train_reference=c.train_reference))
        monkeypatch.setattr(pipeline, "evaluate", c.evaluate)
        monkeypatch.setattr(pipeline, "generate", c.generate)
        monkeypatch.setattr(sim.network, "run_network_sim", c.run_network_sim)
        monkeypatch.setattr(boards.build, "build", c.build)
        return c
    return install


def test_run_all_with_a_given_model(calls, tmp_path):
    c = calls(failing_board="icebreaker")
    model_path = tmp_path / "given.kwm"
    modelfile.save(random_model(4, [200, 32, 16, 12], seed=1), model_path)
    out, logs = tmp_path / "out", []
    s = pipeline.run_all(tmp_path / "data", out, lanes=4, frames=7, simulator="icarus",
                         model_path=model_path, jobs=1, log=logs.append)
    assert c.order == [("evaluate", "validation", ("golden", "float")), ("generate", 4),
                       ("sim", 4, "icarus", 7), ("build", "ulx3s-85f", 8, "ulx3s-85f-4b", "auto"),
                       ("build", "icebreaker", 4, "icebreaker-4b", "auto")]
    assert list(s) == ["data", "out", "steps", "model", "accuracy", "verilog", "sim", "builds",
                       "total_s", "ok"]
    assert list(s["steps"]) == ["eval_s", "generate_s", "sim_s", "builds_s"]
    assert s["model"]["path"] == str(model_path)
    assert s["model"]["sha256"] == modelfile.load(model_path).sha256
    assert s["accuracy"] == {"golden": 0.5, "float": 0.75}
    assert s["verilog"] == {"path": str(out / "verilog" / "kwshw_accel.v"), "lanes": 4,
                            "cycles": {"per_frame": 900, "ideal_per_frame": 800},
                            "memory_bits": 1234}
    assert s["sim"]["ok"] and s["sim"]["frames_checked"] == 7
    ok_build, failed = s["builds"]
    assert ok_build["luts"] == "1,000/5,000" and ok_build["bitstream"] == "ulx3s-85f.bit"
    assert failed == {"board": "icebreaker", "lanes": 4, "error": "icebreaker does not fit",
                      "build_s": failed["build_s"]}
    assert s["ok"] is False  # a failed build fails the job
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    assert json.loads((out / "eval" / "results.json").read_text())["task"] == "speech_commands"
    assert logs[0] == "==> evaluate on speakers not used for training"
    assert "==> build ulx3s-85f, icebreaker (1 at a time)" in logs
    assert "    ulx3s-85f: 60.0 MHz fmax, clock 25 MHz (" in "\n".join(logs)
    assert "not built: icebreaker does not fit" in pipeline.format_summary(s)


def test_run_all_trains_and_reports_a_mismatch(calls, tmp_path):
    c = calls(sim_ok=False)
    logs = []
    s = pipeline.run_all(tmp_path / "data", tmp_path, bits=8, epochs=2, seed=3, boards=(),
                         jobs=1, log=logs.append)
    assert c.order[0] == ("train", "cnn", 8, 2, 3) and [o[0] for o in c.order[1:]] == [
        "evaluate", "generate", "sim"]
    assert list(s["steps"]) == ["train_s", "eval_s", "generate_s", "sim_s"]
    assert s["model"]["path"] == str(tmp_path / "model-cnn-8b.kwm") and s["model"]["bits"] == 8
    assert s["builds"] == [] and s["ok"] is False
    assert "    MISMATCH: frame 3, score 7: 5 != 6" in logs
    assert logs.index("    MISMATCH: frame 3, score 7: 5 != 6") == len(logs) - 1


@pytest.mark.parametrize("workers", [1, 2])
def test_builds_keep_the_boards_order_and_their_refusals(tmp_path, workers):
    # The 8-bit reference network fits neither board, so both builds stop at the fit check
    # (a real build takes minutes): what is tested is the pool, the order and the errors.
    model = random_model(8)
    boards_ = [("icebreaker", 4), ("ulx3s-12f", 8)]
    logs: list[str] = []
    seconds, entries = pipeline._build_all(model, boards_, tmp_path, None, logs.append, workers)
    assert [(e["board"], e["lanes"]) for e in entries] == boards_
    assert "1,731,584 weight bits" in entries[0]["error"]
    assert "iCE40UP5K SPRAM" in entries[0]["error"]
    assert "LFE5U-12F block RAM" in entries[1]["error"]
    assert all(e["build_s"] >= 0 for e in entries) and seconds >= 0
    assert logs[0] == f"==> build icebreaker, ulx3s-12f ({workers} at a time)"
    assert sorted(line.split(":")[0].strip() for line in logs[1:3]) == ["icebreaker",
                                                                        "ulx3s-12f"]
    assert all("not built" in line for line in logs[1:3])
