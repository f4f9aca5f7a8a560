"""The simulation infrastructure itself: drivers, monitors, runner, waves (on a tiny fixture)."""

from __future__ import annotations

import json

import pytest

from sim import toolchain
from sim.fixtures import StreamPipe


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_stream_drivers(tmp_path, simulator):
    if not toolchain.have_simulator(simulator):
        pytest.skip(f"{simulator} not installed")
    src = toolchain.convert(StreamPipe(), tmp_path / "pipe.v", name="pipe")
    cfg = tmp_path / "cfg.json"
    out = tmp_path / "out.json"
    cfg.write_text(json.dumps({"n": 300, "seed": 5, "gap_prob": 0.3, "stall_prob": 0.3,
                               "out": str(out)}))
    toolchain.simulate([src], "pipe", "sim.tb_fixtures", simulator=simulator,
                       build_dir=tmp_path / "build", env={"KWSHW_TB_CONFIG": str(cfg)})
    res = json.loads(out.read_text())
    assert res["received"] == 300 and res["monitored"] == 300


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_waves_written(tmp_path, simulator):
    if not toolchain.have_simulator(simulator):
        pytest.skip(f"{simulator} not installed")
    src = toolchain.convert(StreamPipe(), tmp_path / "pipe.v", name="pipe")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"n": 20, "seed": 1, "gap_prob": 0.0, "stall_prob": 0.0,
                               "out": str(tmp_path / "out.json")}))
    run = toolchain.simulate([src], "pipe", "sim.tb_fixtures", simulator=simulator,
                             build_dir=tmp_path / "build", waves=True,
                             env={"KWSHW_TB_CONFIG": str(cfg)})
    assert run.wave is not None and run.wave.suffix in (".fst", ".vcd")
    assert run.wave.stat().st_size > 0
