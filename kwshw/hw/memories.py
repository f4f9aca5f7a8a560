"""On-chip memories initialised from the model: packed weight codes and per-column constants.

Weight layout (the order the sequencer reads them, so its address is a plain counter over a
frame): for layer ``l``, pass ``k`` (columns ``k*P .. k*P+P-1``), input ``i``, the word at
``base_l + k * n_in + i`` holds ``q_i,k*P+lane`` in bits ``[lane*b, lane*b+b)``; lanes past
``n_out`` in a layer's last pass hold 0 and their results are never read out.

The constant ROM holds one word per column, layer after layer: ``ST_j, LO_j, WSR_j, B_j``.

With ``memory="spram"`` (iCE40 UltraPlus, where the bitstream cannot initialise the SPRAM
blocks) the weight memory starts empty and is filled through a ``load`` stream in address
order; on an iCE40 platform it is built from ``SB_SPRAM256KA`` blocks (16 bits x 16k each),
elsewhere (and in simulation) it is a :class:`amaranth.lib.memory.Memory` of the same shape.
An SPRAM block's words are 16 bits wide, so narrow weight words (``P * b <= 8``) are stored
:func:`spram_packing` to a stored word (:func:`load_words`): a 4-bit ``P = 1`` network takes a
quarter of the blocks it would one word per address. The read address splits into the stored
word's address (its high bits) and the sub-word (its low bits, registered beside the read).

:class:`SinglePortRAM` is the same kind of memory for data written at run time (the
convolution histories of an SPRAM build, :class:`~kwshw.hw.history.HistoryBank`): one address
for writes and reads, ``SB_SPRAM256KA`` blocks on iCE40, a model with the same contract
elsewhere. :class:`SerialRAM` keeps words wider than 16 bits in one such block, a 16-bit
piece per cycle, stalling its user meanwhile (the front end's FFT work memory on the
iCEBreaker).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from amaranth.hdl import (
    Cat,
    ClockSignal,
    Const,
    Instance,
    Module,
    Mux,
    Signal,
    Value,
    ValueLike,
    signed,
    unsigned,
)
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..quantize import LayerPlan
from .common import check_plans, max_width
from .sequencer import layer_schedules

__all__ = [
    "ECP5_BRAM_SHAPES",
    "MEMORY_KINDS",
    "SPRAM_BLOCKS",
    "BRAM_SHAPES",
    "CONST_FIELDS",
    "CONST_ROMS",
    "SMALL_BITS",
    "ConstantROM",
    "SerialRAM",
    "SinglePortRAM",
    "WeightMemory",
    "const_bases",
    "const_bits",
    "bram_blocks",
    "bram_slices",
    "const_layout",
    "const_roms",
    "ecp5_bram_slices",
    "load_words",
    "pack_words",
    "serial_ram_depth",
    "spram_block_count",
    "spram_blocks",
    "spram_packing",
    "spram_store",
    "weight_words",
]

#: Weight memory styles: initialised block RAM, or SPRAM loaded at boot.
MEMORY_KINDS = ("bram", "spram")

#: ``SB_SPRAM256KA`` blocks of an iCE40 UltraPlus (UP3K and UP5K alike).
SPRAM_BLOCKS = 4

_SPRAM_WIDTH = 16
_SPRAM_DEPTH = 16384

#: ``(depth, width)`` shapes of one ECP5 block RAM (DP16KD, up to x18; PDPW16KD, x36).
ECP5_BRAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

#: Aspect ratios (depth, width) of one block RAM, per family (iCE40: ``SB_RAM40_4K``).
BRAM_SHAPES = {
    "ecp5": ECP5_BRAM_SHAPES,
    "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16)),
}

#: Memories up to this many bits may land in LUT RAM (ECP5) or flip-flops; they are not
#: counted against the block RAMs (Yosys maps such small ones there when it is cheaper).
SMALL_BITS = 1024


def bram_blocks(family: str, width: int, depth: int) -> int:
    """Block RAMs of ``family`` (``"ecp5"`` or ``"ice40"``, any case) that a ``width`` x
    ``depth`` memory takes (cheapest shape).

    On ECP5 a memory of at most :data:`SMALL_BITS` goes to distributed (LUT) RAM; iCE40 has
    none, and Yosys puts every memory with a synchronous read port into block RAM however
    small (the alternative is a flip-flop per bit): a 13 x 16 FIFO takes a block, a 32-bit
    wide min/max memory two."""
    family = family.lower()
    if family != "ice40" and width * depth <= SMALL_BITS:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM_SHAPES[family])


def ecp5_bram_slices(width: int, depth: int) -> list[int]:
    """Widths of the bit slices an ECP5 memory read every cycle on the critical path is built
    from (the weights, the convolution histories): each as wide as a block RAM holding all
    ``depth`` words can be, so every block is read whole and no multiplexer of blocks follows
    the block RAMs' slow clock-to-output (left to Yosys, a deep memory in x36 blocks gets a
    multiplexer there, the ECP5's longest path). About as many blocks as the
    cheapest shape, sometimes a few more. Deeper than a block (16k words) no shape avoids the
    multiplexer: one slice, Yosys' cheapest shape."""
    fitting = [w for d, w in ECP5_BRAM_SHAPES if d >= depth]
    if not fitting:
        return [width]
    w = max(fitting)
    return [min(w, width - lo) for lo in range(0, width, w)]


def bram_slices(platform, width: int, depth: int) -> list[int]:
    """Widths of the bit slices a block RAM read on the critical path is built from for
    ``platform``: :func:`ecp5_bram_slices` on ECP5, one slice elsewhere (and without one)."""
    if getattr(platform, "family", None) == "ecp5":
        return ecp5_bram_slices(width, depth)
    return [width]



def weight_words(plans: Sequence[LayerPlan], lanes: int) -> list[int]:
    """The packed weight words of a network in sequencer order (see the module docstring):
    one per read of :func:`~kwshw.hw.sequencer.layer_schedules`, its passes in order.

    This is also the content of the ``load`` stream of an SPRAM build, word by word.
    """
    words: list[int] = []
    for plan, sched in zip(plans, layer_schedules(plans, lanes), strict=True):
        bits = plan.bits
        codes = plan.layer.codes.astype(np.int64)
        padded = np.zeros((sched.n_in, sched.passes * lanes), np.int64)
        padded[:, :sched.n_out] = codes
        shifts = np.arange(lanes, dtype=object) * bits
        for k in range(sched.passes):
            block = padded[:, k * lanes:(k + 1) * lanes].astype(object)
            words.extend(int(w) for w in (block << shifts).sum(axis=1))
    return words


def spram_packing(width: int) -> int:
    """Weight words of ``width`` bits per stored word of an SPRAM build's weight memory: the
    most, as a power of two, that fit in an SPRAM block's 16 bits (1 for words wider than 8
    bits). A power of two, so that the read address splits into the stored word's address
    and the sub-word select with no divider."""
    n = 1
    while 2 * n * width <= _SPRAM_WIDTH:
        n *= 2
    return n


def spram_store(width: int, words: int) -> tuple[int, int]:
    """``(width, depth)`` of the stored words an SPRAM weight memory holds ``words`` weight
    words of ``width`` bits in (:func:`spram_packing` to a stored word; at least one)."""
    n = spram_packing(width)
    return n * width, max(-(-words // n), 1)


def pack_words(words: Sequence[int], width: int) -> tuple[list[int], int]:
    """``words`` of ``width`` bits as an SPRAM weight memory stores them, and the stored
    words' width: :func:`spram_packing` of them to a stored word, the first in the low bits;
    the last stored word is padded with zeros."""
    n = spram_packing(width)
    words = [*words, *[0] * (-len(words) % n)]
    packed = [sum(int(w) << (k * width) for k, w in enumerate(words[i:i + n]))
              for i in range(0, len(words), n)]
    return packed, n * width


def load_words(plans: Sequence[LayerPlan], lanes: int) -> tuple[list[int], int]:
    """The ``load`` stream of an SPRAM build and its word width: the weight words of
    :func:`weight_words` (``P * b`` bits each) packed by :func:`pack_words`.

    This is also the body of the flash weights image (:mod:`boards.flashboot`).
    """
    return pack_words(weight_words(plans, lanes), lanes * check_plans(plans))


#: The per-column constants of :func:`kwshw.arith.scale_column`.
CONST_FIELDS = ("st", "lo", "wsr", "bias")

#: The same, in the two ROMs the scaler reads them from: ``ST`` and ``LO`` when a column
#: comes in, ``WSR`` and ``B`` four cycles later, when they are first needed.
CONST_ROMS = (("st", "lo"), ("wsr", "bias"))


def const_layout(plans: Sequence[LayerPlan],
                 fields: Sequence[str] = CONST_FIELDS) -> data.StructLayout:
    """Layout of one constant ROM word holding ``fields``, each as wide as its widest layer
    needs."""
    shapes = {"st": unsigned, "lo": signed, "wsr": signed, "bias": signed}
    return data.StructLayout({f: shapes[f](max_width(plans, f)) for f in fields})


def const_roms(plans: Sequence[LayerPlan],
               family: str | None = None) -> tuple[tuple[str, ...], ...]:
    """The fields of each constant ROM the scaler reads: the two of :data:`CONST_ROMS`, or
    one ROM of all four where two would take more block RAMs of ``family`` (``None``: any
    family, two). Two save the registers that carry WSR and B down the pipeline, and on iCE40
    a block RAM's width steps by 8 or 16 bits: the DNN reference's 63 bits of constants fill
    8 blocks of 512 x 8 in one ROM, 9 in two."""
    if family is None:
        return CONST_ROMS
    depth = sum(p.n_out for p in plans)
    one = bram_blocks(family, const_layout(plans).size, depth)
    two = sum(bram_blocks(family, const_layout(plans, f).size, depth) for f in CONST_ROMS)
    return CONST_ROMS if two <= one else (CONST_FIELDS,)


def const_bits(plans: Sequence[LayerPlan]) -> int:
    """Size of the constant ROMs in bits."""
    return sum(p.n_out for p in plans) * const_layout(plans).size


def spram_blocks(width: int, depth: int) -> tuple[int, int]:
    """``(columns, rows)`` of ``SB_SPRAM256KA`` blocks (16 bits x 16k) for a memory."""
    return -(-width // _SPRAM_WIDTH), -(-depth // _SPRAM_DEPTH)


def spram_block_count(width: int, depth: int) -> int:
    """``SB_SPRAM256KA`` blocks of a memory: the product of :func:`spram_blocks`."""
    cols, rows = spram_blocks(width, depth)
    return cols * rows


def const_bases(plans: Sequence[LayerPlan]) -> list[int]:
    """Address of each layer's first column in the constant ROM."""
    bases, base = [], 0
    for plan in plans:
        bases.append(base)
        base += plan.n_out
    return bases


def _spram_block(address: Value, data_in: Value, write: ValueLike, select: ValueLike,
                 data_out: Signal) -> Instance:
    """One iCE40 ``SB_SPRAM256KA`` (16 bits x 16k) on the ``sync`` clock, always powered."""
    return Instance(
        "SB_SPRAM256KA",
        i_ADDRESS=address,
        i_DATAIN=data_in,
        i_MASKWREN=0b1111,
        i_WREN=write,
        i_CHIPSELECT=select,
        i_CLOCK=ClockSignal("sync"),
        i_STANDBY=0,
        i_SLEEP=0,
        i_POWEROFF=1,
        o_DATAOUT=data_out,
    )


def _spram_grid(m: Module, addr: Signal, wdata: Value, write: ValueLike, *, cols: int,
                rows: int, active: ValueLike | None = None,
                latch: ValueLike = 1) -> Value:
    """A grid of ``SB_SPRAM256KA`` blocks: ``cols`` 16-bit columns side by side, ``rows`` of
    16k words selected by ``addr[14:]``; returns the word of the last read. A block is
    selected when its row is addressed (and ``active``, if given); the read row is latched
    for the output multiplexer in cycles with ``latch``."""
    row = addr[14:] if rows > 1 else 0
    row_q = Signal(range(max(rows, 2)))
    with m.If(latch):
        m.d.sync += row_q.eq(row)
    outs = []
    for r in range(rows):
        select = (row == r) if rows > 1 else 1
        if active is not None:
            select = active & select
        row_out = []
        for c in range(cols):
            dout = Signal(_SPRAM_WIDTH, name=f"spram_r{r}c{c}_do")
            m.submodules[f"spram_r{r}c{c}"] = _spram_block(
                addr[:14], wdata[c * _SPRAM_WIDTH:(c + 1) * _SPRAM_WIDTH], write, select, dout)
            row_out.append(dout)
        outs.append(Cat(*row_out))
    word = Signal(cols * _SPRAM_WIDTH)
    with m.Switch(row_q):
        for r in range(rows):
            with m.Case(r):
                m.d.comb += word.eq(outs[r])
    return word


class ConstantROM(wiring.Component):
    """Per-column constants of every layer (``fields`` of ``ST, LO, WSR, B``), one word per
    column.

    Parameters
    ----------
    plans : sequence of LayerPlan
        The network.
    fields : sequence of str
        The constants this ROM holds (one of :data:`CONST_ROMS`, or all four).

    Attributes
    ----------
    addr : Signal, in
        ``const_bases(plans)[layer] + column``.
    en : Signal, in
        Read ``addr`` this cycle (high by default); while low, ``data`` holds.
    data : View of :func:`const_layout`, out
        The word at ``addr`` of the last cycle with ``en``.
    """

    def __init__(self, plans: Sequence[LayerPlan],
                 fields: Sequence[str] = CONST_FIELDS) -> None:
        self._layout = const_layout(plans, fields)
        self._init = [
            {f: int(v) for f, v in (("st", p.layer.st[j]), ("lo", p.layer.lo[j]),
                                    ("wsr", p.wsr[j]), ("bias", p.layer.bias[j]))
             if f in fields}
            for p in plans for j in range(p.n_out)
        ]
        super().__init__({
            "addr": In(range(max(len(self._init), 2))),
            "en": In(1, init=1),
            "data": Out(self._layout),
        })

    @property
    def bits(self) -> int:
        """Size of the ROM in bits."""
        return len(self._init) * self._layout.size

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self._layout, depth=len(self._init),
                                               init=self._init)
        port = mem.read_port()
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]
        return m


class WeightMemory(wiring.Component):
    """Packed weight words, read one per cycle by the sequencer.

    Parameters
    ----------
    words : list of int
        Content in address order (:func:`weight_words`).
    width : int
        Word width ``P * b``.
    kind : {"bram", "spram"}
        ``"bram"``: a memory initialised with ``words``. ``"spram"``: starts empty and has a
        ``load`` port; ``words`` then only gives the depth. Its stored words hold
        :attr:`packing` words each (:func:`load_words`).

    Attributes
    ----------
    addr : Signal, in
        Read address.
    data : Signal, out
        The word at the ``addr`` of :attr:`LATENCY` cycles before.
    load : stream, in (``"spram"`` only)
        Stored words (:func:`load_words`, :attr:`load_width` bits) written at consecutive
        addresses from 0; after the last address the next word goes to address 0 again, so
        the weights can be reloaded.
    loaded : Signal, out (``"spram"`` only)
        High once every address has been written at least once since power-up.
    """

    def __init__(self, words: Sequence[int], width: int, kind: str = "bram") -> None:
        if kind not in MEMORY_KINDS:
            raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {kind!r}")
        self._words, self._width, self._kind = list(words), width, kind
        self._depth = max(len(self._words), 2)
        self._pack = spram_packing(width) if kind == "spram" else 1
        members = {
            "addr": In(range(self._depth)),
            "data": Out(unsigned(width)),
        }
        if kind == "spram":
            members["load"] = In(stream.Signature(unsigned(self.load_width)))
            members["loaded"] = Out(1)
        super().__init__(members)

    #: Cycles from ``addr`` to ``data``: the memory's read, then a register after the
    #: multiplexer of its blocks (and of the sub-words), so that neither a block RAM's
    #: clock-to-output time nor a multiplexer is on the path into the MAC array's multipliers.
    LATENCY = 2

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bits(self) -> int:
        """Size of the content in bits."""
        return len(self._words) * self._width

    @property
    def packing(self) -> int:
        """Words per stored word: :func:`spram_packing` with ``"spram"``, else 1."""
        return self._pack

    @property
    def load_width(self) -> int:
        """Bits of a stored word (of a ``load`` word, with ``"spram"``)."""
        return self._pack * self._width

    @property
    def load_depth(self) -> int:
        """Stored words (``load`` words, with ``"spram"``): ``ceil(len(words) / packing)``."""
        return max(-(-len(self._words) // self._pack), 1)

    def spram_blocks(self) -> tuple[int, int]:
        """``(columns, rows)`` of ``SB_SPRAM256KA`` blocks an iCE40 build uses."""
        return spram_blocks(self.load_width, self.load_depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        read = Signal(self._width)
        m.d.sync += self.data.eq(read)
        if self._kind == "bram":
            self._elaborate_slices(m, bram_slices(platform, self._width, self._depth), read)
            return m

        waddr = Signal(range(self.load_depth))
        m.d.comb += self.load.ready.eq(1)
        with m.If(self.load.valid):
            m.d.sync += waddr.eq(waddr + 1)
            with m.If(waddr == self.load_depth - 1):
                m.d.sync += [waddr.eq(0), self.loaded.eq(1)]
        shift = self._pack.bit_length() - 1
        stored = Signal(self.load_width)
        if getattr(platform, "family", None) == "iCE40":
            self._elaborate_spram(m, waddr, self.addr[shift:], stored)
        else:
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self.load_width),
                                                   depth=self.load_depth, init=[])
            rport = mem.read_port()
            wport = mem.write_port()
            m.d.comb += [
                rport.addr.eq(self.addr[shift:]), stored.eq(rport.data),
                wport.addr.eq(waddr), wport.data.eq(self.load.payload),
                wport.en.eq(self.load.valid),
            ]
        if not shift:
            m.d.comb += read.eq(stored)
            return m
        # The sub-word of the stored word being read: the address's low bits, one cycle
        # later, as the stored word comes out.
        sub = Signal(shift)
        m.d.sync += sub.eq(self.addr[:shift])
        m.d.comb += read.eq(stored.word_select(sub, self._width))
        return m

    def _elaborate_slices(self, m: Module, slices: Sequence[int], read: Signal) -> None:
        """The initialised memory as bit slices of ``slices`` widths side by side (LSB
        first), all at ``addr``; ``read`` is the word of the last read."""
        lo = 0
        for k, w in enumerate(slices):
            init = [(word >> lo) & ((1 << w) - 1) for word in self._words]
            name = "mem" if len(slices) == 1 else f"mem{k}"
            m.submodules[name] = mem = memory.Memory(shape=unsigned(w), depth=self._depth,
                                                     init=init)
            port = mem.read_port()
            m.d.comb += [port.addr.eq(self.addr), read[lo:lo + w].eq(port.data)]
            lo += w

    def _elaborate_spram(self, m: Module, waddr: Signal, raddr: Value, read: Signal) -> None:
        """Build the stored words from SB_SPRAM256KA blocks: a grid of 16-bit columns and
        16k-word rows; ``read`` is the stored word at ``raddr`` of the last read. The single
        port is shared: a load word wins over a read."""
        cols, rows = self.spram_blocks()
        wide = Signal(cols * _SPRAM_WIDTH)
        write = self.load.valid
        addr = Signal(range(rows * _SPRAM_DEPTH))
        m.d.comb += [addr.eq(raddr), wide.eq(self.load.payload)]
        with m.If(write):
            m.d.comb += addr.eq(waddr)
        m.d.comb += read.eq(_spram_grid(m, addr, wide, write, cols=cols, rows=rows))


class SinglePortRAM(wiring.Component):
    """A memory with one address port for writes and reads, uninitialised.

    On an iCE40 platform a column of ``SB_SPRAM256KA`` blocks (16 bits x 16k each, as many
    rows as ``depth`` needs; ``width`` <= 16); elsewhere (and in simulation) an
    :class:`amaranth.lib.memory.Memory` with the same contract.

    Parameters
    ----------
    width, depth : int
        Word width (at most 16) and number of words.

    Attributes
    ----------
    addr : Signal, in
        The address of this cycle's access.
    we : Signal, in
        Write ``wdata`` at ``addr``.
    re : Signal, in
        Read ``addr`` (ignored while ``we``): ``rdata`` holds the word from the next cycle on.
    wdata : Signal, in
    rdata : Signal, out
        The word of the last read; it holds while neither ``we`` nor ``re`` is high, and is
        undefined after a write (SPRAM drives X): a user must not expect a value read before
        a write to survive it. The simulation model gives the word the write replaced.
    """

    def __init__(self, width: int, depth: int) -> None:
        if not 1 <= width <= _SPRAM_WIDTH or depth < 1:
            raise ValueError(f"need 1 <= width <= {_SPRAM_WIDTH} and depth >= 1, "
                             f"got {width}, {depth}")
        self._width, self._depth = width, max(depth, 2)
        super().__init__({
            "addr": In(range(self._depth)),
            "we": In(1),
            "re": In(1),
            "wdata": In(unsigned(width)),
            "rdata": Out(unsigned(width)),
        })

    def spram_blocks(self) -> tuple[int, int]:
        """``(columns, rows)`` of ``SB_SPRAM256KA`` blocks an iCE40 build uses."""
        return spram_blocks(self._width, self._depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        if getattr(platform, "family", None) != "iCE40":
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self._width),
                                                   depth=self._depth, init=[])
            # Read before write, as one port: a write also loads the replaced word.
            rport = mem.read_port()
            wport = mem.write_port()
            m.d.comb += [
                rport.addr.eq(self.addr), rport.en.eq(self.re | self.we),
                self.rdata.eq(rport.data),
                wport.addr.eq(self.addr), wport.data.eq(self.wdata), wport.en.eq(self.we),
            ]
            return m
        _, rows = self.spram_blocks()
        addr = Signal(range(rows * _SPRAM_DEPTH))
        din = Signal(_SPRAM_WIDTH)
        m.d.comb += [addr.eq(self.addr), din.eq(self.wdata)]
        word = _spram_grid(m, addr, din, self.we, cols=1, rows=rows, active=self.we | self.re,
                           latch=self.re & ~self.we)
        m.d.comb += self.rdata.eq(word[:self._width])
        return m


def serial_ram_depth(width: int, depth: int) -> int:
    """16-bit words a :class:`SerialRAM` memory of ``depth`` words of ``width`` bits takes:
    each word's pieces at the next power of two."""
    return depth << (-(-width // _SPRAM_WIDTH) - 1).bit_length()


class SerialRAM(wiring.Component):
    """Memories of wide words in one 16-bit :class:`SinglePortRAM`, a 16-bit piece per cycle.

    Memory ``k`` (``shapes[k] = (width, depth)``) lies after the ones before it; its word
    ``a``'s piece ``i`` is at ``base_k + ((a << s_k) | i)``, ``s_k`` the bits of a piece
    index. One iCE40 UltraPlus SPRAM block holds what takes many block RAMs, at the cost of
    time: the user holds its request while :attr:`stall` is high (it freezes itself, e.g.
    under an :class:`~amaranth.hdl.EnableInserter` of ``~stall``), so that it sees memories
    that read and write a whole word per cycle, one request at a time.

    Parameters
    ----------
    *shapes : (int, int)
        Word width and number of words of each memory; ``pieces = ceil(width / 16)``, and
        the :func:`serial_ram_depth` of all must fit one SPRAM block.

    Attributes
    ----------
    mem : Signal, in
        The memory of this request (index into ``shapes``).
    addr : Signal, in
        The word of this request.
    re : Signal, in
        Read ``addr``: :attr:`stall` is high for the first ``pieces`` cycles of the request;
        from the cycle after the one it falls in, :attr:`rdata` holds the word (zero-extended)
        until the next read ends.
    we : Signal, in
        Write ``wdata`` at ``addr`` (not together with ``re``): :attr:`stall` is high for
        the first ``pieces - 1`` cycles; the word is written when it falls.
    wdata : Signal, in
    rdata : Signal, out
        Changes only in the cycle after a read ends, so that a user frozen by :attr:`stall`
        still sees the word it read before.
    stall : Signal, out
        The request is not done: hold it.
    """

    def __init__(self, *shapes: tuple[int, int]) -> None:
        if not shapes or any(w < 1 or d < 1 for w, d in shapes):
            raise ValueError(f"SerialRAM: need memories of at least 1 bit x 1 word, got "
                             f"{shapes}")
        self._shapes = shapes
        self._bases = [sum(serial_ram_depth(*sh) for sh in shapes[:k])
                       for k in range(len(shapes) + 1)]
        if self._bases[-1] > _SPRAM_DEPTH:
            raise ValueError(f"SerialRAM: {self._bases[-1]} words of 16 bits do not fit one "
                             f"SPRAM block ({_SPRAM_DEPTH} x {_SPRAM_WIDTH} bits)")
        width = max(w for w, _ in shapes)
        self._width = width
        super().__init__({
            "mem": In(range(max(len(shapes), 2))),
            "addr": In(range(max(max(d for _, d in shapes), 2))),
            "re": In(1),
            "we": In(1),
            "wdata": In(unsigned(width)),
            "rdata": Out(unsigned(width)),
            "stall": Out(1),
        })

    def pieces(self, k: int = 0) -> int:
        """16-bit pieces of a word of memory ``k``: a read stalls this many cycles, a write
        one fewer."""
        return -(-self._shapes[k][0] // _SPRAM_WIDTH)

    @property
    def depth(self) -> int:
        """16-bit words of the block used."""
        return self._bases[-1]

    def elaborate(self, platform) -> Module:
        m = Module()
        w = _SPRAM_WIDTH
        most = max(self.pieces(k) for k in range(len(self._shapes)))
        m.submodules.ram = ram = SinglePortRAM(w, max(self.depth, 2))
        beat = Signal(range(most + 1))
        n = Signal(range(most + 1))         # pieces of the requested memory's words
        where = Signal(range(max(self.depth, 2)))
        for k in range(len(self._shapes)):
            sel = (self.pieces(k) - 1).bit_length()
            with m.If(self.mem == k):
                m.d.comb += [n.eq(self.pieces(k)),
                             where.eq(self._bases[k] + (Cat(beat[:sel], self.addr) if sel
                                                        else self.addr))]
        # The pieces of a read but the last, until the whole word replaces rdata at once.
        low = Signal(max((most - 1) * w, 1))
        wpieces = Cat(self.wdata, Const(0, most * w - self._width))
        busy = Signal()
        m.d.comb += [
            busy.eq(Mux(self.re, beat != n, self.we & (beat != n - 1))),
            self.stall.eq(busy),
            ram.addr.eq(where),
            ram.re.eq(self.re & (beat < n)),
            ram.we.eq(self.we & ~self.re),
            ram.wdata.eq(wpieces.word_select(beat[:max((most - 1).bit_length(), 1)], w)),
        ]
        m.d.sync += beat.eq(Mux(busy, beat + 1, 0))
        with m.If(self.re & (beat != 0)):
            for i in range(most - 1):
                with m.If(beat == i + 1):
                    m.d.sync += low[i * w:(i + 1) * w].eq(ram.rdata)
            with m.If(beat == n):
                # The last piece arrives now; the ones above it (a narrower memory) are zero.
                word = Signal(most * w)
                for k in range(len(self._shapes)):
                    pk = self.pieces(k)
                    with m.If(self.mem == k):
                        m.d.comb += word.eq(Cat(low[:(pk - 1) * w], ram.rdata))
                m.d.sync += self.rdata.eq(word)
        return m
