"""The simulation infrastructure itself: drivers, monitors, runner, waves (on a tiny fixture)."""

from __future__ import annotations

import json

import pytest

from sim import toolchain
from sim.fixtures import StreamPipe


def _pipe(tmp_path, simulator: str, *, n: int = 20, seed: int = 1, p: float = 0.0) -> tuple:
    """The stream pipe's Verilog and the :func:`toolchain.simulate` arguments of its cocotb
    test (``n`` items, gaps and stalls with probability ``p``), or a skip."""
    if not toolchain.have_simulator(simulator):
        pytest.skip(f"{simulator} not installed")
    src = toolchain.convert(StreamPipe(), tmp_path / "pipe.v", name="pipe")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"n": n, "seed": seed, "gap_prob": p, "stall_prob": p,
                               "out": str(tmp_path / "out.json")}))
    return src, dict(simulator=simulator, build_dir=tmp_path / "build",
                     env={"KWSHW_TB_CONFIG": str(cfg)})


# Verilator is slow here (20 s to build): its runs with gaps and stalls in
# tests/test_cocotb_network.py drive the same streams in CI.
@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_stream_drivers(tmp_path, simulator):
    src, kwargs = _pipe(tmp_path, simulator, n=300, seed=5, p=0.3)
    toolchain.simulate([src], "pipe", "sim.tb_fixtures", **kwargs)
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["received"] == 300 and res["monitored"] == 300


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_waves_written(tmp_path, simulator):
    src, kwargs = _pipe(tmp_path, simulator)
    run = toolchain.simulate([src], "pipe", "sim.tb_fixtures", waves=True, **kwargs)
    assert run.wave is not None and run.wave.suffix in (".fst", ".vcd")
    assert run.wave.stat().st_size > 0


_FAILING_TB = '''
import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def passes(dut):
    await Timer(1, "ns")


@cocotb.test()
async def fails(dut):
    await Timer(1, "ns")
    assert False, "on purpose"
'''


def test_failed_cocotb_test_is_reported(tmp_path, monkeypatch):
    if not toolchain.have_simulator("icarus"):
        pytest.skip("icarus not installed")
    # The runner hands this process's sys.path to the simulator's Python.
    (tmp_path / "kwshw_tb_failing.py").write_text(_FAILING_TB)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = toolchain.convert(StreamPipe(), tmp_path / "pipe.v", name="pipe")
    kwargs = {"build_dir": tmp_path / "build"}
    with pytest.raises(toolchain.SimulationError,
                       match=r"(?s)1 of 2 cocotb tests failed: fails: on purpose.* \(log: "):
        toolchain.simulate([src], "pipe", "kwshw_tb_failing", **kwargs)
    run = toolchain.simulate([src], "pipe", "kwshw_tb_failing", check=False, **kwargs)
    assert (run.tests, run.failed, run.wave) == (2, 1, None)
    assert run.failures[0].startswith("fails: ") and run.log.exists()


def test_build_failure_is_reported(tmp_path):
    if not toolchain.have_simulator("icarus"):
        pytest.skip("icarus not installed")
    bad = tmp_path / "bad.v"
    bad.write_text("module pipe(input clk);\n  this is not verilog\nendmodule\n")
    with pytest.raises(toolchain.SimulationError, match=r"icarus build of pipe failed.*build\.log"):
        toolchain.simulate([bad], "pipe", "sim.tb_fixtures", build_dir=tmp_path / "build")


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_a_build_made_with_another_toolchain_is_rebuilt_from_scratch(tmp_path, simulator):
    # A cache shared with another checkout (same design, another .venv): the old build's
    # dependency files name the other cocotb, and make would look for files that are gone.
    src, kwargs = _pipe(tmp_path, simulator)
    run = toolchain.simulate([src], "pipe", "sim.tb_fixtures", **kwargs)
    stamp = run.build_dir / "toolchain.stamp"
    kept = run.build_dir / "kept.txt"
    kept.write_text("")
    toolchain.simulate([src], "pipe", "sim.tb_fixtures", **kwargs)
    assert kept.exists()                      # same toolchain: the build is reused
    stale = run.build_dir / "stale.d"         # what the other checkout's build left
    stale.write_text("verilator.o: /gone/cocotb/share/lib/verilator/verilator.cpp\n")
    stamp.write_text(stamp.read_text().replace("/", "/elsewhere/", 1))
    run = toolchain.simulate([src], "pipe", "sim.tb_fixtures", **kwargs)
    assert not stale.exists() and not kept.exists()
    assert run.tests == 1 and run.failed == 0
