"""The integer golden model of dynamic quantization, and the float reference beside it.

The golden model *defines* every bit the accelerator computes: it strings the
functions of :mod:`kwshw.arith` together in the order of the data path
(per-frame min-max -> reciprocal -> codes -> MAC -> scale multipliers ->
ReLU/saturation -> next layer). Everything else that computes the network
is checked against it for exact equality.

All functions are vectorized over leading "frame" axes and use ``int64``,
which :func:`kwshw.quantize.plan_layer` guarantees is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import arith
from .layers import Conv, Geometry, float_activations, gather_patches
from .quantize import LayerPlan

__all__ = [
    "LayerTrace",
    "run_layer",
    "layer_inputs",
    "run_network",
    "stream_windows",
    "float_forward",
    "dequantized_layer",
    "layer_error_bound",
]


@dataclass
class LayerTrace:
    """Every per-frame intermediate of one layer (leading axes: frames).

    Attributes
    ----------
    x : ndarray (..., n_in)
        Input activations ``X``.
    xlo, r, recip, rm : ndarray (...,)
        Per-frame minimum, range, reciprocal and step.
    p : ndarray (..., n_in)
        Input codes.
    psum : ndarray (...,)
        ``P = sum_i p_i``.
    acc : ndarray (..., n_out)
        MAC results ``A_j``.
    y : ndarray (..., n_out)
        Layer outputs (after ReLU/saturation).
    """

    x: np.ndarray
    xlo: np.ndarray
    r: np.ndarray
    recip: np.ndarray
    rm: np.ndarray
    p: np.ndarray
    psum: np.ndarray
    acc: np.ndarray
    y: np.ndarray


def _check_width(name: str, value: np.ndarray, width: int, signed: bool) -> None:
    lo = -(1 << (width - 1)) if signed else 0
    hi = (1 << (width - 1)) - 1 if signed else (1 << width) - 1
    if value.size and (value.min() < lo or value.max() > hi):
        raise AssertionError(f"{name} exceeds its declared {width}-bit width")


def _exact_matmul(p: np.ndarray, codes: np.ndarray, bits: int) -> np.ndarray:
    """``p @ codes`` of ``bits``-wide unsigned codes, exactly, at BLAS speed.

    Every product and partial sum is an integer below ``n_in * (2**bits - 1)**2``, under
    ``2**53`` for any layer this contract allows (``n_in < 2**37`` at 8 bits), so float64 holds
    each one exactly in any summation order; numpy's int64 matmul gives the same integers
    several times slower (it has no BLAS kernel), which matters on hour-long evaluation
    streams. The bound is the contract's, so no data is scanned for it.
    """
    if p.shape[-1] * (2**bits - 1) ** 2 >= 2**53:
        return p.astype(np.int64) @ codes.astype(np.int64)
    return (p.astype(np.float64) @ codes.astype(np.float64)).astype(np.int64)


def run_layer(plan: LayerPlan, x: np.ndarray, *, check_widths: bool = False) -> LayerTrace:
    """Run one layer of the golden model on integer input vectors.

    Parameters
    ----------
    plan : LayerPlan
        The layer's stored integers and derived constants.
    x : ndarray of int, shape (..., n_in)
        Input activations in the layer's input format.
    check_widths : bool
        Assert that every intermediate stays within its declared width (for tests).
    """
    bits = plan.bits
    x = np.asarray(x, dtype=np.int64)
    if x.shape[-1] != plan.n_in:
        raise ValueError(f"layer expects {plan.n_in} inputs, got {x.shape[-1]}")
    xlo, r = arith.frame_range(x.min(axis=-1), x.max(axis=-1))
    recip = arith.reciprocal(r, bits)
    rm = arith.step(r, bits)
    p = arith.requantize(x, xlo[..., None], recip[..., None], bits)
    psum = p.sum(axis=-1)
    acc = _exact_matmul(p, plan.layer.codes, bits)
    lay = plan.layer
    terms = arith.scale_terms(
        acc, psum[..., None], rm[..., None], xlo[..., None],
        st=lay.st, lo=lay.lo, wsr=plan.wsr, bias=lay.bias, bits=bits, shifts=plan.shifts)
    y = arith.saturate(terms.y, relu=lay.relu)
    if check_widths:
        w = plan.widths
        for name, value, width, signed in (
                ("XLO", xlo, w.xlo, True), ("R", r, w.range, False),
                ("RECIP", recip, w.recip, False), ("RM", rm, w.step, False),
                ("p", p, w.code, False), ("P", psum, w.psum, False), ("A", acc, w.acc, False),
                ("V", terms.v, w.v, True), ("VR", terms.vr, w.vr, True),
                ("T1", terms.t1, w.t1, True), ("T2", terms.t2, w.t2, True),
                ("Z", terms.z, w.z, True), ("Y", terms.y, w.y, True)):
            _check_width(name, value, width, signed)
    return LayerTrace(x=x, xlo=xlo, r=r, recip=recip, rm=rm, p=p, psum=psum, acc=acc, y=y)


def layer_inputs(plan: LayerPlan, x: np.ndarray) -> np.ndarray:
    """The vectors layer ``plan`` quantizes and multiplies, from its input ``x`` (..., size).

    A dense layer takes ``x`` as one vector; a temporal convolution takes one patch per output
    position (:func:`kwshw.layers.gather_patches`), shape (..., positions, K * channels), and
    each patch gets its own per-vector min-max range.
    """
    if plan.conv is None:
        return x
    return gather_patches(x, plan.in_geometry, plan.conv)


def run_network(plans: Sequence[LayerPlan], x: np.ndarray, *,
                check_widths: bool = False) -> list[LayerTrace]:
    """Run all layers on integer input windows; the last trace's ``y`` are the scores.

    A convolution's trace has one more leading axis (its output positions); its outputs enter
    the next layer flattened position-major.
    """
    traces = []
    for plan in plans:
        trace = run_layer(plan, layer_inputs(plan, x), check_widths=check_widths)
        traces.append(trace)
        x = trace.y if plan.conv is None else trace.y.reshape(*trace.y.shape[:-2], -1)
    return traces


def stream_windows(frames: np.ndarray, context: int, stride: int) -> np.ndarray:
    """Input vectors the accelerator sees when fed ``frames`` one per hop, from reset.

    The on-chip window starts as all zeros (the normalized mean) and holds the last
    ``(context - 1) * stride + 1`` frames; the vector for the frame at time ``t`` is the
    concatenation of frames ``t - (context - 1 - k) * stride`` for ``k = 0 .. context - 1``.

    Parameters
    ----------
    frames : ndarray of int, shape (T, n_mels)
        Integer feature frames in the input format.
    context, stride : int
        Stacking of the window (see :class:`kwshw.features.FeatureConfig`).

    Returns
    -------
    ndarray of int64, shape (T, context * n_mels)
    """
    frames = np.asarray(frames, dtype=np.int64)
    t_len, bands = frames.shape
    pad = (context - 1) * stride
    padded = np.concatenate([np.zeros((pad, bands), np.int64), frames])
    idx = np.arange(t_len)[:, None] + np.arange(context)[None, :] * stride
    return padded[idx].reshape(t_len, context * bands)


# --- Float references ---------------------------------------------------------------------------

def float_forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                  x: np.ndarray, *, convs: Sequence[Conv | None] | None = None,
                  geometry: Geometry | None = None) -> np.ndarray:
    """The float reference network: its layers (dense, or temporal convolutions given by
    ``convs`` over an input of ``geometry``) with ReLU between them."""
    return float_activations(weights, biases, x, convs=convs, geometry=geometry)[-1]


def dequantized_layer(plan: LayerPlan, trace: LayerTrace) -> np.ndarray:
    """The layer evaluated in float64 on exactly the dequantized values the integers stand for,
    in output units (``2**-Fy``), before ReLU and saturation.

    ``x_hat_i = XLO + RM * p_i * 2**-b`` (input units), ``w_hat`` from the stored integers and
    ``bias = B_j``: the golden model's only departures from this are the roundings of
    ``VR``, ``WSR`` and ``Y`` (see :func:`layer_error_bound`).
    """
    bits = plan.bits
    x_hat = (trace.xlo[..., None] + trace.rm[..., None] * trace.p * 2.0**-bits) \
        * 2.0**-plan.in_frac
    y = x_hat @ plan.layer.dequantized_weights(bits)
    return y * 2.0**plan.layer.out_frac + plan.layer.bias


def layer_error_bound(plan: LayerPlan, trace: LayerTrace) -> np.ndarray:
    """Per-frame bound on ``|y - clamp(dequantized_layer)|`` in output LSBs.

    Three roundings, each half a unit of what it rounds, carried to the output:
    ``VR`` (half a unit, times ``RM``), ``WSR`` (half a unit, times ``|XLO|``) and the
    final shift (1/2 LSB). The clamp is 1-Lipschitz, so it does
    not enlarge the bound.
    """
    s = plan.shifts
    unit = 2.0 ** -s.out  # one unit of Z, in output LSBs
    # Rounding VR moves T2 = RM * VR by at most RM/2 of its units; WSR moves T1 by |XLO|/2.
    vr_err = trace.rm * (0.5 if s.sv > 0 else 0.0) * 2.0**s.align2 * unit
    ws_err = np.abs(trace.xlo) * (0.5 if s.sw > 0 else 0.0) * 2.0**s.align1 * unit
    final = 0.5 if s.out > 0 else 0.0
    return vr_err + ws_err + final
