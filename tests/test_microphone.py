"""Microphone inputs: the golden PDM decimator and I2S conversion (widths, configurations,
response, round trip), and the receivers bit-exact against them in Amaranth's simulator."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from kwshw.arith import rshift_round
from kwshw.hw.memories import bram_blocks
from kwshw.hw.microphone import (
    I2SReceiver,
    PDMReceiver,
    pdm_fir_memories,
    pdm_fir_shared,
    pdm_history_depth,
)
from kwshw.microphone import (
    I2S_FRAME,
    PCM_RATE,
    I2SConfig,
    PDMConfig,
    PDMDecimator,
    i2s_config,
    i2s_receive,
    i2s_sd_bits,
    i2s_to_pcm,
    pdm_config,
    pdm_delay,
    pdm_modulate,
)


def _config(divisor: int, r: int = 25, d: int = 3, order: int = 5) -> PDMConfig:
    return PDMConfig(PCM_RATE * divisor * r * d, divisor, r, d, cic_order=order)


def _snr(pcm: np.ndarray, out: np.ndarray, cfg: PDMConfig, skip: int = 40) -> float:
    """SNR (dB) of the decimated round trip against the input delayed by :func:`pdm_delay`
    (a fractional delay, applied in the frequency domain)."""
    n = len(out)
    size = 1 << (2 * len(pcm)).bit_length()
    spec = np.fft.rfft(pcm.astype(np.float64), size)
    f = np.fft.rfftfreq(size)
    ref = np.fft.irfft(spec * np.exp(-2j * np.pi * f * pdm_delay(cfg)), size)[:n]
    err = out[skip:n - skip] - ref[skip:n - skip]
    return float(10 * np.log10(np.sum(ref[skip:n - skip] ** 2) / np.sum(err ** 2)))


def _speech_pcm(samples: int) -> np.ndarray:
    """A loud stretch of a real recording, or skip when $KWSHW_DATA has none."""
    root = os.environ.get("KWSHW_DATA")
    files = sorted(Path(root).glob("speech_commands_v0.02_test/yes/*.wav")) if root else []
    if not files:
        pytest.skip("no speech data ($KWSHW_DATA/speech_commands_v0.02_test)")
    from kwshw.audio import load_audio
    from kwshw.features_int import pcm_from_float
    pcm = pcm_from_float(load_audio(files[0])).astype(np.int64)
    energy = np.convolve(pcm.astype(np.float64) ** 2, np.ones(samples), "valid")
    start = int(np.argmax(energy))
    return pcm[start:start + samples]


# --- Configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize(("clk", "divisor", "r", "d"), [
    (12_000_000, 10, 25, 3), (24_000_000, 20, 25, 3), (48_000_000, 40, 25, 3),
    (16_000_000, 10, 25, 4), (36_000_000, 30, 25, 3), (10_000_000, 5, 25, 5),
])
def test_pdm_config_picks(clk, divisor, r, d):
    cfg = pdm_config(clk)
    assert (cfg.divisor, cfg.cic_decimation, cfg.fir_decimation) == (divisor, r, d)
    assert clk / (cfg.divisor * cfg.decimation) == PCM_RATE
    assert 1_000_000 <= cfg.pdm_hz <= 3_250_000


def test_bad_pdm_configurations_raise_clearly():
    with pytest.raises(ValueError, match=r"25 MHz.*1562\.5"):
        pdm_config(25_000_000)
    with pytest.raises(ValueError, match=r"12000000 / \(10 \* 25 \* 4\) = 12000 Hz, not exactly "
                                         r"16000"):
        PDMConfig(12_000_000, 10, 25, 4)
    with pytest.raises(ValueError, match=r"PDM clock .* 0\.8 MHz is outside"):
        PDMConfig(16000 * 50 * 15, 15, 25, 2)
    with pytest.raises(ValueError, match=r"4 MHz is outside"):
        PDMConfig(16000 * 250 * 6, 6, 50, 5)
    with pytest.raises(ValueError, match="divisor must be an integer of at least 5"):
        PDMConfig(16000 * 75 * 4, 4, 25, 3)
    with pytest.raises(ValueError, match="fir_taps must be odd"):
        PDMConfig(12_000_000, 10, 25, 3, fir_taps=94)


def test_i2s_configurations():
    assert i2s_config(24_576_000).divisor == 24
    assert I2SConfig(4 * 1_024_000, 4).sck_hz == 1_024_000
    with pytest.raises(ValueError, match=r"multiple of 1\.024 MHz.*12 MHz / 1\.024 MHz = 11\.7188"):
        i2s_config(12_000_000)
    with pytest.raises(ValueError, match=r"= 15625 Hz, not exactly 16000"):
        I2SConfig(12_000_000, 12)
    with pytest.raises(ValueError, match="divisor must be an integer of at least 4"):
        I2SConfig(3 * 1_024_000, 3)


# --- Golden PDM decimator ----------------------------------------------------------------------

@pytest.mark.parametrize("clk", [12_000_000, 16_000_000, 32_000_000])
def test_widths_hold_worst_case_inputs(clk):
    cfg = pdm_config(clk)
    dec = PDMDecimator(cfg)
    n, r = cfg.cic_order, cfg.cic_decimation
    assert dec.cic_width == n * math.ceil(math.log2(r)) + 1
    assert PDMDecimator(_config(8, 32, 2, 3)).cic_width == 3 * 5 + 2      # R = 2^5
    lo, hi = dec.hist_bounds
    assert -(1 << 15) <= lo and hi < (1 << 15)                  # HIST_WIDTH
    assert max(np.abs(dec.coefs)) < (1 << 15)                    # COEF_WIDTH
    assert np.array_equal(dec.coefs, dec.coefs[::-1])            # linear phase
    t = cfg.decimation
    ones, zeros = np.ones(300 * t, np.uint8), np.zeros(300 * t, np.uint8)
    # Long constant input: every integrator wraps many times, the CIC still gives +-R^N.
    assert np.all(dec.cic(ones)[n:] == r ** n)
    assert np.all(dec.cic(zeros)[n:] == -r ** n)
    assert np.all(np.abs(dec(ones)[60:] - 32767) <= 1)
    assert np.all(np.abs(dec(zeros)[60:] + 32768) <= 1)
    # Full-scale steps overshoot (FIR ripple): the accumulator bound holds, the output clips.
    steps = np.tile(np.repeat(np.array([1, 0], np.uint8), 40 * t), 4)
    out = dec(steps)
    assert out.max() == 32767 and out.min() == -32768
    acc = dec.fir(rshift_round(dec.cic(steps), dec.cic_shift))
    assert dec.acc_bounds[0] <= acc.min() and acc.max() <= dec.acc_bounds[1]
    assert dec.acc_width >= int(np.abs(acc).max()).bit_length() + 1


def test_fir_response_numbers():
    dec = PDMDecimator(pdm_config(12_000_000))
    lo, hi = dec.passband_ripple()
    assert -0.1 < lo and hi < 0.05                               # 0 .. 7 kHz flat
    assert dec.alias_rejection() < -70.0
    db = 20 * np.log10(dec.response(np.array([1000.0, 8000.0, 9000.0, 20_000.0, 47_000.0])))
    assert abs(db[0]) < 0.05 and db[1] < -6 and db[2] < -70 and db[3] < -70 and db[4] < -70
    # DC gain: full-scale PDM density is 2^15 PCM LSB, up to the rounding of the ROM's sum.
    g = dec.hist_bounds[1] * int(dec.coefs.sum()) / 2 ** (dec.fir_shift + 15)
    assert abs(g - 1) < 1e-4


def test_pdm_round_trip_sine():
    cfg = pdm_config(12_000_000)
    pcm = np.round(10_000 * np.sin(2 * np.pi * 1000.3 * np.arange(1200) / PCM_RATE))
    bits = pdm_modulate(pcm.astype(np.int64), cfg)
    assert len(bits) == 1200 * cfg.decimation
    assert np.array_equal(bits, pdm_modulate(pcm.astype(np.int64), cfg))   # deterministic
    assert _snr(pcm, PDMDecimator(cfg)(bits), cfg) > 60


@pytest.mark.data
def test_pdm_round_trip_speech():
    cfg = pdm_config(12_000_000)
    pcm = _speech_pcm(4000)
    assert _snr(pcm, PDMDecimator(cfg)(pdm_modulate(pcm, cfg)), cfg) > 40


# --- Golden I2S --------------------------------------------------------------------------------

def test_i2s_conversion_and_framing():
    s24 = np.array([0, 127, 128, -128, -129, (1 << 23) - 1, (1 << 23) - 129, -(1 << 23)])
    assert list(i2s_to_pcm(s24)) == [0, 0, 1, 0, -1, 32767, 32767, -32768]
    assert i2s_to_pcm(-(1 << 23)) == -32768
    rng = np.random.default_rng(3)
    samples = rng.integers(-(1 << 23), 1 << 23, 50)
    for channel, base in (("left", 0), ("right", 32)):
        sd = i2s_sd_bits(samples, channel)
        frames = sd.reshape(-1, I2S_FRAME)
        assert frames[0, base + 1] == (samples[0] < 0)           # MSB one SCK after the edge
        mask = np.zeros(I2S_FRAME, bool)
        mask[base + 1:base + 25] = True
        assert not frames[:, ~mask].any()                         # tri-stated: 0
        assert np.array_equal(i2s_receive(sd, channel), i2s_to_pcm(samples))
        junk = sd.copy().reshape(-1, I2S_FRAME)
        junk[:, ~mask] = rng.integers(0, 2, junk[:, ~mask].shape)
        assert np.array_equal(i2s_receive(junk.reshape(-1), channel), i2s_to_pcm(samples))


# --- Gateware ----------------------------------------------------------------------------------

def _pdm_mic(dut: PDMReceiver, bits: np.ndarray, tdv: int, edge: str, rng, cycles: int):
    """A PDM microphone: bit ``i`` on ``data`` from ``tdv`` cycles into the ``i``-th clock
    level it is valid in until that level ends; random junk at every other time."""
    level = 1 if edge == "falling" else 0

    async def mic(ctx):
        prev, i, run = 1 - level, -1, 0
        junk = rng.integers(0, 2, cycles).tolist()
        for c in range(cycles):
            clk = ctx.get(dut.clk)
            value = junk[c]
            if clk == level:
                i, run = (i + 1, 0) if prev != level else (i, run + 1)
                if run >= tdv and i < len(bits):
                    value = int(bits[i])
            prev = clk
            ctx.set(dut.data, value)
            await ctx.tick()
    return mic


def _sink(dut, got: list, rng, cycles: int, p_ready: float = 0.9):
    """Collect ``pcm`` with ``ready`` low now and then (never long enough to drop)."""
    async def sink(ctx):
        for _ in range(cycles):
            ready = int(rng.random() < p_ready)
            ctx.set(dut.pcm.ready, ready)
            if ready and ctx.get(dut.pcm.valid):
                got.append(ctx.get(dut.pcm.payload))
            await ctx.tick()
    return sink


def _run_pdm(cfg: PDMConfig, bits: np.ndarray, seed: int, edge: str | None = None) -> list:
    rng = np.random.default_rng(seed)
    edge = edge or ("falling", "rising")[int(rng.integers(2))]
    high = (cfg.divisor + 1) // 2 if edge == "falling" else cfg.divisor // 2
    # The data settles any time in its level: odd seeds take the latest (the worst case).
    tdv = high - 1 if seed % 2 else int(rng.integers(0, high))
    dut = PDMReceiver(cfg, sample_edge=edge)
    cycles = (len(bits) + 2) * cfg.divisor + 2 * cfg.fir_taps + 4 * cfg.cic_order + 20
    got: list = []
    sim = Simulator(dut)
    sim.add_clock(1e-7)
    sim.add_testbench(_pdm_mic(dut, bits, tdv, edge, rng, cycles))
    sim.add_testbench(_sink(dut, got, rng, cycles))
    sim.run()
    return got


@pytest.mark.parametrize(("seed", "divisor", "r", "d", "order"), [
    (1, 5, 25, 3, 5), (2, 7, 25, 5, 4), (3, 6, 25, 4, 5), (4, 8, 32, 2, 3), (5, 4, 16, 4, 4),
])
def test_pdm_receiver_bit_exact_random(seed, divisor, r, d, order):
    """Random PCM through the receiver, bit for bit; the last configuration (4.096 MHz) has
    the FIR's history and taps in memories of their own, the others share one."""
    cfg = _config(divisor, r, d, order)
    assert pdm_fir_shared(cfg) == (seed != 5)
    rng = np.random.default_rng(seed)
    n = 45
    pcm = rng.integers(-20_000, 20_000, n)
    bits = pdm_modulate(pcm, cfg)
    want = PDMDecimator(cfg)(bits)
    got = _run_pdm(cfg, bits, seed)
    assert got == list(want)


def test_pdm_receiver_saturates_like_golden():
    cfg = _config(5)
    t = cfg.decimation
    bits = np.tile(np.repeat(np.array([1, 0], np.uint8), 12 * t), 2)
    want = PDMDecimator(cfg)(bits)
    assert want.max() == 32767 and want.min() == -32768
    assert _run_pdm(cfg, bits, 5, "falling") == list(want)


@pytest.mark.data
def test_pdm_receiver_bit_exact_speech():
    cfg = _config(6)
    bits = pdm_modulate(_speech_pcm(80), cfg)
    want = PDMDecimator(cfg)(bits)
    assert np.abs(want[40:]).max() > 1000                        # real signal, past warm-up
    assert _run_pdm(cfg, bits, 6) == list(want)


@pytest.mark.parametrize("edge", ["falling", "rising"])
def test_pdm_receiver_latency(edge):
    cfg = _config(6, 25, 3, 4)
    dut = PDMReceiver(cfg, sample_edge=edge)
    high = (cfg.divisor + 1) // 2
    # The pin is taken in the last cycle of the level, read out of the synchronizer 2 later.
    read = (cfg.decimation - 1) * cfg.divisor + (high - 1 if edge == "falling" else
                                                 cfg.divisor - 1) + 2
    seen = {}

    async def bench(ctx):
        ctx.set(dut.pcm.ready, 1)
        for cycle in range(read + dut.latency + 2):
            if ctx.get(dut.pcm.valid):
                seen["first"] = cycle
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-7)
    sim.add_testbench(bench)
    sim.run()
    assert seen.get("first") == read + dut.latency


def test_pdm_history_depth_and_the_fir_memories():
    """The history and the coefficients share one memory (one iCE40 block RAM) when two
    reads per tap fit an output sample's cycles (``2 T + 4``: 194 of 375 here); at 4.096 MHz
    (256 cycles, 127 taps) each has its own."""
    cfg = _config(5)
    assert pdm_history_depth(cfg) == 128 >= cfg.fir_taps + cfg.fir_decimation - 1
    assert pdm_fir_shared(cfg)
    assert pdm_fir_memories(cfg) == {"history and taps": (16, 128 + 95)}
    assert bram_blocks("ice40", 16, 128 + 95) == 1
    slow = _config(4, 16, 4, 4)
    assert (slow.fir_taps, slow.divisor * slow.decimation) == (127, 256)
    assert pdm_fir_memories(slow) == {"history": (16, 256), "taps": (16, 127)}


def test_pdm_receiver_refuses_taps_that_do_not_fit_a_sample():
    """With a memory each, ``T`` taps need ``T + 4`` of an output sample's cycles."""
    def cfg(taps: int) -> PDMConfig:
        return PDMConfig(PCM_RATE * 4 * 75, 4, 25, 3, cic_order=4, fir_taps=taps)

    assert pdm_fir_shared(cfg(147)) and not pdm_fir_shared(cfg(149))
    PDMReceiver(cfg(295))
    with pytest.raises(ValueError, match="297 FIR taps do not fit the 300 system cycles"):
        PDMReceiver(cfg(297))


def _run_overrun(dut, drive, period: int):
    """Hold ``ready`` low over two samples: the first waits, the second is dropped and
    ``overrun`` sticks until cleared."""
    seen = {}

    async def bench(ctx):
        ctx.set(dut.pcm.ready, 0)
        await ctx.tick().until(dut.pcm.valid)
        first = ctx.get(dut.pcm.payload)
        assert not ctx.get(dut.overrun)
        await ctx.tick().until(dut.overrun)
        assert ctx.get(dut.pcm.valid) and ctx.get(dut.pcm.payload) == first
        ctx.set(dut.pcm.ready, 1)
        await ctx.tick()
        ctx.set(dut.pcm.ready, 0)
        await ctx.tick().repeat(period // 2)
        assert ctx.get(dut.overrun) and not ctx.get(dut.pcm.valid)
        ctx.set(dut.overrun_clear, 1)
        await ctx.tick()
        ctx.set(dut.overrun_clear, 0)
        assert not ctx.get(dut.overrun)
        seen["ok"] = True

    sim = Simulator(dut)
    sim.add_clock(1e-7)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(bench, background=True)
    sim.run_until(8 * period * 1e-7)            # bounded: a broken receiver fails, not hangs
    assert seen.get("ok")


def test_pdm_receiver_overrun():
    cfg = _config(5)
    dut = PDMReceiver(cfg)

    async def drive(ctx):
        while True:                                               # a loud-ish tone of ones
            ctx.set(dut.data, int(ctx.get(dut.clk)))
            await ctx.tick()
    _run_overrun(dut, drive, cfg.divisor * cfg.decimation)


def _i2s_mic(dut: I2SReceiver, sd: np.ndarray, tdv: int, rng, cycles: int):
    """An I2S microphone: the SD bit of SCK cycle ``k`` from ``tdv`` cycles after the ``k``-th
    falling edge of ``sck`` (the first cycle after reset counts as one), junk before that."""
    async def mic(ctx):
        prev, k, run = 1, -1, 0
        junk = rng.integers(0, 2, cycles).tolist()
        for c in range(cycles):
            sck = ctx.get(dut.sck)
            k, run = (k + 1, 0) if (prev and not sck) else (k, run + 1)
            prev = sck
            value = int(sd[k]) if run >= tdv and 0 <= k < len(sd) else junk[c]
            ctx.set(dut.sd, value)
            await ctx.tick()
    return mic


@pytest.mark.parametrize(("seed", "divisor", "channel"), [
    (1, 4, "left"), (2, 5, "right"), (3, 7, "left"), (4, 6, "right"),
])
def test_i2s_receiver_bit_exact(seed, divisor, channel):
    rng = np.random.default_rng(seed)
    samples = rng.integers(-(1 << 23), 1 << 23, 12)
    samples[:4] = [(1 << 23) - 1, -(1 << 23), (1 << 23) - 128, 127]
    sd = i2s_sd_bits(samples, channel).reshape(-1, I2S_FRAME)
    # The other slot and the unused bits carry junk (another microphone, a floating line).
    base = 0 if channel == "left" else 32
    mask = np.ones(I2S_FRAME, bool)
    mask[base + 1:base + 25] = False
    sd[:, mask] = rng.integers(0, 2, sd[:, mask].shape)
    sd = sd.reshape(-1)
    want = i2s_receive(sd, channel)
    dut = I2SReceiver(I2SConfig(divisor * I2S_FRAME * PCM_RATE, divisor), channel=channel)
    # Settles before the rising edge; odd seeds take the latest time (the worst case).
    tdv = divisor // 2 - 1 if seed % 2 else int(rng.integers(0, divisor // 2))
    cycles = len(sd) * divisor + 8
    got: list = []
    sim = Simulator(dut)
    sim.add_clock(1e-7)
    sim.add_testbench(_i2s_mic(dut, sd, tdv, rng, cycles))
    sim.add_testbench(_sink(dut, got, rng, cycles))
    sim.run()
    assert got == list(want)


def test_i2s_receiver_ws_and_overrun():
    cfg = I2SConfig(4 * I2S_FRAME * PCM_RATE, 4)
    dut = I2SReceiver(cfg)

    ws: list = []

    async def drive(ctx):
        prev = 1
        while True:
            ctx.set(dut.sd, 1)
            sck = ctx.get(dut.sck)
            if sck and not prev:
                ws.append(ctx.get(dut.ws))              # WS at each rising edge of SCK
            prev = sck
            await ctx.tick()
    _run_overrun(dut, drive, cfg.divisor * I2S_FRAME)
    assert len(ws) > I2S_FRAME and ws[:I2S_FRAME] == [0] * 32 + [1] * 32
