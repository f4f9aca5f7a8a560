"""Microphone receivers: PDM and I2S MEMS microphone pins to a stream of 16 kHz int16 PCM.

Both compute their golden model in :mod:`kwshw.microphone` bit for bit, in the ``sync``
domain, driving the microphone's clocks from flip-flops (so they never glitch) and reading
its data pin through a two flip-flop synchronizer.

:class:`PDMReceiver` spends little logic: its CIC runs one adder for the ``N`` integrators
(one integrator per system cycle, ``N`` of them between two PDM bits) and one subtractor for
the ``N`` combs, each over a ring of registers that rotates once per step so that the stage
being updated is always at its head (no multiplexer over the stages); the compensating FIR
runs at the CIC's output rate with one multiplier (an iCE40 DSP). Its history and its taps
share one block RAM when an output sample's cycles allow two reads per tap (a tap's
coefficient, then its sample; 12 MHz and faster with the default filter), else each has its
own and a tap takes one cycle (:func:`pdm_fir_memories`).

When a sample completes while the previous one still waits on ``pcm`` (``valid`` and not
``ready``), the new sample is dropped and the sticky ``overrun`` flag is set; it stays set
until ``overrun_clear`` or a reset. The stream never waits: microphones do not stop.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..features_int import PCM_MAX, PCM_MIN
from ..microphone import (
    COEF_WIDTH,
    HIST_WIDTH,
    I2S_BITS,
    I2S_FRAME,
    I2S_SHIFT,
    I2S_SLOT,
    I2SConfig,
    PDMConfig,
    PDMDecimator,
)
from .common import clamp, rshift_round

__all__ = ["PDMReceiver", "I2SReceiver", "PCM_WIDTH", "pdm_history_depth", "pdm_fir_shared",
           "pdm_fir_memories"]

#: Width of the PCM samples on ``pcm``.
PCM_WIDTH = 16
#: Cycles of the FIR pipeline after its last read is issued: memory read, product, accumulate.
_FIR_TAIL = 3


def pdm_history_depth(cfg: PDMConfig) -> int:
    """Entries of the FIR history: a power of two (the ring wraps for free) holding the
    ``taps`` samples being read and the ``D - 1`` that can arrive during a FIR run."""
    need = cfg.fir_taps + cfg.fir_decimation - 1
    return 1 << (need - 1).bit_length()


def pdm_fir_shared(cfg: PDMConfig) -> bool:
    """Whether the FIR's history and taps share one memory: when two reads per tap, the
    pipeline's tail and the output register fit the system cycles of an output sample."""
    return 2 * cfg.fir_taps + _FIR_TAIL + 1 <= cfg.divisor * cfg.decimation


def pdm_fir_memories(cfg: PDMConfig) -> dict[str, tuple[int, int]]:
    """``name -> (width, depth)`` of the FIR's memories. Shared (:func:`pdm_fir_shared`):
    the history ring at ``0 .. H - 1`` (``H =`` :func:`pdm_history_depth`), tap ``t``'s
    coefficient at ``H + t`` (``taps <= H``: its address is ``t`` with bit ``log2 H`` set);
    128 + 95 words of 16 bits for the default filter, one iCE40 block RAM where two memories
    take two. Else the history and the taps, each in its own."""
    depth = pdm_history_depth(cfg)
    if pdm_fir_shared(cfg):
        return {"history and taps": (max(HIST_WIDTH, COEF_WIDTH), depth + cfg.fir_taps)}
    return {"history": (HIST_WIDTH, depth), "taps": (COEF_WIDTH, cfg.fir_taps)}


def _fir_cycles(cfg: PDMConfig) -> int:
    """System cycles from a FIR run's start to its sum: the reads (two per tap in a shared
    memory) and the tail."""
    return (2 if pdm_fir_shared(cfg) else 1) * cfg.fir_taps + _FIR_TAIL


def _output(m: Module, pcm: stream.Interface, overrun: Signal, overrun_clear: Signal,
            done: Value, value: Value) -> None:
    """Offer each completed sample on ``pcm``; drop it and flag ``overrun`` if the previous
    one is still waiting."""
    with m.If(pcm.ready):
        m.d.sync += pcm.valid.eq(0)
    with m.If(overrun_clear):
        m.d.sync += overrun.eq(0)
    with m.If(done):
        with m.If(pcm.valid & ~pcm.ready):
            m.d.sync += overrun.eq(1)
        with m.Else():
            m.d.sync += [pcm.payload.eq(value), pcm.valid.eq(1)]


def _bit_clock(m: Module, divisor: int, high: range) -> tuple[Signal, Signal]:
    """A phase counter over ``divisor`` cycles and a clock register that is high exactly in
    the phases of ``high`` (registered from the next phase, so it follows the counter)."""
    phase = Signal(range(divisor))
    clk = Signal(init=int(0 in high))
    nxt = Mux(phase == divisor - 1, 0, phase + 1)
    m.d.sync += [phase.eq(nxt), clk.eq((nxt >= high.start) & (nxt < high.stop))]
    return phase, clk


class PDMReceiver(wiring.Component):
    """PDM microphone receiver: CIC and compensating FIR (:class:`kwshw.microphone.PDMDecimator`).

    Parameters
    ----------
    cfg : PDMConfig
        Clocks and decimation.
    sample_edge : str
        ``"falling"``: the microphone drives ``data`` while ``clk`` is high (sampled at the
        falling edge); ``"rising"``: while it is low. Which one a microphone uses follows
        from its L/R select pin (see its datasheet); two microphones can share ``data``.

    Attributes
    ----------
    clk : Out(1)
        Microphone clock, ``sys_clk / divisor``, high for the first ``ceil(divisor / 2)``
        cycles of each bit.
    data : In(1)
        Microphone data (asynchronous). Sampled in the last system cycle of the clock level
        it is valid in, i.e. at the edge, before the clock pin has moved.
    pcm : Out(stream.Signature(signed(16)))
        16 kHz PCM, bit-exact with :class:`kwshw.microphone.PDMDecimator` on the bits sampled
        since reset (the FIR history RAM starts from zero at configuration).
    overrun : Out(1)
        Sticky: a sample was dropped because ``pcm`` was not ready.
    overrun_clear : In(1)
        Clears ``overrun``.
    """

    def __init__(self, cfg: PDMConfig, *, sample_edge: str = "falling") -> None:
        if sample_edge not in ("falling", "rising"):
            raise ValueError(f"sample_edge must be 'falling' or 'rising', not {sample_edge!r}")
        period = cfg.divisor * cfg.decimation
        if _fir_cycles(cfg) + 1 > period:
            raise ValueError(f"{cfg.fir_taps} FIR taps do not fit the {period} system cycles "
                             f"of one output sample")
        self._cfg, self._edge = cfg, sample_edge
        self._dec = PDMDecimator(cfg)
        super().__init__({
            "clk": Out(1),
            "data": In(1),
            "pcm": Out(stream.Signature(signed(PCM_WIDTH))),
            "overrun": Out(1),
            "overrun_clear": In(1),
        })

    @property
    def latency(self) -> int:
        """System cycles from the one that reads a sample's last PDM bit out of the
        synchronizer (two cycles after the pin was taken) to ``pcm.valid``: ``N`` integrator
        steps, ``N`` comb steps, the history write, the reads (one or two per tap,
        :func:`pdm_fir_shared`), the MAC pipeline and the output register."""
        return 2 * self._cfg.cic_order + _fir_cycles(self._cfg) + 1

    @property
    def decimator(self) -> PDMDecimator:
        """The golden model this receiver computes."""
        return self._dec

    def elaborate(self, platform) -> Module:
        m = Module()
        strobe, bit = self._sample(m)
        i_n, block_end = self._integrators(m, strobe, bit)
        cic, cic_done = self._combs(m, i_n, block_end)
        acc, fir_done = self._fir(m, rshift_round(cic, self._dec.cic_shift), cic_done)
        value = clamp(rshift_round(acc, self._dec.fir_shift), PCM_MIN, PCM_MAX)
        _output(m, self.pcm, self.overrun, self.overrun_clear, fir_done, value)
        return m

    def _sample(self, m: Module) -> tuple[Value, Signal]:
        """Drive ``clk``; return the strobe (one cycle per PDM bit, from the first bit after
        reset) and the synchronized data that is valid with it."""
        d = self._cfg.divisor
        high = (d + 1) // 2
        phase, clk = _bit_clock(m, d, range(0, high))
        m.d.comb += self.clk.eq(clk)
        data = Signal()
        m.submodules.data_sync = FFSynchronizer(self.data, data)
        # The first flop takes the pin in the last cycle of the level; the second flop
        # shows it two cycles later.
        capture = high - 1 if self._edge == "falling" else d - 1
        primed = Signal()                  # a capture has happened since reset
        with m.If(phase == capture):
            m.d.sync += primed.eq(1)
        return (phase == (capture + 2) % d) & primed, data

    def _integrators(self, m: Module, strobe: Value, bit: Value) -> tuple[Signal, Signal]:
        """The ``N`` integrators, one step per cycle from the strobe on. Returns the value of
        ``I_N`` after each bit and a pulse when it closes a block of ``R`` bits."""
        n, r, w = self._cfg.cic_order, self._cfg.cic_decimation, self._dec.cic_width
        ring = [Signal(signed(w), name=f"integ{k}") for k in range(n)]
        # +1 / -1 in w bits: bit 0 set, every other bit the inverse of the PDM bit.
        x = Cat(Const(1, 1), (~bit).replicate(w - 1)).as_signed()
        new = Signal(signed(w))
        m.d.comb += new.eq(ring[0] + Mux(strobe, x, ring[-1]))
        step = Signal(range(max(n, 2)))    # index of the step under way, when busy
        busy = Signal()
        last = Signal()
        active = strobe | busy
        m.d.comb += last.eq(active & (Mux(strobe, 0, step) == n - 1))
        with m.If(active):
            m.d.sync += [a.eq(b) for a, b in zip(ring, ring[1:] + [new], strict=True)]
            m.d.sync += [step.eq(Mux(strobe, 1, step + 1)), busy.eq(~last)]
        count = Signal(range(r))
        block_end = Signal()
        m.d.comb += block_end.eq(last & (count == r - 1))
        with m.If(last):
            m.d.sync += count.eq(Mux(count == r - 1, 0, count + 1))
        return new, block_end

    def _combs(self, m: Module, i_n: Value, load: Value) -> tuple[Signal, Signal]:
        """The ``N`` combs at the decimated rate, one per cycle: returns the CIC output and a
        one-cycle pulse when it is valid."""
        n, w = self._cfg.cic_order, self._dec.cic_width
        ring = [Signal(signed(w), name=f"comb{k}") for k in range(n)]
        x = Signal(signed(w))
        step = Signal(range(max(n, 2)))
        busy = Signal()
        done = Signal()
        m.d.sync += done.eq(0)
        with m.If(busy):
            m.d.sync += [a.eq(b) for a, b in zip(ring, ring[1:] + [x], strict=True)]
            m.d.sync += [x.eq(x - ring[0]), step.eq(step + 1)]
            with m.If(step == n - 1):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(load):
            m.d.sync += [x.eq(i_n), busy.eq(1), step.eq(0)]
        return x, done

    def _fir(self, m: Module, c: Value, write: Value) -> tuple[Signal, Signal]:
        """Store each rounded CIC output; after every ``D``-th, run the taps through one
        multiplier. Returns the accumulator and a pulse when it holds an output."""
        cfg = self._cfg
        hb = pdm_history_depth(cfg).bit_length() - 1
        coefs = [int(v) for v in self._dec.coefs]
        # History first, then (shared) the taps: pdm_fir_memories' layout.
        inits = [[0] * (1 << hb) + coefs] if pdm_fir_shared(cfg) else [[], coefs]
        mems = [memory.Memory(shape=signed(width), depth=depth, init=init)
                for (width, depth), init in zip(pdm_fir_memories(cfg).values(), inits,
                                                strict=True)]
        for k, mem in enumerate(mems):
            m.submodules[f"fir{k}"] = mem
        hist, rom = mems[0], (mems[1] if len(mems) > 1 else None)
        hw = hist.write_port()
        wr = Signal(hb)
        phase = Signal(range(cfg.fir_decimation))
        start = Signal()
        m.d.comb += [hw.addr.eq(wr), hw.data.eq(c), hw.en.eq(write),
                     start.eq(write & (phase == cfg.fir_decimation - 1))]
        with m.If(write):
            m.d.sync += [wr.eq(wr + 1), phase.eq(Mux(start, 0, phase + 1))]
        return self._mac(m, hist.read_port(), rom and rom.read_port(), wr, start)

    def _mac(self, m: Module, rd: memory.ReadPort, cr: memory.ReadPort | None, wr: Signal,
             start: Value) -> tuple[Signal, Signal]:
        """The MAC pipeline: per tap ``t`` read its sample (history ``newest - t``) and its
        coefficient (``cr``'s word ``t``; from a shared memory, ``H + t`` in the cycle
        before), multiply, accumulate; ``_FIR_TAIL`` cycles after the last read the sum is
        ready."""
        taps, shared = self._cfg.fir_taps, cr is None
        run, t = Signal(), Signal(range(taps))
        sample = Signal() if shared else Const(1)           # the read is the tap's sample
        newest = Signal.like(wr)
        sample_addr = (newest - t)[:len(wr)]
        if shared:
            m.d.comb += rd.addr.eq(Mux(sample, sample_addr, t | (1 << len(wr))))
        else:
            m.d.comb += [rd.addr.eq(sample_addr), cr.addr.eq(t)]
        with m.If(start):
            m.d.sync += [run.eq(1), t.eq(0), newest.eq(wr)]
            if shared:
                m.d.sync += sample.eq(0)
        with m.Elif(run):
            if shared:
                m.d.sync += sample.eq(~sample)
            with m.If(sample):
                m.d.sync += t.eq(t + 1)
                with m.If(t == taps - 1):
                    m.d.sync += run.eq(0)
        c1, v1, f1, l1, v2, f2, l2, done = (Signal(name=n) for n in
                                            ("c1", "v1", "f1", "l1", "v2", "f2", "l2", "done"))
        m.d.sync += [c1.eq(run & ~sample), v1.eq(run & sample), f1.eq(run & (t == 0)),
                     l1.eq(run & (t == taps - 1)),
                     v2.eq(v1), f2.eq(f1), l2.eq(l1), done.eq(v2 & l2)]
        if shared:
            coef = Signal(signed(COEF_WIDTH))
            with m.If(c1):
                m.d.sync += coef.eq(rd.data)
        else:
            coef = cr.data
        prod = Signal(signed(HIST_WIDTH + COEF_WIDTH))
        acc = Signal(signed(self._dec.acc_width))
        m.d.sync += prod.eq(rd.data[:HIST_WIDTH].as_signed() * coef)
        with m.If(v2):
            m.d.sync += acc.eq(Mux(f2, prod, acc + prod))
        return acc, done


class I2SReceiver(wiring.Component):
    """I2S microphone receiver (INMP441, SPH0645 class): the FPGA is master.

    Parameters
    ----------
    cfg : I2SConfig
        Clocks: ``sck = sys_clk / divisor``, 64 SCK per frame.
    channel : str
        Slot the microphone sends in: ``"left"`` (WS low; L/R pin to GND) or ``"right"``.

    Attributes
    ----------
    sck : Out(1)
        Bit clock: low for the first ``floor(divisor / 2)`` cycles of each bit, then high.
    ws : Out(1)
        Word select, changing with the falling edge of ``sck``: low for SCK cycles 0-31 of a
        frame (left slot), high for 32-63.
    sd : In(1)
        Serial data (asynchronous), sampled at the rising edge of ``sck``; bits 1 to 24 of
        the slot are the sample, MSB first.
    pcm : Out(stream.Signature(signed(16)))
        :func:`kwshw.microphone.i2s_to_pcm` of each sample, one per frame.
    overrun : Out(1)
        Sticky: a sample was dropped because ``pcm`` was not ready.
    overrun_clear : In(1)
        Clears ``overrun``.
    """

    def __init__(self, cfg: I2SConfig, *, channel: str = "left") -> None:
        if channel not in ("left", "right"):
            raise ValueError(f"channel must be 'left' or 'right', not {channel!r}")
        self._cfg, self._base = cfg, 0 if channel == "left" else I2S_SLOT
        super().__init__({
            "sck": Out(1),
            "ws": Out(1),
            "sd": In(1),
            "pcm": Out(stream.Signature(signed(PCM_WIDTH))),
            "overrun": Out(1),
            "overrun_clear": In(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self._cfg.divisor
        low = d // 2
        phase, sck = _bit_clock(m, d, range(low, d))
        cycle = Signal(range(I2S_FRAME))       # SCK cycle within the frame
        with m.If(phase == d - 1):
            nxt = (cycle + 1)[:len(cycle)]
            m.d.sync += [cycle.eq(nxt), self.ws.eq(nxt >= I2S_SLOT)]
        m.d.comb += self.sck.eq(sck)
        sd = Signal()
        m.submodules.sd_sync = FFSynchronizer(self.sd, sd)
        # The pin as it was in the cycle before the rising edge, two flops later.
        read = phase == low + 1
        first, final = self._base + 1, self._base + I2S_BITS
        shreg = Signal(I2S_BITS - 1)
        with m.If(read & (cycle >= first) & (cycle < final)):
            m.d.sync += shreg.eq(Cat(sd, shreg[:-1]))
        s24 = Cat(sd, shreg).as_signed()
        value = clamp(rshift_round(s24, I2S_SHIFT), PCM_MIN, PCM_MAX)
        _output(m, self.pcm, self.overrun, self.overrun_clear, read & (cycle == final), value)
        return m
