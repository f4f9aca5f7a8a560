# amaranth: UnusedElaboratable=no
"""UARTRx and UARTTx against the bit-level UART model of sim.uartsim."""

import pytest
from amaranth.hdl import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from kwshw.link.uart import UARTRx, UARTTx
from sim.uartsim import UARTMonitor, uart_send, uart_send_byte


def run(dut, *testbenches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in background:
        sim.add_testbench(testbench, background=True)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


async def collect(ctx, dut, count, *, timeout):
    """Take ``count`` bytes from ``dut.data`` (always ready); count ``ferr``/``overflow`` pulses."""
    data, ferr, overflow = [], 0, 0
    ctx.set(dut.data.ready, 1)
    for _ in range(timeout):
        _, _, valid, payload, f, o = await ctx.tick().sample(
            dut.data.valid, dut.data.payload, dut.ferr, dut.overflow)
        if valid:
            data.append(payload)
        ferr += f
        overflow += o
        if len(data) == count:
            break
    return data, ferr, overflow


@pytest.mark.parametrize("divisor", [4, 5, 8])
def test_rx_back_to_back(divisor):
    dut = UARTRx(divisor)
    payload = bytes([0x00, 0xFF, 0x55, 0xAA, 0xA5, 0x5A, 0x01, 0x80])
    result = {}

    async def sender(ctx):
        await ctx.tick().repeat(3)
        await uart_send(ctx, dut.rx, payload, divisor)

    async def receiver(ctx):
        result["rx"] = await collect(ctx, dut, len(payload), timeout=12 * divisor * len(payload))

    run(dut, sender, receiver)
    assert result["rx"] == (list(payload), 0, 0)


@pytest.mark.parametrize("sender_divisor", [31, 33])
def test_rx_baud_tolerance(sender_divisor):
    # 3 % baud rate error either way, accumulated over a whole byte, still samples every bit
    # within its middle half.
    dut = UARTRx(32)
    payload = bytes([0x3C, 0xC3, 0x00, 0xFF])
    result = {}

    async def sender(ctx):
        await uart_send(ctx, dut.rx, payload, sender_divisor)

    async def receiver(ctx):
        result["rx"] = await collect(ctx, dut, len(payload), timeout=12 * 33 * len(payload))

    run(dut, sender, receiver)
    assert result["rx"] == (list(payload), 0, 0)


def test_rx_framing_error_and_glitch():
    divisor = 8
    dut = UARTRx(divisor)
    result = {}

    async def sender(ctx):
        await uart_send_byte(ctx, dut.rx, 0x42, divisor, stop=0)   # dropped, ferr
        await ctx.tick().repeat(2 * divisor)
        ctx.set(dut.rx, 0)                                       # a 2-cycle glitch: ignored
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        await uart_send_byte(ctx, dut.rx, 0x24, divisor)

    async def receiver(ctx):
        result["rx"] = await collect(ctx, dut, 1, timeout=40 * divisor)

    run(dut, sender, receiver)
    assert result["rx"] == ([0x24], 1, 0)


def test_rx_overflow():
    divisor = 4
    dut = UARTRx(divisor)
    result = {}

    async def testbench(ctx):
        ctx.set(dut.data.ready, 0)
        await uart_send(ctx, dut.rx, b"\x11\x22\x33", divisor)
        await ctx.tick().repeat(divisor)
        # The first byte is held; the two after it were dropped, and flagged.
        result["held"] = (ctx.get(dut.data.valid), ctx.get(dut.data.payload))
        ctx.set(dut.data.ready, 1)
        await ctx.tick()
        result["after"] = ctx.get(dut.data.valid)

    async def count_overflow(ctx):
        result["ovf"] = 0
        async for _, _, o in ctx.tick().sample(dut.overflow):
            result["ovf"] += o

    run(dut, testbench, background=[count_overflow])
    assert result["held"] == (1, 0x11)
    assert result["after"] == 0
    assert result["ovf"] == 2


@pytest.mark.parametrize("divisor", [4, 7])
def test_tx_back_to_back(divisor):
    dut = UARTTx(divisor)
    monitor = UARTMonitor(dut.tx, divisor)
    payload = bytes([0x00, 0xFF, 0x55, 0xAA, 0xA5, 0x5A, 0x01, 0x80])
    result = {}

    async def testbench(ctx):
        for byte in payload:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)
        ctx.set(dut.data.valid, 0)
        # The last byte was taken into the holding register while the one before it started:
        # both are still to be sent.
        result["data"] = await monitor.recv(ctx, len(payload), timeout=21 * divisor)
        result["quiet"] = await monitor.quiet(ctx, 3 * divisor)

    run(dut, testbench, background=[monitor.testbench])
    assert result["data"] == payload
    assert result["quiet"]
    assert monitor.framing_errors == 0


@pytest.mark.parametrize("divisor", [4, 6])
def test_tx_bit_timing(divisor):
    # Sample the line every cycle and check each bit lasts exactly `divisor` cycles.
    dut = UARTTx(divisor)
    result = {}

    async def feeder(ctx):
        for byte in (0x55, 0xAA):  # alternating bits: every bit is an edge
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)
        ctx.set(dut.data.valid, 0)

    async def sampler(ctx):
        levels = []
        for _ in range(25 * divisor):
            _, _, tx = await ctx.tick().sample(dut.tx)
            levels.append(tx)
        result["levels"] = levels

    run(dut, feeder, sampler)
    levels = result["levels"]
    first = levels.index(0)
    bits = levels[first:first + 20 * divisor]
    expected = []
    for byte in (0x55, 0xAA):
        for bit in (0, *((byte >> i) & 1 for i in range(8)), 1):
            expected += [bit] * divisor
    assert bits == expected
    assert all(levels[first + 20 * divisor:])


def test_loopback():
    divisor = 5
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    payload = list(range(0, 256, 17))
    result = {}

    async def feeder(ctx):
        for byte in payload:
            ctx.set(tx.data.payload, byte)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def receiver(ctx):
        result["rx"] = await collect(ctx, rx, len(payload), timeout=12 * divisor * len(payload))

    run(m, feeder, receiver)
    assert result["rx"] == (payload, 0, 0)


def test_echo():
    # RX bytes streamed straight into TX at full rate: the stream interfaces `connect`.
    divisor = 4
    m = Module()
    m.submodules.rx = rx = UARTRx(divisor)
    m.submodules.tx = tx = UARTTx(divisor)
    connect(m, rx.data, tx.data)
    monitor = UARTMonitor(tx.tx, divisor)
    payload = bytes(range(0, 256, 23))
    result = {}

    async def testbench(ctx):
        await uart_send(ctx, rx.rx, payload, divisor)
        result["echo"] = await monitor.recv(ctx, len(payload), timeout=20 * divisor)

    run(m, testbench, background=[monitor.testbench])
    assert result["echo"] == payload


def test_bad_divisor():
    with pytest.raises(ValueError):
        UARTRx(3)
    with pytest.raises(ValueError):
        UARTTx(2.5)


def test_uart_divisor_nearest_half_up_and_at_least_4():
    from kwshw.link.uart import uart_divisor

    assert uart_divisor(12e6, 1e6) == 12 and uart_divisor(25e6, 1e6) == 25
    assert uart_divisor(12.5e6, 1e6) == 13  # half up (round() would give 12)
    assert uart_divisor(12.4e6, 1e6) == 12 and uart_divisor(12.6e6, 1e6) == 13
    with pytest.raises(ValueError, match="at least 4"):
        uart_divisor(3.4e6, 1e6)
