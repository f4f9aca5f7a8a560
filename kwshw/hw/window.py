"""The input stage: the sliding window of feature frames, kept on chip.

The host sends one frame (``n_mels`` values, band order) per hop. The window holds the last
``span = (context - 1) * stride + 1`` frames in a circular buffer of ``span + 1`` frame slots:
the extra slot takes the next frame while an inference still reads the current window, so
the host link never waits for the accelerator except when a whole frame is already pending.

Layer 0's input vector is :func:`kwshw.golden.stream_windows`: ``context`` frames ``stride``
hops apart, oldest first; frames from before the last reset/``clear`` read as 0 (the
normalized mean). Nothing is erased on ``clear``: a frame counter says which slots are real.

Layer 0's ``XLO`` and ``R`` come cheaply: the min and max of every frame are stored as the
frame arrives, and only the ``context`` stored pairs are reduced when an inference starts (by
the accelerator's min-max tracker, to which they go out on ``fold``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH
from ..features import FeatureConfig
from .common import DISJOINT_PORTS, RegisteredRead, disjoint_read_port
from .minmax import pair_layout

__all__ = ["Window", "window_bits", "reduce_latency"]


def reduce_latency(features: FeatureConfig) -> int:
    """Cycles from ``take`` to ``mm_done`` of a :class:`Window`: one read per stacked frame,
    plus one to register the last read and one for the last fold."""
    return features.context + 2


def window_bits(features: FeatureConfig) -> int:
    """Memory bits of a :class:`Window`: ``span + 1`` frame slots and their min/max."""
    return (features.span + 1) * (features.n_mels + 2) * ACT_WIDTH


class Window(wiring.Component):
    """Circular buffer of feature frames with per-frame min/max and a window reduce.

    Parameters
    ----------
    features : FeatureConfig
        Gives ``n_mels``, ``context`` and ``stride``.

    Attributes
    ----------
    feat : stream, in
        Feature values, ``n_mels`` per frame in band order. Ready unless a complete frame is
        pending (not yet taken by the sequencer).
    frame_valid : Signal, out
        A complete frame is pending.
    take : Signal, in
        Pulse (with ``frame_valid``): make the pending frame the newest of the current window,
        accept the next frame, and start the min/max reduce over the window.
    fold : stream, out
        The stored min/max pairs of the frames of layer 0's input vector (zero frames before
        the reset as ``(0, 0)``; :func:`~kwshw.hw.minmax.pair_layout`, ``first`` with the
        first), one per cycle after ``take`` as they leave the memory, for a
        :class:`~kwshw.hw.minmax.MinMax` to fold: its ``xmin``/``xmax`` then are the
        vector's (the accelerator's tracker, idle while a frame is taken, so the window needs
        no comparators or min/max registers of its own).
    mm_done : Signal, out
        High from :attr:`reduce_latency` cycles after ``take``: from the cycle after a
        :class:`~kwshw.hw.minmax.MinMax` folded the last pair (two after its ``fold`` beat).
    rd_en, rd_first : Signal, in
        Read the next element of layer 0's input vector (``rd_first``: element 0; not before
        ``mm_done``, whose reduce leaves the registered first addresses time to settle).
    rd_data : Signal, out
        The element read in the previous cycle (:attr:`READ_LATENCY`).
    """

    #: Cycles from ``rd_en`` to ``rd_data``.
    READ_LATENCY = 1

    def __init__(self, features: FeatureConfig) -> None:
        self._bands, self._context, self._stride = features.n_mels, features.context, \
            features.stride
        self._features = features
        self._span = features.span
        self._slots = self._span + 1
        self._back = self._span - 1        # age of the window's oldest frame; < slots
        super().__init__({
            "feat": In(stream.Signature(signed(ACT_WIDTH))),
            "frame_valid": Out(1),
            "take": In(1),
            "mm_done": Out(1),
            "fold": Out(stream.Signature(pair_layout(), always_ready=True)),
            "rd_en": In(1),
            "rd_first": In(1),
            "rd_data": Out(signed(ACT_WIDTH)),
        })

    @property
    def reduce_latency(self) -> int:
        """Cycles from ``take`` to the first cycle with ``mm_done``."""
        return reduce_latency(self._features)

    @property
    def bits(self) -> int:
        """Memory bits: frame values plus per-frame min/max."""
        return window_bits(self._features)

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self._slots * self._bands
        mm_layout = data.StructLayout({"min": signed(ACT_WIDTH), "max": signed(ACT_WIDTH)})
        # Frames are written only to the slot outside the current window, and a frame's
        # min/max at least a cycle before the take that starts its reduce: no read whose word
        # is used collides with a write (between reduces the min/max port reads on, unused).
        m.submodules.frames = frames = memory.Memory(shape=signed(ACT_WIDTH), depth=depth,
                                                     init=[], attrs=DISJOINT_PORTS)
        m.submodules.frame_mm = frame_mm = memory.Memory(shape=mm_layout, depth=self._slots,
                                                         init=[], attrs=DISJOINT_PORTS)
        fw, fr = frames.write_port(), disjoint_read_port(m, frames, "frames_rd")
        mw, mr = frame_mm.write_port(), disjoint_read_port(m, frame_mm, "frame_mm_rd")
        count, first_slots = self._write_side(m, fw, mw)
        oldest, cur_count = self._take(m, first_slots[0], count)
        self._reduce(m, mr, first_slots, count, cur_count)
        self._read_vector(m, fr, oldest, cur_count)
        return m

    def _ring_back(self, slot: Value | int) -> Value | int:
        """The slot ``back`` frames before ``slot`` around the ring (the oldest frame of the
        window whose newest frame is at ``slot``)."""
        back, slots = self._back, self._slots
        if isinstance(slot, int):
            return (slot - back) % slots
        return Mux(slot >= back, slot - back, slot + (slots - back))

    def _ring_step(self, slot: Value | int) -> Value | int:
        """The slot ``stride`` frames after ``slot`` around the ring (the next stacked
        frame)."""
        stride, slots = self._stride, self._slots
        if isinstance(slot, int):
            return (slot + stride) % slots
        nxt = slot + stride
        return Mux(nxt >= slots, nxt - slots, nxt)

    def _write_side(self, m: Module, fw: memory.WritePort,
                    mw: memory.WritePort) -> tuple[Signal, tuple[Signal, Signal]]:
        """Frames arrive: store the values and the frame's min/max. Returns the count of real
        frames in the window (saturating at ``span``) and the first two stacked frames' slots
        of the window the pending frame completes, registered as it completes: so no ring
        arithmetic lies between the sequencer's ``take`` and a register (that chain set the
        ECP5 clock)."""
        bands, span, slots = self._bands, self._span, self._slots
        depth = slots * bands
        wr_addr = Signal(range(depth))
        wr_band = Signal(range(bands))
        wr_slot = Signal(range(slots))
        first = self._ring_back(0)
        first_slots = (Signal(range(slots), init=first, name="first_slot"),
                       Signal(range(slots), init=self._ring_step(first), name="second_slot"))
        # `wr_band == bands - 1`, a register: the compare behind `feat.valid`, into the enables
        # of the slot registers and `frame_valid`, was the iCEBreaker's longest path.
        last_band = Signal(init=bands == 1)
        count = Signal(range(span + 1))       # real frames in the window, saturating
        run_min = Signal(signed(ACT_WIDTH))
        run_max = Signal(signed(ACT_WIDTH))
        value = self.feat.payload
        new_min = Mux((wr_band == 0) | (value < run_min), value, run_min)
        new_max = Mux((wr_band == 0) | (value > run_max), value, run_max)
        m.d.comb += [
            self.feat.ready.eq(~self.frame_valid),
            fw.addr.eq(wr_addr), fw.data.eq(value),
            fw.en.eq(self.feat.valid & self.feat.ready),
            mw.addr.eq(wr_slot), mw.data.min.eq(new_min), mw.data.max.eq(new_max),
        ]
        with m.If(self.feat.valid & self.feat.ready):
            m.d.sync += [
                run_min.eq(new_min), run_max.eq(new_max),
                wr_addr.eq(Mux(wr_addr == depth - 1, 0, wr_addr + 1)),
                wr_band.eq(wr_band + 1),
                last_band.eq(wr_band == bands - 2),
            ]
            with m.If(last_band):
                m.d.comb += mw.en.eq(1)
                m.d.sync += [
                    wr_band.eq(0),
                    last_band.eq(bands == 1),
                    wr_slot.eq(Mux(wr_slot == slots - 1, 0, wr_slot + 1)),
                    first_slots[0].eq(self._ring_back(wr_slot)),
                    first_slots[1].eq(self._ring_step(self._ring_back(wr_slot))),
                    count.eq(Mux(count == span, span, count + 1)),
                    self.frame_valid.eq(1),
                ]
        return count, first_slots

    def _take(self, m: Module, oldest_pending: Signal,
              count: Signal) -> tuple[Signal, Signal]:
        """The current window, fixed at ``take``: returns its oldest slot and its count of
        real frames."""
        oldest = Signal(range(self._slots))
        cur_count = Signal.like(count)
        with m.If(self.take):
            m.d.sync += [self.frame_valid.eq(0), oldest.eq(oldest_pending), cur_count.eq(count)]
        return oldest, cur_count

    def _reduce(self, m: Module, mr: RegisteredRead, first_slots: tuple[Signal, Signal],
                count: Signal, cur_count: Signal) -> None:
        """Min/max reduce over the context frames of the window, started by ``take``."""
        context, stride, slots, back = self._context, self._stride, self._slots, self._back
        # The reduce's registers load every cycle, with no enable: an enable made of `take`
        # (the sequencer's state and `frame_valid`), the count and the domain's resets,
        # which an iCE40 flip-flop's enable gates, was the iCEBreaker's longest path. Between
        # reduces the slot and age step on unread; `take` loads them again.
        r_left = Signal(range(context + 1))
        r_slot = Signal(range(slots), reset_less=True)
        r_age = Signal(range(back + 1), reset_less=True)
        age = Mux(self.take, back, r_age)
        real = Mux(self.take, back < count, r_age < cur_count)
        issue = self.take | (r_left != 0)
        m.d.comb += mr.addr.eq(Mux(self.take, first_slots[0], r_slot))
        m.d.sync += [
            r_slot.eq(Mux(self.take, first_slots[1], self._ring_step(r_slot))),
            r_age.eq(age - stride),
            r_left.eq(Mux(self.take, context - 1, r_left - (r_left != 0))),
        ]
        # The pairs leave as read (the tracker registers them before its comparisons), and
        # the reduce is done the cycle after the tracker folded the last one.
        r_valid, r_first, r_real = Signal(), Signal(), Signal()
        m.d.sync += [r_valid.eq(issue), r_first.eq(self.take), r_real.eq(real)]
        m.d.comb += [self.fold.valid.eq(r_valid), self.fold.payload.first.eq(r_first),
                     # A frame from before the reset is the zero frame: it contributes 0.
                     self.fold.payload.min.eq(Mux(r_real, mr.data.min, 0)),
                     self.fold.payload.max.eq(Mux(r_real, mr.data.max, 0))]
        f_valid = Signal()
        m.d.sync += f_valid.eq(r_valid)
        with m.If(self.take):
            m.d.sync += self.mm_done.eq(0)
        with m.Elif(f_valid & ~r_valid):
            m.d.sync += self.mm_done.eq(1)

    def _read_vector(self, m: Module, fr: RegisteredRead, oldest: Signal,
                     cur_count: Signal) -> None:
        """Reading layer 0's input vector, element by element.

        Every read address comes from a register: the window's first address (``oldest`` times
        ``bands``, registered well before the first read), the next band's, and the next
        stacked frame's first address, which (with the one after it) is computed around the
        ring while the current frame's bands are read. So no ring arithmetic lies between
        the sequencer's ``rd_first`` and the memory's address (on iCE40 that chain of three
        carry chains limited the clock).
        """
        bands, stride, back = self._bands, self._stride, self._back
        depth = self._slots * bands

        def around(x: Value) -> Value:
            """The first address of the stacked frame after the one at ``x``. (Compared before
            adding: with ``x + step >= depth`` instead, Yosys 0.70's ABC9 flow for ECP5 fails an
            internal assertion on some builds, e.g. the reference network with 8 lanes.)"""
            step = stride * bands
            return Mux(x >= depth - step, x - (depth - step), x + step)

        first_addr = Signal(range(depth))      # of the window
        first_next = Signal(range(depth))      # of its second stacked frame
        next_frame = Signal(range(depth))      # of the stacked frame after the current one
        next_next = Signal(range(depth))       # and the one after that
        m.d.sync += [first_addr.eq(oldest * bands), first_next.eq(around(first_addr))]
        if bands >= 3:
            # next_frame changes at most every `bands` cycles: its successor is ready in time.
            m.d.sync += next_next.eq(around(next_frame))
        else:
            m.d.comb += next_next.eq(around(next_frame))
        p_addr = Signal(range(depth))          # the next element's address
        p_band = Signal(range(bands))
        p_age = Signal(range(back + 1))
        e_age = Mux(self.rd_first, back, p_age)
        m.d.comb += fr.addr.eq(Mux(self.rd_first, first_addr, p_addr))
        with m.If(self.rd_en):
            if bands == 1:
                # Every element is a stacked frame of its own: step around the ring.
                addr = Mux(self.rd_first, first_addr, p_addr)
                m.d.sync += [p_addr.eq(around(addr)), p_age.eq(e_age - stride)]
            else:
                with m.If(self.rd_first):
                    m.d.sync += [p_addr.eq(first_addr + 1), p_band.eq(1), p_age.eq(back),
                                 next_frame.eq(first_next)]
                with m.Elif(p_band == bands - 1):
                    # Skip the stride - 1 frames between two stacked frames, around the ring.
                    m.d.sync += [p_addr.eq(next_frame), p_band.eq(0), p_age.eq(p_age - stride),
                                 next_frame.eq(next_next)]
                with m.Else():
                    m.d.sync += [p_addr.eq(p_addr + 1), p_band.eq(p_band + 1)]
        e_real = Signal()
        m.d.sync += e_real.eq(e_age < cur_count)
        m.d.comb += self.rd_data.eq(Mux(e_real, fr.data, 0))
