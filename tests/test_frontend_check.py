"""The gateware front end against its golden model in Verilator, as RTL and as the Yosys
netlists of both FPGA families, on real speech (sim/frontend_check.py; bench/frontend_sim.py
runs 100 clips of the full-size front end). A small configuration keeps the builds short."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kwshw.corpora import open_dataset
from kwshw.features import FeatureConfig, Normalizer
from kwshw.features_int import IntFrontEnd, pcm_from_float
from sim.frontend_check import FrontEndSim, expected_frames
from sim.toolchain import have_simulator

SMALL = FeatureConfig(n_fft=64, win_length=48, hop_length=20, n_mels=8, smooth=3)

pytestmark = pytest.mark.skipif(not have_simulator("verilator"), reason="no Verilator")


def _fe(mean: float = -4.0) -> IntFrontEnd:
    return IntFrontEnd(SMALL, Normalizer(np.full(8, mean), np.full(8, 3.0)), 11)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """0.4 s of a real clip from its loudest part, as int16 PCM."""
    root = os.environ.get("KWSHW_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("KWSHW_DATA is not set to the real-speech folder")
    ds = open_dataset("speech_commands", root, "test")
    audio = ds.load(next(it for it in ds if it.label_index == ds.labels.index("yes")))
    pcm = pcm_from_float(audio)
    start = max(0, int(np.argmax(np.abs(pcm))) - 3200)
    return pcm[start:start + 6400]


@pytest.mark.parametrize("netlist", [
    pytest.param(None, id="rtl"),
    # Slow (about 100 s): the standalone front end does not fit an iCE40UP5K beside the
    # accelerator (boards.fit), and the ECP5 netlist checks the gate level in CI.
    pytest.param("ice40", id="ice40", marks=pytest.mark.slow),
    pytest.param("ecp5", id="ecp5"),
])
def test_front_end_equals_golden_frame_by_frame(tmp_path, speech, netlist):
    sim = FrontEndSim(_fe(), tmp_path, simulator="verilator", gate_level=netlist)
    if netlist:
        assert sim.cells, "the netlist was synthesized"
    r = sim.run(speech)
    assert r.frames == len(expected_frames(sim.fe, speech)) > 300
    assert r.ok, (r.mismatched_frames[:10], r.frames_out)
    assert r.cycles > 0
    # The check is not vacuous: against another normalization every frame differs.
    sim.fe = _fe(mean=-3.0)
    bad = sim.run(speech, name="other")
    assert len(bad.mismatched_frames) == bad.frames


@pytest.mark.parametrize("netlist", [
    pytest.param(None, id="rtl"),
    pytest.param("ice40", id="ice40"),
])
def test_front_end_with_its_work_memory_in_one_spram_block(tmp_path, speech, netlist):
    """As the iCEBreaker's SPRAM build has it (``work_memory="spram-serial"``): at gate
    level one ``SB_SPRAM256KA`` (Yosys's model) read and written a 16-bit piece at a time."""
    sim = FrontEndSim(_fe(), tmp_path, simulator="verilator", gate_level=netlist,
                      work_memory="spram-serial")
    if netlist:
        assert sim.cells.get("SB_SPRAM256KA") == 1, sim.cells
    r = sim.run(speech)
    assert r.frames == len(expected_frames(sim.fe, speech)) > 300
    assert r.ok, (r.mismatched_frames[:10], r.frames_out)
