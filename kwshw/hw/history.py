"""The input history of one temporal convolution in the streaming schedule.

In the streaming schedule (:mod:`kwshw.streaming`, ``docs/arithmetic.md`` section 10) every
hop appends one step vector (``C`` channels) to each convolution's input history and computes
the convolution's newest position from the patch ``history[-1 - taps].reshape(-1)``: for each
tap age, oldest first, the ``C`` values of the step that is ``age`` hops old. Before the first
hop every history holds the layer's rest vector (:func:`kwshw.streaming.rest_vectors`).

:class:`ConvHistory` is that history in hardware.

Memory layout
    A circular buffer of ``depth`` entries of ``C`` words (``depth * C`` signed words): entry
    slot ``s`` holds its channels at ``s * C .. s * C + C - 1``. The write pointer moves one
    slot per completed entry; the entry ``a`` hops old sits ``a`` slots behind the newest, so a
    tap's base address is ``newest_base - a * C`` around the ring, with ``a * C`` a constant per
    tap. A second memory holds each entry's min and max (one word of two values per slot),
    written as the entry's last channel arrives.

Rest and ``clear``
    Nothing is erased: a saturating counter of the entries written since the last reset says
    which slots are real. A tap older than that count reads the rest vector from a ``C``-word
    ROM (and contributes ``min(rest)``/``max(rest)`` to the reduce), so the domain's reset
    (``clear``, applied with :class:`~amaranth.hdl.ResetInserter` as for
    :class:`~kwshw.hw.window.Window`) costs no cycles and the patches equal the golden model's
    from reset.

Min/max (``XLO`` and ``R``)
    The requantizer needs the patch's ``XLO = min`` and ``R = max - min`` *before* its first
    code, so a min/max gathered while the patch streams would come one pass too late. Each
    entry's min/max is stored beside it instead, and every completed entry starts a reduce over
    the ``K`` taps' stored pairs: ``K`` reads, ready :attr:`ConvHistory.reduce_latency`
    cycles after the entry's last value, while the history is otherwise idle or streaming. An
    entry that arrives during a reduce restarts it.

Reading
    Each accepted request streams one pass over the patch, ``K * C`` values at one per cycle
    (the first one the cycle after the request, passes back to back without a bubble), with
    back-pressure. A consumer that runs several passes (one per group of output columns)
    requests each. Writes wait while a pass is being read out of the memory, and requests
    wait while an entry is partly written (a request wins over a write at an entry
    boundary), so a pass never sees half an entry. Entries written *between* two passes do
    change the patch: the caller appends the next step only after its last pass, as the
    layer-by-layer schedule does.

Memory kinds
    ``memory="bram"``: the values live in a simple dual-port memory (a block RAM).
    ``memory="spram"``: they live in a :class:`~kwshw.hw.memories.SinglePortRAM` (iCE40
    UltraPlus SPRAM, 16 bits x 16k per block): one address, the write
    address while an entry value is written, the read address otherwise -- writes and pass
    reads never share a cycle (above). An SPRAM's output is undefined after a write, so with
    ``memory="spram"`` a write also waits until the patch's output register is empty (the last
    value of a pass has left). The min/max pairs and the rest ROM stay small memories either
    way. The schedule and the patches are the same for both kinds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_MAX, ACT_MIN, ACT_WIDTH
from .memories import MEMORY_KINDS, SinglePortRAM

__all__ = ["ConvHistory", "history_bits", "patch_layout"]


def history_bits(channels: int, depth: int) -> int:
    """Memory bits of a :class:`ConvHistory`: the entries, their min/max pairs and the rest
    ROM."""
    return (depth * (channels + 2) + channels) * ACT_WIDTH


def patch_layout() -> data.StructLayout:
    """Payload of a :class:`ConvHistory` patch stream: a value and the pass's first/last."""
    return data.StructLayout({"value": signed(ACT_WIDTH), "first": 1, "last": 1})


class ConvHistory(wiring.Component):
    """Circular history of step vectors that streams out one convolution patch per request.

    Parameters
    ----------
    channels : int
        ``C``: values per step vector.
    depth : int
        Entries kept (``taps.max() + 1`` for a convolution's input history,
        ``window_ages.max() + 1`` for the last convolution's outputs).
    taps : sequence of int
        Ages (hops before the newest entry) read per patch, in streaming order (oldest first
        in the schedule: :attr:`kwshw.streaming.LayerTiming.taps` or ``window_ages``). Each in
        ``[0, depth)``.
    rest : sequence of int
        The rest vector: ``C`` signed ``ACT_WIDTH``-bit values that entries from before the
        last reset read as.
    memory : {"bram", "spram"}
        Where the values live (see *Memory kinds* in the module docstring).

    Attributes
    ----------
    inp : stream, in
        Step vectors, ``C`` values per entry in channel order; each completed entry becomes
        the newest (age 0). Not ready while a pass is being read, nor when a request is
        waiting at an entry boundary.
    req : stream, in
        One pass over the patch per transfer. Ready when no pass is being read, no entry is
        partly written and the patch stream can advance.
    patch : stream, out
        The patch, ``K * C`` values per pass (:func:`patch_layout`: ``value``, and ``first``/
        ``last`` of the pass): for each tap in order, the entry ``age`` hops old, channel by
        channel.
    mm_valid : Signal, out
        ``xmin``/``xmax`` belong to the current entries (low from an entry's completion until
        its reduce is done; high after reset).
    xmin, xmax : Signal, out
        Minimum and maximum of the patch: the requantizer's ``XLO`` and ``R = xmax - xmin``.
    """

    def __init__(self, channels: int, depth: int, taps: Sequence[int],
                 rest: Sequence[int], memory: str = "bram") -> None:
        taps = [int(a) for a in np.asarray(taps).reshape(-1)]
        rest = [int(v) for v in np.asarray(rest).reshape(-1)]
        if channels < 1 or depth < 1:
            raise ValueError(f"need channels >= 1 and depth >= 1, got {channels}, {depth}")
        if not taps or any(a < 0 or a >= depth for a in taps):
            raise ValueError(f"taps must be ages in [0, {depth}), got {taps}")
        if len(rest) != channels or any(v < ACT_MIN or v > ACT_MAX for v in rest):
            raise ValueError(f"rest must be {channels} signed {ACT_WIDTH}-bit values, got {rest}")
        if memory not in MEMORY_KINDS:
            raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {memory!r}")
        self._c, self._depth, self._taps, self._rest = channels, depth, taps, rest
        self.memory = memory
        super().__init__({
            "inp": In(stream.Signature(signed(ACT_WIDTH))),
            "req": In(stream.Signature(0)),
            "patch": Out(stream.Signature(patch_layout())),
            "mm_valid": Out(1, init=1),
            "xmin": Out(signed(ACT_WIDTH), init=min(rest)),
            "xmax": Out(signed(ACT_WIDTH), init=max(rest)),
        })

    @property
    def kernel(self) -> int:
        """``K``: taps per patch."""
        return len(self._taps)

    @property
    def patch_size(self) -> int:
        """Values per pass: ``K * C``."""
        return self.kernel * self._c

    @property
    def reduce_latency(self) -> int:
        """Cycles from an entry's last transfer to the first cycle with ``mm_valid``, both
        counted: the transfer, one read per tap, one for the last fold."""
        return self.kernel + 2

    @property
    def bits(self) -> int:
        """Memory bits: the entries, their min/max pairs and the rest ROM."""
        return history_bits(self._c, self._depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        c, depth = self._c, self._depth
        mm_layout = data.StructLayout({"min": signed(ACT_WIDTH), "max": signed(ACT_WIDTH)})
        if self.memory == "spram":
            return self._elaborate_single_port(m, mm_layout)
        m.submodules.values = values = memory.Memory(shape=signed(ACT_WIDTH), depth=depth * c,
                                                     init=[])
        m.submodules.entry_mm = entry_mm = memory.Memory(shape=mm_layout, depth=depth, init=[])
        m.submodules.rest = rest = self._rest_rom()
        reading = Signal()
        newest_slot, newest_base, count, done, boundary = self._write_side(
            m, values.write_port(), entry_mm.write_port(), reading)
        self._reduce(m, entry_mm.read_port(), newest_slot, count, done)
        self._read_side(m, values.read_port(), rest.read_port(), reading, boundary,
                        newest_base, count)
        return m

    def _rest_rom(self) -> memory.Memory:
        """The rest vector's ROM. In a block RAM: iCE40 has no LUT RAM, and Yosys otherwise
        builds a ``C``-word ROM from logic: about 85 LUTs per history of 64 channels, 260 on
        the reference CNN (its iCEBreaker build with ``kwshw build --breakdown``, before and
        after)."""
        return memory.Memory(shape=signed(ACT_WIDTH), depth=self._c, init=self._rest,
                             attrs={"rom_style": "block"})

    def _elaborate_single_port(self, m: Module, mm_layout: data.StructLayout) -> Module:
        """The values in a :class:`SinglePortRAM`: the write and read sides' ports are
        muxed onto its one address (they never access it in the same cycle)."""
        c, depth = self._c, self._depth
        m.submodules.values = ram = SinglePortRAM(ACT_WIDTH, depth * c)
        m.submodules.entry_mm = entry_mm = memory.Memory(shape=mm_layout, depth=depth, init=[])
        m.submodules.rest = rest = self._rest_rom()
        vw = _Port(depth * c, "vw")
        vr = _Port(depth * c, "vr", data=ram.rdata.as_signed())
        reading = Signal()
        newest_slot, newest_base, count, done, boundary = self._write_side(
            m, vw, entry_mm.write_port(), reading, hold=self.patch.valid)
        self._reduce(m, entry_mm.read_port(), newest_slot, count, done)
        self._read_side(m, vr, rest.read_port(), reading, boundary, newest_base, count)
        m.d.comb += [
            ram.addr.eq(Mux(vw.en, vw.addr, vr.addr)),
            ram.we.eq(vw.en), ram.wdata.eq(vw.data),
            ram.re.eq(vr.en),
        ]
        return m

    def _write_side(self, m: Module, vw: memory.WritePort, mw: memory.WritePort,
                    reading: Signal, hold: Value | None = None
                    ) -> tuple[Signal, Signal, Signal, Value, Value]:
        """Entries arrive: store the values and the entry's min/max. Returns the newest slot,
        its word address, the count of real entries (saturating at ``depth``), the
        entry-completed strobe and "no entry is partly written". Writes also wait while
        ``hold`` (if given) is high."""
        c, depth = self._c, self._depth
        wr_chan = Signal(range(c))
        wr_slot = Signal(range(depth))
        wr_base = Signal(range(depth * c))
        newest_slot = Signal(range(depth), init=depth - 1)
        newest_base = Signal(range(depth * c), init=(depth - 1) * c)
        count = Signal(range(depth + 1))
        run_min = Signal(signed(ACT_WIDTH))
        run_max = Signal(signed(ACT_WIDTH))
        value = self.inp.payload
        fire = self.inp.valid & self.inp.ready
        done = fire & (wr_chan == c - 1)
        boundary = wr_chan == 0
        new_min = Mux(boundary | (value < run_min), value, run_min)
        new_max = Mux(boundary | (value > run_max), value, run_max)
        ready = ~reading & ~(self.req.valid & boundary)
        if hold is not None:
            ready &= ~hold
        m.d.comb += [
            # A request at an entry boundary goes first: the pass must not see a new entry.
            self.inp.ready.eq(ready),
            vw.addr.eq(wr_base + wr_chan), vw.data.eq(value), vw.en.eq(fire),
            mw.addr.eq(wr_slot), mw.data.min.eq(new_min), mw.data.max.eq(new_max),
            mw.en.eq(done),
        ]
        with m.If(fire):
            m.d.sync += [run_min.eq(new_min), run_max.eq(new_max), wr_chan.eq(wr_chan + 1)]
        with m.If(done):
            m.d.sync += [
                wr_chan.eq(0),
                wr_slot.eq(Mux(wr_slot == depth - 1, 0, wr_slot + 1)),
                wr_base.eq(Mux(wr_slot == depth - 1, 0, wr_base + c)),
                newest_slot.eq(wr_slot),
                newest_base.eq(wr_base),
                count.eq(Mux(count == depth, depth, count + 1)),
            ]
        return newest_slot, newest_base, count, done, boundary

    def _tap(self, m: Module, index: Value, count: Signal, scale: int,
             name: str) -> tuple[Signal, Signal]:
        """For tap ``index``: its age times ``scale`` (an offset behind the newest entry) and
        whether it is older than the real entries (reads as rest)."""
        offset = Signal(range(max(self._taps) * scale + 1), name=f"{name}_offset")
        is_rest = Signal(name=f"{name}_rest")
        with m.Switch(index):
            for k, age in enumerate(self._taps):
                with m.Case(k):
                    m.d.comb += [offset.eq(age * scale), is_rest.eq(count <= age)]
        return offset, is_rest

    def _reduce(self, m: Module, mr: memory.ReadPort, newest_slot: Signal, count: Signal,
                done: Value) -> None:
        """Min/max over the taps' stored pairs, restarted by every completed entry."""
        depth, kernel = self._depth, self.kernel
        go = Signal()
        m.d.sync += go.eq(done)
        r_idx = Signal(range(kernel))
        r_busy = Signal()
        index = Mux(go, 0, r_idx)
        issue = go | r_busy
        offset, is_rest = self._tap(m, index, count, 1, "r")
        m.d.comb += mr.addr.eq(Mux(newest_slot >= offset, newest_slot - offset,
                                   newest_slot + depth - offset))
        with m.If(issue):
            m.d.sync += [r_idx.eq(index + 1), r_busy.eq(index != kernel - 1)]
        f_valid, f_first, f_last, f_rest = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [f_valid.eq(issue), f_first.eq(go), f_last.eq(index == kernel - 1),
                     f_rest.eq(is_rest)]
        f_min = Mux(f_rest, min(self._rest), mr.data.min)
        f_max = Mux(f_rest, max(self._rest), mr.data.max)
        with m.If(f_valid):
            m.d.sync += [
                self.xmin.eq(Mux(f_first | (f_min < self.xmin), f_min, self.xmin)),
                self.xmax.eq(Mux(f_first | (f_max > self.xmax), f_max, self.xmax)),
            ]
        with m.If(done | go):
            m.d.sync += self.mm_valid.eq(0)
        with m.Elif(f_valid & f_last):
            m.d.sync += self.mm_valid.eq(1)

    @property
    def _advance(self) -> Value:
        """The output register can take a new value (empty, or its value leaves now)."""
        return ~self.patch.valid | self.patch.ready

    def _read_side(self, m: Module, vr: memory.ReadPort, rr: memory.ReadPort, reading: Signal,
                   boundary: Value, newest_base: Signal, count: Signal) -> None:
        """One pass over the patch per request; the memory read port's register is the
        output register, held (``en`` low) while the consumer stalls."""
        c, depth, kernel = self._c, self._depth, self.kernel
        t_idx = Signal(range(kernel))
        chan = Signal(range(c))
        m.d.comb += self.req.ready.eq(~reading & boundary & self._advance)
        start = self.req.valid & self.req.ready
        idx = Mux(start, 0, t_idx)
        ch = Mux(start, 0, chan)
        issue = (start | reading) & self._advance
        offset, is_rest = self._tap(m, idx, count, c, "p")
        base = Mux(newest_base >= offset, newest_base - offset, newest_base + depth * c - offset)
        last = (idx == kernel - 1) & (ch == c - 1)
        m.d.comb += [vr.addr.eq(base + ch), vr.en.eq(issue), rr.addr.eq(ch), rr.en.eq(issue)]
        out_rest = Signal()
        with m.If(issue):
            m.d.sync += [
                out_rest.eq(is_rest),
                self.patch.payload.first.eq(start),
                self.patch.payload.last.eq(last),
                chan.eq(Mux(ch == c - 1, 0, ch + 1)),
                t_idx.eq(Mux(ch == c - 1, idx + 1, idx)),
                reading.eq(~last),
            ]
        with m.If(self._advance):
            m.d.sync += self.patch.valid.eq(issue)
        m.d.comb += self.patch.payload.value.eq(Mux(out_rest, rr.data, vr.data))


class _Port:
    """Address, data and enable of one side of a :class:`SinglePortRAM` (duck-typed like the
    :mod:`amaranth.lib.memory` port the write and read sides take)."""

    def __init__(self, depth: int, name: str, data: Value | None = None) -> None:
        self.addr = Signal(range(max(depth, 2)), name=f"{name}_addr")
        self.en = Signal(name=f"{name}_en")
        self.data = Signal(signed(ACT_WIDTH), name=f"{name}_data") if data is None else data
