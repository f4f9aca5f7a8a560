"""The score buffer: a frame's last-layer outputs waiting for the host.

:class:`ScoreBuffer` is :class:`amaranth.lib.fifo.SyncFIFOBuffered` with the same schedule (a
storage memory of ``depth - 1`` words read synchronously, then an output register), built so
that its storage's read needs no collision logic. A FIFO only reads a word written in an
earlier cycle: the read and write addresses are equal only when it is empty (nothing is read)
or full (nothing is written). ``SyncFIFOBuffered``'s read port cannot say so, and Yosys
emulated its old-data-on-collision semantics on iCE40 block RAM with a delayed write and a
bypass: 37 flip-flops of logic cells of their own on the iCEBreaker CNN reference. Here the
storage is read through :func:`~kwshw.hw.common.disjoint_read_port`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ShapeLike, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .common import DISJOINT_PORTS, disjoint_read_port

__all__ = ["ScoreBuffer"]


def _wrap(addr: Signal, depth: int) -> Value:
    """``addr + 1`` modulo ``depth``."""
    return Mux(addr == depth - 1, 0, addr + 1)


class ScoreBuffer(wiring.Component):
    """A first-in first-out buffer of ``depth`` values (``depth >= 2``).

    Parameters
    ----------
    shape : shape-like
        Shape of a value.
    depth : int
        Values it holds: ``depth - 1`` in its storage memory, one in its output register.

    Attributes
    ----------
    w_stream : stream, in
        Values to store; ``ready`` while not full.
    r_stream : stream, out
        The oldest value; it leaves with the transfer.
    level : Signal, out
        Values held.
    empty : Signal, out
        ``level == 0``, without the adder that makes ``level`` (the accelerator's sequencer
        waits on it, and the adder and compare in front of its state were an iCE40 critical
        path).
    """

    def __init__(self, shape: ShapeLike, depth: int) -> None:
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self._shape, self._depth = shape, depth
        super().__init__({
            "w_stream": In(stream.Signature(shape)),
            "r_stream": Out(stream.Signature(shape)),
            "level": Out(range(depth + 1)),
            "empty": Out(1),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        inner = self._depth - 1
        m.submodules.storage = storage = memory.Memory(shape=self._shape, depth=inner,
                                                       init=[], attrs=DISJOINT_PORTS)
        wr = storage.write_port()
        rd = disjoint_read_port(m, storage, "storage_rd")
        produce = Signal(range(inner))
        consume = Signal(range(inner))
        stored = Signal(range(inner + 1))
        out_full = self.r_stream.valid

        write = self.w_stream.valid & self.w_stream.ready
        # Refill the output register from the storage when it is empty or being read.
        refill = (stored != 0) & (~out_full | self.r_stream.ready)
        m.d.comb += [
            self.w_stream.ready.eq(stored != inner),
            wr.addr.eq(produce),
            wr.data.eq(self.w_stream.payload),
            wr.en.eq(write),
            rd.addr.eq(consume),
            rd.en.eq(refill),
            self.r_stream.payload.eq(rd.data),
            self.level.eq(stored + out_full),
            self.empty.eq((stored == 0) & ~out_full),
        ]
        with m.If(write):
            m.d.sync += produce.eq(_wrap(produce, inner))
        with m.If(refill):
            m.d.sync += [consume.eq(_wrap(consume, inner)), out_full.eq(1)]
        with m.Elif(self.r_stream.ready):
            m.d.sync += out_full.eq(0)
        with m.If(write & ~refill):
            m.d.sync += stored.eq(stored + 1)
        with m.If(refill & ~write):
            m.d.sync += stored.eq(stored - 1)
        return m
