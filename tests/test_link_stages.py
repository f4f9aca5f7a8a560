"""The three stages of the HostLink, each alone, against the host side of kwshw.link.protocol:
packets built by the host code go in, and what comes out is compared with what
:class:`~kwshw.link.protocol.DeviceModel` does, or with the host's encoders. (The whole link is
tested in tests/test_link.py.)"""

import random

from amaranth.sim import Simulator

from kwshw.link.gateware import (
    CRC16,
    CommandChecker,
    FrameBuffer,
    PacketParser,
    PacketReceiver,
    ReplyTransmitter,
)
from kwshw.link.protocol import (
    CRC_INIT,
    CRC_POLY,
    SYNC,
    Decoder,
    DeviceModel,
    ErrorCode,
    ErrorReply,
    Ident,
    Packet,
    PacketType,
    crc16,
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

N_BANDS = 5
N_OUT = 3
TIMEOUT = 20
IDENT = Ident(model_hash=bytes.fromhex("0123456789abcdef"), bits=4, lanes=2, version=3,
              n_bands=N_BANDS, n_out=N_OUT)


def run(dut, *testbenches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in background:
        sim.add_testbench(bench, background=True)
    for bench in testbenches:
        sim.add_testbench(bench)
    sim.run()


async def wait_for(ctx, signal, limit=1000):
    """Tick until a clock edge where ``signal`` is high (a transfer, for a stream's ready); a
    design that hangs fails instead of running forever."""
    for _ in range(limit):
        _, _, value = await ctx.tick().sample(signal)
        if value:
            return
    raise AssertionError(f"{signal.name} stayed low for {limit} cycles")


def random_frame(rng):
    return [rng.choice([-32768, 32767, 0, -1, rng.randint(-32768, 32767)])
            for _ in range(N_BANDS)]


def test_crc16_is_the_protocol_crc():
    algorithm = CRC16.algorithm
    assert (algorithm.polynomial, algorithm.initial_crc) == (CRC_POLY, CRC_INIT)
    assert CRC16.compute(b"123456789") == crc16(b"123456789") == 0x29B1
    rng = random.Random(0)
    for n in range(40):
        data = rng.randbytes(n)
        assert CRC16.compute(data) == crc16(data)
    # Data followed by its CRC, MSB first, leaves the residue `match_detected` looks for.
    packet = encode_push_frame(9, random_frame(rng))
    assert CRC16.residue() == 0 == crc16(packet[2:])


# --- PacketReceiver ------------------------------------------------------------------------------


def receiver_traffic(rng):
    """Byte strings to send, each followed by an idle line: good, corrupted, truncated, too
    long, unknown, and garbage, in random order."""
    out = [encode_ident(0), encode_push_frame(1, random_frame(rng)), encode_reset(2),
           encode_push_frame(3, random_frame(rng)),
           encode_push_frame(5, random_frame(rng)),                     # a gap
           Packet(PacketType.IDENT, 6, b"\0").encode(),                 # bad length
           Packet(PacketType.PUSH_FRAME, 6, b"\0" * 4).encode(),
           Packet(PacketType.SCORES, 6).encode(),                       # not a command
           b"\x00\xa5\xa5\x13\xff",                                     # garbage
           encode_push_frame(6, random_frame(rng))[:9],                 # truncated
           encode_ident(6)[:3], encode_ident(6)[:5]]                    # ... in the header
    good = encode_push_frame(6, random_frame(rng))
    bad = bytearray(good)
    bad[4], bad[5] = 0x00, 0x01                                         # LEN too large
    out.append(bytes(bad))
    bad[4], bad[5] = 2 * N_BANDS + 1, 0x00                              # ... by one
    out += [bytes(bad), good[:7] + bytes([good[7] ^ 4]) + good[8:]]     # bad CRC
    seq = 6
    for _ in range(20):
        kind = rng.choice(["frame"] * 4 + ["ident", "reset", "corrupt", "truncate"])
        data = {"ident": encode_ident(seq), "reset": encode_reset(seq)}.get(
            kind, encode_push_frame(seq, random_frame(rng)))
        if kind == "corrupt":
            data = bytearray(data)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            data = data[:rng.randrange(1, len(data))]
        out.append(bytes(data))
        seq = (seq + rng.choice([1, 1, 1, 2])) & 0xFF
    return out


def test_receiver_against_device_model():
    rng = random.Random(1)
    traffic = receiver_traffic(rng)
    dut = PacketReceiver(n_bands=N_BANDS, timeout=TIMEOUT)
    frames = []
    model = DeviceModel(IDENT, lambda values: frames.append(values) or [0] * N_OUT)
    buffer = {}
    commands = []

    async def device_side(ctx):
        # Writes the values into `buffer`; takes each command a few cycles after it appears,
        # as if its reply took that long, and records it with the frame buffered at the time.
        wait = 0
        async for _, _, v_valid, value, c_valid, c_ready, command in ctx.tick().sample(
                dut.values.valid, dut.values.payload, dut.command.valid, dut.command.ready,
                dut.command.payload):
            if v_valid:
                buffer[value.index] = value.value
            if c_valid and c_ready:
                commands.append((command.type, command.seq, command.code, command.expected,
                                 [buffer.get(k) for k in range(N_BANDS)]))
                ctx.set(dut.command.ready, 0)
            elif c_valid:
                wait = wait - 1 if wait else rng.randrange(1, 6)
                ctx.set(dut.command.ready, wait == 1)

    async def host_side(ctx):
        for data in traffic:
            for byte in data:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, byte)
                await wait_for(ctx, dut.rx.ready)
                ctx.set(dut.rx.valid, 0)
                for _ in range(rng.randrange(0, 3)):
                    await ctx.tick()
            await ctx.tick().repeat(TIMEOUT + 20)

            want = []
            frames.clear()
            for packet in Decoder().feed(model.receive(data) + model.idle()):
                if packet.type == PacketType.ERROR:
                    error = ErrorReply.from_bytes(packet.payload)
                    want.append((packet.type, error.seq, error.code, error.expected))
                else:
                    want.append((packet.type, packet.seq))
            got = []
            for ptype, seq, code, expected, frame in commands:
                if ptype == PacketType.ERROR:
                    got.append((ptype, seq, code, expected))
                else:
                    got.append((ptype, seq))
                    if ptype == PacketType.SCORES:
                        assert frame == frames.pop(0)
            assert got == want, data.hex()
            commands.clear()
            seen.update((reply[0], reply[2] if len(reply) > 2 else None) for reply in want)

    seen = set()
    run(dut, host_side, background=[device_side])
    assert {ptype for ptype, _ in seen} == {PacketType.IDENT_REPLY, PacketType.RESET_ACK,
                                             PacketType.SCORES, PacketType.ERROR}
    assert {code for _, code in seen} >= set(ErrorCode)


def test_receiver_holds_rx_until_the_command_is_taken():
    dut = PacketReceiver(n_bands=N_BANDS, timeout=TIMEOUT)

    async def testbench(ctx):
        for byte in encode_ident(4):
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, byte)
            await wait_for(ctx, dut.rx.ready)
        ctx.set(dut.rx.payload, encode_ident(5)[0])
        await wait_for(ctx, dut.command.valid)
        for _ in range(3 * TIMEOUT):
            assert ctx.get(dut.command.valid) and not ctx.get(dut.rx.ready)
            assert (ctx.get(dut.command.payload.type),
                    ctx.get(dut.command.payload.seq)) == (PacketType.IDENT_REPLY, 4)
            await ctx.tick()
        ctx.set(dut.command.ready, 1)
        await ctx.tick()
        ctx.set(dut.command.ready, 0)
        assert not ctx.get(dut.command.valid) and ctx.get(dut.rx.ready)

    run(dut, testbench)


def test_checker_against_device_model():
    """Packets as the parser finds them, framed or not, against the model fed their bytes."""
    rng = random.Random(4)
    dut = CommandChecker(N_BANDS)
    model = DeviceModel(IDENT, lambda values: [0] * N_OUT)
    seq = 0
    cases = []
    for _ in range(200):
        ptype = rng.choice([PacketType.IDENT, PacketType.RESET] + [PacketType.PUSH_FRAME] * 4
                           + [PacketType.SCORES, 0x42])
        length = rng.choice([0, 2 * N_BANDS] * 4 + [1, 2 * N_BANDS - 2])
        seq = (seq + rng.choice([1] * 6 + [0, 2, 7])) & 0xFF
        data = Packet(ptype, seq, bytes(rng.randrange(256) for _ in range(length))).encode()
        error = rng.choice([0] * 8 + [ErrorCode.BAD_CRC, ErrorCode.TRUNCATED])
        if error == ErrorCode.BAD_CRC:
            data = data[:-1] + bytes([data[-1] ^ 1])
        elif error == ErrorCode.TRUNCATED:
            data = data[:-1]
        reply, = Decoder().feed(model.receive(data) + model.idle())
        want = (reply.type, reply.seq)
        if reply.type == PacketType.ERROR:
            error_reply = ErrorReply.from_bytes(reply.payload)
            want += (error_reply.code, error_reply.expected)
        cases.append(((ptype, seq, length, error), want))
    outcomes = {want[2] if want[0] == PacketType.ERROR else want[0] for _, want in cases}
    assert outcomes == {PacketType.IDENT_REPLY, PacketType.RESET_ACK, PacketType.SCORES,
                        *ErrorCode}

    async def testbench(ctx):
        for (ptype, seq, length, error), want in cases:
            for field, value in (("type", ptype), ("seq", seq), ("length", length),
                                 ("error", error)):
                ctx.set(dut.packet.payload[field], int(value))
            ctx.set(dut.packet.valid, 1)
            ctx.set(dut.command.ready, 1)
            # The command comes from the second cycle on (registered compares).
            assert not ctx.get(dut.command.valid) and not ctx.get(dut.packet.ready)
            await ctx.tick()
            command = dut.command.payload
            got = (ctx.get(command.type), ctx.get(command.seq))
            if got[0] == PacketType.ERROR:
                got += (ctx.get(command.code), ctx.get(command.expected))
            assert got == want, (ptype, seq, length, error)
            assert ctx.get(dut.command.valid) and ctx.get(dut.packet.ready)
            await ctx.tick()

    run(dut, testbench)


# --- FrameBuffer ---------------------------------------------------------------------------------


def test_frame_buffer_feeds_the_last_frame_written():
    rng = random.Random(2)
    dut = FrameBuffer(N_BANDS)
    payloads = [pack_values(random_frame(rng)) for _ in range(4)]

    async def testbench(ctx):
        for payload in payloads:
            frame = unpack_values(payload)
            # Two payloads written, the first one never fed: only the last one counts.
            for values in (random_frame(rng), frame):
                for index in rng.sample(range(N_BANDS), N_BANDS):
                    ctx.set(dut.values.payload.index, index)
                    ctx.set(dut.values.payload.value, values[index])
                    ctx.set(dut.values.valid, 1)
                    await ctx.tick()
                    ctx.set(dut.values.valid, 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = []
            while True:
                ready = rng.random() < 0.6
                ctx.set(dut.feat.ready, ready)
                valid, value, done = (ctx.get(dut.feat.valid), ctx.get(dut.feat.payload),
                                      ctx.get(dut.done))
                assert done == (valid and ready and len(got) == N_BANDS - 1)
                await ctx.tick()
                if valid and ready:
                    got.append(value)
                if done:
                    break
            ctx.set(dut.feat.ready, 0)
            assert got == frame
            await ctx.tick().repeat(3)
            assert not ctx.get(dut.feat.valid)

    run(dut, testbench)


# --- ReplyTransmitter ----------------------------------------------------------------------------


def test_transmitter_sends_what_the_host_encoders_build():
    rng = random.Random(3)
    dut = ReplyTransmitter(IDENT)
    replies = [
        (PacketType.IDENT_REPLY, 7, 0, 0, encode_ident_reply(7, IDENT)),
        (PacketType.RESET_ACK, 255, 0, 0, encode_reset_ack(255)),
        (PacketType.ERROR, 0, ErrorCode.TRUNCATED, 12, encode_error(0, ErrorCode.TRUNCATED, 12)),
    ]
    for seq in (0, 1, 128):
        scores = [rng.randint(-32768, 32767) for _ in range(N_OUT)]
        replies.append((PacketType.SCORES, seq, 0, 0, encode_scores(seq, scores)))
    replies.append(replies[0])
    sent = bytearray()
    ends = []

    async def scores_side(ctx):
        for *_, packet in replies:
            if packet[2] != PacketType.SCORES:
                continue
            for score in unpack_values(packet[6:-2]):
                for _ in range(rng.randrange(0, 12)):
                    await ctx.tick()
                ctx.set(dut.score.payload, score)
                ctx.set(dut.score.valid, 1)
                await wait_for(ctx, dut.score.ready)
                ctx.set(dut.score.valid, 0)

    async def host_side(ctx):
        async for _, _, valid, ready, byte, done in ctx.tick().sample(
                dut.tx.valid, dut.tx.ready, dut.tx.payload, dut.reply.ready):
            if valid and ready:
                sent.append(byte)
            if done:
                ends.append(len(sent))
            ctx.set(dut.tx.ready, rng.random() < 0.7)

    async def testbench(ctx):
        for ptype, seq, code, expected, _ in replies:
            for field, value in (("type", ptype), ("seq", seq), ("code", code),
                                 ("expected", expected)):
                ctx.set(dut.reply.payload[field], int(value))
            ctx.set(dut.reply.valid, 1)
            await wait_for(ctx, dut.reply.ready)
            ctx.set(dut.reply.valid, 0)
            for _ in range(rng.randrange(0, 4)):
                await ctx.tick()
        await ctx.tick().repeat(4)

    run(dut, testbench, scores_side, background=[host_side])
    packets = [packet for *_, packet in replies]
    assert bytes(sent) == b"".join(packets)
    # The reply is taken with its last byte.
    assert ends == [sum(map(len, packets[:k + 1])) for k in range(len(packets))]


def test_parser_truncates_after_exactly_timeout_idle_cycles():
    """The inter-byte timer to the cycle, for timeouts inside and across its low counter's
    wrap (8 bits): a byte that comes after ``timeout`` idle cycles still belongs to the
    packet, one after ``timeout + 1`` does not, and a packet that stops ends TRUNCATED
    ``timeout + 1`` cycles after its last byte was taken."""
    for timeout in (1, 2, 5, 255, 256, 300):
        for gap in (timeout, timeout + 1):
            dut = PacketParser(n_bands=N_BANDS, timeout=timeout)
            seen = {}

            async def bench(ctx, dut=dut, gap=gap, seen=seen, timeout=timeout):
                for byte in (*SYNC, PacketType.IDENT):
                    ctx.set(dut.rx.valid, 1)
                    ctx.set(dut.rx.payload, byte)
                    await ctx.tick()
                ctx.set(dut.rx.valid, 0)
                for _ in range(gap):
                    await ctx.tick()
                ctx.set(dut.rx.valid, 1)       # SEQ, late or just in time
                ctx.set(dut.rx.payload, 7)
                await ctx.tick()
                ctx.set(dut.rx.valid, 0)
                cycles = 0
                while not ctx.get(dut.packet.valid):
                    await ctx.tick()
                    cycles += 1
                    assert cycles <= 2 * timeout + 10, "the timer never ran out"
                seen["error"] = ctx.get(dut.packet.payload.error)
                seen["seq"] = ctx.get(dut.packet.payload.seq)
                seen["cycles"] = cycles

            run(dut, bench)
            if gap <= timeout:   # SEQ taken; the packet then stops after it
                assert (seen["error"], seen["seq"]) == (ErrorCode.TRUNCATED, 7), (timeout, gap)
                assert seen["cycles"] == timeout + 1, (timeout, gap, seen)
            else:                # truncated before SEQ: seq stays 0
                assert (seen["error"], seen["seq"]) == (ErrorCode.TRUNCATED, 0), (timeout, gap)
