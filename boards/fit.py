# amaranth: UnusedElaboratable=no
"""Fit check: the memory a design needs against what a board's FPGA has, before synthesis.

The accelerator's memories follow from the model and the lane count alone (see
:mod:`kwshw.hw.memories` and :mod:`kwshw.hw.window`): packed weight codes, the per-column
constant ROM, the sliding window of feature frames, the activation buffers and the host link's
frame buffer. This module lists them with their widths and depths, maps each one onto the
FPGA's block RAM geometry (or SPRAM) the way Yosys does, and refuses a design that cannot fit,
with a message that names the numbers -- in seconds, instead of after a long synthesis run.

The block counts are estimates of what Yosys' memory mapper chooses (the cheapest legal
aspect ratio per memory); the post-place-and-route report of :func:`boards.build.build` gives
the real numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from kwshw.arith import ACT_WIDTH
from kwshw.detect_int import IntDetectRule
from kwshw.features_int import IntFrontEnd
from kwshw.hw.common import check_plans, conv_layers
from kwshw.hw.convs import history_memories, history_specs, window_features
from kwshw.hw.detection import memory_depth, word_width
from kwshw.hw.history import entry_slots, rest_rom_depth, spram_group_words, spram_groups
from kwshw.hw.memories import (
    SPRAM_BLOCKS,
    bram_blocks,
    const_layout,
    const_roms,
    ecp5_bram_slices,
    spram_block_count,
    spram_blocks,
    spram_store,
)
from kwshw.hw.microphone import pdm_fir_memories

from .errors import FitError
from .standalone import mic_config, standalone_front_end
from .table import BOARDS, FPGA, Board

__all__ = ["MemoryNeed", "memory_needs", "standalone_needs", "stage_luts", "logic_cells",
           "bram_blocks", "spram_blocks", "fit_check", "STANDALONE_BOARDS", "ACCEL_LANES"]

#: LUT4s of the standalone design's stages, per family: each stage synthesized alone (Yosys,
#: no place and route) by ``python bench/stages.py`` (``bench/results/stages.json``, which
#: ``tests/test_standalone.py`` keeps equal to this table): the reference CNN's accelerator
#: with the lanes of :data:`ACCEL_LANES` as the family's :data:`STANDALONE_BOARDS` board
#: builds it (iCE40: weights in SPRAM), and the SPRAM weight boot (counted within the whole
#: design: it is not a component of its own).
_STAGE_LUTS = {
    "ice40": {"front end": 1_972, "front end (SPRAM)": 2_004, "pdm": 323, "i2s": 54,
              "detector": 686, "events": 125, "uart": 29, "accelerator P=1": 1_826,
              "accelerator P=4": 2_040, "weight boot": 167},
    "ecp5": {"front end": 1_762, "pdm": 220, "i2s": 30, "detector": 473, "events": 138,
             "uart": 123, "accelerator P=1": 1_123, "accelerator P=8": 1_419},
}

#: The boards whose standalone designs measure a family's figures (:data:`_STAGE_LUTS`,
#: :data:`_CELLS_PER_LUT4`), and the accelerator lanes measured: one and the board's.
STANDALONE_BOARDS = {"ice40": "icebreaker", "ecp5": "ulx3s-25f"}
ACCEL_LANES = {"ice40": (1, 4), "ecp5": (1, 8)}

#: Logic cells nextpnr packs the whole standalone PDM design into, per LUT4 of its stages
#: synthesized alone (:func:`stage_luts`), measured at :data:`ACCEL_LANES`' lanes
#: (``stages.json``, ``packed``; ``tests/test_standalone.py`` checks that this estimate is
#: within 3% of each measurement). On iCE40 a cell holds a LUT4, a carry and a flip-flop, and
#: flip-flops and carries that find no LUT of their own, any multiplier built from logic
#: once the DSPs run out and what flattening saves all land in it; ECP5 counts LUT4s.
_CELLS_PER_LUT4 = {"ice40": 1.27, "ecp5": 1.46}


@dataclass(frozen=True)
class MemoryNeed:
    """One memory of the design.

    Attributes
    ----------
    name : str
        What it holds.
    kind : str
        ``"weights"``, ``"constants"``, ``"window"``, ``"activations"``, ``"histories"``
        (convolutional networks), ``"link"`` or ``"scores"``.
    width, depth : int
        Word width in bits and number of words.
    target : str
        ``"bram"`` or ``"spram"``.
    sliced : bool
        On ECP5 built as the bit slices of :func:`kwshw.hw.memories.ecp5_bram_slices`.
    """

    name: str
    kind: str
    width: int
    depth: int
    target: str = "bram"
    sliced: bool = False

    @property
    def bits(self) -> int:
        return self.width * self.depth


#: The per-column constants as docs/arithmetic.md names them.
_CONST_NAMES = {"st": "ST", "lo": "LO", "wsr": "WSR", "bias": "B"}


def memory_needs(model, lanes: int, memory: str = "bram", *, spram: int = SPRAM_BLOCKS,
                 family: str | None = None) -> list[MemoryNeed]:
    """The memories an accelerator for ``model`` with ``lanes`` MAC lanes needs.

    The same arithmetic as the accelerator's own layout (:func:`kwshw.hw.memories.weight_words`,
    :func:`kwshw.hw.memories.const_layout`, :class:`kwshw.hw.window.Window`). With
    ``memory="spram"`` the convolution histories' values go into the ``spram`` blocks the
    weights leave, as the accelerator places them
    (:func:`kwshw.hw.convs.history_memories`). The per-column constants are in one ROM or
    two, as the scaler builds them for ``family`` (:func:`kwshw.hw.memories.const_roms`).
    """
    act = ACT_WIDTH
    plans = model.plans()
    bits = model.bits
    words = sum(math.ceil(p.n_out / lanes) * p.n_in for p in plans)
    width = lanes * bits
    if memory == "spram":
        # Narrow words are stored several to an SPRAM word (kwshw.hw.memories.load_words).
        width, words = spram_store(width, words)
    try:
        convolutional = conv_layers(plans) > 0
    except ValueError:      # refused by fit_check, with the message
        convolutional = False
    f = window_features(plans, model.features) if convolutional else model.features
    slots = f.span + 1
    widest = max(p.n_out for p in plans)
    needs = [
        MemoryNeed("weight codes, packed", "weights", width, words, memory, sliced=True),
        *(MemoryNeed(f"per-column constants {', '.join(_CONST_NAMES[f] for f in fields)}",
                     "constants", const_layout(plans, fields).size, sum(p.n_out for p in plans))
          for fields in const_roms(plans, family)),
        MemoryNeed(f"feature window ({slots} frames x {f.n_mels} bands)", "window", act,
                   slots * f.n_mels),
        MemoryNeed("per-frame min/max of the window", "window", 2 * act, slots),
        MemoryNeed("activation buffers (ping and pong halves of one memory)", "activations",
                   act, 2 * widest),
        MemoryNeed("host link frame buffer", "link", act, f.n_mels),
        MemoryNeed("score buffer", "scores", act, plans[-1].n_out),
    ]
    if convolutional:
        spare = spram - spram_block_count(width, max(words, 1)) if memory == "spram" else 0
        needs += _history_needs(plans, model.features.stride, memory, spare)
    return needs


def _history_needs(plans, hop_stride: int, memory: str, spare: int) -> list[MemoryNeed]:
    """The convolution histories (:class:`kwshw.hw.history.HistoryBank`): the SPRAM
    histories (:func:`~kwshw.hw.convs.history_memories`) in one memory per parity
    (:func:`~kwshw.hw.history.spram_groups`), the others in one block RAM memory, and the
    bank's one min/max memory and one rest ROM."""
    act = ACT_WIDTH
    specs = history_specs(plans, hop_stride)
    targets = history_memories(specs, memory, spare)
    needs = [
        MemoryNeed(_histories_name([specs[h] for h in hs]), "histories", act, words, "spram")
        for hs, words in zip(spram_groups(targets), spram_group_words(specs, targets),
                             strict=True)
    ]
    shared = [s for s, target in zip(specs, targets, strict=True) if target == "bram"]
    if shared:
        readers = ", ".join(str(s.reader) for s in shared)
        needs.append(MemoryNeed(f"histories of layers {readers}'s inputs", "histories", act,
                                sum(s.values for s in shared), sliced=True))
    return needs + [
        MemoryNeed("per-entry min/max of the histories", "histories", 2 * act,
                   entry_slots(specs)),
        MemoryNeed("rest vectors of the histories", "histories", act, rest_rom_depth(specs)),
    ]


def _histories_name(specs) -> str:
    """``history of layer 1's input (9 x 64)``, ``histories of layers 1 and 3's inputs (9 x
    64 + 57 x 64)``."""
    shapes = " + ".join(f"{s.depth} x {s.channels}" for s in specs)
    if len(specs) == 1:
        return f"history of layer {specs[0].reader}'s input ({shapes})"
    readers = ", ".join(str(s.reader) for s in specs[:-1]) + f" and {specs[-1].reader}"
    return f"histories of layers {readers}'s inputs ({shapes})"


def standalone_needs(model, mic: str, clk_hz: int, *, where: str = "",
                     spare_spram: int = 0) -> list[MemoryNeed]:
    """The memories the standalone design (:mod:`boards.standalone`) adds to the
    accelerator's: the front end's ring, work memory and tables, the PDM receiver's FIR
    history and taps, and the detector's RAM, sized as the gateware sizes them. The work
    memory is in SPRAM when the accelerator leaves ``spare_spram`` blocks and the front end
    stays real time at ``clk_hz`` so (:func:`boards.standalone.standalone_front_end`)."""
    fe = standalone_front_end(IntFrontEnd.from_model(model), spare_spram, clk_hz)
    needs = [MemoryNeed(f"front end {name}", "front end", width, depth)
             for name, (width, depth) in fe.memory_shapes().items()]
    needs += [MemoryNeed(f"front end {name} (SPRAM)", "front end", width, depth, "spram")
              for name, (width, depth) in fe.spram_shapes().items()]
    cfg = mic_config(mic, clk_hz, where=where)
    if mic == "pdm":
        needs += [MemoryNeed(f"PDM FIR {name}", "microphone", width, depth)
                  for name, (width, depth) in pdm_fir_memories(cfg).items()]
    rule = IntDetectRule.from_model(model)
    return needs + [MemoryNeed("detector RAM (exp table, scores, history)", "detector",
                               word_width(rule), memory_depth(rule))]


def stage_luts(family: str, mic: str, work_memory: str = "bram", *, lanes: int = 1,
               memory: str = "bram") -> dict[str, int]:
    """LUT4s of the standalone design's stages (measured syntheses): front end (with its FFT
    work memory in block RAM, or on iCE40 in one SPRAM block, ``"spram-serial"``),
    microphone receiver, detector, DETECTION packet sender, UART transmitter, the accelerator
    with ``lanes`` lanes (the reference CNN's, on a line through the two measured lane
    counts) and, with weights in SPRAM, their boot from the flash."""
    luts = _STAGE_LUTS[family]
    front = "front end (SPRAM)" if work_memory == "spram-serial" else "front end"
    one, many = ACCEL_LANES[family]
    a1, an = luts[f"accelerator P={one}"], luts[f"accelerator P={many}"]
    out = {"front end": luts[front], "microphone": luts[mic],
           "detector": luts["detector"], "events": luts["events"], "uart": luts["uart"],
           "accelerator": round(a1 + (an - a1) * (lanes - one) / (many - one))}
    if memory == "spram":
        out["weight boot"] = luts["weight boot"]
    return out


def logic_cells(family: str, luts: int) -> int:
    """The logic cells a standalone design of ``luts`` stage LUT4s (:func:`stage_luts`)
    packs into: :data:`_CELLS_PER_LUT4` of them each."""
    return round(luts * _CELLS_PER_LUT4[family])


def _fmt(n: int) -> str:
    return f"{n:,}"


def _lanes(n: int) -> str:
    return f"{n} lane" + ("" if n == 1 else "s")


def _advice(model, capacity: int, larger: bool = False) -> str:
    """What to try instead: 4 bits only when the 4-bit weights would fit ``capacity`` bits."""
    four_bit = model.footprint()["weight_bits"] * 4 // model.bits
    options = (["a 4-bit model"] if model.bits > 4 and four_bit <= capacity else [])
    options.append("a smaller network")
    if larger:
        options.append("a larger FPGA")
    return "Use " + (", ".join(options[:-1]) + " or " if len(options) > 1 else "") \
        + options[-1] + "."


def _blocks(fpga: FPGA, needs: list[MemoryNeed]) -> tuple[list[dict], int, int]:
    """Each memory with the blocks it takes, and the block RAM and SPRAM totals."""
    items = []
    bram_total = 0
    spram_total = 0
    for need in needs:
        entry = {**asdict(need), "bits": need.bits}
        if need.target == "spram":
            entry["blocks"] = spram_block_count(need.width, need.depth)
            spram_total += entry["blocks"]
        elif need.sliced and fpga.family == "ecp5":
            entry["blocks"] = sum(bram_blocks(fpga.family, w, need.depth)
                                  for w in ecp5_bram_slices(need.width, need.depth))
            bram_total += entry["blocks"]
        else:
            entry["blocks"] = bram_blocks(fpga.family, need.width, need.depth)
            bram_total += entry["blocks"]
        items.append(entry)
    return items, bram_total, spram_total


def _refuse(board: Board, model, report: dict, weights: MemoryNeed) -> None:
    """Raise :class:`FitError` with the numbers when the design of ``report`` (the fit
    report) does not fit ``board``."""
    fpga = board.fpga
    what, lanes, weight_bits = report["model"], report["lanes"], report["weight_bits"]
    bram_total, spram_total = report["bram_blocks_needed"], report["spram_blocks_needed"]
    if report["memory"] == "spram":
        cols, rows = spram_blocks(weights.width, weights.depth)
        if weight_bits > fpga.spram_bits:
            raise FitError(
                f"{board.name}: {what} needs {_fmt(weight_bits)} weight bits; "
                f"{fpga.name} SPRAM has {_fmt(fpga.spram_bits)} ({fpga.spram_blocks} blocks of "
                f"16 x 16,384). " + _advice(model, fpga.spram_bits))
        if spram_total > fpga.spram_blocks:
            raise FitError(
                f"{board.name}: {what} with {_lanes(lanes)} needs {spram_total} SPRAM blocks "
                f"({_fmt(weights.depth)} words x {weights.width} bits = {cols} x {rows} blocks "
                f"of 16 x 16,384); {fpga.name} has {fpga.spram_blocks}. "
                + ("Use fewer lanes." if cols > fpga.spram_blocks else
                   "Use a number of lanes whose words fill the SPRAM's 16-bit words (lanes x "
                   "bits a multiple of 16, or 8 or fewer bits) or a smaller network."))
    elif weight_bits > fpga.bram_bits:
        raise FitError(
            f"{board.name}: {what} needs {_fmt(weight_bits)} weight bits; {fpga.name} "
            f"block RAM has {_fmt(fpga.bram_bits)} ({fpga.bram_blocks} EBR of "
            f"{_fmt(fpga.bram_block_bits)} bits). " + _advice(model, fpga.bram_bits, larger=True))
    if report["mic"] != "host":
        _refuse_standalone(board, report)
    if bram_total > fpga.bram_blocks:
        detail = ", ".join(f"{e['name']} {e['blocks']}" for e in report["memories"]
                           if e["target"] == "bram" and e["blocks"])
        raise FitError(
            f"{board.name}: {what} with {_lanes(lanes)} needs about {bram_total} block RAMs "
            f"({detail}); {fpga.name} has {fpga.bram_blocks} ({_fmt(fpga.bram_bits)} bits).")


def _refuse_standalone(board: Board, report: dict) -> None:
    """The standalone design's refusal: block RAMs by stage, and the LUTs of the stages
    besides the accelerator."""
    fpga = board.fpga
    blocks: dict[str, int] = {}
    for e in report["memories"]:
        if e["target"] == "bram":
            kind = e["kind"] if e["kind"] in ("front end", "microphone", "detector") \
                else "accelerator"
            blocks[kind] = blocks.get(kind, 0) + e["blocks"]
    luts = report["stage_luts"]
    cells = report["logic_cells_estimate"]
    lut_text = (f"about {_fmt(cells)} logic cells ({_CELLS_PER_LUT4[fpga.family]:.2f} per "
                f"LUT4 of its stages: " + ", ".join(f"{k} {_fmt(v)}" for k, v in luts.items())
                + ")")
    bram_total = report["bram_blocks_needed"]
    if bram_total > fpga.bram_blocks or cells > fpga.luts:
        raise FitError(
            f"{board.name}: the standalone {report['mic'].upper()} design ({report['model']}, "
            f"{_lanes(report['lanes'])}) needs about {bram_total} block RAMs ("
            + ", ".join(f"{k} {v}" for k, v in blocks.items())
            + f") and {lut_text}; {fpga.name} has {fpga.bram_blocks} block RAMs and "
            f"{_fmt(fpga.luts)} logic cells. Use a board with a larger FPGA ("
            + ", ".join(b for b, row in BOARDS.items()
                        if row.mic_pins and row.fpga.bram_blocks > fpga.bram_blocks)
            + ") or the UART-fed design (--mic host), which computes the features on the "
            "host.")


def _with_standalone(board: Board, model, needs: list[MemoryNeed], mic: str,
                     clk_hz: float | None) -> list[MemoryNeed]:
    """``needs`` of the accelerator for the standalone design: without the host link's
    frame buffer, with the front end's, microphone's and detector's memories."""
    if board.mic_pins is None:
        raise FitError(f"{board.name}: no microphone pins in the board table: the "
                       f"standalone design is for "
                       + ", ".join(b for b, row in BOARDS.items() if row.mic_pins))
    clk = clk_hz or board.design_clk_hz(mic)
    used = sum(spram_block_count(n.width, n.depth) for n in needs if n.target == "spram")
    spare = board.fpga.spram_blocks - used if any(n.target == "spram" for n in needs) else 0
    return [n for n in needs if n.kind != "link"] + standalone_needs(
        model, mic, clk, where=board.name, spare_spram=spare)


def fit_check(board: Board, model, lanes: int, *, memory: str | None = None,
              needs: list[MemoryNeed] | None = None, mic: str = "host",
              clk_hz: float | None = None) -> dict:
    """Check that the accelerator fits ``board``; return the memory report, or raise.

    Parameters
    ----------
    board : Board
        Target board.
    model : kwshw.modelfile.Model
        The model.
    lanes : int
        MAC lanes.
    memory : str, optional
        ``"bram"`` or ``"spram"``; the board's own choice by default.
    needs : list of MemoryNeed, optional
        The design's memories, if known better than :func:`memory_needs` (e.g. from the
        generate report).
    mic : str
        ``"host"`` (the UART-fed design) or ``"pdm"`` / ``"i2s"``: the standalone design,
        whose front end, microphone receiver and detector are added
        (:func:`standalone_needs`, :func:`stage_luts`) and which has no host link buffer.
    clk_hz : float, optional
        Design clock of the standalone design; the board's (:meth:`Board.design_clk_hz`)
        by default.

    Raises
    ------
    FitError
        With the numbers: what the design needs and what the FPGA has.
    BuildError
        The standalone design's clock cannot give exactly 16 kHz
        (:func:`boards.standalone.mic_config`).
    """
    fpga: FPGA = board.fpga
    try:  # a network this accelerator cannot run is refused before anything is sized
        check_plans(model.plans())
    except ValueError as e:
        raise FitError(f"{board.name}: {e}") from None
    memory = memory or board.memory
    if memory == "spram" and not fpga.spram_blocks:
        raise FitError(f"{board.name}: {fpga.name} has no SPRAM; build with memory='bram'")
    if needs is None:
        needs = memory_needs(model, lanes, memory, spram=fpga.spram_blocks, family=fpga.family)
    if mic != "host":
        needs = _with_standalone(board, model, needs, mic, clk_hz)
    items, bram_total, spram_total = _blocks(fpga, needs)
    by_kind: dict[str, int] = {}
    for need in needs:
        by_kind[need.kind] = by_kind.get(need.kind, 0) + need.bits

    report = {
        "board": board.name,
        "fpga": fpga.name,
        "model": f"{model.bits}-bit model {'-'.join(map(str, model.shape))}",
        "lanes": lanes,
        "memory": memory,
        "weight_bits": model.footprint()["weight_bits"],
        "bits_by_kind": by_kind,
        "memories": items,
        "bram_blocks_needed": bram_total,
        "bram_blocks_available": fpga.bram_blocks,
        "bram_bits_available": fpga.bram_bits,
        "spram_blocks_needed": spram_total,
        "spram_blocks_available": fpga.spram_blocks,
        "spram_bits_available": fpga.spram_bits,
        "mic": mic,
        # The clock the board gets (the table's, from its PLL, unless the build asks for
        # another): the real-time checks of the standalone stages count its cycles.
        "clock_hz": clk_hz or board.design_clk_hz(mic),
    }
    if mic != "host":
        work = ("spram-serial" if any(n.kind == "front end" and n.target == "spram"
                                      for n in needs) else "bram")
        report["stage_luts"] = stage_luts(fpga.family, mic, work, lanes=lanes, memory=memory)
        luts = sum(report["stage_luts"].values())
        report.update(luts_estimate=luts, logic_cells_estimate=logic_cells(fpga.family, luts),
                      luts_available=fpga.luts)
    _refuse(board, model, report, next(n for n in needs if n.kind == "weights"))
    return report
