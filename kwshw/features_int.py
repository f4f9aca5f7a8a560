"""The integer front end: 16-bit PCM to the accelerator's input frames, every bit defined.

This is the golden model of a front end that gateware can implement bit for bit. It computes
the float front end of :mod:`kwshw.features` (``docs/features.md`` sections 2-3) and the input
conversion :func:`kwshw.quantize.features_to_int` with integers only: each stage's result is
an integer in a stated fixed-point format, rounded with the contract's one rounding mode
(:func:`kwshw.arith.rshift_round`, round half up), and each stage's range is *derived* from
the worst case over all int16 inputs (:meth:`IntFrontEnd.bounds`), so nothing can overflow.
``docs/arithmetic.md`` section 11 derives every width and gives the measured error.

The stages (``s`` the int16 samples; units in brackets):

1. Framing as :mod:`kwshw.features`: frame ``t`` is ``s[t hop : t hop + win]``, a clip
   shorter than one window is zero-padded to one frame.
2. Window: ``x[n] = rshift_round(s[n] W[n], WINDOW_FRAC - DATA_FRAC)`` with the periodic Hann
   window in a ROM ``W[n] = round(w[n] 2^WINDOW_FRAC)`` [``2^-DATA_FRAC`` PCM LSB].
3. FFT: radix-2 decimation in time on ``n_fft`` points (bit-reversed input, ``log2 n_fft``
   stages of butterflies ``a + t, a - t`` with ``t = rshift_round(b * Wk, TWIDDLE_FRAC)``,
   one rounding per real and imaginary part, the twiddles ``Wk = round(exp(-2 pi i k / n_fft)
   2^TWIDDLE_FRAC)`` from a ROM). There is no scaling between stages: the magnitude of every
   intermediate is bounded by the sum of the ``|x[n]|`` it combines (plus the rounding errors,
   both propagated stage by stage in :meth:`IntFrontEnd.bounds`), which the widths hold.
   Keeping the growth instead of halving at each stage keeps the quiet frames (a few LSB of
   PCM) exact enough for the logarithm.
4. Power: ``P[k] = rshift_round(Re^2 + Im^2, 2 DATA_FRAC - POWER_FRAC)``
   [``2^-POWER_FRAC`` PCM LSB^2], ``k = 0 .. n_fft / 2``.
5. Mel: ``E[m] = rshift_round(sum_k H[k, m] P[k], MEL_FRAC)`` over the band's non-zero bins,
   ``H = round(mel_filterbank(cfg) 2^MEL_FRAC)`` [``2^-POWER_FRAC`` PCM LSB^2].
6. Log: the float front end's energies are those of samples in ``[-1, 1)``, i.e. PCM /
   2^15, so ``E_float = E 2^-(30 + POWER_FRAC)``. ``E' = max(E, 1)``; ``p`` = position of the
   leading one of ``E'``; the ``LOG_INDEX + LOG_INTERP`` bits below it (truncated) split into
   a table index ``i`` and an interpolation fraction ``r``; ``ln(E'_float) = (p - 30 -
   POWER_FRAC) ln 2 + ln(1 + f)`` with ``ln(1 + f)`` linearly interpolated in a
   ``2^LOG_INDEX + 1`` entry table, rounded to ``L`` [``2^-LOG_FRAC`` nat], signed. The floor
   is applied in the log domain, ``L = max(L, LN_FLOOR)`` with ``LN_FLOOR = round(ln(log_floor)
   2^LOG_FRAC)``: the same as flooring the energy (the log is monotonic), and exact, where a
   floor in the energy format would be off by up to half its LSB (2e-4 nat for 1e-6).
7. Smoothing: ``Ls[t] = rshift_round(S R[n], SMOOTH_FRAC)``, ``S`` the sum of the last ``n =
   min(smooth, t + 1)`` frames ``L``, ``R[n] = round(2^SMOOTH_FRAC / n)`` [``2^-LOG_FRAC``].
8. Normalization and input format: ``X = clip(rshift_round((Ls - MU[m]) G[m], NORM_SHIFT),
   ACT_MIN, ACT_MAX)`` with ``MU = round(mean 2^LOG_FRAC)`` and ``G = round(2^(in_frac -
   LOG_FRAC + NORM_SHIFT) / std)`` [``2^-in_frac``], as :func:`kwshw.quantize.features_to_int`
   rounds half up and saturates.

Offline constants (ROMs) are computed from floats with
:func:`kwshw.quantize.round_half_up`; from then on everything is integer. The streaming form
(:class:`IntFrontEndStream`) takes one hop of samples at a time and gives the batch form's
integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .arith import ACT_MAX, ACT_MIN, rshift_round, signed_width, unsigned_width
from .features import FeatureConfig, Normalizer, hann_window, mel_filterbank
from .quantize import round_half_up

__all__ = [
    "PCM_MIN",
    "PCM_MAX",
    "WINDOW_FRAC",
    "DATA_FRAC",
    "TWIDDLE_FRAC",
    "POWER_FRAC",
    "MEL_FRAC",
    "LOG_INDEX",
    "LOG_INTERP",
    "LOG_TABLE_FRAC",
    "LOG_FRAC",
    "SMOOTH_FRAC",
    "NORM_WIDTH",
    "MAX_SMOOTH",
    "MAX_WIDTH",
    "Bound",
    "IntFrontEnd",
    "IntFrontEndStream",
    "IntNormalizer",
    "pcm_from_float",
]

#: Range of the input samples: signed 16-bit PCM.
PCM_MIN, PCM_MAX = -(1 << 15), (1 << 15) - 1
#: Fraction bits of the window ROM: ``W[n] <= 2^20`` (21 bits unsigned). 16 bits leave a
#: window-error floor about 100 dB below a loud band, which is 0.02 nat in a band at the log
#: floor of the same frame (speech frames span 20 nat); 20 bits bring it below the FFT's noise.
WINDOW_FRAC = 20
#: Fraction bits (below one PCM LSB) of the windowed samples and of every FFT value. The FFT's
#: rounding noise (a few LSB) must stay far below the quietest band above the log floor (about
#: 33 PCM LSB of amplitude); 8 is the most that keeps the power (``(2^31)^2``) in 62 bits.
DATA_FRAC = 8
#: Fraction bits of the twiddle ROM: ``|C|, |S| <= 2^20`` (22 bits signed), for the same
#: reason as the window: twiddle errors spread a loud bin's energy over all others.
TWIDDLE_FRAC = 20
#: Fraction bits (below one PCM LSB^2) of the power spectrum and the mel energies; 2 would
#: make the mel accumulator 63 bits.
POWER_FRAC = 1
#: Fraction bits of the mel weights: ``H <= 2^14`` (15 bits unsigned).
MEL_FRAC = 14
#: Index bits of the log table (``2^LOG_INDEX + 1`` entries of ``ln(1 + i 2^-LOG_INDEX)``).
LOG_INDEX = 8
#: Mantissa bits below the index, used for linear interpolation between two table entries.
LOG_INTERP = 12
#: Fraction bits of the log table and of ``ln 2`` (in nat), before the final rounding.
LOG_TABLE_FRAC = 24
#: Fraction bits of the integer log-mel energies (nat), unsmoothed and smoothed.
LOG_FRAC = 16
#: Fraction bits of the smoothing reciprocals ``R[n] = round(2^SMOOTH_FRAC / n)``.
SMOOTH_FRAC = 24
#: Width (unsigned) of the normalization gains ``G[m]``: the shift is chosen to fill it. With
#: 18 bits the gain's rounding alone changes 0.3% more codes on speech than with 24.
NORM_WIDTH = 24
#: Largest ``smooth`` supported (the smoothing history is ``smooth - 1`` frames of memory).
MAX_SMOOTH = 16
#: Widest intermediate allowed: the golden model's int64 arithmetic is exact below 63 bits.
MAX_WIDTH = 62

_LN2 = math.log(2.0)
#: PCM to the float front end's samples: ``audio = pcm 2^-15``, so energies scale by 2^-30.
_PCM_POWER_SHIFT = 30


def pcm_from_float(audio: np.ndarray) -> np.ndarray:
    """int16-range PCM from samples in ``[-1, 1]`` (as :func:`kwshw.audio.load_audio` gives).

    ``clip(round_half_up(audio 2^15), PCM_MIN, PCM_MAX)`` as ``int64``: exact for audio read
    from 16-bit files (libsndfile scales by ``2^-15``); ``+1.0`` saturates to ``PCM_MAX``.

    Parameters
    ----------
    audio : numpy.ndarray
        1-D float samples.

    Returns
    -------
    numpy.ndarray
        ``int64`` samples in ``[PCM_MIN, PCM_MAX]``.
    """
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim != 1 or not np.all(np.isfinite(a)):
        raise ValueError("pcm_from_float expects 1-D finite audio")
    return np.clip(round_half_up(a * 32768.0), PCM_MIN, PCM_MAX)


@dataclass(frozen=True)
class Bound:
    """The derived range of one intermediate: ``lo <= value <= hi`` for every int16 input."""

    lo: int
    hi: int

    @property
    def width(self) -> int:
        """Bits of a two's complement (or, for ``lo >= 0``, unsigned) register holding it."""
        return unsigned_width(self.hi) if self.lo >= 0 else signed_width(self.lo, self.hi)

    @property
    def signed(self) -> bool:
        return self.lo < 0


def _sym(m: float) -> Bound:
    """``[-ceil(m), ceil(m)]``."""
    # The bounds are evaluated in float64 on numbers below 2^63: a relative margin of 1e-12
    # covers its rounding.
    c = math.ceil(m * (1 + 1e-12))
    return Bound(-c, c)


def _check_config(cfg: FeatureConfig) -> None:
    """The configurations the integer front end is defined for (``ValueError`` otherwise)."""
    n = cfg.n_fft
    if n < 2 or n & (n - 1):
        raise ValueError(f"integer front end: n_fft must be a power of two >= 2, got {n}")
    if not 0 < cfg.win_length <= n or cfg.hop_length <= 0:
        raise ValueError(f"integer front end: need 0 < win_length <= n_fft and hop_length > 0, "
                         f"got win_length={cfg.win_length}, hop_length={cfg.hop_length}")
    if not isinstance(cfg.smooth, int) or not 1 <= cfg.smooth <= MAX_SMOOTH:
        raise ValueError(f"integer front end: smooth must be 1..{MAX_SMOOTH}, got "
                         f"{cfg.smooth!r}")
    floor = round_half_up(cfg.log_floor * 2.0 ** (_PCM_POWER_SHIFT + POWER_FRAC))
    if floor < 1:
        raise ValueError(f"integer front end: log_floor={cfg.log_floor} is below one LSB of "
                         f"the energy format (2^-{_PCM_POWER_SHIFT + POWER_FRAC})")


def _bit_reverse(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev


def _leading_one(x: np.ndarray) -> np.ndarray:
    """Position of the leading one of positive int64 values (a priority encoder), in integers."""
    p = np.zeros(x.shape, dtype=np.int64)
    for b in (32, 16, 8, 4, 2, 1):
        up = (x >> (p + b)) > 0
        p = p + b * up
    return p


@dataclass(frozen=True, eq=False)
class IntFrontEnd:
    """The integer front end of one feature configuration (and, for :meth:`frames`, one
    model's normalization and input format).

    Parameters
    ----------
    cfg : FeatureConfig
        The float front end it reproduces (window, hop, FFT size, filterbank, floor, smooth).
    normalizer : Normalizer, optional
        Per-band mean/std of the model; needed by :meth:`frames` only.
    in_frac : int, default 11
        Fraction bits of the network input (``model.in_frac``).

    Attributes
    ----------
    window : numpy.ndarray
        ``int64 (win_length,)`` Hann ROM, ``round(w 2^WINDOW_FRAC)``.
    twiddle_re, twiddle_im : numpy.ndarray
        ``int64 (n_fft / 2,)`` ROMs ``round(cos(2 pi k / n) 2^TWIDDLE_FRAC)`` and
        ``round(-sin(2 pi k / n) 2^TWIDDLE_FRAC)``.
    mel_weights : numpy.ndarray
        ``int64 (n_fft / 2 + 1, n_mels)`` quantized filterbank (sparse: zero outside
        ``mel_lo[m] <= k < mel_hi[m]``).
    mel_lo, mel_hi : numpy.ndarray
        ``int64 (n_mels,)`` first and one-past-last non-zero bin of each band.
    log_table : numpy.ndarray
        ``int64 (2^LOG_INDEX + 1,)`` ``round(ln(1 + i 2^-LOG_INDEX) 2^LOG_TABLE_FRAC)``.
    ln2 : int
        ``round(ln 2 2^LOG_TABLE_FRAC)``.
    log_floor : int
        ``LN_FLOOR = round(ln(cfg.log_floor) 2^LOG_FRAC)``, the floor of :meth:`log`.
    smooth_recip : numpy.ndarray
        ``int64 (smooth + 1,)``: ``R[n] = round(2^SMOOTH_FRAC / n)`` (``R[0]`` unused, 0).
    norm_mean : numpy.ndarray or None
        ``int64 (n_mels,)`` ``MU = round(mean 2^LOG_FRAC)``.
    norm_gain : numpy.ndarray or None
        ``int64 (n_mels,)`` ``G = round(2^(in_frac - LOG_FRAC + norm_shift) / std)``,
        ``< 2^NORM_WIDTH``.
    norm_shift : int or None
        Right shift of ``(Ls - MU) G`` to the input format, the largest that keeps every ``G``
        within ``NORM_WIDTH`` bits.
    bounds : dict of str to Bound
        The derived range of every intermediate (:meth:`widths` gives the register widths).
    """

    cfg: FeatureConfig = field(default_factory=FeatureConfig)
    normalizer: Normalizer | None = None
    in_frac: int = 11
    window: np.ndarray = field(init=False, repr=False)
    twiddle_re: np.ndarray = field(init=False, repr=False)
    twiddle_im: np.ndarray = field(init=False, repr=False)
    mel_weights: np.ndarray = field(init=False, repr=False)
    mel_lo: np.ndarray = field(init=False, repr=False)
    mel_hi: np.ndarray = field(init=False, repr=False)
    log_table: np.ndarray = field(init=False, repr=False)
    ln2: int = field(init=False, repr=False)
    log_floor: int = field(init=False, repr=False)
    smooth_recip: np.ndarray = field(init=False, repr=False)
    norm_mean: np.ndarray | None = field(init=False, repr=False)
    norm_gain: np.ndarray | None = field(init=False, repr=False)
    norm_shift: int | None = field(init=False, repr=False)
    bounds: dict = field(init=False, repr=False)

    # --- construction --------------------------------------------------------------------

    def __post_init__(self) -> None:
        cfg = self.cfg
        _check_config(cfg)
        fb = mel_filterbank(cfg)  # also checks the rest of the configuration
        n = cfg.n_fft
        k = np.arange(n // 2)
        roms = {
            "window": round_half_up(hann_window(cfg.win_length) * 2.0**WINDOW_FRAC),
            "twiddle_re": round_half_up(np.cos(2 * np.pi * k / n) * 2.0**TWIDDLE_FRAC),
            "twiddle_im": round_half_up(-np.sin(2 * np.pi * k / n) * 2.0**TWIDDLE_FRAC),
            "mel_weights": round_half_up(fb * 2.0**MEL_FRAC),
            "log_table": round_half_up(
                np.log1p(np.arange((1 << LOG_INDEX) + 1) / 2.0**LOG_INDEX)
                * 2.0**LOG_TABLE_FRAC),
        }
        h = roms["mel_weights"]
        if np.any(h.max(axis=0) <= 0):
            raise ValueError("integer front end: a mel band has no weight left after rounding "
                             f"to {MEL_FRAC} fraction bits")
        nz = h > 0
        lo = nz.argmax(axis=0)
        hi = h.shape[0] - nz[::-1].argmax(axis=0)
        roms["mel_lo"], roms["mel_hi"] = lo.astype(np.int64), hi.astype(np.int64)
        recip = np.zeros(cfg.smooth + 1, dtype=np.int64)
        recip[1:] = round_half_up(2.0**SMOOTH_FRAC / np.arange(1, cfg.smooth + 1))
        roms["smooth_recip"] = recip
        for name, rom in roms.items():
            rom = np.ascontiguousarray(rom, dtype=np.int64)
            rom.setflags(write=False)
            object.__setattr__(self, name, rom)
        object.__setattr__(self, "ln2", int(round_half_up(_LN2 * 2.0**LOG_TABLE_FRAC)))
        object.__setattr__(self, "log_floor", int(round_half_up(
            math.log(cfg.log_floor) * 2.0**LOG_FRAC)))
        mu = gain = shift = None
        if self.normalizer is not None:
            mu, gain, shift = self._norm_constants(self.normalizer)
        object.__setattr__(self, "norm_mean", mu)
        object.__setattr__(self, "norm_gain", gain)
        object.__setattr__(self, "norm_shift", shift)
        bounds = self._derive_bounds()
        wide = {k: b.width for k, b in bounds.items() if b.width > MAX_WIDTH}
        if wide:
            raise ValueError(f"integer front end: intermediates wider than {MAX_WIDTH} bits "
                             f"for this configuration: {wide}")
        object.__setattr__(self, "bounds", bounds)

    def _norm_constants(self, norm: Normalizer) -> tuple[np.ndarray, np.ndarray, int]:
        if norm.n_mels != self.cfg.n_mels:
            raise ValueError(f"normalizer has {norm.n_mels} bands, the configuration "
                             f"{self.cfg.n_mels}")
        mu = round_half_up(norm.mean * 2.0**LOG_FRAC)
        # The largest shift that keeps every gain below 2^NORM_WIDTH (after rounding).
        shift = int(math.floor(NORM_WIDTH - 1 - math.log2(2.0 ** (self.in_frac - LOG_FRAC)
                                                          / float(norm.std.min()))))
        while True:
            gain = round_half_up(2.0 ** (self.in_frac - LOG_FRAC + shift) / norm.std)
            if gain.max() < (1 << NORM_WIDTH):
                break
            shift -= 1
        for a in (mu, gain):
            a.setflags(write=False)
        return mu, gain, shift

    @classmethod
    def from_model(cls, model) -> IntFrontEnd:
        """The front end of a :class:`kwshw.modelfile.Model`: its feature configuration,
        normalization (``norm_mean``, ``norm_std``) and ``in_frac``."""
        norm = Normalizer(mean=np.asarray(model.norm_mean, np.float64),
                          std=np.asarray(model.norm_std, np.float64))
        return cls(model.features, norm, int(model.in_frac))

    # --- derived ranges ------------------------------------------------------------------

    def _derive_bounds(self) -> dict[str, Bound]:
        """Range of every intermediate over all int16 inputs (see docs/arithmetic.md s. 11).

        The FFT is bounded position by position: ``sig[j]`` bounds the modulus of the exact
        partial DFT at position ``j`` (the sum of the ``|x[n]|`` it combines), ``err[j]`` the
        modulus of the accumulated rounding error; a butterfly gives ``sig_a + sig_b`` and
        ``err_a + err_b |Wk| + sig_b |Wk - exp(..)| + sqrt(2)/2`` (exact, and 0 error, for
        ``Wk = 1``). Real and imaginary parts are each bounded by the modulus.
        """
        cfg = self.cfg
        n = cfg.n_fft
        b: dict[str, Bound] = {"pcm": Bound(PCM_MIN, PCM_MAX)}
        w = self.window
        b["window_product"] = Bound(PCM_MIN * int(w.max()), PCM_MAX * int(w.max()))
        sh = WINDOW_FRAC - DATA_FRAC
        x_lo = [int(rshift_round(PCM_MIN * int(v), sh)) for v in w]
        x_hi = [int(rshift_round(PCM_MAX * int(v), sh)) for v in w]
        b["x"] = Bound(min(x_lo), max(x_hi))
        xmax = np.maximum(-np.array(x_lo, dtype=float), np.array(x_hi, dtype=float))
        x_abs = np.zeros(n)
        x_abs[: cfg.win_length] = xmax
        sig = x_abs[_bit_reverse(n)]
        err = np.zeros(n)
        scale = 2.0**TWIDDLE_FRAC
        wre, wim = self.twiddle_re.astype(float), self.twiddle_im.astype(float)
        wabs = np.hypot(wre, wim) / scale
        kk = np.arange(n // 2)
        wdev = np.hypot(wre / scale - np.cos(2 * np.pi * kk / n),
                        wim / scale + np.sin(2 * np.pi * kk / n))
        half = 1
        stage = 0
        prod = 0.0
        while half < n:
            stage += 1
            s2 = sig.reshape(-1, 2, half)
            e2 = err.reshape(-1, 2, half)
            tw = np.arange(half) * (n // (2 * half))
            exact = tw == 0
            t_sig = s2[:, 1, :]
            t_err = np.where(exact, e2[:, 1, :],
                             e2[:, 1, :] * wabs[tw] + s2[:, 1, :] * wdev[tw] + math.sqrt(0.5))
            prod = max(prod, float(((s2[:, 1, :] + e2[:, 1, :]) * wabs[tw]).max()) * scale)
            sig = np.stack([s2[:, 0, :] + t_sig, s2[:, 0, :] + t_sig], axis=1).reshape(n)
            err = np.stack([e2[:, 0, :] + t_err, e2[:, 0, :] + t_err], axis=1).reshape(n)
            b[f"fft_stage{stage}"] = _sym(float((sig + err).max()))
            half *= 2
        b["twiddle_product"] = _sym(prod)
        b["fft"] = b[f"fft_stage{stage}"]
        nb = n // 2 + 1
        mod = (sig + err)[:nb]
        b["fft_error"] = _sym(float(err[:nb].max()))
        b["power_exact"] = Bound(0, math.floor(float((mod**2).max()) * (1 + 1e-12)))
        psh = 2 * DATA_FRAC - POWER_FRAC
        b["power"] = Bound(0, int(rshift_round(b["power_exact"].hi, psh)))
        # Parseval over the exact spectrum of the integer x: sum_{k <= n/2} |X_k|^2 =
        # (n sum x^2 + |X_0|^2 + |X_{n/2}|^2) / 2, then the rounding errors (triangle
        # inequality on the vector of bins) and the rounding of P.
        sum_sq = float((x_abs**2).sum())
        l1 = float(x_abs.sum())
        exact_norm = math.sqrt((n * sum_sq + 2 * l1**2) / 2)
        err_norm = math.sqrt(float((err[:nb] ** 2).sum()))
        p_sum = ((exact_norm + err_norm) ** 2 * 2.0**-psh + nb * 0.5) * (1 + 1e-12)
        hmax = int(self.mel_weights.max())
        acc_hi = min(math.floor(hmax * p_sum),
                     int((self.mel_weights.sum(axis=0) * b["power"].hi).max()))
        b["mel_acc"] = Bound(0, acc_hi)
        b["mel"] = Bound(0, int(rshift_round(acc_hi, MEL_FRAC)))
        p_hi = max(b["mel"].hi, 1).bit_length() - 1
        q = LOG_INDEX + LOG_INTERP
        b["log_exponent"] = Bound(0, p_hi)
        b["log_mantissa"] = Bound(0, (1 << (q + 1)) - 1)
        b["log_table"] = Bound(0, int(self.log_table.max()))
        dt = int(np.diff(self.log_table).max())
        b["log_interp_product"] = Bound(0, dt * ((1 << LOG_INTERP) - 1))
        e0 = _PCM_POWER_SHIFT + POWER_FRAC
        wide_lo = -e0 * self.ln2
        wide_hi = (p_hi - e0) * self.ln2 + int(self.log_table[-1])
        b["log_wide"] = Bound(min(wide_lo, 0), max(wide_hi, 0))
        sl = LOG_TABLE_FRAC - LOG_FRAC
        b["log_rounded"] = Bound(int(rshift_round(wide_lo, sl)), int(rshift_round(wide_hi, sl)))
        b["log_mel"] = Bound(self.log_floor, max(self.log_floor, b["log_rounded"].hi))
        k = cfg.smooth
        b["smooth_sum"] = Bound(k * b["log_mel"].lo, k * b["log_mel"].hi)
        r = self.smooth_recip[1:]
        b["smooth_product"] = Bound(min(0, b["smooth_sum"].lo * int(r.max())),
                                    max(0, b["smooth_sum"].hi * int(r.max())))
        lm = b["log_mel"]
        b["lfbe"] = lm  # the rounded mean of values in [lo, hi] stays in [lo, hi]
        if self.norm_mean is not None:
            d = Bound(lm.lo - int(self.norm_mean.max()), lm.hi - int(self.norm_mean.min()))
            b["norm_diff"] = d
            g = int(self.norm_gain.max())
            b["norm_gain"] = Bound(0, g)
            b["norm_product"] = Bound(d.lo * g, d.hi * g)
            b["norm_rounded"] = Bound(int(rshift_round(d.lo * g, self.norm_shift)),
                                      int(rshift_round(d.hi * g, self.norm_shift)))
            b["frames"] = Bound(ACT_MIN, ACT_MAX)
        return b

    def widths(self) -> dict[str, int]:
        """Register width of every intermediate, from :attr:`bounds`."""
        return {k: v.width for k, v in self.bounds.items()}

    def _check(self, name: str, value: np.ndarray, trace: dict | None) -> None:
        """Every intermediate is checked against its derived bound: a violation is a bug in
        the derivation, never an input the front end does not support."""
        if value.size == 0:
            return
        lo, hi = int(value.min()), int(value.max())
        bd = self.bounds[name]
        if lo < bd.lo or hi > bd.hi:
            raise AssertionError(f"integer front end: {name} in [{lo}, {hi}] leaves its derived "
                                 f"range [{bd.lo}, {bd.hi}]")
        if trace is not None:
            old = trace.get(name)
            trace[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    # --- the stages ----------------------------------------------------------------------

    def _pcm(self, pcm: np.ndarray) -> np.ndarray:
        s = np.asarray(pcm)
        if s.ndim != 1:
            raise ValueError(f"integer front end expects 1-D PCM, got shape {s.shape}")
        if not np.issubdtype(s.dtype, np.integer):
            raise ValueError(f"integer front end expects integer PCM, got {s.dtype} "
                             f"(see pcm_from_float)")
        s = s.astype(np.int64)
        if s.size and (s.min() < PCM_MIN or s.max() > PCM_MAX):
            raise ValueError("PCM samples outside the int16 range")
        win = self.cfg.win_length
        if len(s) < win:
            s = np.concatenate([s, np.zeros(win - len(s), np.int64)])
        return s

    def _frames_of(self, s: np.ndarray) -> np.ndarray:
        view = np.lib.stride_tricks.sliding_window_view(s, self.cfg.win_length)
        return view[:: self.cfg.hop_length]

    def fft(self, x: np.ndarray, trace: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The fixed-point FFT of windowed frames ``x`` (``int64 (T, win_length)``, zero-padded
        to ``n_fft``): real and imaginary parts of bins ``0 .. n_fft / 2``, in ``2^-DATA_FRAC``.
        """
        n = self.cfg.n_fft
        t = x.shape[0]
        re = np.zeros((t, n), dtype=np.int64)
        re[:, : x.shape[1]] = x
        re = re[:, _bit_reverse(n)]
        im = np.zeros_like(re)
        half, stage = 1, 0
        while half < n:
            stage += 1
            r4 = re.reshape(t, -1, 2, half)
            i4 = im.reshape(t, -1, 2, half)
            tw = np.arange(half) * (n // (2 * half))
            c, s = self.twiddle_re[tw], self.twiddle_im[tw]
            br, bi = r4[:, :, 1, :], i4[:, :, 1, :]
            pr = br * c - bi * s
            pi = br * s + bi * c
            self._check("twiddle_product", pr, trace)
            self._check("twiddle_product", pi, trace)
            tr = rshift_round(pr, TWIDDLE_FRAC)
            ti = rshift_round(pi, TWIDDLE_FRAC)
            ar, ai = r4[:, :, 0, :], i4[:, :, 0, :]
            re = np.stack([ar + tr, ar - tr], axis=2).reshape(t, n)
            im = np.stack([ai + ti, ai - ti], axis=2).reshape(t, n)
            self._check(f"fft_stage{stage}", re, trace)
            self._check(f"fft_stage{stage}", im, trace)
            half *= 2
        nb = n // 2 + 1
        return re[:, :nb], im[:, :nb]

    def energies(self, pcm: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Mel energies ``E`` (stages 1-5), ``int64 (T, n_mels)`` in units of
        ``2^-POWER_FRAC`` PCM LSB^2 (``E 2^-(30 + POWER_FRAC)`` is the float front end's
        energy)."""
        s = self._pcm(pcm)
        fr = self._frames_of(s)
        self._check("pcm", fr, trace)
        prod = fr * self.window
        self._check("window_product", prod, trace)
        x = rshift_round(prod, WINDOW_FRAC - DATA_FRAC)
        self._check("x", x, trace)
        re, im = self.fft(x, trace)
        pw = re * re + im * im
        self._check("power_exact", pw, trace)
        p = rshift_round(pw, 2 * DATA_FRAC - POWER_FRAC)
        self._check("power", p, trace)
        acc = np.empty((p.shape[0], self.cfg.n_mels), dtype=np.int64)
        for m in range(self.cfg.n_mels):
            lo, hi = int(self.mel_lo[m]), int(self.mel_hi[m])
            acc[:, m] = (p[:, lo:hi] * self.mel_weights[lo:hi, m]).sum(axis=1)
        self._check("mel_acc", acc, trace)
        e = rshift_round(acc, MEL_FRAC)
        self._check("mel", e, trace)
        return e

    def log(self, energy: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Integer natural log of energies (stage 6): ``ln(max(E 2^-(30 + POWER_FRAC),
        log_floor))`` in units of ``2^-LOG_FRAC`` nat, ``int64``, same shape."""
        e = np.maximum(np.asarray(energy, dtype=np.int64), 1)
        p = _leading_one(e)
        self._check("log_exponent", p, trace)
        q = LOG_INDEX + LOG_INTERP
        # Normalize the mantissa to q fraction bits: exact left shift, or a truncating right
        # shift (the dropped bits are below 2^-q relative, < 2^-20 nat; truncation keeps the
        # index below 2^LOG_INDEX so the table needs one entry past the last interval only).
        u = np.where(p <= q, e << np.maximum(q - p, 0), e >> np.maximum(p - q, 0))
        self._check("log_mantissa", u, trace)
        f = u - (1 << q)
        i = f >> LOG_INTERP
        r = f & ((1 << LOG_INTERP) - 1)
        t0 = self.log_table[i]
        d = self.log_table[i + 1] - t0
        self._check("log_interp_product", d * r, trace)
        frac = t0 + rshift_round(d * r, LOG_INTERP)
        wide = (p - (_PCM_POWER_SHIFT + POWER_FRAC)) * self.ln2 + frac
        self._check("log_wide", wide, trace)
        out = rshift_round(wide, LOG_TABLE_FRAC - LOG_FRAC)
        self._check("log_rounded", out, trace)
        out = np.maximum(out, self.log_floor)
        self._check("log_mel", out, trace)
        return out

    def log_error_bound(self) -> float:
        """Largest error (nat) of :meth:`log` against the exact ``ln(max(E 2^-(30 +
        POWER_FRAC), log_floor))``, final rounding included: mantissa truncation ``2^-q`` (``q =
        LOG_INDEX + LOG_INTERP``), the table entries and the interpolation's rounding
        ``2^-(LOG_TABLE_FRAC + 1)`` each, the chord under the concave ``ln(1 + f)``
        ``2^-(2 LOG_INDEX + 3)``, ``ln 2`` rounded times the largest exponent, and the final
        ``2^-(LOG_FRAC + 1)``."""
        q = LOG_INDEX + LOG_INTERP
        e0 = _PCM_POWER_SHIFT + POWER_FRAC
        p_max = max(self.bounds["log_exponent"].hi - e0, e0)
        wide = (2.0**-q + 2 * 2.0 ** -(LOG_TABLE_FRAC + 1) + 2.0 ** -(2 * LOG_INDEX + 3)
                + p_max * 2.0 ** -(LOG_TABLE_FRAC + 1))
        return wide + 2.0 ** -(LOG_FRAC + 1)

    def log_mel(self, pcm: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Unsmoothed integer log-mel energies of int16 PCM, ``int64 (T, n_mels)`` in units of
        ``2^-LOG_FRAC`` nat: the integer counterpart of :func:`kwshw.features.log_mel` of
        ``pcm / 2^15``.

        Parameters
        ----------
        pcm : numpy.ndarray
            1-D integer samples in ``[PCM_MIN, PCM_MAX]`` (:func:`pcm_from_float`).
        trace : dict, optional
            If given, receives ``{name: (min, max)}`` of every intermediate (widths tests).
        """
        return self.log(self.energies(pcm, trace), trace)

    def smooth(self, log_mel: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Stage 7 over whole clips: ``Ls[t] = rshift_round(S[t] R[n], SMOOTH_FRAC)``, ``S[t]``
        the sum of the last ``n = min(smooth, t + 1)`` rows, ``int64``, ``2^-LOG_FRAC`` nat."""
        x = np.asarray(log_mel, dtype=np.int64)
        k = self.cfg.smooth
        acc = np.zeros_like(x)
        for j in range(min(k, len(x))):  # oldest first, as smooth_frames
            acc[j:] += x[: len(x) - j]
        self._check("smooth_sum", acc, trace)
        n = np.minimum(np.arange(1, len(x) + 1), k)
        prod = acc * self.smooth_recip[n][:, None]
        self._check("smooth_product", prod, trace)
        out = rshift_round(prod, SMOOTH_FRAC)
        self._check("lfbe", out, trace)
        return out

    def lfbe(self, pcm: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Smoothed integer log-mel frames (stages 1-7), the counterpart of
        :func:`kwshw.features.lfbe`, ``int64 (T, n_mels)`` in ``2^-LOG_FRAC`` nat."""
        return self.smooth(self.log_mel(pcm, trace), trace)

    def normalize(self, lfbe: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """Stage 8: smoothed integer log-mel frames to the accelerator's input codes."""
        if self.norm_mean is None:
            raise ValueError("this IntFrontEnd has no normalizer: build it with one "
                             "(IntFrontEnd(cfg, normalizer, in_frac) or from_model)")
        d = np.asarray(lfbe, dtype=np.int64) - self.norm_mean
        self._check("norm_diff", d, trace)
        prod = d * self.norm_gain
        self._check("norm_product", prod, trace)
        y = rshift_round(prod, self.norm_shift)
        self._check("norm_rounded", y, trace)
        return np.clip(y, ACT_MIN, ACT_MAX)

    def frames(self, pcm: np.ndarray, trace: dict | None = None) -> np.ndarray:
        """The accelerator's input frames of int16 PCM, ``int64 (T, n_mels)`` with ``in_frac``
        fraction bits in ``[ACT_MIN, ACT_MAX]``: the integer counterpart of
        :func:`kwshw.host.runtime.audio_frames`."""
        return self.normalize(self.lfbe(pcm, trace), trace)

    def stream(self) -> IntFrontEndStream:
        """A fresh :class:`IntFrontEndStream` of this front end."""
        return IntFrontEndStream(self)

    @staticmethod
    def to_float_log(values: np.ndarray) -> np.ndarray:
        """Integer log-mel values as float64 nat (``values 2^-LOG_FRAC``)."""
        return np.asarray(values, dtype=np.float64) * 2.0**-LOG_FRAC


class IntFrontEndStream:
    """The integer front end one hop at a time, with state (what the gateware does).

    :meth:`push` takes exactly ``hop_length`` new samples and returns the next frame, ``None``
    while the first window is not full yet (``ceil(win_length / hop_length) - 1`` hops).
    The frames equal :meth:`IntFrontEnd.frames` of the concatenated samples (or
    :meth:`IntFrontEnd.lfbe` when the front end has no normalizer) bit for bit; audio shorter
    than one window, which the batch form zero-pads, gives no frame here.

    State: the samples from the next frame's start (fewer than ``win_length + hop_length``)
    and the last ``smooth - 1`` log-mel frames.
    """

    def __init__(self, fe: IntFrontEnd) -> None:
        self.fe = fe
        self._buf = np.zeros(0, dtype=np.int64)
        self._history: list[np.ndarray] = []
        #: The newest unsmoothed log-mel frame (``2^-LOG_FRAC`` nat), for inspection.
        self.log_mel: np.ndarray | None = None

    def push(self, samples: np.ndarray) -> np.ndarray | None:
        """One hop of int16 samples in, one frame (``int64 (n_mels,)``) or ``None`` out."""
        cfg = self.fe.cfg
        s = np.asarray(samples)
        if s.ndim != 1 or len(s) != cfg.hop_length:
            raise ValueError(f"push takes exactly hop_length={cfg.hop_length} samples, "
                             f"got shape {s.shape}")
        if not np.issubdtype(s.dtype, np.integer) or s.min() < PCM_MIN or s.max() > PCM_MAX:
            raise ValueError("push takes int16-range integer PCM")
        # Frames start on the hop grid (frame t at t * hop): the buffer holds the samples from
        # the next frame's start, win_length + hop_length - 1 at most.
        self._buf = np.concatenate([self._buf, s.astype(np.int64)])
        if len(self._buf) < cfg.win_length:
            return None
        row = self.fe.log_mel(self._buf[:cfg.win_length])[0]
        self._buf = self._buf[cfg.hop_length:]
        self.log_mel = row
        self._history = [*self._history, row][-cfg.smooth:]
        n = len(self._history)
        acc = np.zeros_like(row)
        for h in self._history:
            acc = acc + h
        ls = rshift_round(acc * self.fe.smooth_recip[n], SMOOTH_FRAC)
        return ls if self.fe.norm_mean is None else self.fe.normalize(ls[None, :])[0]

    def run(self, pcm: Iterable[int] | np.ndarray) -> np.ndarray:
        """Push ``pcm`` hop by hop (its length a multiple of ``hop_length``); the frames."""
        s = np.asarray(pcm)
        hop = self.fe.cfg.hop_length
        if len(s) % hop:
            raise ValueError(f"run takes a multiple of hop_length={hop} samples")
        out = [f for i in range(0, len(s), hop) if (f := self.push(s[i:i + hop])) is not None]
        return np.array(out, dtype=np.int64).reshape(len(out), self.fe.cfg.n_mels)


@dataclass(frozen=True, eq=False)
class IntNormalizer(Normalizer):
    """The normalization of a model trained on the integer front end: stage 8 of
    :class:`IntFrontEnd`, in the float interface of :class:`~kwshw.features.Normalizer`.

    :meth:`apply` takes the integer front end's smoothed log-mel values as float nat (exact
    multiples of ``2^-LOG_FRAC``, what :func:`kwshw.frontends.lfbe` gives for such a model)
    and returns the accelerator's input codes times ``2^-in_frac``: exact in float32, so
    :func:`kwshw.quantize.features_to_int` gives back the very codes the gateware computes and
    training sees the network's integer input, not an approximation of it.

    Attributes
    ----------
    cfg : FeatureConfig
        The front end (its ``n_mels`` must match the statistics).
    in_frac : int
        Fraction bits of the network input (``model.in_frac``).
    """

    cfg: FeatureConfig = field(default_factory=FeatureConfig)
    in_frac: int = 11

    def __post_init__(self) -> None:
        super().__post_init__()
        fe = IntFrontEnd(self.cfg, Normalizer(self.mean, self.std), self.in_frac)
        object.__setattr__(self, "_front_end", fe)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Input codes ``2^-in_frac`` of integer log-mel frames given in nat, ``float32``.

        Raises
        ------
        ValueError
            When a value is not a multiple of ``2^-LOG_FRAC`` nat: float front-end features
            given to a model of the integer front end.
        """
        f = np.asarray(frames, dtype=np.float64)
        if f.shape[-1] != self.n_mels:
            raise ValueError(f"frames have {f.shape[-1]} bands, the normalizer {self.n_mels}")
        scaled = f * 2.0**LOG_FRAC
        codes = np.rint(scaled)
        if not np.array_equal(codes, scaled):
            raise ValueError(f"IntNormalizer takes the integer front end's log-mel values "
                             f"(multiples of 2^-{LOG_FRAC} nat); these are not: features of "
                             "the float front end given to a model trained on the integer one?")
        y = self._front_end.normalize(codes.astype(np.int64))
        return (y * 2.0**-self.in_frac).astype(np.float32)

