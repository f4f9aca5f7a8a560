"""Boot path of SPRAM builds: the weights image in the configuration SPI flash, copied into the
accelerator's weight memory after configuration.

iCE40 UltraPlus SPRAM cannot be initialised by the bitstream, so an SPRAM build ships two
files: the bitstream (flash address 0) and a *weights image* written to the same flash at
``Board.image_offset`` (1 MiB). After configuration :class:`FlashWeightLoader` wakes the flash,
reads the image with the plain READ command (0x03, SPI mode 0), checks its header against the
model the bitstream was built for, streams the packed weight words into the accelerator's
``load`` port and checks the image's CRC. Only then are feature frames let through to the
accelerator; a missing, foreign or corrupted image leaves ``error`` set (the board lights its
error LED) and no frame is ever scored with wrong weights.

Image format (all multi-byte integers little-endian except the CRC)::

    offset  size        field
    0       4           magic b"KWSW"
    4       1           image format version (2)
    5       1           bytes per word, ceil(load width / 8)
    6       4           number of words (u32)
    10      8           model content hash, first 8 bytes (as IDENT reports it)
    18      n * bpw     the stored words of kwshw.hw.memories.load_words, in address order
    18+n*bpw 2          CRC-16/CCITT-FALSE of the words, most significant byte first

The words are exactly the ``load`` stream of :class:`kwshw.hw.memories.WeightMemory`. Version 2
stores narrow weight words (``lanes * bits <= 8``) several to a word, as the SPRAM holds them;
a version-1 image (one weight word per word) is refused as any foreign image is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Signal, Value, unsigned
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

from kwshw.hw.memories import load_words
from kwshw.link.gateware import CRC16
from kwshw.link.protocol import crc16

__all__ = ["IMAGE_MAGIC", "IMAGE_VERSION", "HEADER_SIZE", "image_header", "weights_image",
           "weight_boot", "parse_image", "SPIFlashSignature", "FlashWeightLoader", "FlashModel"]

IMAGE_MAGIC = b"KWSW"
IMAGE_VERSION = 2
HEADER_SIZE = 18

CMD_READ = 0x03
CMD_WAKE = 0xAB  # release from deep power-down


def image_header(n_words: int, width: int, model_hash: bytes) -> bytes:
    """The 18-byte header of a weights image."""
    bpw = -(-width // 8)
    return IMAGE_MAGIC + struct.pack("<BBI", IMAGE_VERSION, bpw, n_words) + bytes(model_hash[:8])


def weights_image(words: Sequence[int], width: int, model_hash: bytes) -> bytes:
    """A weights image of the packed ``words`` (``width`` bits each) for ``model_hash``."""
    bpw = -(-width // 8)
    body = b"".join(int(w).to_bytes(bpw, "little") for w in words)
    return image_header(len(words), width, model_hash) + body + crc16(body).to_bytes(2, "big")


def model_image(model, lanes: int) -> bytes:
    """The weights image of ``model`` for an accelerator with ``lanes`` lanes."""
    words, width = load_words(model.plans(), lanes)
    return weights_image(words, width, bytes.fromhex(model.sha256)[:8])


def parse_image(image: bytes) -> tuple[dict, list[int]]:
    """Check and decode an image; returns ``(header fields, words)`` or raises ValueError."""
    if len(image) < HEADER_SIZE + 2 or image[:4] != IMAGE_MAGIC:
        raise ValueError("not a kwshw weights image")
    version, bpw, n = struct.unpack("<BBI", image[4:10])
    if version != IMAGE_VERSION:
        raise ValueError(f"weights image version {version}, expected {IMAGE_VERSION}")
    end = HEADER_SIZE + n * bpw
    if len(image) < end + 2:
        raise ValueError(f"weights image truncated: {len(image)} bytes, expected {end + 2}")
    if crc16(image[HEADER_SIZE:end + 2]) != 0:
        raise ValueError("weights image CRC mismatch")
    words = [int.from_bytes(image[HEADER_SIZE + k * bpw:HEADER_SIZE + (k + 1) * bpw], "little")
             for k in range(n)]
    return {"version": version, "bytes_per_word": bpw, "words": n,
            "model_hash": image[10:18].hex()}, words


class SPIFlashSignature(wiring.Signature):
    """The four pins of an SPI flash, from the controller's side (``cs`` active high)."""

    def __init__(self):
        super().__init__({"cs": Out(1), "clk": Out(1), "copi": Out(1), "cipo": In(1)})


class _ByteEngine(NamedTuple):
    """The byte engine of :class:`FlashWeightLoader` as its image reader drives it."""

    start: Signal       # pulse: begin a byte with `tx_next`
    tx_next: Signal
    go: Signal          # pulse: the cycle after `start`, when the byte begins
    busy: Signal
    byte_done: Signal   # pulse: `rx` holds a complete byte
    rx: Signal


class FlashWeightLoader(wiring.Component):
    """Copies the weights image from SPI flash into the accelerator's weight memory.

    Parameters
    ----------
    n_words, width : int
        Number and width in bits of the packed weight words.
    model_hash : bytes
        The model's hash; the image must carry the same first 8 bytes.
    offset : int
        Flash address of the image.
    half_period : int
        System clock cycles per half SPI clock period (the SPI clock is
        ``f_sys / (2 * half_period)``; 1 gives 6 MHz at 12 MHz, well within every flash's
        READ limit).
    wake_cycles : int
        Cycles to wait after the wake-up command (tRES1 is 3 us on common flashes).

    Attributes
    ----------
    spi : SPIFlashSignature
        Flash pins.
    load : stream of unsigned(width), out
        The weight words in address order (to the accelerator's ``load`` port).
    done : Signal, out
        The whole image was copied and its CRC checked.
    error : Signal, out
        The header did not match (no image, or one for another model) or the CRC failed.
    """

    def __init__(self, *, n_words: int, width: int, model_hash: bytes, offset: int,
                 half_period: int = 1, wake_cycles: int = 64):
        if not 0 <= offset < (1 << 24):
            raise ValueError(f"flash offset {offset:#x} is out of the 24-bit address range")
        if half_period < 1:
            raise ValueError("half_period must be at least 1")
        self._n_words, self._width = n_words, width
        self._bpw = -(-width // 8)
        self._header = image_header(n_words, width, model_hash)
        self._offset, self._half, self._wake = offset, half_period, wake_cycles
        super().__init__({
            "spi": Out(SPIFlashSignature()),
            "load": Out(stream.Signature(unsigned(width))),
            "done": Out(1),
            "error": Out(1),
        })

    @property
    def image_size(self) -> int:
        return HEADER_SIZE + self._n_words * self._bpw + 2

    def elaborate(self, platform):
        m = Module()
        engine = self._byte_engine(m)

        # --- Image reader ----------------------------------------------------------------------
        command = [CMD_READ, (self._offset >> 16) & 0xFF, (self._offset >> 8) & 0xFF,
                   self._offset & 0xFF]
        header = Const(int.from_bytes(self._header, "little"), 8 * HEADER_SIZE)
        index = Signal(range(max(HEADER_SIZE, len(command), self._bpw) + 1))
        # A word's bytes but the last: that one is still in the byte engine's `rx` while the
        # word is pushed (the next byte only begins with the push).
        word = Signal(8 * (self._bpw - 1))
        words_left = Signal(range(self._n_words + 1))
        m.submodules.crc = checker = CRC16.create()
        m.d.comb += checker.data.eq(engine.rx)
        wait = Signal(range(self._wake + 1))

        m.d.comb += self.load.payload.eq(Cat(word, engine.rx)[:self._width])

        with m.FSM():
            self._open(m, engine, command, index, wait)
            self._read_header(m, engine, header, index, words_left)
            self._read_words(m, engine, checker, index, word, words_left)
            self._check_crc(m, engine, checker, index)
        return m

    def _byte_engine(self, m: Module) -> _ByteEngine:
        """Shifts one byte out on COPI and one in from CIPO, SPI mode 0.

        ``byte_done`` comes the cycle after the byte's last clock edge, and a byte begins the
        cycle after ``start``, from registered copies of ``start`` and ``tx_next``: the end of
        a byte, the image reader's decision (a header compare, the state machine) and the SPI
        clock's enable in one cycle were the iCEBreaker's longest path."""
        tx = Signal(8)
        rx = Signal(8)
        bit = Signal(range(9))          # bits left in the current byte
        timer = Signal(range(self._half + 1))
        start = Signal()                # pulse: begin a byte with `tx_next`
        tx_next = Signal(8)
        go, tx_go = Signal(), Signal(8)  # `start` and `tx_next`, registered
        busy = Signal()
        byte_done = Signal()            # pulse: `rx` holds a complete byte
        # tx_go is only read at `go`, so it may follow tx_next every cycle: `start` (the image
        # reader's decision) then enables no register but `go` (on the iCEBreaker DNN, start
        # into tx_go's eight enables was the longest path).
        m.d.sync += [go.eq(start), tx_go.eq(tx_next),
                     byte_done.eq((timer == 0) & self.spi.clk & (bit == 1) & ~go)]
        m.d.comb += [
            busy.eq((bit != 0) | go | byte_done),
            self.spi.copi.eq(tx[7]),
        ]
        with m.If(go):
            m.d.sync += [tx.eq(tx_go), bit.eq(8), timer.eq(self._half - 1),
                         self.spi.clk.eq(0)]
        with m.Elif(bit != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Elif(~self.spi.clk):
                # Rising edge: the flash samples COPI, we sample CIPO.
                m.d.sync += [self.spi.clk.eq(1), rx.eq(Cat(self.spi.cipo, rx[:7])),
                             timer.eq(self._half - 1)]
            with m.Else():
                # Falling edge: next bit (the flash shifts its next bit out now).
                m.d.sync += [self.spi.clk.eq(0), tx.eq(tx << 1), bit.eq(bit - 1),
                             timer.eq(self._half - 1)]
        return _ByteEngine(start=start, tx_next=tx_next, go=go, busy=busy, byte_done=byte_done,
                           rx=rx)

    def _open(self, m: Module, engine: _ByteEngine, command: list[int], index: Signal,
              wait: Signal) -> None:
        """States WAKE, WAIT and COMMAND: wake the flash, give it time, send READ and the
        address."""
        with m.State("WAKE"):
            m.d.comb += [self.spi.cs.eq(1), engine.start.eq(~engine.busy & (index == 0)),
                         engine.tx_next.eq(CMD_WAKE)]
            with m.If(engine.go):
                m.d.sync += index.eq(1)
            with m.If(engine.byte_done):
                m.d.sync += [index.eq(0), wait.eq(self._wake)]
                m.next = "WAIT"
        with m.State("WAIT"):
            m.d.sync += wait.eq(wait - 1)
            with m.If(wait == 0):
                m.next = "COMMAND"
        with m.State("COMMAND"):
            m.d.comb += self.spi.cs.eq(1)
            with m.Switch(index):
                for k, byte in enumerate(command):
                    with m.Case(k):
                        m.d.comb += engine.tx_next.eq(byte)
            m.d.comb += engine.start.eq(~engine.busy)
            # Counted when the byte begins (`go`), a cycle after `start`: `start` comes from
            # the engine's state through `busy`, and with the index's enable behind it that
            # chain was the iCEBreaker's longest path. `busy` stays high from `go` to the
            # byte's end, so no second byte starts before the count moved.
            with m.If(engine.go):
                m.d.sync += index.eq(index + 1)
            with m.If(engine.byte_done & (index == len(command))):
                m.d.sync += index.eq(0)
                m.d.comb += engine.start.eq(1)  # first header byte follows at once
                m.next = "HEADER"

    def _read_header(self, m: Module, engine: _ByteEngine, header: Const, index: Signal,
                     words_left: Signal) -> None:
        """State HEADER: every header byte must be the expected one."""
        # The byte expected next, registered (index changes a whole byte before the compare).
        expected = Signal(8)
        m.d.sync += expected.eq(header.word_select(index, 8))
        with m.State("HEADER"):
            m.d.comb += self.spi.cs.eq(1)
            with m.If(engine.byte_done):
                m.d.sync += index.eq(index + 1)
                with m.If(engine.rx != expected):
                    m.next = "ERROR"
                with m.Elif(index == HEADER_SIZE - 1):
                    m.d.sync += [index.eq(0), words_left.eq(self._n_words)]
                    m.d.comb += engine.start.eq(1)
                    m.next = "DATA"
                with m.Else():
                    m.d.comb += engine.start.eq(1)

    def _read_words(self, m: Module, engine: _ByteEngine, checker: crc.Processor, index: Signal,
                    word: Signal, words_left: Signal) -> None:
        """States DATA and PUSH: gather each word's bytes, then hand the word to ``load``."""
        with m.State("DATA"):
            m.d.comb += self.spi.cs.eq(1)
            with m.If(engine.byte_done):
                m.d.comb += checker.valid.eq(1)
                m.d.sync += index.eq(index + 1)
                if self._bpw > 1:
                    m.d.sync += word.word_select(index, 8).eq(engine.rx)
                with m.If(index == self._bpw - 1):
                    m.d.sync += index.eq(0)
                    m.next = "PUSH"
                with m.Else():
                    m.d.comb += engine.start.eq(1)
        with m.State("PUSH"):
            m.d.comb += [self.spi.cs.eq(1), self.load.valid.eq(1)]
            with m.If(self.load.ready):
                m.d.sync += words_left.eq(words_left - 1)
                m.d.comb += engine.start.eq(1)
                with m.If(words_left == 1):
                    m.next = "CRC"
                with m.Else():
                    m.next = "DATA"

    def _check_crc(self, m: Module, engine: _ByteEngine, checker: crc.Processor,
                   index: Signal) -> None:
        """States CRC, CHECK, DONE and ERROR: read the CRC and report the outcome."""
        with m.State("CRC"):
            m.d.comb += self.spi.cs.eq(1)
            with m.If(engine.byte_done):
                m.d.comb += checker.valid.eq(1)
                m.d.sync += index.eq(index + 1)
                with m.If(index == 0):
                    m.d.comb += engine.start.eq(1)
                with m.Else():
                    m.next = "CHECK"
        with m.State("CHECK"):
            with m.If(checker.match_detected):
                m.d.sync += self.done.eq(1)
                m.next = "DONE"
            with m.Else():
                m.next = "ERROR"
        with m.State("DONE"):
            pass
        with m.State("ERROR"):
            m.d.sync += self.error.eq(1)


class FlashModel:
    """Behavioural SPI flash for simulation: answers READ (0x03) from ``content``.

    Add ``testbench`` as a background testbench; it samples the pins once per ``sync`` cycle,
    which suffices for a controller clocked by the same domain.
    """

    def __init__(self, spi, content: bytes, *, size: int = 1 << 24, domain: str = "sync"):
        self.spi = spi
        self.content = content
        self.size = size
        self.domain = domain
        self.reads = 0
        self.woken = False

    def byte_at(self, addr: int) -> int:
        addr %= self.size
        return self.content[addr] if addr < len(self.content) else 0xFF

    async def testbench(self, ctx) -> None:
        spi = self.spi
        prev_clk, prev_cs = 0, 0
        cmd = bits = 0
        addr = None
        out_byte = out_bit = 0
        async for _ in ctx.tick(self.domain):
            cs, clk, copi = ctx.get(spi.cs), ctx.get(spi.clk), ctx.get(spi.copi)
            if not cs:
                if prev_cs and bits == 8 and (cmd & 0xFF) == CMD_WAKE:
                    self.woken = True
                cmd = bits = 0
                addr = None
            elif clk and not prev_clk:              # rising edge: shift in
                cmd = (cmd << 1) | copi
                bits += 1
                if bits == 32 and (cmd >> 24) == CMD_READ:
                    addr = cmd & 0xFFFFFF
                    self.reads += 1
                    out_byte, out_bit = self.byte_at(addr), 0
            elif not clk and prev_clk and addr is not None:  # falling edge: shift out
                ctx.set(spi.cipo, (out_byte >> (7 - out_bit)) & 1)
                out_bit += 1
                if out_bit == 8:
                    addr += 1
                    out_byte, out_bit = self.byte_at(addr), 0
            prev_clk, prev_cs = clk, cs


def boot_members(memory: str) -> dict:
    """The ports of a board core that :func:`weight_boot` drives or needs: ``ready`` (the
    weights are in place), ``boot_error`` and the ``error_led`` it lights, and, when the
    weights boot from the SPI flash (``memory == "spram"``), the ``flash`` port."""
    members = {"error_led": Out(1), "ready": Out(1), "boot_error": Out(1)}
    if memory == "spram":
        members["flash"] = Out(SPIFlashSignature())
    return members


def weight_boot(m: Module, model, *, lanes: int, clk_hz: float, accel, flash,
                image_offset: int, half_period: int) -> tuple[Value, Value]:
    """Add the boot path of an SPRAM build to ``m``: a :class:`FlashWeightLoader` that reads
    ``model``'s weights image from ``flash`` (an ``Out(SPIFlashSignature())`` port of the
    caller) into ``accel``'s ``load`` port.

    Returns ``(done, error)``: the weights are in place; the image is missing, foreign or
    corrupt. The board's error LED is ``error`` itself, lit steadily (a blinking one took a
    22-bit counter: 28 of the iCEBreaker's logic cells, by nextpnr's packer).
    """
    words, width = load_words(model.plans(), lanes)
    m.submodules.boot = boot = FlashWeightLoader(
        n_words=len(words), width=width,
        model_hash=bytes.fromhex(model.sha256)[:8], offset=image_offset,
        half_period=half_period, wake_cycles=max(int(30e-6 * clk_hz), 4))
    wiring.connect(m, boot.spi, wiring.flipped(flash))
    wiring.connect(m, boot.load, accel.load)
    return boot.done, boot.error
