"""Device end of the host link: packets over a UART byte stream, to and from the accelerator.

The wire format and the device's rules for errors are defined in :mod:`kwshw.link.protocol`
(and ``docs/host-link.md``); :class:`kwshw.link.protocol.DeviceModel` is the behavioural model
this gateware is tested against byte for byte.

:class:`HostLink` is three stages, each a component tested on its own against the protocol
module (the receiver is a parser and a checker)::

    rx ──> PacketReceiver ───values───> FrameBuffer ──> feat
           PacketParser                  ^ start
           CommandChecker                │ done
                 │ command               │
                 v                       │
               HostLink: a SCORES reply waits for the frame to be fed
                 │ reply
                 v
    tx <── ReplyTransmitter <────────────────────────── score
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from ..hw.common import DISJOINT_PORTS, disjoint_read_port
from ..hw.ports import AcceleratorSignature
from .protocol import (
    DETECTION_SIZE,
    ERROR_SIZE,
    HEADER_SIZE,
    IDENT_SIZE,
    SYNC,
    ErrorCode,
    Ident,
    PacketType,
)
from .uart import UARTRx, UARTTx, check_divisor

__all__ = ["CRC16", "CRCUser", "PACKET_LAYOUT", "REPLY_LAYOUT", "value_layout", "PacketParser",
           "CommandChecker", "PacketReceiver", "FrameBuffer", "ReplyTransmitter", "HostLink",
           "UARTHostLink", "EventTransmitter"]

#: The protocol's CRC-16/CCITT-FALSE (:data:`~kwshw.link.protocol.CRC_POLY`, from
#: :data:`~kwshw.link.protocol.CRC_INIT`) over bytes, for :mod:`amaranth.lib.crc` processors.
#: Data followed by its CRC, most significant byte first, leaves the residue 0: that is what
#: ``match_detected`` checks.
CRC16 = crc.catalog.CRC16_CCITT_FALSE(data_width=8)


class CRCUser(wiring.Signature):
    """What a user of a :data:`CRC16` :class:`~amaranth.lib.crc.Processor` drives (``start``,
    ``valid``, ``data``) and reads (``crc``, ``match_detected``), with the processor's meaning.

    Two users that never feed the processor in the same packet may share one (:class:`HostLink`
    shares the receiver's with the transmitter: a reply is sent only while its command's packet
    is held, and the packet's check is over by then).
    """

    def __init__(self):
        super().__init__({
            "start": Out(1), "valid": Out(1), "data": Out(8),
            "crc": In(16), "match_detected": In(1),
        })


def _crc_port(component: wiring.Component, m: Module, shared: bool):
    """The CRC a link stage uses: its ``crc`` port when ``shared``, else a processor of its
    own (the ports have the same names)."""
    if shared:
        return component.crc
    m.submodules.crc = processor = CRC16.create()
    return processor


def _share_crc(m: Module, first, second) -> None:
    """One :data:`CRC16` processor for two :class:`CRCUser` ports that never feed it in the
    same cycle: their strobes ORed, ``data`` from ``second`` while it feeds."""
    m.submodules.shared_crc = processor = CRC16.create()
    m.d.comb += [
        processor.start.eq(first.start | second.start),
        processor.valid.eq(first.valid | second.valid),
        processor.data.eq(Mux(second.valid, second.data, first.data)),
    ]
    for user in (first, second):
        m.d.comb += [user.crc.eq(processor.crc), user.match_detected.eq(processor.match_detected)]


#: Feature values and scores travel as int16 (:func:`kwshw.link.protocol.pack_values`).
VALUE_WIDTH = 16

#: The reply a command packet calls for: ``type`` is IDENT_REPLY, RESET_ACK, SCORES or ERROR
#: (:class:`~kwshw.link.protocol.PacketType`), ``seq`` the command's sequence number, which the
#: reply carries; ``code`` and ``expected`` are an ERROR's payload: the
#: :class:`~kwshw.link.protocol.ErrorCode` and the PUSH_FRAME sequence number expected next.
REPLY_LAYOUT = data.StructLayout({"type": 8, "seq": 8, "code": 8, "expected": 8})

#: A packet as :class:`PacketParser` found it: TYPE, SEQ, LEN and the framing ``error`` (0 or
#: an :class:`~kwshw.link.protocol.ErrorCode`).
PACKET_LAYOUT = data.StructLayout({"type": 8, "seq": 8, "length": 16, "error": 8})


def value_layout(n_bands: int) -> data.StructLayout:
    """One int16 value of a PUSH_FRAME payload and its index in the frame."""
    return data.StructLayout({"index": range(n_bands), "value": signed(VALUE_WIDTH)})


def _check_timeout(timeout: int) -> int:
    if not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be a positive number of cycles, not {timeout!r}")
    return timeout


class PacketParser(wiring.Component):
    """Finds the packets in the bytes from the host and checks their framing.

    Every packet that starts with SYNC ends in one ``packet``: framed (LEN as announced, the CRC
    good), or a framing error. After a bad CRC or a LEN too large to be a command, the rest of
    the packet cannot be told from data: input is skipped until the line has been idle for
    ``timeout`` cycles, and only then is the packet passed on. The payload is passed on to
    ``values`` as it arrives, whatever the packet: it is only a frame once the packet checked.

    Parameters
    ----------
    n_bands : int
        int16 values in a PUSH_FRAME; its ``2 * n_bands`` bytes are the largest payload
        accepted.
    timeout : int
        Inter-byte timeout in clock cycles: a packet that stops for this long is TRUNCATED.
    shared_crc : bool
        Use a CRC processor outside (the ``crc`` port), not one of its own.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Bytes from the host; not read while ``packet`` waits to be taken.
    values : Out(stream.Signature(value_layout(n_bands), always_ready=True))
        The payload's int16 values, each with its index.
    packet : Out(stream.Signature(PACKET_LAYOUT))
        The packet's TYPE, SEQ (0 if it ended before) and LEN (of a packet refused for its
        length, only LEN's low byte when no payload reaches 256 bytes), and its framing
        ``error``: 0, or BAD_CRC, BAD_LENGTH (LEN too large) or TRUNCATED.
    crc : Out(CRCUser()), with ``shared_crc``
        The CRC of each packet, from TYPE to its CRC's last byte; not fed from a packet's
        end until it was taken.

    Notes
    -----
    The state register asks for one-hot coding (``fsm_encoding``); synthesis tools that
    honour it drop its initial value, so the clock domain must be reset once after
    configuration, as the board tops of :mod:`boards` do.
    """

    #: Bits of the inter-byte timer's low counter (see :meth:`_idle`).
    _TIMER_LOW_BITS = 8

    def __init__(self, *, n_bands: int, timeout: int, shared_crc: bool = False):
        self._n_bands = n_bands
        self._timeout = _check_timeout(timeout)
        self._shared_crc = shared_crc
        super().__init__({
            "rx": In(stream.Signature(8)),
            "values": Out(stream.Signature(value_layout(n_bands), always_ready=True)),
            "packet": Out(stream.Signature(PACKET_LAYOUT)),
            **({"crc": Out(CRCUser())} if shared_crc else {}),
        })

    def elaborate(self, platform):
        m = Module()
        max_payload = 2 * self._n_bands
        checker = _crc_port(self, m, self._shared_crc)
        count = Signal(range(max_payload + 3))  # bytes of PAYLOAD and CRC received
        low = Signal(8)                         # low byte of the value being received
        payload = Signal()                      # the next byte is payload (count < LEN)
        crc_last = Signal()                     # it is the CRC's last (count == LEN + 1)
        rx_byte = self.rx.payload
        m.d.comb += [
            checker.data.eq(rx_byte),
            self.values.payload.index.eq(count[1:]),
            self.values.payload.value.eq(Cat(low, rx_byte)),
        ]

        idle = self._idle(m)
        last_byte = self._last_byte(m, max_payload)

        with m.FSM() as fsm:
            self._hunt(m, checker)
            self._header(m, checker, idle, count, payload, crc_last, max_payload, last_byte)
            self._body(m, checker, idle, count, low, payload, crc_last)

            with m.State("DRAIN"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(~self.rx.valid & idle):
                    m.next = "DONE"

            with m.State("DONE"):
                m.d.comb += self.packet.valid.eq(1)
                with m.If(self.packet.ready):
                    m.next = "HUNT"
        # Yosys leaves an FSM whose state has an initial value binary-coded (`fsm_detect`), and
        # this one's next state (ten states, eleven conditions) was seven LUT levels deep: the
        # longest path of the iCEBreaker CNN reference at 39.72 MHz. Asked for one-hot, it
        # recodes it (41.32 MHz on the same seed). The recoded register has no initial
        # value (Yosys warns), so the netlist starts from the clock domain's reset, which
        # every board top asserts after configuration (tests/test_cocotb_link.py runs the
        # netlists from a reset; without one they never leave the all-zero state).
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m

    def _hunt(self, m: Module, checker) -> None:
        """States HUNT and SYNC: look for the two SYNC bytes; the CRC starts after them."""
        rx_byte = self.rx.payload
        with m.State("HUNT"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid & (rx_byte == SYNC[0])):
                m.next = "SYNC"

        with m.State("SYNC"):
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                with m.If(rx_byte == SYNC[1]):
                    m.d.comb += checker.start.eq(1)
                    m.d.sync += self.packet.payload.seq.eq(0)
                    m.next = "TYPE"
                with m.Elif(rx_byte != SYNC[0]):
                    m.next = "HUNT"

    def _header(self, m: Module, checker, idle: Signal, count: Signal,
                payload: Signal, crc_last: Signal, max_payload: int,
                last_byte: tuple[Signal, Signal]) -> None:
        """States TYPE, SEQ, LEN-LO and LEN-HI: the header fields, byte by byte.
        ``last_byte`` is :meth:`_last_byte`'s flags."""
        low_any, low_big = last_byte
        packet = self.packet.payload
        for state, field, next_state in (("TYPE", packet.type, "SEQ"),
                                         ("SEQ", packet.seq, "LEN-LO"),
                                         ("LEN-LO", packet.length[:8], "LEN-HI")):
            with m.State(state):
                self._receive(m, checker, idle, field, next_state)

        with m.State("LEN-HI"):
            # Below 256 bytes of payload the high byte of a LEN that is not refused is 0: it
            # is not stored (the checker's compares of LEN then shrink to the low byte).
            self._receive(m, checker, idle, packet.length[8:] if max_payload >= 256 else None,
                          "BODY")
            # The first byte of BODY is payload unless LEN is 0; it is never the CRC's last.
            m.d.sync += [count.eq(0), payload.eq(low_any | self.rx.payload.any()),
                         crc_last.eq(0)]
            # A LEN too large for a command may be a corrupted one: what follows must not be
            # read as this packet's payload, nor as packets.
            if max_payload < 256:  # LEN > max_payload without a 16-bit compare
                too_long = (self.rx.payload != 0) | low_big
            else:
                too_long = Cat(packet.length[:8], self.rx.payload) > max_payload
            with m.If(self.rx.valid & too_long):
                self._end(m, ErrorCode.BAD_LENGTH, "DRAIN")

    def _last_byte(self, m: Module, max_payload: int) -> tuple[Signal, Signal]:
        """Whether the last byte taken was not 0, and above ``max_payload`` (or 255).

        In LEN-HI they tell LEN's low byte: it is compared as it is taken, not from the
        stored field on into the next state and the error (on iCE40 that chain was the
        longest path)."""
        low_any, low_big = Signal(), Signal()
        # On every byte offered, taken or not: the states that do not take bytes (CRC, DONE)
        # never read the flags, and a byte is offered until taken, so the flags are the same
        # when read; the state decode then stays out of the registers' enable.
        with m.If(self.rx.valid):
            m.d.sync += [low_any.eq(self.rx.payload.any()),
                         low_big.eq(self.rx.payload > min(max_payload, 255))]
        return low_any, low_big

    def _body(self, m: Module, checker, idle: Signal, count: Signal,
              low: Signal, payload: Signal, crc_last: Signal) -> None:
        """States BODY and CRC: the payload, passed on as values, then the CRC check."""
        # LEN-HI sent every LEN above the largest payload to DRAIN: here LEN fits in the
        # count's bits, and the compares need no more. Whether the byte that comes next is
        # payload, and whether it is the CRC's last, are registers set as each byte arrives
        # (and in LEN-HI, :meth:`_header`): the compares with LEN then end in them, not in the
        # values' strobe and the state (on iCE40 that was the longest path).
        length = self.packet.payload.length[:len(count)]
        with m.State("BODY"):
            self._receive(m, checker, idle, None, "BODY")
            with m.If(self.rx.valid):
                m.d.sync += [count.eq(count + 1), payload.eq(count + 1 < length),
                             crc_last.eq(count == length)]
                with m.If(payload):
                    with m.If(~count[0]):
                        m.d.sync += low.eq(self.rx.payload)
                    with m.Else():
                        m.d.comb += self.values.valid.eq(1)
                with m.If(crc_last):
                    m.next = "CRC"

        with m.State("CRC"):
            # The CRC of TYPE..CRC leaves the residue 0 in a good packet.
            with m.If(checker.match_detected):
                self._end(m, 0)
            with m.Else():
                self._end(m, ErrorCode.BAD_CRC, "DRAIN")

    def _end(self, m: Module, error, state: str = "DONE") -> None:
        """End the packet with the framing ``error``."""
        m.d.sync += self.packet.payload.error.eq(error)
        m.next = state

    def _receive(self, m: Module, checker, idle: Signal, field,
                 next_state: str) -> None:
        """Take one byte of the packet into ``field`` (if any); the packet is TRUNCATED if the
        line goes idle first."""
        m.d.comb += [self.rx.ready.eq(1), checker.valid.eq(self.rx.valid)]
        with m.If(self.rx.valid):
            if field is not None:
                m.d.sync += field.eq(self.rx.payload)
            m.next = next_state
        with m.Elif(idle):
            self._end(m, ErrorCode.TRUNCATED)

    def _idle(self, m: Module) -> Signal:
        """The line has been idle for the timeout: the inter-byte timer, which restarts on every
        byte and stops at the timeout, is at the timeout (a register, from the reset on).

        The timer is two counters, the low ``_TIMER_LOW_BITS`` bits and the rest (which counts
        the low part's wraps): a single counter as wide as the timeout (17 bits at 18 MHz)
        was the iCEBreaker design's longest path, its carry chain split by the placer into a
        dozen pieces joined through logic cells."""
        low_bits = min(self._TIMER_LOW_BITS, self._timeout.bit_length())
        low_max = (1 << low_bits) - 1
        end_low, end_high = self._timeout & low_max, self._timeout >> low_bits
        low = Signal(low_bits, init=end_low)
        high = Signal(range(end_high + 1), init=end_high)
        # `idle` is a register too, set as the timer steps onto the timeout: the timer's
        # compares then end in it, not in every state's enable (on iCE40 that was the longest
        # path). The timeout is at least 1, so a byte always clears it.
        last = self._timeout - 1
        idle = Signal(init=1)
        # The high part steps at most once every 2^8 cycles (below 2^8 cycles of timeout the
        # low part never wraps), so its increment may be computed a cycle ahead: its carry
        # chain, which the placer splits, then ends in a register of its own.
        high_next = Signal.like(high)
        m.d.sync += high_next.eq(high + 1)
        # A byte offered restarts the timer, taken or not: only the states that take every
        # byte (`rx.ready` high) read `idle`, and a byte is offered until taken. The state's
        # decode in this enable, into the timer's carry chains, was the longest path of the
        # iCEBreaker build of a trained CNN (38.91 MHz, bench/results/main-command.json).
        with m.If(self.rx.valid):
            m.d.sync += [low.eq(0), high.eq(0), idle.eq(0)]
        with m.Elif(~idle):
            m.d.sync += [low.eq(low + 1),
                         idle.eq((low == (last & low_max)) & (high == last >> low_bits))]
            with m.If(low == low_max):
                m.d.sync += high.eq(high_next)
        return idle


class CommandChecker(wiring.Component):
    """Decides what a packet calls for: executing a command, or which ERROR.

    A framed packet must be a command (IDENT, RESET or PUSH_FRAME) with the length its type
    requires; a PUSH_FRAME must carry the sequence number that follows the last accepted
    command's (any number after reset). An accepted command sets the number expected next; a
    PUSH_FRAME with the wrong one does too, and is answered with SEQ_GAP.

    Parameters
    ----------
    n_bands : int
        int16 values in a PUSH_FRAME.

    Attributes
    ----------
    packet : In(stream.Signature(PACKET_LAYOUT))
        The packets from :class:`PacketParser`.
    command : Out(stream.Signature(REPLY_LAYOUT))
        The reply each one calls for, offered from the second cycle its packet is (the
        decision is made from registered compares): taking the command takes the packet.
    """

    def __init__(self, n_bands: int):
        self._n_bands = n_bands
        super().__init__({
            "packet": In(stream.Signature(PACKET_LAYOUT)),
            "command": Out(stream.Signature(REPLY_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        packet = self.packet.payload
        command = self.command.payload
        expected = Signal(8)  # the PUSH_FRAME seq expected next
        seq_valid = Signal()  # `expected` known (a command was accepted)
        accept = Signal()     # the host's numbering is now the reference
        # The packet's compares are registered, and the command offered from the second
        # cycle the packet is: from `expected` through the compares and the decision into
        # the reply register was the iCEBreaker's longest path. A packet is held while
        # offered, and `expected` only changes as one is taken, so the registers are the
        # packet's own when read.
        primed = Signal()
        m.d.sync += primed.eq(self.packet.valid & ~self.packet.ready)
        gap, ident, reset, push, bare, framed = (
            Signal(name=name) for name in ("gap", "ident", "reset", "push", "bare", "framed"))
        seq_next = Signal(8)
        m.d.sync += [
            gap.eq(seq_valid & (packet.seq != expected)),
            ident.eq(packet.type == PacketType.IDENT),
            reset.eq(packet.type == PacketType.RESET),
            push.eq(packet.type == PacketType.PUSH_FRAME),
            bare.eq(packet.length == 0),
            framed.eq(packet.length == 2 * self._n_bands),
            seq_next.eq(packet.seq + 1),
        ]

        def error(code):
            m.d.comb += [command.type.eq(PacketType.ERROR), command.code.eq(code)]

        with m.If(packet.error != 0):
            error(packet.error)
        with m.Elif(ident | reset):
            with m.If(~bare):
                error(ErrorCode.BAD_LENGTH)
            with m.Else():
                m.d.comb += [
                    accept.eq(1),
                    command.type.eq(Mux(ident, PacketType.IDENT_REPLY, PacketType.RESET_ACK)),
                ]
        with m.Elif(push):
            with m.If(~framed):
                error(ErrorCode.BAD_LENGTH)
            with m.Else():
                m.d.comb += accept.eq(1)
                with m.If(gap):
                    error(ErrorCode.SEQ_GAP)
                with m.Else():
                    m.d.comb += command.type.eq(PacketType.SCORES)
        with m.Else():
            error(ErrorCode.UNKNOWN_TYPE)

        m.d.comb += [
            command.seq.eq(packet.seq),
            command.expected.eq(Mux(accept, seq_next, expected)),
            self.command.valid.eq(self.packet.valid & primed),
            self.packet.ready.eq(self.command.ready & primed),
        ]
        with m.If(self.packet.valid & self.packet.ready & accept):
            m.d.sync += [expected.eq(seq_next), seq_valid.eq(1)]
        return m


class PacketReceiver(wiring.Component):
    """Receive stage of :class:`HostLink`: a :class:`PacketParser` and its
    :class:`CommandChecker`.

    Parameters
    ----------
    n_bands : int
        int16 values in a PUSH_FRAME.
    timeout : int
        Inter-byte timeout in clock cycles.
    shared_crc : bool
        The parser's CRC is outside (the ``crc`` port).

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Bytes from the host.
    values : Out(stream.Signature(value_layout(n_bands), always_ready=True))
        The payload's int16 values, each with its index, whatever the packet.
    command : Out(stream.Signature(REPLY_LAYOUT))
        The reply the packet calls for (SCORES: the values received are a frame to score), held
        until that reply was sent: the transfer marks its end, and ``rx`` is not read before
        it (the host waits for each reply).
    crc : Out(CRCUser()), with ``shared_crc``
        The parser's (:class:`PacketParser`).
    """

    def __init__(self, *, n_bands: int, timeout: int, shared_crc: bool = False):
        self._n_bands = n_bands
        self._timeout = _check_timeout(timeout)
        self._shared_crc = shared_crc
        super().__init__({
            "rx": In(stream.Signature(8)),
            "values": Out(stream.Signature(value_layout(n_bands), always_ready=True)),
            "command": Out(stream.Signature(REPLY_LAYOUT)),
            **({"crc": Out(CRCUser())} if shared_crc else {}),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = PacketParser(n_bands=self._n_bands,
                                                    timeout=self._timeout,
                                                    shared_crc=self._shared_crc)
        if self._shared_crc:
            connect(m, parser.crc, flipped(self.crc))
        m.submodules.checker = checker = CommandChecker(self._n_bands)
        connect(m, flipped(self.rx), parser.rx)
        connect(m, parser.values, flipped(self.values))
        connect(m, parser.packet, checker.packet)
        connect(m, checker.command, flipped(self.command))
        return m


class FrameBuffer(wiring.Component):
    """Frame stage of :class:`HostLink`: holds one frame and feeds it to the accelerator.

    The values of every payload are written as they arrive; only when ``start`` pulses (the
    packet checked as a PUSH_FRAME) is the frame read out to ``feat``, so a corrupted frame
    never reaches the accelerator.

    Parameters
    ----------
    n_bands : int
        Values in a frame.

    Attributes
    ----------
    values : In(stream.Signature(value_layout(n_bands), always_ready=True))
        Values to store, each at its index.
    start : In(1)
        Pulse: send the frame out.
    done : Out(1)
        Pulses with the transfer of the frame's last value.
    feat : Out(stream.Signature(signed(16)))
        The frame's values in band order.
    """

    def __init__(self, n_bands: int):
        self._n_bands = n_bands
        super().__init__({
            "values": In(stream.Signature(value_layout(n_bands), always_ready=True)),
            "start": In(1),
            "done": Out(1),
            "feat": Out(stream.Signature(signed(VALUE_WIDTH))),
        })

    def elaborate(self, platform):
        m = Module()
        n_bands = self._n_bands

        # Frames are only read out once their packet checked, and no byte is received until
        # the command was answered: a read never meets a write (common.disjoint_read_port).
        m.submodules.frame = frame = Memory(shape=signed(VALUE_WIDTH), depth=n_bands, init=[],
                                            attrs=DISJOINT_PORTS)
        wr = frame.write_port()
        rd = disjoint_read_port(m, frame, "frame_rd")
        index = Signal(range(n_bands))
        m.d.comb += [
            wr.addr.eq(self.values.payload.index),
            wr.data.eq(self.values.payload.value),
            wr.en.eq(self.values.valid),
            rd.addr.eq(index),
            self.feat.payload.eq(rd.data),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += index.eq(0)
                    m.next = "READ"

            with m.State("READ"):
                # One cycle of read latency; `rd.addr` follows `index`.
                m.next = "FEED"

            with m.State("FEED"):
                m.d.comb += self.feat.valid.eq(1)
                with m.If(self.feat.ready):
                    with m.If(index == n_bands - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "READ"

        return m


class _SentCRC:
    """A transmitter's CRC generator, fed with the bytes it sent a cycle after they left.

    The byte a transmitter offers comes from a multiplexer over its packet's fields; the
    CRC's XOR network behind that multiplexer, in the same cycle, was the iCE40's longest
    path. Set ``start`` and ``valid`` as for a :class:`amaranth.lib.crc.Processor` fed with
    ``tx.payload``; the processor sees them, and the byte, one cycle later, so its ``crc``
    includes the last byte sent one cycle after that byte left (``pending`` until then).
    ``generator`` is the CRC's ports (a processor or a :class:`CRCUser` port).
    """

    def __init__(self, m: Module, tx: stream.Interface, generator) -> None:
        self.generator = generator
        self.start, self.valid, self.pending = Signal(), Signal(), Signal()
        byte = Signal(8)
        m.d.sync += [byte.eq(tx.payload), self.pending.eq(self.valid),
                     self.generator.start.eq(self.start)]
        m.d.comb += [self.generator.data.eq(byte), self.generator.valid.eq(self.pending)]


def _crc_states(m: Module, checksum: _SentCRC, tx: stream.Interface, *, then: str,
                offer: Signal | None = None) -> Signal:
    """The states ``CRC-HI`` and ``CRC-LO`` of a transmitter's FSM: the packet's CRC, high
    byte first (once the last byte before it has reached the CRC), then on to state ``then``.
    The states drive ``offer`` (``tx.valid`` unless given: a transmitter that registers its
    ``valid`` passes what it registers). Returns a signal high in the cycle the last byte is
    taken (the packet is sent)."""
    offer = tx.valid if offer is None else offer
    sent = Signal()
    take = tx.valid & tx.ready
    generator = checksum.generator
    with m.State("CRC-HI"):
        m.d.comb += [offer.eq(~checksum.pending), tx.payload.eq(generator.crc[8:])]
        with m.If(take):
            m.next = "CRC-LO"
    with m.State("CRC-LO"):
        m.d.comb += [offer.eq(1), tx.payload.eq(generator.crc[:8]), sent.eq(take)]
        with m.If(take):
            m.next = then
    return sent


class ReplyTransmitter(wiring.Component):
    """Transmit stage of :class:`HostLink`: sends reply packets, SYNC to CRC.

    Parameters
    ----------
    ident : Ident
        The payload of IDENT_REPLY; ``ident.n_out`` scores make a SCORES payload.
    shared_crc : bool
        Use a CRC processor outside (the ``crc`` port), not one of its own.

    Attributes
    ----------
    reply : In(stream.Signature(REPLY_LAYOUT))
        The reply to send, held until it was sent: ``ready`` comes with its last byte.
    score : In(stream.Signature(signed(16)))
        The payload of SCORES, sent as it comes, low byte first; a score is taken once its high
        byte is sent.
    tx : Out(stream.Signature(8))
        Bytes to the host; each is offered two cycles after the one before was taken at the
        earliest (it is looked up into a register first), and ``valid`` is a register.
    crc : Out(CRCUser()), with ``shared_crc``
        The CRC of each reply, from TYPE on; fed only while a reply is offered.
    """

    def __init__(self, ident: Ident, *, shared_crc: bool = False):
        self._ident = ident
        self._shared_crc = shared_crc
        super().__init__({
            "reply": In(stream.Signature(REPLY_LAYOUT)),
            "score": In(stream.Signature(signed(VALUE_WIDTH))),
            "tx": Out(stream.Signature(8)),
            **({"crc": Out(CRCUser())} if shared_crc else {}),
        })

    def elaborate(self, platform):
        m = Module()
        max_reply = max(IDENT_SIZE, ERROR_SIZE, 2 * self._ident.n_out)
        checksum = _SentCRC(m, self.tx, _crc_port(self, m, self._shared_crc))

        length, last_index, empty, scores = self._reply_facts(m, max_reply)
        index = Signal(range(max(HEADER_SIZE, max_reply) + 1))
        take = self.tx.valid & self.tx.ready
        # The byte a header or payload index calls for is looked up into a register and sent
        # from there, a cycle after the index (and what the lookup reads) last changed: the
        # lookup and the choice between header, payload and CRC in one cycle were the
        # iCEBreaker's longest path. `valid` is a register too, set when the state offered a
        # byte in the cycle before and none was taken (what a state offers only ever turns on
        # until a byte is taken, so this is the same byte a cycle later): the state decode and
        # the handshake into the UART's holding register were the longest path then. A byte
        # thus takes at least two cycles, the UART hundreds.
        offer = Signal()
        m.d.sync += self.tx.valid.eq(offer & ~take)
        header = self._header_byte(m, index, length)
        payload = self._payload_byte(m, index)
        # Where the index is, also registered (a byte is offered a cycle after its index
        # was set): the compares then stay out of the state's enable, behind the handshake.
        header_end, payload_end = Signal(), Signal()
        m.d.sync += [header_end.eq(index == HEADER_SIZE - 1), payload_end.eq(index == last_index)]

        with m.FSM():
            with m.State("HEADER"):
                m.d.comb += [
                    offer.eq(self.reply.valid),
                    self.tx.payload.eq(header),
                    # The CRC starts with TYPE, the first byte after SYNC.
                    checksum.start.eq(index == len(SYNC)),
                    checksum.valid.eq(take & (index >= len(SYNC))),
                ]
                with m.If(take):
                    m.d.sync += index.eq(index + 1)
                    with m.If(header_end):
                        m.d.sync += index.eq(0)
                        with m.If(empty):
                            m.next = "CRC-HI"
                        with m.Else():
                            m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                # A score is taken with its high byte; `ready` follows registers and the
                # UART side's `ready` only (the reply's decoded type, not the decoder: the
                # handshake runs on into the score buffer's read side). A score byte is offered
                # (a cycle later) once the score it is looked up from is valid.
                m.d.comb += [
                    checksum.valid.eq(take),
                    self.tx.payload.eq(payload),
                    offer.eq(~scores | self.score.valid),
                    self.score.ready.eq(scores & self.tx.valid & self.tx.ready & index[0]),
                ]
                with m.If(take):
                    m.d.sync += index.eq(index + 1)
                    with m.If(payload_end):
                        m.next = "CRC-HI"

            sent = _crc_states(m, checksum, self.tx, then="HEADER", offer=offer)
        m.d.comb += self.reply.ready.eq(sent)
        with m.If(sent):
            m.d.sync += index.eq(0)

        return m

    def _header_byte(self, m: Module, index: Signal, length: Signal) -> Signal:
        """The header byte at ``index``, registered. Byte 0 is a constant, and the index
        only moves on while the reply is offered (its payload then held), so the register
        always holds the reply's byte when it is sent."""
        header = Signal(8)
        reply = self.reply.payload
        with m.Switch(index):
            for k, value in enumerate((SYNC[0], SYNC[1], reply.type, reply.seq,
                                       length[:8], length[8:])):
                with m.Case(k):
                    m.d.sync += header.eq(value)
        return header

    def _payload_byte(self, m: Module, index: Signal) -> Signal:
        """The payload byte at ``index`` for the reply's type, registered."""
        ident = Const(int.from_bytes(self._ident.to_bytes(), "little"), 8 * IDENT_SIZE)
        reply = self.reply.payload
        byte = Signal(8)
        with m.Switch(reply.type):
            with m.Case(PacketType.IDENT_REPLY):
                m.d.sync += byte.eq(ident.word_select(index, 8))
            with m.Case(PacketType.ERROR):
                with m.Switch(index):
                    for k, value in enumerate((reply.code, reply.seq, reply.expected)):
                        with m.Case(k):
                            m.d.sync += byte.eq(value)
            with m.Case(PacketType.SCORES):
                m.d.sync += byte.eq(Mux(index[0], self.score.payload[8:],
                                        self.score.payload[:8]))
        return byte

    def _reply_facts(self, m: Module,
                     max_reply: int) -> tuple[Signal, Signal, Signal, Signal]:
        """What the reply's type fixes: LEN, the index of its last payload byte, whether LEN is
        0, and whether it is SCORES. Looked up (so no subtracter or compare follows the lookup)
        into registers a cycle after the reply is offered: LEN is first sent as the fifth
        byte, and the lookup and the compares, into the state's enable, were an iCEBreaker
        longest path."""
        length = Signal(range(max_reply + 1))  # the high byte may be all padding
        last_index = Signal(range(max_reply))
        empty, scores = Signal(), Signal()
        with m.Switch(self.reply.payload.type):
            for ptype, size in ((PacketType.IDENT_REPLY, IDENT_SIZE),
                                (PacketType.SCORES, 2 * self._ident.n_out),
                                (PacketType.ERROR, ERROR_SIZE),
                                (PacketType.RESET_ACK, 0)):
                with m.Case(ptype):
                    m.d.sync += [length.eq(size), last_index.eq(max(size - 1, 0)),
                                 empty.eq(size == 0), scores.eq(ptype == PacketType.SCORES)]
        return length, last_index, empty, scores


class HostLink(wiring.Component):
    """Packet engine between UART byte streams and the accelerator.

    One packet is handled at a time (:class:`PacketReceiver`). A PUSH_FRAME payload is written
    to a one-frame buffer (:class:`FrameBuffer`) as it arrives and is only read out to ``feat``
    once the whole packet's CRC, length, type and sequence number checked, so a corrupted frame
    never reaches the accelerator. The ``score`` stream is then sent straight out as the
    payload of the SCORES reply (:class:`ReplyTransmitter`). While a command is being executed
    and answered, ``rx`` is not read (the host waits for each response before sending the next
    command).

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
    feat, score, clear : AcceleratorSignature(16), flipped
        To the accelerator (:class:`kwshw.hw.ports.AcceleratorSignature`): the n_bands values
        of a frame in band order, the n_out scores of that frame in class order, and a
        one-cycle ``clear`` pulse on RESET.
    """

    def __init__(self, *, n_bands: int, n_out: int, model_hash: bytes, bits: int, lanes: int,
                 version: int, timeout: int):
        self._ident = Ident(model_hash=model_hash, bits=bits, lanes=lanes, version=version,
                            n_bands=n_bands, n_out=n_out)
        self._timeout = _check_timeout(timeout)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            **AcceleratorSignature(VALUE_WIDTH).flip().members,
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
        m.submodules.receiver = receiver = PacketReceiver(
            n_bands=self._ident.n_bands, timeout=self._timeout, shared_crc=True)
        m.submodules.frame = frame = FrameBuffer(self._ident.n_bands)
        m.submodules.transmitter = transmitter = ReplyTransmitter(self._ident, shared_crc=True)
        # The receiver checks a packet's CRC before its command is offered, and the transmitter
        # computes the reply's only while the command is held (state REPLY below), so one
        # processor serves both (the iCEBreaker CNN reference's link: 24 LUT4s and 16 flip-flops
        # fewer, bench/results/area.json at 7ce936e against e8f6bc9).
        _share_crc(m, receiver.crc, transmitter.crc)

        connect(m, flipped(self.rx), receiver.rx)
        connect(m, receiver.values, frame.values)
        connect(m, frame.feat, flipped(self.feat))
        connect(m, flipped(self.score), transmitter.score)
        connect(m, transmitter.tx, flipped(self.tx))

        # A command is answered, and a SCORES answer is preceded by scoring the frame. The
        # reply is a register, loaded when the command is offered (the command is taken once
        # it was answered): the checker's decision then stays off the transmitter's paths (on
        # iCE40, through the reply's type into the bytes sent).
        command = receiver.command
        reply = Signal.like(command.payload)
        m.d.comb += transmitter.reply.payload.eq(reply)
        # `clear` resets the whole accelerator: it leaves a register, so that the packet
        # checker's decision is not on a path into every flip-flop's reset (on iCE40 that was
        # the longest path of the design). The pulse comes one cycle after RESET is decoded,
        # long before its answer has left the UART.
        m.d.sync += self.clear.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(command.valid):
                    m.d.sync += reply.eq(command.payload)
                    m.next = "DECODE"

            # What the command asks for is read from the registered reply: from the
            # checker's decision on, through the frame buffer's start, was the iCE40's
            # longest path.
            with m.State("DECODE"):
                with m.If(reply.type == PacketType.SCORES):
                    m.d.comb += frame.start.eq(1)
                    m.next = "FEED"
                with m.Else():
                    m.d.sync += self.clear.eq(reply.type == PacketType.RESET_ACK)
                    m.next = "REPLY"

            with m.State("FEED"):
                with m.If(frame.done):
                    m.next = "REPLY"

            with m.State("REPLY"):
                m.d.comb += transmitter.reply.valid.eq(1)
                with m.If(transmitter.reply.ready):
                    m.next = "RELEASE"

            # The command is taken (and the receiver let go) a cycle after its reply was
            # sent: from the transmitter's last byte through the checker into the parser's
            # state was an iCEBreaker longest path.
            with m.State("RELEASE"):
                m.d.comb += command.ready.eq(1)
                m.next = "IDLE"

        return m


class UARTHostLink(wiring.Component):
    """:class:`HostLink` with its UART: the part a board's top level instantiates.

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit, ``clk_freq // baudrate``
        (:func:`kwshw.link.uart.check_divisor`).
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
        # Check the parameters now rather than at elaboration.
        self._divisor = check_divisor(divisor)
        self._ident = Ident(model_hash=model_hash, bits=bits, lanes=lanes, version=version,
                            n_bands=n_bands, n_out=n_out)
        self._timeout = _check_timeout(1024 * divisor if timeout is None else timeout)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            **AcceleratorSignature(VALUE_WIDTH).flip().members,
        })

    @property
    def ident(self) -> Ident:
        return self._ident

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        ident = self._ident
        m.submodules.link = link = HostLink(
            n_bands=ident.n_bands, n_out=ident.n_out, model_hash=ident.model_hash,
            bits=ident.bits, lanes=ident.lanes, version=ident.version, timeout=self._timeout)

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        connect(m, uart_rx.data, link.rx)
        connect(m, link.tx, uart_tx.data)

        connect(m, flipped(self.feat), link.feat)
        connect(m, flipped(self.score), link.score)
        m.d.comb += self.clear.eq(link.clear)
        return m


#: Widths of the DETECTION payload's fields (:class:`~kwshw.link.protocol.DetectionEvent`).
_EVENT_FIELDS = (("cls", 16), ("frame", 32), ("sum", 32))


class EventTransmitter(wiring.Component):
    """Sends each detection event as a DETECTION packet, SYNC to CRC (no host command asks
    for it: a standalone device reports its detections this way).

    Parameters
    ----------
    layout : data.StructLayout
        The events' layout, with unsigned fields ``cls``, ``frame`` and ``sum`` of at most 16,
        32 and 32 bits (:func:`kwshw.hw.detection.event_layout`); each is zero-extended to
        its field of :class:`~kwshw.link.protocol.DetectionEvent`.

    Attributes
    ----------
    events : In(stream.Signature(layout))
        The events, each held until sent: ``ready`` comes with its packet's last byte.
    tx : Out(stream.Signature(8))
        Bytes to the host; SEQ counts the packets sent since reset, modulo 256.
    """

    def __init__(self, layout: data.StructLayout):
        for name, width in _EVENT_FIELDS:
            if name not in layout.members:
                raise ValueError(f"event layout {layout!r} has no field {name!r}")
            shape = Shape.cast(layout.members[name])
            if shape.signed or shape.width > width:
                raise ValueError(f"event field {name!r} must be unsigned of at most {width} "
                                 f"bits, not {layout.members[name]!r}")
        super().__init__({
            "events": In(stream.Signature(layout)),
            "tx": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        checksum = _SentCRC(m, self.tx, _crc_port(self, m, shared=False))
        seq = Signal(8)
        event = self.events.payload
        # The whole packet but its CRC as one constant-and-field vector, sent a byte at a time.
        packet = Cat(Const(SYNC[0], 8), Const(SYNC[1], 8), Const(PacketType.DETECTION, 8), seq,
                     Const(DETECTION_SIZE, 16),
                     *(Value.cast(getattr(event, name)) | Const(0, width)
                       for name, width in _EVENT_FIELDS))
        size = HEADER_SIZE + DETECTION_SIZE
        index = Signal(range(size))
        take = self.tx.valid & self.tx.ready

        with m.FSM():
            with m.State("BODY"):
                m.d.comb += [
                    self.tx.valid.eq(self.events.valid),
                    self.tx.payload.eq(packet.word_select(index, 8)),
                    # The CRC starts with TYPE, the first byte after SYNC.
                    checksum.start.eq(index == len(SYNC)),
                    checksum.valid.eq(take & (index >= len(SYNC))),
                ]
                with m.If(take):
                    m.d.sync += index.eq(Mux(index == size - 1, 0, index + 1))
                    with m.If(index == size - 1):
                        m.next = "CRC-HI"
            sent = _crc_states(m, checksum, self.tx, then="BODY")
        m.d.comb += self.events.ready.eq(sent)
        with m.If(sent):
            m.d.sync += seq.eq(seq + 1)
        return m
