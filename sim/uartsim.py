"""Bit-level 8N1 UART for Amaranth simulations: the host's end of the serial line.

These helpers drive and watch a design's UART pins from async testbenches, counting clock
cycles of a simulator domain, so a design is tested through its real pins with the exact bit
timing a host would produce. They only use the simulator context passed in, and import nothing
from Amaranth themselves.

Typical use::

    monitor = UARTMonitor(dut.tx, divisor=8)
    sim.add_testbench(monitor.testbench, background=True)

    async def testbench(ctx):
        await uart_send(ctx, dut.rx, b"hello", divisor=8)
        reply = await monitor.recv(ctx, 5, timeout=10_000)
"""

from __future__ import annotations

from typing import Any

__all__ = ["uart_send_byte", "uart_send", "UARTMonitor"]


async def uart_send_byte(ctx, pin, byte: int, divisor: int, *, stop: int = 1,
                         domain: str = "sync") -> None:
    """Bit-bang one 8N1 byte onto ``pin``: start bit, 8 data bits LSB first, stop bit.

    Parameters
    ----------
    ctx : SimulatorContext
        Testbench context.
    pin : Signal
        The design's UART input.
    byte : int
        Byte to send.
    divisor : int
        Clock cycles per bit; may differ from the design's to test baud rate tolerance.
    stop : int
        Level of the stop bit; 0 makes a framing error.
    domain : str
        Clock domain whose cycles are counted.
    """
    for bit in (0, *((byte >> i) & 1 for i in range(8)), stop):
        ctx.set(pin, bit)
        await ctx.tick(domain).repeat(divisor)
    ctx.set(pin, 1)


async def uart_send(ctx, pin, data: bytes, divisor: int, *, gap: int = 0,
                    domain: str = "sync") -> None:
    """Bit-bang ``data`` onto ``pin``, back to back, or with ``gap`` idle cycles between bytes."""
    for byte in data:
        await uart_send_byte(ctx, pin, byte, divisor, domain=domain)
        if gap:
            await ctx.tick(domain).repeat(gap)


class UARTMonitor:
    """Decodes every 8N1 byte a design sends on ``pin``, in a background testbench.

    A background testbench is needed because a reply can start while the main testbench is still
    busy (for example sending the last stop bit of a command), and a start bit must not be
    missed.

    Parameters
    ----------
    pin : Signal
        The design's UART output.
    divisor : int
        Clock cycles per bit.
    domain : str
        Clock domain whose cycles are counted.

    Attributes
    ----------
    received : bytearray
        Bytes received and not yet taken by :meth:`recv`.
    framing_errors : int
        Bytes whose stop bit was low (they are not added to ``received``).
    """

    def __init__(self, pin: Any, divisor: int, *, domain: str = "sync"):
        self.pin = pin
        self.divisor = divisor
        self.domain = domain
        self.received = bytearray()
        self.framing_errors = 0

    async def testbench(self, ctx) -> None:
        """Add with ``sim.add_testbench(monitor.testbench, background=True)``."""
        tick = ctx.tick(self.domain)
        while True:
            if ctx.get(self.pin):
                await ctx.negedge(self.pin)
            # To the middle of the start bit, then one bit period per sample.
            await tick.repeat(self.divisor // 2)
            if ctx.get(self.pin):
                continue  # a glitch
            byte = 0
            for i in range(8):
                await tick.repeat(self.divisor)
                byte |= ctx.get(self.pin) << i
            await tick.repeat(self.divisor)
            if ctx.get(self.pin):
                self.received.append(byte)
            else:
                self.framing_errors += 1
                while not ctx.get(self.pin):
                    await tick

    async def recv(self, ctx, count: int, *, timeout: int) -> bytes:
        """Wait until ``count`` bytes were received, at most ``timeout`` cycles; return and
        remove up to ``count`` bytes (fewer on timeout)."""
        tick = ctx.tick(self.domain)
        for _ in range(timeout):
            if len(self.received) >= count:
                break
            await tick
        data = bytes(self.received[:count])
        del self.received[:count]
        return data

    async def quiet(self, ctx, cycles: int) -> bool:
        """Wait ``cycles`` cycles; true if the line stayed idle (high) all the time."""
        tick = ctx.tick(self.domain)
        for _ in range(cycles):
            if not ctx.get(self.pin):
                return False
            await tick
        return bool(ctx.get(self.pin))
