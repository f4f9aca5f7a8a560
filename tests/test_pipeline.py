"""``kwshw all`` (:func:`kwshw.app.pipeline.run_all`): the order of its steps, the summary it
returns and writes, and how failures show in it. Every step's library call is replaced by a
stand-in, so this runs no training, simulator or synthesis."""

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
                         model_path=model_path, log=logs.append)
    assert c.order == [("evaluate", "validation", ("golden", "float")), ("generate", 4),
                       ("sim", 4, "icarus", 7), ("build", "ulx3s-85f", 8, "ulx3s-85f-4b", "auto"),
                       ("build", "icebreaker", 4, "icebreaker-4b", "auto")]
    assert list(s) == ["data", "out", "steps", "model", "accuracy", "verilog", "sim", "builds",
                       "total_s", "ok"]
    assert list(s["steps"]) == ["eval_s", "generate_s", "sim_s"]
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
    assert "not built: icebreaker does not fit" in pipeline.format_summary(s)


def test_run_all_trains_and_reports_a_mismatch(calls, tmp_path):
    c = calls(sim_ok=False)
    logs = []
    s = pipeline.run_all(tmp_path / "data", tmp_path, bits=8, epochs=2, seed=3, boards=(),
                         log=logs.append)
    assert c.order[0] == ("train", "cnn", 8, 2, 3) and [o[0] for o in c.order[1:]] == [
        "evaluate", "generate", "sim"]
    assert list(s["steps"]) == ["train_s", "eval_s", "generate_s", "sim_s"]
    assert s["model"]["path"] == str(tmp_path / "model-cnn-8b.kwm") and s["model"]["bits"] == 8
    assert s["builds"] == [] and s["ok"] is False
    assert "    MISMATCH: frame 3, score 7: 5 != 6" in logs
    assert logs.index("    MISMATCH: frame 3, score 7: 5 != 6") == len(logs) - 1
