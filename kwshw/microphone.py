"""Microphone inputs: PDM and I2S MEMS microphones to 16 kHz int16 PCM, every bit defined.

This is the golden model of the gateware in :mod:`kwshw.hw.microphone`: it turns what a
microphone sends on its data pin into the int16 PCM that :mod:`kwshw.features_int` consumes,
with integers only, and the gateware computes the same integers bit for bit. Every width is
derived from the worst case over all inputs and asserted; constants sit in ROMs; rounding is
the contract's one mode, :func:`kwshw.arith.rshift_round` (half up). ``docs/microphones.md``
explains the method and gives the measured response.

PDM (bit 1 = +1, bit 0 = -1), with ``T = R * D`` PDM bits per output sample:

1. CIC decimator (Hogenauer 1981): ``N`` integrators at the PDM rate, decimation by ``R``, ``N``
   combs, all in ``W = N ceil(log2 R) + 1``-bit two's complement (one more bit if ``R`` is a
   power of two) that wraps (the wrap cancels in the combs). CIC output ``m`` is taken after
   PDM bit ``(m + 1) R - 1``; its range is ``[-R^N, R^N]``.
2. ``c = rshift_round(cic, CIC_SHIFT)``, the smallest shift that fits ``HIST_WIDTH`` bits.
3. Compensating FIR at ``16 kHz * D`` that also decimates by ``D``: output ``k`` is
   ``A = sum_t H[t] c[(k + 1) D - 1 - t]`` (``c`` before the first output is 0), ``H`` the
   ``COEF_WIDTH``-bit ROM (a least-squares lowpass with ``1 / CIC`` droop correction).
4. ``pcm = clip(rshift_round(A, FIR_SHIFT), PCM_MIN, PCM_MAX)``: full-scale PDM density
   (all ones) is ``+2^15``, so PCM and PDM density agree as ``pcm / 2^15 = mean(+-1)``.

I2S (INMP441, SPH0645 class): the FPGA drives ``SCK`` and ``WS`` with 64 SCK per frame; the
microphone sends 24-bit two's complement samples MSB first, starting one SCK after the WS
edge, in the left slot (WS low) or the right one. ``pcm = clip(rshift_round(s24, 8), PCM_MIN,
PCM_MAX)``.

:func:`pdm_modulate` is a deterministic integer second-order delta-sigma modulator: it makes
the bit stream a microphone would send for a clip, to drive the pins in simulations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .arith import rshift_round, signed_width
from .features_int import PCM_MAX, PCM_MIN
from .quantize import round_half_up

__all__ = [
    "PCM_RATE",
    "PDM_CLOCK_MIN",
    "PDM_CLOCK_MAX",
    "MIN_DIVISOR",
    "FIR_DECIMATIONS",
    "HIST_WIDTH",
    "COEF_WIDTH",
    "PASS_HZ",
    "STOP_HZ",
    "I2S_SLOT",
    "I2S_FRAME",
    "I2S_BITS",
    "I2S_SHIFT",
    "EXAMPLE_CLOCKS",
    "PDMConfig",
    "PDMDecimator",
    "pdm_config",
    "INTERP_HALF",
    "INTERP_FRAC",
    "pdm_modulate",
    "pdm_delay",
    "cic_response",
    "I2SConfig",
    "i2s_config",
    "i2s_to_pcm",
    "i2s_sd_bits",
    "i2s_receive",
]

#: The output rate, fixed by the front end (:class:`kwshw.features.FeatureConfig`).
PCM_RATE = 16_000
#: PDM clocks that PDM MEMS microphones accept in their normal mode (datasheets give about
#: 1.0 to 3.25 MHz; below it most enter a low-power mode or stop).
PDM_CLOCK_MIN, PDM_CLOCK_MAX = 1_000_000, 3_250_000
#: Fewest system cycles per PDM or SCK bit: each level of the clock lasts at least 2 cycles,
#: so that a sampling point one cycle before the edge and the synchronizer both fit.
MIN_DIVISOR = 4
#: FIR decimations tried by :func:`pdm_config`, best first: 3 puts the CIC output at 48 kHz,
#: where its nulls reject the aliases well and the FIR stays under 100 taps; 5 serves clocks
#: whose ratio to 16 kHz is a power of 5 times a divisor (10, 20, 50, 100 MHz).
FIR_DECIMATIONS = (3, 4, 2, 5)
#: Width of the CIC output after its rounding shift, the FIR's data (one iCE40 BRAM word,
#: and the width of an iCE40 DSP's input).
HIST_WIDTH = 16
#: Width of the signed FIR coefficients (the other DSP input).
COEF_WIDTH = 16
#: Passband edge (flat, droop-corrected) and stopband edge of the FIR. A stopband from
#: ``16 kHz - PASS_HZ`` keeps every alias of the decimation by ``D`` out of the passband.
PASS_HZ, STOP_HZ = 7_000, 9_000
#: I2S framing: SCK cycles per slot and per frame (two slots), data bits per sample.
I2S_SLOT, I2S_FRAME, I2S_BITS = 32, 64, 24
#: Right shift (rounding) from a 24-bit I2S sample to int16 PCM.
I2S_SHIFT = I2S_BITS - 16
#: System clocks (Hz) quoted in error messages as examples that work for PDM.
EXAMPLE_CLOCKS = (12_000_000, 16_000_000, 24_000_000, 36_000_000, 48_000_000)

#: Half length (input samples each side) and fraction bits of :func:`pdm_modulate`'s
#: interpolation filter.
INTERP_HALF, INTERP_FRAC = 32, 14

_INTERP_BETA = 8.0       # Kaiser window of the interpolator
_LS_GRID = 4096          # frequency points of the least-squares FIR design
_STOP_WEIGHT = 30.0      # stopband weight of the design (passband 1)


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:g} MHz"


def _check_pcm_rate(what: str, sys_clk_hz: int, factors: tuple[tuple[str, int], ...]) -> None:
    """Raise unless ``sys_clk_hz`` divided by the product of ``factors`` (``(name, value)``
    pairs) is exactly :data:`PCM_RATE`, naming every factor."""
    total = math.prod(v for _, v in factors)
    if sys_clk_hz != PCM_RATE * total:
        names = " * ".join(n for n, _ in factors)
        values = " * ".join(str(v) for _, v in factors)
        raise ValueError(f"{what} sys_clk / ({names}) = {sys_clk_hz} / ({values}) = "
                         f"{sys_clk_hz / total:.6g} Hz, not exactly {PCM_RATE} Hz")


def _check_int(name: str, value: int, lo: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an integer of at least {lo}, not {value!r}")


@dataclass(frozen=True)
class PDMConfig:
    """Clocks and decimation of a PDM microphone input.

    Parameters
    ----------
    sys_clk_hz : int
        System clock of the gateware, Hz.
    divisor : int
        System cycles per PDM bit: the microphone clock is ``sys_clk_hz / divisor``. At least
        ``max(MIN_DIVISOR, cic_order)`` (the gateware updates the integrators one per cycle).
    cic_decimation : int
        CIC decimation ``R`` (at least 2).
    fir_decimation : int
        FIR decimation ``D``: the CIC output rate is ``16 kHz * D``.
    cic_order : int
        CIC order ``N``: one more than the microphones' (4th order) modulators, so that the
        CIC's nulls push the folded modulator noise below the signal.
    fir_taps : int or None
        Odd number of FIR taps; ``None``: ``32 D - 1``.

    Raises
    ------
    ValueError
        When ``sys_clk_hz / (divisor * R * D)`` is not exactly 16000 or the PDM clock is
        outside ``[PDM_CLOCK_MIN, PDM_CLOCK_MAX]``, naming the numbers.
    """

    sys_clk_hz: int
    divisor: int
    cic_decimation: int
    fir_decimation: int
    cic_order: int = 5
    fir_taps: int | None = None

    def __post_init__(self) -> None:
        _check_int("sys_clk_hz", self.sys_clk_hz, 1)
        _check_int("cic_order", self.cic_order, 1)
        _check_int("divisor", self.divisor, max(MIN_DIVISOR, self.cic_order))
        _check_int("cic_decimation", self.cic_decimation, 2)
        _check_int("fir_decimation", self.fir_decimation, 1)
        if self.fir_taps is None:
            object.__setattr__(self, "fir_taps", 32 * self.fir_decimation - 1)
        _check_int("fir_taps", self.fir_taps, 3)
        if self.fir_taps % 2 == 0:
            raise ValueError(f"fir_taps must be odd (a linear-phase type I FIR), "
                             f"not {self.fir_taps}")
        pdm = self.sys_clk_hz / self.divisor
        if not PDM_CLOCK_MIN <= pdm <= PDM_CLOCK_MAX:
            raise ValueError(
                f"PDM clock sys_clk / divisor = {self.sys_clk_hz} / {self.divisor} = "
                f"{_mhz(pdm)} is outside the {_mhz(PDM_CLOCK_MIN)} to {_mhz(PDM_CLOCK_MAX)} "
                f"that PDM MEMS microphones accept")
        _check_pcm_rate("output rate", self.sys_clk_hz, (("divisor", self.divisor),
                        ("R", self.cic_decimation), ("R_fir", self.fir_decimation)))

    @property
    def pdm_hz(self) -> float:
        """The microphone clock, Hz."""
        return self.sys_clk_hz / self.divisor

    @property
    def decimation(self) -> int:
        """PDM bits per output sample, ``R * D``."""
        return self.cic_decimation * self.fir_decimation

    @property
    def cic_rate(self) -> int:
        """CIC output rate (the FIR's input rate), Hz."""
        return PCM_RATE * self.fir_decimation


def _pdm_candidates(sys_clk_hz: int, cic_order: int) -> list[PDMConfig]:
    """Every valid configuration, lowest total decimation first, then FIR decimation
    preference."""
    found = []
    lo = max(MIN_DIVISOR, cic_order, -(-sys_clk_hz // PDM_CLOCK_MAX))
    for divisor in range(lo, sys_clk_hz // PDM_CLOCK_MIN + 1):
        total, rem = divmod(sys_clk_hz, divisor * PCM_RATE)
        if rem:
            continue
        for rank, d in enumerate(FIR_DECIMATIONS):
            if total % d == 0 and total // d >= 2:
                found.append((total, rank, PDMConfig(sys_clk_hz, divisor, total // d, d,
                                                     cic_order)))
    return [cfg for _, _, cfg in sorted(found, key=lambda f: f[:2])]


def pdm_config(sys_clk_hz: int, cic_order: int = 5) -> PDMConfig:
    """Pick a PDM configuration for a system clock.

    Among the divisors that give a PDM clock the microphones accept and exactly 16 kHz out,
    the one with the lowest PDM clock (fewest bits per sample, at least 63: narrower CIC,
    less microphone power), and the first of :data:`FIR_DECIMATIONS` that divides its
    decimation. 12 MHz gives divisor 10 (1.2 MHz) and ``R * D = 25 * 3``; 24 and 48 MHz give
    1.2 MHz too, 16 MHz gives 1.6 MHz with ``25 * 4``, 10 MHz 2 MHz with ``25 * 5``.

    Raises
    ------
    ValueError
        When no divisor works (e.g. 25 MHz: 25 MHz / 16 kHz = 1562.5 is not an integer).
    """
    _check_int("sys_clk_hz", sys_clk_hz, 1)
    found = _pdm_candidates(sys_clk_hz, cic_order)
    if not found:
        examples = ", ".join(f"{c / 1e6:g}" for c in EXAMPLE_CLOCKS)
        raise ValueError(
            f"no PDM configuration gives exactly {PCM_RATE} Hz from a {_mhz(sys_clk_hz)} "
            f"system clock: it must be {PCM_RATE} Hz x divisor x decimation with a PDM clock "
            f"sys_clk / divisor of {_mhz(PDM_CLOCK_MIN)} to {_mhz(PDM_CLOCK_MAX)} "
            f"(sys_clk / {PCM_RATE} = {sys_clk_hz / PCM_RATE:g}); use e.g. {examples} MHz")
    return found[0]


# --- PDM decimator --------------------------------------------------------------------------

def _wrap(x: np.ndarray, width: int) -> np.ndarray:
    """Two's complement wrap to ``width`` bits, as a register of that width does."""
    half = 1 << (width - 1)
    return ((x + half) & ((1 << width) - 1)) - half


def _fit_shift(bound: int, width: int) -> int:
    """Smallest right shift after which rounding ``[-bound, bound]`` fits ``width`` signed
    bits."""
    shift = 0
    while signed_width(rshift_round(-bound, shift), rshift_round(bound, shift)) > width:
        shift += 1
    return shift


def cic_response(f: np.ndarray, cfg: PDMConfig) -> np.ndarray:
    """Magnitude of the CIC at frequencies ``f`` (Hz, at the PDM rate), DC gain 1."""
    r, x = cfg.cic_decimation, np.pi * np.asarray(f, dtype=np.float64) / cfg.pdm_hz
    small = np.abs(np.sin(x)) < 1e-12
    ratio = np.sin(r * x) / (r * np.where(small, 1.0, np.sin(x)))
    return np.abs(np.where(small, 1.0, ratio)) ** cfg.cic_order


def _design_fir(cfg: PDMConfig) -> np.ndarray:
    """Float taps of the compensating FIR (DC gain 1): a weighted least-squares linear-phase
    lowpass whose passband is ``1 / CIC`` (the droop correction) and stopband 0."""
    fs, half = cfg.cic_rate, (cfg.fir_taps - 1) // 2
    f = np.linspace(0.0, fs / 2, _LS_GRID)
    pb, sb = f <= PASS_HZ, f >= STOP_HZ
    grid = np.concatenate([f[pb], f[sb]])
    want = np.concatenate([1.0 / cic_response(f[pb], cfg), np.zeros(int(sb.sum()))])
    weight = np.concatenate([np.ones(int(pb.sum())), np.full(int(sb.sum()), _STOP_WEIGHT)])
    basis = np.cos(2 * np.pi * np.outer(grid / fs, np.arange(half + 1)))
    basis[:, 1:] *= 2           # a[k] stands for the two symmetric taps half +- k
    a = np.linalg.lstsq(basis * weight[:, None], want * weight, rcond=None)[0]
    h = np.concatenate([a[:0:-1], a])
    return h / h.sum()


@dataclass(frozen=True, eq=False)
class PDMDecimator:
    """The PDM decimator of a configuration: derived widths, shifts, the FIR ROM, and the
    golden model :meth:`__call__`.

    Attributes
    ----------
    cfg : PDMConfig
    cic_width : int
        Integrator and comb width ``W = N ceil(log2 R) + 1`` (Hogenauer's growth on the
        ``+-1`` input; one more bit when ``R`` is a power of two).
    cic_shift : int
        Rounding shift of the CIC output to ``HIST_WIDTH`` bits.
    coefs : numpy.ndarray
        ``int64`` FIR ROM, ``fir_taps`` entries of ``COEF_WIDTH`` bits (symmetric).
    fir_shift : int
        Final rounding shift; with it ``R^N 2^-cic_shift sum(coefs) 2^-fir_shift = 2^15``
        up to the rounding of the sum.
    acc_width : int
        Width of the FIR accumulator (signed), from the L1 bound of the taps.
    """

    cfg: PDMConfig
    cic_width: int = field(init=False)
    cic_shift: int = field(init=False)
    coefs: np.ndarray = field(init=False, repr=False)
    fir_shift: int = field(init=False)
    acc_width: int = field(init=False)

    def __post_init__(self) -> None:
        n, r = self.cfg.cic_order, self.cfg.cic_decimation
        # Hogenauer: N log2 R bits of growth. The +-1 input spans [-R^N, R^N], which fits
        # N ceil(log2 R) + 1 bits, plus one when R is a power of two (then R^N = 2^(N log2 R)).
        width = n * math.ceil(math.log2(r)) + 1 + (r & (r - 1) == 0)
        assert signed_width(-r ** n, r ** n) <= width, "Hogenauer width too small"
        shift = _fit_shift(r ** n, HIST_WIDTH)
        coefs, fir_shift = self._quantize(_design_fir(self.cfg), r ** n, shift)
        set_ = object.__setattr__
        set_(self, "cic_width", width)
        set_(self, "cic_shift", shift)
        set_(self, "coefs", coefs)
        set_(self, "fir_shift", fir_shift)
        lo, hi = self.acc_bounds
        set_(self, "acc_width", signed_width(lo, hi))

    @staticmethod
    def _quantize(h: np.ndarray, gain: int, cic_shift: int) -> tuple[np.ndarray, int]:
        """Integer taps with the largest shift that fits ``COEF_WIDTH`` bits; the centre tap
        takes the rounding of the sum so that the DC gain is exact to one part in the sum."""
        cmax = (1 << (COEF_WIDTH - 1)) - 1
        best = None
        for shift in range(1, 64):
            target = (1 << (shift + 15 + cic_shift)) / gain
            q = round_half_up(h * target).astype(np.int64)
            q[len(q) // 2] += int(round_half_up(target)) - int(q.sum())
            if np.abs(q).max() > cmax:
                break
            best = (q, shift)
        assert best is not None, "FIR coefficients do not fit COEF_WIDTH"
        return best

    @property
    def hist_bounds(self) -> tuple[int, int]:
        """Range of the rounded CIC output ``c``."""
        g = self.cfg.cic_decimation ** self.cfg.cic_order
        return rshift_round(-g, self.cic_shift), rshift_round(g, self.cic_shift)

    @property
    def acc_bounds(self) -> tuple[int, int]:
        """Range of the FIR accumulator over every input (and every partial sum)."""
        lo, hi = self.hist_bounds
        pos = int(self.coefs[self.coefs > 0].sum())
        neg = int(self.coefs[self.coefs < 0].sum())
        return pos * lo + neg * hi, pos * hi + neg * lo

    def response(self, f: np.ndarray) -> np.ndarray:
        """Magnitude of the whole decimator for an input tone at ``f`` Hz (before the last
        decimation, so a tone above 8 kHz gives the level of its alias), DC gain 1."""
        f = np.asarray(f, dtype=np.float64)
        taps = np.arange(len(self.coefs)) - (len(self.coefs) - 1) // 2
        fir = np.cos(2 * np.pi * np.outer(f / self.cfg.cic_rate, taps)) @ self.coefs
        return cic_response(f, self.cfg) * np.abs(fir) / self.coefs.sum()

    def alias_rejection(self, grid: int = 200_000) -> float:
        """Worst level (dB, negative) of a tone at or above ``16 kHz - PASS_HZ`` whose alias
        lands in the passband ``0 .. PASS_HZ`` of the 16 kHz output."""
        f = np.linspace(PCM_RATE - PASS_HZ, self.cfg.pdm_hz / 2, grid)
        folded = np.abs(f - PCM_RATE * np.round(f / PCM_RATE))
        return float(20 * np.log10(self.response(f[folded <= PASS_HZ]).max()))

    def passband_ripple(self, grid: int = 1401) -> tuple[float, float]:
        """Lowest and highest level (dB) of the decimator from 0 to ``PASS_HZ``."""
        db = 20 * np.log10(self.response(np.linspace(0.0, PASS_HZ, grid)))
        return float(db.min()), float(db.max())

    def cic(self, bits: np.ndarray) -> np.ndarray:
        """CIC outputs (``int64``, in ``[-R^N, R^N]``) of a PDM bit stream; one per ``R``
        bits, incomplete blocks at the end are dropped."""
        n, r, w = self.cfg.cic_order, self.cfg.cic_decimation, self.cic_width
        x = 2 * np.asarray(bits, dtype=np.int64) - 1
        if x.ndim != 1 or np.any(np.abs(x) != 1):
            raise ValueError("PDM bits must be a 1-D array of 0 and 1")
        assert w + len(x).bit_length() < 63, "clip too long for exact int64 integrators"
        for _ in range(n):
            x = _wrap(np.cumsum(x), w)            # integrators, wrapping like registers
        y = x[r - 1::r]
        for _ in range(n):
            y = _wrap(y - np.concatenate([[0], y[:-1]]), w)   # combs
        g = r ** n
        assert np.all(np.abs(y) <= g), "CIC output outside [-R^N, R^N]"
        return y

    def fir(self, c: np.ndarray) -> np.ndarray:
        """Accumulators ``A`` of the decimating FIR on rounded CIC outputs ``c``."""
        d = self.cfg.fir_decimation
        full = np.convolve(np.asarray(c, dtype=np.int64), self.coefs)
        acc = full[d - 1:len(c):d]
        lo, hi = self.acc_bounds
        assert np.all((acc >= lo) & (acc <= hi))
        return acc

    def __call__(self, bits: np.ndarray) -> np.ndarray:
        """int16-range PCM (``int64``) of a PDM bit stream: one sample per ``R * D`` bits.

        Parameters
        ----------
        bits : numpy.ndarray
            PDM bits (0 or 1) as the receiver samples them, the first after reset first.
        """
        c = rshift_round(self.cic(bits), self.cic_shift)
        acc = self.fir(c)
        return np.clip(rshift_round(acc, self.fir_shift), PCM_MIN, PCM_MAX)


def pdm_delay(cfg: PDMConfig) -> float:
    """Delay of the decimator's output behind :func:`pdm_modulate`'s input, in output samples.

    Output ``k`` follows PDM bit ``(k + 1) T - 1``; the CIC delays by ``N (R - 1) / 2`` bits
    and the FIR by ``(taps - 1) / 2`` CIC samples; input sample ``n`` is at bit ``n T``, and
    the modulator delays by 2 bits.
    """
    t, r = cfg.decimation, cfg.cic_decimation
    group = cfg.cic_order * (r - 1) / 2 + r * (cfg.fir_taps - 1) / 2 + 2
    return (group + 1) / t - 1


def _interp_rom(t: int) -> np.ndarray:
    """Integer taps (``INTERP_FRAC`` fraction bits) of the ``T``-fold interpolator: a Kaiser
    (beta 8) windowed sinc cut at 8 kHz spanning ``2 INTERP_HALF + 1`` input samples."""
    i = np.arange(-INTERP_HALF * t, INTERP_HALF * t + 1)
    h = np.sinc(i / t) * np.kaiser(len(i), _INTERP_BETA)
    return round_half_up(h * (1 << INTERP_FRAC)).astype(np.int64)


def _upsample(x: np.ndarray, t: int) -> np.ndarray:
    """``u[n T + j] = sum_k H[k T + j + K T] x[n - k]`` (``K = INTERP_HALF``, zeros outside
    the clip), in units of ``2^-INTERP_FRAC`` PCM LSB: one integer convolution per phase."""
    k = INTERP_HALF
    h = np.concatenate([_interp_rom(t), np.zeros(t, dtype=np.int64)])
    xp = np.concatenate([np.zeros(k, dtype=np.int64), x, np.zeros(k, dtype=np.int64)])
    u = np.empty((len(x), t), dtype=np.int64)
    for j in range(t):
        u[:, j] = np.convolve(xp, h[j::t][:2 * k + 1], "valid")
    return u.reshape(-1)


def pdm_modulate(pcm: np.ndarray, cfg: PDMConfig) -> np.ndarray:
    """The PDM bits (``uint8``) a microphone would send for 16 kHz PCM, ``T`` per sample.

    The PCM is interpolated to the PDM rate by an integer polyphase windowed-sinc filter
    (sample ``n`` at bit ``n T``; flat to 7.4 kHz, images from 8.6 kHz down by 80 dB; linear
    interpolation would lose 6 dB at 7 kHz) and modulated by the classic integer second-order
    loop: bit ``= B >= 0``, ``y = +-FS``, ``A += u - y``, ``B += A_old - 2 y``, full scale
    ``FS = 2^(15 + INTERP_FRAC)``, so the bits are ``z^-2 u + (1 - z^-1)^2 e``. ``A`` and ``B``
    are clipped to ``4 FS`` and ``16 FS``, which only acts on overload and keeps the loop
    bounded. Deterministic: the same PCM gives the same bits everywhere. The loop is pure
    Python: about 1.5 s per second of audio at 1.2 MHz.
    """
    x = np.asarray(pcm, dtype=np.int64)
    if x.ndim != 1 or x.size == 0 or x.min() < PCM_MIN or x.max() > PCM_MAX:
        raise ValueError("pdm_modulate expects non-empty 1-D int16-range PCM")
    u = _upsample(x, cfg.decimation).tolist()
    fs = 1 << (15 + INTERP_FRAC)
    amax, bmax = 4 * fs, 16 * fs
    a = b = 0
    out = bytearray(len(u))
    for i, ui in enumerate(u):
        y = fs if b >= 0 else -fs
        out[i] = b >= 0
        a, b = min(max(a + ui - y, -amax), amax), min(max(b + a - 2 * y, -bmax), bmax)
    return np.frombuffer(bytes(out), dtype=np.uint8).copy()


# --- I2S -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class I2SConfig:
    """Clocks of an I2S microphone input: SCK ``= sys_clk_hz / divisor``, 64 SCK per frame.

    Raises
    ------
    ValueError
        When ``sys_clk_hz / (divisor * 64)`` is not exactly 16000 Hz or the divisor is below
        :data:`MIN_DIVISOR`.
    """

    sys_clk_hz: int
    divisor: int

    def __post_init__(self) -> None:
        _check_int("sys_clk_hz", self.sys_clk_hz, 1)
        _check_int("divisor", self.divisor, MIN_DIVISOR)
        _check_pcm_rate("I2S sample rate", self.sys_clk_hz,
                        (("divisor", self.divisor), (str(I2S_FRAME), I2S_FRAME)))

    @property
    def sck_hz(self) -> float:
        """The bit clock, Hz (1.024 MHz)."""
        return self.sys_clk_hz / self.divisor


def i2s_config(sys_clk_hz: int) -> I2SConfig:
    """The I2S configuration of a system clock: divisor ``sys_clk_hz / 1.024 MHz``.

    Raises
    ------
    ValueError
        When the clock is not a multiple of ``64 * 16 kHz = 1.024 MHz`` (12, 24 and 48 MHz
        are not: use 12.288, 16.384, 24.576 or 49.152 MHz), or is below ``4 * 1.024 MHz``.
    """
    _check_int("sys_clk_hz", sys_clk_hz, 1)
    sck = I2S_FRAME * PCM_RATE
    if sys_clk_hz % sck or sys_clk_hz // sck < MIN_DIVISOR:
        raise ValueError(
            f"I2S at exactly {PCM_RATE} Hz with {I2S_FRAME} SCK per frame needs a system clock "
            f"that is a multiple of {_mhz(sck)} (at least {MIN_DIVISOR}x): "
            f"{_mhz(sys_clk_hz)} / {_mhz(sck)} = {sys_clk_hz / sck:g}; "
            f"use e.g. 12.288, 16.384, 24.576 or 49.152 MHz")
    return I2SConfig(sys_clk_hz, sys_clk_hz // sck)


def i2s_to_pcm(s24):
    """int16 PCM of 24-bit I2S samples: ``clip(rshift_round(s24, 8), PCM_MIN, PCM_MAX)``
    (only ``2^23 - 128`` and above saturate)."""
    y = rshift_round(s24, I2S_SHIFT)
    if isinstance(y, int):
        return min(max(y, PCM_MIN), PCM_MAX)
    return np.clip(y, PCM_MIN, PCM_MAX)


def _slot_base(channel: str) -> int:
    if channel not in ("left", "right"):
        raise ValueError(f"channel must be 'left' or 'right', not {channel!r}")
    return 0 if channel == "left" else I2S_SLOT


def i2s_sd_bits(samples: np.ndarray, channel: str = "left") -> np.ndarray:
    """The SD bit (``uint8``) of every SCK cycle from reset, as the receiver samples it.

    Frame ``f`` is SCK cycles ``64 f .. 64 f + 63``; WS is low (left slot) in the first 32.
    Sample ``f`` (24-bit two's complement, MSB first) occupies cycles ``1 .. 24`` of its
    slot; every other cycle reads 0 (the microphone tri-states, a pull-down holds SD low).
    """
    s = np.asarray(samples, dtype=np.int64)
    if s.ndim != 1 or s.min(initial=0) < -(1 << 23) or s.max(initial=0) >= (1 << 23):
        raise ValueError("I2S samples must be 1-D 24-bit two's complement integers")
    out = np.zeros((len(s), I2S_FRAME), dtype=np.uint8)
    base = _slot_base(channel) + 1
    for j in range(I2S_BITS):
        out[:, base + j] = (s >> (I2S_BITS - 1 - j)) & 1
    return out.reshape(-1)


def i2s_receive(sd: np.ndarray, channel: str = "left") -> np.ndarray:
    """Golden I2S receiver: int16 PCM (``int64``) of the SD bits of every SCK cycle, one
    sample per complete frame."""
    bits = np.asarray(sd, dtype=np.int64)
    frames = bits[:len(bits) // I2S_FRAME * I2S_FRAME].reshape(-1, I2S_FRAME)
    base = _slot_base(channel) + 1
    word = np.zeros(len(frames), dtype=np.int64)
    for j in range(I2S_BITS):
        word = (word << 1) | frames[:, base + j]
    s24 = word - ((word >> (I2S_BITS - 1)) << I2S_BITS)
    return i2s_to_pcm(s24)
