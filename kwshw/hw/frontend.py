"""The integer audio front end in gateware: int16 PCM in, the accelerator's input frames out.

Bit-exact with :class:`kwshw.features_int.IntFrontEndStream` (``docs/arithmetic.md`` section
11 defines every stage; ``docs/frontend-gateware.md`` describes this implementation). It is
built for area, not speed: one hop of a 16 kHz stream leaves about 120,000 cycles at 12 MHz,
and a sequential datapath needs about half of them. So:

- the samples wait in a ring in block RAM (``max(win_length, hop_length) + hop_length`` of
  them, so one hop can arrive while the previous frame is being computed);
- every product of the front end (window, twiddles, power, mel weights, log interpolation,
  smoothing, normalization) goes through ONE signed ``16 x 16`` multiplier (one iCE40
  ``SB_MAC16``), :class:`MulAcc`, which takes 16-bit chunks straight from its sources
  (memory outputs, registers) and sums the partial products in Horner form (``acc = (acc <<
  15) + ...`` between diagonals): the result is the exact wide sum that the golden model
  rounds, the rounding half is ORed in on the way, and the mel sums and the log's terms
  are accumulated there too, so the front end has few wide adders;
- the FFT runs in place in one memory of ``n_fft`` complex words, one butterfly at a time;
  the power spectrum overwrites bins ``0 .. n_fft / 2`` of it (block RAM, or on iCE40
  UltraPlus SPRAM: four blocks, or one block a 16-bit piece per cycle with the front end
  stalled meanwhile, see :data:`WORK_MEMORIES`);
- mel, log, smoothing and normalization run band by band, and each band's code is sent
  on ``feat`` as soon as it is known.

Every width comes from :attr:`IntFrontEnd.bounds` and every ROM from the golden model's
arrays; nothing is hard-coded, so a change of the golden model's constants changes the
gateware with it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import (
    Cat,
    Const,
    EnableInserter,
    Module,
    Mux,
    ResetInserter,
    Shape,
    Signal,
    Value,
    signed,
    unsigned,
)
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_MAX, ACT_MIN, ACT_WIDTH, unsigned_width
from ..features_int import (
    _PCM_POWER_SHIFT,
    DATA_FRAC,
    LOG_FRAC,
    LOG_INDEX,
    LOG_INTERP,
    LOG_TABLE_FRAC,
    MEL_FRAC,
    PCM_MAX,
    PCM_MIN,
    POWER_FRAC,
    SMOOTH_FRAC,
    TWIDDLE_FRAC,
    WINDOW_FRAC,
    Bound,
    IntFrontEnd,
)
from .common import DISJOINT_PORTS, disjoint_read_port
from .memories import SerialRAM, SinglePortRAM, bram_blocks, serial_ram_depth

__all__ = [
    "MUL_WIDTH",
    "CHUNK",
    "MulOp",
    "MulAcc",
    "Phase",
    "FrontEnd",
    "WORK_MEMORIES",
    "n_chunks",
]

#: Operand width of the shared signed multiplier: an iCE40 ``SB_MAC16`` is 16 x 16.
MUL_WIDTH = 16
#: Bits of the unsigned low chunks of a wide operand (the top chunk is signed, 16 bits).
CHUNK = MUL_WIDTH - 1
#: Width of the per-band constant words (an iCE40 block RAM is at most 16 bits wide).
_WORD = 16
#: Cycles from issuing a partial product to the accumulator holding it (chunk registers,
#: product register, accumulator): a result is valid ``steps + 2`` cycles after ``start``.
_PIPE = 3


def n_chunks(width: int) -> int:
    """Chunks of a ``width``-bit signed operand: 15-bit unsigned ones and a signed 16-bit top."""
    return 1 if width <= MUL_WIDTH else 1 + -(-(width - MUL_WIDTH) // CHUNK)


def _swidth(b: Bound) -> int:
    """Bits of a signed register holding ``b`` (unsigned ranges get a zero sign bit)."""
    return b.width if b.signed else b.width + 1


def _span(values) -> Bound:
    a = np.asarray(values, dtype=np.int64)
    return Bound(min(int(a.min()), 0), max(int(a.max()), 0))


@dataclass(frozen=True)
class MulOp:
    """One exact sum of products, ``sum_t +-X[x_t] Y[y_t]``, and its rounding.

    Attributes
    ----------
    name : str
        For the schedule and error messages.
    terms : tuple of (int, int, bool) or (int, int, bool, int, int)
        ``(x, y, subtract)``: which ``X`` and ``Y`` source, and the term's sign; optionally
        the term's own chunk counts (else the op's).
    x_chunks, y_chunks : int
        :func:`n_chunks` of the operands' derived signed widths.
    shift : int
        The result is rounded by ``shift`` bits (its half is added, see :meth:`round_bit`).
    """

    name: str
    terms: tuple[tuple, ...]
    x_chunks: int
    y_chunks: int
    shift: int = 0

    def _chunks(self, term: tuple) -> tuple[int, int]:
        return (term[3], term[4]) if len(term) > 3 else (self.x_chunks, self.y_chunks)

    def _top(self) -> int:
        """The highest diagonal ``i + j``."""
        return max(xc + yc - 2 for xc, yc in map(self._chunks, self.terms))

    def round_bit(self) -> tuple[int, int] | None:
        """``(diagonal, bit)``: where the rounding half ``2^(shift - 1)`` enters the sum. It is
        set at the start of a diagonal, whose low :data:`CHUNK` bits are still zero after the
        Horner shift (or anywhere in the first step), so it costs an OR, not an adder."""
        if self.shift <= 0:
            return None
        d = min(self._top(), (self.shift - 1) // CHUNK)
        return d, self.shift - 1 - CHUNK * d

    def steps(self) -> list[dict]:
        """The partial products in Horner order: diagonals ``i + j`` from the top down, the
        accumulator shifted left by :data:`CHUNK` bits before each diagonal but the first;
        ``rnd`` is the bit of the rounding half (-1: none) added by the step."""
        out = []
        top = self._top()
        rb = self.round_bit()
        for d in range(top, -1, -1):
            new_diag = True
            for term in self.terms:
                (x, y, sub), (xc, yc) = term[:3], self._chunks(term)
                for i in range(xc):
                    j = d - i
                    if not 0 <= j < yc:
                        continue
                    rnd = rb[1] if new_diag and rb is not None and rb[0] == d else -1
                    out.append({"x": x, "y": y, "i": i, "j": j, "sub": sub, "rnd": rnd,
                                "ti": i == xc - 1, "tj": j == yc - 1,
                                "first": not out, "shift": new_diag and d != top})
                    new_diag = False
        return out

    @property
    def n_steps(self) -> int:
        """Partial products (cycles of the multiplier) of one evaluation."""
        return len(self.steps())


@dataclass(frozen=True)
class _MulSteps:
    """Some partial products of a :class:`MulOp` issued as a program of their own, so that a
    caller can interleave several sums' partials by diagonal (the mel sum of a band is
    accumulated diagonal by diagonal over its bins). ``start``: this diagonal's first
    partials (the op's first or a Horner shift, and its rounding half)."""

    op: MulOp
    diagonal: int
    start: bool

    def steps(self) -> list[dict]:
        steps = [st for st in self.op.steps() if st["i"] + st["j"] == self.diagonal]
        if not self.start:
            steps[0] = {**steps[0], "first": False, "shift": False, "rnd": -1}
        return steps


class MulAcc(wiring.Component):
    """The shared multiplier: exact wide sums of products through one ``16 x 16`` multiplier.

    A *program* is a list of :class:`MulOp`; ``start`` runs one, issuing one partial product
    per cycle. The operands are *sources*, ``x0, x1, ...`` and ``y0, y1, ...`` (signed): the
    multiplier takes its 16-bit chunks straight from them, so they must hold still from
    ``start`` until its last partial product is issued (memory outputs at a held address,
    registers).
    Each op's exact result plus its rounding half ``2^(shift - 1)`` appears in ``acc`` with a
    one-cycle ``res_valid`` strobe and ``res_tag`` = the op's index in its program:
    ``acc >> shift`` is the golden model's ``rshift_round(sum, shift)``. A subtracted term
    negates its ``Y`` chunks: its ``Y`` source must leave the top chunk one bit of headroom
    (``y_chunks = n_chunks(width + 1)``) so that no chunk is ``-2^15``.

    Parameters
    ----------
    programs : list of list of MulOp
        Indexed by ``prog``; a term ``(x, y, subtract)`` names sources ``x`` and ``y``. (Any
        object with the ``steps()`` of a :class:`MulOp` will do: the front end issues a mel
        sum a diagonal at a time.)
    x_widths, y_widths : list of int
        Signed widths of the sources (the caller derives them from the values' bounds).
    acc_width : int
        Signed width of the accumulator (from the bounds of the results).

    Attributes
    ----------
    start : Signal, in
        Pulse: run program ``prog`` (its first partial product is issued in this cycle).
    prog : Signal, in
    x0, x1, ..., y0, y1, ... : Signal, in
    acc : Signal, out
    res_valid : Signal, out
    res_tag : Signal, out
    """

    def __init__(self, programs: list[list[MulOp]], x_widths: list[int], y_widths: list[int],
                 acc_width: int) -> None:
        self._programs = programs
        self._steps, self._entry = self._flat()
        # The distinct chunks the steps take, per operand side: (source, chunk, top).
        self._xcand = sorted({(st["x"], st["i"], st["ti"]) for st in self._steps})
        self._ycand = sorted({(st["y"], st["j"], st["tj"]) for st in self._steps})
        self._rnd = sorted({st["rnd"] for st in self._steps if st["rnd"] >= 0})
        tags = max(len(p) for p in programs)
        super().__init__({
            "start": In(1),
            "prog": In(range(max(len(programs), 2))),
            **{f"x{k}": In(signed(w)) for k, w in enumerate(x_widths)},
            **{f"y{k}": In(signed(w)) for k, w in enumerate(y_widths)},
            "acc": Out(signed(acc_width)),
            "res_valid": Out(1),
            "res_tag": Out(range(max(tags, 2))),
        })

    def _flat(self) -> tuple[list[dict], list[int]]:
        """All programs' steps back to back, with ``last``/``tag``/``end``; each entry point."""
        steps, entry = [], []
        for prog in self._programs:
            entry.append(len(steps))
            for tag, op in enumerate(prog):
                s = op.steps()
                s[-1] = {**s[-1], "last": True}
                steps += [{"last": False, **st, "tag": tag, "end": False} for st in s]
            steps[-1]["end"] = True
        return steps, entry

    def elaborate(self, platform) -> Module:
        m = Module()
        steps, entry = self._steps, self._entry
        ctl = data.StructLayout({"valid": 1, "first": 1, "shift": 1, "sub": 1, "last": 1,
                                 "tag": len(self.res_tag), "rnd": range(len(self._rnd) + 1)})
        pc, run = Signal(range(len(steps))), Signal()
        cur = Signal(range(len(steps)))
        with m.Switch(self.prog):
            for p, e in enumerate(entry):
                with m.Case(p):
                    m.d.comb += pc.eq(Mux(self.start, e, cur))
        issue = self.start | run
        sel = Signal(data.StructLayout({"xc": range(max(len(self._xcand), 2)),
                                        "yc": range(max(len(self._ycand), 2)), "end": 1}))
        c0 = Signal(ctl)
        with m.Switch(pc):
            for k, st in enumerate(steps):
                with m.Case(k):
                    m.d.comb += [sel.xc.eq(self._xcand.index((st["x"], st["i"], st["ti"]))),
                                 sel.yc.eq(self._ycand.index((st["y"], st["j"], st["tj"]))),
                                 sel.end.eq(st["end"])]
                    m.d.comb += [getattr(c0, f).eq(st[f]) for f in
                                 ("first", "shift", "sub", "last", "tag")]
                    if st["rnd"] >= 0:
                        m.d.comb += c0.rnd.eq(self._rnd.index(st["rnd"]) + 1)
        m.d.comb += c0.valid.eq(issue)
        with m.If(issue):
            m.d.sync += [cur.eq(pc + 1), run.eq(~sel.end)]
        self._datapath(m, sel, c0)
        return m

    def _chunk(self, m: Module, side: str, cands: list[tuple[int, int, bool]],
               index: Value) -> Signal:
        """The chunk ``cands[index]`` of the sources: 15 bits, plus the sign bit when it is
        the top one (sources are sign-extended as far as their top chunk reaches)."""
        out = Signal(signed(MUL_WIDTH))
        with m.Switch(index):
            for c, (src, i, top) in enumerate(cands):
                port = getattr(self, f"{side}{src}")
                ext = Signal(signed(max(len(port), CHUNK * i + MUL_WIDTH)))
                m.d.comb += ext.eq(port)
                with m.Case(c):
                    sign = ext[CHUNK * i + CHUNK] if top else Const(0, 1)
                    m.d.comb += out.eq(Cat(ext[CHUNK * i:CHUNK * i + CHUNK], sign))
        return out

    def _datapath(self, m: Module, sel, c0) -> None:
        """Operand chunks -> registered ``16 x 16`` product -> Horner accumulator."""
        a = self._chunk(m, "x", self._xcand, sel.xc)
        b = self._chunk(m, "y", self._ycand, sel.yc)
        # A subtracted term negates its 16-bit Y chunk (never -2^15, see the class), so the
        # accumulator needs one adder, not an adder, a subtractor and a multiplexer.
        b = Mux(c0.sub, -b, b)
        pa, pb = Signal(signed(MUL_WIDTH)), Signal(signed(MUL_WIDTH))
        prod = Signal(signed(2 * MUL_WIDTH))
        c1, c2 = Signal.like(c0), Signal.like(c0)
        m.d.sync += [pa.eq(a), pb.eq(b), c1.eq(c0), prod.eq(pa * pb), c2.eq(c1)]
        acc = self.acc
        half = Signal.like(acc)         # one-hot: bits that are zero in `base` when set
        with m.Switch(c2.rnd):
            for k, bit in enumerate(self._rnd):
                with m.Case(k + 1):
                    m.d.comb += half.eq(1 << bit)
        base = Mux(c2.first, 0, Mux(c2.shift, acc << CHUNK, acc)) | half
        with m.If(c2.valid):
            m.d.sync += acc.eq(base + prod)
        m.d.sync += [self.res_valid.eq(c2.valid & c2.last), self.res_tag.eq(c2.tag)]


class Phase(enum.IntEnum):
    """What :class:`FrontEnd` is computing (its ``phase`` output, for tests and debugging)."""

    IDLE = 0
    WINDOW = 1
    FFT = 2
    POWER = 3
    BANDS = 4


# Programs of the shared multiplier, by index; the mel sum's come last, two per diagonal
# (starting the diagonal or not, see FrontEnd._mel).
_P_WIN, _P_BFLY, _P_POW, _P_LOG, _P_SMOOTH, _P_NORM, _P_MEL = range(7)
# Its sources (FrontEnd._multiplier): the sample, b (or bin k) re and im, the power P[k],
# T[i+1] - T[i], the smoothing sum, Ls - MU; W[n], the twiddle, bin k re and im, the mel
# weight, the interpolation fraction, R[n], the gain G.
_X_RING, _X_RE, _X_IM, _X_P, _X_DIFF, _X_SUM, _X_NORM, _X_T0, _X_EXP = range(9)
_Y_WIN, _Y_C, _Y_S, _Y_RE, _Y_IM, _Y_H, _Y_FRAC, _Y_RECIP, _Y_GAIN, _Y_SCALE, _Y_LN2 = range(11)


def _e0() -> int:
    """The log's exponent offset: energies are in ``2^-(30 + POWER_FRAC)`` of the float front
    end's (read when called: the constants are the golden model's)."""
    return _PCM_POWER_SHIFT + POWER_FRAC


@dataclass
class _Port:
    """A memory port's signals, for the work memory built from SPRAM columns."""

    addr: Signal
    data: data.View
    en: Signal | None


#: ROMs built in logic (Yosys attributes): the smoothing's reciprocals are ``smooth`` words
#: (5 for the default configuration), a few LUTs against a block RAM of their own (Yosys
#: chooses logic for them anyway; the attribute makes it what the fit check counts on).
_LOGIC_ROMS = {"recip": {"rom_style": "logic"}}

#: ROMs read in disjoint phases that share one memory when it takes fewer block RAMs than
#: two (:meth:`FrontEnd._shared_tables`): the log table at address 0 (``2^LOG_INDEX``
#: words), the window after it. The default configuration's 256 x 24 and 201 x 21 bits take
#: 2 iCE40 block RAMs each (256 x 16 words), together 3 (512 x 8), for an address
#: multiplexer; on ECP5 one block instead of two.
_SHARED = ("log", "window")

#: Where the FFT work memory lives: block RAM; four iCE40 UltraPlus SPRAM blocks, a 16-bit
#: column of the word each; or one SPRAM block holding a word's 16-bit pieces one after the
#: other (:class:`~kwshw.hw.memories.SerialRAM`), the front end frozen while it reads or
#: writes them (:meth:`FrontEnd.schedule` counts those cycles).
WORK_MEMORIES = ("bram", "spram", "spram-serial")

#: The buffers of a ``"spram-serial"`` front end's one SPRAM block, as
#: :class:`~kwshw.hw.memories.SerialRAM` memories.
_SERIAL = {"work": 0, "ring": 1, "hist": 2}


@dataclass
class _Regs:
    """The front end's shared registers (created by :meth:`FrontEnd._registers`)."""

    n: Signal          # window: sample index
    raddr: Signal      # window: ring address of sample n
    stg: Signal        # FFT: stage (half = 2^stg)
    j: Signal          # FFT: butterfly in the stage
    a_re: Signal
    a_im: Signal
    t_re: Signal
    k: Signal          # power, mel: bin
    band: Signal
    hidx: Signal       # mel: index into the packed weights
    left: Signal       # mel: bins left in the band
    md: Signal         # mel: diagonal (from the top) of the band's Horner sum
    hbase: Signal      # mel: the band's first weight
    nrm: Signal        # log: normalized energy
    pexp: Signal       # log: p - 30 - POWER_FRAC, p the leading one's position
    t0: Signal
    lmel: Signal
    ssum: Signal
    sj: Signal         # smoothing: age of the history frame read
    code: Signal
    bconst: data.View  # the band's record: first bin, bin count, mean, gain
    lw: Signal         # word of the band's record being read; the mel sum's wait
    nprev: Signal      # frames in the smoothing history (saturating at smooth - 1)
    slot: Signal       # history slot of the current frame


class FrontEnd(wiring.Component):
    """Int16 PCM in, the accelerator's input codes out: :class:`IntFrontEndStream` in gateware.

    Parameters
    ----------
    fe : IntFrontEnd
        The golden model, built with a normalizer (the output is the accelerator's input
        format, ``in_frac`` fraction bits, saturated to ``ACT_WIDTH`` bits).
    work_memory : {"bram", "spram", "spram-serial"}, default "bram"
        The FFT work memory (``n_fft`` words of two FFT values): a
        :class:`~amaranth.lib.memory.Memory`; 16-bit
        :class:`~kwshw.hw.memories.SinglePortRAM` columns, which are iCE40 UltraPlus SPRAM
        blocks on an iCE40 platform (4 for the default configuration; 8 block RAMs fewer);
        or one such block, a word's 16-bit pieces read and written one per cycle while the
        front end waits (:class:`~kwshw.hw.memories.SerialRAM`; about 43,000 cycles more
        per hop for the default configuration, see :meth:`schedule`).

    Attributes
    ----------
    pcm : stream, in
        One signed 16-bit sample per beat. Ready while the sample ring has room: always, if
        the source delivers at most ``hop_length`` samples per :meth:`cycles_per_hop` cycles
        (plus any cycles ``feat`` is held back by its consumer), but not during the stalls
        of a serial work memory (``"spram-serial"``, a few cycles each).
    feat : stream, out
        ``n_mels`` codes per frame in band order, frame ``t`` of the golden stream (samples
        ``t hop .. t hop + win - 1``); computed once ``max(win, hop)`` samples past the frame's
        start have arrived. Back-pressure stalls the computation, never loses a value.
    clear : Signal, in
        Pulse: restart as after reset (empty ring, empty smoothing history, any frame being
        computed or sent is dropped), i.e. the golden stream restarted from scratch.
    busy : Signal, out
        A frame is being computed or sent.
    phase : Signal, out
        The :class:`Phase` being computed.
    """

    def __init__(self, fe: IntFrontEnd, work_memory: str = "bram") -> None:
        _check_front_end(fe)
        if work_memory not in WORK_MEMORIES:
            raise ValueError(f"FrontEnd: work_memory must be one of {WORK_MEMORIES}, got "
                             f"{work_memory!r}")
        self.fe, self.work_memory = fe, work_memory
        cfg = fe.cfg
        self._n, self._win, self._hop, self._bands = (cfg.n_fft, cfg.win_length,
                                                      cfg.hop_length, cfg.n_mels)
        self._stages = cfg.n_fft.bit_length() - 1
        self._trig = max(self._win, self._hop)
        self._depth = self._trig + self._hop
        self._hist_slots = 1 << max(cfg.smooth - 1, 0).bit_length()
        self._w = _derive_widths(fe)
        self._word = data.StructLayout({"re": signed(self._w["data"]),
                                        "im": signed(self._w["data"])})
        self._pieces = -(-self._word.size // _WORD)     # of a serial work memory's word
        self._layouts()
        self._ops = _ops(self._w, fe.norm_shift)
        mel = self._ops["mel"]
        if mel.y_chunks > 2:    # at most 2 partials per diagonal: MEL_RD covers the second
            raise ValueError(f"FrontEnd: mel weights of {self._w['weight']} bits are wider "
                             f"than the multiplier's two chunks")
        self._mel_top = mel.x_chunks + mel.y_chunks - 2
        # cycles from the last MEL_RUN to the sum in the accumulator, less one
        self._mel_wait = _PIPE - 1 + mel.y_chunks - 1
        super().__init__({
            "pcm": In(stream.Signature(signed(16))),
            "feat": Out(stream.Signature(signed(ACT_WIDTH))),
            "clear": In(1),
            "busy": Out(1),
            "phase": Out(range(len(Phase))),
        })
        #: The FFT work memory (complex words; bins ``0 .. n_fft / 2`` hold the power after
        #: :attr:`Phase.POWER`), set when elaborated (block RAM only), so that tests can
        #: inspect it.
        self.work: memory.Memory | None = None

    def _layouts(self) -> None:
        """The per-band record and the window ROM."""
        fe = self.fe
        # Per-band constants as one record of 16-bit words in one block RAM (as small ROMs
        # in logic they cost about 250 iCE40 LUTs).
        self._band_layout = data.StructLayout({
            "lo": range(self._n // 2 + 1), "cnt": range(self._n // 2 + 2),
            "mu": signed(self._w["mu"]), "g": unsigned(self._w["gain"])})
        words = -(-self._band_layout.size // _WORD)
        self._band_words = 1 << (words - 1).bit_length()
        # The periodic Hann window is symmetric, W[n] = W[win - n]: half a ROM suffices (for
        # the default window 201 words instead of 400, two iCE40 block RAMs instead of three).
        w = fe.window
        self._mirror = bool(np.array_equal(w[1:], w[1:][::-1]))
        self._window_rom = w[:self._win // 2 + 1] if self._mirror else w

    # --- the schedule --------------------------------------------------------------------

    def schedule(self) -> dict[str, int]:
        """Worst-case cycles per frame of each stage (``feat`` always ready): the log's
        normalization is longest for an energy of 0 or 1, the smoothing for a full history."""
        s = {name: op.n_steps for name, op in self._ops.items()}
        n, bands, w = self._n, self._bands, self._w
        run = 3                     # start + the multiplier's pipeline (see MulAcc)
        nnz = int((self.fe.mel_hi - self.fe.mel_lo).sum())
        sched = {
            "window": self._win * (1 + s["window"] + run) + (n - self._win),
            "fft": self._stages * (n // 2) * (2 + s["twiddle_re"] + s["twiddle_im"] + run + 1),
            "power": (n // 2 + 1) * (1 + s["power"] + run),
            "mel": bands * (self._band_words + 2 + self._mel_wait)
            + nnz * 2 * (self._mel_top + 1),
            "log": bands * (1 + w["norm"] + 1 + s["log"] + run),
            "smooth": bands * (1 + 2 * (self.fe.cfg.smooth - 1) + s["smooth"] + run),
            "normalize": bands * (s["norm"] + run + 1),
        }
        if self.work_memory == "spram-serial":
            # A read holds the front end `pieces` cycles, a write `pieces - 1`: the window
            # reads win_length samples and writes n_fft words, a butterfly reads and writes
            # two, a bin of the power one each, the mel sum reads a bin per diagonal of
            # each of its products, the smoothing writes a band's value to the history and
            # reads up to smooth - 1 of them.
            rd, wr = self._pieces, self._pieces - 1
            ring = -(-16 // _WORD)
            hist = -(-self._w["log_mel"] // _WORD)
            bfly = self._stages * (n // 2)
            sched["window"] += n * wr + self._win * ring
            sched["fft"] += bfly * 2 * (rd + wr)
            sched["power"] += (n // 2 + 1) * (rd + wr)
            sched["mel"] += nnz * (self._mel_top + 1) * rd
            sched["smooth"] += bands * ((hist - 1) + (self.fe.cfg.smooth - 1) * hist)
        return sched

    def cycles_per_hop(self) -> int:
        """Worst-case cycles from the start of a frame to its last code (``busy`` cycles)."""
        return sum(self.schedule().values())

    def memory_shapes(self) -> dict[str, tuple[int, int]]:
        """``name -> (width, depth)`` of every memory this front end builds in RAM blocks
        (the block RAM work memory included, the ROMs built in logic not), for fit checks
        before elaboration."""
        return {name: (Shape.cast(shape).width, depth)
                for name, (shape, depth, _) in self._memory_spec().items()
                if name not in _LOGIC_ROMS}

    def spram_shapes(self) -> dict[str, tuple[int, int]]:
        """``name -> (width, depth)`` of the SPRAM memories (16-bit words) this front end
        builds on iCE40 UltraPlus, for fit checks: the work memory's four columns, or the
        serial block of the work memory, the sample ring and the smoothing history."""
        if self.work_memory == "spram":
            return {"work": (self._word.size, self._n)}
        if self.work_memory == "spram-serial":
            return {"work, ring, history": (_WORD, sum(serial_ram_depth(*shape) for shape
                                                       in self._serial_shapes()))}
        return {}

    @property
    def ring_depth(self) -> int:
        """Samples the ring holds: ``max(win, hop) + hop``."""
        return self._depth

    # --- hardware ------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        core = Module()     # everything `clear` restarts (memory contents are not read
        # before they are rewritten); a serial work memory freezes all of it while busy
        serial = self.work_memory == "spram-serial"
        stall = Signal() if serial else Const(0)
        held = EnableInserter(~stall)(core) if serial else core
        m.submodules.core = ResetInserter(self.clear)(held)
        mem = self._memories(core)
        r = self._registers()
        core.d.comb += self.busy.eq(self.phase != Phase.IDLE)
        free = Signal()
        ports = {name: mem[name].read_port() for name in ("twiddle", "band", "mel", "recip")}
        if "tables" in mem:
            ports["window"] = ports["log"] = mem["tables"].read_port()
        else:
            ports.update({name: mem[name].read_port() for name in _SHARED})
        # States whose next cycle uses a buffer's word raise its strobe (a serial block reads
        # only then; memories of their own read every cycle).
        ports.update(work_re=Signal(), ring_re=Signal(), hist_re=Signal())
        if serial:
            rd, wr, ring_w = self._serial_ports(m, ports, stall)
            hold = Signal()     # the FSM uses the block: a sample waits
            m.d.comb += hold.eq(ports["work_re"] | wr.en | ports["ring_re"]
                                | ports["hist_re"] | ports["hist_w"].en)
        else:
            ring_w, hold = mem["ring"].write_port(), Const(0)
            ports["hist_w"] = mem["hist"].write_port()
            rd, wr = self._work_ports(core, mem)
            # A word read in the cycle it is written is never used, so the read-during-write
            # behaviour is free to choose: left undefined, it costs no bypass flip-flops
            # around iCE40 block RAMs (the work memory's too; hw.common.disjoint_read_port).
            ports["ring"] = disjoint_read_port(core, mem["ring"], "ring_rd")
            ports["hist"] = disjoint_read_port(core, mem["hist"], "hist_rd")
        base, count = self._ring(core, ring_w, free, hold)
        addrs = self._bfly_addresses(core, r)
        self._held_addresses(core, r, ports, rd, addrs)
        core.submodules.mul = eng = self._multiplier(core, r, ports, rd)
        with core.FSM():
            with self._state(core, "IDLE", Phase.IDLE):
                with core.If(count >= self._trig):
                    core.d.sync += [r.n.eq(0), r.raddr.eq(base)]
                    core.next = "WIN_RD"
            self._window(core, r, eng, ports, wr, free)
            self._fft(core, r, eng, ports, rd, wr, addrs)
            self._power(core, r, eng, ports, rd, wr)
            self._mel(core, r, eng, ports, rd)
            self._log(core, r, eng, ports)
            self._smooth(core, r, eng, ports)
            self._normalize(core, r, eng, ports)
        return m

    def _serial_shapes(self) -> list[tuple[int, int]]:
        """``(width, depth)`` of the buffers a serial block holds, in :data:`_SERIAL` order."""
        return [(self._word.size, self._n), (16, self._depth),
                (self._w["log_mel"], self._bands * self._hist_slots)]

    def _serial_ports(self, m: Module, ports: dict, stall: Signal) -> tuple:
        """``work_memory="spram-serial"``: the work memory, the sample ring and the smoothing
        history in one :class:`~kwshw.hw.memories.SerialRAM` outside ``core``, which
        ``stall`` freezes while a request takes its pieces. The FSM's requests come one at
        a time (a state reads or writes one buffer); a sample is written when the FSM makes
        none (``pcm`` waits meanwhile). Returns the work memory's read and write ports and
        the ring's write port; sets ``ports["ring"]``, ``["hist"]`` and ``["hist_w"]``."""
        n, depth, hist = self._n, self._depth, self._bands * self._hist_slots
        rd = _Port(Signal(range(n)), Signal(self._word), None)
        wr = _Port(Signal(range(n)), Signal(self._word), Signal())
        ring_rd = _Port(Signal(range(depth)), Signal(signed(16)), None)
        ring_w = _Port(Signal(range(depth)), Signal(signed(16)), Signal())
        hist_rd = _Port(Signal(range(hist)), Signal(signed(self._w["log_mel"])), None)
        hist_w = _Port(Signal(range(hist)), Signal(signed(self._w["log_mel"])), Signal())
        ports.update(ring=ring_rd, hist=hist_rd, hist_w=hist_w)
        block = SerialRAM(*self._serial_shapes())
        m.submodules.work = ResetInserter(self.clear)(block)
        requests = [(_SERIAL["work"], ports["work_re"], rd, wr),
                    (_SERIAL["hist"], ports["hist_re"], hist_rd, hist_w),
                    (_SERIAL["ring"], ports["ring_re"], ring_rd, ring_w)]
        # Later assignments win: the FSM's requests over a sample's write (which waits).
        for k, re, r_port, w_port in reversed(requests):
            with m.If(re | w_port.en):
                m.d.comb += [block.mem.eq(k), block.addr.eq(Mux(w_port.en, w_port.addr,
                                                                r_port.addr)),
                             block.wdata.eq(Value.cast(w_port.data))]
        m.d.comb += [
            block.re.eq(ports["work_re"] | ports["hist_re"] | ports["ring_re"]),
            block.we.eq(wr.en | hist_w.en | ring_w.en),
            rd.data.eq(block.rdata),
            ring_rd.data.eq(block.rdata[:16]),
            hist_rd.data.eq(block.rdata[:len(hist_rd.data)]),
            stall.eq(block.stall),
        ]
        return rd, wr, ring_w

    def _work_ports(self, core: Module, mem: dict) -> tuple:
        """A read and a write port of the work memory. With ``work_memory="spram"`` it is
        four 16-bit :class:`~kwshw.hw.memories.SinglePortRAM` columns (iCE40 SPRAM): the
        front end never reads and writes it in the same cycle, and never uses the word read
        in a cycle after a write to the same column."""
        if self.work_memory == "bram":
            wr = mem["work"].write_port()
            return disjoint_read_port(core, mem["work"], "work_rd"), wr
        rd = _Port(Signal(range(self._n)), Signal(self._word), None)
        wr = _Port(Signal(range(self._n)), Signal(self._word), Signal())
        cols = -(-self._word.size // _WORD)
        rdata = []
        for c in range(cols):
            core.submodules[f"work{c}"] = col = SinglePortRAM(_WORD, self._n)
            core.d.comb += [col.addr.eq(Mux(wr.en, wr.addr, rd.addr)), col.we.eq(wr.en),
                         col.re.eq(~wr.en),
                         col.wdata.eq(wr.data.as_value()[_WORD * c:_WORD * (c + 1)])]
            rdata.append(col.rdata)
        core.d.comb += rd.data.eq(Cat(*rdata))
        return rd, wr

    def _read_word(self, m: Module, ports: dict, buffer: str = "work") -> None:
        """This state's next cycle uses ``buffer``'s word: a serial block reads it (memories
        of their own read every cycle, and an unused strobe would still reshape their FSM's
        logic)."""
        if self.work_memory == "spram-serial":
            m.d.comb += ports[f"{buffer}_re"].eq(1)

    @contextmanager
    def _state(self, m: Module, name: str, phase: Phase) -> Iterator[None]:
        """``m.State(name)``, also driving :attr:`phase`."""
        with m.State(name):
            m.d.comb += self.phase.eq(phase)
            yield

    def _log_fields(self, r: _Regs) -> tuple[Value, Value]:
        """Table index and interpolation fraction: the ``LOG_INDEX + LOG_INTERP`` bits below
        the leading one of the normalized energy."""
        nw, q = self._w["norm"], LOG_INDEX + LOG_INTERP
        u = r.nrm[nw - 1 - q:nw - 1]
        return u[LOG_INTERP:], u[:LOG_INTERP]

    def _held_addresses(self, m: Module, r: _Regs, ports: dict, rd: memory.ReadPort,
                        addrs: tuple[Signal, Signal, Signal]) -> None:
        """Every table's address comes from registers, so that its data holds still while
        the multiplier takes chunks of it (two states override one for a cycle)."""
        addr_a, addr_b, tw_idx = addrs
        half = self._win // 2
        waddr = Mux(r.n <= half, r.n, self._win - r.n) if self._mirror else r.n
        idx, _ = self._log_fields(r)
        if self._shared_tables():
            # The window is read only in its phase, the log table only in the bands'.
            wa = waddr | (1 << LOG_INDEX)       # the window is not longer than the table
            m.d.comb += ports["log"].addr.eq(Mux(self.phase == Phase.WINDOW, wa, idx + 1))
        else:
            m.d.comb += [ports["window"].addr.eq(waddr), ports["log"].addr.eq(idx + 1)]
        m.d.comb += [ports["ring"].addr.eq(r.raddr),
                     ports["twiddle"].addr.eq(tw_idx), ports["mel"].addr.eq(r.hidx),
                     ports["recip"].addr.eq(r.nprev + 1),
                     rd.addr.eq(Mux(self.phase == Phase.FFT, addr_b, r.k))]

    def _multiplier(self, m: Module, r: _Regs, ports: dict, rd: memory.ReadPort) -> MulAcc:
        """The shared multiplier and its sources (see ``_X_*``, ``_Y_*``)."""
        w, fe = self._w, self.fe
        idx, frac = self._log_fields(r)
        # T[2^LOG_INDEX] is a constant: the table's last word is not stored
        upper = Mux(idx == (1 << LOG_INDEX) - 1,
                    int(fe.log_table[-1]) + _half(LOG_TABLE_FRAC - LOG_FRAC),
                    ports["log"].data[:w["log_table"]])
        xs = [(ports["ring"].data, 16), (rd.data.re, w["data"]), (rd.data.im, w["data"]),
              (rd.data.as_value()[:w["power"]], w["power"] + 1),
              (upper - r.t0, w["log_diff"] + 1), (r.ssum, w["smooth_sum"]),
              (r.ssum - r.bconst.mu, w["norm_diff"]), (r.t0, w["log_table"] + 1),
              (r.pexp, len(r.pexp))]
        tw = ports["twiddle"].data
        ys = [(ports["window"].data[:w["window"]], w["window"] + 1), (tw.c, w["twiddle"]),
              (tw.s, w["twiddle"]), (rd.data.re, w["data"]), (rd.data.im, w["data"]),
              (ports["mel"].data, w["weight"] + 1), (frac, LOG_INTERP + 1),
              (ports["recip"].data, w["recip"] + 1), (r.bconst.g, w["gain"] + 1),
              (Const(1 << LOG_INTERP), LOG_INTERP + 2),
              (Const(fe.ln2 << LOG_INTERP), (fe.ln2 << LOG_INTERP).bit_length() + 1)]
        ops = self._ops
        mel = ops["mel"]
        top = mel.x_chunks + mel.y_chunks - 2
        eng = MulAcc([[ops["window"]], [ops["twiddle_re"], ops["twiddle_im"]], [ops["power"]],
                      [ops["log"]], [ops["smooth"]], [ops["norm"]],
                      *([_MulSteps(mel, top - md, start)] for md in range(top + 1)
                        for start in (True, False))],
                     [wd for _, wd in xs], [wd for _, wd in ys], w["acc"])
        m.d.comb += [getattr(eng, f"x{k}").eq(v) for k, (v, _) in enumerate(xs)]
        m.d.comb += [getattr(eng, f"y{k}").eq(v) for k, (v, _) in enumerate(ys)]
        return eng

    def _memory_spec(self) -> dict[str, tuple]:
        """``name -> (shape, depth, init)`` of every buffer and table (ROM contents from the
        model), the block RAM work memory first; a serial block's buffers (work memory,
        ring, history) are not memories of their own."""
        fe, w = self.fe, self._w
        tw = data.StructLayout({"c": signed(w["twiddle"]), "s": signed(w["twiddle"])})
        weights = [int(fe.mel_weights[k, b]) for b in range(self._bands)
                   for k in range(int(fe.mel_lo[b]), int(fe.mel_hi[b]))]
        spec = {
            "ring": (signed(16), self._depth, []),
            "window": (unsigned(w["window"]), len(self._window_rom),
                       [int(v) for v in self._window_rom]),
            "twiddle": (tw, self._n // 2, [{"c": int(c), "s": int(s)} for c, s in
                                           zip(fe.twiddle_re, fe.twiddle_im, strict=True)]),
            "band": (unsigned(_WORD), self._bands * self._band_words, self._band_rom()),
            "mel": (unsigned(w["weight"]), len(weights), weights),
            # The last entry is a constant in logic: 2^LOG_INDEX words fill block RAMs exactly.
            "log": (unsigned(w["log_table"]), len(fe.log_table) - 1,
                    [int(v) + _half(LOG_TABLE_FRAC - LOG_FRAC) for v in fe.log_table[:-1]]),
            "recip": (unsigned(w["recip"]), len(fe.smooth_recip),
                      [int(v) for v in fe.smooth_recip]),
            "hist": (signed(w["log_mel"]), self._bands * self._hist_slots, []),
        }
        if self._shared_tables():
            (lw, ln, li), (ww, wn, wi) = (spec.pop(name) for name in _SHARED)
            spec["tables"] = (unsigned(max(lw.width, ww.width)), ln + wn, li + wi)
        if self.work_memory == "bram":
            spec = {"work": (self._word, self._n, []), **spec}
        if self.work_memory == "spram-serial":
            spec = {name: v for name, v in spec.items() if name not in _SERIAL}
        return spec

    def _shared_tables(self) -> bool:
        """Whether the log table and the window share one memory (:data:`_SHARED`): when
        that takes fewer iCE40 block RAMs than two and the window is at most as long as
        the table (so that its addresses are the table's with one more bit set)."""
        (lw, ln), (ww, wn) = ((self._w["log_table"], 1 << LOG_INDEX),
                              (self._w["window"], len(self._window_rom)))
        return wn <= ln and (bram_blocks("ice40", max(lw, ww), ln + wn)
                             < bram_blocks("ice40", lw, ln) + bram_blocks("ice40", ww, wn))

    def _memories(self, m: Module) -> dict[str, memory.Memory]:
        """Every buffer and table, as ``lib.memory.Memory``."""
        mems = {name: memory.Memory(shape=shape, depth=depth, init=init,
                                    attrs=DISJOINT_PORTS | _LOGIC_ROMS.get(name, {}))
                for name, (shape, depth, init) in self._memory_spec().items()}
        self.work = mems.get("work")
        for name, mem in mems.items():
            m.submodules[name] = mem
        return mems

    def _band_rom(self) -> list[int]:
        """The per-band records (:attr:`_band_layout`), ``_band_words`` words each."""
        fe, lay, out = self.fe, self._band_layout, []
        for b in range(self._bands):
            values = {"lo": int(fe.mel_lo[b]), "cnt": int(fe.mel_hi[b] - fe.mel_lo[b]),
                      "mu": int(fe.norm_mean[b]), "g": int(fe.norm_gain[b])}
            rec = sum((values[name] & ((1 << f.width) - 1)) << f.offset for name, f in lay)
            out += [(rec >> (_WORD * i)) & ((1 << _WORD) - 1) for i in range(self._band_words)]
        return out

    def _registers(self) -> _Regs:
        w, n = self._w, self._n
        return _Regs(
            n=Signal(range(n)), raddr=Signal(range(self._depth)),
            stg=Signal(range(max(self._stages, 2))), j=Signal(range(max(n // 2, 2))),
            a_re=Signal(signed(w["data"])), a_im=Signal(signed(w["data"])),
            t_re=Signal(signed(w["data"] + 1)),
            k=Signal(range(n // 2 + 2)), band=Signal(range(max(self._bands, 2))),
            hidx=Signal(range(max(int((self.fe.mel_hi - self.fe.mel_lo).sum()), 2))),
            left=Signal(range(n // 2 + 2)), md=Signal(range(self._mel_top + 1)),
            hbase=Signal(range(max(int((self.fe.mel_hi - self.fe.mel_lo).sum()), 2))),
            nrm=Signal(unsigned(w["norm"])), pexp=Signal(signed(w["pexp"])),
            t0=Signal(unsigned(w["log_table"])), lmel=Signal(signed(w["log_mel"])),
            ssum=Signal(signed(w["smooth_sum"])), sj=Signal(range(self._hist_slots + 1)),
            code=Signal(signed(ACT_WIDTH)), nprev=Signal(range(self.fe.cfg.smooth)),
            bconst=Signal(self._band_layout),
            lw=Signal(range(max(self._band_words, self._mel_wait) + 1)),
            slot=Signal(range(max(self._hist_slots, 2))),
        )

    def _ring(self, m: Module, wp: memory.WritePort, free: Signal,
              hold: Value) -> tuple[Signal, Signal]:
        """The sample ring: writes at the stream's pace (not while ``hold``: the FSM uses the
        serial block the ring shares), ``free`` (end of a frame's window stage) drops the
        frame's first hop. Returns the frame start's address and the count of samples from
        it."""
        depth, hop = self._depth, self._hop
        wr_addr, base = Signal(range(depth)), Signal(range(depth))
        count = Signal(range(depth + 1))
        push = self.pcm.valid & self.pcm.ready
        m.d.comb += [self.pcm.ready.eq((count < depth) & ~hold), wp.addr.eq(wr_addr),
                     wp.data.eq(self.pcm.payload), wp.en.eq(push)]
        with m.If(push):
            m.d.sync += wr_addr.eq(Mux(wr_addr == depth - 1, 0, wr_addr + 1))
        m.d.sync += count.eq(count + push - Mux(free, hop, 0))
        with m.If(free):
            m.d.sync += base.eq(Mux(base >= depth - hop, base - (depth - hop), base + hop))
        return base, count

    def _start(self, m: Module, eng: MulAcc, prog: int | Value) -> None:
        m.d.comb += [eng.start.eq(1), eng.prog.eq(prog)]

    # --- the stages, one method each (states of the one FSM) -----------------------------

    def _window(self, m: Module, r: _Regs, eng: MulAcc, ports: dict,
                wr: memory.WritePort, free: Signal) -> None:
        """Window ``x[n] = rshift_round(s[n] W[n], WINDOW_FRAC - DATA_FRAC)`` into the work
        memory at ``bitrev(n)``; zeros from ``win_length`` to ``n_fft``."""
        n_fft, win, depth = self._n, self._win, self._depth
        rev = Cat(*reversed([r.n[b] for b in range(self._stages)]))

        def advance():
            m.d.comb += [wr.addr.eq(rev), wr.en.eq(1)]
            m.d.sync += [r.n.eq(r.n + 1), r.raddr.eq(Mux(r.raddr == depth - 1, 0, r.raddr + 1))]
            with m.If(r.n == n_fft - 1):
                m.d.comb += free.eq(1)        # the frame's first hop is no longer needed
                m.d.sync += [r.stg.eq(0), r.j.eq(0)]
                m.next = "BF_RA"
            with m.Else():
                m.next = "WIN_RD"

        with self._state(m, "WIN_RD", Phase.WINDOW):    # the sample and W[n] are read
            with m.If(r.n >= win):
                m.d.comb += [wr.data.re.eq(0), wr.data.im.eq(0)]
                advance()
            with m.Else():
                self._read_word(m, ports, "ring")
                m.next = "WIN_RUN"
        with self._state(m, "WIN_RUN", Phase.WINDOW):
            self._start(m, eng, _P_WIN)
            m.next = "WIN_WAIT"
        with self._state(m, "WIN_WAIT", Phase.WINDOW):
            with m.If(eng.res_valid):
                m.d.comb += [wr.data.re.eq(_rounded(eng, self._ops["window"])),
                             wr.data.im.eq(0)]
                advance()

    def _bfly_addresses(self, m: Module, r: _Regs) -> tuple[Signal, Signal, Signal]:
        """Addresses of butterfly ``j`` of stage ``stg``: ``a`` has a 0 inserted at bit
        ``stg`` of ``j``, ``b = a + 2^stg``, twiddle ``(j mod 2^stg) 2^(stages - 1 - stg)``."""
        L = self._stages
        a, b = Signal(range(self._n)), Signal(range(self._n))
        tw = Signal(range(max(self._n // 2, 2)))
        with m.Switch(r.stg):
            for s in range(L):
                with m.Case(s):
                    low, high = r.j[:s], r.j[s:L - 1]
                    m.d.comb += [a.eq(Cat(low, Const(0, 1), high)),
                                 b.eq(Cat(low, Const(1, 1), high)),
                                 tw.eq(Cat(Const(0, L - 1 - s), low))]
        return a, b, tw

    def _fft(self, m: Module, r: _Regs, eng: MulAcc, ports: dict, rd: memory.ReadPort,
             wr: memory.WritePort, addrs: tuple[Signal, Signal, Signal]) -> None:
        """Radix-2 DIT in place: per butterfly read ``a``, then ``b`` (held at the memory's
        output) and its twiddle; the multiplier computes ``t``; write ``a + t`` (as ``t_im``
        arrives) and ``a - t``."""
        addr_a, addr_b, _ = addrs
        t_im = _rounded(eng, self._ops["twiddle_im"])
        with self._state(m, "BF_RA", Phase.FFT):
            m.d.comb += rd.addr.eq(addr_a)
            self._read_word(m, ports)
            m.next = "BF_RB"
        with self._state(m, "BF_RB", Phase.FFT):     # reads b (and holds it) while a arrives
            self._read_word(m, ports)
            m.d.sync += [r.a_re.eq(rd.data.re), r.a_im.eq(rd.data.im)]
            m.next = "BF_RUN"
        with self._state(m, "BF_RUN", Phase.FFT):    # b and its twiddle are read
            self._start(m, eng, _P_BFLY)
            m.next = "BF_WAIT"
        with self._state(m, "BF_WAIT", Phase.FFT):
            with m.If(eng.res_valid & (eng.res_tag == 0)):
                m.d.sync += r.t_re.eq(_rounded(eng, self._ops["twiddle_re"]))
            with m.If(eng.res_valid & (eng.res_tag == 1)):
                m.d.comb += [wr.addr.eq(addr_a), wr.en.eq(1),
                             wr.data.re.eq(r.a_re + r.t_re), wr.data.im.eq(r.a_im + t_im)]
                m.d.sync += r.a_im.eq(r.a_im - t_im)     # b's imaginary part, for BF_WRB
                m.next = "BF_WRB"
        with self._state(m, "BF_WRB", Phase.FFT):
            m.d.comb += [wr.addr.eq(addr_b), wr.en.eq(1),
                         wr.data.re.eq(r.a_re - r.t_re), wr.data.im.eq(r.a_im)]
            m.d.sync += r.j.eq(r.j + 1)
            m.next = "BF_RA"
            with m.If(r.j == self._n // 2 - 1):
                m.d.sync += [r.j.eq(0), r.stg.eq(r.stg + 1)]
                with m.If(r.stg == self._stages - 1):
                    m.d.sync += r.k.eq(0)
                    m.next = "PW_RD"

    def _power(self, m: Module, r: _Regs, eng: MulAcc, ports: dict, rd: memory.ReadPort,
               wr: memory.WritePort) -> None:
        """``P[k] = rshift_round(Re^2 + Im^2, 2 DATA_FRAC - POWER_FRAC)`` over bin ``k``'s word
        (both halves: ``P`` is wider than one part)."""
        with self._state(m, "PW_RD", Phase.POWER):      # bin k is read
            self._read_word(m, ports)
            m.next = "PW_RUN"
        with self._state(m, "PW_RUN", Phase.POWER):
            self._start(m, eng, _P_POW)
            m.next = "PW_WAIT"
        with self._state(m, "PW_WAIT", Phase.POWER):
            with m.If(eng.res_valid):
                p = _rounded(eng, self._ops["power"])
                m.d.comb += [wr.addr.eq(r.k), wr.en.eq(1), wr.data.as_value().eq(p)]
                m.d.sync += r.k.eq(r.k + 1)
                m.next = "PW_RD"
                with m.If(r.k == self._n // 2):
                    m.d.sync += [r.band.eq(0), r.hidx.eq(0)]
                    m.next = "MEL_BAND"

    def _mel(self, m: Module, r: _Regs, eng: MulAcc, ports: dict,
             rd: memory.ReadPort) -> None:
        """Band ``band``: its record, then ``sum_k H[k] P[k]`` as one Horner sum in the
        multiplier's accumulator, diagonal by diagonal over the band's bins (each diagonal
        reads them again); the weights are packed band after band, read in order."""
        band, words = ports["band"], self._band_words
        with self._state(m, "MEL_BAND", Phase.BANDS):
            # The band's record, word by word (the data of word i arrives with lw = i + 1).
            m.d.comb += band.addr.eq(Cat(r.lw[:(words - 1).bit_length()], r.band))
            m.d.sync += r.lw.eq(r.lw + 1)
            bits = r.bconst.as_value()
            with m.Switch(r.lw):
                for i in range(1, words + 1):
                    with m.Case(i):
                        m.d.sync += bits[_WORD * (i - 1):_WORD * i].eq(band.data)
            with m.If(r.lw == words):
                m.d.sync += r.lw.eq(0)
                m.next = "MEL_INIT"
        with self._state(m, "MEL_INIT", Phase.BANDS):
            m.d.sync += [r.k.eq(r.bconst.lo), r.left.eq(r.bconst.cnt), r.md.eq(0),
                         r.hbase.eq(r.hidx)]
            m.next = "MEL_RD"
        with self._state(m, "MEL_RD", Phase.BANDS):      # P[k] and its weight are read
            self._read_word(m, ports)
            m.next = "MEL_RUN"
        with self._state(m, "MEL_RUN", Phase.BANDS):
            # Diagonal by diagonal over the band's bins: one Horner sum, exact, no adder.
            self._start(m, eng, _P_MEL + 2 * r.md + (r.left != r.bconst.cnt))
            m.d.sync += [r.k.eq(r.k + 1), r.hidx.eq(r.hidx + 1), r.left.eq(r.left - 1)]
            m.next = "MEL_RD"
            with m.If(r.left == 1):
                m.d.sync += [r.k.eq(r.bconst.lo), r.left.eq(r.bconst.cnt), r.md.eq(r.md + 1),
                             r.hidx.eq(r.hbase)]
                with m.If(r.md == self._mel_top):
                    m.d.sync += r.hidx.eq(r.hidx + 1)
                    m.next = "MEL_WAIT"
        with self._state(m, "MEL_WAIT", Phase.BANDS):    # the last partials are in flight
            m.d.sync += r.lw.eq(r.lw + 1)
            with m.If(r.lw == self._mel_wait - 1):
                m.d.sync += r.lw.eq(0)
                m.next = "LOG_INIT"

    def _log(self, m: Module, r: _Regs, eng: MulAcc, ports: dict) -> None:
        """``L = max(rshift_round((p - 30 - POWER_FRAC) ln2 + T[i] + rshift_round((T[i+1] -
        T[i]) r, LOG_INTERP), LOG_TABLE_FRAC - LOG_FRAC), LN_FLOOR)``: the leading one is found
        by shifting left one bit per cycle (no barrel shifter, no priority encoder); the
        multiplier sums the interpolation, ``2^LOG_INTERP T[i]`` and ``2^LOG_INTERP (p - 30 -
        POWER_FRAC) ln 2``, so no adder is needed; as ``floor((floor(a / 2^s) + k) / 2^t) =
        floor((a + 2^s k) / 2^(s + t))``, one shift makes both roundings."""
        fe, nw = self.fe, self._w["norm"]
        table = ports["log"]
        idx, _ = self._log_fields(r)
        with self._state(m, "LOG_INIT", Phase.BANDS):
            e = eng.acc >> MEL_FRAC                 # the mel sum and its rounding half
            m.d.sync += [r.nrm.eq(Cat(e[0] | (e == 0), e[1:])),        # max(E, 1)
                         r.pexp.eq(nw - 1 - _e0())]
            m.next = "LOG_NORM"
        with self._state(m, "LOG_NORM", Phase.BANDS):
            with m.If(r.nrm[nw - 1]):
                m.d.comb += table.addr.eq(idx)
                m.next = "LOG_RD1"
            with m.Else():
                m.d.sync += [r.nrm.eq(r.nrm << 1), r.pexp.eq(r.pexp - 1)]
        with self._state(m, "LOG_RD1", Phase.BANDS):     # T[i] arrives, T[i + 1] is read
            m.d.sync += r.t0.eq(table.data[:self._w["log_table"]])
            m.next = "LOG_RUN"
        with self._state(m, "LOG_RUN", Phase.BANDS):
            self._start(m, eng, _P_LOG)
            m.next = "LOG_WAIT"
        with self._state(m, "LOG_WAIT", Phase.BANDS):
            with m.If(eng.res_valid):
                # acc = (T[i+1] - T[i]) r + 2^LOG_INTERP ((p - e0) ln2 + T[i] + half) + its
                # rounding half: both roundings in one shift (the stored T[i] hold the half)
                lm = eng.acc >> (LOG_INTERP + LOG_TABLE_FRAC - LOG_FRAC)
                m.d.sync += r.lmel.eq(Mux(lm < fe.log_floor, fe.log_floor, lm))
                m.next = "SM_START"

    def _smooth(self, m: Module, r: _Regs, eng: MulAcc, ports: dict) -> None:
        """``Ls = rshift_round(S R[n], SMOOTH_FRAC)``, ``S`` the sum of this frame's ``L`` and
        the ``n - 1`` previous frames' (a ring of history slots per band)."""
        slots = self._hist_slots
        hist, hist_w = ports["hist"], ports["hist_w"]
        sb = (slots - 1).bit_length()

        def addr(slot: Value) -> Value:
            return Cat(slot[:sb], r.band) if sb else r.band

        with self._state(m, "SM_START", Phase.BANDS):
            m.d.comb += [hist_w.addr.eq(addr(r.slot)), hist_w.data.eq(r.lmel), hist_w.en.eq(1)]
            m.d.sync += [r.ssum.eq(r.lmel), r.sj.eq(1)]
            m.next = "SM_RUN"
            with m.If(r.nprev != 0):
                m.next = "SM_RD"
        with self._state(m, "SM_RD", Phase.BANDS):
            m.d.comb += hist.addr.eq(addr(r.slot - r.sj))
            self._read_word(m, ports, "hist")
            m.next = "SM_ADD"
        with self._state(m, "SM_ADD", Phase.BANDS):
            m.d.sync += [r.ssum.eq(r.ssum + hist.data), r.sj.eq(r.sj + 1)]
            m.next = "SM_RD"
            with m.If(r.sj == r.nprev):
                m.next = "SM_RUN"
        with self._state(m, "SM_RUN", Phase.BANDS):
            self._start(m, eng, _P_SMOOTH)
            m.next = "SM_WAIT"
        with self._state(m, "SM_WAIT", Phase.BANDS):
            with m.If(eng.res_valid):
                m.d.sync += r.ssum.eq(_rounded(eng, self._ops["smooth"]))    # Ls
                m.next = "NM_RUN"

    def _normalize(self, m: Module, r: _Regs, eng: MulAcc, ports: dict) -> None:
        """``X = clip(rshift_round((Ls - MU) G, norm_shift))``, sent on ``feat``; after the
        last band the frame enters the smoothing history."""
        with self._state(m, "NM_RUN", Phase.BANDS):
            self._start(m, eng, _P_NORM)
            m.next = "NM_WAIT"
        with self._state(m, "NM_WAIT", Phase.BANDS):
            with m.If(eng.res_valid):
                # compared at its derived width, not the accumulator's
                y = _rounded(eng, self._ops["norm"])[:self._w["norm_rounded"]].as_signed()
                m.d.sync += r.code.eq(Mux(y > ACT_MAX, ACT_MAX, Mux(y < ACT_MIN, ACT_MIN, y)))
                m.next = "OUT"
        with self._state(m, "OUT", Phase.BANDS):
            m.d.comb += [self.feat.valid.eq(1), self.feat.payload.eq(r.code)]
            with m.If(self.feat.ready):
                m.d.sync += r.band.eq(r.band + 1)
                m.next = "MEL_BAND"
                with m.If(r.band == self._bands - 1):
                    m.d.sync += [r.band.eq(0), r.slot.eq(r.slot + 1),
                                 r.nprev.eq(Mux(r.nprev == self.fe.cfg.smooth - 1, r.nprev,
                                                r.nprev + 1))]
                    m.next = "IDLE"


def _half(shift: int) -> int:
    """The rounding half of ``rshift_round(., shift)``: added up front, the rounding is a
    plain arithmetic shift."""
    return 1 << (shift - 1) if shift > 0 else 0


def _rounded(eng: MulAcc, op: MulOp) -> Value:
    """``rshift_round`` of the op's sum: the multiplier added the half already."""
    return eng.acc >> op.shift if op.shift >= 0 else eng.acc << -op.shift


def _check_front_end(fe: IntFrontEnd) -> None:
    """The golden models :class:`FrontEnd` implements (``ValueError`` / ``TypeError``)."""
    if not isinstance(fe, IntFrontEnd):
        raise TypeError(f"FrontEnd takes an IntFrontEnd (the golden model), got "
                        f"{type(fe).__name__}")
    if fe.norm_mean is None:
        raise ValueError("FrontEnd needs an IntFrontEnd built with a normalizer: its output is "
                         "the accelerator's input codes (IntFrontEnd(cfg, normalizer, in_frac))")
    if fe.cfg.n_fft < 4:
        raise ValueError(f"FrontEnd needs n_fft >= 4, got {fe.cfg.n_fft}")
    if fe.bounds["pcm"] != Bound(PCM_MIN, PCM_MAX):
        raise ValueError("FrontEnd takes 16-bit PCM")
    b = fe.bounds
    if b["power"].width > 2 * _data_width(b, fe.cfg.n_fft):
        raise ValueError("FrontEnd: the power does not fit a work-memory word (two FFT values)")
    if b["frames"].width > ACT_WIDTH:
        raise ValueError(f"FrontEnd: output codes wider than ACT_WIDTH={ACT_WIDTH}")


def _data_width(b: dict[str, Bound], n_fft: int) -> int:
    """Signed width of every FFT value: the windowed samples and each stage's outputs."""
    stages = n_fft.bit_length() - 1
    return max(_swidth(b[k]) for k in ["x", *(f"fft_stage{s}" for s in range(1, stages + 1))])


def _derive_widths(fe: IntFrontEnd) -> dict[str, int]:
    """Every register and memory width, from the golden model's bounds and ROMs."""
    b, cfg = fe.bounds, fe.cfg
    stages = cfg.n_fft.bit_length() - 1
    q = LOG_INDEX + LOG_INTERP
    e0 = _e0()
    w = {
        "data": _data_width(b, cfg.n_fft),
        # inputs of the stages that multiply: x and the outputs of stages 1 .. L-1
        "bfly_in": max(_swidth(b[k]) for k in
                       ["x", *(f"fft_stage{s}" for s in range(1, stages))]),
        "twiddle": _span(np.concatenate([fe.twiddle_re, fe.twiddle_im])).width,
        "window": _span(fe.window).width,
        "power": b["power"].width,
        "weight": _span(fe.mel_weights).width,
        "mel_acc": unsigned_width(b["mel_acc"].hi + _half(MEL_FRAC)),
        "norm": max(b["mel"].width, q + 1),
        "log_table": unsigned_width(b["log_table"].hi + _half(LOG_TABLE_FRAC - LOG_FRAC)),
        "log_diff": _span(np.diff(fe.log_table)).width,
        "log_mel": b["log_mel"].width,
        "smooth_sum": _swidth(b["smooth_sum"]),
        "recip": _span(fe.smooth_recip).width,
        "lfbe": _swidth(b["lfbe"]),
        "norm_diff": _swidth(b["norm_diff"]),
        "norm_rounded": _swidth(b["norm_rounded"]),
        "mu": _span(fe.norm_mean).width + 1,
        "gain": b["norm_gain"].width,
    }
    w["pexp"] = Bound(-e0, w["norm"] - 1 - e0).width
    w["ln2_scaled"] = unsigned_width(fe.ln2 << LOG_INTERP) + 1
    mel_sum = Bound(0, b["mel_acc"].hi + _half(MEL_FRAC))
    # the log's sum: the wide log (plus its rounding halves) scaled by 2^LOG_INTERP
    log_sum = Bound(b["log_wide"].lo << LOG_INTERP,
                    (b["log_wide"].hi + (1 << LOG_TABLE_FRAC)) << LOG_INTERP)
    w["acc"] = 2 + max(_swidth(v) for v in (
        b["window_product"], b["twiddle_product"], b["power_exact"], mel_sum,
        b["log_interp_product"], log_sum, b["smooth_product"], b["norm_product"]))
    return w


def _ops(w: dict[str, int], norm_shift: int) -> dict[str, MulOp]:
    """The multiplier's operations on its sources (``_X_*``, ``_Y_*``): chunk counts from the
    operands' widths, the rounding shift of each result (the mel products are summed
    exactly: no rounding)."""
    # + 1: twiddle_re subtracts, negating the twiddle's chunks (see MulAcc)
    tw = n_chunks(w["bfly_in"]), n_chunks(w["twiddle"] + 1), TWIDDLE_FRAC
    data = n_chunks(w["data"])
    return {
        "window": MulOp("window", ((_X_RING, _Y_WIN, False),), n_chunks(16),
                        n_chunks(w["window"] + 1), WINDOW_FRAC - DATA_FRAC),
        "twiddle_re": MulOp("twiddle_re", ((_X_RE, _Y_C, False), (_X_IM, _Y_S, True)), *tw),
        "twiddle_im": MulOp("twiddle_im", ((_X_RE, _Y_S, False), (_X_IM, _Y_C, False)), *tw),
        "power": MulOp("power", ((_X_RE, _Y_RE, False), (_X_IM, _Y_IM, False)), data, data,
                       2 * DATA_FRAC - POWER_FRAC),
        "mel": MulOp("mel", ((_X_P, _Y_H, False),), n_chunks(w["power"] + 1),
                     n_chunks(w["weight"] + 1), MEL_FRAC),
        "log": MulOp("log", (
            (_X_DIFF, _Y_FRAC, False, n_chunks(w["log_diff"] + 1), n_chunks(LOG_INTERP + 1)),
            (_X_T0, _Y_SCALE, False, n_chunks(w["log_table"] + 1), n_chunks(LOG_INTERP + 2)),
            (_X_EXP, _Y_LN2, False, n_chunks(w["pexp"]), n_chunks(w["ln2_scaled"]))),
            1, 1, LOG_INTERP),
        "smooth": MulOp("smooth", ((_X_SUM, _Y_RECIP, False),), n_chunks(w["smooth_sum"]),
                        n_chunks(w["recip"] + 1), SMOOTH_FRAC),
        "norm": MulOp("norm", ((_X_NORM, _Y_GAIN, False),), n_chunks(w["norm_diff"]),
                      n_chunks(w["gain"] + 1), norm_shift),
    }
