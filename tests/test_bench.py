"""The benchmark harness: quick run JSON, README results section, ``kwshw report``.

Everything here is small: a tiny network, no synthesis (the quick sweep with ``--no-build``),
and synthetic result files where a real run would take minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The bench scripts are scripts, not a package: they import their helpers as ``common``, the
# way they do when run as ``python bench/X.py`` (the script's own folder first on sys.path).
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
import frontend  # noqa: E402
import readme  # noqa: E402
import sweep  # noqa: E402

TINY = (50, 16, 12)


def _check_meta(meta: dict) -> None:
    for key in ("script", "command", "date", "wall_s", "machine", "versions", "git"):
        assert key in meta, key
    for key in ("cpu", "cores", "memory_gb"):
        assert meta["machine"][key], key
    for key in ("python", "amaranth", "yosys", "nextpnr-ecp5", "nextpnr-ice40", "torch"):
        assert key in meta["versions"], key
    assert meta["versions"]["python"] and meta["versions"]["amaranth"]
    assert meta["wall_s"] >= 0


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> Path:
    """``bench/run.py --quick`` restricted to the sweep (no synthesis) and the plots."""
    out = tmp_path_factory.mktemp("quick")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--no-build",
         "--only", "sweep,plots", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_quick_run_writes_valid_json(quick_results):
    run = json.loads((quick_results / "run.json").read_text())
    _check_meta(run["meta"])
    assert run["meta"]["quick"] is True
    assert [s["step"] for s in run["steps"]] == ["sweep", "plots"]
    assert all(s["status"] == "ok" for s in run["steps"]) and run["failed"] == []

    data = json.loads((quick_results / "sweep.json").read_text())
    _check_meta(data["meta"])
    assert "--quick" in data["meta"]["command"]
    assert data["config"]["shape"] == list(TINY)
    pts = data["points"]
    assert len(pts) == len(sweep.BOARDS) * len(sweep.BITS) * len(sweep.LANES)
    keys = {"board", "fpga", "bits", "lanes", "model", "fit", "status", "cycles_per_frame",
            "ideal_cycles_per_frame", "clock", "latency", "resources", "hop_ms"}
    for p in pts:
        assert keys <= set(p), keys - set(p)
        assert p["status"] in ("not built", "does not fit")
        assert p["cycles_per_frame"] >= p["ideal_cycles_per_frame"] > 0
        lat = p["latency"]["design_clock"]
        assert lat["ms"] == pytest.approx(p["cycles_per_frame"] / (p["clock"]["design_mhz"] * 1e3),
                                          rel=1e-3)
        if p["status"] == "does not fit":
            assert p["fit"]["fits"] is False and p["fit"]["message"]
    # The 8-bit 16-lane tiny model needs 8 SPRAM columns: recorded with the numbers, not built.
    nofit = [p for p in pts if p["status"] == "does not fit"]
    assert nofit and all(p["resources"] is None for p in nofit)
    rows = data["cycles_vs_lanes"]["4"]
    assert [r["lanes"] for r in rows] == list(range(1, 33))
    for r in rows:
        assert (r["cycles"] is not None) == (r["lanes"] & (r["lanes"] - 1) == 0)
        assert r["cycles"] is None or r["cycles"] >= r["ideal"]
    # The plots that have data were drawn.
    assert (quick_results / "cycles.png").stat().st_size > 1000
    assert (quick_results / "memory.png").stat().st_size > 1000


def test_readers_accept_evaluate_and_cycles_layouts():
    acc = {"meta": {}, "models": [{
        "model": {"sha256": "x", "bits": 4, "task": "speech_commands"},
        "task": "speech_commands", "split": "test",
        "results": {"golden": {"accuracy": 0.8, "footprint": {"total_bits": 10,
                                                              "float32_bits": 100}},
                    "float": {"accuracy": 0.9}, "static4": {"accuracy": 0.5}}}]}
    rows = {r["label"]: r for r in common.accuracy_rows(acc)}
    assert rows["float32"]["accuracy"] == 0.9
    assert rows["4-bit dynamic (QAT, bit-exact)"]["footprint_bits"] == 10
    assert rows["4-bit static (per-tensor)"]["kind"] == "static"
    cyc = {"results": [{"lanes": 1, "simulated": 5, "formula": 5,
                        "simulated_equals_formula": True},
                       {"lanes": 2, "simulated": 4, "formula": 3,
                        "simulated_equals_formula": False}]}
    wake = {"task": "wake_word", "split": "test", "model": {"sha256": "y", "bits": 8},
            "results": {"golden": {"operating_points": [
                {"target_far": 0.01, "far": 0.009, "frr": 0.12, "false_accepts_per_hour": 3.0}],
                "clip_accuracy_at_0.5": 0.9}}}
    (row,) = common.accuracy_rows(wake)
    assert row["accuracy"] is None and row["wake_word"][0]["frr"] == 0.12
    table = {"meta": {}, "speech_commands": {
        "task": "speech_commands", "headline_split": "validation+test", "table": [
            {"label": "dynamic 4-bit, QAT", "bits": 4, "kind": "dynamic-qat", "sha256": "q",
             "accuracy_validation": 0.86, "accuracy_validation+test": 0.85,
             "footprint": {"total_bits": 5, "float32_bits": 50}}]}}
    (row,) = common.accuracy_rows(table)
    assert (row["label"], row["accuracy"], row["splits"]["validation"]) == \
        ("dynamic 4-bit, QAT", 0.85, 0.86)
    summ = common.cycles_summary(cyc)
    assert (summ["checked"], summ["equal"]) == (2, 1)
    assert common.accuracy_rows(None) == [] and common.cycles_summary(None) is None
    speed = {"meta": {}, "networks": {"test": {
        "network": {"name": "test", "shape": [200, 32, 16, 12], "bits": 4, "lanes": 4},
        "simulators": {"icarus": {"frames_per_second": 2.5, "cycles_per_second": 900.0,
                                  "ok": True},
                       "verilator": {"skipped": "verilator not installed"}}}}}
    rows = common.simspeed_rows(speed)
    assert [(r["label"], r["value"]) for r in rows] == [("icarus, test network", 2.5)]
    assert rows[0]["detail"]["network"] == "200-32-16-12"


def _readme(tmp_path: Path) -> Path:
    path = tmp_path / "README.md"
    src = ROOT / "README.md"
    text = src.read_text() if src.exists() else "# kwshw\n"
    if readme.BEGIN not in text:
        text += f"\n## Results\n\n{readme.BEGIN}\n{readme.END}\n\nAfter.\n"
    path.write_text(text)
    return path


def _set_git(results: Path, name: str, git: dict) -> None:
    data = json.loads((results / f"{name}.json").read_text())
    data["meta"]["git"] = git
    (results / f"{name}.json").write_text(json.dumps(data))


def test_readme_check(tmp_path, quick_results):
    results = tmp_path / "results"
    shutil.copytree(quick_results, results)
    # As made from a clean tree (the test may run in a working copy with edits).
    for name in ("sweep", "run"):
        _set_git(results, name, {"commit": "0123456789abcdef", "dirty": False,
                                 "dirty_files": []})
    path = _readme(tmp_path)
    before = path.read_text()
    head, tail = before.split(readme.BEGIN)[0], before.split(readme.END)[1]

    assert readme.main(["--readme", str(path), "--results", str(results), "--check"]) == 1
    assert path.read_text() == before  # --check never writes
    assert readme.main(["--readme", str(path), "--results", str(results)]) == 0
    after = path.read_text()
    assert after.startswith(head) and after.endswith(tail)  # only between the markers
    assert readme.main(["--readme", str(path), "--results", str(results), "--check"]) == 0

    section = after.split(readme.BEGIN)[1].split(readme.END)[0]
    assert "AMD" in section or "cores" in section  # the machine
    assert "python bench/sweep.py" in section  # the command
    assert "*published*" in section and "82.5%" in section and "5241/5280" in section
    # Missing JSON files are reported as such, never as numbers.
    assert "Accuracy: not measured yet (run `python bench/run.py`)" in section
    assert "Simulation speed: not measured yet" in section

    assert "`0123456789`" in section  # the commit that made the numbers

    # A result made from uncommitted code is not published, unless asked; then it says so.
    _set_git(results, "sweep", {"commit": "0123456789abcdef", "dirty": True,
                                "dirty_files": ["kwshw/golden.py"]})
    assert readme.main(["--readme", str(path), "--results", str(results)]) == 2
    assert path.read_text() == after
    assert readme.main(["--readme", str(path), "--results", str(results),
                        "--allow-dirty"]) == 0
    assert "uncommitted changes (kwshw/golden.py)" in path.read_text()
    _set_git(results, "sweep", {"commit": "0123456789abcdef", "dirty": False})
    assert readme.main(["--readme", str(path), "--results", str(results)]) == 0

    # A changed result makes the README stale.
    data = json.loads((results / "sweep.json").read_text())
    data["points"][0]["cycles_per_frame"] += 1
    (results / "sweep.json").write_text(json.dumps(data))
    assert readme.main(["--readme", str(path), "--results", str(results), "--check"]) == 1


def test_readme_without_results_or_markers(tmp_path):
    path = _readme(tmp_path)
    empty = tmp_path / "none"
    empty.mkdir()
    assert readme.main(["--readme", str(path), "--results", str(empty)]) == 0
    text = path.read_text()
    assert "No results yet" in text and "not measured yet" in text
    assert "LFE5U" not in text.split(readme.BEGIN)[1]  # no invented build numbers
    bad = tmp_path / "bad.md"
    bad.write_text("# no markers\n")
    assert readme.main(["--readme", str(bad), "--results", str(empty), "--check"]) == 2


def test_report_formatting(tmp_path):
    from boards.refmodel import random_model
    from kwshw.app.report import cache_key, format_report, report
    from kwshw.modelfile import save

    model = random_model(4, TINY)
    path = tmp_path / "tiny.kwm"
    save(model, path)
    cache = tmp_path / "cache"
    cache.mkdir()

    d = report(path, lanes=4, board="icebreaker", results_dir=tmp_path, cache_dir=cache)
    assert d["cycles"]["per_frame"] >= d["cycles"]["ideal_per_frame"]
    assert d["fit"]["fits"] and d["build"]["status"] == "not built"
    text = format_report(d)
    assert "not built: run kwshw build --board icebreaker" in text
    assert "--lanes 4" in text and "% of float32" in text and "not measured" in text

    # A cached build of this exact point is found and shown.
    entry = {"status": "built", "resources": {
        "luts": 4040, "luts_available": 5280, "ffs": 1460, "ffs_available": 5280, "dsps": 7,
        "dsps_available": 8, "bram": 6, "bram_available": 30, "spram": 1, "spram_available": 4,
        "fmax_mhz": 25.6, "sys_clk_mhz": 12.0, "timing_met": True}}
    key = cache_key(model.sha256, "icebreaker", 4, 4)
    (cache / f"{key}.json").write_text(json.dumps(entry))
    model.meta["val_accuracy"] = 0.875
    save(model, path)  # a new hash: the cache entry no longer matches ...
    d = report(path, lanes=4, board="icebreaker", results_dir=None, cache_dir=cache)
    assert d["build"]["status"] == "not built"
    assert d["accuracy"][0]["value"] == pytest.approx(0.875)
    key = cache_key(d["model"]["sha256"], "icebreaker", 4, 4)
    (cache / f"{key}.json").write_text(json.dumps(entry))  # ... until it is rebuilt
    text = format_report(report(path, lanes=4, board="icebreaker", results_dir=None,
                                cache_dir=cache))
    assert "4,040 / 5,280 (77%)" in text and "25.6 MHz" in text and "87.50%" in text
    assert "latency" in text and "achieved fmax" in text

    # Without a board: latency at the known design clocks; a point that does not fit says so.
    assert "21 MHz" in format_report(report(path, lanes=4, results_dir=None))
    d = report(random_model(8, TINY), lanes=16, board="icebreaker", results_dir=None,
               cache_dir=cache)
    assert not d["fit"]["fits"] and "SPRAM" in d["fit"]["message"]
    assert "DOES NOT FIT" in format_report(d)


def test_design_fmax_ignores_nextpnr_pseudo_clocks():
    from boards.build import design_fmax

    fmax = {"$PACKER_GND_NET_$glb_clk": {"achieved_mhz": 313.3, "constraint_mhz": 12},
            "cd_sync.clk": {"achieved_mhz": 25.6, "constraint_mhz": 12.0}}
    assert design_fmax(fmax) == (25.6, True)
    fmax["cd_sync.clk"]["achieved_mhz"] = 11.0
    assert design_fmax(fmax) == (11.0, False)
    assert design_fmax({}) == (None, None)
    # ECP5 names its real clock with a leading "$": it must not be dropped.
    ecp5 = {"$glbnet$cd_sync.clk": {"achieved_mhz": 46.2, "constraint_mhz": 25.0}}
    assert design_fmax(ecp5) == (46.2, True)


def test_accuracy_cache_key_follows_the_training_code(tmp_path):
    """A change to the training code retrains, even with the same TrainConfig and data."""
    import accuracy

    for name in accuracy.TRAINING_SOURCES:
        src = ROOT / name
        dst = tmp_path / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    before = accuracy._training_code_hash(tmp_path)
    assert before == accuracy._training_code_hash(ROOT)
    qat = tmp_path / "kwshw" / "train" / "qat.py"
    qat.write_text(qat.read_text() + "\n# a change\n")
    assert accuracy._training_code_hash(tmp_path) != before


def test_accuracy_runs_the_seeds_in_order_one_or_several_at_a_time(tmp_path):
    """``--jobs N``: the seeds' runs in spawned processes, results in the seeds' order."""
    import accuracy

    runs = [{"seed": s, "task": "speech_commands"} for s in (2, 0, 1)]
    for jobs in (1, 2, 5):
        assert accuracy.each_seed(dict, runs, jobs) == runs
    with pytest.raises(SystemExit):
        accuracy.main(["--jobs", "0", "--out", str(tmp_path)])


def test_accuracy_variant_options():
    """--window/--convs/--hidden become the FeatureConfig fields and TrainConfig overrides of
    the run, and a variant needs a --tag so it never overwrites the recipe's file."""
    import argparse

    import accuracy

    def variant(**kw):
        args = argparse.Namespace(**{"window": None, "convs": None, "hidden": None,
                                     "unknown_weight": None, "tag": None, **kw})
        return accuracy._variant(args)

    assert variant() == ({}, {})
    window, over = variant(window="49,2,2", convs="5,2,64;3,2,64;3,2,56", hidden="60",
                           tag="w49")
    assert window == {"context": 49, "stride": 2, "smooth": 2}
    assert over == {"convs": ((5, 2, 64), (3, 2, 64), (3, 2, 56)), "time_conv": None,
                    "hidden": (60,)}
    with pytest.raises(ValueError, match="--tag"):
        variant(window="49,2,2")
    assert variant(unknown_weight=3.0, tag="u3") == ({}, {"unknown_weight": 3.0})
    with pytest.raises(ValueError, match="--tag"):
        variant(unknown_weight=3.0)
    with pytest.raises(ValueError, match="K,S,C"):
        variant(convs="5,2", tag="x")
    with pytest.raises(ValueError, match="STEPS,STRIDE,SMOOTH"):
        variant(window="49,2", tag="x")


def test_hardware_sources_of_the_build_cache_exist():
    """The build cache key hashes these sources: a moved file must not silently drop out."""
    from kwshw.app import report

    root = report._package_root()
    assert (root / "pyproject.toml").is_file()
    for name in report.HARDWARE_SOURCES:
        assert (root / name).exists(), name


def test_merge_seeds_averages_recall_and_stream_rows():
    import accuracy

    def run(acc, recall, frr):
        return {"table": [{"label": "float32", "sha256": "x", "accuracy_validation": acc,
                           "recall_validation": recall}],
                "stream_table": [{"label": "float32", "threshold": 0.9,
                                  "frr_at_fa1_validation+test": frr}],
                "training": {}}

    m = accuracy.merge_seeds([run(0.7, [0.5, 1.0], 0.2), run(0.8, [1.0, 0.0], 0.4)], [0, 1])
    row, srow = m["table"][0], m["stream_table"][0]
    assert row["accuracy_validation"] == pytest.approx(0.75)
    assert row["recall_validation"] == pytest.approx([0.75, 0.5])
    assert row["recall_validation_by_seed"] == [[0.5, 1.0], [1.0, 0.0]]
    assert srow["frr_at_fa1_validation+test"] == pytest.approx(0.3)
    assert srow["frr_at_fa1_validation+test_by_seed"] == [0.2, 0.4]


def _area_point(board, network, status="built", luts=1000, fmax=30.0, modules=()):
    point = {"board": board, "network": network, "lanes": 4, "bits": 4, "status": status}
    if status == "built":
        point.update(fmax_mhz=fmax, modules=list(modules), utilization={
            "luts": {"used": luts, "available": 5280}, "dsps": {"used": 8, "available": 8},
            "bram": {"used": 30, "available": 30}})
    return point


def test_area_table_before_and_after(tmp_path):
    """The per-module table: totals before/after per design, the iCEBreaker modules side by
    side, a logic overflow with the cells nextpnr wanted, and the splice into a page."""
    import area

    mods = [{"module": "(top)", "lut4": 2000, "carry": 900, "ff": 1700},
            {"module": "core.accel.core.scaler", "lut4": 314, "carry": 182, "ff": 386}]
    tried = area._attempted("Info: \t ICESTORM_LC:    5506/   5280   104%\n"
                            "Info: \t ICESTORM_RAM:      26/     30    86%")
    assert tried == {"ICESTORM_LC": {"used": 5506, "available": 5280},
                     "ICESTORM_RAM": {"used": 26, "available": 30}}
    git = {"commit": "a" * 40, "dirty": False}
    res = {
        "area-before": {"meta": {"git": git}, "points": [
            _area_point("icebreaker", "dnn", luts=5061, modules=mods[:1]),
            {**_area_point("icebreaker", "cnn", status="does not fit"),
             "utilization_attempted": tried}]},
        "area": {"meta": {"git": {**git, "commit": "b" * 40}}, "points": [
            _area_point("icebreaker", "dnn", luts=3810, modules=mods),
            _area_point("icebreaker", "cnn", luts=5220, modules=mods)]},
    }
    lines = readme.area_table(res)
    text = "\n".join(lines)
    assert "| icebreaker, DNN 4-bit, P = 4 | 5,061/5,280 logic cells" in text
    assert "3,810/5,280 logic cells, 8/8 DSPs, 30/30 block RAMs, fmax 30.0 MHz" in text
    assert "does not fit: needs 5,506/5,280 logic cells" in text
    assert "| module | DNN before | DNN after | CNN after |" in text
    assert "| scaler (+ constant ROM) (`core.accel.core.scaler`) | - | 314 / 182 / 386 |" in text
    assert readme.area_table({})[0].startswith("Not measured yet")
    page = f"a\n{readme.AREA_BEGIN}\nold\n{readme.AREA_END}\nb\n"
    spliced = readme.splice_area(page, res)
    assert spliced.startswith("a\n") and spliced.endswith(f"{readme.AREA_END}\nb\n")
    assert "old" not in spliced and "3,810/5,280" in spliced
    with pytest.raises(readme.MarkerError):
        readme.splice_area("no markers", res)


def test_sweep_of_the_cnn_without_builds(tmp_path):
    """``sweep.py --network cnn``: the CNN recipe's network, its own result file; on the
    iCEBreaker the fit check takes 1..8 lanes at 4 bits (1 and 2 lanes with their narrow words
    stored four and two to an SPRAM word) and refuses 16 (wide words leave no SPRAM for the
    histories: 43 block RAMs)."""
    assert sweep.main(["--network", "cnn", "--no-build", "--lanes", "1,2,4,16",
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "sweep-cnn.json").read_text())
    assert not (tmp_path / "sweep.json").exists()
    assert data["config"]["network"] == "cnn" and data["config"]["shape"][0] == 5 * 40
    fits = {(p["board"], p["bits"], p["lanes"]): p["fit"]["fits"] for p in data["points"]}
    assert [fits["icebreaker", 4, p] for p in (1, 2, 4, 16)] == [True, True, True, False]
    assert all(fits["ulx3s-85f", b, p] for b in (4, 8) for p in (1, 2, 4, 16))
    assert readme._sweep({"sweep-cnn": data}, "sweep-cnn")[0].startswith("Network: 200-64-64")


def test_frontend_bench_reports_unreadable_clips(tmp_path):
    """A corrupt file in the data folder is left out and named, not fatal."""
    import numpy as np
    import soundfile as sf

    good, bad = tmp_path / "good.wav", tmp_path / "bad.flac"
    sf.write(good, np.zeros(1600, np.float32), 16000)
    bad.write_bytes(b"fLaC" + bytes(100))
    clips = [("c", good, 0, None), ("c", bad, 0, None)]
    kept, audio, unreadable = frontend.load_clips(clips, 16000)
    assert kept == clips[:1] and len(audio) == 1 and audio[0].size == 1600
    assert len(unreadable) == 1 and "bad.flac" in unreadable[0]


def test_main_command_runs_a_clone_of_head_and_reports_failure(tmp_path, monkeypatch):
    """The main-command bench runs the committed HEAD, not the working tree, and a failing
    command is an error that quotes the log's end."""
    import main_command

    clone = tmp_path / "clone"
    commit = main_command.clone_head(clone)
    assert commit == subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True,
                                    capture_output=True, check=True).stdout.strip()
    assert (clone / "scripts" / "main.sh").is_file()
    monkeypatch.setattr(main_command, "COMMAND", ["bash", "-c", "echo boom >&2; exit 3", "x"])
    with pytest.raises(RuntimeError, match="exited with 3(.|\n)*boom"):
        main_command.run_main(clone, tmp_path / "out", tmp_path / "log", tmp_path / "cache")


def test_readme_main_command_section():
    summary = {"steps": {"train_s": 900.0, "eval_s": 3.0, "generate_s": 4.0, "sim_s": 50.0},
               "accuracy": {"golden": 0.816, "float": 0.821},
               "sim": {"frames_checked": 200, "mismatches": 0},
               "model": {"bits": 4},
               "builds": [{"board": "icebreaker", "lanes": 4, "clock_mhz": 36.0,
                           "fmax_mhz": 42.88, "timing_met": True, "luts": "3,490/5,280",
                           "dsps": "7/8", "bram": "20/30", "spram": "4/4",
                           "latency_ms": 0.379, "build_s": 275.3}]}
    res = {"main-command": {"commit": "a" * 40, "command": "bash scripts/main.sh",
                            "wall_s": 1500.0, "fresh_cache": True, "summary": summary}}
    text = "\n".join(readme._main_command(res))
    assert "**25.0 min**" in text and "0 mismatches" in text and "81.6%" in text
    assert "| icebreaker | 4 | 36 MHz | 42.88 MHz | yes | 3,490/5,280 | 7/8 | 20/30 + 4/4 SPRAM |" \
        in text
    assert "board builds" not in text  # a summary from before the builds ran side by side
    summary["steps"]["builds_s"] = 211.9
    assert "board builds 212 s (side by side" in "\n".join(readme._main_command(res))
    assert "not measured yet" in "\n".join(readme._main_command({}))


def test_area_points_take_optional_bits():
    import area

    assert area._point("ulx3s-85f:cnn:8") == ("ulx3s-85f", "cnn", 8, 4)
    assert area._point("ulx3s-85f:cnn:8:8") == ("ulx3s-85f", "cnn", 8, 8)
    for bad in ("ulx3s-85f:cnn", "ulx3s-85f:rnn:8", "ulx3s-85f:cnn:8:8:1", "x:cnn:8:b"):
        with pytest.raises(argparse.ArgumentTypeError):
            area._point(bad)


def test_train_speed_times_the_trainers_loops(tmp_path):
    """A tiny run of ``bench/train_speed.py``: both loops timed at each thread count, the
    trainer's own at the top level, the result file with its provenance."""
    pytest.importorskip("torch")
    import train_speed

    assert train_speed.main(["--windows", "300", "--epochs", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "train-speed.json").read_text())
    _check_meta(data["meta"])
    assert data["windows"] == 300 and data["epochs"] == 1
    assert data["threads"] == train_speed.TrainConfig.threads
    assert set(data["by_threads"]) == {"1", "2"}
    for run in data["by_threads"].values():
        assert run["float_s_per_epoch"] > 0 and run["qat4_s_per_epoch"] > 0
    own = data["by_threads"][str(train_speed.TrainConfig.threads)]
    assert data["float_s_per_epoch"] == own["float_s_per_epoch"]
    for bad in (["--epochs", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            train_speed.main([*bad, "--out", str(tmp_path)])
