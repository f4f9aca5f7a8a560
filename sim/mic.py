"""Host side of the microphone-receiver tests: random microphone timing in cocotb, bit-exact
against the golden model (:mod:`kwshw.microphone`).

A *draw* (:class:`PDMDraw`, :class:`I2SDraw`) fixes everything random about one run: the
receiver's configuration (the clock ratio, system clock / microphone bit clock), the sampling
edge or slot, when the microphone powers on after reset (any picosecond, so any phase of the
bit clock and of the I2S frame), the level of the data line while nothing drives it, and the
range of the microphone's output delays. :func:`run_pdm` / :func:`run_i2s` convert the
receiver to Verilog, let the microphone model of :mod:`sim.tb_mic` play the stimulus against
it, and return what the receiver produced next to what the golden model computes from the
bits the receiver was due to sample.

Alignment is the golden model's own rule, not a skip count: both receivers are bit-exact
"from reset", so the golden input is the data line as the receiver samples it from the
first bit clock after reset, including the idle levels before the microphone started (the
testbench counts them on the receiver's own clock pin). The PDM FIR history starts from zero
in both, so the startup transient is compared like every other sample.

Delays are legal by the receivers' documented contracts (:mod:`kwshw.hw.microphone`): a PDM
bit is driven ``tdv`` after the clock edge that opens its level and must be on the pin
:data:`SETUP_PS` before the edge that closes it (where the receiver samples); I2S data changes
``tdv`` after the falling SCK edge and must be on the pin :data:`SETUP_PS` before the rising
edge. Between a sampling edge and the next valid bit the line carries random junk (a second
microphone, a floating line), from :data:`HOLD_MIN_PS` after the edge on: the receivers need no
hold time, since they take the pin at the system edge that moves the clock pin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from kwshw.hw.microphone import PCM_WIDTH, I2SReceiver, PDMReceiver
from kwshw.microphone import (
    FIR_DECIMATIONS,
    I2S_BITS,
    I2S_FRAME,
    I2S_SLOT,
    PCM_RATE,
    I2SConfig,
    PDMConfig,
    PDMDecimator,
    i2s_receive,
    i2s_sd_bits,
    pdm_modulate,
)

from . import toolchain

__all__ = [
    "PERIOD_PS",
    "SETUP_PS",
    "HOLD_MIN_PS",
    "PDMDraw",
    "I2SDraw",
    "MicRun",
    "draw_pdm",
    "draw_i2s",
    "sweep_pcm",
    "i2s_words",
    "pdm_golden",
    "i2s_golden",
    "first_mismatch",
    "run_pdm",
    "run_i2s",
]

#: System clock period of the testbench (:data:`sim.toolchain.CLOCK_NS`), ps.
PERIOD_PS = toolchain.CLOCK_NS * 1000
#: How long before the sampling edge the microphone's bit must be on the pin: a tenth of a
#: system cycle, so a data change never lands on the edge itself (a race in simulation).
SETUP_PS = PERIOD_PS // 10
#: Earliest change of the pin after the edge that sampled it (1 ps: strictly after the edge).
HOLD_MIN_PS = 1
#: Fewest and most system cycles per microphone bit drawn (``MIN_DIVISOR`` is 4).
DIVISORS = range(4, 13)
#: PDM decimations ``R * D`` drawn: 63 (the fewest :func:`kwshw.microphone.pdm_config` takes)
#: to 128, a PDM clock of 1.0 to 2.0 MHz (more bits per sample only slow the simulation).
PDM_DECIMATIONS = (63, 128)
#: Back-pressure of the testbench's ``pcm`` sink: chance of a stall per sample, longest stall
#: (cycles). Far shorter than a sample period, so nothing may be dropped.
STALL_PROB, MAX_STALL = 0.3, 4


@dataclass(frozen=True)
class _Draw:
    """What a PDM and an I2S draw have in common: the seed and the microphone's timing.

    Attributes
    ----------
    seed : int
        Seeds the draw, the stimulus and the testbench's per-bit delays and junk.
    start_ps : int
        When the microphone powers on, ps after reset is released.
    idle : int
        Level of the data line while the microphone does not drive it (a pull resistor).
    tdv_ps, th_ps : tuple of int
        Ranges (inclusive) of the delay from the edge that opens a bit to the bit, and of the
        delay to the junk around it (see each draw); ``worst`` draws collapse both to the
        latest bit and the earliest junk.
    worst : bool
        Whether the delays are the worst legal case for every bit.
    """

    seed: int
    start_ps: int
    idle: int
    tdv_ps: tuple[int, int]
    th_ps: tuple[int, int]
    worst: bool


def _valid_cycles(divisor: int, edge: str) -> int:
    """System cycles of the PDM clock level a bit is valid in (high for ``"falling"``)."""
    return (divisor + 1) // 2 if edge == "falling" else divisor // 2


@dataclass(frozen=True)
class PDMDraw(_Draw):
    """One random PDM microphone timing (the fields of :class:`_Draw` and these).

    The microphone drives from the first clock edge that opens a level after ``start_ps``;
    ``th_ps`` is the delay from the sampling edge to the junk that follows the bit.

    Attributes
    ----------
    cfg : PDMConfig
        Receiver configuration; ``cfg.divisor`` is the clock ratio.
    edge : str
        The receiver's ``sample_edge``.
    """

    cfg: PDMConfig
    edge: str

    @property
    def valid_cycles(self) -> int:
        """System cycles of the clock level a bit is valid in."""
        return _valid_cycles(self.cfg.divisor, self.edge)


@dataclass(frozen=True)
class I2SDraw(_Draw):
    """One random I2S microphone timing (the fields of :class:`_Draw` and these).

    After ``start_ps`` the microphone watches WS and sends its first word in the next slot of
    its channel that starts with a WS edge it saw (a microphone cannot know a frame began
    before it listened); ``idle`` is SD's level before that and after its last word;
    ``tdv_ps``/``th_ps`` count from the falling SCK edge to the new bit and to the junk before
    it (only when shorter than that bit's ``tdv``).

    Attributes
    ----------
    cfg : I2SConfig
        ``cfg.divisor`` is the clock ratio.
    channel : str
        ``"left"`` or ``"right"``: the slot the microphone sends in.
    """

    cfg: I2SConfig
    channel: str

    @property
    def base(self) -> int:
        """First SCK cycle of the channel's slot in a frame."""
        return 0 if self.channel == "left" else I2S_SLOT


@dataclass
class MicRun:
    """What one receiver simulation produced.

    Attributes
    ----------
    got : list of int
        Every PCM sample the receiver delivered, up to ``len(want)``.
    want : numpy.ndarray
        The golden model's PCM for the bits the receiver was due to sample.
    want_sent : numpy.ndarray
        The same for the bits the microphone actually sent: ``want`` unless a bit was
        flipped behind the golden model's back.
    first : int
        PDM: the clock level (from reset) that carried the microphone's first bit;
        I2S: the frame of its first word.
    details : dict
        The testbench's record: delays used (``tdv_used``, ``th_used``), ``start_cycle``,
        ``cycles`` of the samples, ``overrun``, ``timed_out``, ``wall_seconds``.
    """

    got: list[int]
    want: np.ndarray
    want_sent: np.ndarray
    first: int
    details: dict = field(default_factory=dict)

    def mismatch(self) -> str | None:
        """:func:`first_mismatch` of this run."""
        return first_mismatch(self.got, self.want)


# --- Draws and stimulus ---------------------------------------------------------------------

def _delays(rng: np.random.Generator, valid_ps: int, other_ps: int | None,
            worst: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """``tdv`` and ``th`` ranges: the bit by ``valid_ps - SETUP_PS``; the junk (PDM: within the
    ``other_ps`` level before the next bit; I2S: ``other_ps`` None, before the bit)."""
    tdv_max = valid_ps - SETUP_PS
    th_max = (other_ps if other_ps is not None else valid_ps) - SETUP_PS
    if worst:
        return (tdv_max, tdv_max), (HOLD_MIN_PS, HOLD_MIN_PS)
    # A random sub-range per draw: some draws cluster their delays, others spread them.
    lo, hi = sorted(int(v) for v in rng.integers(1, tdv_max + 1, 2))
    return (lo, hi), (HOLD_MIN_PS, int(rng.integers(HOLD_MIN_PS, th_max + 1)))


def draw_pdm(seed: int) -> PDMDraw:
    """A random valid PDM configuration and microphone timing; odd seeds take the worst-case
    delays (latest bit, earliest junk) for every bit.

    The configuration is built like ``tests/test_microphone.py`` does, so that the clock ratio
    ranges over every divisor of :data:`DIVISORS` the CIC order allows, not only the one
    :func:`kwshw.microphone.pdm_config` would pick for a given system clock.
    """
    rng = np.random.default_rng([seed, 0x9D3])
    order = int(rng.integers(3, 6))
    fir_d = int(rng.choice(FIR_DECIMATIONS))
    lo, hi = PDM_DECIMATIONS
    r = int(rng.integers(math.ceil(lo / fir_d), hi // fir_d + 1))
    divisor = int(rng.integers(max(DIVISORS.start, order), DIVISORS.stop))
    cfg = PDMConfig(PCM_RATE * divisor * r * fir_d, divisor, r, fir_d, cic_order=order)
    edge = ("falling", "rising")[int(rng.integers(2))]
    worst = bool(seed % 2)
    valid = _valid_cycles(divisor, edge)
    tdv, th = _delays(rng, valid * PERIOD_PS, (divisor - valid) * PERIOD_PS, worst)
    # Up to two and a half output samples of idle levels before the microphone's first bit.
    start = int(rng.integers(0, 5 * cfg.decimation * divisor * PERIOD_PS // 2))
    return PDMDraw(seed=seed, cfg=cfg, edge=edge, start_ps=start, idle=int(rng.integers(2)),
                   tdv_ps=tdv, th_ps=th, worst=worst)


def draw_i2s(seed: int) -> I2SDraw:
    """A random I2S divisor, slot and microphone timing; odd seeds take the worst case."""
    rng = np.random.default_rng([seed, 0x125])
    divisor = int(rng.integers(DIVISORS.start, DIVISORS.stop))
    cfg = I2SConfig(divisor * I2S_FRAME * PCM_RATE, divisor)
    worst = bool(seed % 2)
    tdv, th = _delays(rng, divisor // 2 * PERIOD_PS, None, worst)
    # Anywhere in the first two and a half frames: before or after its slot's WS edge.
    start = int(rng.integers(0, 5 * I2S_FRAME * divisor * PERIOD_PS // 2))
    channel = ("left", "right")[int(rng.integers(2))]
    return I2SDraw(seed=seed, cfg=cfg, channel=channel, start_ps=start,
                   idle=int(rng.integers(2)), tdv_ps=tdv, th_ps=th, worst=worst)


def sweep_pcm(samples: int, seed: int, peak: float = 0.7) -> np.ndarray:
    """16 kHz int16-range PCM that looks like audio: an exponential sine sweep from 100 Hz to
    7 kHz (the passband) at ``peak`` of full scale, plus white noise 30 dB below it."""
    rng = np.random.default_rng([seed, 0x5EE])
    t = np.arange(samples) / PCM_RATE
    f0, f1, dur = 100.0, 7000.0, samples / PCM_RATE
    k = math.log(f1 / f0)
    phase = 2 * math.pi * f0 * dur / k * (np.exp(t / dur * k) - 1)
    x = peak * np.sin(phase) + 0.03 * peak * rng.standard_normal(samples)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int64)


def i2s_words(samples: int, seed: int) -> np.ndarray:
    """24-bit I2S samples: :func:`sweep_pcm` scaled to 24 bits with random low bytes (which the
    rounding to 16 bits sees), and at random places the rounding and saturation edges."""
    rng = np.random.default_rng([seed, 0x24])
    s = sweep_pcm(samples, seed, peak=0.9) * 256 + rng.integers(-128, 128, samples)
    edges = [(1 << 23) - 1, -(1 << 23), (1 << 23) - 128, (1 << 23) - 129, 127, 128, -128, -129]
    s[rng.choice(samples, len(edges), replace=False)] = edges
    return np.clip(s, -(1 << 23), (1 << 23) - 1)


# --- Golden model and comparison --------------------------------------------------------------

def pdm_golden(draw: PDMDraw, bits: np.ndarray, first: int) -> np.ndarray:
    """Golden PCM of every complete sample the receiver takes: ``first`` idle levels, then
    ``bits``, from reset; the incomplete last sample (closed by idle levels) is left out."""
    stream_ = np.concatenate([np.full(first, draw.idle, np.uint8), np.asarray(bits, np.uint8)])
    t = draw.cfg.decimation
    return PDMDecimator(draw.cfg)(stream_[:len(stream_) // t * t])


def i2s_golden(draw: I2SDraw, words: np.ndarray, first: int) -> np.ndarray:
    """Golden PCM of the receiver's frames: ``first`` frames of the idle line (all data bits
    ``idle``: the 24-bit word 0 or -1), then one frame per word."""
    pre = np.full(first, -draw.idle, np.int64)
    sd = i2s_sd_bits(np.concatenate([pre, np.asarray(words, np.int64)]), draw.channel)
    return i2s_receive(sd, draw.channel)


def first_mismatch(got: Sequence[int], want: Sequence[int]) -> str | None:
    """None when ``got`` equals ``want`` sample for sample; else where they first differ."""
    want = [int(v) for v in want]
    for k, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"sample {k}: receiver {g}, golden {w} (of {len(want)})"
    if len(got) != len(want):
        return f"{len(got)} samples from the receiver, {len(want)} from the golden model"
    return None


# --- Simulation ------------------------------------------------------------------------------

class _PDMHarness(wiring.Component):
    """The receiver with plain pin names: ``bclk`` (its ``clk`` would clash with the system
    clock's port in the Verilog) and ``din``; ``overrun_clear`` tied low."""

    def __init__(self, cfg: PDMConfig, edge: str) -> None:
        self._rx = PDMReceiver(cfg, sample_edge=edge)
        super().__init__({"bclk": Out(1), "din": In(1),
                          "pcm": Out(stream.Signature(signed(PCM_WIDTH))), "overrun": Out(1)})

    @property
    def latency(self) -> int:
        return self._rx.latency

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rx = rx = self._rx
        m.d.comb += [self.bclk.eq(rx.clk), rx.data.eq(self.din), self.overrun.eq(rx.overrun)]
        wiring.connect(m, rx.pcm, wiring.flipped(self.pcm))
        return m


class _I2SHarness(wiring.Component):
    """The I2S receiver with the same pin names: ``bclk`` (SCK), ``ws``, ``din`` (SD)."""

    def __init__(self, cfg: I2SConfig, channel: str) -> None:
        self._rx = I2SReceiver(cfg, channel=channel)
        super().__init__({"bclk": Out(1), "ws": Out(1), "din": In(1),
                          "pcm": Out(stream.Signature(signed(PCM_WIDTH))), "overrun": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.rx = rx = self._rx
        m.d.comb += [self.bclk.eq(rx.sck), self.ws.eq(rx.ws), rx.sd.eq(self.din),
                     self.overrun.eq(rx.overrun)]
        wiring.connect(m, rx.pcm, wiring.flipped(self.pcm))
        return m


def _simulate(component, name: str, tb_cfg: dict, build_dir: str | Path,
              simulator: str) -> dict:
    """Convert, run :mod:`sim.tb_mic` with ``tb_cfg`` and return its record."""
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    src = toolchain.convert(component, build_dir / f"{name}.v", name=name)
    out = build_dir / "mic.json"
    cfg_path = build_dir / "mic_config.json"
    cfg_path.write_text(json.dumps({**tb_cfg, "out": str(out), "period_ns": toolchain.CLOCK_NS,
                                    "stall_prob": STALL_PROB, "max_stall": MAX_STALL}))
    toolchain.simulate([src], name, "sim.tb_mic", simulator=simulator, build_dir=build_dir,
                       env={"KWSHW_TB_CONFIG": str(cfg_path)})
    return json.loads(out.read_text())


def _common(draw: PDMDraw | I2SDraw) -> dict:
    d = {k: v for k, v in asdict(draw).items() if k in ("seed", "start_ps", "idle")}
    return {**d, "tdv_ps": list(draw.tdv_ps), "th_ps": list(draw.th_ps)}


def run_pdm(draw: PDMDraw, pcm: np.ndarray, build_dir: str | Path, *,
            simulator: str = "icarus", flip: int | None = None) -> MicRun:
    """Simulate the PDM receiver of ``draw`` with a microphone playing :func:`pdm_modulate` of
    ``pcm``; ``flip``: the microphone sends that bit inverted (the golden model does not
    know), to show that a one-bit error is caught."""
    bits = pdm_modulate(np.asarray(pcm, np.int64), draw.cfg)
    sent = bits.copy()
    if flip is not None:
        sent[flip] ^= 1
    cfg = draw.cfg
    dut = _PDMHarness(cfg, draw.edge)
    # Time for the last sample: two sample periods (the bits the microphone did not send
    # are idle levels) and the pipeline.
    tail = 2 * cfg.decimation * cfg.divisor + dut.latency + 100
    rec = _simulate(dut, "mic_pdm",
                    {**_common(draw), "kind": "pdm", "edge": draw.edge,
                     "bits": "".join("01"[b] for b in sent),
                     "bits_per_sample": cfg.decimation, "tail_cycles": tail},
                    build_dir, simulator)
    first = rec["first"]
    return MicRun(rec["got"], pdm_golden(draw, bits, first), pdm_golden(draw, sent, first),
                  first, rec)


def run_i2s(draw: I2SDraw, words: np.ndarray, build_dir: str | Path, *,
            simulator: str = "icarus", flip: tuple[int, int] | None = None) -> MicRun:
    """Simulate the I2S receiver of ``draw`` with a microphone sending ``words``; ``flip``:
    ``(word, bit)`` (bit 0 the MSB) sent inverted, unknown to the golden model."""
    words = np.asarray(words, np.int64)
    sent = words.copy()
    if flip is not None:
        w, b = flip
        raw = (int(sent[w]) ^ (1 << (I2S_BITS - 1 - b))) & ((1 << I2S_BITS) - 1)
        sent[w] = raw - ((raw >> (I2S_BITS - 1)) << I2S_BITS)
    tail = 2 * I2S_FRAME * draw.cfg.divisor + 50
    rec = _simulate(_I2SHarness(draw.cfg, draw.channel), "mic_i2s",
                    {**_common(draw), "kind": "i2s", "channel": draw.channel,
                     "words": [int(v) for v in sent], "tail_cycles": tail},
                    build_dir, simulator)
    first, rem = divmod(rec["lock_cycle"] - draw.base, I2S_FRAME)
    # The microphone found its slot from WS alone; the golden framing counts from reset.
    if rem:
        raise AssertionError(f"the microphone's slot starts at SCK cycle {rec['lock_cycle']}, "
                             f"not at a multiple of {I2S_FRAME} plus {draw.base}: WS disagrees "
                             f"with the receiver's framing")
    return MicRun(rec["got"], i2s_golden(draw, words, first), i2s_golden(draw, sent, first),
                  first, rec)
