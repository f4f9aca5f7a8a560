# amaranth: UnusedElaboratable=no
"""End-to-end simulation of a board top: the host's bytes go in bit by bit on the UART rx pin,
the scores come back on tx and equal the golden model's; corrupted packets are reported; the
LED follows the detection rule; the SPRAM build boots its weights from a simulated SPI flash.

:class:`boards.top.KWSCore` is everything of a board top but the clock and the pin buffers, so
this is the board's design as it runs on the FPGA, in the Amaranth simulator.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from boards.flashboot import FlashModel, model_image
from boards.refmodel import random_model
from boards.top import KWSCore, keyword_mask
from kwshw import golden
from kwshw.link.protocol import (
    DecodeError,
    DecodeErrorKind,
    Decoder,
    ErrorCode,
    ErrorReply,
    Ident,
    PacketType,
    encode_ident,
    encode_push_frame,
    unpack_values,
)
from sim.uartsim import UARTMonitor, uart_send

CLK_HZ = 8e6
BAUD = 1_000_000       # divisor 8
DIVISOR = 8
LANES = 4
HOLD_MS = 0.15         # 1200 cycles: longer than a reply's tail, shorter than a frame
N_FRAMES = 22


@pytest.fixture(scope="module")
def model():
    # 8 bands x 5 frames (stride 2) -> 16 -> 12 classes: the real window, a hidden layer, the
    # Speech Commands labels (10 keywords, _unknown_, _silence_).
    return random_model(4, (40, 16, 12), seed=3)


def make_frames(model, count, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.normal(0, 1.5, (count, model.features.n_mels)) * 2.0**model.in_frac
    return np.clip(np.round(frames), -32768, 32767).astype(np.int64)


def golden_scores(model, frames):
    f = model.features
    windows = golden.stream_windows(frames, f.context, f.stride)
    return golden.run_network(model.plans(), windows)[-1].y


class SimHost:
    """The host's end of the UART in a testbench: send packets, wait for decoded replies."""

    def __init__(self, core):
        self.core = core
        self.monitor = UARTMonitor(core.tx, DIVISOR)
        self.decoder = Decoder()

    async def send(self, ctx, data: bytes):
        await uart_send(ctx, self.core.rx, data, DIVISOR)

    async def reply(self, ctx, timeout=100_000):
        tick = ctx.tick()
        for _ in range(timeout):
            if self.monitor.received:
                data = bytes(self.monitor.received)
                self.monitor.received.clear()
                for item in self.decoder.feed(data):
                    if isinstance(item, DecodeError) and item.kind is DecodeErrorKind.GARBAGE:
                        continue
                    return item
            await tick
        raise AssertionError(f"no reply within {timeout} cycles")


def run(core, testbench, flash=None):
    sim = Simulator(core)
    sim.add_clock(1 / CLK_HZ)
    host = SimHost(core)
    sim.add_testbench(host.monitor.testbench, background=True)
    if flash is not None:
        sim.add_testbench(flash.testbench, background=True)
    result = {}

    async def bench(ctx):
        result["value"] = await testbench(ctx, host)

    sim.add_testbench(bench)
    sim.run()
    return result.get("value")


def expected_led(model, scores, threshold_score):
    keywords = keyword_mask(model.labels)
    best = int(np.argmax(scores))
    return keywords[best] and scores[best] >= threshold_score


@pytest.mark.parametrize("memory,n_frames", [("bram", N_FRAMES), ("spram", 8)])
def test_board_core_end_to_end(model, memory, n_frames):
    """>= 20 frames through the BRAM build; the SPRAM build (same data path, weights booted
    from the simulated flash) with fewer, to keep the suite quick."""
    frames = make_frames(model, n_frames, seed=1)
    corrupt_at = 5  # this frame is sent corrupted, then again intact
    want = golden_scores(model, frames)
    core = KWSCore(model, lanes=LANES, clk_hz=CLK_HZ, baud=BAUD, memory=memory,
                   image_offset=0x1000, threshold=0.0, hold_ms=HOLD_MS,
                   link_timeout_ms=1.2)
    flash = None
    if memory == "spram":
        content = b"\xff" * 0x1000 + model_image(model, LANES)
        flash = FlashModel(core.flash, content)

    async def bench(ctx, host):
        log = {"scores": [], "leds": [], "errors": []}
        if memory == "spram":
            for _ in range(50_000):
                if ctx.get(core.ready):
                    break
                await ctx.tick()
            assert ctx.get(core.ready), "weights were not loaded from flash"
            assert flash.woken and flash.reads == 1
        await host.send(ctx, encode_ident(0))
        reply = await host.reply(ctx)
        assert reply.type == PacketType.IDENT_REPLY
        ident = Ident.from_bytes(reply.payload)
        assert (ident.n_bands, ident.n_out, ident.bits, ident.lanes) == (
            model.features.n_mels, 12, 4, LANES)
        assert ident.model_hash == bytes.fromhex(model.sha256)[:8]
        seq = 1
        for k, frame in enumerate(frames):
            if k == corrupt_at:
                bad = bytearray(encode_push_frame(seq, frame.tolist()))
                bad[9] ^= 0x40  # a payload bit flips on the line
                await host.send(ctx, bytes(bad))
                reply = await host.reply(ctx)
                assert reply.type == PacketType.ERROR
                err = ErrorReply.from_bytes(reply.payload)
                log["errors"].append(err)
                seq = err.expected
            await host.send(ctx, encode_push_frame(seq, frame.tolist()))
            reply = await host.reply(ctx)
            assert reply.type == PacketType.SCORES, reply
            assert reply.seq == seq
            log["scores"].append(unpack_values(reply.payload))
            log["leds"].append(ctx.get(core.led))
            seq = (seq + 1) & 0xFF
        return log

    log = run(core, bench, flash)
    got = np.array(log["scores"])
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)   # bit-exact, every frame, every class
    assert [e.code for e in log["errors"]] == [ErrorCode.BAD_CRC]
    assert log["errors"][0].expected == corrupt_at + 1  # the corrupted frame consumed no seq
    leds = [bool(expected_led(model, s, core.threshold)) for s in want]
    assert log["leds"] == leds
    assert any(leds)


def test_spram_core_refuses_foreign_flash_image(model):
    """An image for another model: boot error, frames never reach the accelerator."""
    other = random_model(4, (40, 16, 12), seed=4)
    core = KWSCore(model, lanes=LANES, clk_hz=CLK_HZ, baud=BAUD, memory="spram",
                   image_offset=0, link_timeout_ms=1.2)
    flash = FlashModel(core.flash, model_image(other, LANES))

    async def bench(ctx, host):
        for _ in range(5_000):
            if ctx.get(core.boot_error):
                break
            await ctx.tick()
        assert ctx.get(core.boot_error) and not ctx.get(core.ready)
        # IDENT still answers (the link works without weights), so a host can tell.
        await host.send(ctx, encode_ident(0))
        reply = await host.reply(ctx)
        assert reply.type == PacketType.IDENT_REPLY
        # A frame is not scored: no reply while the host link waits for the accelerator.
        await host.send(ctx, encode_push_frame(1, [0] * model.features.n_mels))
        assert await host.monitor.quiet(ctx, 5_000)

    run(core, bench, flash)
