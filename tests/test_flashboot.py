"""FlashWeightLoader alone, against images built by boards.flashboot.weights_image: the words
of a good image come out in order and it is done; a corrupted word or CRC is an error."""

import random

import pytest
from amaranth.sim import Simulator

from boards.flashboot import FlashModel, FlashWeightLoader, weights_image

WIDTH = 12
MODEL_HASH = bytes.fromhex("0011223344556677")
OFFSET = 0x40


def run_loader(image: bytes, n_words: int, width: int = WIDTH) -> tuple[list[int], bool, bool]:
    dut = FlashWeightLoader(n_words=n_words, width=width, model_hash=MODEL_HASH, offset=OFFSET,
                            wake_cycles=4)
    flash = FlashModel(dut.spi, b"\xff" * OFFSET + image)
    rng = random.Random(0)
    words = []
    result = {}

    async def testbench(ctx):
        for _ in range(20 * 8 * len(image) + 1000):
            ready = rng.random() < 0.5
            ctx.set(dut.load.ready, ready)
            if ready and ctx.get(dut.load.valid):
                words.append(ctx.get(dut.load.payload))
            if ctx.get(dut.done) or ctx.get(dut.error):
                break
            await ctx.tick()
        result.update(done=ctx.get(dut.done), error=ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(flash.testbench, background=True)
    sim.add_testbench(testbench)
    sim.run()
    return words, result["done"], result["error"]


@pytest.mark.parametrize("corrupt", [None, "word", "crc"])
@pytest.mark.parametrize("width", [8, WIDTH, 20])   # 1, 2 and 3 bytes per word
def test_loader_checks_the_image_crc(corrupt, width):
    rng = random.Random(1)
    words = [rng.randrange(1 << width) for _ in range(9)]
    image = bytearray(weights_image(words, width, MODEL_HASH))
    if corrupt == "word":
        image[18 + 5] ^= 0x04
    elif corrupt == "crc":
        image[-1] ^= 0x80
    got, done, error = run_loader(bytes(image), len(words), width)
    assert (done, error) == (corrupt is None, corrupt is not None)
    if corrupt is None:
        assert got == words
