"""8N1 UART receiver and transmitter with stream interfaces.

Both run in the ``sync`` domain at ``divisor`` clock cycles per bit: :func:`uart_divisor`,
the clock over the baud rate rounded to the nearest integer (half up); the baud rate error this
rounding causes must stay within the usual few percent.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "UARTRx", "UARTTx", "check_divisor", "uart_divisor"]

#: Fewest clock cycles per bit: below 4 the half-bit delay to the sampling point and the two
#: cycles of synchronizer latency leave no margin at all.
MIN_DIVISOR = 4


def check_divisor(divisor: int) -> int:
    """Return ``divisor`` if it is a usable number of clock cycles per bit.

    Raises
    ------
    ValueError
        When ``divisor`` is not an integer of at least :data:`MIN_DIVISOR`.
    """
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR}, "
                         f"not {divisor!r}")
    return divisor


def uart_divisor(clk_hz: float, baud: float) -> int:
    """Clock cycles per UART bit: ``clk_hz / baud`` rounded half up (the nearest divisor, so the
    baud rate error is the smallest one can get).

    Raises
    ------
    ValueError
        When the divisor fails :func:`check_divisor`, saying which clock the baud rate needs.
    """
    divisor = int(clk_hz // baud + (clk_hz % baud >= baud / 2))
    try:
        return check_divisor(divisor)
    except ValueError:
        raise ValueError(f"{baud:g} baud needs a clock of at least {MIN_DIVISOR} x {baud:g} Hz; "
                         f"the clock is {clk_hz / 1e6:g} MHz") from None


class UARTRx(wiring.Component):
    """8N1 UART receiver.

    The line goes through a two flip-flop synchronizer; a falling edge starts a byte, which is
    sampled in the middle of each bit. A start bit that is no longer low half a bit later is taken
    for a glitch and ignored.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`check_divisor`).

    Attributes
    ----------
    rx : In(1)
        Serial input, idle high (asynchronous to the clock).
    data : Out(stream.Signature(8))
        Received bytes. One byte is buffered; a byte that completes while the previous one has not
        been taken is dropped and flagged in ``overflow``.
    ferr : Out(1)
        Pulses for one cycle when a byte had a low stop bit (framing error, or a break). That byte
        is dropped, and the receiver waits for the line to return high before the next start bit.
    overflow : Out(1)
        Pulses for one cycle when a received byte is dropped because ``data`` was not ready.
    """

    def __init__(self, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "ferr": Out(1),
            "overflow": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()

        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self._divisor))
        strobe = Signal()  # the middle of a bit
        m.d.comb += strobe.eq(timer == 0)
        m.d.sync += timer.eq(timer - 1)

        shreg = Signal(8)
        bit = Signal(range(8))

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # The falling edge was seen 2 cycles late, like every later edge: the
                    # synchronizer delays them all alike, so only the half-bit offset matters.
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"

            with m.State("START"):
                with m.If(strobe):
                    m.d.sync += [timer.eq(self._divisor - 1), bit.eq(0)]
                    with m.If(rx):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.next = "DATA"

            with m.State("DATA"):
                with m.If(strobe):
                    m.d.sync += [
                        timer.eq(self._divisor - 1),
                        shreg.eq(Cat(shreg[1:], rx)),  # LSB first
                        bit.eq(bit + 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"

            with m.State("STOP"):
                with m.If(strobe):
                    with m.If(rx):
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.comb += self.overflow.eq(1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        # Back to IDLE in the middle of the stop bit, so that a start bit right
                        # after it is caught at its edge.
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.ferr.eq(1)
                        m.next = "BREAK"

            with m.State("BREAK"):
                # Do not read a held-low line as an endless run of 0x00 bytes.
                with m.If(rx):
                    m.next = "IDLE"

        return m


class UARTTx(wiring.Component):
    """8N1 UART transmitter.

    Bytes are sent back to back when ``data`` keeps them coming: the next start bit follows the
    stop bit with no idle cycle. A byte is taken into a holding register and its start bit
    begins one cycle later (or when the byte before has been sent), so ``data.ready`` is a
    flip-flop and the sender's logic ends at that register instead of running on into the
    bit timer and counters (on iCE40 that chain was the design's longest path).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`check_divisor`).

    Attributes
    ----------
    data : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        Serial output, idle high, driven straight from a flip-flop so it never glitches.
    """

    def __init__(self, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()

        timer = Signal(range(self._divisor))
        left = Signal(range(11))   # bits of the current byte still to finish, this one included
        shreg = Signal(9)          # the bits after the current one: data, then stop
        bit_end = Signal()
        m.d.comb += bit_end.eq(timer == 0)

        with m.If(~bit_end):
            m.d.sync += timer.eq(timer - 1)

        # The holding register: filled from `data`, emptied into the shift register.
        hold = Signal(8)
        full = Signal()
        m.d.comb += self.data.ready.eq(~full)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [hold.eq(self.data.payload), full.eq(1)]

        # Start while idle, or in the last cycle of a stop bit so that bytes follow back to back.
        start = full & ((left == 0) | ((left == 1) & bit_end))
        with m.If(start):
            m.d.sync += [
                full.eq(0),
                self.tx.eq(0),  # start bit
                shreg.eq(Cat(hold, C(1, 1))),
                left.eq(10),
                timer.eq(self._divisor - 1),
            ]
        with m.Elif((left != 0) & bit_end):
            m.d.sync += left.eq(left - 1)
            with m.If(left != 1):
                m.d.sync += [
                    self.tx.eq(shreg[0]),
                    shreg.eq(shreg[1:]),
                    timer.eq(self._divisor - 1),
                ]
            # After the stop bit the line stays high: it is idle.

        return m
