"""Wire format of the host link, and the host side of it.

This module is the single source of truth of the framed packet protocol spoken over the UART
between a host and a kwshw accelerator. It is pure Python (no Amaranth import): the host runtime
uses it to talk to a board, the gateware (:mod:`kwshw.link.gateware`) takes its constants from
it, and the simulation tests use it to encode stimuli and to check replies byte for byte
against :class:`DeviceModel`.

Packet format (all multi-byte fields little-endian, except the CRC)::

    offset  size  field
    0       2     SYNC      0xA5 0x5A
    2       1     TYPE      packet type (:class:`PacketType`)
    3       1     SEQ       sequence number, modulo 256
    4       2     LEN       payload length in bytes (u16 LE)
    6       LEN   PAYLOAD
    6+LEN   2     CRC       CRC-16/CCITT-FALSE over TYPE..PAYLOAD, most significant byte first

The CRC is sent most significant byte first so that the CRC of TYPE..CRC (the whole packet after
SYNC) is zero, which is what the receiver in the gateware checks. See ``docs/host-link.md`` for
the full description, including the device's error handling rules that :class:`DeviceModel`
implements.
"""

from __future__ import annotations

import binascii
import enum
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "SYNC", "HEADER_SIZE", "CRC_SIZE", "OVERHEAD", "PROTOCOL_VERSION", "MAX_PAYLOAD",
    "CRC_INIT", "CRC_POLY", "IDENT_SIZE", "ERROR_SIZE", "DETECTION_SIZE",
    "PacketType", "ErrorCode", "DecodeErrorKind",
    "crc16", "crc16_update",
    "Packet", "Ident", "ErrorReply", "DecodeError", "Decoder",
    "pack_values", "unpack_values",
    "encode_ident", "encode_push_frame", "encode_reset",
    "encode_ident_reply", "encode_scores", "encode_reset_ack", "encode_error",
    "DetectionEvent", "encode_detection", "decode_detection",
    "Transport", "Link", "LinkError", "LinkTimeoutError", "LinkCRCError", "LinkSequenceError",
    "LinkProtocolError", "DeviceError",
    "DeviceModel",
]


#: Two sync bytes start every packet. Two bytes (rather than one) make a false start inside
#: payload data rarer; the CRC makes it harmless.
SYNC = b"\xa5\x5a"
#: SYNC + TYPE + SEQ + LEN.
HEADER_SIZE = 6
CRC_SIZE = 2
#: Bytes on the wire in addition to the payload.
OVERHEAD = HEADER_SIZE + CRC_SIZE
#: Reported in IDENT_REPLY; bumped on any incompatible change of this module.
PROTOCOL_VERSION = 1
#: Largest payload the host-side :class:`Decoder` accepts by default. The device accepts at most
#: ``2 * n_bands`` bytes (the PUSH_FRAME payload).
MAX_PAYLOAD = 1024

#: CRC-16/CCITT-FALSE: polynomial x^16 + x^12 + x^5 + 1, initial value 0xFFFF, no reflection,
#: no final XOR. ``crc16(b"123456789") == 0x29B1``.
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF

#: Payload sizes of the fixed-size replies.
IDENT_SIZE = 17
ERROR_SIZE = 3
#: Payload size of a DETECTION packet (:class:`DetectionEvent`).
DETECTION_SIZE = 10


class PacketType(enum.IntEnum):
    """Packet types. Commands (host to device) have bit 7 clear, responses have it set."""

    IDENT = 0x01
    PUSH_FRAME = 0x02
    RESET = 0x03
    IDENT_REPLY = 0x81
    SCORES = 0x82
    RESET_ACK = 0x83
    #: Sent unasked by a standalone device (microphone in, keyword out) for every detection;
    #: SEQ counts the detections, modulo 256 (:class:`DetectionEvent`).
    DETECTION = 0x84
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    """Error codes carried by an ERROR packet."""

    #: The packet was framed but its CRC did not check. Reported once the line has been idle
    #: for the device's timeout, so that the rest of a packet with a corrupted LEN is skipped.
    BAD_CRC = 0x01
    #: LEN is larger than the largest command payload (reported once the line is idle), or the
    #: packet checked but LEN is not the length its type requires (reported at once).
    BAD_LENGTH = 0x02
    #: The packet checked but its TYPE is not a command.
    UNKNOWN_TYPE = 0x03
    #: A PUSH_FRAME checked but its SEQ is not the one expected: at least one frame was lost (or
    #: a frame was repeated). The frame is not scored; the device now expects SEQ + 1.
    SEQ_GAP = 0x04
    #: The line went idle for the device's timeout in the middle of a packet.
    TRUNCATED = 0x05


def crc16_update(crc: int, byte: int) -> int:
    """Advance a CRC-16/CCITT-FALSE register by one byte (most significant bit first)."""
    return binascii.crc_hqx(bytes((byte,)), crc)


def crc16(data: bytes | bytearray | memoryview, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``).

    ``binascii.crc_hqx`` is this CRC (polynomial 0x1021, MSB first, no reflection, no final
    XOR) from a given start value; CCITT-FALSE starts at :data:`CRC_INIT` = 0xFFFF.

    Parameters
    ----------
    data : bytes-like
        Bytes to checksum.
    crc : int
        Register value to start from, to checksum a message in pieces.
    """
    return binascii.crc_hqx(bytes(data), crc)


# --- Packets -------------------------------------------------------------------------------------


def pack_values(values: Iterable[int]) -> bytes:
    """Pack int16 values little-endian; raises :exc:`ValueError` if one is out of range."""
    values = [int(v) for v in values]
    for v in values:
        if not -0x8000 <= v <= 0x7FFF:
            raise ValueError(f"value {v} does not fit in int16")
    return struct.pack(f"<{len(values)}h", *values)


def unpack_values(payload: bytes) -> list[int]:
    """Unpack a payload of int16 little-endian values."""
    if len(payload) % 2:
        raise ValueError(f"payload of {len(payload)} bytes is not a whole number of int16")
    return list(struct.unpack(f"<{len(payload) // 2}h", payload))


@dataclass(frozen=True)
class Packet:
    """One packet, without its framing.

    Attributes
    ----------
    type : int
        Packet type; usually a :class:`PacketType`, but any byte value is representable so that
        tests can send unknown types.
    seq : int
        Sequence number, 0..255.
    payload : bytes
        Payload, at most 65535 bytes.
    """

    type: int
    seq: int
    payload: bytes = b""

    def __post_init__(self):
        if not 0 <= self.type <= 0xFF:
            raise ValueError(f"packet type {self.type} is not a byte")
        if not 0 <= self.seq <= 0xFF:
            raise ValueError(f"sequence number {self.seq} is not a byte")
        if len(self.payload) > 0xFFFF:
            raise ValueError(f"payload of {len(self.payload)} bytes is too long")
        object.__setattr__(self, "payload", bytes(self.payload))

    def encode(self) -> bytes:
        """The packet as sent on the wire, SYNC to CRC."""
        body = struct.pack("<BBH", self.type, self.seq, len(self.payload)) + self.payload
        return SYNC + body + crc16(body).to_bytes(2, "big")

    def __repr__(self) -> str:
        try:
            name = PacketType(self.type).name
        except ValueError:
            name = f"0x{self.type:02x}"
        return f"Packet({name}, seq={self.seq}, payload={self.payload.hex()})"


@dataclass(frozen=True)
class Ident:
    """Identification of a device, the payload of IDENT_REPLY.

    Layout (17 bytes)::

        offset  size  field
        0       1     protocol version (:data:`PROTOCOL_VERSION`)
        1       1     model file format version
        2       1     bits (weight/activation width the accelerator was built for)
        3       2     lanes (u16 LE)
        5       2     n_bands (u16 LE): int16 values in a PUSH_FRAME
        7       2     n_out (u16 LE): int16 scores in a SCORES reply
        9       8     model content hash (first 8 bytes)
    """

    model_hash: bytes
    bits: int
    lanes: int
    version: int
    n_bands: int
    n_out: int
    protocol: int = PROTOCOL_VERSION

    def __post_init__(self):
        if len(self.model_hash) != 8:
            raise ValueError(f"model hash must be 8 bytes, not {len(self.model_hash)}")
        object.__setattr__(self, "model_hash", bytes(self.model_hash))
        for name, limit in (("protocol", 0xFF), ("version", 0xFF), ("bits", 0xFF),
                            ("lanes", 0xFFFF), ("n_bands", 0xFFFF), ("n_out", 0xFFFF)):
            if not 0 <= getattr(self, name) <= limit:
                raise ValueError(f"{name} = {getattr(self, name)} out of range")
        if not 1 <= 2 * self.n_bands <= 0xFFFF or not 1 <= 2 * self.n_out <= 0xFFFF:
            raise ValueError("n_bands and n_out must be between 1 and 32767")

    def to_bytes(self) -> bytes:
        return struct.pack("<BBBHHH8s", self.protocol, self.version, self.bits, self.lanes,
                           self.n_bands, self.n_out, self.model_hash)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Ident:
        if len(payload) != IDENT_SIZE:
            raise ValueError(f"IDENT_REPLY payload is {len(payload)} bytes, not {IDENT_SIZE}")
        protocol, version, bits, lanes, n_bands, n_out, model_hash = \
            struct.unpack("<BBBHHH8s", payload)
        return cls(model_hash=model_hash, bits=bits, lanes=lanes, version=version,
                   n_bands=n_bands, n_out=n_out, protocol=protocol)


@dataclass(frozen=True)
class ErrorReply:
    """Payload of an ERROR packet: ``code``, the offending packet's ``seq`` as received (0 if the
    packet ended before its SEQ byte), and the sequence number the device ``expected`` next after
    handling it."""

    code: int
    seq: int
    expected: int

    def to_bytes(self) -> bytes:
        return bytes([self.code, self.seq, self.expected])

    @classmethod
    def from_bytes(cls, payload: bytes) -> ErrorReply:
        if len(payload) != ERROR_SIZE:
            raise ValueError(f"ERROR payload is {len(payload)} bytes, not {ERROR_SIZE}")
        return cls(*payload)

    @property
    def code_name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"0x{self.code:02x}"


def encode_ident(seq: int) -> bytes:
    return Packet(PacketType.IDENT, seq).encode()


def encode_push_frame(seq: int, values: Iterable[int]) -> bytes:
    return Packet(PacketType.PUSH_FRAME, seq, pack_values(values)).encode()


def encode_reset(seq: int) -> bytes:
    return Packet(PacketType.RESET, seq).encode()


def encode_ident_reply(seq: int, ident: Ident) -> bytes:
    return Packet(PacketType.IDENT_REPLY, seq, ident.to_bytes()).encode()


def encode_scores(seq: int, scores: Iterable[int]) -> bytes:
    return Packet(PacketType.SCORES, seq, pack_values(scores)).encode()


def encode_reset_ack(seq: int) -> bytes:
    return Packet(PacketType.RESET_ACK, seq).encode()


def encode_error(seq: int, code: int, expected: int) -> bytes:
    """ERROR packet; its header SEQ is the offending seq, repeated in the payload."""
    return Packet(PacketType.ERROR, seq, ErrorReply(code, seq, expected).to_bytes()).encode()


@dataclass(frozen=True)
class DetectionEvent:
    """Payload of a DETECTION packet: a keyword detected on the device.

    Layout (:data:`DETECTION_SIZE` = 10 bytes, little-endian)::

        offset  size  field
        0       2     cls (u16): the class index (``model.labels[cls]``)
        2       4     frame (u32): frames since start, modulo ``2^frame_width`` of the device
        6       4     sum (u32): the smoothed posterior times ``k 2^PF``
                      (:class:`kwshw.detect_int.Detection`)
    """

    cls: int
    frame: int
    sum: int

    def __post_init__(self):
        for name, limit in (("cls", 0xFFFF), ("frame", 0xFFFFFFFF), ("sum", 0xFFFFFFFF)):
            if not 0 <= getattr(self, name) <= limit:
                raise ValueError(f"{name} = {getattr(self, name)} out of range")

    def to_bytes(self) -> bytes:
        return struct.pack("<HII", self.cls, self.frame, self.sum)

    @classmethod
    def from_bytes(cls, payload: bytes) -> DetectionEvent:
        if len(payload) != DETECTION_SIZE:
            raise ValueError(f"DETECTION payload is {len(payload)} bytes, not {DETECTION_SIZE}")
        return cls(*struct.unpack("<HII", payload))


def encode_detection(seq: int, event: DetectionEvent) -> bytes:
    """DETECTION packet; ``seq`` counts the detections the device has sent (modulo 256)."""
    return Packet(PacketType.DETECTION, seq, event.to_bytes()).encode()


def decode_detection(packet: Packet) -> DetectionEvent:
    """The event of a DETECTION packet (one :class:`Decoder` returned, so its CRC checked).

    Raises
    ------
    ValueError
        The packet is not a DETECTION, or its payload is not :data:`DETECTION_SIZE` bytes.
    """
    if packet.type != PacketType.DETECTION:
        raise ValueError(f"{packet!r} is not a DETECTION packet")
    return DetectionEvent.from_bytes(packet.payload)


# --- Streaming decoder ---------------------------------------------------------------------------


class DecodeErrorKind(enum.Enum):
    #: Bytes outside of any packet were skipped while looking for SYNC.
    GARBAGE = "garbage"
    #: A SYNC was followed by a LEN larger than the decoder's ``max_payload``.
    BAD_LENGTH = "bad length"
    #: A framed packet whose CRC did not check.
    BAD_CRC = "bad CRC"
    #: :meth:`Decoder.flush` was called in the middle of a packet.
    TRUNCATED = "truncated"


@dataclass(frozen=True)
class DecodeError:
    """Something :class:`Decoder` could not decode: ``kind``, and the bytes concerned (for
    framing errors, the bytes of the would-be packet; only its first byte is discarded, the rest
    is scanned again for SYNC)."""

    kind: DecodeErrorKind
    data: bytes


class Decoder:
    """Streaming packet decoder that resynchronizes after garbage.

    Bytes are fed in arbitrary pieces; complete packets are returned in order. A candidate packet
    (a SYNC and a header) that turns out bad, because its LEN is too large or its CRC does not
    check, costs only its first byte: the decoder scans again from the next byte, so a real packet
    that started inside a false one is still found. Only packets whose CRC checked are ever
    returned.

    Parameters
    ----------
    max_payload : int
        Longest payload accepted; a larger LEN is a framing error (otherwise a corrupted LEN
        would make the decoder wait for up to 64 KiB).
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self._garbage = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a packet."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget all buffered bytes."""
        self._buf.clear()
        self._garbage.clear()

    def feed(self, data: bytes | bytearray) -> list[Packet | DecodeError]:
        """Add bytes, and return the packets and errors they completed, in stream order."""
        self._buf += data
        out: list[Packet | DecodeError] = []
        self._scan(out, final=False)
        return out

    def flush(self) -> list[Packet | DecodeError]:
        """Declare the end of the stream (e.g. after a timeout): an incomplete packet becomes a
        TRUNCATED error, and the bytes after its first one are scanned again."""
        out: list[Packet | DecodeError] = []
        self._scan(out, final=True)
        return out

    def _skip(self, count: int) -> None:
        self._garbage += self._buf[:count]
        del self._buf[:count]

    def _report_garbage(self, out: list) -> None:
        if self._garbage:
            out.append(DecodeError(DecodeErrorKind.GARBAGE, bytes(self._garbage)))
            self._garbage.clear()

    def _scan(self, out: list, *, final: bool) -> None:
        buf = self._buf
        while buf:
            start = buf.find(SYNC)
            if start < 0:
                # Keep a trailing first SYNC byte: the second one may be in the next piece.
                keep = 1 if buf[-1] == SYNC[0] and not final else 0
                self._skip(len(buf) - keep)
                break
            if start:
                self._skip(start)
            if len(buf) < HEADER_SIZE:
                if final:
                    self._framing_error(out, DecodeErrorKind.TRUNCATED, len(buf))
                    continue
                break
            length = buf[4] | buf[5] << 8
            if length > self.max_payload:
                self._framing_error(out, DecodeErrorKind.BAD_LENGTH, HEADER_SIZE)
                continue
            size = HEADER_SIZE + length + CRC_SIZE
            if len(buf) < size:
                if final:
                    self._framing_error(out, DecodeErrorKind.TRUNCATED, len(buf))
                    continue
                break
            if crc16(memoryview(buf)[2:size]) != 0:
                self._framing_error(out, DecodeErrorKind.BAD_CRC, size)
                continue
            self._report_garbage(out)
            out.append(Packet(buf[2], buf[3], bytes(buf[HEADER_SIZE:size - CRC_SIZE])))
            del buf[:size]
        if final:
            self._report_garbage(out)

    def _framing_error(self, out: list, kind: DecodeErrorKind, size: int) -> None:
        self._report_garbage(out)
        out.append(DecodeError(kind, bytes(self._buf[:size])))
        # Discard only the first SYNC byte: a real packet may start inside the false one.
        del self._buf[:1]


# --- Host side -----------------------------------------------------------------------------------


class Transport(Protocol):
    """What :class:`Link` needs of a byte transport; a :class:`serial.Serial` fits.

    ``read(size)`` returns at most ``size`` bytes, and may return fewer (or none) after a short
    wait; ``in_waiting`` and ``reset_input_buffer()`` are used if present.
    """

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...


class LinkError(Exception):
    """Base class of the errors raised by :class:`Link`."""


class LinkTimeoutError(LinkError):
    """No (complete) response arrived within the timeout."""


class LinkCRCError(LinkError):
    """A response arrived corrupted (CRC or framing error)."""


class LinkSequenceError(LinkError):
    """A response carried a sequence number other than the command's."""


class LinkProtocolError(LinkError):
    """A response checked but is not a valid reply to the command (type or length)."""


class DeviceError(LinkError):
    """The device answered with an ERROR packet.

    Attributes
    ----------
    reply : ErrorReply
        The decoded ERROR payload.
    """

    def __init__(self, reply: ErrorReply):
        self.reply = reply
        super().__init__(f"device reported {reply.code_name} for seq {reply.seq} "
                         f"(expects seq {reply.expected} next)")

    @property
    def code(self) -> int:
        return self.reply.code


class Link:
    """Host end of the link: one command at a time, each answered by exactly one response.

    Parameters
    ----------
    transport : Transport
        Byte transport to the device: a :class:`serial.Serial` opened with a short read timeout
        (see :meth:`open`), or any object with ``write(bytes)`` and ``read(size)``.
    timeout : float
        Seconds to wait for a response. Must exceed the device's inter-byte timeout (errors about
        framing are only reported once the line has been idle that long) plus the time to send
        the command, compute and send the response.
    clock : callable
        Monotonic clock in seconds, replaceable for tests.

    Sequence numbers follow the device: a command the device accepted consumes one; a command it
    rejected reports in its ERROR the seq it expects next, which the link adopts; when the outcome
    is unknown (timeout, corrupted response) the link assumes the command arrived, so that if it
    did not, the next PUSH_FRAME draws a SEQ_GAP and the lost frame does not go unnoticed. Failed
    commands are never retried automatically: resending a frame changes what the accelerator's
    window holds, which only the caller can decide.
    """

    def __init__(self, transport: Transport, *, timeout: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.timeout = timeout
        self.seq = 0
        self.device: Ident | None = None
        self._clock = clock
        self._decoder = Decoder()

    @classmethod
    def open(cls, port: str, baudrate: int = 115200, **kwargs) -> Link:
        """Open a serial port (needs pyserial) and return a :class:`Link` over it."""
        import serial  # only the hardware path needs pyserial

        return cls(serial.Serial(port, baudrate, timeout=0.01), **kwargs)

    def ident(self) -> Ident:
        """Ask the device what it is; also remembers the answer as :attr:`device`."""
        reply = self._transact(PacketType.IDENT, b"", PacketType.IDENT_REPLY)
        try:
            self.device = Ident.from_bytes(reply.payload)
        except ValueError as e:
            raise LinkProtocolError(str(e)) from None
        # No reply can be longer: a corrupted or false LEN is caught at once.
        self._decoder.max_payload = max(IDENT_SIZE, ERROR_SIZE, 2 * self.device.n_out)
        return self.device

    def reset(self) -> None:
        """Clear the device's window of past frames; also resynchronizes sequence numbers."""
        self._transact(PacketType.RESET, b"", PacketType.RESET_ACK)

    def push_frame(self, values: Sequence[int]) -> list[int]:
        """Send one feature frame (n_bands int16 values); return its n_out int16 scores."""
        if self.device is not None and len(values) != self.device.n_bands:
            raise ValueError(f"frame has {len(values)} values, device expects "
                             f"{self.device.n_bands}")
        reply = self._transact(PacketType.PUSH_FRAME, pack_values(values), PacketType.SCORES)
        if self.device is not None and len(reply.payload) != 2 * self.device.n_out:
            raise LinkProtocolError(f"SCORES has {len(reply.payload)} bytes, expected "
                                    f"{2 * self.device.n_out}")
        try:
            return unpack_values(reply.payload)
        except ValueError as e:
            raise LinkProtocolError(str(e)) from None

    def _transact(self, ptype: PacketType, payload: bytes, reply_type: PacketType) -> Packet:
        seq = self.seq
        # A late response to an earlier, timed out command must not be taken for this one.
        if hasattr(self.transport, "reset_input_buffer"):
            self.transport.reset_input_buffer()
        self._decoder.reset()
        self.transport.write(Packet(ptype, seq, payload).encode())
        # Until told otherwise, assume the device got the command.
        self.seq = (seq + 1) & 0xFF
        deadline = self._clock() + self.timeout
        while True:
            waiting = getattr(self.transport, "in_waiting", 0) or 1
            for item in self._decoder.feed(self.transport.read(waiting)):
                if isinstance(item, DecodeError):
                    if item.kind is DecodeErrorKind.GARBAGE:
                        continue  # e.g. noise while the line was idle
                    raise LinkCRCError(f"corrupted response to {ptype.name} seq {seq}: "
                                       f"{item.kind.value} ({item.data.hex()})")
                return self._check_reply(item, ptype, seq, reply_type)
            if self._clock() > deadline:
                # A false start in noise may hold back a good reply, waiting for its bytes.
                for item in self._decoder.flush():
                    if isinstance(item, Packet):
                        return self._check_reply(item, ptype, seq, reply_type)
                raise LinkTimeoutError(f"no response to {ptype.name} seq {seq} within "
                                       f"{self.timeout} s")

    def _check_reply(self, reply: Packet, ptype: PacketType, seq: int,
                     reply_type: PacketType) -> Packet:
        if reply.type == PacketType.ERROR:
            try:
                error = ErrorReply.from_bytes(reply.payload)
            except ValueError as e:
                raise LinkProtocolError(str(e)) from None
            self.seq = error.expected
            raise DeviceError(error)
        if reply.seq != seq:
            raise LinkSequenceError(f"response {reply!r} to {ptype.name} seq {seq} carries "
                                    f"seq {reply.seq}")
        if reply.type != reply_type:
            raise LinkProtocolError(f"response {reply!r} to {ptype.name} seq {seq} is not "
                                    f"{reply_type.name}")
        return reply


# --- Reference model of the device ---------------------------------------------------------------


class DeviceModel:
    """Behavioural model of the device end (:class:`kwshw.link.gateware.HostLink`), byte for byte.

    The gateware is tested against this model, and host code can be tested against it without
    hardware. Bytes arrive through :meth:`receive`; :meth:`idle` stands for the line having been
    quiet for the device's inter-byte timeout. Both return the bytes the device sends in answer.

    Parameters
    ----------
    ident : Ident
        What IDENT answers; ``ident.n_bands`` and ``ident.n_out`` size the frames and scores.
    infer : callable
        Called with the n_bands values of each accepted frame; returns its n_out scores.
    clear : callable, optional
        Called on RESET (the gateware pulses ``clear``).
    """

    def __init__(self, ident: Ident, infer: Callable[[list[int]], Sequence[int]],
                 clear: Callable[[], None] | None = None):
        self.ident = ident
        self.infer = infer
        self.on_clear = clear
        self.max_payload = 2 * ident.n_bands
        self.expected = 0
        #: False until the first command was accepted: then any PUSH_FRAME seq is taken.
        self.seq_valid = False
        self._state = "hunt"
        self._body = bytearray()   # TYPE .. CRC of the packet being received
        self._pending: ErrorReply | None = None

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            out += self._byte(byte)
        return bytes(out)

    def idle(self) -> bytes:
        """The line has been quiet for the device's timeout."""
        if self._state == "drain":
            self._state = "hunt"
            return self._error(self._pending)
        if self._state == "packet":
            self._state = "hunt"
            seq = self._body[1] if len(self._body) >= 2 else 0
            return self._error(ErrorReply(ErrorCode.TRUNCATED, seq, self.expected))
        return b""

    def _error(self, error: ErrorReply) -> bytes:
        return encode_error(error.seq, error.code, error.expected)

    def _byte(self, byte: int) -> bytes:
        if self._state == "hunt":
            if byte == SYNC[0]:
                self._state = "sync1"
        elif self._state == "sync1":
            if byte == SYNC[1]:
                self._state = "packet"
                self._body.clear()
            elif byte != SYNC[0]:
                self._state = "hunt"
        elif self._state == "packet":
            body = self._body
            body.append(byte)
            if len(body) == 4:
                length = body[2] | body[3] << 8
                if length > self.max_payload:
                    self._pending = ErrorReply(ErrorCode.BAD_LENGTH, body[1], self.expected)
                    self._state = "drain"
            if len(body) >= 4 and len(body) == 4 + (body[2] | body[3] << 8) + CRC_SIZE:
                return self._packet()
        # "drain": bytes are dropped until the line is idle.
        return b""

    def _packet(self) -> bytes:
        body = self._body
        ptype, seq, length = body[0], body[1], body[2] | body[3] << 8
        if crc16(body) != 0:
            self._pending = ErrorReply(ErrorCode.BAD_CRC, seq, self.expected)
            self._state = "drain"
            return b""
        self._state = "hunt"
        payload = bytes(body[4:4 + length])
        if ptype in (PacketType.IDENT, PacketType.RESET):
            if length != 0:
                return self._error(ErrorReply(ErrorCode.BAD_LENGTH, seq, self.expected))
            self.expected, self.seq_valid = (seq + 1) & 0xFF, True
            if ptype == PacketType.IDENT:
                return encode_ident_reply(seq, self.ident)
            if self.on_clear is not None:
                self.on_clear()
            return encode_reset_ack(seq)
        if ptype == PacketType.PUSH_FRAME:
            if length != 2 * self.ident.n_bands:
                return self._error(ErrorReply(ErrorCode.BAD_LENGTH, seq, self.expected))
            gap = self.seq_valid and seq != self.expected
            self.expected, self.seq_valid = (seq + 1) & 0xFF, True
            if gap:
                return self._error(ErrorReply(ErrorCode.SEQ_GAP, seq, self.expected))
            scores = [((int(s) + 0x8000) & 0xFFFF) - 0x8000
                      for s in self.infer(unpack_values(payload))]
            if len(scores) != self.ident.n_out:
                raise ValueError(f"infer returned {len(scores)} scores, not {self.ident.n_out}")
            return encode_scores(seq, scores)
        return self._error(ErrorReply(ErrorCode.UNKNOWN_TYPE, seq, self.expected))
