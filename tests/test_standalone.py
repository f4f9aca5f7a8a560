# amaranth: UnusedElaboratable=no
"""The standalone keyword spotter (boards.standalone): PDM bits on the microphone pins in,
the frames entering the accelerator, its scores, the detection events and the DETECTION
packets on the UART pin out, all equal to the golden chain PDMDecimator -> IntFrontEndStream
-> golden network -> IntStreamDetector; the DETECTION packet; the clock, real-time and fit
refusals before synthesis; the board pins and the CLI option."""

from __future__ import annotations

import time

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.errors import BuildError, FitError
from boards.fit import (
    ACCEL_LANES,
    STANDALONE_BOARDS,
    bram_blocks,
    fit_check,
    logic_cells,
    stage_luts,
    standalone_needs,
)
from boards.refmodel import random_cnn, random_model, with_class_offsets
from boards.standalone import StandaloneCore, mic_config
from boards.table import BOARDS, MICS
from boards.top import BoardTop
from kwshw import golden
from kwshw.detect_int import IntDetectRule, IntStreamDetector
from kwshw.features import FeatureConfig
from kwshw.features_int import IntFrontEnd, IntFrontEndStream
from kwshw.link.protocol import (
    DETECTION_SIZE,
    DecodeError,
    DecodeErrorKind,
    Decoder,
    DetectionEvent,
    Packet,
    PacketType,
    decode_detection,
    encode_detection,
)
from kwshw.microphone import PDMConfig, PDMDecimator, pdm_modulate
from sim.uartsim import UARTMonitor

# A tiny chain: 64-point FFT, 8 bands, 3 frames of context; a 4.096 MHz "clock" with a
# 1.024 MHz PDM clock and 64 bits per sample (256 cycles per sample, 6,144 per hop).
CFG = FeatureConfig(n_fft=64, win_length=48, hop_length=24, n_mels=8, smooth=3, context=3,
                    stride=2)
MIC = PDMConfig(4_096_000, 4, 16, 4, cic_order=4)
CLK, BAUD = 4_096_000, 1_024_000


def _model():
    return random_model(4, (24, 10, 5), features=CFG, seed=3)


def _rule(model):
    # A low threshold and short memory: a random model must fire a few times in 12 frames.
    return IntDetectRule.from_model(model, 0.25, k=2, refractory=1)


def _audio(n: int, seed: int = 7) -> np.ndarray:
    """A deterministic test signal: two tones whose loudness changes, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16_000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 9 * t)
    x = env * (6000 * np.sin(2 * np.pi * 700 * t) + 3000 * np.sin(2 * np.pi * 2100 * t))
    return np.round(x + rng.normal(0, 800, n)).astype(np.int64)


def golden_chain(model, rule, bits: np.ndarray) -> dict:
    """What the board computes from microphone ``bits``, stage by stage."""
    pcm = PDMDecimator(MIC)(bits)
    hop = CFG.hop_length
    frames = IntFrontEndStream(IntFrontEnd.from_model(model)).run(pcm[:len(pcm) // hop * hop])
    x = golden.stream_windows(frames, CFG.context, CFG.stride)
    scores = golden.run_network(model.plans(), x)[-1].y
    events = IntStreamDetector(rule).run(scores)
    return {"frames": frames, "scores": scores, "events": events}


def _mic(core: StandaloneCore, bits: np.ndarray, tail: int):
    """A PDM microphone that sends bit ``i`` during the ``i``-th high level of its clock
    (the receiver samples at the falling edge); the clock starts high out of reset."""
    async def mic(ctx):
        ctx.set(core.mic.data, int(bits[0]))
        for b in bits[1:]:
            await ctx.posedge(core.mic.clk)
            ctx.set(core.mic.data, int(b))
        await ctx.tick().repeat(tail)
    return mic


def _taps(core: StandaloneCore, got: dict):
    """Record every transfer into the accelerator, out of it and out of the detector."""
    acc, det = core.accelerator, core.detector
    names = ("feat", "scores", "events")
    streams = (acc.feat, acc.score, det.events)

    async def monitor(ctx):
        sigs = [s for st in streams for s in (st.valid, st.ready, st.payload)]
        async for _, _, *vals in ctx.tick().sample(*sigs):
            for k, name in enumerate(names):
                valid, ready, payload = vals[3 * k:3 * k + 3]
                if valid and ready:
                    got[name].append(payload)
    return monitor


def _simulate(model, rule, bits: np.ndarray) -> tuple[dict, bytes]:
    core = StandaloneCore(model, lanes=4, clk_hz=CLK, baud=BAUD, mic="pdm", mic_cfg=MIC,
                          rule=rule, hold_ms=0.1)
    got = {"feat": [], "scores": [], "events": []}
    uart = UARTMonitor(core.tx, core.divisor)
    sim = Simulator(core)
    sim.add_clock(1 / CLK)
    # After the last bit: the last sample's FIR, a hop of front end, inference, detection and
    # a few packets on the UART.
    sim.add_testbench(_mic(core, bits, tail=12_000))
    sim.add_testbench(_taps(core, got), background=True)
    sim.add_testbench(uart.testbench, background=True)
    sim.run()
    return got, bytes(uart.received)


def test_standalone_core_equals_golden_chain():
    model = _model()
    rule = _rule(model)
    hops = 12
    bits = pdm_modulate(_audio(hops * CFG.hop_length), MIC)
    want = golden_chain(model, rule, bits)
    assert len(want["events"]) >= 2, "the test signal must make detections"

    t0 = time.monotonic()
    got, line = _simulate(model, rule, bits)
    assert time.monotonic() - t0 < 120

    # The microphone keeps clocking after the test signal (its data pin stays at the last
    # bit): the board computes more frames than the golden chain has; the first n agree.
    n, n_out = len(want["frames"]), len(model.labels)
    feat = np.array(got["feat"][:n * CFG.n_mels]).reshape(-1, CFG.n_mels)
    assert np.array_equal(feat, want["frames"])
    assert np.array_equal(np.array(got["scores"][:n * n_out]).reshape(n, -1), want["scores"])
    events = [(int(e.frame), int(e.cls), int(e.sum)) for e in got["events"] if e.frame < n]
    assert events == [(d.frame, d.cls, d.sum) for d in want["events"]]
    packets = Decoder().feed(line)
    assert all(isinstance(p, Packet) for p in packets), packets
    assert [p.seq for p in packets] == list(range(len(packets)))
    reported = [e for e in map(decode_detection, packets) if e.frame < n]
    assert reported == [DetectionEvent(d.cls, d.frame, d.sum) for d in want["events"]]


# --- The DETECTION packet ----------------------------------------------------------------------

def test_detection_packet_round_trip():
    event = DetectionEvent(cls=11, frame=0x12345678, sum=327_680)
    wire = encode_detection(200, event)
    assert len(wire) == 8 + DETECTION_SIZE
    [packet] = Decoder().feed(wire)
    assert packet == Packet(PacketType.DETECTION, 200, event.to_bytes())
    assert decode_detection(packet) == event
    with pytest.raises(ValueError, match="not a DETECTION"):
        decode_detection(Packet(PacketType.SCORES, 1, bytes(DETECTION_SIZE)))
    with pytest.raises(ValueError, match="9 bytes"):
        decode_detection(Packet(PacketType.DETECTION, 1, bytes(9)))
    with pytest.raises(ValueError, match="out of range"):
        DetectionEvent(cls=1 << 16, frame=0, sum=0)


def test_event_transmitter_sends_detection_packets_under_backpressure():
    from kwshw.hw.detection import event_layout
    from kwshw.link.gateware import EventTransmitter

    rule = _rule(_model())
    dut = EventTransmitter(event_layout(rule, 16))
    events = [DetectionEvent(2, 7, 30_000), DetectionEvent(0, 65_535, 1), DetectionEvent(1, 9, 0)]
    want = b"".join(encode_detection(k, e) for k, e in enumerate(events))
    got = bytearray()
    rng = np.random.default_rng(1)

    async def source(ctx):
        for e in events:
            ctx.set(dut.events.payload, {"cls": e.cls, "frame": e.frame, "sum": e.sum})
            ctx.set(dut.events.valid, 1)
            await ctx.tick().until(dut.events.ready)
            ctx.set(dut.events.valid, 0)
            await ctx.tick().repeat(int(rng.integers(1, 4)))

    async def sink(ctx):
        while len(got) < len(want):
            ready = int(rng.random() < 0.6)
            ctx.set(dut.tx.ready, ready)
            _, _, valid, byte = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
            if valid and ready:
                got.append(byte)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert bytes(got) == want


def test_i2s_and_spram_cores_elaborate():
    from amaranth.back import rtlil

    from kwshw.microphone import I2SConfig

    core = StandaloneCore(_model(), lanes=4, clk_hz=CLK, baud=BAUD, mic="i2s",
                          mic_cfg=I2SConfig(CLK, 4), rule=_rule(_model()))
    assert set(core.mic.signature.members) == {"sck", "ws", "sd"}
    assert type(core.receiver).__name__ == "I2SReceiver"
    assert "kws_i2s" in rtlil.convert(core, name="kws_i2s")
    # SPRAM weights: the flash boot path of KWSCore (boards.flashboot.weight_boot).
    core = StandaloneCore(_model(), lanes=4, clk_hz=CLK, baud=BAUD, mic_cfg=MIC,
                          memory="spram", rule=_rule(_model()))
    assert "flash" in core.signature.members
    # At this test clock a front end waiting on one SPRAM block would not keep up.
    assert core.accelerator.spram_blocks_used < 4 and core.front_end.work_memory == "bram"
    assert "boot" in rtlil.convert(core, name="kws_spram")


def test_detection_packet_bad_crc_rejected():
    wire = bytearray(encode_detection(3, DetectionEvent(2, 40, 1000)))
    wire[9] ^= 0x01                              # a payload bit
    out = Decoder().feed(bytes(wire))
    assert not any(isinstance(p, Packet) for p in out)
    assert any(isinstance(p, DecodeError) and p.kind is DecodeErrorKind.BAD_CRC for p in out)


# --- Clocks, real time and fit -----------------------------------------------------------------

def test_mic_clock_refused_with_the_numbers():
    with pytest.raises(BuildError, match=r"25 MHz.*1562\.5"):
        mic_config("pdm", 25e6, where="ulx3s-85f")
    with pytest.raises(BuildError, match=r"ulx3s-85f: I2S.*1\.024 MHz.*24\.4"):
        mic_config("i2s", 25e6, where="ulx3s-85f")
    with pytest.raises(BuildError, match="whole number of Hz"):
        mic_config("pdm", 12e6 + 0.5)
    assert mic_config("pdm", 12e6).divisor == 10
    assert mic_config("i2s", 24_576_000).divisor == 24


def test_board_clocks_give_16_khz():
    for name in ("ulx3s-85f", "ulx3s-25f", "icebreaker"):
        board = BOARDS[name]
        assert board.mic_pins is not None
        clk = board.design_clk_hz("pdm")
        cfg = mic_config("pdm", clk)
        assert clk / (cfg.divisor * cfg.decimation) == 16_000
    assert BOARDS["ulx3s-85f"].design_clk_hz("host") == 50e6
    assert mic_config("i2s", BOARDS["ulx3s-85f"].design_clk_hz("i2s")).divisor == 25


def test_exact_ecp5_pll_uses_clkos():
    from amaranth.hdl import Signal

    from boards.pll import ecp5_pll_exact

    for f_out in (24e6, 25.6e6, 48e6):
        pll = ecp5_pll_exact(25e6, f_out)
        assert pll.clkos_div is not None and pll.f_vco / pll.clkos_div == f_out
        assert 400e6 <= pll.f_vco <= 800e6 and pll.f_clkop <= 400e6
        assert pll.f_in / pll.clki_div >= 3.125e6
        inst = pll.instance(Signal(), Signal(), Signal())
        assert inst.parameters["CLKOS_DIV"] == pll.clkos_div
    assert ecp5_pll_exact(25e6, 20e6).clkos_div is None      # CLKOP makes it exactly
    with pytest.raises(BuildError, match="exactly 24.576 MHz from 25 MHz"):
        ecp5_pll_exact(25e6, 24.576e6)


def test_standalone_board_top_clocks_and_refusals():
    model = random_model(4, (40, 8, 12))
    top = BoardTop(BOARDS["ulx3s-85f"], model, lanes=4, mic="pdm")
    assert top.sys_clk_hz == 20e6 and top.use_pll and top.pll.f_out == 20e6
    top = BoardTop(BOARDS["ulx3s-85f"], model, lanes=4, mic="i2s")
    assert top.pll.clkos_div == 25 and top.core.mic_cfg.divisor == 25
    with pytest.raises(BuildError, match=r"icebreaker: I2S.*1\.024 MHz.*20\.5078"):
        BoardTop(BOARDS["icebreaker"], model, lanes=4, mic="i2s")
    with pytest.raises(BuildError, match="ulx3s-85f: no ECP5 PLL .* exactly 24.576 MHz"):
        BoardTop(BOARDS["ulx3s-85f"], model, lanes=4, mic="i2s", sys_clk_hz=24.576e6)
    with pytest.raises(BuildError, match="no microphone pins"):
        BoardTop(BOARDS["orangecrab-85f"], model, lanes=4, mic="pdm")


def test_not_real_time_refused_with_the_numbers():
    # A hop of 20 samples is 5,120 cycles at 256 cycles per sample: too few for the front
    # end's worst case (5,892); 24 samples (6,144 cycles) are enough.
    cfg = FeatureConfig(n_fft=64, win_length=48, hop_length=20, n_mels=8, smooth=3,
                        context=3, stride=2)
    short_hop = random_model(4, (24, 10, 5), features=cfg, seed=3)
    with pytest.raises(BuildError, match=r"5,120 cycles.*front end needs 5,8"):
        StandaloneCore(short_hop, lanes=4, clk_hz=CLK, baud=BAUD, mic_cfg=MIC)
    budget = StandaloneCore(_model(), lanes=4, clk_hz=CLK, baud=BAUD, mic_cfg=MIC).budget
    assert budget["hop_cycles"] == 6144 and budget["front_end"] <= 6144


def test_fit_refuses_standalone_cnn_on_icebreaker_with_numbers():
    board = BOARDS["icebreaker"]
    model = random_cnn(4)
    # The UART-fed design fits; the standalone one does not, and says why.
    fit_check(board, model, 4)
    with pytest.raises(FitError, match=r"icebreaker: .*standalone.*about [\d,]+ logic cells "
                       r"\(1\.\d\d per LUT4 of its stages: front end.*accelerator.*5,280 "
                       r"logic cells"):
        fit_check(board, model, 4, mic="pdm")
    report = fit_check(BOARDS["ulx3s-85f"], model, 8, mic="pdm")
    kinds = {m["kind"] for m in report["memories"]}
    assert {"front end", "microphone", "detector"} <= kinds
    assert report["luts_estimate"] > 0
    assert {n.kind for n in standalone_needs(model, "pdm", 12_000_000)} == {
        "front end", "microphone", "detector"}


@pytest.mark.parametrize("lanes", [1, 4])
def test_spram_standalone_front_end_takes_the_spare_spram_block(lanes):
    """The reference CNN's SPRAM accelerator (weights 1 block, histories 2) leaves one of the
    iCE40UP5K's four: the standalone core's front end keeps its FFT work memory there
    (``spram-serial``, with the sample ring and the smoothing history), the fit check counts
    it so (4 of 4 SPRAM, the front end's block RAMs thirteen fewer, its LUTs the SPRAM
    variant's) and the front end stays real time at the
    board's clock; a block RAM build keeps it in block RAM."""
    board, model = BOARDS["icebreaker"], with_class_offsets(random_cnn(4))
    clk = board.design_clk_hz("pdm")
    core = StandaloneCore(model, lanes=lanes, clk_hz=clk, baud=board.baud, memory="spram")
    assert core.accelerator.spram_blocks_used == 3
    assert core.front_end.work_memory == "spram-serial"
    assert core.budget["front_end"] == core.front_end.cycles_per_hop() < core.budget["hop_cycles"]
    with pytest.raises(FitError) as refusal:
        fit_check(board, model, lanes, mic="pdm")
    assert "front end 9" in str(refusal.value)
    assert f"front end {stage_luts('ice40', 'pdm', 'spram-serial')['front end']:,}" in str(
        refusal.value)
    bram = StandaloneCore(model, lanes=lanes, clk_hz=clk, baud=board.baud, memory="bram",
                          realtime=False)
    assert bram.front_end.work_memory == "bram"
    needs = standalone_needs(model, "pdm", clk, spare_spram=1)
    spram = [n for n in needs if n.target == "spram"]
    # 512 words of 4 pieces, 560 samples, 160 history values of 2 pieces
    assert [(n.kind, n.width, n.depth) for n in spram] == [("front end", 16, 2928)]


def test_mic_pins_exist_on_the_platforms():
    for name, board in BOARDS.items():
        if board.mic_pins is None:
            continue
        platform = board.make_platform()
        for mic in MICS[1:]:
            res = platform.lookup(f"kws_mic_{mic}", 0)
            assert [s.name for s in res.ios] == [n for n, _ in board.mic_pins.names(mic)], name


def test_docs_show_the_mic_table():
    from pathlib import Path

    from boards.table import mic_table

    text = (Path(__file__).parent.parent / "docs" / "boards.md").read_text()
    section = text.split("<!-- mic-table -->\n", 1)[1].split("\n<!-- /mic-table -->")[0]
    assert section == mic_table(), "regenerate the table: boards.table.mic_table()"


def test_cli_build_mic_option(monkeypatch, tmp_path, capsys):
    import boards.build
    from kwshw import modelfile
    from kwshw.app import cli

    seen = {}

    def fake_build(board, model, **kwargs):
        seen.update(kwargs, board=board)
        raise BuildError("stop here")

    path = tmp_path / "m.kwm"
    modelfile.save(random_model(4, (40, 8, 12)), path)
    monkeypatch.setattr(boards.build, "build", fake_build)
    assert cli.main(["build", "--board", "icebreaker", "--model", str(path),
                     "--mic", "pdm"]) == 2
    assert seen["mic"] == "pdm" and seen["board"] == "icebreaker"
    assert "stop here" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["build", "--board", "x", "--model", "m"])
    assert args.mic == "host"
    assert cli.MIC_CHOICES == MICS


def test_fit_stage_block_rams_are_the_measured_ones():
    """The fit check's block RAMs of the front end, the PDM receiver and the detector on
    iCE40 are those of their syntheses (``bench/stages.py``): the ROMs Yosys builds in logic
    (the front end's reciprocals) are not counted."""
    import json
    from pathlib import Path

    measured = json.loads((Path(__file__).parents[1] / "bench" / "results" /
                           "stages.json").read_text())["ice40"]
    board = BOARDS["icebreaker"]
    needs = standalone_needs(with_class_offsets(random_cnn(4)), "pdm",
                             board.design_clk_hz("pdm"), where=board.name)
    blocks = {}
    for n in needs:
        blocks[n.kind] = blocks.get(n.kind, 0) + bram_blocks("ice40", n.width, n.depth)
    assert (blocks["front end"], blocks["microphone"], blocks["detector"]) == (
        measured["front end"]["brams"], measured["pdm"]["brams"],
        measured["detector"]["brams"])
    serial = standalone_needs(with_class_offsets(random_cnn(4)), "pdm",
                              board.design_clk_hz("pdm"), where=board.name, spare_spram=1)
    assert sum(bram_blocks("ice40", n.width, n.depth) for n in serial
               if n.kind == "front end" and n.target == "bram") == \
        measured["front end (SPRAM)"]["brams"]
    assert [n for n in serial if n.target == "spram"] and \
        measured["front end (SPRAM)"]["sprams"] == 1


def test_fit_stage_luts_are_the_measured_ones():
    """The fit check's LUTs of the standalone stages are those ``bench/stages.py`` measured
    (``bench/results/stages.json``): refreshing one without the other fails here."""
    import json
    from pathlib import Path

    measured = json.loads((Path(__file__).parents[1] / "bench" / "results" /
                           "stages.json").read_text())
    for family in ("ice40", "ecp5"):
        for mic in ("pdm", "i2s"):
            luts = stage_luts(family, mic)
            stages = ("front end", "microphone", "detector", "events", "uart")
            assert tuple(luts) == (*stages, "accelerator")
            assert tuple(luts[k] for k in stages) == tuple(
                measured[family][mic if k == "microphone" else k]["luts"] for k in stages), \
                family
        assert ACCEL_LANES[family] == (1, BOARDS[STANDALONE_BOARDS[family]].default_lanes)
        for lanes in ACCEL_LANES[family]:
            assert stage_luts(family, "pdm", lanes=lanes)["accelerator"] == \
                measured[family][f"accelerator P={lanes}"]["luts"]
    assert stage_luts("ice40", "pdm", "spram-serial")["front end"] == \
        measured["ice40"]["front end (SPRAM)"]["luts"]
    assert stage_luts("ice40", "pdm", memory="spram")["weight boot"] == \
        measured["standalone_ice40"][0]["by_stage"]["boot"]["luts"]


def test_fit_logic_cells_estimate_the_packed_designs():
    """The fit check's logic cells of the whole standalone design (stage LUT4s times the
    family's cells per LUT4) are within 3% of what nextpnr packed the reference design
    into, at each lane count measured (``bench/stages.py``); the iCEBreaker's is refused,
    and by as many cells as measured."""
    import json
    from pathlib import Path

    measured = json.loads((Path(__file__).parents[1] / "bench" / "results" /
                           "stages.json").read_text())
    points = [("ice40", w["lanes"], w["packed"]) for w in measured["standalone_ice40"]]
    e = measured["standalone_ecp5"]
    points.append(("ecp5", e["lanes"], e["packed"]))
    model = with_class_offsets(random_cnn(4))
    for family, lanes, packed in points:
        board = BOARDS[STANDALONE_BOARDS[family]]
        work = "spram-serial" if board.memory == "spram" else "bram"
        luts = sum(stage_luts(family, "pdm", work, lanes=lanes, memory=board.memory).values())
        assert abs(logic_cells(family, luts) - packed["logic_cells"]) <= \
            0.03 * packed["logic_cells"], (family, lanes)
        if logic_cells(family, luts) > board.fpga.luts:
            with pytest.raises(FitError, match=f"about {logic_cells(family, luts):,} logic"):
                fit_check(board, model, lanes, mic="pdm")
        else:
            fit_check(board, model, lanes, mic="pdm")
