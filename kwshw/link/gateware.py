"""Device end of the host link: packets over a UART byte stream, to and from the accelerator.

The wire format and the device's rules for errors are defined in :mod:`kwshw.link.protocol`
(and ``docs/host-link.md``); :class:`kwshw.link.protocol.DeviceModel` is the behavioural model
this gateware is tested against byte for byte.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from .protocol import (
    CRC_INIT,
    ERROR_SIZE,
    HEADER_SIZE,
    IDENT_SIZE,
    SYNC,
    ErrorCode,
    Ident,
    PacketType,
)
from .protocol import crc16_update as _crc16_reference
from .uart import UARTRx, UARTTx

__all__ = ["HostLink", "UARTHostLink"]


def crc16_update(crc: Value, byte: Value) -> Value:
    """CRC-16/CCITT-FALSE register ``crc`` advanced by ``byte``, as a combinational expression.

    The update is linear over GF(2) in the 24 bits of ``crc`` and ``byte``, so each result bit is
    the XOR of a fixed set of them; the sets are taken from the bytewise reference
    :func:`kwshw.link.protocol.crc16_update` applied to single set bits. (Unrolling the bitwise
    shift-and-XOR instead gives an expression tree that grows threefold per bit.)
    """
    inputs = [crc[i] for i in range(16)] + [byte[i] for i in range(8)]
    columns = ([_crc16_reference(1 << i, 0) for i in range(16)] +
               [_crc16_reference(0, 1 << i) for i in range(8)])
    bits = []
    for k in range(16):
        terms = [bit for bit, column in zip(inputs, columns, strict=True) if column >> k & 1]
        bits.append(Cat(*terms).xor())
    return Cat(*bits)


def _link_signature() -> dict:
    return {
        "feat": Out(stream.Signature(signed(16))),
        "score": In(stream.Signature(signed(16))),
        "clear": Out(1),
    }


class HostLink(wiring.Component):
    """Packet engine between UART byte streams and the accelerator.

    One packet is handled at a time. A PUSH_FRAME payload is written to a one-frame buffer as it
    arrives and is only read out to ``feat`` once the whole packet's CRC, length, type and
    sequence number checked, so a corrupted frame never reaches the accelerator. The ``score``
    stream is then sent straight out as the payload of the SCORES reply. While a command is being
    executed and answered, ``rx`` is not read (the host waits for each response before sending
    the next command).

    Parameters
    ----------
    n_bands : int
        int16 values in a feature frame (PUSH_FRAME payload: ``2 * n_bands`` bytes).
    n_out : int
        int16 scores the accelerator emits per frame.
    model_hash : bytes
        First 8 bytes of the model's content hash, reported by IDENT.
    bits, lanes, version : int
        Reported by IDENT: the accelerator's quantization width, parallel lanes, and model file
        format version.
    timeout : int
        Inter-byte timeout in clock cycles. A packet that stops for this long is TRUNCATED; after
        a framing error (bad CRC, or a LEN too large to be a command), input is skipped until the
        line has been idle this long, then the ERROR is sent.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Bytes from the host (from :class:`kwshw.link.uart.UARTRx`).
    tx : Out(stream.Signature(8))
        Bytes to the host (to :class:`kwshw.link.uart.UARTTx`).
    feat : Out(stream.Signature(signed(16)))
        The n_bands values of a frame, in band order, to the accelerator.
    score : In(stream.Signature(signed(16)))
        The n_out scores of that frame, in class order, from the accelerator.
    clear : Out(1)
        One-cycle pulse on RESET, clearing the accelerator's window of past frames.
    """

    def __init__(self, *, n_bands: int, n_out: int, model_hash: bytes, bits: int, lanes: int,
                 version: int, timeout: int):
        self._ident = Ident(model_hash=model_hash, bits=bits, lanes=lanes, version=version,
                            n_bands=n_bands, n_out=n_out)
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a positive number of cycles, not {timeout!r}")
        self._timeout = timeout
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            **_link_signature(),
        })

    @property
    def ident(self) -> Ident:
        """What this link answers to IDENT."""
        return self._ident

    @property
    def timeout(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()

        n_bands, n_out = self._ident.n_bands, self._ident.n_out
        max_payload = 2 * n_bands  # the largest command payload: anything longer is bad
        max_reply = max(IDENT_SIZE, ERROR_SIZE, 2 * n_out)
        ident = Const(int.from_bytes(self._ident.to_bytes(), "little"), 8 * IDENT_SIZE)

        m.submodules.frame = frame = Memory(shape=signed(16), depth=n_bands, init=[])
        wr = frame.write_port()
        rd = frame.read_port()

        # Receive side.
        r_type = Signal(8)
        r_seq = Signal(8)
        r_len = Signal(16)
        r_crc = Signal(16)
        r_count = Signal(range(max_payload + 3))  # bytes of PAYLOAD and CRC received
        r_low = Signal(8)                         # low byte of the value being received
        expected = Signal(8)                      # the PUSH_FRAME seq expected next
        seq_valid = Signal()                      # `expected` known (a command was accepted)

        rx_byte = self.rx.payload
        rx_take = self.rx.valid & self.rx.ready

        # Inter-byte timer: restarts on every byte, stops at zero.
        timer = Signal(range(self._timeout + 1))
        idle = Signal()
        m.d.comb += idle.eq(timer == 0)
        with m.If(rx_take):
            m.d.sync += timer.eq(self._timeout)
        with m.Elif(~idle):
            m.d.sync += timer.eq(timer - 1)

        # Transmit side.
        t_type = Signal(8)
        t_seq = Signal(8)
        t_len = Signal(range(max_reply + 1))  # the LEN high byte may be all padding
        t_code = Signal(8)
        t_crc = Signal(16)
        t_idx = Signal(range(max(HEADER_SIZE, max_reply) + 1))
        tx_take = self.tx.valid & self.tx.ready

        f_idx = Signal(range(n_bands))
        m.d.comb += rd.addr.eq(f_idx)

        def reply(ptype, length):
            m.d.sync += [
                t_type.eq(ptype),
                t_len.eq(length),
                t_seq.eq(r_seq),
                t_idx.eq(0),
                t_crc.eq(CRC_INIT),
            ]
            m.next = "TX-HEADER"

        def error(code):
            m.d.sync += t_code.eq(code)
            reply(PacketType.ERROR, ERROR_SIZE)

        def drain(code):
            # The packet's framing is not to be trusted: the rest of it (say, after a corrupted
            # LEN) must not be parsed as packets; report once the host has stopped sending.
            m.d.sync += t_code.eq(code)
            m.next = "DRAIN"

        def header_byte(field, next_state):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.sync += [field.eq(rx_byte), r_crc.eq(crc16_update(r_crc, rx_byte))]
                m.next = next_state
            with m.Elif(idle):
                error(ErrorCode.TRUNCATED)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid & (rx_byte == SYNC[0])):
                    m.next = "SYNC"

            with m.State("SYNC"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    with m.If(rx_byte == SYNC[1]):
                        m.d.sync += [r_crc.eq(CRC_INIT), r_seq.eq(0)]
                        m.next = "TYPE"
                    with m.Elif(rx_byte != SYNC[0]):
                        m.next = "HUNT"

            with m.State("TYPE"):
                header_byte(r_type, "SEQ")

            with m.State("SEQ"):
                header_byte(r_seq, "LEN-LO")

            with m.State("LEN-LO"):
                header_byte(r_len[:8], "LEN-HI")

            with m.State("LEN-HI"):
                header_byte(r_len[8:], "BODY")
                m.d.sync += r_count.eq(0)
                with m.If(self.rx.valid & (Cat(r_len[:8], rx_byte) > max_payload)):
                    drain(ErrorCode.BAD_LENGTH)

            with m.State("BODY"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [r_crc.eq(crc16_update(r_crc, rx_byte)), r_count.eq(r_count + 1)]
                    # Buffer the payload whatever the type: the buffer is only read out once the
                    # packet proved to be a good PUSH_FRAME.
                    with m.If(r_count < r_len):
                        with m.If(~r_count[0]):
                            m.d.sync += r_low.eq(rx_byte)
                        with m.Else():
                            m.d.comb += [
                                wr.addr.eq(r_count[1:]),
                                wr.data.eq(Cat(r_low, rx_byte)),
                                wr.en.eq(1),
                            ]
                    with m.If(r_count == r_len + 1):
                        m.next = "CHECK"
                with m.Elif(idle):
                    error(ErrorCode.TRUNCATED)

            with m.State("CHECK"):
                # CRC of TYPE..CRC is zero for a good packet.
                with m.If(r_crc != 0):
                    drain(ErrorCode.BAD_CRC)
                with m.Elif((r_type == PacketType.IDENT) | (r_type == PacketType.RESET)):
                    with m.If(r_len != 0):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += [expected.eq(r_seq + 1), seq_valid.eq(1)]
                        with m.If(r_type == PacketType.IDENT):
                            reply(PacketType.IDENT_REPLY, IDENT_SIZE)
                        with m.Else():
                            m.d.comb += self.clear.eq(1)
                            reply(PacketType.RESET_ACK, 0)
                with m.Elif(r_type == PacketType.PUSH_FRAME):
                    with m.If(r_len != max_payload):
                        error(ErrorCode.BAD_LENGTH)
                    with m.Else():
                        # Either way the host's numbering is now the reference.
                        m.d.sync += [expected.eq(r_seq + 1), seq_valid.eq(1)]
                        with m.If(seq_valid & (r_seq != expected)):
                            error(ErrorCode.SEQ_GAP)
                        with m.Else():
                            m.d.sync += f_idx.eq(0)
                            m.next = "FEED-READ"
                with m.Else():
                    error(ErrorCode.UNKNOWN_TYPE)

            with m.State("DRAIN"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(~self.rx.valid & idle):
                    reply(PacketType.ERROR, ERROR_SIZE)

            with m.State("FEED-READ"):
                # One cycle of read latency; `rd.addr` follows `f_idx`.
                m.next = "FEED"

            with m.State("FEED"):
                m.d.comb += [self.feat.valid.eq(1), self.feat.payload.eq(rd.data)]
                with m.If(self.feat.ready):
                    with m.If(f_idx == n_bands - 1):
                        reply(PacketType.SCORES, 2 * n_out)
                    with m.Else():
                        m.d.sync += f_idx.eq(f_idx + 1)
                        m.next = "FEED-READ"

            with m.State("TX-HEADER"):
                m.d.comb += self.tx.valid.eq(1)
                with m.Switch(t_idx):
                    for index, value in enumerate((SYNC[0], SYNC[1], t_type, t_seq,
                                                   t_len[:8], t_len[8:])):
                        with m.Case(index):
                            m.d.comb += self.tx.payload.eq(value)
                with m.If(self.tx.ready):
                    m.d.sync += t_idx.eq(t_idx + 1)
                    with m.If(t_idx >= len(SYNC)):
                        m.d.sync += t_crc.eq(crc16_update(t_crc, self.tx.payload))
                    with m.If(t_idx == HEADER_SIZE - 1):
                        m.d.sync += t_idx.eq(0)
                        with m.If(t_len == 0):
                            m.next = "TX-CRC-HI"
                        with m.Else():
                            m.next = "TX-PAYLOAD"

            with m.State("TX-PAYLOAD"):
                with m.Switch(t_type):
                    with m.Case(PacketType.IDENT_REPLY):
                        m.d.comb += [
                            self.tx.valid.eq(1),
                            self.tx.payload.eq(ident.word_select(t_idx, 8)),
                        ]
                    with m.Case(PacketType.ERROR):
                        m.d.comb += self.tx.valid.eq(1)
                        with m.Switch(t_idx):
                            for index, value in enumerate((t_code, t_seq, expected)):
                                with m.Case(index):
                                    m.d.comb += self.tx.payload.eq(value)
                    with m.Case(PacketType.SCORES):
                        # Scores go out as they come, low byte first; a score is taken from the
                        # accelerator once its high byte is sent.
                        m.d.comb += [
                            self.tx.valid.eq(self.score.valid),
                            self.tx.payload.eq(Mux(t_idx[0], self.score.payload[8:],
                                                   self.score.payload[:8])),
                            self.score.ready.eq(self.tx.ready & t_idx[0]),
                        ]
                with m.If(tx_take):
                    m.d.sync += [t_crc.eq(crc16_update(t_crc, self.tx.payload)),
                                 t_idx.eq(t_idx + 1)]
                    with m.If(t_idx == t_len - 1):
                        m.next = "TX-CRC-HI"

            with m.State("TX-CRC-HI"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(t_crc[8:])]
                with m.If(self.tx.ready):
                    m.next = "TX-CRC-LO"

            with m.State("TX-CRC-LO"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(t_crc[:8])]
                with m.If(self.tx.ready):
                    m.next = "HUNT"

        return m


class UARTHostLink(wiring.Component):
    """:class:`HostLink` with its UART: the part a board's top level instantiates.

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit, ``clk_freq // baudrate`` (at least 4).
    n_bands, n_out, model_hash, bits, lanes, version :
        As for :class:`HostLink`.
    timeout : int, optional
        Inter-byte timeout in clock cycles; by default 1024 bit periods (about 9 ms at
        115200 Bd), long enough for the gaps a USB-UART bridge leaves inside a packet.

    Attributes
    ----------
    rx : In(1)
        UART input pin (idle high).
    tx : Out(1)
        UART output pin (idle high).
    feat, score, clear :
        As for :class:`HostLink`; connect them to the accelerator.
    """

    def __init__(self, *, divisor: int, n_bands: int, n_out: int, model_hash: bytes, bits: int,
                 lanes: int, version: int, timeout: int | None = None):
        self._divisor = divisor
        self._link_args = dict(n_bands=n_bands, n_out=n_out, model_hash=model_hash, bits=bits,
                               lanes=lanes, version=version,
                               timeout=1024 * divisor if timeout is None else timeout)
        # Check the parameters now rather than at elaboration.
        self._ident = Ident(model_hash=model_hash, bits=bits, lanes=lanes, version=version,
                            n_bands=n_bands, n_out=n_out)
        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"divisor must be an integer of at least 4, not {divisor!r}")
        if not isinstance(self._link_args["timeout"], int) or self._link_args["timeout"] < 1:
            raise ValueError(f"timeout must be a positive number of cycles, not {timeout!r}")
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            **_link_signature(),
        })

    @property
    def ident(self) -> Ident:
        return self._ident

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout(self) -> int:
        return self._link_args["timeout"]

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.submodules.link = link = HostLink(**self._link_args)

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        connect(m, uart_rx.data, link.rx)
        connect(m, link.tx, uart_tx.data)

        connect(m, flipped(self.feat), link.feat)
        connect(m, flipped(self.score), link.score)
        m.d.comb += self.clear.eq(link.clear)
        return m
