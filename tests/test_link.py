# amaranth: UnusedElaboratable=no
"""UARTHostLink driven through its UART pins, compared byte for byte with DeviceModel.

Behind the link sits `LinearAccel`, a small component with the accelerator's interface whose
scores are easy to predict, so that every byte of the link can be checked on its own; the real
accelerator behind the link is tested in tests/test_boards_sim.py.
"""

import random

import pytest
from amaranth.hdl import Array, C, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from kwshw.hw.ports import AcceleratorSignature
from kwshw.link.gateware import HostLink, UARTHostLink
from kwshw.link.protocol import (
    OVERHEAD,
    Decoder,
    DeviceModel,
    ErrorCode,
    ErrorReply,
    Ident,
    Packet,
    PacketType,
    encode_ident,
    encode_push_frame,
    encode_reset,
    unpack_values,
)
from sim.uartsim import UARTMonitor, uart_send

N_BANDS = 6
N_OUT = 3
DIVISOR = 4
TIMEOUT = 12 * DIVISOR  # inter-byte timeout, cycles
IDENT_ARGS = dict(model_hash=bytes.fromhex("0123456789abcdef"), bits=4, lanes=2, version=3)

RNG = random.Random(1234)
WEIGHTS = [[RNG.randint(-128, 127) for _ in range(N_BANDS)] for _ in range(N_OUT)]
BIAS = [RNG.randint(-1000, 1000) for _ in range(N_OUT)]


def wrap16(value):
    return ((value + 0x8000) & 0xFFFF) - 0x8000


class LinearAccel(wiring.Component):
    """Stand-in accelerator: score[j] = BIAS[j] + (j + 1) * frames + sum_i WEIGHTS[j][i] * x[i],
    wrapped to int16, where ``frames`` counts the frames since the last ``clear`` (a stand-in for
    the window of past frames). It accepts a value only every other cycle and waits a few cycles
    before the scores, to exercise the handshakes.
    """

    def __init__(self):
        super().__init__({
            **AcceleratorSignature(16).members,
            # Values taken from `feat`, ever; `clear` pulse cycles, ever.
            "values": Out(16),
            "clears": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Array(Signal(signed(32), name=f"acc{j}") for j in range(N_OUT))
        idx = Signal(range(N_BANDS))
        out = Signal(range(N_OUT))
        frames = Signal(8)
        stall = Signal()
        wait = Signal(range(8))
        m.d.sync += stall.eq(~stall)

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.feat.ready.eq(~stall)
                with m.If(self.feat.valid & self.feat.ready):
                    for j in range(N_OUT):
                        weight = Array(C(w, signed(8)) for w in WEIGHTS[j])[idx]
                        m.d.sync += acc[j].eq(acc[j] + weight * self.feat.payload)
                    m.d.sync += [idx.eq(idx + 1), self.values.eq(self.values + 1)]
                    with m.If(idx == N_BANDS - 1):
                        m.d.sync += [idx.eq(0), wait.eq(5)]
                        m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [
                    self.score.valid.eq(1),
                    self.score.payload.eq(acc[out] + Array(C(b, signed(16)) for b in BIAS)[out]
                                          + (out + 1) * frames),
                ]
                with m.If(self.score.ready):
                    m.d.sync += out.eq(out + 1)
                    with m.If(out == N_OUT - 1):
                        m.d.sync += [out.eq(0), frames.eq(frames + 1)]
                        m.d.sync += [a.eq(0) for a in acc]
                        m.next = "LOAD"

        with m.If(self.clear):
            m.d.sync += [frames.eq(0), self.clears.eq(self.clears + 1)]
        return m


class ReferenceAccel:
    """What LinearAccel computes, for DeviceModel."""

    def __init__(self):
        self.frames = 0

    def infer(self, values):
        scores = [wrap16(BIAS[j] + (j + 1) * self.frames
                         + sum(w * x for w, x in zip(WEIGHTS[j], values, strict=True)))
                  for j in range(N_OUT)]
        self.frames = (self.frames + 1) & 0xFF
        return scores

    def clear(self):
        self.frames = 0


class Host:
    """The host end, in simulation: sends bytes through the link's `rx` pin, and checks that the
    bytes coming out of `tx` are exactly those DeviceModel sends for the same input."""

    def __init__(self, ctx, dut, accel, monitor):
        self.ctx, self.dut, self.accel, self.monitor = ctx, dut, accel, monitor
        self.reference = ReferenceAccel()
        self.model = DeviceModel(dut.ident, self.reference.infer, self.reference.clear)

    async def exchange(self, data: bytes) -> list[Packet]:
        """Send `data`, then wait until the line has been idle long enough for every reply."""
        await uart_send(self.ctx, self.dut.rx, data, DIVISOR)
        # After our last byte the device replies at once, or once its inter-byte timer expires.
        expected = self.model.receive(data) + self.model.idle()
        budget = TIMEOUT + 64 + 11 * DIVISOR * (len(expected) + 1)
        got = await self.monitor.recv(self.ctx, len(expected), timeout=budget)
        assert got == expected, f"device sent {got.hex()}, model {expected.hex()}"
        assert await self.monitor.quiet(self.ctx, TIMEOUT + 20 * DIVISOR), "unexpected bytes"
        assert self.monitor.framing_errors == 0
        packets = Decoder().feed(got)
        assert all(isinstance(p, Packet) for p in packets)
        return packets

    async def command(self, data: bytes) -> Packet:
        packets = await self.exchange(data)
        assert len(packets) == 1
        return packets[0]

    async def push_frame(self, seq: int, values) -> list[int]:
        reply = await self.command(encode_push_frame(seq, values))
        assert (reply.type, reply.seq) == (PacketType.SCORES, seq), reply
        return unpack_values(reply.payload)

    async def expect_error(self, data: bytes, code: ErrorCode) -> ErrorReply:
        reply = await self.command(data)
        assert reply.type == PacketType.ERROR, reply
        error = ErrorReply.from_bytes(reply.payload)
        assert error.code == code, error
        return error

    @property
    def values_taken(self) -> int:
        return self.ctx.get(self.accel.values)


def random_frame(rng):
    return [rng.choice([-32768, 32767, 0, -1, rng.randint(-32768, 32767)])
            for _ in range(N_BANDS)]


def run_link(scenario):
    """Run `scenario(host)` against a UARTHostLink with a LinearAccel behind it."""
    m = Module()
    m.submodules.link = dut = UARTHostLink(divisor=DIVISOR, n_bands=N_BANDS, n_out=N_OUT,
                                           timeout=TIMEOUT, **IDENT_ARGS)
    m.submodules.accel = accel = LinearAccel()
    wiring.connect(m, dut.feat, accel.feat)
    wiring.connect(m, accel.score, dut.score)
    m.d.comb += accel.clear.eq(dut.clear)
    monitor = UARTMonitor(dut.tx, DIVISOR)

    async def testbench(ctx):
        await ctx.tick().repeat(4)
        await scenario(Host(ctx, dut, accel, monitor))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(monitor.testbench, background=True)
    sim.add_testbench(testbench)
    sim.run()


def test_ident():
    async def scenario(host):
        reply = await host.command(encode_ident(7))
        assert (reply.type, reply.seq) == (PacketType.IDENT_REPLY, 7)
        assert Ident.from_bytes(reply.payload) == Ident(n_bands=N_BANDS, n_out=N_OUT,
                                                        **IDENT_ARGS)

    run_link(scenario)


def test_frames():
    rng = random.Random(1)

    async def scenario(host):
        reference = ReferenceAccel()
        for seq in range(250, 256 + 3):  # across the wrap of the sequence number
            frame = random_frame(rng)
            assert await host.push_frame(seq & 0xFF, frame) == reference.infer(frame)
        # SYNC inside the payload is just data.
        frame = [0x5AA5] * N_BANDS
        assert await host.push_frame(3, frame) == reference.infer(frame)
        assert host.values_taken == 10 * N_BANDS

    run_link(scenario)


def test_corrupted_frame():
    rng = random.Random(2)

    async def scenario(host):
        reference = ReferenceAccel()
        frame = random_frame(rng)
        assert await host.push_frame(0, frame) == reference.infer(frame)
        taken = host.values_taken
        good = encode_push_frame(1, random_frame(rng))
        # A flipped bit in the payload, in the CRC, in the type: never scored.
        for position in (6 + 5, len(good) - 1, 2):
            bad = bytearray(good)
            bad[position] ^= 0x10
            error = await host.expect_error(bytes(bad), ErrorCode.BAD_CRC)
            assert (error.seq, error.expected) == (1, 1)
            assert host.values_taken == taken
        # A shortened LEN: the rest of the packet is skipped, not parsed.
        bad = bytearray(good)
        bad[4] = 2
        await host.expect_error(bytes(bad), ErrorCode.BAD_CRC)
        # A LEN too large for any command: in its high byte, and one byte over in its low.
        bad[4], bad[5] = 0x00, 0x01
        await host.expect_error(bytes(bad), ErrorCode.BAD_LENGTH)
        bad[4], bad[5] = 2 * N_BANDS + 1, 0x00
        await host.expect_error(bytes(bad), ErrorCode.BAD_LENGTH)
        assert host.values_taken == taken
        # The next good frame, with the same seq, goes through.
        frame = random_frame(rng)
        assert await host.push_frame(1, frame) == reference.infer(frame)
        assert host.values_taken == taken + N_BANDS

    run_link(scenario)


def test_seq_gap():
    rng = random.Random(3)

    async def scenario(host):
        await host.push_frame(10, random_frame(rng))
        await host.push_frame(11, random_frame(rng))
        taken = host.values_taken
        # Frame 12 is lost on the way.
        error = await host.expect_error(encode_push_frame(13, random_frame(rng)), ErrorCode.SEQ_GAP)
        assert (error.seq, error.expected) == (13, 14)
        assert host.values_taken == taken
        await host.push_frame(14, random_frame(rng))
        # A repeated frame is a gap too.
        error = await host.expect_error(encode_push_frame(14, random_frame(rng)), ErrorCode.SEQ_GAP)
        assert (error.seq, error.expected) == (14, 15)
        await host.push_frame(15, random_frame(rng))

    run_link(scenario)


def test_reset():
    rng = random.Random(4)

    async def scenario(host):
        frames = [random_frame(rng) for _ in range(3)]
        first = [await host.push_frame(seq, frame) for seq, frame in enumerate(frames)]
        assert host.ctx.get(host.accel.clears) == 0
        reply = await host.command(encode_reset(40))
        assert (reply.type, reply.seq, reply.payload) == (PacketType.RESET_ACK, 40, b"")
        assert host.ctx.get(host.accel.clears) == 1  # exactly one cycle
        # The window was cleared, so the same frames score the same again; RESET also set the
        # sequence numbering.
        again = [await host.push_frame(41 + seq, frame) for seq, frame in enumerate(frames)]
        assert again == first

    run_link(scenario)


def test_malformed():
    async def scenario(host):
        frame = list(range(N_BANDS))
        good = encode_push_frame(0, frame)
        # Cut short: reported once the line has been idle for the timeout.
        error = await host.expect_error(good[:9], ErrorCode.TRUNCATED)
        assert error.seq == 0
        await host.expect_error(good[:3], ErrorCode.TRUNCATED)
        # Well formed, but not acceptable.
        await host.expect_error(Packet(PacketType.IDENT, 1, b"\0").encode(), ErrorCode.BAD_LENGTH)
        await host.expect_error(Packet(PacketType.PUSH_FRAME, 1, b"\0" * 4).encode(),
                                ErrorCode.BAD_LENGTH)
        await host.expect_error(Packet(PacketType.SCORES, 1, b"").encode(),
                                ErrorCode.UNKNOWN_TYPE)
        await host.expect_error(Packet(0x42, 1, b"\1\2").encode(), ErrorCode.UNKNOWN_TYPE)
        # Garbage, including sync bytes, between packets is skipped silently.
        assert await host.exchange(b"\x00\xa5\xa5\x13\xff") == []
        await host.push_frame(1, frame)

    run_link(scenario)


def test_random_traffic():
    # Differential test: random commands, some corrupted, truncated or dropped, against the model.
    rng = random.Random(5)

    async def scenario(host):
        seq = 0
        for _ in range(24):
            kind = rng.choice(["frame"] * 5 + ["ident", "reset", "corrupt", "truncate", "drop"])
            if kind == "ident":
                data = encode_ident(seq)
            elif kind == "reset":
                data = encode_reset(seq)
            else:
                data = encode_push_frame(seq, random_frame(rng))
            if kind == "corrupt":
                data = bytearray(data)
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif kind == "truncate":
                data = data[:rng.randrange(1, len(data))]
            elif kind == "drop":
                data = b""
            packets = await host.exchange(bytes(data))
            # Follow the device like kwshw.link.protocol.Link does.
            seq = (seq + 1) & 0xFF
            for packet in packets:
                if packet.type == PacketType.ERROR:
                    seq = ErrorReply.from_bytes(packet.payload).expected

    run_link(scenario)


def test_parameters():
    link = HostLink(n_bands=40, n_out=12, timeout=100, **IDENT_ARGS)
    assert link.ident.n_bands == 40 and link.ident.n_out == 12
    with pytest.raises(ValueError):
        HostLink(n_bands=40, n_out=12, timeout=0, **IDENT_ARGS)
    with pytest.raises(ValueError):
        HostLink(n_bands=40, n_out=12, timeout=100, **{**IDENT_ARGS, "model_hash": b"short"})
    uart_link = UARTHostLink(divisor=104, n_bands=40, n_out=12, **IDENT_ARGS)
    assert uart_link.timeout == 1024 * 104
    assert OVERHEAD + 2 * 40 == 88  # bytes on the wire per frame


def test_one_crc_processor_serves_receiver_and_transmitter():
    """The parser checks a packet's CRC before its reply starts, so HostLink gives both ends
    one processor (the tests above check every byte and CRC through it)."""
    from amaranth.back import rtlil

    link = HostLink(n_bands=N_BANDS, n_out=N_OUT, timeout=TIMEOUT, **IDENT_ARGS)
    top = Module()
    top.submodules.link = link
    outer = Signal.like(link.tx.payload)
    top.d.comb += outer.eq(link.tx.payload)
    il = rtlil.convert(top, name="top", ports=[outer])
    processors = [line for line in il.splitlines()
                  if line.startswith("module ") and "crc" in line.split(".")[-1]]
    assert len(processors) == 1, processors
