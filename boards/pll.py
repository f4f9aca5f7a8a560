"""PLLs: parameter search (as Project Trellis' ``ecppll`` and IceStorm's ``icepll`` do it) and
the primitive instances for ECP5 (``EHXPLLL``) and iCE40 (``SB_PLL40_PAD``).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Instance, Signal

from .errors import BuildError

__all__ = ["ECP5PLL", "ICE40PLL", "ecp5_pll", "ecp5_pll_exact", "fastest_exact_clock",
           "ice40_pll"]

_MHZ = 1e6


@dataclass(frozen=True)
class ECP5PLL:
    """EHXPLLL settings: ``CLKOP = f_in * clkfb_div / clki_div`` (the feedback), VCO
    ``CLKOP * clkop_div``; ``f_out`` is CLKOP, or with ``clkos_div`` the secondary output
    ``CLKOS = VCO / clkos_div`` (which reaches clocks CLKOP cannot, e.g. exact multiples of
    1.024 MHz from 25 MHz)."""

    f_in: float
    f_out: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    clkos_div: int | None = None

    @property
    def f_clkop(self) -> float:
        return self.f_in * self.clkfb_div / self.clki_div

    @property
    def f_vco(self) -> float:
        return self.f_clkop * self.clkop_div

    def instance(self, clk_in, clk_out: Signal, locked: Signal) -> Instance:
        if self.clkos_div is not None:
            return self._secondary(clk_in, clk_out, locked)
        return Instance(
            "EHXPLLL", a_FREQUENCY_PIN_CLKOP=f"{self.f_out / _MHZ:g}",
            **self._common(clk_in, feedback=clk_out, locked=locked),
            o_CLKOP=clk_out,
        )

    def _secondary(self, clk_in, clk_out: Signal, locked: Signal) -> Instance:
        """The instance with the output on CLKOS; CLKOP only closes the feedback loop."""
        feedback = Signal(name="pll_clkop")
        return Instance(
            "EHXPLLL", a_FREQUENCY_PIN_CLKOS=f"{self.f_out / _MHZ:g}",
            **self._common(clk_in, feedback=feedback, locked=locked),
            p_OUTDIVIDER_MUXB="DIVB",
            p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=self.clkos_div,
            p_CLKOS_CPHASE=self.clkop_div - 1, p_CLKOS_FPHASE=0, i_ENCLKOS=0,
            o_CLKOP=feedback, o_CLKOS=clk_out,
        )

    def _common(self, clk_in, *, feedback: Signal, locked: Signal) -> dict:
        """The EHXPLLL settings of both forms: input, VCO, CLKOP (the feedback path)."""
        return dict(
            a_FREQUENCY_PIN_CLKI=f"{self.f_in / _MHZ:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=self.clkop_div,
            p_CLKOP_CPHASE=self.clkop_div - 1, p_CLKOP_FPHASE=0,
            p_CLKI_DIV=self.clki_div, p_CLKFB_DIV=self.clkfb_div, p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_in, i_CLKFB=feedback, i_RST=0, i_STDBY=0,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked,
        )


def ecp5_pll_exact(f_in: float, f_out: float) -> ECP5PLL:
    """EHXPLLL settings that make exactly ``f_out`` (Hz, integers) from ``f_in``: CLKOP when
    :func:`ecp5_pll` finds it exactly, else the secondary output CLKOS of a VCO with CLKOP as
    the feedback. Limits as :func:`ecp5_pll`; CLKOP at most 400 MHz.

    Raises
    ------
    BuildError
        No setting makes ``f_out`` exactly, with the numbers.
    """
    try:
        return ecp5_pll(f_in, f_out, tolerance=0.0)
    except BuildError:
        pass
    f_in_i, f_out_i = int(f_in), int(f_out)
    found = []
    for clki_div in range(1, 129):
        if not 3.125 * _MHZ <= f_in / clki_div <= 400 * _MHZ:
            continue
        for clkfb_div in range(1, 81):
            for clkop_div in range(1, 129):
                vco = f_in * clkfb_div * clkop_div / clki_div
                if not 400 * _MHZ <= vco <= 800 * _MHZ or vco / clkop_div > 400 * _MHZ:
                    continue
                # Exact in integers: f_in * fb * op == f_out * clki_div * os.
                os_div, rem = divmod(f_in_i * clkfb_div * clkop_div, f_out_i * clki_div)
                if not rem and 1 <= os_div <= 128:
                    # Highest PFD (least jitter), VCO near the middle, fastest feedback.
                    key = (clki_div, abs(vco - 600 * _MHZ), -vco / clkop_div)
                    found.append((key, ECP5PLL(f_in, f_out, clki_div, clkfb_div, clkop_div,
                                               os_div)))
    if found:
        return min(found, key=lambda f: f[0])[1]
    raise BuildError(f"no ECP5 PLL setting makes exactly {f_out / _MHZ:g} MHz from "
                     f"{f_in / _MHZ:g} MHz (PFD 3.125-400 MHz, VCO 400-800 MHz, "
                     f"dividers up to 128)")


def ecp5_pll(f_in: float, f_out: float, *, tolerance: float = 0.005) -> ECP5PLL:
    """Best EHXPLLL settings for ``f_out`` from ``f_in`` (Hz), feedback from CLKOP.

    Limits (ECP5 sysCLOCK PLL guide, TN1263): PFD 3.125-400 MHz, VCO 400-800 MHz.
    """
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125 * _MHZ <= f_pfd <= 400 * _MHZ:
            continue
        for clkfb_div in range(1, 81):
            out = f_pfd * clkfb_div
            for clkop_div in range(1, 129):
                vco = out * clkop_div
                if not 400 * _MHZ <= vco <= 800 * _MHZ:
                    continue
                key = (abs(out - f_out), abs(vco - 600 * _MHZ))
                if best is None or key < best[0]:
                    best = (key, ECP5PLL(f_in, out, clki_div, clkfb_div, clkop_div))
    if best is None or best[0][0] > tolerance * f_out:
        raise BuildError(f"no ECP5 PLL setting makes {f_out / _MHZ:g} MHz from "
                         f"{f_in / _MHZ:g} MHz within {tolerance:.1%}")
    return best[1]


@dataclass(frozen=True)
class ICE40PLL:
    """SB_PLL40 settings, simple feedback:
    ``f_out = f_in * (divf + 1) / ((divr + 1) * 2**divq)``."""

    f_in: float
    f_out: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    def instance(self, clk_in, clk_out: Signal, locked: Signal, *, pad: bool) -> Instance:
        """``SB_PLL40_PAD`` fed straight from the PLL's clock pad (``clk_in`` an I/O port), or
        ``SB_PLL40_CORE`` fed from a clock net (``clk_in`` a signal)."""
        params = dict(p_FEEDBACK_PATH="SIMPLE", p_DIVR=self.divr, p_DIVF=self.divf,
                      p_DIVQ=self.divq, p_FILTER_RANGE=self.filter_range,
                      i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=clk_out, o_LOCK=locked)
        if pad:
            return Instance("SB_PLL40_PAD", i_PACKAGEPIN=clk_in, **params)
        return Instance("SB_PLL40_CORE", i_REFERENCECLK=clk_in, **params)


def ice40_pll(f_in: float, f_out: float, *, tolerance: float = 0.005) -> ICE40PLL:
    """Best SB_PLL40 settings for ``f_out`` from ``f_in`` (Hz), simple feedback.

    Limits (iCE40 sysCLOCK PLL guide, TN1251): PFD 10-133 MHz, VCO 533-1066 MHz, output
    16-275 MHz.
    """
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 * _MHZ <= f_pfd <= 133 * _MHZ:
            continue
        for divf in range(128):
            vco = f_pfd * (divf + 1)
            if not 533 * _MHZ <= vco <= 1066 * _MHZ:
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                if not 16 * _MHZ <= out <= 275 * _MHZ:
                    continue
                key = abs(out - f_out)
                if best is None or key < best[0]:
                    mhz = f_pfd / _MHZ
                    rng = 1 if mhz < 17 else 2 if mhz < 26 else 3 if mhz < 44 else \
                        4 if mhz < 66 else 5 if mhz < 101 else 6
                    best = (key, ICE40PLL(f_in, out, divr, divf, divq, rng))
    if best is None or best[0] > tolerance * f_out:
        raise BuildError(f"no iCE40 PLL setting makes {f_out / _MHZ:g} MHz from "
                         f"{f_in / _MHZ:g} MHz within {tolerance:.1%} (16-275 MHz)")
    return best[1]


def fastest_exact_clock(family: str, f_in: float, ceiling: float, *,
                        step: float = _MHZ) -> float | None:
    """The fastest multiple of ``step`` (Hz) at or below ``ceiling`` that the ``family``'s PLL
    makes exactly from ``f_in``, or ``f_in`` itself (no PLL) when that is faster; ``None``
    when neither exists above the PLL's lowest output.

    Whole megahertz by default: the UART's divisor and every time the design counts in
    cycles (LED hold, flash clock) stay exact.
    """
    make = ice40_pll if family == "ice40" else ecp5_pll
    f = int(ceiling // step) * step
    while f >= min(f_in, 16 * _MHZ):
        if f == f_in:
            return float(f_in)
        if f >= 16 * _MHZ:  # the lowest output of either family's PLL
            try:
                make(f_in, f, tolerance=0.0)
                return float(f)
            except BuildError:
                pass
        f -= step
    return None
