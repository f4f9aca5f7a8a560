"""The Markdown tables of ``docs/hardware.md``, computed from the code that builds the hardware.

Each table is derived from one model per code width (the documentation uses the reference
network with random weights, ``boards.refmodel.random_model``; the library cannot import
``boards``, so the caller passes the models in). :func:`embed_tables` writes them between the
page's ``<!-- hw:NAME -->`` markers; a test regenerates them and fails when the page differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..modelfile import Model
from .accelerator import frame_schedule, memory_bits
from .common import max_width
from .mac_array import MACArray
from .memories import spram_blocks, spram_store
from .requant import Requantizer
from .scaler import Scaler
from .window import Window

__all__ = ["DOC_LANES", "hardware_tables", "embed_tables"]

#: Lane counts of the schedule and SPRAM tables.
DOC_LANES = (1, 2, 4, 8, 16, 32)

#: Rows of the widths table: a label and the :class:`~kwshw.arith.LayerWidths` fields it shows.
_WIDTH_ROWS = (
    ("code `p, q`", ("code",)),
    ("accumulator `A`", ("acc",)),
    ("`P = sum p`", ("psum",)),
    ("`XLO` / `R` / `RECIP` / `RM`", ("xlo", "range", "recip", "step")),
    ("`ST` / `LO` / `WSR` / `B`", ("st", "lo", "wsr", "bias")),
    ("`V` / `VR`", ("v", "vr")),
    ("`T1` / `T2` / `Z`", ("t1", "t2", "z")),
    ("`Y` (before the clamp)", ("y",)),
)


def _rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _bits_header(models: Mapping[int, Model]) -> list[str]:
    return [f"b = {b}" for b in models]


def widths_table(models: Mapping[int, Model]) -> str:
    """Widest value of each intermediate over the layers: the width of its register."""
    plans = {b: m.plans() for b, m in models.items()}
    rows = [[label] + [" / ".join(str(max_width(p, f)) for f in fields)
                       for p in plans.values()]
            for label, fields in _WIDTH_ROWS]
    return _rows(["width", *_bits_header(models)], rows)


def latency_table(models: Mapping[int, Model], lanes: int = DOC_LANES[0]) -> str:
    """The latencies the sequencer waits for, and the stages of the pipeline latency (none
    depends on ``lanes``)."""
    rows = []
    for b, model in models.items():
        s = frame_schedule(model, lanes)
        rows.append([f"b = {b}", s.reduce_latency, s.divider_latency, Window.READ_LATENCY,
                     Requantizer.LATENCY, MACArray.LATENCY, Scaler.LATENCY, s.pipeline_latency,
                     s.tracker_latency])
    return _rows(["code width", "window reduce", "dividers `D`", "read", "requantizer",
                  "MAC/hold", "scaler", "pipeline `L`", "tracker `T`"], rows)


def cycles_table(models: Mapping[int, Model], lanes: Sequence[int] = DOC_LANES) -> str:
    """Ideal and exact cycles per frame for each lane count and code width."""
    header = ["P", "ideal"]
    for b in models:
        header += [f"actual, b = {b}", "overhead"]
    rows = []
    for p in lanes:
        scheds = [frame_schedule(m, p) for m in models.values()]
        ideal = scheds[0].ideal_cycles       # the same for every code width
        row: list[object] = [p, f"{ideal:,}"]
        for s in scheds:
            row += [f"{s.cycles_per_frame:,}",
                    f"{100 * (s.cycles_per_frame - ideal) / ideal:.2f} %"]
        rows.append(row)
    return _rows(header, rows)


def memory_table(models: Mapping[int, Model], lanes: int = 8) -> str:
    """On-chip memory by kind on ``lanes`` lanes (weights depend on ``P`` only through the
    padding of each layer's last pass)."""
    mem = {b: memory_bits(m, lanes) for b, m in models.items()}
    kinds = list(next(iter(mem.values())))
    rows = [[kind] + [f"{bits[kind]:,}" for bits in mem.values()] for kind in kinds]
    rows.append(["**total**"] + [f"**{sum(bits.values()):,}**" for bits in mem.values()])
    return _rows([f"bits, P = {lanes}", *_bits_header(models)], rows)


def spram_table(models: Mapping[int, Model], lanes: Sequence[int] = DOC_LANES) -> str:
    """Weight words, the words SPRAM stores (narrow ones packed, :func:`spram_store`) and
    their ``SB_SPRAM256KA`` blocks (columns x rows) of SPRAM builds."""
    header = ["P"]
    for b in models:
        header += [f"words x bits, b = {b}", "stored", "blocks"]
    rows = []
    for p in lanes:
        row: list[object] = [p]
        for model in models.values():
            words, width = frame_schedule(model, p).reads, p * model.bits
            stored_width, stored = spram_store(width, words)
            cols, n_rows = spram_blocks(stored_width, stored)
            row += [f"{words:,} x {width}", f"{stored:,} x {stored_width}",
                    f"{cols} x {n_rows} = {cols * n_rows}"]
        rows.append(row)
    return _rows(header, rows)


def hardware_tables(models: Mapping[int, Model]) -> dict[str, str]:
    """Every table of ``docs/hardware.md`` by marker name, for ``models`` keyed by code width.

    Parameters
    ----------
    models : mapping of int to Model
        One model per code width, in column order (the page uses ``{4: ..., 8: ...}``).
    """
    return {
        "widths": widths_table(models),
        "latencies": latency_table(models),
        "cycles": cycles_table(models),
        "memory": memory_table(models),
        "spram": spram_table(models),
    }


def embed_tables(text: str, tables: Mapping[str, str]) -> str:
    """``text`` with each table between its ``<!-- hw:NAME -->`` and ``<!-- /hw:NAME -->``
    lines replaced; raises ``KeyError`` for a table whose markers are missing."""
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- hw:{name} -->\n)(?:.*?\n)?(<!-- /hw:{name} -->)", re.S)
        if not pattern.search(text):
            raise KeyError(f"no <!-- hw:{name} --> ... <!-- /hw:{name} --> markers")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text
