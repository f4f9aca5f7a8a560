"""MAC array: ``A_j = sum_i p_i q_ij`` and ``P = sum_i p_i`` per pass, with the serial read-out."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from kwshw import arith
from kwshw.hw.mac_array import MACArray


@pytest.mark.parametrize("interval", [1, 2, 3])
@pytest.mark.parametrize(("lanes", "bits", "n_in", "n_out"), [
    (1, 4, 5, 3),
    (4, 8, 7, 10),     # n_out not a multiple of P: the last pass has 2 columns
    (8, 4, 3, 8),      # n_in < interval * P: passes spaced interval * P cycles apart
    (8, 8, 1, 5),      # a single input
])
def test_mac_array_passes(lanes, bits, n_in, n_out, interval):
    rng = np.random.default_rng(lanes * 100 + n_in)
    m_code = arith.code_max(bits)
    acc_w = arith.unsigned_width(n_in * m_code * m_code)
    dut = MACArray(lanes, bits, acc_w, arith.unsigned_width(n_in * m_code), interval=interval)
    frames = [rng.integers(0, m_code + 1, n_in) for _ in range(3)]
    frames.append(np.full(n_in, m_code))           # every product at its maximum
    frames.append(np.zeros(n_in, np.int64))         # all codes 0 (R = 0)
    q = rng.integers(0, m_code + 1, (n_in, n_out))
    q[:, 0] = m_code
    passes = -(-n_out // lanes)
    padded = np.zeros((n_in, passes * lanes), np.int64)
    padded[:, :n_out] = q
    spacing = max(n_in, interval * lanes)
    results, times, psums, held = [], [], [], []

    async def driver(ctx):
        for p in frames:
            for k in range(passes):
                cols = min(lanes, n_out - k * lanes)
                for i in range(spacing):
                    ctx.set(dut.inp.valid, i < n_in)
                    if i < n_in:
                        word = [int(c) for c in padded[i, k * lanes:(k + 1) * lanes]]
                        ctx.set(dut.inp.payload, {"code": int(p[i]), "weights": word,
                                                  "first": i == 0, "last": i == n_in - 1,
                                                  "cols": cols})
                    await ctx.tick()
        ctx.set(dut.inp.valid, 0)
        await ctx.tick().repeat(interval * lanes + 3)

    async def monitor(ctx):
        cycle, since = 0, None
        async for _, _, valid, acc, lane, last, psum in ctx.tick().sample(
                dut.result.valid, dut.result.payload.acc, dut.result.payload.lane,
                dut.result.payload.last, dut.psum):
            cycle += 1
            if since is not None and cycle - since[0] < interval:
                # The scaler reads `acc` in the cycles after its beat, until the next one.
                held.append(acc == since[1])
            if valid:
                results.append((acc, lane, last))
                times.append(cycle)
                psums.append(psum)
                since = (cycle, acc)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(monitor, background=True)
    sim.run()

    want = []
    for p in frames:
        a = p @ q
        for k in range(passes):
            cols = min(lanes, n_out - k * lanes)
            want += [(int(a[k * lanes + l]), l, int(l == cols - 1)) for l in range(cols)]
    assert results == want
    # Results of one pass come exactly `interval` cycles apart.
    gaps = np.diff(times)
    assert (gaps >= interval).all() and (gaps[[r[1] != 0 for r in results[1:]]] == interval).all()
    want_psum = [int(p.sum()) for p in frames for _ in range(n_out)]
    assert psums == want_psum
    assert len(held) == (interval - 1) * len(results) and all(held)
