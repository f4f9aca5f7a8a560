"""iCE40 DSP allocation: which multipliers get ``SB_MAC16`` DSPs and which are built from logic.

Yosys' ``synth_ice40 -dsp`` maps every large enough multiplier to DSPs whatever the device has;
:func:`limit_dsps` keeps the design within the device's DSPs by building the others from logic
(:func:`dsp_plan` chooses). :func:`boards.build.synthesize` applies it to every iCE40 build.
"""

from __future__ import annotations

import re

__all__ = ["multipliers", "dsp_plan", "dsp_tiles", "booth_commands", "limit_dsps"]

_CONST = re.compile(r"^-?\d+'[01xz-]+$")


def multipliers(il: str) -> list[dict]:
    """The ``$mul`` cells of an RTLIL netlist: module, cell, widths, constant operands."""
    muls, module, cell = [], None, None
    for line in il.splitlines():
        s = line.strip()
        if s.startswith("module "):
            module = s.split()[1].lstrip("\\")
        elif s.startswith("cell "):
            kind, name = s.split()[1:3]
            cell = {"module": module, "cell": name, "kind": kind, "params": {}, "conn": {}}
        elif cell is not None and s.startswith("parameter "):
            parts = s.split()
            cell["params"][parts[1].lstrip("\\")] = parts[2]
        elif cell is not None and s.startswith("connect "):
            parts = s.split(maxsplit=2)
            cell["conn"][parts[1].lstrip("\\")] = parts[2]
        elif cell is not None and s == "end":
            if cell["kind"] == "$mul":
                p = cell["params"]
                muls.append({
                    "module": cell["module"], "cell": cell["cell"],
                    "a": int(p["A_WIDTH"]), "b": int(p["B_WIDTH"]), "y": int(p["Y_WIDTH"]),
                    "const": any(_CONST.match(cell["conn"].get(k, "")) for k in ("A", "B")),
                })
            cell = None
    return muls


def dsp_tiles(a: int, b: int, *, max_width: int = 16, min_width: int = 2,
              min_y: int = 11) -> int:
    """DSPs Yosys' ``mul2dsp`` gives an ``a x b`` multiplier on iCE40: it cuts each operand
    into ``max_width``-bit pieces (the last one shorter) and maps a pair of pieces to a DSP
    when both are at least ``min_width`` bits and their product at least ``min_y`` bits
    (``synth_ice40 -dsp``: 16, 2, 11); the other pairs stay in logic. A 17 x 18 product thus
    takes two DSPs (16 x 16 and 16 x 2), not four."""
    def pieces(n: int) -> list[int]:
        return [max_width] * (n // max_width) + ([n % max_width] if n % max_width else [])

    return sum(1 for x in pieces(a) for y in pieces(b)
               if x >= min_width and y >= min_width and x + y >= min_y)


def dsp_plan(il: str, budget: int, *, max_width: int = 16, min_y: int = 11) -> dict:
    """Choose the multipliers that get iCE40 SB_MAC16 DSPs within ``budget``; the others are
    built from logic.

    Yosys (``synth_ice40 -dsp``) maps every multiplier with a product of at least ``min_y``
    bits to DSPs, splitting wide ones into tiles (:func:`dsp_tiles`), whatever the device has;
    a design with more multipliers than DSPs then fails placement. Here the set that saves the
    most logic (``a * b`` LUTs per multiplier) within the budget keeps its DSPs (a 0/1
    knapsack over the tile counts). Multiplications by a constant are cheap in logic and
    never get a DSP.
    """
    cands, soft = [], []
    for mul in multipliers(il):
        if mul["y"] < min_y or mul["a"] < 2 or mul["b"] < 2:
            continue  # Yosys keeps these in logic anyway
        if mul["const"]:
            soft.append(mul)
            continue
        mul["dsps"] = dsp_tiles(mul["a"], mul["b"], max_width=max_width, min_y=min_y)
        cands.append(mul)
    # Knapsack over the DSP count: best[k] = (saving, chosen indices) using at most k DSPs.
    best = [(0, ())] * (budget + 1)
    for i, mul in enumerate(cands):
        w, v = mul["dsps"], mul["a"] * mul["b"]
        for k in range(budget, w - 1, -1):
            cand = (best[k - w][0] + v, best[k - w][1] + (i,))
            if cand[0] > best[k][0]:
                best[k] = cand
    keep = set(best[budget][1])
    soft += [m for i, m in enumerate(cands) if i not in keep]
    return {"dsp": [cands[i] for i in sorted(keep)], "soft": soft,
            "estimated_dsps": sum(cands[i]["dsps"] for i in keep)}


def booth_commands(soft: list[dict]) -> list[str]:
    """The Yosys commands that build the multipliers ``soft`` (:func:`dsp_plan`'s) from
    logic, to run after ``read_rtlil`` and before synthesis: none if there are none."""
    if not soft:
        return []
    return ["proc", "booth " + " ".join(f"{m['module']}/{m['cell']}" for m in soft)]


def limit_dsps(plan, budget: int, *, name: str) -> dict:
    """Make the Yosys script of ``plan`` (an Amaranth build plan of design ``name``) build the
    multipliers not chosen by :func:`dsp_plan` from logic: Yosys' ``booth`` pass turns them
    into Booth multipliers (adder trees with carry chains) before ``synth_ice40 -dsp`` would
    map them to DSPs.

    Returns the allocation for the build report: the budget, the estimated DSPs, and the
    multipliers in DSPs and in logic.
    """
    il = plan.files[f"{name}.il"]
    il = il.decode() if isinstance(il, bytes) else il
    choice = dsp_plan(il, budget)
    ys_name = f"{name}.ys"
    ys = plan.files[ys_name]
    ys = ys.decode() if isinstance(ys, bytes) else ys
    commands = booth_commands(choice["soft"])
    if commands:
        read = f"read_rtlil {name}.il\n"
        ys = ys.replace(read, read + "".join(f"{c}\n" for c in commands), 1)
        plan.files[ys_name] = ys
    return {"budget": budget, "estimated": choice["estimated_dsps"],
            "in_dsps": [f"{m['module'].split('.')[-1]}/{m['cell']} {m['a']}x{m['b']}"
                        for m in choice["dsp"]],
            "in_logic": [f"{m['module'].split('.')[-1]}/{m['cell']} {m['a']}x{m['b']}"
                         for m in choice["soft"]]}
