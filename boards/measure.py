"""Measure the reference builds: ``python -m boards.measure OUT_DIR [board:bits:lanes ...]``.

Builds the reference network (random weights, :mod:`boards.refmodel`) for each point with
:func:`boards.build.build`, one after the other, and writes ``OUT_DIR/measured.json`` and a
Markdown table ``OUT_DIR/measured.md`` (the one in ``docs/boards.md``): clock, fmax,
utilisation, build time, or the fit check's refusal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .build import BuildError, FitError, build
from .refmodel import random_model

#: The points the design card asks for, plus one of each other board family.
DEFAULT_POINTS = ("ulx3s-85f:4:8", "ulx3s-25f:4:8", "icebreaker:4:4", "ulx3s-85f:8:8",
                  "icebreaker:8:4", "orangecrab-85f:4:8", "ecpix5-85f:4:8")


def _used(u, key):
    e = u.get(key)
    return f"{e['used']:,} / {e['available']:,}" if e and e.get("used") is not None else "-"


def measure(out_dir, points=DEFAULT_POINTS, log=print) -> list[dict]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    rows = []
    for point in points:
        board, bits, lanes = point.split(":")
        bits, lanes = int(bits), int(lanes)
        model = random_model(bits)
        t0 = time.monotonic()
        row = {"board": board, "bits": bits, "lanes": lanes, "shape": model.shape}
        try:
            rep = build(board, model, lanes=lanes, out_dir=out_dir / f"{board}-{bits}-{lanes}",
                        allow_timing_fail=True)
            row.update(status="built", clock=rep["clock"], utilization=rep["utilization"],
                       times=rep["times"], throughput=rep["throughput"])
        except FitError as e:
            row.update(status="refused", message=str(e))
        except BuildError as e:
            row.update(status="failed", message=str(e)[-2000:])
        row["wall_s"] = round(time.monotonic() - t0, 1)
        log(f"{point}: {row['status']} in {row['wall_s']} s")
        rows.append(row)
    (out_dir / "measured.json").write_text(json.dumps({"commit": commit, "points": rows},
                                                      indent=1, default=float))
    lines = ["| board | model | lanes | clock | fmax | LUTs / LCs | FFs | DSPs | BRAM | SPRAM "
             "| build time |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = f"{r['bits']}-bit {'-'.join(map(str, r['shape']))}"
        if r["status"] != "built":
            lines.append(f"| {r['board']} | {shape} | {r['lanes']} | - | {r['status']}: "
                         f"{r['message'].splitlines()[0]} | | | | | | {r['wall_s']:g} s |")
            continue
        c, u = r["clock"], r["utilization"]
        src = " (PLL)" if c["source"] == "pll" else ""
        ffs = u.get("ffs") or {}
        lines.append(
            f"| {r['board']} | {shape} | {r['lanes']} | {c['sys_hz'] / 1e6:g} MHz{src} | "
            f"{c['achieved_mhz']} MHz{'' if c['timing_met'] else ' (FAIL)'} | "
            f"{_used(u, 'luts')} | {ffs.get('used', '-'):,} | {_used(u, 'dsps')} | "
            f"{_used(u, 'bram')} | {_used(u, 'spram')} | {r['times']['total_s']:g} s |")
    text = "\n".join(lines)
    (out_dir / "measured.md").write_text(text + "\n")
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    measure(args[0], args[1:] or DEFAULT_POINTS)
    print((Path(args[0]) / "measured.md").read_text())
