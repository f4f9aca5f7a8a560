"""The supported boards: ONE table, the single source of truth of the board flow.

Every fact the flow needs about a board is in its :class:`Board` row: the ``amaranth-boards``
platform that describes its pins, the FPGA and the resources it offers, the board clock and the
clock the accelerator runs at, the UART and LED used, where the weights live, and how the
bitstream is programmed. The fit check (:mod:`boards.fit`), the board top (:mod:`boards.top`),
the build (:mod:`boards.build`) and ``docs/boards.md`` all read these rows.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from amaranth.build import Attrs, Pins, Resource, Subsignal

from kwshw.link.uart import uart_divisor
from kwshw.microphone import i2s_config, pdm_config

__all__ = ["FPGA", "FPGAS", "MicPins", "MICS", "Board", "BOARDS", "get_board", "board_names",
           "markdown_table", "mic_table"]

#: Microphone inputs of the standalone design: ``"host"`` is the UART-fed design (no
#: microphone), ``"pdm"`` and ``"i2s"`` a MEMS microphone on header pins.
MICS = ("host", "pdm", "i2s")


@dataclass(frozen=True)
class FPGA:
    """An FPGA device and the resources it offers (from the vendor's data sheet).

    Attributes
    ----------
    name : str
        Device as the data sheet and the platform name it (``"LFE5U-85F"``, ``"iCE40UP5K"``).
    family : str
        ``"ecp5"`` or ``"ice40"``.
    luts : int
        4-input LUTs (ECP5 ``TRELLIS_COMB``) or logic cells (iCE40 ``ICESTORM_LC``).
    bram_blocks : int
        Embedded block RAMs: ECP5 sysMEM EBR (DP16KD), iCE40 EBR (SB_RAM40_4K).
    bram_block_bits : int
        Bits of one block RAM: 18,432 (ECP5, 18 Kbit) or 4,096 (iCE40, 4 Kbit).
    spram_blocks : int
        iCE40 UltraPlus single-port RAMs (SB_SPRAM256KA, 16 bits x 16k); 0 elsewhere.
    spram_block_bits : int
        Bits of one SPRAM block (262,144).
    dsps : int
        Hard multipliers: ECP5 MULT18X18D, iCE40 SB_MAC16.
    plls : int
        PLLs.
    """

    name: str
    family: str
    luts: int
    bram_blocks: int
    bram_block_bits: int
    dsps: int
    plls: int
    spram_blocks: int = 0
    spram_block_bits: int = 0

    @property
    def bram_bits(self) -> int:
        return self.bram_blocks * self.bram_block_bits

    @property
    def spram_bits(self) -> int:
        return self.spram_blocks * self.spram_block_bits


_ECP5_EBR = 18 * 1024

#: Lattice ECP5 family data sheet (FPGA-DS-02012), table 1.1; LUT counts as nextpnr-ecp5
#: reports them (the 12F is sold with half the 25F's LUTs and 32 of its EBRs usable).
FPGAS: dict[str, FPGA] = {f.name: f for f in (
    FPGA("LFE5U-12F", "ecp5", luts=12_144, bram_blocks=32, bram_block_bits=_ECP5_EBR,
         dsps=28, plls=2),
    FPGA("LFE5U-25F", "ecp5", luts=24_288, bram_blocks=56, bram_block_bits=_ECP5_EBR,
         dsps=28, plls=2),
    FPGA("LFE5U-45F", "ecp5", luts=43_848, bram_blocks=108, bram_block_bits=_ECP5_EBR,
         dsps=72, plls=4),
    FPGA("LFE5U-85F", "ecp5", luts=83_640, bram_blocks=208, bram_block_bits=_ECP5_EBR,
         dsps=156, plls=4),
    FPGA("LFE5UM5G-45F", "ecp5", luts=43_848, bram_blocks=108, bram_block_bits=_ECP5_EBR,
         dsps=72, plls=4),
    FPGA("LFE5UM5G-85F", "ecp5", luts=83_640, bram_blocks=208, bram_block_bits=_ECP5_EBR,
         dsps=156, plls=4),
    # iCE40 UltraPlus family data sheet (FPGA-DS-02008), table 1.1.
    FPGA("iCE40UP5K", "ice40", luts=5_280, bram_blocks=30, bram_block_bits=4096,
         dsps=8, plls=1, spram_blocks=4, spram_block_bits=16 * 16384),
)}


@dataclass(frozen=True)
class MicPins:
    """Where a MEMS microphone breakout plugs in: header pins by their ``amaranth-boards``
    connector names.

    Attributes
    ----------
    connector : tuple
        ``(name, number)`` of the platform connector (``("pmod", 0)``, ``("gpio", 0)``).
    pdm : tuple of str
        Connector pins of a PDM microphone's ``(clk, data)``.
    i2s : tuple of str
        Connector pins of an I2S microphone's ``(sck, ws, sd)``.
    attrs : dict
        I/O attributes of the pins (the family's 3.3 V standard).
    header : str
        The header as printed on the board, for the docs.
    labels : dict
        Pin (connector name) -> its label on the board's silkscreen, for the docs.
    """

    connector: tuple
    pdm: tuple
    i2s: tuple
    attrs: dict
    header: str
    labels: dict = field(default_factory=dict)

    def names(self, mic: str) -> tuple[tuple[str, str], ...]:
        """``(signal, connector pin)`` of microphone ``mic`` (``"pdm"`` or ``"i2s"``)."""
        if mic == "pdm":
            return tuple(zip(("clk", "data"), self.pdm, strict=True))
        if mic == "i2s":
            return tuple(zip(("sck", "ws", "sd"), self.i2s, strict=True))
        raise ValueError(f"mic must be 'pdm' or 'i2s', not {mic!r}")

    def resource(self, mic: str) -> Resource:
        """The platform resource ``kws_mic_<mic>`` 0: clocks out, data in."""
        subs = [Subsignal(sig, Pins(pin, dir="i" if sig in ("data", "sd") else "o",
                                    conn=self.connector))
                for sig, pin in self.names(mic)]
        return Resource(f"kws_mic_{mic}", 0, *subs, Attrs(**self.attrs))


@dataclass(frozen=True)
class Programmer:
    """How a bitstream (and, for SPRAM builds, the weights image) gets onto a board.

    ``sram`` and ``flash`` are argument lists after the tool name, with ``{bitstream}``,
    ``{image}`` and ``{offset}`` substituted; an empty tuple means the board cannot do it that
    way. ``image`` writes the weights image to the configuration flash at ``{offset}``.
    """

    tool: str
    sram: tuple[str, ...]
    flash: tuple[str, ...]
    image: tuple[str, ...] = ()
    #: Debian package that provides ``tool`` when it is not on PATH / in the venv.
    package: str = ""
    #: What the user must do on the board before programming (shown on failure).
    hint: str = ""
    #: Bitstream file the tool takes: ``"bit"`` (ECP5), ``"bin"`` (iCE40), ``"dfu"``.
    bitstream: str = "bit"


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str
        Name used on the command line (``kwshw build --board NAME``).
    title : str
        Human-readable name.
    platform : str
        ``amaranth-boards`` platform class, ``"module:Class"``.
    platform_args : dict
        Attributes set on the platform instance (e.g. ``hfosc_div``).
    fpga : FPGA
        The device and its resources.
    clock_hz : float
        Frequency of the board clock.
    clock : str
        ``"direct"`` (the accelerator runs on the board clock), ``"pll"`` (a PLL makes
        ``sys_clk_hz`` from the board clock) or ``"hfosc"`` (the iCE40 internal oscillator,
        divided by the platform's ``hfosc_div``).
    sys_clk_hz : float
        Clock the accelerator and the UART run at.
    clock_resource : str
        Platform resource of the board clock (used with ``clock="pll"``).
    uart : tuple
        ``(resource, number)`` of the UART to the host.
    uart_note : str
        What the UART is connected to on the board.
    led : tuple
        ``(resource, number, subsignal)``: the LED that lights on a detection (subsignal
        ``None`` for a plain LED, ``"g"`` for the green channel of an RGB LED).
    memory : str
        Where the weights live: ``"bram"`` (block RAM, initialised by the bitstream) or
        ``"spram"`` (iCE40 SPRAM, filled at boot from the SPI flash).
    flash_resource : tuple or None
        ``(resource, number)`` of the configuration SPI flash read at boot (``"spram"`` only).
    image_offset : int
        Flash address of the weights image (``"spram"`` only); the bitstream is at 0.
    pll_pad : bool
        iCE40: the board clock enters on the PLL's dedicated pad, so ``SB_PLL40_PAD`` takes it
        straight from the pin; otherwise ``SB_PLL40_CORE`` takes it from the clock buffer.
    error_led : tuple or None
        LED (as ``led``) that is lit while the weights image in flash is missing or corrupt
        (``"spram"`` only).
    baud : int
        UART baud rate of the host link.
    programmer : Programmer
        How to program the board.
    extra_resources : tuple
        ``(module, attribute)`` names of resource lists this flow adds to the platform
        (pins that ``amaranth-boards`` does not define, e.g. a UART on header pins).
    mic_pins : MicPins or None
        Where a microphone plugs in for the standalone design (``kwshw build --mic``);
        ``None``: the board has no standalone design.
    mic_clk_hz : dict
        Design clock of the standalone design per microphone (``"pdm"``, ``"i2s"``) where
        ``sys_clk_hz`` cannot give exactly 16 kHz PCM (a PLL makes it exactly from the board
        clock); a microphone not listed runs at ``sys_clk_hz``.
    default_lanes : int
        MAC lanes used when the build does not ask for a number.
    notes : str
        Anything the user must know (e.g. an external USB-serial adapter).
    """

    name: str
    title: str
    platform: str
    fpga: FPGA
    clock_hz: float
    sys_clk_hz: float
    clock: str
    clock_resource: str
    uart: tuple
    uart_note: str
    led: tuple
    memory: str
    baud: int
    programmer: Programmer
    default_lanes: int = 8
    platform_args: dict = field(default_factory=dict)
    flash_resource: tuple | None = None
    image_offset: int = 0
    error_led: tuple | None = None
    pll_pad: bool = False
    extra_resources: tuple = ()
    mic_pins: MicPins | None = None
    mic_clk_hz: dict = field(default_factory=dict)
    notes: str = ""

    @property
    def family(self) -> str:
        return self.fpga.family

    def design_clk_hz(self, mic: str = "host") -> float:
        """The design clock of the ``mic`` design (:data:`MICS`): the row's ``mic_clk_hz``
        of that microphone, else ``sys_clk_hz``."""
        if mic not in MICS:
            raise ValueError(f"mic must be one of {', '.join(MICS)}, not {mic!r}")
        return self.mic_clk_hz.get(mic, self.sys_clk_hz)

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit (:func:`kwshw.link.uart.uart_divisor`)."""
        return uart_divisor(self.sys_clk_hz, self.baud)

    @property
    def baud_error(self) -> float:
        """Relative error of the baud rate the divisor gives."""
        return self.sys_clk_hz / self.divisor / self.baud - 1

    def platform_class(self):
        """Import and return the platform class."""
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)

    def make_platform(self, *, cls: type | None = None, **kwargs):
        """A platform instance with this board's attributes and extra resources.

        ``cls`` is a subclass of :meth:`platform_class` to instantiate instead (the build
        drops platform steps it does in Python); ``kwargs`` go to the platform's constructor.
        """
        platform = (cls or self.platform_class())(**kwargs)
        for attr, value in self.platform_args.items():
            setattr(platform, attr, value)
        for ref in self.extra_resources:
            module, _, name = ref.partition(":")
            platform.add_resources(getattr(importlib.import_module(module), name))
        if self.mic_pins is not None:
            platform.add_resources([self.mic_pins.resource(mic) for mic in MICS[1:]])
        return platform


# --- Programmers ---------------------------------------------------------------------------------

_OFL_ULX3S = Programmer(
    "openFPGALoader", sram=("-b", "ulx3s", "-m", "{bitstream}"),
    flash=("-b", "ulx3s", "-f", "{bitstream}"),
    hint="connect the ULX3S by its US1 (FTDI) USB port")
_OFL_ECPIX5 = Programmer(
    "openFPGALoader", sram=("-b", "ecpix5", "-m", "{bitstream}"),
    flash=("-b", "ecpix5", "-f", "{bitstream}"),
    hint="connect the ECPIX-5 by its USB-C (FT2232) port and power it")
# The OrangeCrab's bootloader only writes the flash (there is no SRAM load over DFU): both
# program and flash go through dfu-util and the board starts the new bitstream after it.
_DFU_ORANGECRAB = Programmer(
    "dfu-util", sram=("-a", "0", "-D", "{bitstream}"), flash=("-a", "0", "-D", "{bitstream}"),
    package="dfu-util", bitstream="dfu",
    hint="hold the button while plugging the OrangeCrab in, to enter its DFU bootloader")
# iCE40 boards: openFPGALoader's generic iCE40 SPI board is the iCEBreaker's (and iceprog's)
# FTDI pinout; the UPduino's FT232H has the same wiring on its only channel.
_OFL_ICEBREAKER = Programmer(
    "openFPGALoader", sram=("-b", "ice40_generic", "-m", "{bitstream}"),
    flash=("-b", "ice40_generic", "-f", "{bitstream}"),
    image=("-b", "ice40_generic", "-f", "-o", "{offset}", "{image}"),
    bitstream="bin", hint="connect the iCEBreaker by its USB port")
_OFL_UPDUINO = Programmer(
    "openFPGALoader", sram=("-b", "ice40_generic", "-c", "ft232", "-m", "{bitstream}"),
    flash=("-b", "ice40_generic", "-c", "ft232", "-f", "{bitstream}"),
    image=("-b", "ice40_generic", "-c", "ft232", "-f", "-o", "{offset}", "{image}"),
    bitstream="bin", hint="connect the UPduino by its USB port")


# --- The table -----------------------------------------------------------------------------------

_ULX3S_NOTE = ("UART through the on-board FT231X (US1 port); LED 0 (D0) lights on a detection")
_IMAGE_OFFSET = 1 << 20  # 1 MiB: past any iCE40UP5K bitstream (104 KiB)


#: ULX3S: the GPIO header J1's first pins (GP0/GN0/GP1, 3.3 V and GND next to them).
_ULX3S_MIC = MicPins(connector=("gpio", 0), pdm=("0+", "0-"), i2s=("0+", "0-", "1+"),
                     attrs={"IO_TYPE": "LVCMOS33"}, header="J1 (GPIO)",
                     labels={"0+": "GP0", "0-": "GN0", "1+": "GP1"})
#: iCEBreaker: PMOD1A, the header on the main board, pins 1-3 (3.3 V on pin 6, GND on 5).
_ICEBREAKER_MIC = MicPins(connector=("pmod", 0), pdm=("1", "2"), i2s=("1", "2", "3"),
                          attrs={"IO_STANDARD": "SB_LVCMOS"}, header="PMOD1A",
                          labels={"1": "P1A1", "2": "P1A2", "3": "P1A3"})


#: The accelerator's clocks, from a PLL: the fastest whole megahertz the PLL makes exactly at
#: or below 0.9 x the fmax of the slowest design the sweeps built on the family (bench/results;
#: `kwshw build --clock auto` finds a design's own). ECP5: chosen at e0b4333, where the
#: ULX3S-85F's slowest design of both sweeps (the DNN, 8-bit, P = 1) reached 60.3 MHz, so 50 MHz
#: (55 needs 61.1). iCE40UP5K: 18 MHz (12 MHz x 48 / 32) at e0b4333 (slowest 19.95 MHz); from
#: 0f4b630 on the slowest iCE40 point of both sweeps is the CNN, 8-bit, P = 2, at 25.14 MHz, so
#: 21 MHz (12 MHz x 56 / 32; 24 would need 26.7). Whole megahertz keep the 1 Mbaud UART divisor
#: exact.
ECP5_CLK_HZ, ICE40_CLK_HZ = 50e6, 21e6
#: The iCEBreaker's standalone PDM design keeps 18 MHz: a PDM receiver needs a whole number of
#: system clocks per 16 kHz sample (18 MHz = 1125 x 16 kHz; 21 MHz is 1312.5).
_ICE40_MIC_CLK_HZ = {"pdm": 18e6}


def _ulx3s(size: str) -> Board:
    # The standalone design runs from a PLL: 25 MHz / 16 kHz = 1562.5 is no integer. PDM at
    # 20 MHz = 1250 x 16 kHz (2 MHz PDM clock, R = 25, D = 5; UART divisor 20); I2S at
    # 25.6 MHz = 25 x 1.024 MHz (the EHXPLLL's CLKOS: a 640 MHz VCO / 25).
    mic = ({"mic_pins": _ULX3S_MIC, "mic_clk_hz": {"pdm": 20e6, "i2s": 25.6e6}}
           if size in ("25F", "85F") else {})
    return Board(
        name=f"ulx3s-{size.lower()}", title=f"Radiona ULX3S ({size})",
        platform=f"amaranth_boards.ulx3s:ULX3S_{size}_Platform",
        fpga=FPGAS[f"LFE5U-{size}"], clock_hz=25e6, sys_clk_hz=ECP5_CLK_HZ, clock="pll",
        clock_resource="clk25", uart=("uart", 0), uart_note="on-board FT231X (US1)",
        led=("led", 0, None), memory="bram", baud=1_000_000, programmer=_OFL_ULX3S,
        notes=_ULX3S_NOTE, **mic)


def _orangecrab(size: str) -> Board:
    return Board(
        name=f"orangecrab-{size.lower()}", title=f"OrangeCrab r0.2 ({size})",
        platform=f"amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_{size}Platform",
        fpga=FPGAS[f"LFE5U-{size}"], clock_hz=48e6, sys_clk_hz=48e6, clock="direct",
        clock_resource="clk", uart=("uart", 0),
        uart_note="Feather pins 0 (RX, N17) and 1 (TX, M18): external 3.3 V USB-serial adapter",
        led=("rgb_led", 0, "g"), memory="bram", baud=1_000_000, programmer=_DFU_ORANGECRAB,
        extra_resources=("boards.resources:ORANGECRAB_UART",),
        notes=("The OrangeCrab has no USB-UART bridge: connect a 3.3 V USB-serial adapter to "
               "Feather pins 0 (board RX) and 1 (board TX) and GND. The RGB LED lights green "
               "on a detection."))


def _ecpix5(size: str) -> Board:
    return Board(
        name=f"ecpix5-{size.lower()}", title=f"LambdaConcept ECPIX-5 ({size})",
        platform=f"amaranth_boards.ecpix5:ECPIX5{size[:2]}Platform",
        fpga=FPGAS[f"LFE5UM5G-{size}"], clock_hz=100e6, sys_clk_hz=50e6, clock="pll",
        clock_resource="clk100", uart=("uart", 0), uart_note="on-board FT2232 (channel B)",
        led=("rgb_led", 0, "g"), memory="bram", baud=1_000_000, programmer=_OFL_ECPIX5,
        notes="A PLL (EHXPLLL) makes 50 MHz from the 100 MHz clock. RGB LED 0 lights green "
              "on a detection.")


BOARDS: dict[str, Board] = {b.name: b for b in (
    _ulx3s("12F"), _ulx3s("25F"), _ulx3s("45F"), _ulx3s("85F"),
    _orangecrab("25F"), _orangecrab("85F"),
    _ecpix5("45F"), _ecpix5("85F"),
    Board(
        name="icebreaker", title="1BitSquared iCEBreaker (iCE40UP5K)",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        fpga=FPGAS["iCE40UP5K"], clock_hz=12e6, sys_clk_hz=ICE40_CLK_HZ, clock="pll",
        clock_resource="clk12", uart=("uart", 0), uart_note="on-board FT2232H (channel B)",
        led=("led_g", 0, None), error_led=("led_r", 0, None), memory="spram", pll_pad=True,
        flash_resource=("spi_flash_1x", 0),
        image_offset=_IMAGE_OFFSET, baud=1_000_000, programmer=_OFL_ICEBREAKER, default_lanes=4,
        mic_pins=_ICEBREAKER_MIC, mic_clk_hz=_ICE40_MIC_CLK_HZ,
        notes="Weights live in SPRAM, which the bitstream cannot initialise: the weights image "
              "is written to the SPI flash at 1 MiB and the gateware copies it into SPRAM after "
              "configuration (the red LED lights if the image is missing or is for another "
              "model). The green LED lights on a detection."),
    Board(
        name="upduino3", title="tinyVision.ai UPduino v3 (iCE40UP5K)",
        platform="amaranth_boards.upduino_v3:UpduinoV3Platform",
        platform_args={"default_clk": "clk12"},
        fpga=FPGAS["iCE40UP5K"], clock_hz=12e6, sys_clk_hz=ICE40_CLK_HZ, clock="pll",
        clock_resource="clk12", uart=("uart", 0),
        uart_note="header pins 38 (TX) and 28 (RX): external 3.3 V USB-serial adapter",
        led=("rgb_led", 0, "g"), error_led=("rgb_led", 0, "r"), memory="spram",
        flash_resource=("kws_flash", 0),
        image_offset=_IMAGE_OFFSET, baud=1_000_000, programmer=_OFL_UPDUINO, default_lanes=4,
        extra_resources=("boards.resources:UPDUINO3_EXTRA",),
        notes="Runs on the board's 12 MHz oscillator: solder the OSC jumper (pin 20). The "
              "internal SB_HFOSC is not used: its +-10% tolerance is too loose for a UART. The "
              "UPduino's FT232H only programs the flash: connect a 3.3 V USB-serial adapter "
              "to pins 38 (board TX) and 28 (board RX) and GND. Weights are loaded from the "
              "SPI flash at 1 MiB as on the iCEBreaker; the RGB LED lights green on a "
              "detection and red if the weights image is missing."),
)}


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive); ``KeyError`` lists the known boards."""
    key = name.lower()
    if key not in BOARDS:
        raise KeyError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]


def markdown_table() -> str:
    """The board table as Markdown (``docs/boards.md`` embeds it; a test keeps them equal)."""
    rows = ["| name | board | FPGA | LUTs | block RAM | SPRAM | DSPs | clock (board -> design) "
            "| UART | detection LED | weights | program / flash |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for b in BOARDS.values():
        f = b.fpga
        spram = f"{f.spram_blocks} x 256 Kbit" if f.spram_blocks else "-"
        bram = f"{f.bram_blocks} x {f.bram_block_bits // 1024} Kbit ({f.bram_bits:,} bits)"
        clock = (f"{b.clock_hz / 1e6:g} MHz -> {b.sys_clk_hz / 1e6:g} MHz "
                 f"({'PLL' if b.clock == 'pll' else 'direct'})")
        led = f"{b.led[0]} {b.led[1]}" + (f" ({b.led[2]})" if b.led[2] else "")
        weights = ("BRAM (bitstream)" if b.memory == "bram" else
                   f"SPRAM (from flash @ {b.image_offset:#x})")

        def cmd(args, tool=b.programmer.tool):
            return " ".join([tool, *(a for a in args if not a.startswith("{"))])

        rows.append(f"| `{b.name}` | {b.title} | {f.name} | {f.luts:,} | {bram} | {spram} | "
                    f"{f.dsps} | {clock} | {b.uart_note}, {b.baud:,} Bd | {led} | {weights} | "
                    f"`{cmd(b.programmer.sram)}` / `{cmd(b.programmer.flash)}` |")
    return "\n".join(rows)


def mic_table() -> str:
    """The microphone pins of the boards with a standalone design, as Markdown
    (``docs/boards.md`` embeds it; a test keeps them equal)."""
    rows = ["| name | header | PDM clock | PDM CLK | PDM DATA | I2S clock | I2S SCK | I2S WS "
            "| I2S SD |", "|---|---|---|---|---|---|---|---|---|"]
    for b in BOARDS.values():
        if b.mic_pins is None:
            continue
        p = b.mic_pins

        def pin(name, p=p):
            return f"{p.labels.get(name, name)} (`{p.connector[0]} {p.connector[1]}` `{name}`)"

        def clock(mic, b=b):
            hz = b.design_clk_hz(mic)
            try:
                (pdm_config if mic == "pdm" else i2s_config)(int(hz))
            except ValueError:
                return f"none ({hz / 1e6:g} MHz gives no 16 kHz)"
            return f"{hz / 1e6:g} MHz"

        cells = [clock("pdm"), *map(pin, p.pdm), clock("i2s"), *map(pin, p.i2s)]
        rows.append(f"| `{b.name}` | {p.header} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
