"""The standalone keyword spotter: microphone in, keyword out, no PC in the loop.

::

    mic pins ──> PDMReceiver ──pcm──> FrontEnd ──feat──> Accelerator ──score──> KeywordDetector
                 or I2SReceiver       (16 kHz int16)     (model)                  │ led ──> LED
                                                                                  │ events
    tx <── UARTTx <── EventTransmitter (DETECTION packets) <──────────────────────┘

Every stage is the bit-exact gateware of a golden model (:mod:`kwshw.microphone`,
:mod:`kwshw.features_int`, :mod:`kwshw.golden`, :mod:`kwshw.detect_int`), so the detections
the board reports over the UART are the ones the golden chain computes from the same
microphone bits. The UART only reports (:class:`kwshw.link.protocol.DetectionEvent`); nothing
comes back from the host.

The microphone sets the clock: PCM must come out at exactly 16 kHz, so the design clock must
be a whole multiple that the receiver can divide (:func:`mic_config`; 12, 20, 24 or 48 MHz
for PDM, multiples of 1.024 MHz for I2S). :func:`check_realtime` then checks that each
stage keeps up with one hop of audio.

As in :class:`boards.top.KWSCore`, SPRAM builds (iCE40 UltraPlus) first copy the weights
from the SPI flash (:func:`boards.flashboot.weight_boot`); the feature frames computed before
that are dropped, so that the front end never holds back the microphone.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from kwshw.detect_int import IntDetectRule
from kwshw.features_int import IntFrontEnd
from kwshw.hw.accelerator import Accelerator
from kwshw.hw.detection import KeywordDetector, event_layout, frame_cycles
from kwshw.hw.frontend import FrontEnd
from kwshw.hw.memories import SPRAM_BLOCKS
from kwshw.hw.microphone import I2SReceiver, PDMReceiver
from kwshw.hw.ports import AcceleratorSignature
from kwshw.link.gateware import EventTransmitter
from kwshw.link.uart import UARTTx, uart_divisor
from kwshw.microphone import PCM_RATE, I2SConfig, PDMConfig, i2s_config, pdm_config

from .errors import BuildError
from .flashboot import boot_members, weight_boot

__all__ = ["MIC_PINS", "mic_config", "mic_signature", "check_realtime", "hop_cycles",
           "standalone_front_end", "default_accelerator", "standalone_accelerator",
           "StandaloneCore"]

#: The microphone's pins per input kind, in the order of :meth:`boards.table.MicPins.names`:
#: clocks driven by the FPGA, then the data it reads.
MIC_PINS = {"pdm": (("clk", Out(1)), ("data", In(1))),
            "i2s": (("sck", Out(1)), ("ws", Out(1)), ("sd", In(1)))}
#: Width of the frame counter in the detection events (a u32 on the wire).
FRAME_WIDTH = 16


def mic_signature(mic: str) -> wiring.Signature:
    """The core's ``mic`` port for ``"pdm"`` or ``"i2s"``: clocks out, data in."""
    if mic not in MIC_PINS:
        raise ValueError(f"mic must be 'pdm' or 'i2s', not {mic!r}")
    return wiring.Signature(dict(MIC_PINS[mic]))


def mic_config(mic: str, clk_hz: float, *, where: str = "") -> PDMConfig | I2SConfig:
    """The receiver configuration of microphone ``mic`` at design clock ``clk_hz``.

    Raises
    ------
    BuildError
        When that clock cannot give exactly 16 kHz PCM, with the numbers (``where``, e.g.
        the board's name, starts the message).
    """
    prefix = f"{where}: " if where else ""
    if clk_hz != int(clk_hz):
        raise BuildError(f"{prefix}the {mic.upper()} microphone needs a whole number of Hz "
                         f"to make exactly {PCM_RATE} Hz; the design clock is {clk_hz:.6f} Hz")
    try:
        return (pdm_config if mic == "pdm" else i2s_config)(int(clk_hz))
    except ValueError as e:
        raise BuildError(f"{prefix}{mic.upper()} microphone: {e}") from None


def check_realtime(front_end: FrontEnd, accelerator, rule: IntDetectRule, clk_hz: float,
                   *, where: str = "") -> dict:
    """Cycles each stage needs per hop against the cycles of one hop of audio.

    Returns the budget (``hop_cycles``, and per stage its cycles); raises
    :class:`BuildError` with the numbers when the front end, the accelerator or the detector
    needs more than a hop (the microphone does not wait: samples would be dropped).
    """
    hop = front_end.fe.cfg.hop_length
    budget = {"hop_cycles": hop_cycles(front_end.fe, clk_hz),
              "front_end": front_end.cycles_per_hop(),
              "accelerator": getattr(accelerator, "cycles_per_frame", 0),
              "detector": frame_cycles(rule)}
    slow = {k: v for k, v in budget.items() if k != "hop_cycles" and v > budget["hop_cycles"]}
    if slow:
        prefix = f"{where}: " if where else ""
        raise BuildError(
            f"{prefix}not real time at {clk_hz / 1e6:g} MHz: one hop of {hop} samples is "
            f"{budget['hop_cycles']:,} cycles, but "
            + ", ".join(f"the {k.replace('_', ' ')} needs {v:,}" for k, v in slow.items())
            + ". Use a faster clock, more lanes or a smaller network.")
    return budget


def hop_cycles(fe: IntFrontEnd, clk_hz: float) -> int:
    """Cycles of ``clk_hz`` in one hop of 16 kHz audio: what each stage may take per frame."""
    return int(fe.cfg.hop_length * clk_hz / PCM_RATE)


def standalone_front_end(fe: IntFrontEnd, spare_spram: int, clk_hz: float) -> FrontEnd:
    """The standalone design's front end: its FFT work memory in one of the ``spare_spram``
    SPRAM blocks the accelerator leaves (``"spram-serial"``: eight block RAMs fewer for the
    default configuration) if it stays real time at ``clk_hz`` that way, else in block RAM.
    (Four spare blocks, ``"spram"``, never occur beside an accelerator, whose weights take
    at least one.)"""
    if spare_spram >= 1:
        serial = FrontEnd(fe, "spram-serial")
        if serial.cycles_per_hop() <= hop_cycles(fe, clk_hz):
            return serial
    return FrontEnd(fe)


def default_accelerator(model, lanes: int, memory: str, *,
                        dsp_strips: bool = False) -> Accelerator:
    """The accelerator a board top builds unless told otherwise."""
    return Accelerator(model, lanes, memory=memory, dsp_strips=dsp_strips)


def standalone_accelerator(model, lanes: int, memory: str) -> Accelerator:
    """The standalone design's accelerator: the front end and the PDM receiver take a DSP
    each, so on iCE40 its scaler builds its products with one DSP apiece
    (``dsp_strips``; the reference CNN's 7 DSPs become 4, where the ninth multiplier was
    built from logic)."""
    return default_accelerator(model, lanes, memory, dsp_strips=True)


class StandaloneCore(wiring.Component):
    """Board-independent standalone top: microphone, front end, accelerator, detection, LED,
    detection reports over a UART transmitter and (SPRAM) weight boot.

    Parameters
    ----------
    model : kwshw.modelfile.Model
        The network; its feature configuration, normalization and labels set the front end
        and the detection rule.
    lanes : int
        MAC lanes.
    clk_hz : float
        Frequency of the ``sync`` domain.
    baud : int
        Baud rate of the detection reports.
    mic : str
        ``"pdm"`` or ``"i2s"``.
    mic_cfg : PDMConfig or I2SConfig, optional
        The receiver's configuration; :func:`mic_config` of ``clk_hz`` by default (a test
        passes a small one).
    memory : str
        ``"bram"`` or ``"spram"`` (weights from the SPI flash at ``image_offset``; the front
        end's FFT work memory then goes into an SPRAM block the accelerator leaves, if any:
        :func:`standalone_front_end`).
    rule : IntDetectRule, optional
        The detection rule; ``IntDetectRule.from_model(model)`` by default.
    hold_ms : float
        How long the LED stays lit after a detection.
    sample_edge, channel : str
        The PDM microphone's data edge / the I2S microphone's slot (its L/R pin).
    realtime : bool
        Refuse (:class:`BuildError`) a design whose stages do not keep up with the audio.

    Attributes
    ----------
    mic : :func:`mic_signature`
        The microphone's pins.
    tx : Out(1)
        UART to the host: one DETECTION packet per detection (idle high).
    led : Out(1)
        Lit for ``hold_ms`` after a detection.
    overrun : Out(1)
        Sticky: the microphone receiver dropped a sample (the front end held it back).
    error_led, ready, boot_error, flash :
        As for :class:`boards.top.KWSCore`.
    """

    def __init__(self, model, *, lanes: int, clk_hz: float, baud: int, mic: str = "pdm",
                 mic_cfg: PDMConfig | I2SConfig | None = None, memory: str = "bram",
                 image_offset: int = 1 << 20, rule: IntDetectRule | None = None,
                 hold_ms: float = 250.0, flash_half_period: int = 1,
                 sample_edge: str = "falling", channel: str = "left",
                 accelerator: Callable | None = None, realtime: bool = True):
        if memory not in ("bram", "spram"):
            raise ValueError(f"memory must be 'bram' or 'spram', not {memory!r}")
        self.model, self.lanes, self.memory, self.mic_kind = model, lanes, memory, mic
        self.clk_hz, self.baud = clk_hz, baud
        self.divisor = uart_divisor(clk_hz, baud)
        self.image_offset, self.flash_half_period = image_offset, flash_half_period
        self.mic_cfg = mic_cfg or mic_config(mic, clk_hz)
        #: The stages, built here so that their static facts are known before elaboration.
        self.receiver = (PDMReceiver(self.mic_cfg, sample_edge=sample_edge) if mic == "pdm"
                         else I2SReceiver(self.mic_cfg, channel=channel))
        self.accelerator = (accelerator or standalone_accelerator)(model, lanes, memory)
        if not AcceleratorSignature().is_provided_by(self.accelerator):
            raise TypeError(f"the accelerator {self.accelerator!r} does not have the ports of "
                            f"{AcceleratorSignature()!r}")
        # An SPRAM build's front end keeps its FFT work memory in a block the accelerator
        # leaves (an accelerator that does not say what it uses leaves none).
        spare = (SPRAM_BLOCKS - getattr(self.accelerator, "spram_blocks_used", SPRAM_BLOCKS)
                 if memory == "spram" else 0)
        self.front_end = standalone_front_end(IntFrontEnd.from_model(model), spare, clk_hz)
        self.rule = rule or IntDetectRule.from_model(model)
        self.detector = KeywordDetector(self.rule, hold=max(int(hold_ms * 1e-3 * clk_hz), 1),
                                        frame_width=FRAME_WIDTH)
        #: Cycles per hop of each stage (:func:`check_realtime`).
        self.budget = (check_realtime(self.front_end, self.accelerator, self.rule, clk_hz)
                       if realtime else None)
        super().__init__({"mic": Out(mic_signature(mic)), "tx": Out(1, init=1),
                          "led": Out(1), "overrun": Out(1), **boot_members(memory)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mic = rx = self.receiver
        m.submodules.front_end = fe = self.front_end
        m.submodules.accel = accel = self.accelerator
        m.submodules.detector = det = self.detector
        m.submodules.events = events = EventTransmitter(event_layout(self.rule, FRAME_WIDTH))
        m.submodules.uart_tx = uart = UARTTx(self.divisor)

        for name, _ in MIC_PINS[self.mic_kind]:
            pin, port = getattr(self.mic, name), getattr(rx, name)
            m.d.comb += (port.eq(pin) if name in ("data", "sd") else pin.eq(port))
        wiring.connect(m, rx.pcm, fe.pcm)
        ready = Signal()
        # Until the weights are in place the frames are consumed and dropped: holding them
        # back would stall the front end and make the microphone receiver drop samples.
        m.d.comb += [
            accel.feat.payload.eq(fe.feat.payload),
            accel.feat.valid.eq(fe.feat.valid & ready),
            fe.feat.ready.eq(accel.feat.ready | ~ready),
        ]
        wiring.connect(m, accel.score, det.scores)
        wiring.connect(m, det.events, events.events)
        wiring.connect(m, events.tx, uart.data)
        m.d.comb += [self.tx.eq(uart.tx), self.led.eq(det.led), self.overrun.eq(rx.overrun),
                     self.ready.eq(ready)]

        if self.memory == "spram":
            done, error = weight_boot(
                m, self.model, lanes=self.lanes, clk_hz=self.clk_hz, accel=accel,
                flash=self.flash, image_offset=self.image_offset,
                half_period=self.flash_half_period)
            m.d.comb += [ready.eq(done), self.boot_error.eq(error), self.error_led.eq(error)]
        else:
            m.d.comb += ready.eq(1)
        return m
