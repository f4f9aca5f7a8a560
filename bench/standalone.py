"""Resources and fmax of the complete standalone design (microphone to keyword), by building it.

Builds ``kwshw build --mic pdm|i2s`` of the reference CNN (random weights,
``boards.refmodel.random_cnn(4)``, with a detection threshold per keyword class as a trained
model brings, ``boards.refmodel.with_class_offsets``) for every board with microphone pins,
with Yosys and nextpnr (``boards.build.build``, the board's standalone clock, timing failures
kept), and records what the fit check refuses before synthesis, with its numbers::

    python bench/standalone.py [--boards ulx3s-25f,ulx3s-85f,icebreaker] [--mics pdm,i2s]
                               [--out DIR]        # -> DIR/standalone.json

The front end, microphone receivers and detector alone are ``bench/stages.py``'s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import Timer, provenance, results_dir, write_json

from boards.build import build
from boards.errors import BuildError, FitError
from boards.refmodel import random_cnn, with_class_offsets
from boards.table import BOARDS

DEFAULT_BOARDS = ("ulx3s-25f", "ulx3s-85f", "icebreaker")
MICS = ("pdm", "i2s")


def _point(board: str, mic: str, model, work: Path) -> dict:
    """One build, or the reason it was refused."""
    row = {"board": board, "mic": mic, "lanes": BOARDS[board].default_lanes,
           "design_mhz": BOARDS[board].design_clk_hz(mic) / 1e6}
    try:
        rep = build(board, model, out_dir=work / f"{board}-{mic}", mic=mic,
                    allow_timing_fail=True)
    except (FitError, BuildError) as e:
        return {**row, "status": "refused", "reason": str(e)}
    u, c = rep["utilization"], rep["clock"]
    return {**row, "status": "built", "fmax_mhz": c["achieved_mhz"],
            "timing_met": c["timing_met"], "design_mhz": c["sys_hz"] / 1e6,
            "utilization": {k: v for k, v in u.items() if v},
            "cycles_per_hop": rep["detection"]["cycles_per_hop"],
            "build_s": rep["times"].get("total_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default=",".join(DEFAULT_BOARDS))
    ap.add_argument("--mics", default=",".join(MICS))
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    out = results_dir(False, args.out)
    model = with_class_offsets(random_cnn(4))   # the detector's per-class threshold table
    points = []
    with tempfile.TemporaryDirectory(prefix="kwshw-standalone-") as tmp:
        for board in args.boards.split(","):
            for mic in args.mics.split(","):
                p = _point(board, mic, model, Path(tmp))
                points.append(p)
                print(f"{board:<12} {mic}: " + (
                    f"{p['fmax_mhz']} MHz at {p['design_mhz']:g} MHz, "
                    f"LUTs {p['utilization'].get('luts')}" if p["status"] == "built"
                    else f"refused: {p['reason'][:120]}"), flush=True)
    path = write_json(out / "standalone.json",
                      {"model": "with_class_offsets(random_cnn(4))", "shape": model.shape,
                       "points": points},
                      meta=provenance("bench/standalone.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
