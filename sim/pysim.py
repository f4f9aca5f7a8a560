"""Run the accelerator in the Amaranth simulator: frames in, scores, trace and timing out.

Used by the tests (bit-exactness against :mod:`kwshw.golden`, cycle counts) and by
``bench/cycles.py``. The drivers honour the stream protocol: the feeder may leave random
gaps between values, the score reader may withhold ``ready`` at random.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from kwshw.audio import load_audio
from kwshw.features import FeatureConfig, Normalizer, lfbe
from kwshw.hw.accelerator import Accelerator
from kwshw.modelfile import Model, from_float
from kwshw.quantize import calibrate_out_fracs, features_to_int

from .stimulus import STIMULUS_CORPUS, data_dir

__all__ = ["SimResult", "simulate", "simulate_clears", "random_model_for_windows", "int_frames",
           "speech_frames"]


@dataclass
class SimResult:
    """What a simulation observed.

    Attributes
    ----------
    scores : ndarray (T, n_out)
        Scores read from ``score``, frame by frame.
    layers : list of ndarray (T, n_out_l)
        Every layer's outputs from the trace port.
    feat_done : list of int
        Cycle of each frame's last ``feat`` handshake.
    first_out : list of int
        Cycle of each frame's first layer-0 output (trace).
    score_done : list of int
        Cycle of each frame's last ``score`` handshake.
    cycles : int
        Cycles simulated.
    """

    scores: np.ndarray
    layers: list[np.ndarray]
    feat_done: list[int] = field(default_factory=list)
    first_out: list[int] = field(default_factory=list)
    score_done: list[int] = field(default_factory=list)
    cycles: int = 0

    @property
    def periods(self) -> list[int]:
        """Cycles between the first outputs of consecutive frames."""
        return [b - a for a, b in zip(self.first_out, self.first_out[1:], strict=False)]


def simulate(model: Model, lanes: int, frames: np.ndarray, *, memory: str = "bram",
             feed_gap: float = 0.0, score_stall: float = 0.0, seed: int = 0,
             dut: Accelerator | None = None, vcd: str | None = None) -> SimResult:
    """Feed integer feature ``frames`` (T, n_mels) to an accelerator and collect everything.

    Parameters
    ----------
    model : Model
        The network.
    lanes : int
        MAC lanes.
    frames : ndarray of int
        Integer feature frames in the input format, one row per hop.
    memory : {"bram", "spram"}
        Weight memory style; with ``"spram"`` the weights are first sent on ``load``.
    feed_gap, score_stall : float
        Probability that the feeder idles a cycle before a value, and that the reader holds
        ``score.ready`` low in a cycle.
    seed : int
        Seed of the random stalls.
    dut : Accelerator, optional
        A prebuilt accelerator (``trace=True``) for the same model.
    vcd : str, optional
        Write a waveform file.
    """
    frames = np.asarray(frames, np.int64)
    dut = dut or Accelerator(model, lanes, memory=memory, trace=True)
    bench = _Testbench(dut, frames, memory=memory, feed_gap=feed_gap, score_stall=score_stall,
                       rng=np.random.default_rng(seed))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench.monitor, background=True)
    sim.add_testbench(bench.feeder)
    sim.add_testbench(bench.reader)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    bench.result.cycles = bench.cycle
    return bench.result


class _Testbench:
    """The testbench processes of one :func:`simulate` run.

    The feeder and the reader draw their random stalls from one generator, in the order the
    simulator runs them, so a seed gives the same stalls as ever.
    """

    def __init__(self, dut: Accelerator, frames: np.ndarray, *, memory: str, feed_gap: float,
                 score_stall: float, rng: np.random.Generator):
        self.dut, self.frames, self.memory = dut, frames, memory
        self.feed_gap, self.score_stall, self.rng = feed_gap, score_stall, rng
        self.t_len, self.bands = frames.shape
        self.plans = dut.plans
        self.n_out = self.plans[-1].n_out
        self.cycle = 0
        # Generous: a hang (e.g. a lost score) fails instead of running forever.
        stall = 1.0 / (1.0 - min(score_stall, 0.95)) + 8.0 * feed_gap
        self.max_cycles = int((self.t_len + 2) * (dut.cycles_per_frame + self.n_out + self.bands)
                              * stall * 2) + len(dut.weight_load_words()) + 10_000
        self.result = SimResult(scores=np.zeros((self.t_len, self.n_out), np.int64),
                                layers=[np.zeros((self.t_len, p.n_out), np.int64)
                                        for p in self.plans])

    async def monitor(self, ctx) -> None:
        """Count the cycles, record every handshake and trace value, and stop a hang."""
        dut, result, plans = self.dut, self.result, self.plans
        feats = 0
        scores = 0
        layer_count = [0] * len(plans)
        async for _, _, fv, fr, sv, sr, sd, tv, tl, ti, tval in ctx.tick().sample(
                dut.feat.valid, dut.feat.ready, dut.score.valid, dut.score.ready,
                dut.score.payload, dut.trace_valid, dut.trace_layer, dut.trace_index,
                dut.trace_value):
            cycle = self.cycle
            if fv and fr:
                feats += 1
                if feats % self.bands == 0:
                    result.feat_done.append(cycle)
            if sv and sr:
                result.scores.flat[scores] = sd
                scores += 1
                if scores % self.n_out == 0:
                    result.score_done.append(cycle)
            if tv:
                k = layer_count[tl] // plans[tl].n_out
                if k < self.t_len:
                    result.layers[tl][k, ti] = tval
                layer_count[tl] += 1
                if tl == 0 and ti == 0:
                    result.first_out.append(cycle)
            self.cycle = cycle + 1
            self._watchdog(cycle, feats, scores)

    def _watchdog(self, cycle: int, feats: int, scores: int) -> None:
        if cycle > self.max_cycles:
            raise AssertionError(
                f"simulation did not finish in {self.max_cycles} cycles: {feats} of "
                f"{self.frames.size} feature values accepted, {scores} of "
                f"{self.result.scores.size} scores read")

    async def feeder(self, ctx) -> None:
        """Send the weights (SPRAM) and then the frames, with random gaps."""
        dut, rng = self.dut, self.rng
        if self.memory == "spram":
            ctx.set(dut.load.valid, 1)
            for word in dut.weight_load_words():
                ctx.set(dut.load.payload, word)
                await ctx.tick().until(dut.load.ready)
            ctx.set(dut.load.valid, 0)
        for value in self.frames.reshape(-1):
            if self.feed_gap and rng.random() < self.feed_gap:
                ctx.set(dut.feat.valid, 0)
                await ctx.tick().repeat(int(rng.integers(1, 8)))
            ctx.set(dut.feat.payload, int(value))
            ctx.set(dut.feat.valid, 1)
            await ctx.tick().until(dut.feat.ready)
        ctx.set(dut.feat.valid, 0)

    async def reader(self, ctx) -> None:
        """Take every score, withholding ``ready`` at random."""
        dut, rng = self.dut, self.rng
        total = self.t_len * self.n_out
        got = 0
        if not self.score_stall:
            ctx.set(dut.score.ready, 1)
            while got < total:
                await ctx.tick().until(dut.score.valid)
                got += 1
            return
        while got < total:
            ready = rng.random() >= self.score_stall
            ctx.set(dut.score.ready, ready)
            _, _, valid = await ctx.tick().sample(dut.score.valid)
            got += bool(valid and ready)
        ctx.set(dut.score.ready, 0)


def random_model_for_windows(hidden: Sequence[int], bits: int, n_out: int,
                             features: FeatureConfig, calib: np.ndarray, *, seed: int = 0,
                             in_frac: int = 11, constant_column: bool = False) -> Model:
    """A model with random float weights, calibrated on normalized feature windows (identity
    normalization; :func:`sim.stimulus.random_model` calibrates on LFBE frames instead).

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths.
    bits : int
        Code width.
    n_out : int
        Number of outputs.
    features : FeatureConfig
        Front end / window of the model.
    calib : ndarray (N, n_inputs)
        Normalized float input windows for :func:`kwshw.quantize.calibrate_out_fracs`.
    seed : int
        Seed of the weights.
    in_frac : int
        Fraction bits of the integer input.
    constant_column : bool
        Make one column of every layer constant (``ST_j = 0``), an edge case of the contract.
    """
    rng = np.random.default_rng(seed)
    shape = [features.n_inputs, *hidden, n_out]
    weights, biases = [], []
    for n_in, n_o in zip(shape, shape[1:], strict=False):
        w = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_o))
        if constant_column:
            w[:, n_o // 2] = w[0, n_o // 2]
        weights.append(w)
        biases.append(rng.normal(0.0, 0.1, n_o))
    fracs = calibrate_out_fracs(weights, biases, calib)
    return from_float(weights, biases, bits=bits, out_fracs=fracs, features=features,
                      norm_mean=np.zeros(features.n_mels), norm_std=np.ones(features.n_mels),
                      labels=[f"c{k}" for k in range(n_out)], task="test", in_frac=in_frac)


def int_frames(normalized: np.ndarray, in_frac: int = 11) -> np.ndarray:
    """Normalized float frames to the integer input format (:func:`features_to_int`)."""
    return features_to_int(normalized, in_frac)


def speech_frames(features: FeatureConfig, clips: int = 4, *, data: str | None = None,
                  words: Sequence[str] = ("yes", "no", "up", "down", "left", "right")
                  ) -> list[np.ndarray]:
    """Normalized LFBE frames of real Speech Commands clips (one array per clip).

    Reads ``clips`` recordings of the stimulus corpus (:data:`sim.stimulus.STIMULUS_CORPUS`)
    under ``data`` (default :func:`sim.stimulus.data_dir`),
    taking words in turn, computes :func:`kwshw.features.lfbe` with ``features`` and normalizes
    with a :class:`~kwshw.features.Normalizer` fitted on those same clips.

    Raises
    ------
    FileNotFoundError
        If the data folder is not there.
    """
    base = Path(data) if data else data_dir()
    root = (base or Path("")) / STIMULUS_CORPUS
    if not root.is_dir():
        raise FileNotFoundError(f"no Speech Commands data at {root}")
    paths = []
    per_word = [sorted((root / w).glob("*.wav")) for w in words]
    k = 0
    while len(paths) < clips:
        lst = per_word[k % len(words)]
        paths.append(lst[k // len(words)])
        k += 1
    feats = [lfbe(load_audio(p, features.sample_rate), features) for p in paths]
    norm = Normalizer.fit(feats)
    return [norm.apply(f) for f in feats]


def simulate_clears(dut: Accelerator, before: np.ndarray, interrupted: np.ndarray,
                    after: np.ndarray, *, interrupt_after: int) -> list[int]:
    """The scores of a run with two ``clear`` pulses, in the Amaranth simulator.

    Frames ``before`` are sent and all their scores read; ``clear``; frames ``interrupted``
    are sent and ``clear`` comes ``interrupt_after`` cycles later, in the middle of their
    inference; then frames ``after``. The scores read are returned (the host reads them while
    it sends), so a correct design gives those of ``before`` and of ``after``, each as from
    reset, and nothing of ``interrupted``.
    """
    n_out = dut.model.layers[-1].n_out
    scores: list[int] = []

    async def send(ctx, frames):
        ctx.set(dut.feat.valid, 1)
        for v in np.asarray(frames).reshape(-1):
            ctx.set(dut.feat.payload, int(v))
            await ctx.tick().until(dut.feat.ready)
        ctx.set(dut.feat.valid, 0)

    async def receiver(ctx):
        ctx.set(dut.score.ready, 1)
        async for _, _, valid, value in ctx.tick().sample(dut.score.valid, dut.score.payload):
            if valid:
                scores.append(value)

    async def clear(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)

    async def testbench(ctx):
        await send(ctx, before)
        while len(scores) < len(before) * n_out:
            await ctx.tick()
        await clear(ctx)
        await send(ctx, interrupted)
        await ctx.tick().repeat(interrupt_after)
        await clear(ctx)
        await send(ctx, after)
        while len(scores) < (len(before) + len(after)) * n_out:
            await ctx.tick()
        await ctx.tick().repeat(dut.cycles_per_frame + 50)  # anything left over would show

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.add_testbench(receiver, background=True)
    sim.run()
    return scores
