"""Where the logic goes: board builds of the reference networks with resources per module.

::

    python bench/area.py                      # every point below -> bench/results/area.json
    python bench/area.py --points icebreaker:dnn:4
    python bench/area.py --points ulx3s-85f:cnn:8 --clock 100 --seeds 0,1,2
                                              # -> bench/results/area-clock-100.json
    python bench/area.py --points ulx3s-85f:cnn:8:8 --clock 50 --seeds 0,1,2
                                              # the 8-bit CNN -> area-clock-50.json

Each point is a board, a network, a lane count and optionally the bits (4 unless given). The
networks are the random stand-ins of :mod:`boards.refmodel` (resources depend on the shape,
not the weight values): ``dnn`` is the reference DNN (:data:`boards.refmodel.REFERENCE_SHAPE`),
``cnn`` the CNN recipe's network (:data:`kwshw.layers.REFERENCE_CNN`). Every point is a full
:func:`boards.build.build` with ``breakdown=True``: nextpnr's totals (logic cells, DSPs, RAM,
fmax) and Yosys' per-module split (:mod:`boards.breakdown`). A point the fit check refuses is
recorded with the refusal and its numbers, not built.

``docs/hardware.md`` ("Resources per module") and the README take their tables from the
result (``bench/readme.py``).

``--clock MHZ|auto`` builds at another design clock (``kwshw build --clock``) and ``--seeds``
over several nextpnr placement seeds (``kwshw build --seed``), without the per-module split,
into ``area-clock-MHZ.json``: whether a clock is met, and by how much the placement decides.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tempfile
from pathlib import Path

from common import Timer, logic_overflow, provenance, results_dir, write_json

from boards.build import build
from boards.errors import BuildError, FitError
from boards.refmodel import random_cnn, random_model

#: (board, network, lanes, bits) of the default run: the reference design points of both
#: families.
POINTS = (("icebreaker", "dnn", 4, 4), ("ulx3s-85f", "dnn", 8, 4), ("icebreaker", "cnn", 4, 4),
          ("ulx3s-85f", "cnn", 8, 4))
NETWORKS = {"dnn": random_model, "cnn": random_cnn}
#: Levels of the module tree kept in the results (the accelerator's blocks are at 4).
DEPTH = 4


def measure(board: str, network: str, lanes: int, work: Path, *, bits: int = 4,
            clock: float | str | None = None, seed: int | None = None) -> dict:
    """One point: the build's totals and per-module split (at the board's clock), or the fit
    check's refusal; at another ``clock`` (Hz or ``"auto"``) and nextpnr ``seed``, the totals
    and the clock report."""
    model = NETWORKS[network](bits)
    point = {"board": board, "network": network, "lanes": lanes, "bits": model.bits,
             "model": {"sha256": model.sha256, "shape": model.shape}}
    if clock is not None or seed is not None:
        point["seed"] = seed
    try:
        rep = build(board, model, lanes=lanes, out_dir=work, allow_timing_fail=True,
                    breakdown=clock is None, sys_clk_hz=clock, seed=seed)
    except FitError as e:
        return {**point, "status": "does not fit", "error": str(e)}
    except BuildError as e:
        msg = str(e)
        if logic_overflow(msg):
            return {**point, "status": "does not fit", "reason": "logic (place and route)",
                    "utilization_attempted": _attempted(msg), "error": msg[-3000:]}
        return {**point, "status": "failed", "error": msg[-3000:]}
    return {**point, "status": "built", "utilization": rep["utilization"],
            "fmax_mhz": rep["clock"]["achieved_mhz"], "sys_clk_mhz": rep["clock"]["sys_hz"] / 1e6,
            "cycles_per_frame": rep["throughput"]["cycles_per_frame"],
            "modules": [r for r in rep.get("modules", ()) if r["module"].count(".") < DEPTH],
            "clock": rep["clock"], "times": rep["times"]}


def _attempted(message: str) -> dict:
    """nextpnr's utilisation lines in a failed placement (``ICESTORM_LC: 5506/ 5280``):
    what the design needed."""
    return {m[1]: {"used": int(m[2]), "available": int(m[3])}
            for m in re.finditer(r"(\w+):\s+(\d+)/\s*(\d+)", message)}


def _point(text: str) -> tuple[str, str, int, int]:
    try:
        board, network, lanes, *bits = text.split(":")
        if network not in NETWORKS or len(bits) > 1:
            raise ValueError
        return board, network, int(lanes), int(bits[0]) if bits else 4
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a point is BOARD:NETWORK:LANES[:BITS] with NETWORK in {sorted(NETWORKS)}, got "
            f"{text!r}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", nargs="+", type=_point, default=list(POINTS),
                    help="BOARD:NETWORK:LANES[:BITS] (default: the four 4-bit reference points)")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    ap.add_argument("--clock", default=None, metavar="MHZ|auto",
                    help="design clock (default: the board's; writes area-clock-MHZ.json)")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated nextpnr placement seeds (default: nextpnr's own)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the build folders here (BOARD-NETWORK each; e.g. for "
                         "bench/lone_ffs.py)")
    args = ap.parse_args(argv)
    try:
        clock = args.clock if args.clock in (None, "auto") else float(args.clock) * 1e6
        seeds = [None] if args.seeds is None else [int(v) for v in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--clock takes MHz or auto and --seeds integers: {args.clock!r}, "
                 f"{args.seeds!r}")
    timer = Timer()
    points = []
    with tempfile.TemporaryDirectory(prefix="kwshw-area-") as tmp:
        builds = args.keep or Path(tmp)
        for (board, network, lanes, bits), seed in itertools.product(args.points, seeds):
            what = (f"{board} {network} {bits}-bit P={lanes}"
                    + (f" seed {seed}" if seed is not None else ""))
            print(f"area: {what} ...", file=sys.stderr, flush=True)
            points.append(measure(board, network, lanes, builds / f"{board}-{network}",
                                  bits=bits, clock=clock, seed=seed))
            print(f"area: {what}: {points[-1]['status']}"
                  + (f", {points[-1]['fmax_mhz']} MHz" if "fmax_mhz" in points[-1] else ""),
                  file=sys.stderr, flush=True)
    name = "area.json" if args.clock is None else f"area-clock-{args.clock}.json"
    path = write_json(results_dir(override=args.out) / name, {"points": points},
                      meta=provenance("bench/area.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
