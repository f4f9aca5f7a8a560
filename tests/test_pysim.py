# amaranth: UnusedElaboratable=no
"""The Amaranth-simulator testbench of :func:`sim.pysim.simulate` itself: its random stalls are
reproducible from the seed, and its watchdog turns a hang into a failure that says how far the
run got."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from kwshw.features import FeatureConfig, stack_windows
from kwshw.hw.accelerator import Accelerator
from sim.pysim import int_frames, random_model_for_windows, simulate

CFG = FeatureConfig(n_mels=4, context=2, stride=2)


@pytest.fixture(scope="module")
def case():
    f = np.random.default_rng(3).normal(0, 1, (6, CFG.n_mels))
    model = random_model_for_windows([6], 4, 3, CFG, stack_windows(f.astype(np.float32), CFG),
                                     seed=3)
    return model, int_frames(f, model.in_frac)


def _timings(result):
    return result.cycles, result.feat_done, result.first_out, result.score_done


def test_stalls_follow_the_seed(case):
    model, frames = case
    runs = [simulate(model, 2, frames, seed=seed, feed_gap=0.3, score_stall=0.3)
            for seed in (1, 1, 2)]
    assert _timings(runs[0]) == _timings(runs[1])
    assert _timings(runs[0]) != _timings(runs[2])
    for run in runs[1:]:
        assert np.array_equal(run.scores, runs[0].scores)


class _Overrun(Accelerator):
    # A frame period far below the real one leaves the watchdog no cycles at all.
    cycles_per_frame = -10**6


# The simulator leaves the other testbenches suspended when one raises; they are closed here,
# under the filter, rather than wherever the garbage collector next runs.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_watchdog_reports_progress(case):
    model, frames = case
    dut = _Overrun(model, 2, trace=True)
    with pytest.raises(AssertionError, match=r"simulation did not finish in -\d+ cycles: "
                       rf"\d+ of {frames.size} feature values accepted, 0 of "
                       rf"{frames.shape[0] * 3} scores read"):
        simulate(model, 2, frames, dut=dut)
    gc.collect()
