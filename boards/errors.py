"""Errors of the board flow: every failure a user can fix is one of these, with a message that
names the numbers or the missing piece."""

from __future__ import annotations

__all__ = ["BuildError", "FitError", "ProgramError", "ToolError"]


class BuildError(Exception):
    """A board build, fit check or programming step failed; the message says why."""


class FitError(BuildError):
    """The design does not fit the board's FPGA (raised before synthesis, with the numbers)."""


class ToolError(BuildError):
    """A tool (Yosys, nextpnr, a pack or programming tool) is missing or failed."""


class ProgramError(ToolError):
    """Loading the bitstream into the FPGA or writing the flash failed (e.g. no board attached)."""
