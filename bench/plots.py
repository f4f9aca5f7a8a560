"""Plots of the benchmark results (PNG, matplotlib Agg) from the JSON files in a results folder.

::

    python bench/plots.py                        # bench/results/*.json -> bench/results/*.png
    python bench/plots.py --results bench/results/quick

- ``accuracy.png``: top-1 accuracy by precision (accuracy.json);
- ``memory.png``: model memory against float32 (sweep.json's models, accuracy.json footprints);
- ``cycles.png``: cycles per frame against the ideal for P = 1..32 (sweep.json);
- ``pareto.png``: accuracy against LUTs, latency as marker colour and size (sweep.json and
  accuracy.json; LUTs against latency alone while accuracy is not measured);
- ``simspeed.png``: simulation speed by simulator (simspeed.json).

A plot whose data is missing is skipped (and listed as skipped), never drawn from invented data.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

from common import RESULTS, accuracy_rows, load_results, simspeed_rows

PLOTS = ("accuracy", "memory", "cycles", "pareto", "simspeed")
_BOARD_MARKERS = {"ulx3s-85f": "o", "icebreaker": "s"}
_KIND_COLOURS = {"float": "#555555", "dynamic-qat": "#1f77b4", "dynamic": "#6baed6",
                 "static": "#fd8d3c", "other": "#9e9ac8"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": 110,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _subtitle(meta: dict | None) -> str:
    if not meta:
        return ""
    m = meta.get("machine") or {}
    return f"{meta.get('date', '')[:10]}, {m.get('cpu', '?')} x{m.get('cores', '?')}"


def plot_accuracy(res: dict, out: Path) -> Path | None:
    rows = [r for r in accuracy_rows(res.get("accuracy")) if r["accuracy"] is not None]
    if not rows:
        return None
    plt = _plt()
    tasks = sorted({r.get("task") or "" for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.0, 1.2 * len(rows) + 2), 4.2),
                             squeeze=False)
    order = {"float": 0, "dynamic-qat": 1, "dynamic": 2, "static": 3, "other": 4}
    for ax, task in zip(axes[0], tasks, strict=True):
        sub = sorted((r for r in rows if (r.get("task") or "") == task),
                     key=lambda r: (order.get(r["kind"], 9), -(r["bits"] or 0), r["label"]))
        labels = [textwrap.fill(r["label"].replace(" (", "\n("), 16, break_on_hyphens=False)
                  for r in sub]
        vals = [100 * r["accuracy"] for r in sub]
        bars = ax.bar(range(len(sub)), vals,
                      color=[_KIND_COLOURS.get(r["kind"], "#9e9ac8") for r in sub])
        for b, v in zip(bars, vals, strict=True):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.5, f"{v:.1f}%", ha="center",
                    va="bottom", fontsize=9)
        ax.set_xticks(range(len(sub)), labels, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("top-1 accuracy (%)")
        split = sorted({str(r.get("split")) for r in sub if r.get("split")})
        ax.set_title(f"{task or 'accuracy'}" + (f" ({', '.join(split)} split)" if split else ""))
        ax.grid(axis="x", visible=False)
    fig.suptitle("Accuracy by precision  " + _subtitle((res.get("accuracy") or {}).get("meta")),
                 fontsize=10)
    return _save(fig, out / "accuracy.png")


def _footprints(res: dict) -> list[tuple[str, int, int, int]]:
    """``(label, weight_bits, constant_bits, float32_bits)`` rows, float32 first."""
    rows = []
    sweep = res.get("sweep") or {}
    models = sweep.get("models") or {}
    f32 = None
    for bits in sorted(models, key=int, reverse=True):
        fp = models[bits].get("footprint") or {}
        if not fp:
            continue
        f32 = fp["float32_bits"]
        shape = "-".join(map(str, models[bits].get("shape", [])))
        rows.append((f"{bits}-bit dynamic\n{shape}", fp["weight_bits"], fp["constant_bits"],
                     fp["float32_bits"]))
    if f32:
        rows.insert(0, ("float32", f32, 0, f32))
    return rows


def plot_memory(res: dict, out: Path) -> Path | None:
    rows = _footprints(res)
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.8 * len(rows)))
    y = list(range(len(rows)))[::-1]
    w = [r[1] / 1e3 for r in rows]
    c = [r[2] / 1e3 for r in rows]
    ax.barh(y, w, color="#1f77b4", label="weights")
    ax.barh(y, c, left=w, color="#fd8d3c", label="per-column constants")
    xmax = max(a + b for a, b in zip(w, c, strict=True))
    for yi, r, a, b in zip(y, rows, w, c, strict=True):
        pct = 100 * (r[1] + r[2]) / r[3]
        ax.text(a + b + xmax * 0.01, yi, f"{(r[1] + r[2]) / 1e3:,.0f} kbit ({pct:.1f}%)",
                va="center", fontsize=9)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=9)
    ax.set_xlim(0, xmax * 1.3)
    ax.set_xlabel("model memory (kbit); % of float32")
    ax.set_title("Memory footprint vs float32 (whole network, all constants)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", visible=False)
    return _save(fig, out / "memory.png")


def plot_cycles(res: dict, out: Path) -> Path | None:
    sweep = res.get("sweep") or {}
    table = sweep.get("cycles_vs_lanes") or {}
    if not table:
        return None
    plt = _plt()
    bits = "4" if "4" in table else sorted(table)[0]
    rows = table[bits]
    shape = "-".join(map(str, (sweep.get("models", {}).get(bits) or {}).get("shape", [])))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.5, 6.2), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.4]})
    p = [r["lanes"] for r in rows]
    ax.plot(p, [r["ideal"] for r in rows], "-", color="#1f77b4",
            label="ideal: sum ceil(n_out/P)*n_in")
    ax.plot(p, [r["macs_over_lanes"] for r in rows], ":", color="#888888",
            label="MACs / P (perfect lane use)")
    act = [r for r in rows if r.get("cycles")]
    ax.plot([r["lanes"] for r in act], [r["cycles"] for r in act], "o", color="#d62728",
            label="accelerator (schedule = simulation)")
    for r in act:
        ax.annotate(f"{r['cycles']:,}", (r["lanes"], r["cycles"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylabel("cycles per frame")
    ax.set_title(f"Cycles per frame vs MAC lanes P ({bits}-bit {shape})")
    ax.legend(fontsize=8)
    ax2.bar([r["lanes"] for r in act], [r["overhead_percent"] for r in act],
            width=[0.25 * r["lanes"] for r in act], color="#d62728")
    for r in act:
        ax2.text(r["lanes"], r["overhead_percent"], f"{r['overhead_percent']:.2f}%",
                 ha="center", va="bottom", fontsize=8)
    ax2.set_ylabel("over ideal (%)")
    ax2.set_xlabel("MAC lanes P (the accelerator takes powers of two)")
    ax2.set_xticks([1, 2, 4, 8, 16, 32], ["1", "2", "4", "8", "16", "32"])
    top = max((r["overhead_percent"] for r in act), default=1.0)
    ax2.set_ylim(0, max(top * 1.35, 0.1))
    return _save(fig, out / "cycles.png")


def _accuracy_by_bits(res: dict) -> dict[int, tuple[float, str]]:
    """Best hardware-relevant accuracy per bit width: the QAT (golden) model first, else
    post-training dynamic quantization."""
    best: dict[int, tuple[int, float, str]] = {}
    for r in accuracy_rows(res.get("accuracy")):
        if r["bits"] in (None, 32) or r["kind"] not in ("dynamic-qat", "dynamic") \
                or r["accuracy"] is None:
            continue
        prio = 0 if r["kind"] == "dynamic-qat" else 1
        cur = best.get(r["bits"])
        if cur is None or (prio, -r["accuracy"]) < (cur[0], -cur[1]):
            best[r["bits"]] = (prio, r["accuracy"], r["label"])
    return {b: (v[1], v[2]) for b, v in best.items()}


def plot_pareto(res: dict, out: Path) -> Path | None:
    sweep = res.get("sweep") or {}
    built = [p for p in sweep.get("points", [])
             if p.get("status") == "built" and (p.get("resources") or {}).get("luts")]
    if not built:
        return None
    plt = _plt()
    acc = _accuracy_by_bits(res)
    have_acc = all(p["bits"] in acc for p in built)

    def lat(p):
        block = (p.get("latency") or {}).get("fmax") or (p.get("latency") or {}).get(
            "design_clock")
        return block["ms"]

    lats = [lat(p) for p in built]
    fig, ax = plt.subplots(figsize=(8, 5.2))
    import matplotlib.colors as mcolors

    norm = mcolors.LogNorm(vmin=min(lats), vmax=max(max(lats), min(lats) * 1.01))
    for board in sorted({p["board"] for p in built}):
        pts = [p for p in built if p["board"] == board]
        xs = [p["resources"]["luts"] for p in pts]
        ys = [100 * acc[p["bits"]][0] if have_acc else lat(p) for p in pts]
        sizes = [40 + 160 * (math.log(max(lats) / lat(p) + 1)) for p in pts]
        sc = ax.scatter(xs, ys, c=[lat(p) for p in pts], s=sizes, norm=norm, cmap="viridis_r",
                        marker=_BOARD_MARKERS.get(board, "^"), edgecolors="black",
                        linewidths=0.6, label=board)
        up = board == sorted({q["board"] for q in built})[0]
        for p, x, y in zip(pts, xs, ys, strict=True):
            ax.annotate(f"{p['bits']}b P{p['lanes']}", (x, y), textcoords="offset points",
                        xytext=(0, 11 if up else -15), ha="center", fontsize=7.5)
    import matplotlib.ticker as mticker

    cb = fig.colorbar(sc, ax=ax)
    cb.set_label("latency per frame at fmax (ms)")

    def tick(v, _=None):
        return f"{v:,.0f}" if v >= 100 else f"{v:g}"

    fmt = mticker.FuncFormatter(tick)
    sparse = mticker.FuncFormatter(lambda v, _: tick(v) if f"{v:.0e}"[0] in "1235" else "")
    cb.ax.yaxis.set_major_formatter(fmt)
    cb.ax.yaxis.set_minor_formatter(sparse)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(sparse)
    ax.set_xlabel("LUTs / logic cells (post place-and-route)")
    if have_acc:
        ax.set_ylabel("top-1 accuracy (%)")
        ys = [100 * a for a, _ in acc.values()]
        ax.set_ylim(min(ys) - 5, min(100, max(ys) + 4))
        ax.set_title("Accuracy vs LUTs vs latency (marker size grows as latency falls)")
        # Pareto front: fewer LUTs, higher accuracy, lower latency.
        front = []
        for p in built:
            q = (p["resources"]["luts"], -acc[p["bits"]][0], lat(p))
            if not any(all(o <= s for o, s in zip(r, q, strict=True)) and r != q
                       for r in ((b["resources"]["luts"], -acc[b["bits"]][0], lat(b))
                                 for b in built)):
                front.append(p)
        for p in front:
            ax.scatter([p["resources"]["luts"]], [100 * acc[p["bits"]][0]], s=10, c="red",
                       marker="o", zorder=5)
        ax.text(0.01, 0.02, "red dot: Pareto-optimal in (LUTs, accuracy, latency)",
                transform=ax.transAxes, fontsize=8)
    else:
        ax.set_yscale("log")
        ax.set_ylabel("latency per frame at fmax (ms)")
        ax.set_title("LUTs vs latency (accuracy not measured yet: run bench/accuracy.py)")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=_BOARD_MARKERS.get(b, "^"), ls="", color="white",
                      markeredgecolor="black", markersize=8, label=b)
               for b in sorted({p["board"] for p in built})]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    return _save(fig, out / "pareto.png")


def plot_simspeed(res: dict, out: Path) -> Path | None:
    rows = simspeed_rows(res.get("simspeed"))
    if not rows:
        return None
    plt = _plt()
    units = sorted({r["unit"] for r in rows}, key=lambda u: -sum(r["unit"] == u for r in rows))
    unit = units[0]

    def group(r):  # "icarus, test network" -> ("test network", "icarus")
        sim, _, rest = r["label"].partition(", ")
        return (rest, sim) if rest else ("", r["label"])

    rows = sorted((r for r in rows if r["unit"] == unit),
                  key=lambda r: (group(r)[0], -r["value"]))
    sims = sorted({group(r)[1] for r in rows})
    palette = ["#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
    colour = {s: palette[i % len(palette)] for i, s in enumerate(sims)}
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.5 * len(rows)))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, [r["value"] for r in rows], color=[colour[group(r)[1]] for r in rows])
    for yi, r in zip(y, rows, strict=True):
        v = r["value"]
        ax.text(v * 1.08, yi, f"{v:,.0f}" if v >= 100 else f"{v:.3g}", va="center", fontsize=9)
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(r["value"] for r in rows) * 0.5, max(r["value"] for r in rows) * 8)
    ax.set_xlabel(unit.replace("_", " ") + " (log scale)")
    ax.set_title("Simulation speed  " + _subtitle((res.get("simspeed") or {}).get("meta")))
    for r in rows:  # mark runs that did not match the golden model
        if r["detail"].get("matches golden") is False:
            r["label"] += " (WRONG RESULTS)"
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=9)
    ax.grid(axis="y", visible=False)
    return _save(fig, out / "simspeed.png")


def make_plots(results: str | Path = RESULTS, out: str | Path | None = None) -> dict:
    """Draw every plot whose data exists; ``{name: path or None}``."""
    results = Path(results)
    out = Path(out) if out else results
    out.mkdir(parents=True, exist_ok=True)
    res = load_results(results)
    done = {}
    for name in PLOTS:
        fn = globals()[f"plot_{name}"]
        path = fn(res, out)
        done[name] = str(path) if path else None
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(RESULTS), help="folder with the JSON files")
    ap.add_argument("--out", help="folder for the PNGs (default: the results folder)")
    args = ap.parse_args(argv)
    done = make_plots(args.results, args.out)
    for name, path in done.items():
        print(f"plots: {name:<9} {path or 'skipped (no data)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
