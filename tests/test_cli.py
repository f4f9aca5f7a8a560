"""The command line: help, and the info subcommand on good and bad files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from boards.refmodel import random_cnn
from kwshw import modelfile
from kwshw.app import cli

from .test_modelfile import small_model


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kwshw", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_lists_only_working_subcommands():
    r = run("--help")
    assert r.returncode == 0
    parser = cli.build_parser()
    names = parser._subparsers._group_actions[0].choices.keys()
    for name in names:
        assert name in r.stdout
        sub = run(name, "--help")
        assert sub.returncode == 0 and "usage:" in sub.stdout


def test_info_text_and_json(tmp_path, capsys):
    m = small_model(8)
    modelfile.save(m, tmp_path / "m.kwm")
    assert cli.main(["info", str(tmp_path / "m.kwm")]) == 0
    out = capsys.readouterr().out
    assert m.sha256 in out and "8-bit codes" in out and "24 -> 10 -> 6 -> 3" in out
    assert "threshold 0.5 for every keyword class, none chosen at export" in out
    assert "accuracy  not measured (no validation results in the model file)" in out
    labels = [m.labels[0], "_unknown_", m.labels[2]]
    chosen = dataclasses.replace(m, labels=labels, meta={**m.meta, "detection": {
        "threshold": 0.99, "split": "validation", "fa_per_hour_target": 5.0,
        "class_offsets": {labels[0]: 1.0, labels[2]: -1.0}}, "validation": {
        "split": "validation", "clips": 408, "speakers": 16, "golden_accuracy": 0.8162,
        "float_accuracy": 0.8113}})
    modelfile.save(chosen, tmp_path / "c.kwm")
    assert cli.main(["info", str(tmp_path / "c.kwm")]) == 0
    out = capsys.readouterr().out
    assert ("threshold 0.99, chosen on the validation stream for 5.0 false accepts per hour; "
            f"per class: {labels[0]} 0.999, {labels[2]} 0.9") in out
    assert ("accuracy  top-1 golden 81.6%, float 81.1% on the validation speakers (408 clips, "
            "16 speakers;") in out
    assert cli.main(["info", "--json", str(tmp_path / "m.kwm")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shape"] == [24, 10, 6, 3] and len(data["layers"]) == 3


def test_validation_summary_of_every_task():
    """A wake word's validation results are clip accuracies at 0.5; a corpus without a
    validation split leaves the trainer's reason."""
    wake = {"split": "validation", "clips": 120, "speakers": 9, "golden_clip_accuracy": 0.975,
            "float_clip_accuracy": 0.9833, "golden_frr_at_far1": 0.05}
    assert cli._validation_summary({"validation": wake}).startswith(
        "clips right at 0.5 golden 97.5%, float 98.3% on the validation speakers (120 clips, "
        "9 speakers;")
    assert cli._validation_summary({"validation": {"error": "no validation split"}}) == \
        "not measured (no validation split)"


def test_info_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.kwm"
    bad.write_bytes(b"PK\x03\x04 garbage")
    r = run("info", str(bad))
    assert r.returncode == 2
    assert "error:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [[], ["nonsense"]])
def test_usage_errors(argv):
    r = run(*argv)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_generate_writes_verilog_and_report(tmp_path, capsys):
    modelfile.save(small_model(4), tmp_path / "m.kwm")
    assert cli.main(["generate", "--model", str(tmp_path / "m.kwm"), "-P", "4",
                     "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "cycles/frame" in out
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["config"]["lanes"] == 4
    assert "module kwshw_accel" in (tmp_path / "out" / "kwshw_accel.v").read_text()


def test_generate_rejects_bad_lanes(tmp_path):
    modelfile.save(small_model(4), tmp_path / "m.kwm")
    r = run("generate", "--model", str(tmp_path / "m.kwm"), "-P", "3", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "lanes" in r.stderr and "Traceback" not in r.stderr


def test_generate_for_a_family(tmp_path):
    """ECP5 Verilog keeps the CNN's 6,840 32-bit weight words in sixteen 2-bit slices (one
    8k x 2 block RAM each); an unknown family is refused with the known ones, nothing
    written."""
    modelfile.save(random_cnn(4), tmp_path / "m.kwm")
    assert cli.main(["generate", "--model", str(tmp_path / "m.kwm"), "-P", "8",
                     "-o", str(tmp_path / "ecp5"), "--family", "ecp5"]) == 0
    text = (tmp_path / "ecp5" / "kwshw_accel.v").read_text()
    assert "reg [1:0] mem15 [6839:0];" in text and "mem16" not in text
    r = run("generate", "--model", str(tmp_path / "m.kwm"), "-P", "4", "-o", str(tmp_path / "x"),
            "--family", "xilinx")
    assert r.returncode == 2 and "ecp5" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_build_passes_clock_and_placement_seed(tmp_path, monkeypatch, capsys):
    """``kwshw build`` is a thin layer: the clock and nextpnr seed reach boards.build.build."""
    import boards.build

    seen = {}

    def fake_build(board, model, **kwargs):
        seen.update(board=board, **kwargs)
        return {"fake": True}

    monkeypatch.setattr(boards.build, "build", fake_build)
    monkeypatch.setattr(boards.build, "format_report", lambda rep: "report")
    modelfile.save(small_model(4), tmp_path / "m.kwm")
    assert cli.main(["build", "--model", str(tmp_path / "m.kwm"), "--board", "ulx3s-85f",
                     "--clock", "100", "--seed", "2", "-o", str(tmp_path / "b")]) == 0
    assert seen["board"] == "ulx3s-85f" and seen["seed"] == 2
    assert seen["sys_clk_hz"] == 100e6


def test_all_boards_option(tmp_path, monkeypatch, capsys):
    """``kwshw all --boards``: ``none`` (or nothing) skips the builds, a board without lanes
    gets the board table's default, bad lanes and unknown boards are usage errors."""
    from kwshw.app import pipeline

    seen = {}

    def fake_run_all(data, out, **kwargs):
        seen["boards"], seen["jobs"] = kwargs["boards"], kwargs["jobs"]
        return {"ok": True}

    monkeypatch.setattr(pipeline, "run_all", fake_run_all)
    monkeypatch.setattr(pipeline, "format_summary", lambda s: "summary")
    base = ["all", "--data", str(tmp_path), "-o", str(tmp_path / "out")]
    for boards, want in (([], []), (["none"], []), (["icebreaker"], [("icebreaker", 4)]),
                         (["ulx3s-85f", "icebreaker:2"], [("ulx3s-85f", 8), ("icebreaker", 2)])):
        assert cli.main([*base, "--boards", *boards]) == 0
        assert seen.pop("boards") == want, boards
        assert seen.pop("jobs") is None
    assert cli.main([*base, "--jobs", "1"]) == 0 and seen.pop("jobs") == 1
    assert seen.pop("boards") == pipeline.DEFAULT_BOARDS
    r = run(*base, "--jobs", "0")
    assert r.returncode == 2 and "must be at least 1, not 0" in r.stderr
    assert cli.main([*base, "--boards", "nosuchboard"]) == 2
    assert "unknown board 'nosuchboard'" in capsys.readouterr().err
    for bad in ("icebreaker:0", "icebreaker:x"):
        r = run(*base, "--boards", bad)
        assert r.returncode == 2 and "lanes must be a positive integer" in r.stderr
    assert "boards" not in seen


def test_train_window_option():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "-o", "m.kwm", "--window", "49,2,2"])
    assert args.window == {"context": 49, "stride": 2, "smooth": 2}
    assert parser.parse_args(["train", "-o", "m.kwm"]).window is None  # the default window
    assert parser.parse_args(["train", "-o", "m.kwm"]).threads is None  # the recipe's (1)
    assert parser.parse_args(["train", "-o", "m.kwm", "--threads", "2"]).threads == 2
    r = run("train", "-o", "m.kwm", "--threads", "0")
    assert r.returncode == 2 and "must be at least 1, not 0" in r.stderr
    r = run("train", "-o", "m.kwm", "--window", "49,0,2")
    assert r.returncode == 2 and "at least 1" in r.stderr and "Traceback" not in r.stderr


def test_train_time_conv_option_is_checked_before_any_work(tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args(["train", "-o", "m.kwm", "--time-conv", "5,2,32"])
    assert args.time_conv == (5, 2, 32)
    assert parser.parse_args(["train", "-o", "m.kwm", "--time-conv", "none"]).time_conv == ()
    assert parser.parse_args(["train", "-o", "m.kwm"]).time_conv is None  # the recipe's
    for bad, why in (("5,2", "expected K,S,C"), ("5,0,16", "at least 1"),
                     ("a,b,c", "expected K,S,C")):
        r = run("train", "--data", str(tmp_path), "-o", str(tmp_path / "m.kwm"),
                "--time-conv", bad)
        assert r.returncode == 2 and "--time-conv" in r.stderr and why in r.stderr, r.stderr
        assert not (tmp_path / "m.kwm").exists()


def test_shared_options_keep_their_defaults(monkeypatch):
    """``--model``, ``--lanes``, ``--data`` and ``--json`` come from parent parsers; every
    subcommand still has them with its own defaults, and ``--data`` reads ``$KWSHW_DATA``
    when the parser is built."""
    monkeypatch.setenv("KWSHW_DATA", "/speech")
    parser = cli.build_parser()
    for argv in (["generate", "--model", "m", "-o", "o"], ["sim", "--model", "m"],
                 ["report", "--model", "m"]):
        args = parser.parse_args(argv)
        assert (args.model, args.lanes) == ("m", 8), argv
        assert parser.parse_args([*argv, "-P", "4"]).lanes == 4
    args = parser.parse_args(["build", "--board", "icebreaker", "--model", "m"])
    assert args.lanes is None and args.json is False
    for cmd in ("info", "sim", "build", "report"):
        argv = {"info": ["info", "m"], "build": ["build", "--board", "b", "--model", "m"]}.get(
            cmd, [cmd, "--model", "m"])
        assert parser.parse_args([*argv, "--json"]).json is True, cmd
    for argv in (["eval", "--model", "m"], ["train", "-o", "m"], ["all"]):
        assert parser.parse_args(argv).data == "/speech", argv
    assert parser.parse_args(["all"]).model is None and parser.parse_args(["all"]).lanes == 8
    assert parser.parse_args(["all"]).recipe == "cnn"
    with pytest.raises(SystemExit):
        parser.parse_args(["sim"])      # --model is required where it comes from the parent
