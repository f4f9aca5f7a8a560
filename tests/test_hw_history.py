# amaranth: UnusedElaboratable=no
"""Convolution histories (one :class:`HistoryBank`): every streamed patch and every min/max
is the streaming schedule's ``history[-1 - taps].reshape(-1)`` (a history holds a layer's
inputs of the last ``depth`` hops, oldest first, and starts in the rest state; the patch of
:func:`kwshw.streaming.stream_layers` at that hop), from reset and after
``clear``, driven as the layer-by-layer schedule drives it (history ``h`` written while
history ``h - 1`` is read), with random gaps on the write side and back-pressure on the read
side."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig
from kwshw.hw.convs import history_specs
from kwshw.hw.history import HistoryBank, HistorySpec
from sim.folding import Folded
from sim.stimulus import random_model

# Banks of hand-made histories: a single tap of one channel, uneven ages, rest extremes, a
# newest read position older than 0 (window_ages when (P - K) % S != 0), more channels than
# the other histories (the rest ROM's padding).
HAND_BANKS = [
    [HistorySpec(1, 1, (0,), (-3,))],
    [HistorySpec(1, 3, (4, 2, 0), (7, -2, 0)), HistorySpec(2, 2, (7, 4, 1), (ACT_MAX, ACT_MIN))],
    [HistorySpec(1, 4, (5, 1, 0), (0, 0, 0, 0)), HistorySpec(2, 1, (0,), (ACT_MIN,)),
     HistorySpec(3, 5, (2, 1), (1, 2, 3, 4, 5))],
]


def _model_specs(seed: int) -> list[HistorySpec]:
    """The histories of a random small convolutional model, as the accelerator builds them."""
    rng = np.random.default_rng(100 + seed)
    features = FeatureConfig(n_mels=int(rng.integers(2, 5)), context=int(rng.integers(8, 14)),
                             stride=int(rng.integers(1, 3)))
    convs, positions = [], features.context
    for _ in range(int(rng.integers(1, 4))):
        if positions < 2:
            break
        k = int(rng.integers(min(positions, 2), min(positions, 4) + 1))
        s = int(rng.integers(1, 3))
        convs.append((k, s, int(rng.integers(1, 6))))
        positions = (positions - k) // s + 1
    model = random_model([3], 4, n_out=2, features=features, convs=convs, seed=seed)
    return history_specs(model.plans(), features.stride)


def _steps(rng, spec: HistorySpec, kind: int) -> np.ndarray:
    """One entry for ``spec``: wide values with extremes (kind 0), all above the rest vector
    (1: its min shows while rest taps remain) or all below (2: its max shows)."""
    c, rest = spec.channels, np.array(spec.rest)
    if kind == 1:
        return rng.integers(min(int(rest.max()) + 1, ACT_MAX), ACT_MAX + 1, c)
    if kind == 2:
        return rng.integers(ACT_MIN, max(int(rest.min()), ACT_MIN + 1), c)
    wide = rng.integers(ACT_MIN, ACT_MAX + 1, c)
    wide[rng.random(c) < 0.1] = ACT_MAX
    wide[rng.random(c) < 0.1] = ACT_MIN
    return wide


def _set_entry_value(ctx, bank: HistoryBank, entry: list[int]) -> None:
    """Present the last of ``entry``'s values so far."""
    ctx.set(bank.inp.payload, entry[-1])


def _track_entry(ctx, bank: HistoryBank, entry: list[int]) -> None:
    """After a value of ``entry`` is taken: the min/max of its values so far, as the
    accelerator's min-max tracker registers them."""
    ctx.set(bank.entry_min, min(entry))
    ctx.set(bank.entry_max, max(entry))


def _push(histories: list[np.ndarray], h: int, entry) -> None:
    """History ``h`` after ``entry`` was written: one hop older, ``entry`` the newest."""
    histories[h] = np.concatenate([histories[h][1:], np.asarray(entry, np.int64)[None, :]])


def _run(specs: list[HistorySpec], seed: int, memories=None) -> None:
    """Drive the bank hop by hop, layer by layer, and compare with the golden histories."""
    rng = np.random.default_rng(seed)
    bank = HistoryBank(specs, memories)
    clear = Signal()
    folded = Folded(bank)
    dut = ResetInserter(clear)(folded)
    expected: list[np.ndarray] = []
    got: list[tuple[int, int, int]] = []
    n = len(specs)

    async def layer_step(ctx, entry, passes: int) -> None:
        """Write ``entry`` (if any) to history ``write_to`` while ``passes`` requests read
        history ``read_from``, each side with random gaps."""
        entry = [] if entry is None else list(entry)
        sent: list[int] = []
        while entry or passes:
            write = bool(entry) and rng.random() < 0.7
            request = passes > 0 and rng.random() < 0.6
            ctx.set(bank.inp.valid, write)
            if write:
                _set_entry_value(ctx, bank, sent + [int(entry[0])])
            ctx.set(bank.req.valid, request)
            _, _, w_ready, r_ready = await ctx.tick().sample(bank.inp.ready, bank.req.ready)
            if write:
                assert w_ready
                sent.append(int(entry.pop(0)))
                _track_entry(ctx, bank, sent)
            if request and r_ready:
                passes -= 1
        ctx.set(bank.inp.valid, 0)
        ctx.set(bank.req.valid, 0)

    async def driver(ctx):
        for phase in range(3):
            state = [np.tile(np.array(s.rest, np.int64), (s.depth, 1)) for s in specs]
            kinds = rng.integers(0, 3, n)
            assert not ctx.get(bank.mm_valid)
            for hop in range(max(s.depth for s in specs) + 3):
                for h in range(n + 1):
                    entry, passes = None, 0
                    if h < n:
                        entry = _steps(rng, specs[h], int(kinds[h]))
                        # write_to is set a cycle before the entry (contract).
                        ctx.set(bank.write_to, h)
                        await ctx.tick()
                    if h > 0:
                        # read_from changes only once the previous passes are out.
                        while len(got) < sum(len(p) for p in expected):
                            await ctx.tick()
                        passes = int(rng.integers(1, 4))
                        # and is set READ_LEAD cycles before the first request (the bank
                        # registers the first tap's address from it).
                        ctx.set(bank.read_from, h - 1)
                        await ctx.tick().repeat(HistoryBank.READ_LEAD)
                        want = state[h - 1][-1 - np.array(specs[h - 1].taps)].reshape(-1)
                        expected.extend([want] * passes)
                    await layer_step(ctx, entry, passes)
                    if h < n:
                        _push(state, h, entry)
                        await ctx.tick().until(bank.mm_valid)
                        want = state[h][-1 - np.array(specs[h].taps)]
                        assert (ctx.get(folded.tracker.xmin),
                                ctx.get(folded.tracker.xmax)) == \
                            (want.min(), want.max()), (phase, hop, h)
                # The schedule's next hop writes a history only after its passes are out.
                while len(got) < sum(len(p) for p in expected):
                    await ctx.tick()
            while len(got) < sum(len(p) for p in expected):
                await ctx.tick()
            # Clear in the middle of an entry: the partial entry and every real one are gone.
            h = int(rng.integers(0, n))
            ctx.set(bank.write_to, h)
            await ctx.tick()
            partial = rng.integers(ACT_MIN, ACT_MAX + 1, int(rng.integers(0, specs[h].channels)))
            await layer_step(ctx, partial, 0)
            ctx.set(clear, 1)
            await ctx.tick()
            ctx.set(clear, 0)

    async def consumer(ctx):
        while True:
            ctx.set(bank.patch.ready, rng.random() < 0.7)
            _, _, valid, ready, value, first, last = await ctx.tick().sample(
                bank.patch.valid, bank.patch.ready, bank.patch.payload.value,
                bank.patch.payload.first, bank.patch.payload.last)
            if valid and ready:
                got.append((value, first, last))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(consumer, background=True)
    sim.run()
    want = []
    for p in expected:
        flags = np.zeros((len(p), 2), np.int64)
        flags[0, 0] = flags[-1, 1] = 1
        want.append(np.concatenate([p[:, None], flags], axis=1))
    np.testing.assert_array_equal(np.array(got), np.concatenate(want))


MEMORIES = pytest.mark.parametrize("memory", ["bram", "spram"])


@MEMORIES
@pytest.mark.parametrize("case", range(len(HAND_BANKS)))
def test_bank_patches_hand_cases(case, memory):
    specs = HAND_BANKS[case]
    _run(specs, seed=case, memories=[memory] * len(specs))


@pytest.mark.parametrize("seed", range(8))
def test_bank_patches_of_random_models(seed):
    """The histories of random small models (``kwshw.hw.convs.history_specs``: taps from
    ``streaming.layer_timing``, rest vectors from ``streaming.rest_vectors``), each history
    in block RAM or SPRAM at random."""
    specs = _model_specs(seed)
    memories = np.random.default_rng(seed).choice(["bram", "spram"], len(specs)).tolist()
    _run(specs, seed=10 + seed, memories=memories)


def test_bank_handshakes_and_cycles():
    """Writes are always accepted; the reduce takes ``reduce_latency`` cycles of the history
    written; passes stream one value per cycle back to back, and a stalled consumer holds a
    pass (and the next request) without losing a value."""
    specs = [HistorySpec(1, 2, (2, 0), (5, -7)), HistorySpec(2, 1, (1, 0, 1), (3,))]
    bank = HistoryBank(specs)
    folded = Folded(bank)

    async def write(ctx, h, values):
        ctx.set(bank.write_to, h)
        await ctx.tick()
        for k in range(len(values)):
            ctx.set(bank.inp.valid, 1)
            _set_entry_value(ctx, bank, values[:k + 1])
            _, _, ready = await ctx.tick().sample(bank.inp.ready)
            assert ready
            _track_entry(ctx, bank, values[:k + 1])
        ctx.set(bank.inp.valid, 0)

    async def reduce_cycles(ctx):
        cycles = 1                              # the cycle of the entry's last transfer
        while not ctx.get(bank.mm_valid):
            await ctx.tick()
            cycles += 1
        return cycles

    async def testbench(ctx):
        assert ctx.get(bank.inp.ready) and not ctx.get(bank.mm_valid)
        await write(ctx, 0, [1, 2])
        assert await reduce_cycles(ctx) == specs[0].reduce_latency
        assert (ctx.get(folded.tracker.xmin), ctx.get(folded.tracker.xmax)) == (-7, 5)
        await write(ctx, 1, [-9])
        assert await reduce_cycles(ctx) == specs[1].reduce_latency
        assert (ctx.get(folded.tracker.xmin), ctx.get(folded.tracker.xmax)) == (-9, 3)
        # A stalled pass holds its first value and the next request.
        ctx.set(bank.read_from, 0)
        await ctx.tick().repeat(HistoryBank.READ_LEAD)
        ctx.set(bank.req.valid, 1)
        await ctx.tick().until(bank.req.ready)
        for _ in range(4):
            assert ctx.get(bank.patch.valid) and not ctx.get(bank.req.ready)
            assert ctx.get(bank.patch.payload.value) == 5
            await ctx.tick()
        # The stalled pass and one more of history 0, back to back.
        ctx.set(bank.patch.ready, 1)
        values, cycles = [], 0
        while len(values) < 2 * 4:
            _, _, valid, req_valid, req_ready, value = await ctx.tick().sample(
                bank.patch.valid, bank.req.valid, bank.req.ready, bank.patch.payload.value)
            cycles += 1
            if valid:
                values.append(value)
            if req_valid and req_ready:             # the second pass's request
                ctx.set(bank.req.valid, 0)
        assert values == [5, -7, 1, 2] * 2
        assert cycles == len(values)            # no bubble between passes
        # Then one of history 1.
        ctx.set(bank.read_from, 1)
        await ctx.tick().repeat(HistoryBank.READ_LEAD)
        ctx.set(bank.req.valid, 1)
        await ctx.tick().until(bank.req.ready)
        ctx.set(bank.req.valid, 0)
        values = []
        while len(values) < 3:
            _, _, valid, value = await ctx.tick().sample(bank.patch.valid,
                                                         bank.patch.payload.value)
            if valid:
                values.append(value)
        assert values == [3, -9, 3]

    sim = Simulator(folded)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_bank_refuses_bad_parameters():
    with pytest.raises(ValueError, match="memories"):
        HistoryBank([HistorySpec(1, 2, (2, 0), (0, 0))], ["flash"])
    with pytest.raises(ValueError, match="memories"):
        HistoryBank([HistorySpec(1, 2, (2, 0), (0, 0))], ["bram", "bram"])
    with pytest.raises(ValueError, match="at least one"):
        HistoryBank([])
    with pytest.raises(ValueError, match="taps"):
        HistorySpec(1, 2, (-1, 0), (0, 0))
    with pytest.raises(ValueError, match="rest"):
        HistorySpec(1, 2, (2, 0), (0,))
    with pytest.raises(ValueError, match="rest"):
        HistorySpec(1, 1, (2, 0), (ACT_MAX + 1,))
