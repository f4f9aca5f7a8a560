"""Dynamic quantization of a trained network, and the per-layer plans derived from it.

Offline, each weight column is quantized with its own exact min-max range
(:func:`quantize_layer`); the integers that result are what the model file
stores. :func:`plan_layer` derives from them, never from floats, every
constant and width that the golden model and the hardware use, so a model
file fully determines the arithmetic.

Also here: the conversion of normalized float features to the network's
integer input format, and the per-tensor *static* min-max quantizer that the
paper's dynamic scheme is compared against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import arith
from .arith import ACT_MAX, ACT_MIN, CONST_WIDTH, LayerShifts, LayerWidths
from .layers import Conv, Geometry, conv_positions, float_activations

__all__ = [
    "DEFAULT_INPUT_FRAC",
    "IntLayer",
    "LayerPlan",
    "calibrate_out_fracs",
    "choose_frac",
    "features_to_int",
    "quantize_layer",
    "plan_layer",
    "round_half_up",
    "static_fake_quant",
]

#: Default fraction bits of the integer network input: normalized features in +-16.
DEFAULT_INPUT_FRAC = 11

_LO_MAX = (1 << (CONST_WIDTH - 1)) - 1
_ST_MAX = (1 << (CONST_WIDTH - 1)) - 1


def round_half_up(x: np.ndarray) -> np.ndarray:
    """:func:`kwshw.arith.round_half_up` of float values, as ``int64``."""
    return arith.round_half_up(np.asarray(x, dtype=np.float64)).astype(np.int64)


def features_to_int(features: np.ndarray, frac: int = DEFAULT_INPUT_FRAC) -> np.ndarray:
    """Convert normalized float features to the integer input format (saturating).

    This is the single place where the float front end meets the integer contract:
    ``X = clip(round_half_up(f * 2**frac), ACT_MIN, ACT_MAX)``.
    """
    return np.clip(round_half_up(np.asarray(features, np.float64) * 2.0**frac), ACT_MIN, ACT_MAX)


def choose_frac(max_abs: float, headroom: float = 2.0) -> int:
    """Fraction bits of an activation format that holds ``headroom * max_abs`` without saturating.

    ``max_abs`` is measured on calibration data at export time; outputs beyond it
    saturate as the contract specifies.
    """
    if not math.isfinite(max_abs) or max_abs <= 0:
        return 0
    return int(math.floor(math.log2(ACT_MAX / (headroom * max_abs))))


@dataclass(frozen=True)
class IntLayer:
    """One quantized layer (dense, or a temporal convolution), exactly as the model file stores
    it.

    Dequantized weights are ``w_hat_ij = (LO_j * 2**b + ST_j * q_ij) * 2**-(w_exp + b)``
    and the bias is ``B_j * 2**-out_frac``.

    Attributes
    ----------
    codes : ndarray of uint8, shape (n_in, n_out)
        Weight codes ``q_ij`` in ``[0, 2**b - 1]``; column ``j`` feeds output ``j``.
    lo : ndarray of int64, shape (n_out,)
        Column minimum ``LO_j`` (signed, ``CONST_WIDTH`` bits).
    st : ndarray of int64, shape (n_out,)
        Column step ``ST_j`` (unsigned, ``CONST_WIDTH - 1`` bits); 0 for a constant column.
    bias : ndarray of int64, shape (n_out,)
        Bias in output units (signed, ``CONST_WIDTH`` bits).
    w_exp : int
        Weight exponent ``Ew``.
    out_frac : int
        Fraction bits ``Fy`` of the layer's output.
    relu : bool
        Whether a ReLU follows (all layers but the last).
    conv : Conv, optional
        For a temporal convolution, its kernel and stride (:mod:`kwshw.layers`): ``codes`` is
        then the kernel, ``kernel * in_channels`` rows by ``out_channels`` columns, stored once.
        ``None`` for a dense layer.
    """

    codes: np.ndarray
    lo: np.ndarray
    st: np.ndarray
    bias: np.ndarray
    w_exp: int
    out_frac: int
    relu: bool
    conv: Conv | None = None

    @property
    def n_in(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.codes.shape[1])

    def dequantized_weights(self, bits: int) -> np.ndarray:
        """The float64 weights the integers stand for (exact: every value is a dyadic rational)."""
        wn = (self.lo[None, :] << bits) + self.st[None, :] * self.codes.astype(np.int64)
        return wn.astype(np.float64) * 2.0 ** -(self.w_exp + bits)

    def dequantized_bias(self) -> np.ndarray:
        return self.bias.astype(np.float64) * 2.0 ** -self.out_frac


def _weight_exponent(lo: np.ndarray, step: np.ndarray, bits: int) -> int:
    """Largest ``Ew`` for which every ``LO_j`` and ``ST_j`` fits its container after rounding."""
    peak = max(float(np.max(np.abs(lo), initial=0.0)), float(np.max(step, initial=0.0)) * 2**bits)
    if peak == 0.0:
        return 0
    e = int(math.floor(math.log2(_LO_MAX / peak))) + 1
    while True:
        lo_i = round_half_up(lo * 2.0**e)
        st_i = round_half_up(step * 2.0 ** (e + bits))
        if np.all(np.abs(lo_i) <= _LO_MAX) and np.all(st_i <= _ST_MAX):
            return e
        e -= 1


def quantize_layer(weights: np.ndarray, bias: np.ndarray, *, bits: int, out_frac: int,
                   relu: bool, conv: Conv | None = None) -> IntLayer:
    """Quantize one float layer column-wise with each column's exact min-max range.

    Parameters
    ----------
    weights : ndarray, shape (n_in, n_out)
        Float weights; column ``j`` feeds output ``j``.
    bias : ndarray, shape (n_out,)
        Float bias.
    bits : int
        Code width ``b``.
    out_frac : int
        Fraction bits of the layer's output format (see :func:`choose_frac`).
    relu : bool
        Whether a ReLU follows.
    conv : Conv, optional
        The layer is a temporal convolution and ``weights`` its kernel (one column per output
        channel, so the column-wise range is per output channel).
    """
    arith.check_bits(bits)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or not np.all(np.isfinite(w)):
        raise ValueError("weights must be a finite 2-D array (n_in, n_out)")
    b = np.asarray(bias, dtype=np.float64)
    if b.shape != (w.shape[1],) or not np.all(np.isfinite(b)):
        raise ValueError(f"bias must be finite with shape ({w.shape[1]},), got {b.shape}")
    m = arith.code_max(bits)
    lo = w.min(axis=0)
    step = (w.max(axis=0) - lo) / m
    e = _weight_exponent(lo, step, bits)
    lo_i = round_half_up(lo * 2.0**e)
    st_i = round_half_up(step * 2.0 ** (e + bits))
    # Codes are placed on the integer grid actually stored, so that the file's integers,
    # not the floats they came from, define the dequantized weights.
    scaled = w * 2.0 ** (e + bits) - (lo_i << bits)[None, :].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(st_i[None, :] > 0, scaled / np.maximum(st_i, 1)[None, :], 0.0)
    codes = np.clip(round_half_up(q), 0, m).astype(np.uint8)
    bias_i = np.clip(round_half_up(b * 2.0**out_frac),
                     -(1 << (CONST_WIDTH - 1)), (1 << (CONST_WIDTH - 1)) - 1)
    return IntLayer(codes=codes, lo=lo_i, st=st_i, bias=bias_i, w_exp=e,
                    out_frac=int(out_frac), relu=bool(relu), conv=conv)


@dataclass(frozen=True)
class LayerPlan:
    """Everything the golden model and the hardware need for one layer, derived from an
    :class:`IntLayer`, the code width and the input format.

    Attributes
    ----------
    layer : IntLayer
        The stored integers.
    bits : int
        Code width ``b``.
    in_frac : int
        Fraction bits ``Fx`` of the layer's input.
    in_signed : bool
        False when the input comes out of a ReLU (``XLO >= 0``).
    wsr : ndarray of int64, shape (n_out,)
        Rounded offline column sums ``WSR_j = round(WS_j / 2**sw)``.
    shifts : LayerShifts
        Static scaler shifts.
    widths : LayerWidths
        Width of every intermediate.
    in_geometry : Geometry, optional
        Time steps and channels of the layer's input (needed by a convolution, which takes
        one patch per output position; a dense layer takes the whole input as one vector).
    """

    layer: IntLayer
    bits: int
    in_frac: int
    in_signed: bool
    wsr: np.ndarray
    shifts: LayerShifts
    widths: LayerWidths
    in_geometry: Geometry | None = None

    @property
    def n_in(self) -> int:
        return self.layer.n_in

    @property
    def n_out(self) -> int:
        return self.layer.n_out

    @property
    def conv(self) -> Conv | None:
        return self.layer.conv

    @property
    def out_geometry(self) -> Geometry:
        """Time steps and channels of the layer's output."""
        if self.layer.conv is None or self.in_geometry is None:
            return Geometry(1, self.n_out)
        return Geometry(conv_positions(self.in_geometry.positions, self.layer.conv), self.n_out)

    @property
    def vectors(self) -> int:
        """Input vectors the layer quantizes and multiplies per window (its output positions)."""
        return self.out_geometry.positions


def plan_layer(layer: IntLayer, *, bits: int, in_frac: int, in_signed: bool,
               in_geometry: Geometry | None = None) -> LayerPlan:
    """Derive a layer's column sums, shifts and widths (see docs/arithmetic.md).

    Raises
    ------
    ValueError
        If an intermediate would not fit 62 bits, the limit the golden model's
        ``int64`` arithmetic is exact for.
    """
    m = arith.code_max(bits)
    lo = layer.lo.astype(np.int64)
    st = layer.st.astype(np.int64)
    wn = (lo[None, :] << bits) + st[None, :] * layer.codes.astype(np.int64)
    # Tight bounds of V_j = sum_i p_i Wn_ij over all codes p_i in [0, M].
    v_lo = int(m * np.minimum(wn, 0).sum(axis=0).min(initial=0))
    v_hi = int(m * np.maximum(wn, 0).sum(axis=0).max(initial=0))
    ws = wn.sum(axis=0)
    shifts = arith.layer_shifts(
        bits=bits, v_lo=v_lo, v_hi=v_hi, ws_lo=int(ws.min()), ws_hi=int(ws.max()),
        w_exp=layer.w_exp, in_frac=in_frac, out_frac=layer.out_frac)
    wsr = arith.rshift_round(ws, shifts.sw)
    widths = arith.layer_widths(
        n_in=layer.n_in, bits=bits, st_max=int(st.max(initial=0)),
        lo_min=int(lo.min()), lo_max=int(lo.max()), v_lo=v_lo, v_hi=v_hi,
        wsr_lo=int(wsr.min()), wsr_hi=int(wsr.max()),
        bias_lo=int(layer.bias.min()), bias_hi=int(layer.bias.max()),
        shifts=shifts, in_signed=in_signed)
    widest = max(widths.v, widths.t1, widths.t2, widths.z, widths.y,
                 widths.recip + arith.ACT_WIDTH + 1)
    if widest > 62:
        raise ValueError(
            f"layer {layer.n_in}x{layer.n_out}: an intermediate needs {widest} bits "
            f"(limit 62); check w_exp={layer.w_exp}, out_frac={layer.out_frac}, in_frac={in_frac}")
    return LayerPlan(layer=layer, bits=bits, in_frac=in_frac, in_signed=in_signed,
                     wsr=wsr.astype(np.int64), shifts=shifts, widths=widths,
                     in_geometry=in_geometry)


def calibrate_out_fracs(weights, biases, x: np.ndarray, headroom: float = 2.0, *,
                        convs=None, geometry: Geometry | None = None) -> list[int]:
    """Output fraction bits of each layer from the float network's activations on ``x``.

    ``x`` are calibration inputs (normalized float features, shape (N, n_in)); each layer's
    format is chosen by :func:`choose_frac` from the largest magnitude it produces.
    ``convs`` and ``geometry`` describe convolution layers (:func:`kwshw.layers.float_activations`).
    """
    acts = float_activations(weights, biases, x, convs=convs, geometry=geometry)
    return [choose_frac(float(np.max(np.abs(h), initial=0.0)), headroom) for h in acts]


def static_fake_quant(x: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """Per-tensor *static* min-max quantization (the baseline): one fixed range for a whole
    tensor, values outside it clipped. Returns the dequantized floats.
    """
    m = arith.code_max(bits)
    if hi <= lo:
        return np.full_like(np.asarray(x, np.float64), lo)
    s = (hi - lo) / m
    q = np.clip(np.floor((np.asarray(x, np.float64) - lo) / s + 0.5), 0, m)
    return lo + s * q
