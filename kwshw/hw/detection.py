"""The keyword detection rule on chip: integer softmax, smoothing, threshold and refractory
time on the accelerator's score stream, bit for bit :mod:`kwshw.detect_int`.

Everything is sequential, for area (the iCE40UP5K builds are nearly full): one shift-add
multiplier (no DSP), one shifter that moves one bit per cycle, one :class:`Divider` and one
block RAM. The RAM (``W = word_width(rule)`` bits) holds, one after the other:

- ``[0, 2^UF)``: the ROM ``POW2`` (:func:`kwshw.detect_int.exp_table`), never written;
- ``[ZB, ZB + n_out)``, ``ZB = 2^UF``: the current frame's scores, each overwritten by its
  ``e_j`` once computed;
- ``[HB, HB + n_kw (k + 1))``, ``HB = ZB + n_out``: per keyword class (class order) its last
  ``k`` posteriors (a ring, slot ``t mod k`` for frame ``t``) and its refractory counter
  (frames it must still wait).

With ``UF = 7`` a 12-class model with 10 keywords and ``k = 10`` needs 250 words: one 256 x 16
iCE40 block RAM. The smoothed sums are recomputed from the ring every frame (``k`` reads per
class), which costs cycles, of which a frame has plenty, instead of a register per class.

Per frame: the ``n_out`` scores are written to the RAM as they arrive, keeping the maximum;
then for every class ``j``: ``d_j``, clipped to ``d_end`` (same ``e``, shorter multiply),
times ``LOG2E`` (one multiplier bit per cycle), rounded to ``u`` (not clipped at ``U_END``:
every ``u`` from there gives ``e = 0``), the ROM read, the shift by ``floor(u / 2^UF)`` (one
bit per cycle) and the final rounding give ``e_j``, summed into ``S``; then for every keyword
class the division gives ``P_c``, which is written into the ring while the ring is summed,
the sum is compared with the class's ``T_INT_c`` and the refractory counter decides; a
detection is an event on :attr:`KeywordDetector.events`. :func:`frame_cycles` bounds the
cycles (766 for 12 classes, 10 keywords, ``k = 10``). ``docs/detection.md`` has the widths
and the resources (``bench/results/stages.json``: 686 iCE40 LUTs with a threshold per keyword
class, 647 with one for all, 258 flip-flops, one block RAM, no DSP).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH, rshift_round, unsigned_width
from ..detect_int import EXP_FRAC, LOG2E_WIDTH, IntDetectRule
from .common import rshift_round as hw_rshift_round
from .requant import Divider, divider_latency

__all__ = ["KeywordDetector", "event_layout", "word_width", "memory_depth", "frame_cycles"]


def event_layout(rule: IntDetectRule, frame_width: int) -> data.StructLayout:
    """A detection event: ``cls`` (class index), ``frame`` (frames since the last clear,
    modulo ``2^frame_width``) and ``sum`` (``SUM_c``, the smoothed posterior times ``k
    2^PF``)."""
    return data.StructLayout({
        "cls": unsigned(unsigned_width(rule.n_out - 1)),
        "frame": unsigned(frame_width),
        "sum": unsigned(unsigned_width(rule.sum_max)),
    })


def word_width(rule: IntDetectRule) -> int:
    """Bits of a RAM word: a score, a ROM word or ``e_j`` (``<= 2^EXP_FRAC``), a posterior
    (``<= 2^PF``) and a refractory counter (``<= refractory``)."""
    return max(ACT_WIDTH, EXP_FRAC + 1, rule.post_frac + 1, unsigned_width(rule.refractory))


def memory_depth(rule: IntDetectRule) -> int:
    """Words of the RAM: ROM, scores and per keyword class ``k`` posteriors and a counter."""
    return (1 << rule.exp_index) + rule.n_out + len(rule.keywords) * (rule.k + 1)


def frame_cycles(rule: IntDetectRule) -> int:
    """Upper bound of the cycles from a frame's last score to ``scores.ready`` again, when no
    event waits on ``events.ready``."""
    d_width = unsigned_width(rule.d_end)
    per_class = 5 + d_width + (_u_max(rule) >> rule.exp_index)
    per_keyword = 5 + divider_latency(rule.post_frac + 1, 1) + rule.k + 1
    return 2 + rule.n_out * (per_class + 1) + len(rule.keywords) * per_keyword


class KeywordDetector(wiring.Component):
    """:class:`kwshw.detect_int.IntStreamDetector` in gateware.

    Parameters
    ----------
    rule : IntDetectRule
        Classes, keyword classes, score format, threshold, smoothing, refractory time.
    hold : int
        Cycles :attr:`led` stays lit after a detection.
    frame_width : int
        Width of the frame counter in the events (it wraps).

    Attributes
    ----------
    scores : stream, in
        Scores (signed ``ACT_WIDTH``), ``n_out`` per frame in class order. Back-pressure: ready
        while a frame is being received; after a frame's last score it is low while the frame
        is processed (at most :func:`frame_cycles` cycles, plus the time any event waits for
        ``events.ready``) and while the history is cleared. A score is never dropped: a score
        transferred belongs to the current frame.
    clear : Signal, in
        Pulse: forget the partial frame (scores taken before the pulse; a score offered in the
        ``clear`` cycle is not taken, ``scores.ready`` is low then), the history and the
        refractory times; the next score taken is class 0 of frame 0. A frame whose last
        score was taken before the pulse is processed in full first, its events included
        (:meth:`kwshw.detect_int.IntStreamDetector.update` then ``clear``). Then the history
        is zeroed (``n_kw (k + 1)`` cycles, ``scores.ready`` low).
    events : stream, out
        One :func:`event_layout` per detection, in frame order and, within a frame, class
        order. While an event waits, processing (and so ``scores.ready``) waits.
    led : Signal, out
        Lit for ``hold`` cycles after the last detection.
    """

    def __init__(self, rule: IntDetectRule, *, hold: int = 1, frame_width: int = 16) -> None:
        if not isinstance(rule, IntDetectRule):
            raise TypeError(f"rule must be an IntDetectRule, got {type(rule).__name__}")
        if int(hold) != hold or hold < 1:
            raise ValueError(f"hold must be a positive number of cycles, got {hold!r}")
        if int(frame_width) != frame_width or not 1 <= frame_width <= 64:
            raise ValueError(f"frame_width must be 1..64, got {frame_width!r}")
        self.rule, self._hold, self._fw = rule, int(hold), int(frame_width)
        super().__init__({
            "scores": In(stream.Signature(signed(ACT_WIDTH))),
            "clear": In(1),
            "events": Out(stream.Signature(event_layout(rule, frame_width))),
            "led": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        r = _Regs(self.rule, self._fw)
        m.submodules.ram = ram = memory.Memory(
            shape=unsigned(word_width(self.rule)), depth=memory_depth(self.rule),
            init=[int(v) for v in self.rule.table])
        m.submodules.div = div = _divider(self.rule)
        rp, wp = ram.read_port(), ram.write_port()
        pend = Signal()                   # a clear waits for the frame in progress to end
        with m.If(self.clear):
            m.d.sync += pend.eq(1)
        want_clear = self.clear | pend
        with m.FSM(init="CLEAR") as fsm:
            self._clear_state(m, r, wp, pend)
            self._receive(m, r, wp, want_clear)
            self._exponentials(m, r, rp, wp)
            self._posterior(m, r, rp, div)
            self._decide(m, r, rp, wp, div.quotient)
            self._emit_and_advance(m, r, want_clear)
        m.d.comb += [
            self.scores.ready.eq(fsm.ongoing("RECV") & ~want_clear),
            self.events.valid.eq(fsm.ongoing("EMIT")),
            self.events.payload.cls.eq(r.j),
            self.events.payload.frame.eq(r.frame),
            self.events.payload.sum.eq(r.sum),
        ]
        self._led(m, r)
        return m

    def _led(self, m: Module, r: _Regs) -> None:
        hold = Signal(range(self._hold + 1))
        with m.If(r.fire):
            m.d.sync += hold.eq(self._hold)
        with m.Elif(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        m.d.comb += self.led.eq(hold != 0)

    def _clear_state(self, m: Module, r: _Regs, wp, pend: Signal) -> None:
        """Zero the rings and counters (after reset too: a reset leaves the RAM as it was)."""
        with m.State("CLEAR"):
            m.d.comb += [wp.addr.eq(r.ptr), wp.data.eq(0), wp.en.eq(1)]
            m.d.sync += [r.ptr.eq(r.ptr + 1), pend.eq(0), r.j.eq(0), r.frame.eq(0),
                         r.pos.eq(0), r.exp_sum.eq(0)]
            with m.If(r.ptr == r.hb + r.hist_words - 1):
                m.d.sync += r.ptr.eq(r.hb)
                m.next = "RECV"

    def _receive(self, m: Module, r: _Regs, wp, want_clear) -> None:
        """Store the scores as they arrive, keeping the maximum."""
        s = self.scores
        with m.State("RECV"):
            with m.If(s.valid & s.ready):
                m.d.comb += [wp.addr.eq(r.score_addr), wp.data.eq(s.payload), wp.en.eq(1)]
                with m.If((r.j == 0) | (s.payload > r.zmax)):
                    m.d.sync += r.zmax.eq(s.payload)
                m.d.sync += r.j.eq(r.j + 1)
                with m.If(r.j == self.rule.n_out - 1):
                    m.d.sync += r.j.eq(0)
                    m.next = "EXP_RD"
            _or_clear(m, want_clear)

    def _exponentials(self, m: Module, r: _Regs, rp, wp) -> None:
        """``e_j`` of every class into the RAM, in place of its score, and their sum ``S``."""
        rule = self.rule
        dw, uf = r.d_width, rule.exp_index
        # No clip at U_END: with d <= d_end, u stays within the shift counter, and every u
        # from U_END on gives e = 0 like U_END itself (tests/test_detect_int.py).
        u = hw_rshift_round(r.prod, rule.log2e_shift)
        with m.State("EXP_RD"):
            m.d.comb += rp.addr.eq(r.score_addr)
            m.next = "EXP_LOAD"
        with m.State("EXP_LOAD"):
            d = r.zmax - rp.data[:ACT_WIDTH].as_signed()       # >= 0: zmax is the maximum
            m.d.sync += [r.prod.eq(Mux(d > rule.d_end, rule.d_end, d)[:dw]), r.cnt.eq(dw - 1)]
            m.next = "MUL"
        with m.State("MUL"):
            # Shift-add, multiplier bits LSB first: the product's low bits replace d's.
            top = r.prod[dw:dw + LOG2E_WIDTH] + Mux(r.prod[0], rule.log2e, 0)
            m.d.sync += [r.prod.eq(Cat(r.prod[1:dw], top)), r.cnt.eq(r.cnt - 1)]
            with m.If(r.cnt == 0):
                m.next = "EXP_ROM"
        with m.State("EXP_ROM"):
            m.d.comb += rp.addr.eq(u[:uf])
            m.d.sync += r.cnt.eq(u[uf:])
            m.next = "EXP_POW"
        with m.State("EXP_POW"):
            m.d.sync += r.prod.eq(rp.data << 1)      # one guard bit for the final rounding
            m.next = "SHR"
        with m.State("SHR"):
            self._shift_out(m, r, wp)

    def _shift_out(self, m: Module, r: _Regs, wp) -> None:
        """``rshift_round(POW2[f], i)`` as ``((2 POW2[f] >> i) + 1) >> 1``, one bit a cycle."""
        with m.If(r.cnt != 0):
            m.d.sync += [r.prod.eq(r.prod >> 1), r.cnt.eq(r.cnt - 1)]
        with m.Else():
            e = (r.prod[:EXP_FRAC + 2] + 1) >> 1
            m.d.comb += [wp.addr.eq(r.score_addr), wp.data.eq(e), wp.en.eq(1)]
            m.d.sync += [r.exp_sum.eq(r.exp_sum + e), r.j.eq(r.j + 1)]
            with m.If(r.j == self.rule.n_out - 1):
                m.d.sync += r.j.eq(0)
                m.next = "DIV_RD"
            with m.Else():
                m.next = "EXP_RD"

    def _posterior(self, m: Module, r: _Regs, rp, div: Divider) -> None:
        """``P_c`` of a keyword class (the divider holds it); non-keyword classes are
        skipped."""
        rule = self.rule
        low = rule.post_frac + 1
        mask = Const(sum(1 << c for c in rule.keywords), rule.n_out)
        with m.State("DIV_RD"):
            m.d.comb += rp.addr.eq(r.score_addr)
            with m.If(mask.bit_select(r.j, 1)):
                m.next = "DIV_GO"
            with m.Else():
                _advance(m, r, rule)
        with m.State("DIV_GO"):
            e = rp.data[:EXP_FRAC + 1]
            # e 2^(PF + 1) + S: only S's bits from PF + 1 up need an adder.
            pad = Const(0, max(0, low - len(r.exp_sum)))
            m.d.comb += [div.start.eq(1),
                         div.numerator.eq(Cat(r.exp_sum[:low], pad, r.exp_sum[low:] + e)),
                         div.denominator.eq(r.exp_sum << 1)]
            m.next = "DIV_WAIT"
        with m.State("DIV_WAIT"):
            with m.If(div.done):
                m.d.sync += [r.sum.eq(0), r.slot.eq(0)]
                m.next = "HIST"

    def _decide(self, m: Module, r: _Regs, rp, wp, quotient) -> None:
        """Walk the class's ring (one read a cycle, the counter last), writing ``P_c`` into
        this frame's slot and summing, then threshold and refractory."""
        rule = self.rule
        at_pos = Signal()                    # the previous read was this frame's slot
        with m.State("HIST"):
            m.d.comb += rp.addr.eq(r.ptr)
            m.d.sync += [r.slot.eq(r.slot + 1), at_pos.eq(r.slot == r.pos)]
            with m.If(r.slot == r.pos):
                m.d.comb += [wp.addr.eq(r.ptr), wp.data.eq(quotient), wp.en.eq(1)]
            with m.If(r.slot != 0):
                # A read in the cycle of the slot's write gave the old value: use P_c.
                m.d.sync += r.sum.eq(r.sum + Mux(at_pos, quotient, rp.data))
            with m.If(r.slot == rule.k):
                m.next = "DECIDE"             # the read just issued is the counter: keep ptr
            with m.Else():
                m.d.sync += r.ptr.eq(r.ptr + 1)
        with m.State("DECIDE"):
            cool = rp.data
            m.d.comb += [r.fire.eq((r.sum >= self._t_int(m, r)) & (cool == 0)),
                         wp.addr.eq(r.ptr), wp.en.eq(1),
                         wp.data.eq(Mux(r.fire, rule.refractory, Mux(cool == 0, 0, cool - 1)))]
            m.d.sync += r.ptr.eq(r.ptr + 1)   # the next keyword class's ring
            with m.If(r.fire):
                m.next = "EMIT"
            with m.Else():
                _advance(m, r, rule)

    def _t_int(self, m: Module, r: _Regs):
        """``T_INT_c`` of the class ``r.j``: a constant when the classes share it, else a
        table of the keyword classes' (a few LUTs: ``j`` has at most a handful of bits)."""
        rule = self.rule
        if len(set(rule.t_ints)) == 1:
            return Const(rule.t_ints[0], unsigned_width(rule.sum_max + 1))
        t_int = Signal(unsigned_width(rule.sum_max + 1))
        with m.Switch(r.j):
            for c, t in zip(rule.keywords, rule.t_ints, strict=True):
                with m.Case(c):
                    m.d.comb += t_int.eq(t)
        return t_int

    def _emit_and_advance(self, m: Module, r: _Regs, want_clear) -> None:
        with m.State("EMIT"):
            with m.If(self.events.ready):
                _advance(m, r, self.rule)
        with m.State("END"):
            m.d.sync += [r.frame.eq(r.frame + 1), r.exp_sum.eq(0), r.ptr.eq(r.hb),
                         r.pos.eq(Mux(r.pos == self.rule.k - 1, 0, r.pos + 1))]
            m.next = "RECV"
            _or_clear(m, want_clear)


class _Regs:
    """The detector's registers and constant addresses."""

    def __init__(self, rule: IntDetectRule, frame_width: int) -> None:
        depth = memory_depth(rule)
        self.zb = 1 << rule.exp_index
        self.hb = self.zb + rule.n_out
        self.hist_words = len(rule.keywords) * (rule.k + 1)
        self.d_width = unsigned_width(rule.d_end)
        self.j = Signal(range(max(rule.n_out, 2)))           # class
        # ZB is a power of two: with n_out <= ZB its address needs no adder.
        self.score_addr = self.j | self.zb if rule.n_out <= self.zb else self.j + self.zb
        self.zmax = Signal(signed(ACT_WIDTH))
        # Multiplier (d, then the product d LOG2E), then the shifted ROM word.
        self.prod = Signal(max(self.d_width + LOG2E_WIDTH, EXP_FRAC + 2))
        self.cnt = Signal(range(max(self.d_width, (_u_max(rule) >> rule.exp_index) + 1)))
        self.exp_sum = Signal(unsigned_width(rule.exp_sum_max))
        self.ptr = Signal(range(depth), init=self.hb)        # walks the rings
        self.slot = Signal(range(rule.k + 1))                # ring slot being read
        self.pos = Signal(range(max(rule.k, 2)))             # ring slot of this frame
        self.sum = Signal(unsigned_width(rule.sum_max))
        self.frame = Signal(frame_width)
        self.fire = Signal()                                 # this class fires (DECIDE only)


def _u_max(rule: IntDetectRule) -> int:
    """Largest ``u`` the hardware computes (from ``d = d_end``; at least ``U_END``)."""
    return rshift_round(rule.d_end * rule.log2e, rule.log2e_shift)


def _divider(rule: IntDetectRule) -> Divider:
    """``P = floor((e 2^(PF + 1) + S) / (2 S))``, one quotient bit per cycle (area first)."""
    pf = rule.post_frac
    num_max = ((1 << EXP_FRAC) << (pf + 1)) + rule.exp_sum_max
    return Divider(unsigned_width(num_max), unsigned_width(2 * rule.exp_sum_max), pf + 1,
                   radix_bits=1)


def _advance(m: Module, r: _Regs, rule: IntDetectRule) -> None:
    """On to the next class's posterior, or to the end of the frame after the last."""
    m.d.sync += r.j.eq(r.j + 1)
    with m.If(r.j == rule.n_out - 1):
        m.d.sync += r.j.eq(0)
        m.next = "END"
    with m.Else():
        m.next = "DIV_RD"


def _or_clear(m: Module, want_clear) -> None:
    """Leave for the clear state (the last ``m.next`` of a state wins)."""
    with m.If(want_clear):
        m.next = "CLEAR"
