"""The input histories of a network's temporal convolutions in the streaming schedule.

In the streaming schedule (:mod:`kwshw.streaming`, ``docs/arithmetic.md`` section 10) every
hop appends one step vector (``C`` channels) to each convolution's input history and computes
the convolution's newest position from the patch ``history[-1 - taps].reshape(-1)``: for each
tap age, oldest first, the ``C`` values of the step that is ``age`` hops old. Before the first
hop every history holds the layer's rest vector (:func:`kwshw.streaming.rest_vectors`).

:class:`HistoryBank` holds all of a network's histories behind one controller. The schedule
runs layer by layer, so at any time one history is written (layer ``l``'s outputs go to
history ``l``, which layer ``l + 1`` reads) and one other is read (layer ``l`` reads history
``l - 1``), and a history's min/max reduce ends before the layer that reads it starts. Only
the pointers are per history; the write engine, the reduce, the tap and ring arithmetic, the
min/max memory and the rest ROM are shared.

Memory layout
    History ``h`` keeps ``depth_h`` entries of ``C_h`` words from its first word ``W_h`` on:
    slot ``s`` holds its channels at ``W_h + s * C_h .. W_h + s * C_h + C_h - 1``. The block
    RAM histories share one simple dual-port memory, one after the other (the history being
    written is never the one being read, so one port per side serves them all, and the patch
    leaves a single block RAM with no multiplexer behind it: on ECP5 the block RAM's slow
    clock-to-output and a multiplexer after it set the clock); the SPRAM histories of each
    parity of ``h`` share a single-port memory, one after the other (:func:`spram_groups`:
    histories ``h`` and ``h + 2`` are never accessed at once). The newest entry's pointers
    move one slot per entry (as its first value arrives: no pass reads a half-written
    history); the entry ``a`` hops old sits ``a`` slots behind the newest, so a tap's base
    address is ``newest_base - a * C_h`` around the ring (``W_h .. W_h + depth_h * C_h -
    1``), ``a * C_h`` a constant per tap. Each entry's
    min and max (one word of two values) live in one memory shared by all histories (history
    ``h``'s slots after those of histories ``0 .. h-1``), written two cycles after the entry's
    last channel arrives (:attr:`MinMax.LATENCY <kwshw.hw.minmax.MinMax.LATENCY>`), from
    ``entry_min``/``entry_max``: the registered outputs of the min-max tracker that watches
    every layer's outputs (its compare and a block RAM's write data in one cycle set the ECP5
    clock); the rest vectors in one ROM (history ``h`` at
    ``h * 2**ceil(log2(max C))``).

Rest and ``clear``
    Nothing is erased: a saturating counter per history of the entries written since the last
    reset says which slots are real. A tap older than that count reads the rest vector (and
    contributes ``min(rest)``/``max(rest)`` to the reduce), so the domain's reset (``clear``,
    applied with :class:`~amaranth.hdl.ResetInserter` as for :class:`~kwshw.hw.window.Window`)
    costs no cycles and the patches equal the golden model's from reset.

Min/max (``XLO`` and ``R``)
    The requantizer needs the patch's ``XLO = min`` and ``R = max - min`` *before* its first
    code, so a min/max gathered while the patch streams would come one pass too late. Every
    completed entry starts a reduce over its history's ``K`` taps' stored pairs: ``K`` reads,
    ready :meth:`HistorySpec.reduce_latency` cycles after the entry's last value. The pairs
    read go out on ``fold``, one per cycle, to a :class:`~kwshw.hw.minmax.MinMax` with
    ``pairs`` (the accelerator's tracker, idle then: the entry was a layer's last output),
    whose ``xmin``/``xmax`` are then those of the history written last.

Reading
    Each accepted request streams one pass over the patch of history ``read_from``, ``K * C``
    values at one per cycle (the first one the cycle after the request, passes back to back
    without a bubble), with back-pressure. The value memories' read address is a register: it
    steps through a tap's channels and, at the tap's last channel, takes the base of the tap
    that follows, from one tap lookup on the pointers of ``read_from`` (registered while no
    pass runs) and a registered tap index: the next tap of the pass while a tap streams, the
    first tap during a pass's last tap and between passes, which is also loaded into the
    address every cycle no pass runs. The lookup's result is itself registered when every
    history has at least three channels (a tap lasts three cycles). So no tap lookup nor ring
    arithmetic lies between the request and a memory's address (that chain set the clock on
    both families), and one lookup and ring computation serve both kinds of tap.

The caller's contract (what the layer-by-layer schedule does)
    ``write_to`` changes only between entries, at least a cycle before the next entry's first
    value, and ``read_from`` only between passes; while entries of history ``l`` are
    written, passes read history ``l - 1`` or none (never the history being written, nor one
    whose entry is half written, nor, for the SPRAM groups, one of ``l``'s parity).
    ``read_from`` is set at least :attr:`HistoryBank.READ_LEAD` (3) cycles before a request is
    accepted, and in those cycles no entry of history ``read_from`` completes and ``clear`` is
    low (its pointers are registered, then the first tap looked up from them, then loaded into
    the read address: the schedule sets ``read_from`` with the layer and requests only after
    the history's min/max reduce, ``K + 5`` cycles after its entry, and the layer's dividers,
    which take longer). The next entry of a history
    goes in after the last value of the last pass over its previous patch, or over any
    history of its parity, has left ``patch`` (an SPRAM's output changes with a write).
    Writes are always accepted (``inp.ready`` is constant 1).

Memory kinds
    ``"bram"``: a history's values live in the bank's simple dual-port memory (a block RAM)
    with the other ``"bram"`` histories'.
    ``"spram"``: in a :class:`~kwshw.hw.memories.SinglePortRAM` (iCE40 UltraPlus SPRAM, 16
    bits x 16k per block) shared with the other ``"spram"`` histories of its parity: one
    address, the write address while an entry value is written, the read address otherwise
    (by the contract never both: the history read and the history written differ in parity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_MAX, ACT_MIN, ACT_WIDTH
from .common import DISJOINT_PORTS, RegisteredRead, disjoint_read_port
from .memories import MEMORY_KINDS, SinglePortRAM, bram_slices
from .minmax import MinMax, pair_layout

__all__ = ["HistoryBank", "HistorySpec", "bank_bits", "entry_slots", "patch_layout",
           "rest_rom_depth", "spram_group_words", "spram_groups"]


def patch_layout() -> data.StructLayout:
    """Payload of a :class:`HistoryBank` patch stream: a value and the pass's first/last."""
    return data.StructLayout({"value": signed(ACT_WIDTH), "first": 1, "last": 1})


def _chan_bits(specs: Sequence[HistorySpec]) -> int:
    """Address bits of a channel in the rest ROM (at least 1)."""
    return max(max(s.channels for s in specs) - 1, 1).bit_length()


def entry_slots(specs: Sequence[HistorySpec]) -> int:
    """Words of a :class:`HistoryBank`'s shared min/max memory: every history's entries."""
    return sum(s.depth for s in specs)


def rest_rom_depth(specs: Sequence[HistorySpec]) -> int:
    """Words of a :class:`HistoryBank`'s rest ROM: one power-of-two row per history."""
    return len(specs) << _chan_bits(specs)


def spram_groups(memories: Sequence[str]) -> list[list[int]]:
    """The SPRAM value memories: which ``"spram"`` histories share one, in bank order.

    Histories ``h`` and ``h + 2`` share one (one group per parity of ``h``): the schedule
    writes history ``l`` while it reads history ``l - 1``, and nothing else, so two histories
    of the same parity are never written and read at once, and a single-port memory serves
    both (the reference CNN's three histories take two SPRAM blocks instead of three).
    """
    return [hs for hs in ([h for h, k in enumerate(memories) if k == "spram" and h % 2 == p]
                          for p in (0, 1)) if hs]


def spram_group_words(specs: Sequence[HistorySpec], memories: Sequence[str]) -> list[int]:
    """Words of each :func:`spram_groups` memory."""
    return [sum(specs[h].values for h in hs) for hs in spram_groups(memories)]


def bank_bits(specs: Sequence[HistorySpec]) -> int:
    """Memory bits of a :class:`HistoryBank`: every history's entries, the min/max memory
    and the rest ROM (its padding included)."""
    words = sum(s.values for s in specs) + 2 * entry_slots(specs) + rest_rom_depth(specs)
    return words * ACT_WIDTH


@dataclasses.dataclass(frozen=True)
class HistorySpec:
    """One history: layer ``reader`` reads it at ``taps``; ``C = channels`` values per entry.

    ``taps`` are ages (hops before the newest entry) in streaming order
    (:attr:`kwshw.streaming.LayerTiming.taps`, or ``window_ages`` for the last convolution's
    outputs); ``rest`` is the rest vector, ``C`` signed ``ACT_WIDTH``-bit values that entries
    from before the last reset read as.
    """

    reader: int
    channels: int
    taps: tuple[int, ...]
    rest: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"need channels >= 1, got {self.channels}")
        if not self.taps or min(self.taps) < 0:
            raise ValueError(f"taps must be ages >= 0, got {self.taps}")
        if len(self.rest) != self.channels or \
                any(v < ACT_MIN or v > ACT_MAX for v in self.rest):
            raise ValueError(f"rest must be {self.channels} signed {ACT_WIDTH}-bit values, "
                             f"got {self.rest}")

    @property
    def depth(self) -> int:
        """Entries kept: as deep as the oldest tap."""
        return max(self.taps) + 1

    @property
    def kernel(self) -> int:
        """``K``: taps per patch."""
        return len(self.taps)

    @property
    def patch_size(self) -> int:
        """Values per pass: ``K * C``."""
        return self.kernel * self.channels

    @property
    def reduce_latency(self) -> int:
        """Cycles from an entry's last transfer to the first cycle with ``mm_valid``, both
        counted: the transfer, one for the tracker to fold the entry's last value, one to
        write the entry's min/max pair, one read per tap, one to register the last read, one
        for the last fold."""
        return self.kernel + 3 + MinMax.LATENCY

    @property
    def values(self) -> int:
        """Words of the value memory: ``depth * C``."""
        return self.depth * self.channels



class _Port:
    """Address, data and enable of one side of a :class:`SinglePortRAM` (duck-typed like the
    :mod:`amaranth.lib.memory` port the write and read sides take)."""

    def __init__(self, depth: int, name: str, data: Value | None = None) -> None:
        self.addr = Signal(range(max(depth, 2)), name=f"{name}_addr")
        self.en = Signal(name=f"{name}_en")
        self.data = Signal(signed(ACT_WIDTH), name=f"{name}_data") if data is None else data


def _table(m: Module, sel: Value, rows: dict[int, dict[str, int]],
           **shapes) -> dict[str, Signal]:
    """Constants looked up by ``sel``: ``rows[case][name]``, one Signal per name of
    ``shapes``. The arithmetic on them comes after the lookup, so it is built once, not once
    per case."""
    out = {name: Signal(shape, name=name) for name, shape in shapes.items()}
    with m.Switch(sel):
        for case, row in rows.items():
            with m.Case(case):
                m.d.comb += [out[name].eq(row[name]) for name in shapes]
    return out


class _Pointers:
    """One history's pointers: the newest entry's slot and word address, and the count of
    real entries (saturating at the depth). Slots are addresses of the shared min/max memory,
    word addresses those of the history's own value memory; the next entry goes one slot
    further around the ring.

    The newest entry's slot and base move on as an entry's first value arrives, not as its
    last one does: no pass reads a history while an entry of it is half written, and the
    count of real entries, which says which taps are real, still moves with the last value.
    So the next entry needs no pointers of its own: its slot is one after the newest, and
    its words follow the last one written. The word the next value goes to is a register
    (``write_addr``): the memories' write addresses come from flip-flops, with the ring's
    wrap computed while an entry streams in, not between ``write_to`` and the address (that
    chain set the clock on both families)."""

    def __init__(self, h: int, spec: HistorySpec, first_slot: int, first_word: int) -> None:
        last_slot = first_slot + spec.depth - 1
        self.first_slot, self.last_slot = first_slot, last_slot
        self.first_word = first_word
        words = first_word + spec.values
        self.newest_slot = Signal(range(last_slot + 1), init=last_slot, name=f"h{h}_newest_slot")
        self.newest_base = Signal(range(words), init=words - spec.channels,
                                  name=f"h{h}_newest_base")
        self.count = Signal(range(spec.depth + 1), name=f"h{h}_count")
        # From reset the first entry goes to slot first_slot, words W_h ..
        self.last_word = words - 1
        self.write_addr = Signal(range(words), init=first_word, name=f"h{h}_write_addr")


class HistoryBank(wiring.Component):
    """The circular histories of a network's convolutions behind one controller; streams one
    convolution patch per request.

    Parameters
    ----------
    specs : sequence of HistorySpec
        The histories, in layer order (history ``h`` is written by layer ``h`` and read by
        layer ``h + 1``).
    memories : sequence of {"bram", "spram"}, optional
        Where each history's values live (see *Memory kinds* in the module docstring); all
        ``"bram"`` by default.

    Attributes
    ----------
    inp : stream, in
        Step vectors for history ``write_to``, ``C`` values per entry in channel order; each
        completed entry becomes that history's newest (age 0). Always ready.
    entry_min, entry_max : Signal, in
        The minimum and maximum of the values of the entry whose last value ``inp`` took two
        cycles before (the registered ``xmin``/``xmax`` of the
        :class:`~kwshw.hw.minmax.MinMax` tracker that watches the same stream: the bank
        keeps no running min/max of its own).
    write_to : Signal, in
        The history ``inp`` writes.
    req : stream, in
        One pass over the patch of history ``read_from`` per transfer. Ready when no pass is
        being read and the patch stream can advance.
    read_from : Signal, in
        The history a request reads: set at least one cycle before the request is accepted
        and held until the pass's last value has been issued.
    patch : stream, out
        The patch, ``K * C`` values per pass (:func:`patch_layout`: ``value``, and ``first``/
        ``last`` of the pass): for each tap in order, the entry ``age`` hops old, channel by
        channel.
    fold : stream, out
        The stored min/max pairs of the patch of the history written last
        (:func:`~kwshw.hw.minmax.pair_layout`, ``first`` with the first), as they leave the
        memory, for a :class:`~kwshw.hw.minmax.MinMax` to fold: its ``xmin``/``xmax`` then
        are the requantizer's ``XLO`` and ``R = xmax - xmin`` for that patch.
    mm_valid : Signal, out
        A :class:`~kwshw.hw.minmax.MinMax` fed by ``fold`` has folded the pairs of the newest
        entries of the history written last (low from an entry's completion until the cycle
        after the tracker folded its last pair, two after that pair's ``fold`` beat, and
        after reset).
    """

    #: Cycles ``read_from`` is set before a request may be accepted (see the module docstring).
    READ_LEAD = 3

    def __init__(self, specs: Sequence[HistorySpec],
                 memories: Sequence[str] | None = None) -> None:
        specs = tuple(specs)
        if not specs:
            raise ValueError("a history bank needs at least one history")
        memories = ("bram",) * len(specs) if memories is None else tuple(memories)
        if len(memories) != len(specs) or any(k not in MEMORY_KINDS for k in memories):
            raise ValueError(f"memories must be {len(specs)} of {MEMORY_KINDS}, got {memories}")
        self.specs, self.memories = specs, memories
        self._first_slots = [entry_slots(specs[:h]) for h in range(len(specs))]
        # The value memories: the "bram" histories' shared one first (if any), then the
        # "spram" histories' (spram_groups); each history's memory and first word in it.
        shared = [h for h, k in enumerate(memories) if k == "bram"]
        self._groups = ([shared] if shared else []) + spram_groups(memories)
        self._memory_of = [next(g for g, hs in enumerate(self._groups) if h in hs)
                           for h in range(len(specs))]
        self._first_words = [sum(specs[j].values for j in self._groups[self._memory_of[h]]
                                 if j < h) for h in range(len(specs))]
        self._words = max(w + s.values for w, s in zip(self._first_words, specs, strict=True))
        self._chan_bits = _chan_bits(specs)
        super().__init__({
            "inp": In(stream.Signature(signed(ACT_WIDTH))),
            "entry_min": In(signed(ACT_WIDTH)),
            "entry_max": In(signed(ACT_WIDTH)),
            "write_to": In(range(len(specs))),
            "req": In(stream.Signature(0)),
            "read_from": In(range(len(specs))),
            "patch": Out(stream.Signature(patch_layout())),
            "mm_valid": Out(1),
            "fold": Out(stream.Signature(pair_layout(), always_ready=True)),
        })

    @property
    def bits(self) -> int:
        """Memory bits (:func:`bank_bits`)."""
        return bank_bits(self.specs)

    def elaborate(self, platform) -> Module:
        m = Module()
        mm_layout = data.StructLayout({"min": signed(ACT_WIDTH), "max": signed(ACT_WIDTH)})
        # An entry's pair is written the cycle before its reduce starts reading, and the
        # reduce reads only its own history's slots: no read collides with a write (nor in the
        # value memories: the history written is never the one read).
        m.submodules.entry_mm = entry_mm = memory.Memory(
            shape=mm_layout, depth=entry_slots(self.specs), init=[], attrs=DISJOINT_PORTS)
        m.submodules.rest = rest = self._rest_rom()
        ptrs = [_Pointers(h, s, self._first_slots[h], self._first_words[h])
                for h, s in enumerate(self.specs)]
        writes, reads = zip(*(self._value_memory(m, g, platform)
                              for g in range(len(self._groups))), strict=True)
        done = self._write_side(m, writes, ptrs)
        hist, wrote = self._write_pair(m, entry_mm.write_port(), ptrs, done)
        self._reduce(m, disjoint_read_port(m, entry_mm, "entry_mm_rd"), ptrs, hist, wrote,
                     done)
        self._read_side(m, reads, rest.read_port(), ptrs)
        return m

    def _rest_rom(self) -> memory.Memory:
        """Every history's rest vector, history ``h`` at ``h << chan_bits`` (so the address is
        the channel and the history side by side). In a block RAM: iCE40 has no LUT RAM, and
        Yosys otherwise builds a ROM from logic (about 85 LUTs per 64 words)."""
        init = []
        for s in self.specs:
            init += list(s.rest) + [0] * ((1 << self._chan_bits) - s.channels)
        assert len(init) == rest_rom_depth(self.specs)
        return memory.Memory(shape=signed(ACT_WIDTH), depth=len(init), init=init,
                             attrs={"rom_style": "block"})

    def _value_memory(self, m: Module, g: int, platform):
        """Value memory ``g`` (see *Memory layout*): its write and read ports (an SPRAM's one
        address is the write address while writing, the read address otherwise)."""
        hs = self._groups[g]
        words = sum(self.specs[h].values for h in hs)
        if self.memories[hs[0]] == "bram":
            return self._shared_memory(m, words, platform)
        name = "_".join(map(str, hs))
        m.submodules[f"values{name}"] = ram = SinglePortRAM(ACT_WIDTH, words)
        vw = _Port(words, f"h{name}_w")
        vr = _Port(words, f"h{name}_r", data=ram.rdata.as_signed())
        m.d.comb += [
            ram.addr.eq(Mux(vw.en, vw.addr, vr.addr)),
            ram.we.eq(vw.en), ram.wdata.eq(vw.data),
            ram.re.eq(vr.en),
        ]
        return vw, vr

    @staticmethod
    def _shared_memory(m: Module, words: int, platform) -> tuple[_Port, _Port]:
        """The block RAM histories' memory (on ECP5 as bit slices,
        :func:`~kwshw.hw.memories.ecp5_bram_slices`): its write and read ports."""
        vw, vr = _Port(words, "values_w"), _Port(words, "values_r")
        slices = bram_slices(platform, ACT_WIDTH, words)
        lo = 0
        for k, w in enumerate(slices):
            # The history written is never the one read: no read collides with a write.
            mem = memory.Memory(shape=unsigned(w), depth=words, init=[], attrs=DISJOINT_PORTS)
            m.submodules[f"values{k}" if len(slices) > 1 else "values"] = mem
            wp, rp = mem.write_port(), disjoint_read_port(m, mem, f"values{k}_rd")
            m.d.comb += [wp.addr.eq(vw.addr), wp.data.eq(vw.data[lo:lo + w]), wp.en.eq(vw.en),
                         rp.addr.eq(vr.addr), rp.en.eq(vr.en), vr.data[lo:lo + w].eq(rp.data)]
            lo += w
        return vw, vr

    def _write_side(self, m: Module, writes, ptrs: list[_Pointers]) -> Value:
        """Entries arrive for history ``write_to``: store the values, move its pointers.
        Returns the entry-completed strobe."""
        sel = self.write_to
        chan = Signal(range(max(s.channels for s in self.specs)))
        # Whether the next value is its entry's last is a register, computed from the next
        # channel and ``write_to`` (which by the contract is set a cycle before an entry):
        # from the channel through the lookup and compare into the entry's strobe and on
        # into ``mm_valid`` was an iCEBreaker longest path.
        last_chan = Signal(init=self.specs[0].channels == 1)
        chan_next = Signal.like(chan)
        first_chan = chan == 0
        fire = self.inp.valid
        done = fire & last_chan
        m.d.comb += [self.inp.ready.eq(1),
                     chan_next.eq(Mux(fire, Mux(last_chan, 0, chan + 1), chan))]
        m.d.sync += [chan.eq(chan_next), last_chan.eq(
            chan_next == Array(Const(s.channels - 1, chan.shape()) for s in self.specs)[sel])]
        for vw, hs in zip(writes, self._groups, strict=True):
            m.d.comb += [vw.data.eq(self.inp.payload),
                         vw.en.eq(fire & Cat(sel == h for h in hs).any())]
            with m.Switch(sel):
                for h in hs:
                    with m.Case(h):
                        m.d.comb += vw.addr.eq(ptrs[h].write_addr)
        for h, p in enumerate(ptrs):
            with m.If(fire & (sel == h)):
                self._advance_write(m, p, self.specs[h], first_chan, last_chan)
        return done

    @staticmethod
    def _advance_write(m: Module, p: _Pointers, spec: HistorySpec, first_chan: Value,
                       last_chan: Value) -> None:
        """History ``p``'s pointers after one value: the next word around the ring (the last
        slot holds the last entry's words, so slots and words wrap together); an entry's first
        value makes it the newest, a slot further around the ring, and its last one counts
        it (see :class:`_Pointers`)."""
        with m.If(first_chan):
            m.d.sync += [
                p.newest_slot.eq(Mux(p.newest_slot == p.last_slot, p.first_slot,
                                     p.newest_slot + 1)),
                p.newest_base.eq(p.write_addr),
            ]
        with m.If(last_chan):
            m.d.sync += p.count.eq(Mux(p.count == spec.depth, p.count, p.count + 1))
        m.d.sync += p.write_addr.eq(Mux(p.write_addr == p.last_word, p.first_word,
                                        p.write_addr + 1))

    def _write_pair(self, m: Module, mw: memory.WritePort, ptrs: list[_Pointers],
                    done: Value) -> tuple[Signal, Signal]:
        """The completed entry's min/max pair (``entry_min``/``entry_max``), written
        :attr:`~kwshw.hw.minmax.MinMax.LATENCY` cycles after ``done`` (when the tracker has
        folded the entry's last value) into the entry's slot (by then its history's newest).
        Returns the history (registered at ``done``) and the write strobe."""
        hist = Signal.like(self.write_to)
        wrote = done
        for k in range(1, MinMax.LATENCY + 1):
            reg = Signal(name="wrote" if k == MinMax.LATENCY else f"done_{k}")
            m.d.sync += reg.eq(wrote)
            wrote = reg
        with m.If(done):
            m.d.sync += hist.eq(self.write_to)
        m.d.comb += [
            mw.addr.eq(Array(p.newest_slot for p in ptrs)[hist]),
            mw.data.min.eq(self.entry_min), mw.data.max.eq(self.entry_max),
            mw.en.eq(wrote),
        ]
        return hist, wrote

    def _reduce(self, m: Module, mr: RegisteredRead, ptrs: list[_Pointers], hist: Signal,
                wrote: Signal, done: Value) -> None:
        """Min/max over the stored pairs at the taps of history ``hist``, from the cycle after
        its newest pair was written."""
        go = Signal()
        m.d.sync += go.eq(wrote)
        # The tap index of this cycle's read, a register: 0 the cycle after a pair was written
        # (when the reduce starts), one more after each read. No multiplexer of ``go`` then
        # lies between it and the tap lookup (on iCE40 the lookup and the ring compare after
        # it were the longest path).
        index = Signal(range(max(s.kernel for s in self.specs)), name="r_idx")
        r_busy = Signal()
        issue = go | r_busy
        newest = Array(p.newest_slot for p in ptrs)[hist]
        count = Array(p.count for p in ptrs)[hist]
        slots = entry_slots(self.specs)
        t = _table(m, Cat(index, hist),
                   {k | (h << len(index)): {"r_lowest": self._first_slots[h] + age,
                                            "r_age": age, "r_forward": s.depth - age,
                                            "r_last": k == s.kernel - 1}
                    for h, s in enumerate(self.specs) for k, age in enumerate(s.taps)},
                   r_lowest=range(slots), r_age=range(slots), r_forward=range(slots + 1),
                   r_last=1)
        addr = Mux(newest >= t["r_lowest"], newest - t["r_age"], newest + t["r_forward"])
        is_rest, last = count <= t["r_age"], t["r_last"]
        rest = _table(m, hist, {h: {"rest_min": min(s.rest), "rest_max": max(s.rest)}
                                for h, s in enumerate(self.specs)},
                      rest_min=signed(ACT_WIDTH), rest_max=signed(ACT_WIDTH))
        rest_min, rest_max = rest["rest_min"], rest["rest_max"]
        m.d.comb += mr.addr.eq(addr)
        with m.If(issue):
            m.d.sync += [index.eq(index + 1), r_busy.eq(~last)]
        with m.If(wrote):
            m.d.sync += index.eq(0)
        r_valid, r_first, r_last, r_rest = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [r_valid.eq(issue), r_first.eq(go), r_last.eq(issue & last),
                     r_rest.eq(is_rest)]
        # The pairs leave as read (the tracker registers them before its comparisons), and
        # the reduce is done the cycle after the tracker folded the last one.
        m.d.comb += [self.fold.valid.eq(r_valid), self.fold.payload.first.eq(r_first),
                     self.fold.payload.min.eq(Mux(r_rest, rest_min, mr.data.min)),
                     self.fold.payload.max.eq(Mux(r_rest, rest_max, mr.data.max))]
        f_last = Signal()
        m.d.sync += f_last.eq(r_last)
        with m.If(done | wrote | go):
            m.d.sync += self.mm_valid.eq(0)
        with m.Elif(f_last):
            m.d.sync += self.mm_valid.eq(1)

    @property
    def _advance(self) -> Value:
        """The output register can take a new value (empty, or its value leaves now)."""
        return ~self.patch.valid | self.patch.ready

    def _read_side(self, m: Module, reads, rr: memory.ReadPort,
                   ptrs: list[_Pointers]) -> None:
        """One pass over the patch per request; the memory read ports' registers are the
        output register, held (``en`` low) while the consumer stalls.

        Every read address comes from registers (see *Reading* in the module docstring): the
        running address steps through a tap's channels and, at the tap's last channel, takes
        the base of the tap that follows, looked up while the tap streams: the next tap of the
        pass, or during its last tap (and while no pass runs) the first tap of the next."""
        reading = Signal()
        m.d.comb += self.req.ready.eq(~reading & self._advance)
        start = self.req.valid & self.req.ready
        issue = (start | reading) & self._advance
        # read_from and its pointers, registered while no pass runs (by the contract they
        # hold while its passes run): the pointer multiplexer then lies before these
        # registers, not in the tap lookup and ring arithmetic (on the iCEBreaker CNN that
        # chain was a longest path).
        hist = Signal.like(self.read_from)
        newest_base = Signal(range(self._words))
        count = Signal(range(max(s.depth for s in self.specs) + 1))
        with m.If(~reading):
            m.d.sync += [hist.eq(self.read_from),
                         newest_base.eq(Array(p.newest_base for p in ptrs)[self.read_from]),
                         count.eq(Array(p.count for p in ptrs)[self.read_from])]
        # One tap lookup serves the whole pass and the first tap of the next: the tap after
        # the current one (``q_idx``), or tap 0 during the last tap and between passes.
        q_idx = Signal(range(max(s.kernel for s in self.specs) + 1))
        cur_rest, cur_last_tap = Signal(), Signal()
        idx = Mux((reading | start) & ~cur_last_tap, q_idx, 0)
        if min(s.channels for s in self.specs) >= 3:
            # A tap lasts at least three cycles, so the index looked up and the lookup's
            # results can be registers, each a cycle behind (the results are taken at the
            # tap's last channel): the choice of the index and the request, then the lookup,
            # the pointer multiplexer and the ring's compare (carry chains), end in registers,
            # not in the read address (on the iCEBreaker CNN reference each was a longest
            # path).
            look = Signal.like(q_idx, name="look")
            m.d.sync += look.eq(idx)
            nxt = self._lookup_tap(m, look, hist, newest_base, count)
            nxt_q = {k: Signal(Value.cast(v).shape(), name=f"next_{k}") for k, v in nxt.items()}
            m.d.sync += [nxt_q[k].eq(v) for k, v in nxt.items()]
            nxt = nxt_q
        else:
            nxt = self._lookup_tap(m, idx, hist, newest_base, count)
        last_chans = _table(m, hist, {h: {"last_chan": s.channels - 1}
                                      for h, s in enumerate(self.specs)},
                            last_chan=range(max(s.channels for s in self.specs)))
        addr = Signal(range(self._words))
        chan = Signal(range(max(s.channels for s in self.specs)))
        chan_last = Signal.like(chan)
        last_chan = chan == chan_last
        last = cur_last_tap & last_chan
        with m.If(issue & ~last_chan):
            m.d.sync += [chan.eq(chan + 1), addr.eq(addr + 1)]
        with m.Else():
            with m.If(issue | ~reading):
                m.d.sync += [chan.eq(0), addr.eq(nxt["base"]), cur_rest.eq(nxt["rest"]),
                             cur_last_tap.eq(nxt["last_tap"])]
            with m.If(issue & ~cur_last_tap):
                m.d.sync += q_idx.eq(q_idx + 1)
            with m.Elif(issue | ~reading):
                m.d.sync += [q_idx.eq(1), chan_last.eq(last_chans["last_chan"])]
        for vr, hs in zip(reads, self._groups, strict=True):
            m.d.comb += [vr.addr.eq(addr), vr.en.eq(issue & Cat(hist == h for h in hs).any())]
        m.d.comb += [rr.addr.eq(Cat(chan[:self._chan_bits], hist)), rr.en.eq(issue)]
        out_rest = Signal()
        out_mem = Signal(range(max(len(self._groups), 2)))
        with m.If(issue):
            m.d.sync += [
                out_rest.eq(cur_rest),
                out_mem.eq(Array(Const(g, out_mem.shape()) for g in self._memory_of)[hist]),
                self.patch.payload.first.eq(start),
                self.patch.payload.last.eq(last),
                reading.eq(~last),
            ]
        with m.If(self._advance):
            m.d.sync += self.patch.valid.eq(issue)
        value = reads[0].data if len(reads) == 1 else Array(vr.data for vr in reads)[out_mem]
        m.d.comb += self.patch.payload.value.eq(Mux(out_rest, rr.data, value))

    def _lookup_tap(self, m: Module, idx: Value, hist: Signal, newest_base: Signal,
                  count: Signal) -> dict[str, Value]:
        """Tap ``idx`` of a pass over history ``hist``, whose newest entry's base and count of
        real entries are given: its base address, whether it reads the rest vector and
        whether it is the last."""
        t = _table(m, Cat(idx, hist),
                   {k | (h << len(Value.cast(idx))): _tap_row("n", s, k, self._first_words[h])
                    for h, s in enumerate(self.specs) for k in range(s.kernel)},
                   **self._tap_shapes("n"))
        return self._tap(t, "n", newest_base, count)

    def _tap_shapes(self, prefix: str) -> dict[str, range | int]:
        """Shapes of the :func:`_tap_row` constants."""
        words = self._words
        return {f"{prefix}_lowest": range(words), f"{prefix}_offset": range(words),
                f"{prefix}_age": range(words), f"{prefix}_forward": range(words + 1),
                f"{prefix}_last_tap": 1}

    @staticmethod
    def _tap(t: dict[str, Signal], prefix: str, newest: Value,
             count: Value) -> dict[str, Value]:
        """A tap's base address around the ring, rest flag and last flag from its looked-up
        constants and its history's pointers."""
        lowest, offset, forward = (t[f"{prefix}_{k}"] for k in ("lowest", "offset", "forward"))
        return {"base": Mux(newest >= lowest, newest - offset, newest + forward),
                "rest": count <= t[f"{prefix}_age"], "last_tap": t[f"{prefix}_last_tap"]}


def _tap_row(prefix: str, spec: HistorySpec, k: int, first_word: int) -> dict[str, int]:
    """The constants of tap ``k`` of ``spec`` (its history from word ``first_word`` on): the
    lowest newest base from which the tap lies behind it without wrapping, the base's offset
    behind the newest entry and the same around the ring forward, the age, and whether it is
    the last tap."""
    age = spec.taps[k]
    return {f"{prefix}_lowest": first_word + age * spec.channels,
            f"{prefix}_offset": age * spec.channels, f"{prefix}_age": age,
            f"{prefix}_forward": spec.values - age * spec.channels,
            f"{prefix}_last_tap": k == spec.kernel - 1}
