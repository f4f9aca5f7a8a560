"""Supported FPGA boards and their tops (installed with the kwshw package as ``boards``).

- :mod:`boards.table` -- THE board table (:data:`BOARDS`): platform, FPGA resources, clocks,
  UART, LED, weight memory, programming tool. The single source of truth.
- :mod:`boards.fit` -- the fit check run before synthesis.
- :mod:`boards.top` -- :class:`~boards.top.KWSCore` (board-independent) and
  :class:`~boards.top.BoardTop` (clock/PLL, reset, pins).
- :mod:`boards.standalone` -- :class:`~boards.standalone.StandaloneCore`: microphone in,
  keyword out (``kwshw build --mic pdm|i2s``).
- :mod:`boards.flashboot` -- the SPI flash boot path of SPRAM (iCE40 UltraPlus) builds.
- :mod:`boards.pll` -- ECP5/iCE40 PLL parameters and instances.
- :mod:`boards.dsp` -- which iCE40 multipliers get DSPs and which are built from logic.

Builds and programming are driven by :func:`boards.build.build`.
"""

from .errors import BuildError, FitError, ProgramError, ToolError
from .table import BOARDS, FPGA, FPGAS, Board, Programmer, board_names, get_board

__all__ = ["BOARDS", "FPGA", "FPGAS", "Board", "Programmer", "board_names", "get_board",
           "BuildError", "FitError", "ProgramError", "ToolError"]
