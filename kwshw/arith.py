"""The arithmetic contract: formats, widths, rounding and saturation.

This module is the ground floor of kwshw. It imports nothing of the project,
and everything that computes the network -- the NumPy golden model, the QAT
forward pass in inference mode, the Amaranth hardware -- takes its integer
operations and every bit width from here, so they cannot disagree.
``docs/arithmetic.md`` explains each definition and derives each width.

The element-wise functions use only Python operators (``+ - * // << >>``) and
``.clip``, so they accept Python ``int``, NumPy ``int64`` arrays and PyTorch
``int64`` tensors alike and give the same integers for all three.

Notation (per layer): ``b`` bits, ``M = 2**b - 1``, ``n`` inputs, ``m``
outputs; an activation vector is held as signed ``ACT_WIDTH``-bit integers
``X`` with ``Fx`` fraction bits (value ``X * 2**-Fx``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ACT_WIDTH",
    "CONST_WIDTH",
    "RECIP_FRAC",
    "SUPPORTED_BITS",
    "ACT_MIN",
    "ACT_MAX",
    "code_max",
    "check_bits",
    "rshift_round",
    "round_half_up",
    "unsigned_width",
    "signed_width",
    "frame_range",
    "reciprocal",
    "step",
    "requantize",
    "ScaleTerms",
    "scale_terms",
    "saturate",
    "scale_column",
    "LayerShifts",
    "layer_shifts",
    "LayerWidths",
    "layer_widths",
]

#: Width of every activation vector between layers (and of the network input), signed.
ACT_WIDTH = 16
#: Width of the per-column constants LO (signed) and ST (unsigned, one bit fewer),
#: and of the rounded column terms VR and WSR that enter the scale multipliers.
CONST_WIDTH = 18
#: Fraction bits ``K`` of the per-frame reciprocal ``M / R``. ``R < 2**ACT_WIDTH``, so
#: ``2**K >= 4 R`` keeps the reciprocal's rounding below 1/8 of a code step.
RECIP_FRAC = ACT_WIDTH + 2
#: Weight/activation code widths the contract is defined for (4 and 8 are the ones that matter).
SUPPORTED_BITS = range(2, 9)

ACT_MIN = -(1 << (ACT_WIDTH - 1))
ACT_MAX = (1 << (ACT_WIDTH - 1)) - 1


def check_bits(bits: int) -> int:
    """Return ``bits`` if the contract supports it, else raise ``ValueError``."""
    if int(bits) != bits or bits not in SUPPORTED_BITS:
        raise ValueError(
            f"unsupported code width b={bits}: supported are "
            f"{SUPPORTED_BITS.start}..{SUPPORTED_BITS.stop - 1} bits"
        )
    return int(bits)


def code_max(bits: int) -> int:
    """Largest code ``M = 2**b - 1`` of a ``b``-bit unsigned quantizer."""
    return (1 << check_bits(bits)) - 1


def rshift_round(x, shift: int):
    """Divide by ``2**shift`` rounding half up (toward +inf); exact left shift if ``shift < 0``.

    This is the only rounding mode of the contract: add half, then floor with an
    arithmetic shift. It costs one adder in hardware and is the same for
    negative and positive values.
    """
    if shift > 0:
        return (x + (1 << (shift - 1))) >> shift
    if shift < 0:
        return x << -shift
    return x


def round_half_up(x):
    """Round real values half up, ``floor(x + 1/2)``: the contract's one rounding mode, for the
    offline steps that start from floats (weights, features) and the QAT forward pass.

    Written with ``//`` (floor division) so that NumPy arrays, PyTorch tensors and Python
    floats all give the same values, in their own type (float; callers convert). Unlike
    ``round``/``np.round``/``torch.round`` it does not round half to even.
    """
    return (x + 0.5) // 1


def unsigned_width(hi: int) -> int:
    """Bits of an unsigned integer that can hold every value in ``[0, hi]``."""
    if hi < 0:
        raise ValueError("unsigned_width of a negative bound")
    return max(1, int(hi).bit_length())


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's complement integer that can hold every value in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def _clip(x, lo: int, hi: int):
    if isinstance(x, int):
        return min(max(x, lo), hi)
    return x.clip(lo, hi)


# --- Per-frame activation quantization ---------------------------------------------------------

def frame_range(xmin, xmax):
    """The per-frame quantities of an activation vector: ``(XLO, R) = (min, max - min)``."""
    return xmin, xmax - xmin


def reciprocal(r, bits: int):
    """Per-frame reciprocal ``RECIP = round(M * 2**K / R)`` (``K = RECIP_FRAC``); 0 when ``R = 0``.

    One division per frame and layer; every code of the vector then costs one
    multiplication. ``R = 0`` (a constant vector) gives ``RECIP = 0`` and so
    all codes 0: the vector is represented exactly by ``XLO``.
    """
    m = code_max(bits)
    num = (m << (RECIP_FRAC + 1))
    if isinstance(r, int):
        return 0 if r == 0 else (num + r) // (2 * r)
    safe = r.clip(1, None)
    return ((num + safe) // (2 * safe)) * (r > 0)


def step(r, bits: int):
    """Per-frame dequantization step ``RM = round(R * 2**b / M)``, in units of ``2**-(Fx + b)``.

    The dequantized activation is defined as ``x_hat = XLO + RM * p * 2**-b`` (in
    units of ``2**-Fx``): the step ``R / M`` carried with ``b`` extra fraction bits,
    so its rounding moves ``x_hat`` by at most half an input LSB.
    """
    m = code_max(bits)
    return ((r << (bits + 1)) + m) // (2 * m)


def requantize(x, xlo, recip, bits: int):
    """Codes ``p = min(M, round((X - XLO) * RECIP / 2**K))`` of activations ``X``.

    With exact arithmetic ``p`` is within ``1/2 + 1/8`` of ``(X - XLO) * M / R``
    (see docs/arithmetic.md); the clip only ever acts on the rounding overshoot
    at ``X = max``.
    """
    return _clip(rshift_round((x - xlo) * recip, RECIP_FRAC), 0, code_max(bits))


# --- Per-layer shifts and the scale multipliers ------------------------------------------------

@dataclass(frozen=True)
class LayerShifts:
    """The static shifts of one layer's scaler, derived from the model (never stored).

    Attributes
    ----------
    sv : int
        Right shift (rounding) of the exact column sum ``V`` down to ``VR``.
    sw : int
        Right shift (rounding) of the offline column sum ``WS`` down to ``WSR``.
    align1, align2 : int
        Left shifts that bring the two scaler products to a common unit ``2**-E``.
    out : int
        Final rounding shift from ``2**-E`` to the output format ``2**-Fy`` (may be negative).
    """

    sv: int
    sw: int
    align1: int
    align2: int
    out: int


def _fit_shift(lo: int, hi: int, width: int) -> int:
    """Smallest right shift after which rounding ``[lo, hi]`` fits ``width`` signed bits."""
    shift = 0
    while signed_width(rshift_round(lo, shift), rshift_round(hi, shift)) > width:
        shift += 1
    return shift


def layer_shifts(*, bits: int, v_lo: int, v_hi: int, ws_lo: int, ws_hi: int,
                 w_exp: int, in_frac: int, out_frac: int) -> LayerShifts:
    """Derive a layer's scaler shifts from the bounds of its column sums.

    Parameters
    ----------
    bits : int
        Code width ``b``.
    v_lo, v_hi : int
        Bounds of ``V_j = sum_i p_i * Wn_ij`` over all columns and all possible codes.
    ws_lo, ws_hi : int
        Bounds of the offline column sums ``WS_j = sum_i Wn_ij``.
    w_exp : int
        Weight exponent ``Ew``: ``Wn_ij`` is in units of ``2**-(Ew + b)``.
    in_frac, out_frac : int
        Fraction bits ``Fx`` of the layer's input and ``Fy`` of its output.
    """
    sv = _fit_shift(v_lo, v_hi, CONST_WIDTH)
    sw = _fit_shift(ws_lo, ws_hi, CONST_WIDTH)
    we = w_exp + bits
    e1 = in_frac + we - sw           # unit of T1 = XLO * WSR
    e2 = in_frac + bits + we - sv    # unit of T2 = RM * VR
    e = max(e1, e2)
    return LayerShifts(sv=sv, sw=sw, align1=e - e1, align2=e - e2, out=e - out_frac)


class ScaleTerms(NamedTuple):
    """The named intermediates of one column's scale multiplier (:func:`scale_terms`), each
    an int, NumPy array or torch tensor like the inputs; :class:`LayerWidths` bounds each one.
    """

    v: Any       #: ``V = ST * A + ((LO * P) << b)``
    vr: Any      #: ``VR = rshift_round(V, sv)``
    t1: Any      #: ``T1 = XLO * WSR``
    t2: Any      #: ``T2 = RM * VR``
    z: Any       #: ``Z = (T1 << align1) + (T2 << align2)``
    y: Any       #: ``Y = rshift_round(Z, out) + B``, before the clamp


def scale_terms(a, p, rm, xlo, *, st, lo, wsr, bias, bits: int,
                shifts: LayerShifts) -> ScaleTerms:
    """Every intermediate of the per-column scale multiplier, up to ``Y`` before the clamp.

    ``y_j = XLO * WS_j + (R / M) * V_j + bias_j`` with ``V_j = ST_j A_j + LO_j 2**b P``, in
    integers with the layer's static shifts. The arguments are those of :func:`scale_column`.
    """
    v = st * a + ((lo * p) << bits)
    vr = rshift_round(v, shifts.sv)
    t1 = xlo * wsr
    t2 = rm * vr
    z = (t1 << shifts.align1) + (t2 << shifts.align2)
    y = rshift_round(z, shifts.out) + bias
    return ScaleTerms(v=v, vr=vr, t1=t1, t2=t2, z=z, y=y)


def saturate(y, *, relu: bool):
    """ReLU and saturation to ``ACT_WIDTH`` as one clamp: ``[0 or ACT_MIN, ACT_MAX]``."""
    return _clip(y, 0 if relu else ACT_MIN, ACT_MAX)


def scale_column(a, p, rm, xlo, *, st, lo, wsr, bias, bits: int, shifts: LayerShifts,
                 relu: bool):
    """The per-column scale multiplier: integer MAC results to the next activation.

    ``saturate(scale_terms(...).y)``: ``y_j = XLO * WS_j + (R / M) * V_j + bias_j`` with
    ``V_j = ST_j A_j + LO_j 2**b P`` (in integers, with the layer's static shifts), then ReLU
    and saturation as one clamp.

    Parameters
    ----------
    a : int or array
        ``A_j = sum_i p_i q_ij`` (the MAC array's accumulator).
    p : int or array
        ``P = sum_i p_i`` (once per frame and layer).
    rm, xlo : int or array
        Per-frame step :func:`step` and minimum of the layer's input vector.
    st, lo, wsr, bias : int or array
        Column constants: step ``ST_j``, minimum ``LO_j``, rounded column sum ``WSR_j``
        and bias ``B_j`` (in units of the output, ``2**-Fy``).
    bits : int
        Code width ``b``.
    shifts : LayerShifts
        The layer's static shifts.
    relu : bool
        Clamp at 0 (hidden layers) instead of at the most negative activation.
    """
    terms = scale_terms(a, p, rm, xlo, st=st, lo=lo, wsr=wsr, bias=bias, bits=bits,
                        shifts=shifts)
    return saturate(terms.y, relu=relu)


# --- Widths of every intermediate --------------------------------------------------------------

@dataclass(frozen=True)
class LayerWidths:
    """Bit widths of every intermediate of one layer, each derived from a bound that cannot be
    exceeded for any input; the hardware sizes its registers from these.

    Attributes are widths in bits; ``*_signed`` tells the signedness where it is not obvious.
    """

    code: int      # p_i, q_ij (unsigned)
    acc: int       # A_j (unsigned)
    psum: int      # P (unsigned)
    xlo: int       # XLO (signed)
    range: int     # R (unsigned)
    recip: int     # RECIP (unsigned)
    step: int      # RM (unsigned)
    st: int        # ST_j (unsigned)
    lo: int        # LO_j (signed)
    v: int         # V_j (signed)
    vr: int        # VR_j (signed)
    wsr: int       # WSR_j (signed)
    t1: int        # XLO * WSR (signed)
    t2: int        # RM * VR (signed)
    z: int         # aligned sum (signed)
    bias: int      # B_j (signed)
    y: int         # before the clamp (signed)


def layer_widths(*, n_in: int, bits: int, st_max: int, lo_min: int, lo_max: int,
                 v_lo: int, v_hi: int, wsr_lo: int, wsr_hi: int, bias_lo: int, bias_hi: int,
                 shifts: LayerShifts, in_signed: bool = True) -> LayerWidths:
    """Derive every intermediate width of a layer from worst-case bounds.

    ``in_signed`` is False when the layer's input comes out of a ReLU, so ``XLO >= 0``.
    """
    m = code_max(bits)
    xlo_lo = ACT_MIN if in_signed else 0
    r_max = ACT_MAX - xlo_lo
    recip_max = ((m << (RECIP_FRAC + 1)) + 1) // 2
    rm_max = ((r_max << (bits + 1)) + m) // (2 * m)
    vr_lo, vr_hi = rshift_round(v_lo, shifts.sv), rshift_round(v_hi, shifts.sv)
    t1 = [xlo_lo * wsr_lo, xlo_lo * wsr_hi, ACT_MAX * wsr_lo, ACT_MAX * wsr_hi, 0]
    t2 = [rm_max * vr_lo, rm_max * vr_hi, 0]
    t1_lo, t1_hi = min(t1), max(t1)
    t2_lo, t2_hi = min(t2), max(t2)
    z_lo = (t1_lo << shifts.align1) + (t2_lo << shifts.align2)
    z_hi = (t1_hi << shifts.align1) + (t2_hi << shifts.align2)
    y_lo = rshift_round(z_lo, shifts.out) + bias_lo
    y_hi = rshift_round(z_hi, shifts.out) + bias_hi
    return LayerWidths(
        code=bits,
        acc=unsigned_width(n_in * m * m),
        psum=unsigned_width(n_in * m),
        xlo=ACT_WIDTH,
        range=unsigned_width(r_max),
        recip=unsigned_width(recip_max),
        step=unsigned_width(rm_max),
        st=unsigned_width(st_max),
        lo=signed_width(lo_min, lo_max),
        v=signed_width(v_lo, v_hi),
        vr=signed_width(vr_lo, vr_hi),
        wsr=signed_width(wsr_lo, wsr_hi),
        t1=signed_width(t1_lo, t1_hi),
        t2=signed_width(t2_lo, t2_hi),
        z=signed_width(z_lo, z_hi),
        bias=signed_width(bias_lo, bias_hi),
        y=signed_width(min(y_lo, ACT_MIN), max(y_hi, ACT_MAX)),
    )
