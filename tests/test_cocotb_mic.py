"""The microphone receivers as Verilog under cocotb with random microphone timing, bit-exact
against the golden model (:mod:`kwshw.microphone`).

Each draw (:mod:`sim.mic`) picks a random receiver configuration (clock ratio system clock /
bit clock from 4 to 12, PDM decimations and CIC order, PDM sampling edge or I2S slot), when
the microphone powers on after reset (any picosecond of the first two and a half output
samples or frames), the idle level of the data line, and the microphone's output delays after
the clock edges it answers (a spread range, or for odd seeds the worst legal case: every bit
as late as the contract allows and junk right after the sampling edge). The microphone model
(:mod:`sim.tb_mic`) watches the receiver's own clock pins; the audio is a sine sweep with
noise. Every PCM sample is compared with the golden model from the first one on; the
microphone's start is checked against the receivers' documented clocks, and a flipped bit
shows that the comparison fails when it should.
"""

from __future__ import annotations

import numpy as np
import pytest

from kwshw.microphone import I2S_FRAME
from sim import toolchain
from sim.mic import (
    HOLD_MIN_PS,
    PERIOD_PS,
    SETUP_PS,
    I2SDraw,
    MicRun,
    PDMDraw,
    draw_i2s,
    draw_pdm,
    first_mismatch,
    i2s_words,
    run_i2s,
    run_pdm,
    sweep_pcm,
)

SIM = "icarus"
needs_icarus = pytest.mark.skipif(not toolchain.have_simulator(SIM),
                                  reason="Icarus Verilog not installed")
needs_verilator = pytest.mark.skipif(not toolchain.have_simulator("verilator"),
                                     reason="Verilator not installed")

#: Seeds picked so that the draws together cover both PDM edges (the rising one with odd
#: divisors, where the valid level is the shorter half), both I2S slots, the smallest
#: divisor, odd ones, and spread and worst-case delays; test_draws_cover_the_timing_space
#: guards that.
PDM_SEEDS = (8, 13, 17)
I2S_SEEDS = (14, 17, 19)
#: Output samples per run: past the PDM FIR's startup (31 to 159 taps at the CIC rate) and
#: through the sweep, yet a few seconds of simulation each.
PDM_SAMPLES, I2S_SAMPLES = 150, 250
#: The draw also run in Verilator (the tightest: rising edge, odd divisor, worst delays),
#: whose scheduling of the microphone's picosecond writes around clock edges differs from
#: Icarus's; one draw, as its build takes most of this file's time.
VERILATOR_SEED = 13


def _pdm_first(draw: PDMDraw) -> int:
    """The clock level that carries the microphone's first bit, from the receiver's documented
    clock alone: bit ``i`` spans system cycles ``i d .. i d + d - 1`` from reset, high for the
    first ``ceil(d / 2)``; the microphone answers the first edge opening a valid level at or
    after its power-on (the high level of bit 0 is open from reset: no edge)."""
    d, high = draw.cfg.divisor, (draw.cfg.divisor + 1) // 2
    opens = 0 if draw.edge == "falling" else high       # cycle of bit 0's opening edge
    first = -(-(draw.start_ps - opens * PERIOD_PS) // (d * PERIOD_PS))     # ceil, exact
    return max(first, 1 if draw.edge == "falling" else 0)


def _i2s_first(draw: I2SDraw) -> int:
    """The frame of the microphone's first word: the first slot of its channel whose WS edge
    (at the falling SCK edge beginning SCK cycle ``k = 64 f + base``) it sees, i.e. whose WS it
    also sampled one rising SCK edge earlier, at system cycle ``(k - 1) d + floor(d / 2)``."""
    d, low = draw.cfg.divisor, draw.cfg.divisor // 2
    f = 0
    while not (f * I2S_FRAME + draw.base >= 1 and
               ((f * I2S_FRAME + draw.base - 1) * d + low) * PERIOD_PS >= draw.start_ps):
        f += 1
    return f


def _check(run: MicRun, draw: PDMDraw | I2SDraw, samples: int) -> None:
    """Everything a run must show besides bit-exactness."""
    d = run.details
    assert not d["timed_out"], f"{draw}: {len(run.got)} of {d['count']} samples came out"
    assert d["overrun"] == 0
    # Every delay stayed within the draw's legal range; worst-case draws used only the worst.
    assert draw.tdv_ps[0] <= d["tdv_used"][0] <= d["tdv_used"][1] <= draw.tdv_ps[1]
    assert draw.th_ps[0] <= d["th_used"][0] <= d["th_used"][1] <= draw.th_ps[1]
    assert HOLD_MIN_PS <= draw.th_ps[0]
    # The whole stimulus was compared, and it is audio, not silence.
    assert len(run.want) == d["count"] >= samples
    assert np.abs(run.want).max() > 5000


_PDM_PARAMS = [pytest.param(seed, SIM, marks=needs_icarus) for seed in PDM_SEEDS] + [
    pytest.param(VERILATOR_SEED, "verilator", marks=needs_verilator,
                 id=f"{VERILATOR_SEED}-verilator")]


@pytest.mark.parametrize(("seed", "simulator"), _PDM_PARAMS)
def test_pdm_receiver_random_timing(tmp_path, seed, simulator):
    draw = draw_pdm(seed)
    valid_ps = draw.valid_cycles * PERIOD_PS
    assert draw.tdv_ps[1] <= valid_ps - SETUP_PS
    assert draw.th_ps[1] <= draw.cfg.divisor * PERIOD_PS - valid_ps - SETUP_PS
    run = run_pdm(draw, sweep_pcm(PDM_SAMPLES, seed), tmp_path, simulator=simulator)
    assert run.first == _pdm_first(draw), draw
    t = draw.cfg.decimation
    assert len(run.want) == (run.first + PDM_SAMPLES * t) // t
    _check(run, draw, PDM_SAMPLES)
    assert run.mismatch() is None, f"{draw}: {run.mismatch()}"


@needs_icarus
@pytest.mark.parametrize("seed", I2S_SEEDS)
def test_i2s_receiver_random_timing(tmp_path, seed):
    draw = draw_i2s(seed)
    assert draw.tdv_ps[1] <= draw.cfg.divisor // 2 * PERIOD_PS - SETUP_PS
    run = run_i2s(draw, i2s_words(I2S_SAMPLES, seed), tmp_path, simulator=SIM)
    assert run.first == _i2s_first(draw), draw
    assert len(run.want) == run.first + I2S_SAMPLES
    _check(run, draw, I2S_SAMPLES)
    assert run.mismatch() is None, f"{draw}: {run.mismatch()}"


@needs_icarus
def test_pdm_flipped_bit_is_reported(tmp_path):
    """One bit flipped in the microphone, not in the golden model: the comparison reports the
    first sample the flip changes, and the receiver is still exact on what it was sent."""
    draw = draw_pdm(8)
    n = 60
    flip = n * draw.cfg.decimation // 2
    run = run_pdm(draw, sweep_pcm(n, 8), tmp_path, simulator=SIM, flip=flip)
    changed = np.flatnonzero(run.want != run.want_sent)
    assert changed.size, "the flipped bit changes no golden sample"
    assert (run.mismatch() or "").startswith(f"sample {changed[0]}:"), run.mismatch()
    assert first_mismatch(run.got, run.want_sent) is None


@needs_icarus
def test_i2s_flipped_bit_is_reported(tmp_path):
    draw = draw_i2s(19)
    word = 7
    run = run_i2s(draw, i2s_words(16, 19), tmp_path, simulator=SIM, flip=(word, 0))
    assert (run.mismatch() or "").startswith(f"sample {run.first + word}:"), run.mismatch()
    assert first_mismatch(run.got, run.want_sent) is None


def test_first_mismatch():
    assert first_mismatch([1, 2, 3], np.array([1, 2, 3])) is None
    assert first_mismatch([1, 5, 3], [1, 2, 3]).startswith("sample 1: receiver 5, golden 2")
    assert "2 samples from the receiver, 3" in first_mismatch([1, 2], [1, 2, 3])


def test_draws_cover_the_timing_space():
    """The chosen seeds keep exercising the corners: if :mod:`sim.mic`'s draws change, pick
    seeds that cover these again."""
    pdm = [draw_pdm(s) for s in PDM_SEEDS]
    i2s = [draw_i2s(s) for s in I2S_SEEDS]
    assert {d.edge for d in pdm} == {"falling", "rising"}
    assert any(d.edge == "rising" and d.cfg.divisor % 2 and d.worst for d in pdm)
    assert {d.worst for d in pdm} == {d.worst for d in i2s} == {False, True}
    assert {d.channel for d in i2s} == {"left", "right"}
    assert min(d.cfg.divisor for d in i2s) == 4
    assert any(d.cfg.divisor % 2 for d in i2s)
    assert {d.idle for d in pdm + i2s} == {0, 1}
    assert len({d.cfg.cic_order for d in pdm}) > 1
    assert len({d.cfg.fir_decimation for d in pdm}) > 1
    assert max(d.cfg.divisor for d in pdm + i2s) >= 9
    # Reproducible: the same seed, the same draw.
    assert draw_pdm(PDM_SEEDS[0]) == pdm[0] and draw_i2s(I2S_SEEDS[0]) == i2s[0]
