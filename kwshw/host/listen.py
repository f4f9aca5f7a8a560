"""Listening to a standalone board: the detections it sends on its own.

A board built with a microphone (``kwshw build --mic pdm|i2s``, :mod:`boards.standalone`)
decides detections on the chip (:mod:`kwshw.detect_int`) and sends each one as a DETECTION
packet (:class:`kwshw.link.protocol.DetectionEvent`) over its UART; nothing is sent to it.
:func:`listen` decodes that byte stream: packets whose CRC checks become :class:`Heard`
records (class label, time, smoothed posterior), everything else (line noise, a packet cut
short or corrupted) is counted and reported, never fatal, and never turned into a detection.

The CLI's ``kwshw run --port PORT --model M --listen`` calls :func:`listen_port`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..detect_int import IntDetectRule
from ..link.protocol import (
    DETECTION_SIZE,
    DecodeError,
    DecodeErrorKind,
    Decoder,
    PacketType,
    decode_detection,
)
from ..modelfile import Model

__all__ = ["Heard", "ListenResult", "Listener", "listen", "listen_port"]


@dataclass(frozen=True)
class Heard:
    """One detection the board sent: its frame counter (frames since the board's start,
    modulo the counter's width), the time that frame ends in seconds, the class and the
    smoothed posterior (``sum / (k 2^PF)``, :mod:`kwshw.detect_int`)."""

    frame: int
    time_s: float
    label: str
    posterior: float

    def __str__(self) -> str:
        return (f"{self.time_s:9.2f} s  frame {self.frame:6d}  {self.label:<12s} "
                f"smoothed posterior {self.posterior:.3f}")


@dataclass
class ListenResult:
    """What :func:`listen` heard: the detections in order and the problems on the line."""

    heard: list[Heard] = field(default_factory=list)
    #: Decoder errors by kind (:class:`kwshw.link.protocol.DecodeErrorKind` value, or
    #: ``"unknown class"``).
    errors: Counter = field(default_factory=Counter)
    #: Valid packets of another type (a host-fed board answering someone else, say).
    other_packets: int = 0

    def summary(self) -> str:
        bad = ", ".join(f"{n} {kind}" for kind, n in sorted(self.errors.items())) or "none"
        return (f"{len(self.heard)} detection(s); line errors: {bad}; "
                f"other packets: {self.other_packets}")


class Listener:
    """Bytes in, :class:`Heard` out, for one model's board.

    Parameters
    ----------
    model : Model
        The model the board was built with: its labels, its hop and the posterior scale of
        its default detection rule (:meth:`kwshw.detect_int.IntDetectRule.from_model`, as
        the standalone core builds it).
    """

    def __init__(self, model: Model) -> None:
        self._labels = list(model.labels)
        self._hop_s = model.features.hop_length / model.features.sample_rate
        rule = IntDetectRule.from_model(model)
        self._scale = 1.0 / (rule.k * 2.0**rule.post_frac)
        # A DETECTION payload is the longest packet a standalone board sends.
        self._decoder = Decoder(max_payload=DETECTION_SIZE)
        self.result = ListenResult()

    def feed(self, data: bytes) -> list[Heard]:
        """Decode ``data`` (any piece of the stream); returns the detections completed."""
        new = []
        for item in self._decoder.feed(data):
            if isinstance(item, DecodeError):
                self.result.errors[item.kind.value] += 1
            elif item.type != PacketType.DETECTION:
                self.result.other_packets += 1
            else:
                heard = self._heard(item)
                if heard is not None:
                    new.append(heard)
        self.result.heard += new
        return new

    def _heard(self, packet) -> Heard | None:
        try:
            event = decode_detection(packet)
        except ValueError:
            self.result.errors[DecodeErrorKind.BAD_LENGTH.value] += 1
            return None
        if event.cls >= len(self._labels):
            self.result.errors["unknown class"] += 1
            return None
        return Heard(frame=event.frame, time_s=(event.frame + 1) * self._hop_s,
                     label=self._labels[event.cls], posterior=event.sum * self._scale)


def listen(read: Callable[[], bytes], model: Model, *, seconds: float | None = None,
           on_heard: Callable[[Heard], None] | None = None,
           clock: Callable[[], float] = time.monotonic) -> ListenResult:
    """Decode what a standalone board sends until ``read`` returns ``None``, ``seconds``
    have passed (``read`` should return within a short timeout, with ``b""`` while the line
    is quiet) or Ctrl-C; returns all that was heard.

    Parameters
    ----------
    read : callable
        Returns the next bytes (possibly none while the line is quiet); ``None`` ends.
    model : Model
        The model the board was built with.
    seconds : float, optional
        Stop after this long; ``None`` listens until ``read`` returns ``None``.
    on_heard : callable, optional
        Called with each detection as it arrives (the CLI prints it).
    clock : callable
        Monotonic seconds (replaceable in tests).
    """
    listener = Listener(model)
    start = clock()
    try:
        while seconds is None or clock() - start < seconds:
            data = read()
            if data is None:
                break
            for heard in listener.feed(data):
                if on_heard is not None:
                    on_heard(heard)
    except KeyboardInterrupt:
        pass
    return listener.result


def listen_port(port: str, model: Model, *, baud: int, seconds: float | None = None,
                on_heard: Callable[[Heard], None] | None = print) -> ListenResult:
    """:func:`listen` on a serial port (needs pyserial); Ctrl-C ends it."""
    import serial  # only the hardware path needs pyserial

    with serial.Serial(port, baud, timeout=0.05) as line:
        return listen(lambda: line.read(256), model, seconds=seconds, on_heard=on_heard)
