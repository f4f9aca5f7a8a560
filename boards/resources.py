"""Pins that ``amaranth-boards`` does not define but this flow uses.

Added to a platform by the :class:`boards.table.Board` rows that name them in
``extra_resources``.
"""

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal
from amaranth_boards.resources import UARTResource

__all__ = ["ORANGECRAB_UART", "UPDUINO3_EXTRA"]

#: OrangeCrab r0.2: a UART on the Feather header's serial pins (0 = RX, 1 = TX by the Feather
#: convention), for an external 3.3 V USB-serial adapter: the board has no USB-UART bridge.
ORANGECRAB_UART = [
    UARTResource(0, rx="0", tx="1", conn=("io", 0),
                 attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP")),
]

#: UPduino v3: a UART on header pins for an external USB-serial adapter (the on-board FT232H is
#: wired to the flash only), and the configuration flash with just its four SPI pins: the
#: platform's ``spi_flash`` resources also claim pin 20 (HOLD#), which the 12 MHz oscillator
#: drives once the OSC jumper is soldered.
UPDUINO3_EXTRA = [
    UARTResource(0, rx="28", tx="38", attrs=Attrs(IO_STANDARD="SB_LVCMOS", PULLUP=1)),
    Resource("kws_flash", 0,
             Subsignal("cs", PinsN("16", dir="o")),
             Subsignal("clk", Pins("15", dir="o")),
             Subsignal("copi", Pins("14", dir="o")),
             Subsignal("cipo", Pins("17", dir="i")),
             Attrs(IO_STANDARD="SB_LVCMOS")),
]
