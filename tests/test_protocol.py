"""The wire format, the streaming decoder, and the host Link against the device model."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kwshw.link.protocol import (
    CRC_INIT,
    CRC_POLY,
    IDENT_SIZE,
    OVERHEAD,
    SYNC,
    DecodeError,
    DecodeErrorKind,
    Decoder,
    DeviceError,
    DeviceModel,
    ErrorCode,
    ErrorReply,
    Ident,
    Link,
    LinkCRCError,
    LinkError,
    LinkProtocolError,
    LinkSequenceError,
    LinkTimeoutError,
    Packet,
    PacketType,
    crc16,
    crc16_update,
    encode_error,
    encode_ident,
    encode_ident_reply,
    encode_push_frame,
    encode_reset,
    encode_reset_ack,
    encode_scores,
    pack_values,
    unpack_values,
)

IDENT = Ident(model_hash=bytes.fromhex("feedfacecafebeef"), bits=8, lanes=4, version=2,
              n_bands=5, n_out=3)
# Deterministic, so CI never meets the 2**-16 chance of random garbage carrying a valid CRC.
FUZZ = settings(max_examples=300, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def infer(values):
    """A stand-in inference for the device model, wrapping to int16 like the device."""
    scores = [sum(values), values[0] - values[-1], max(values)]
    return [((s + 0x8000) & 0xFFFF) - 0x8000 for s in scores]


# --- CRC and packets -----------------------------------------------------------------------------


def test_crc16_ccitt_false():
    assert crc16(b"123456789") == 0x29B1   # the catalogue check value
    assert crc16(b"") == CRC_INIT
    assert crc16(b"6789", crc16(b"12345")) == 0x29B1
    assert crc16_update(CRC_INIT, ord("1")) == crc16(b"1")


def test_crc16_update_is_the_bitwise_register():
    """binascii's CRC equals the MSB-first shift register with CRC_POLY, for every byte."""
    def bitwise(crc, byte):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
        return crc & 0xFFFF

    for crc in (0, CRC_INIT, 0x1234, 0x8001, 0x7FFE):
        for byte in range(256):
            assert crc16_update(crc, byte) == bitwise(crc, byte)


def test_crc_residue():
    # The CRC goes out most significant byte first, so a good packet's CRC from TYPE on is zero.
    for data in (encode_ident(0), encode_push_frame(200, [1, -1, 32767, -32768, 0])):
        assert data[:2] == SYNC
        assert crc16(data[2:]) == 0


def test_packet_layout():
    data = encode_push_frame(0x12, [0x0201, -2])
    assert data[:8] == bytes([0xA5, 0x5A, 0x02, 0x12, 0x04, 0x00, 0x01, 0x02])
    assert data[8:10] == b"\xfe\xff"
    assert data[10:] == crc16(data[2:10]).to_bytes(2, "big")
    assert len(data) == OVERHEAD + 4


def test_round_trips():
    error = ErrorReply(ErrorCode.SEQ_GAP, 9, 10)
    cases = [
        (encode_ident(1), Packet(PacketType.IDENT, 1)),
        (encode_reset(255), Packet(PacketType.RESET, 255)),
        (encode_push_frame(2, [1, 2, 3]), Packet(PacketType.PUSH_FRAME, 2, pack_values([1, 2, 3]))),
        (encode_ident_reply(3, IDENT), Packet(PacketType.IDENT_REPLY, 3, IDENT.to_bytes())),
        (encode_scores(4, [-5, 6]), Packet(PacketType.SCORES, 4, pack_values([-5, 6]))),
        (encode_reset_ack(5), Packet(PacketType.RESET_ACK, 5)),
        (encode_error(9, ErrorCode.SEQ_GAP, 10), Packet(PacketType.ERROR, 9, error.to_bytes())),
    ]
    for data, packet in cases:
        assert packet.encode() == data
        assert Decoder().feed(data) == [packet]
    assert Ident.from_bytes(IDENT.to_bytes()) == IDENT
    assert len(IDENT.to_bytes()) == IDENT_SIZE
    assert ErrorReply.from_bytes(error.to_bytes()) == error
    assert unpack_values(pack_values([-32768, 32767, 0])) == [-32768, 32767, 0]


def test_value_checks():
    with pytest.raises(ValueError):
        pack_values([32768])
    with pytest.raises(ValueError):
        unpack_values(b"\0")
    with pytest.raises(ValueError):
        Packet(256, 0)
    with pytest.raises(ValueError):
        Packet(1, -1)
    with pytest.raises(ValueError):
        Ident(model_hash=b"1234567", bits=8, lanes=4, version=2, n_bands=5, n_out=3)
    with pytest.raises(ValueError):
        ErrorReply.from_bytes(b"\1\2")


# --- Decoder -------------------------------------------------------------------------------------


def test_decoder_byte_by_byte_and_garbage():
    stream = b"\x00\xa5\x11" + encode_ident(1) + b"\xa5" + encode_reset(2) + b"\xa5"
    decoder = Decoder()
    out = list(itertools.chain.from_iterable(decoder.feed(bytes([b])) for b in stream))
    assert out == [DecodeError(DecodeErrorKind.GARBAGE, b"\x00\xa5\x11"),
                   Packet(PacketType.IDENT, 1),
                   DecodeError(DecodeErrorKind.GARBAGE, b"\xa5"),
                   Packet(PacketType.RESET, 2)]
    assert decoder.pending == 1   # a trailing 0xA5 may start the next packet
    assert decoder.flush() == [DecodeError(DecodeErrorKind.GARBAGE, b"\xa5")]


def test_decoder_false_start_needs_flush():
    # A duplicated SYNC makes a false header whose LEN (0x0203) is taken from the real packet:
    # the decoder waits for that many bytes, or for `flush`, before it finds the real packet.
    decoder = Decoder()
    assert decoder.feed(SYNC + encode_reset(2)) == []
    out = decoder.flush()
    assert out[0].kind is DecodeErrorKind.TRUNCATED
    assert out[-1] == Packet(PacketType.RESET, 2)
    # With a tight `max_payload` (as Link sets once it knows the device) it does not wait.
    assert Decoder(max_payload=32).feed(SYNC + encode_reset(2))[-1] == Packet(PacketType.RESET, 2)


def test_decoder_bad_length_and_truncation():
    decoder = Decoder(max_payload=8)
    too_long = encode_push_frame(1, range(5))        # 10-byte payload
    out = decoder.feed(too_long + encode_ident(2))
    assert out[0] == DecodeError(DecodeErrorKind.BAD_LENGTH, too_long[:6])
    assert out[-1] == Packet(PacketType.IDENT, 2)
    # A cut packet waits for more, until flushed; a packet inside it is still found.
    cut = encode_push_frame(3, [1, 2, 3])[:-1]
    assert decoder.feed(cut) == []
    assert decoder.flush()[0] == DecodeError(DecodeErrorKind.TRUNCATED, cut)
    assert decoder.pending == 0


def test_decoder_finds_packet_inside_false_one():
    # A false header announcing a long payload swallows a real packet; when its CRC fails the
    # decoder rescans and finds the real one.
    false_start = SYNC + bytes([PacketType.PUSH_FRAME, 0, 20, 0])
    real = encode_scores(7, [1, 2])
    out = Decoder().feed(false_start + real + bytes(20))
    assert Packet(PacketType.SCORES, 7, pack_values([1, 2])) in out


packets_st = st.builds(
    Packet,
    type=st.sampled_from(list(PacketType)) | st.integers(0, 255),
    seq=st.integers(0, 255),
    payload=st.binary(max_size=40),
)


def feed_in_chunks(decoder, data, cuts):
    """Feed `data` cut at the given positions, then flush."""
    out, last = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        out += decoder.feed(data[last:cut])
        last = cut
    return out + decoder.feed(data[last:]) + decoder.flush()


@FUZZ
@given(
    items=st.lists(st.tuples(st.binary(max_size=12) | st.sampled_from([b"\xa5", SYNC, SYNC * 2]),
                             packets_st), max_size=8),
    trailer=st.binary(max_size=12),
    cuts=st.lists(st.integers(0, 1000), max_size=6),
)
def test_decoder_resynchronizes(items, trailer, cuts):
    """Packets separated by garbage (including sync bytes) are all recovered, in order."""
    data = b"".join(garbage + packet.encode() for garbage, packet in items) + trailer
    out = feed_in_chunks(Decoder(), data, cuts)
    assert [item for item in out if isinstance(item, Packet)] == [p for _, p in items]


@FUZZ
@given(
    packets=st.lists(packets_st, min_size=1, max_size=6),
    edits=st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete"]),
                             st.integers(0, 10_000), st.integers(0, 255)),
                   min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 1000), max_size=4),
)
def test_decoder_rejects_corruption(packets, edits, cuts):
    """After random corruption, only packets that were sent are decoded (their CRC checked),
    and every packet the corruption did not touch is still recovered."""
    encoded = [p.encode() for p in packets]
    data = bytearray(b"".join(encoded))
    touched = bytearray(len(data))          # per byte: did an edit hit it (or next to it)?
    for op, position, value in edits:
        if not data:
            break
        i = position % len(data)
        if op == "flip":
            data[i] ^= 1 << (value % 8)
            touched[i] = 1
        elif op == "set":
            touched[i] |= data[i] != value
            data[i] = value
        elif op == "insert":
            data.insert(i, value)
            touched.insert(i, 1)
        else:
            del data[i]
            del touched[i]
            if i < len(touched):
                touched[i] = 1
            if i:
                touched[i - 1] = 1
    out = feed_in_chunks(Decoder(), bytes(data), cuts)
    decoded = [item for item in out if isinstance(item, Packet)]
    for packet in decoded:
        assert packet in packets
        assert crc16(packet.encode()[2:]) == 0
    # Locate the untouched packets in the corrupted stream and expect them, in order.
    intact, position = [], 0
    for packet, raw in zip(packets, encoded, strict=True):
        found = bytes(data).find(raw, position)
        if found >= 0 and not any(touched[found:found + len(raw)]):
            intact.append(packet)
            position = found + len(raw)
    it = iter(decoded)
    assert all(packet in it for packet in intact)


# --- Device model --------------------------------------------------------------------------------


def test_device_model_rules():
    cleared = []
    model = DeviceModel(IDENT, infer, clear=lambda: cleared.append(True))
    assert model.receive(encode_ident(5)) == encode_ident_reply(5, IDENT)
    assert model.receive(encode_push_frame(6, [1, 2, 3, 4, 5])) == encode_scores(6, [15, -4, 5])
    # Dropped frame 7.
    assert model.receive(encode_push_frame(8, [0] * 5)) == encode_error(8, ErrorCode.SEQ_GAP, 9)
    # Corruption is only reported once the line is idle.
    bad = bytearray(encode_push_frame(9, [0] * 5))
    bad[7] ^= 1
    assert model.receive(bytes(bad)) == b""
    assert model.idle() == encode_error(9, ErrorCode.BAD_CRC, 9)
    assert model.receive(encode_push_frame(9, [0] * 5)) == encode_scores(9, [0, 0, 0])
    assert model.receive(encode_reset(0)) == encode_reset_ack(0)
    assert cleared == [True]
    # RESET, like IDENT, sets the numbering: 1 is expected next.
    assert model.receive(encode_push_frame(1, [1] * 5))[2:4] == bytes([PacketType.SCORES, 1])
    assert model.receive(encode_push_frame(2, [1] * 5)[:7]) == b""
    assert model.idle() == encode_error(2, ErrorCode.TRUNCATED, 2)
    assert model.idle() == b""


# --- Link ----------------------------------------------------------------------------------------


class ModelTransport:
    """A transport with a DeviceModel at the other end, and ways to break the line."""

    def __init__(self, model=None):
        self.model = model or DeviceModel(IDENT, infer)
        self.buffer = bytearray()
        self.drop_command = False
        self.corrupt_command = None     # byte index to flip in the next command
        self.corrupt_reply = None       # byte index to flip in the next reply
        self.inject = b""               # bytes arriving after the command is sent

    def write(self, data):
        data = bytearray(data)
        if self.drop_command:
            self.drop_command = False
            data.clear()
        if self.corrupt_command is not None:
            data[self.corrupt_command] ^= 0x01
            self.corrupt_command = None
        reply = bytearray(self.model.receive(bytes(data)) + self.model.idle())
        if self.corrupt_reply is not None:
            reply[self.corrupt_reply] ^= 0x80
            self.corrupt_reply = None
        self.buffer += self.inject + reply
        self.inject = b""
        return len(data)

    @property
    def in_waiting(self):
        return len(self.buffer)

    def read(self, size=1):
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def reset_input_buffer(self):
        self.buffer.clear()


class FakeClock:
    """Advances a little at every look, so timeouts expire without waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 0.01
        return self.now


def make_link():
    transport = ModelTransport()
    return Link(transport, timeout=0.5, clock=FakeClock()), transport


def test_link_round_trip():
    link, _ = make_link()
    assert link.ident() == IDENT
    link.reset()
    for i in range(5):
        frame = [i, -i, 100 * i, 3, -32768]
        assert link.push_frame(frame) == infer(frame)
    assert link.seq == 7
    with pytest.raises(ValueError):
        link.push_frame([1, 2])


def test_link_corrupted_command():
    link, transport = make_link()
    link.ident()
    transport.corrupt_command = 8         # a payload byte
    with pytest.raises(DeviceError) as info:
        link.push_frame([1, 2, 3, 4, 5])
    assert info.value.code == ErrorCode.BAD_CRC
    assert link.seq == 1                  # not consumed: the device did not take the frame
    assert link.push_frame([1, 2, 3, 4, 5]) == infer([1, 2, 3, 4, 5])


def test_link_lost_command_then_seq_gap():
    link, transport = make_link()
    link.reset()
    transport.drop_command = True
    with pytest.raises(LinkTimeoutError):
        link.push_frame([0] * 5)
    with pytest.raises(DeviceError) as info:
        link.push_frame([1] * 5)
    assert info.value.code == ErrorCode.SEQ_GAP
    assert info.value.reply == ErrorReply(ErrorCode.SEQ_GAP, 2, 3)
    assert link.push_frame([2] * 5) == infer([2] * 5)


def test_link_corrupted_and_stray_replies():
    link, transport = make_link()
    link.ident()
    transport.corrupt_reply = 9
    with pytest.raises(LinkCRCError):
        link.push_frame([1] * 5)
    transport.inject = encode_scores(77, [0, 0, 0])   # a late reply to some other command
    with pytest.raises(LinkSequenceError):
        link.push_frame([1] * 5)
    transport.inject = encode_reset_ack(link.seq)      # the right seq, the wrong type
    with pytest.raises(LinkProtocolError):
        link.push_frame([1] * 5)
    # Noise on an idle line before the reply is fine.
    transport.inject = b"\x00\xff\x13"
    assert link.push_frame([1] * 5) == infer([1] * 5)
    assert issubclass(DeviceError, LinkError) and issubclass(LinkTimeoutError, LinkError)


def test_link_over_pyserial_loopback():
    # pyserial's loop:// echoes our own command back: a well-formed packet of the wrong type.
    serial = pytest.importorskip("serial")
    port = serial.serial_for_url("loop://", timeout=0.01)
    link = Link(port, timeout=0.2)
    with pytest.raises(LinkProtocolError):
        link.ident()
