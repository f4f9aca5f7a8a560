"""Board tops: the accelerator with its clock, reset, UART host link, detection LED and, for
SPRAM builds, the boot path that fills the weights from the SPI flash.

Two layers:

- :class:`KWSCore` is everything that is the same on every board, with plain pins (UART
  ``rx``/``tx``, ``led``, ``error_led`` and the flash's SPI pins). It runs in the ``sync``
  domain and is what the simulation tests drive through its UART pin.
- :class:`BoardTop` puts a :class:`KWSCore` on a board: it makes the ``sync`` domain (the board
  clock directly, or a PLL) and connects the core's pins to the resources the board's
  :class:`boards.table.Board` row names.

Detection rule (the LED)
------------------------
After each frame's scores have gone out to the host, the LED lights when the frame's *argmax*
class is a keyword (a label that does not start with ``_``, so not ``_unknown_``,
``_silence_`` or ``_other_``) **and** its score is at least ``threshold`` (a logit, converted to
the score format of the last layer). It stays lit for ``hold_ms`` after the last detecting
frame, so that a detection is visible. Ties go to the lowest class index, as ``numpy.argmax``.
The host runtime applies the finer rule (posterior smoothing over frames); the LED is the
board-only indication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth.hdl import ClockDomain, Const, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from kwshw.arith import ACT_MAX, ACT_MIN, ACT_WIDTH
from kwshw.evaluate import keyword_classes
from kwshw.hw.ports import AcceleratorSignature
from kwshw.link.gateware import UARTHostLink
from kwshw.link.uart import uart_divisor
from kwshw.modelfile import VERSION
from kwshw.quantize import round_half_up

from .errors import BuildError
from .flashboot import boot_members, weight_boot
from .pll import ecp5_pll, ecp5_pll_exact, ice40_pll
from .standalone import MIC_PINS, StandaloneCore, default_accelerator, mic_config
from .table import Board

__all__ = ["Detector", "KWSCore", "BoardTop", "keyword_mask", "score_threshold"]


def keyword_mask(labels: Sequence[str]) -> list[bool]:
    """Which classes are keywords (:func:`kwshw.evaluate.keyword_classes`)."""
    keywords = set(keyword_classes(labels))
    return [k in keywords for k in range(len(labels))]


def score_threshold(model, threshold: float) -> int:
    """A logit ``threshold`` in the integer score format of ``model``'s last layer: rounded
    half up, the contract's one rounding mode, and saturated to the activation range."""
    frac = model.layers[-1].out_frac
    value = int(round_half_up(threshold * 2.0**frac))
    return max(ACT_MIN, min(ACT_MAX, value))


class Detector(wiring.Component):
    """The LED's detection rule, applied to the score stream as it passes.

    Parameters
    ----------
    keywords : sequence of bool
        Per class: is it a keyword.
    threshold : int
        Least score (score format) of the argmax class for a detection.
    hold : int
        Cycles the LED stays lit after a detection.

    Attributes
    ----------
    valid : Signal, in
        A score is transferred this cycle (``valid & ready`` of the score stream).
    score : Signal, in
        That score; scores come in class order, ``len(keywords)`` per frame.
    clear : Signal, in
        Restart at class 0 (with the accelerator's ``clear``).
    detect : Signal, out
        One-cycle pulse three cycles after a frame's last score when the frame is a detection.
    cls : Signal, out
        The argmax class of the last complete frame.
    led : Signal, out
        Lit for ``hold`` cycles after a detection.
    """

    def __init__(self, keywords: Sequence[bool], threshold: int, hold: int):
        self._keywords = [bool(k) for k in keywords]
        self._threshold = int(threshold)
        self._hold = max(int(hold), 1)
        n = len(self._keywords)
        super().__init__({
            "valid": In(1),
            "score": In(signed(ACT_WIDTH)),
            "clear": In(1),
            "detect": Out(1),
            "cls": Out(range(max(n, 2))),
            "led": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self._keywords)
        index = Signal(range(max(n, 2)))
        best = Signal(signed(ACT_WIDTH))
        best_cls = Signal(range(max(n, 2)))
        hold = Signal(range(self._hold + 1))
        mask = Const(sum(1 << k for k, kw in enumerate(self._keywords) if kw), max(n, 1))

        # The score comes straight from the score FIFO's block RAM: a register before the
        # comparisons keeps that read off the path (on the iCEBreaker DNN the longest one).
        valid = Signal()
        score = Signal.like(self.score)
        m.d.sync += [valid.eq(self.valid & ~self.clear), score.eq(self.score)]

        # Whether the best class so far would fire is kept beside it, and the score's own
        # test (a keyword, at or above the threshold) is made beside the comparison with the
        # best: a detection then waits for one comparison, not for the threshold's after it
        # (on ECP5 that chain into the hold counter was the longest path).
        first = index == 0
        better = first | (score > best)
        score_fires = mask.bit_select(index, 1) & (score >= self._threshold)
        best_fires = Signal()
        with m.If(valid):
            m.d.sync += [best.eq(Mux(better, score, best)),
                         best_cls.eq(Mux(better, index, best_cls)),
                         best_fires.eq(Mux(better, score_fires, best_fires))]
            with m.If(index == n - 1):
                m.d.sync += index.eq(0)
            with m.Else():
                m.d.sync += index.eq(index + 1)
        with m.If(self.clear):
            m.d.sync += index.eq(0)

        # The frame's verdict is read from the registers a cycle after its last score: the
        # comparison with the best (a carry chain) then ends in those registers, not in the
        # hold counter's enable (on the iCEBreaker CNN reference that was the longest path).
        # A score of the next frame arriving in that cycle overwrites them only at its end.
        frame_end = Signal()
        m.d.sync += [frame_end.eq(valid & (index == n - 1)), self.detect.eq(0)]
        with m.If(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        with m.If(frame_end):
            m.d.sync += self.cls.eq(best_cls)
            with m.If(best_fires):
                m.d.sync += [self.detect.eq(1), hold.eq(self._hold)]
        m.d.comb += self.led.eq(hold != 0)
        return m


class KWSCore(wiring.Component):
    """Board-independent top: host link, accelerator, detection and (SPRAM) weight boot.

    Parameters
    ----------
    model : kwshw.modelfile.Model
        The network.
    lanes : int
        MAC lanes.
    clk_hz : float
        Frequency of the ``sync`` domain.
    baud : int
        UART baud rate (:func:`kwshw.link.uart.uart_divisor` of the clock: at least 4).
    memory : str
        ``"bram"`` or ``"spram"``; with ``"spram"`` the weights come from the SPI flash at
        ``image_offset`` (:mod:`boards.flashboot`).
    threshold : float
        Detection threshold, a logit (see the module docstring).
    hold_ms : float
        How long the LED stays lit after a detection.
    link_timeout_ms : float
        The host link's inter-byte timeout (long enough for USB-UART bridges, which send a
        packet in several USB transfers).
    flash_half_period : int
        System cycles per half SPI clock while booting.
    accelerator : callable, optional
        ``accelerator(model, lanes, memory)`` returns the accelerator component (default
        :class:`kwshw.hw.accelerator.Accelerator`), which must have the ports of
        :class:`kwshw.hw.ports.AcceleratorSignature`.

    Attributes
    ----------
    rx : In(1)
        UART from the host (idle high).
    tx : Out(1)
        UART to the host (idle high).
    led : Out(1)
        Detection LED (active high).
    error_led : Out(1)
        Lit while the weights image could not be loaded (SPRAM builds).
    ready : Out(1)
        The weights are in place (always, for BRAM builds).
    boot_error : Out(1)
        The weights image in flash is missing, for another model, or corrupted (SPRAM builds).
    flash : SPIFlashSignature (``"spram"`` only)
        The configuration flash's SPI pins.
    """

    def __init__(self, model, *, lanes: int, clk_hz: float, baud: int, memory: str = "bram",
                 image_offset: int = 1 << 20, threshold: float = 0.0, hold_ms: float = 250.0,
                 link_timeout_ms: float = 5.0, flash_half_period: int = 1,
                 accelerator: Callable | None = None):
        if memory not in ("bram", "spram"):
            raise ValueError(f"memory must be 'bram' or 'spram', not {memory!r}")
        self.model = model
        self.lanes = lanes
        self.memory = memory
        self.clk_hz = clk_hz
        self.divisor = uart_divisor(clk_hz, baud)
        self.baud = baud
        self.model_hash = bytes.fromhex(model.sha256)[:8]
        self.version = VERSION
        self.threshold = score_threshold(model, threshold)
        self.hold = int(hold_ms * 1e-3 * clk_hz)
        self.timeout = max(int(link_timeout_ms * 1e-3 * clk_hz), 1024 * self.divisor)
        self.image_offset = image_offset
        self.flash_half_period = flash_half_period
        #: The accelerator component (built here so that its static facts -- cycles per
        #: frame, memory bits -- are available before elaboration).
        self.accelerator = (accelerator or default_accelerator)(model, lanes, memory)
        if not AcceleratorSignature().is_provided_by(self.accelerator):
            raise TypeError(f"the accelerator {self.accelerator!r} does not have the ports of "
                            f"{AcceleratorSignature()!r}")
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "led": Out(1),
                          **boot_members(memory)})

    def elaborate(self, platform):
        m = Module()
        model = self.model
        m.submodules.accel = accel = self.accelerator
        m.submodules.link = link = UARTHostLink(
            divisor=self.divisor, n_bands=model.features.n_mels, n_out=model.shape[-1],
            model_hash=self.model_hash, bits=model.bits, lanes=self.lanes,
            version=self.version, timeout=self.timeout)
        m.submodules.detector = det = Detector(keyword_mask(model.labels), self.threshold,
                                               self.hold)

        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]

        # Frames reach the accelerator only once its weights are in place.
        ready = Signal()
        m.d.comb += [
            accel.feat.payload.eq(link.feat.payload),
            accel.feat.valid.eq(link.feat.valid & ready),
            link.feat.ready.eq(accel.feat.ready & ready),
            accel.clear.eq(link.clear),
        ]
        wiring.connect(m, accel.score, link.score)
        m.d.comb += [
            det.valid.eq(accel.score.valid & link.score.ready),
            det.score.eq(accel.score.payload),
            det.clear.eq(link.clear),
            self.led.eq(det.led),
            self.ready.eq(ready),
        ]

        if self.memory == "spram":
            done, error = weight_boot(
                m, model, lanes=self.lanes, clk_hz=self.clk_hz, accel=accel, flash=self.flash,
                image_offset=self.image_offset, half_period=self.flash_half_period)
            m.d.comb += [ready.eq(done), self.boot_error.eq(error), self.error_led.eq(error)]
        else:
            m.d.comb += ready.eq(1)
        return m


class BoardTop(Elaboratable):
    """A :class:`KWSCore` (or, with a microphone, a :class:`boards.standalone.StandaloneCore`)
    on a board: clock, reset, UART, LEDs, flash and microphone pins.

    Parameters
    ----------
    board : Board
        The board's row of the table.
    model : kwshw.modelfile.Model
        The network.
    lanes : int
        MAC lanes.
    sys_clk_hz : float, optional
        Clock of the design; the board's :meth:`~boards.table.Board.design_clk_hz` by
        default. When it differs from the board clock a PLL makes it (``EHXPLLL`` on ECP5,
        ``SB_PLL40_PAD`` or ``SB_PLL40_CORE`` on iCE40).
    baud : int, optional
        UART baud rate; the board's by default.
    mic : str
        ``"host"``: the UART-fed :class:`KWSCore`; ``"pdm"`` or ``"i2s"``: the standalone
        design with that microphone on the board row's ``mic_pins``.
    **core_args
        Passed to the core (:class:`KWSCore`: ``threshold``, ``hold_ms``, ``accelerator``,
        ...; :class:`~boards.standalone.StandaloneCore`: ``rule``, ``hold_ms``, ...).

    Raises
    ------
    BuildError
        A microphone on a board without microphone pins, or a clock (the PLL's actual
        output) that cannot give exactly 16 kHz PCM, with the numbers.
    """

    def __init__(self, board: Board, model, *, lanes: int, sys_clk_hz: float | None = None,
                 baud: int | None = None, mic: str = "host", **core_args):
        self.board, self.mic = board, mic
        self.sys_clk_hz = float(sys_clk_hz or board.design_clk_hz(mic))
        # At the board clock's own frequency no PLL is needed (nor could an iCE40 PLL make it).
        self.use_pll = self.sys_clk_hz != board.clock_hz
        self.pll = None
        if self.use_pll:
            # A microphone needs its clock exactly (16 kHz PCM): on ECP5 also from CLKOS.
            make = (ice40_pll if board.family == "ice40" else
                    ecp5_pll_exact if mic != "host" else ecp5_pll)
            try:
                self.pll = make(board.clock_hz, self.sys_clk_hz)
            except BuildError as e:
                raise BuildError(f"{board.name}: {e}") from None
        common = dict(lanes=lanes, baud=baud or board.baud, memory=board.memory,
                      image_offset=board.image_offset)
        if mic == "host":
            self.core = KWSCore(model, clk_hz=self.sys_clk_hz, **common, **core_args)
        else:
            self.core = self._standalone(model, common, core_args)

    def _standalone(self, model, common: dict, core_args: dict) -> StandaloneCore:
        board = self.board
        if board.mic_pins is None:
            raise BuildError(f"{board.name}: no microphone pins in the board table "
                             f"(boards.table.Board.mic_pins): no standalone design")
        # The microphone counts cycles of the clock the PLL really makes.
        clk = self.pll.f_out if self.pll is not None else self.sys_clk_hz
        cfg = mic_config(self.mic, clk, where=board.name)
        try:
            return StandaloneCore(model, clk_hz=clk, mic=self.mic, mic_cfg=cfg, **common,
                                  **core_args)
        except BuildError as e:
            raise BuildError(f"{board.name}: {e}") from None

    def _mic_pins(self, m: Module, platform, buffer) -> None:
        """Connect the standalone core's microphone port to the board row's header pins."""
        pins = platform.request(f"kws_mic_{self.mic}", 0, dir="-")
        for name, member in MIC_PINS[self.mic]:
            # The core's clock outputs go out, its data input comes in.
            if member.flow == wiring.In:
                m.d.comb += getattr(self.core.mic, name).eq(
                    buffer("i", getattr(pins, name), f"mic_{name}").i)
            else:
                m.d.comb += buffer("o", getattr(pins, name), f"mic_{name}").o.eq(
                    getattr(self.core.mic, name))

    @staticmethod
    def _reset(m: Module, platform, buffer, reset) -> None:
        # ResetSynchronizer's flip-flops start asserted, so the domain is reset for two cycles
        # after configuration even when ``reset`` never rises.
        if platform.default_rst is not None:
            rst_port = platform.request(platform.default_rst, 0, dir="-")
            reset = reset | buffer("i", rst_port, "rst_buf").i
        m.submodules.reset_sync = ResetSynchronizer(reset, domain="sync")

    def elaborate(self, platform):
        m = Module()
        board = self.board
        m.submodules.core = core = self.core

        def buffer(direction, port, name):
            m.submodules[name] = buf = io.Buffer(direction, port)
            return buf

        # Every board's sync domain is reset after configuration: the host link's packet
        # parser has its state recoded one-hot by Yosys, which drops the register's initial
        # value (kwshw.link.gateware.PacketParser), so its start state comes from the reset.
        if self.use_pll:
            m.domains.sync = cd = ClockDomain("sync")
            locked = Signal()
            clk_port = platform.request(board.clock_resource, 0, dir="-")
            if board.family == "ice40" and board.pll_pad:
                # SB_PLL40_PAD takes the clock straight from its dedicated pad.
                pll = self.pll.instance(clk_port.io, cd.clk, locked, pad=True)
            else:
                clk = buffer("i", clk_port, "clk_buf").i
                pll = (self.pll.instance(clk, cd.clk, locked) if board.family == "ecp5" else
                       self.pll.instance(clk, cd.clk, locked, pad=False))
            m.submodules.pll = pll
            self._reset(m, platform, buffer, ~locked)
            platform.add_clock_constraint(cd.clk, self.pll.f_out)
        elif board.family == "ecp5":
            # The ECP5 platform's own sync domain has no reset (GSR restores initial values);
            # the iCE40 platform's is held in reset while its block RAMs wake up.
            m.domains.sync = cd = ClockDomain("sync")
            clk_port = platform.request(board.clock_resource, 0, dir="-")
            m.d.comb += cd.clk.eq(buffer("i", clk_port, "clk_buf").i)
            self._reset(m, platform, buffer, Const(0))

        uart = platform.request(*board.uart, dir="-")
        m.d.comb += buffer("o", uart.tx, "uart_tx").o.eq(core.tx)
        if self.mic == "host":
            m.d.comb += core.rx.eq(buffer("i", uart.rx, "uart_rx").i)
        else:
            self._mic_pins(m, platform, buffer)

        requested = {}

        def led_pin(spec):
            name, number, sub = spec
            if (name, number) not in requested:
                requested[(name, number)] = platform.request(name, number, dir="-")
            port = requested[(name, number)]
            port = getattr(port, sub) if sub else port
            return buffer("o", port, f"{name}_{number}_{sub or 'o'}").o

        used = {board.led}
        m.d.comb += led_pin(board.led).eq(core.led)
        if board.error_led is not None:
            used.add(board.error_led)
            m.d.comb += led_pin(board.error_led).eq(core.error_led)
        # The other channels of an RGB LED we use are driven off, not left floating.
        for (name, number), port in list(requested.items()):
            for sub in ("r", "g", "b"):
                if hasattr(port, sub) and (name, number, sub) not in used:
                    m.d.comb += led_pin((name, number, sub)).eq(0)

        if core.memory == "spram":
            flash = platform.request(*board.flash_resource, dir="-")
            m.d.comb += [
                buffer("o", flash.cs, "flash_cs").o.eq(core.flash.cs),
                buffer("o", flash.clk, "flash_clk").o.eq(core.flash.clk),
                buffer("o", flash.copi, "flash_copi").o.eq(core.flash.copi),
                core.flash.cipo.eq(buffer("i", flash.cipo, "flash_cipo").i),
            ]
            for name in ("wp", "hold"):
                if hasattr(flash, name):
                    # Inverted pins (WP#, HOLD#): 0 is the inactive level.
                    m.d.comb += buffer("o", getattr(flash, name), f"flash_{name}").o.eq(0)
        return m
