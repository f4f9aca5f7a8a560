"""Layer kinds of the network: where each layer's input vectors come from.

Every layer of a kwshw network computes the same thing on each of its input vectors: per-vector
min-max requantization, a column-wise quantized matrix product and the per-column scale
multipliers (:func:`kwshw.golden.run_layer`). What differs between kinds is only which input
values form a vector:

* a **dense** layer has one input vector per window: the previous layer's whole output,
  flattened position-major (``position * channels + channel``);
* a **temporal convolution** over ``positions`` time steps of ``channels`` values has one
  input vector (a *patch*) per output position: ``kernel`` consecutive time steps, ``stride``
  steps apart from one position to the next, laid out like the window (step-major, channels
  within a step). Its matrix is the kernel, stored once: ``kernel * channels`` rows, one column
  per output channel, so column-wise weight quantization is per output channel.

Each patch is quantized with its own min-max range, just as the dense layer's single vector is
(``docs/arithmetic.md``, "Convolutions"). The functions below accept NumPy arrays and PyTorch
tensors alike, so the golden model and the QAT network gather identical patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .features import parse_counts

__all__ = ["REFERENCE_CNN", "Conv", "Geometry", "conv_positions", "network_shapes",
           "parse_conv", "parse_convs", "patch_index", "gather_patches", "float_layer",
           "float_activations"]

#: The reference convolutional network (the CNN recipe, :data:`kwshw.train.trainer.CNN_RECIPE`,
#: and the random stand-in of :func:`boards.refmodel.random_cnn`): ``(kernel, stride,
#: channels)`` of each temporal convolution, then the widths of the dense hidden layers:
#: 53,456 weights, 214 kbit at 4 bits (docs/training.md, "The CNN recipe").
REFERENCE_CNN: dict = {"convs": ((5, 1, 64), (3, 2, 64), (3, 2, 64)), "hidden": (60,)}


@dataclass(frozen=True)
class Conv:
    """A temporal convolution's shape along time.

    Attributes
    ----------
    kernel : int
        Time steps per patch ``K``.
    stride : int
        Time steps between consecutive output positions ``S``.
    """

    kernel: int
    stride: int

    def __post_init__(self) -> None:
        if int(self.kernel) != self.kernel or int(self.stride) != self.stride \
                or self.kernel < 1 or self.stride < 1:
            raise ValueError(f"a convolution needs kernel >= 1 and stride >= 1, "
                             f"got kernel={self.kernel}, stride={self.stride}")


def parse_conv(text: str) -> tuple[int, int, int]:
    """``"K,S,C"`` (kernel steps, stride steps, output channels) as ``(K, S, C)``.

    Raises
    ------
    ValueError
        Unless three integers of at least 1.
    """
    k, s, c = parse_counts(text, ("K", "S", "C"), "kernel steps, stride steps, channels")
    return (k, s, c)


def parse_convs(text: str) -> tuple[tuple[int, int, int], ...]:
    """``"K,S,C;K,S,C;..."`` as a stack of convolutions, first first (:func:`parse_conv`).

    Raises
    ------
    ValueError
        If any convolution is malformed.
    """
    return tuple(parse_conv(c) for c in text.split(";"))


@dataclass(frozen=True)
class Geometry:
    """The shape of an activation vector: ``positions`` time steps of ``channels`` values."""

    positions: int
    channels: int

    @property
    def size(self) -> int:
        return self.positions * self.channels


def conv_positions(positions: int, conv: Conv) -> int:
    """Output positions of ``conv`` over ``positions`` input time steps (no padding).

    Raises
    ------
    ValueError
        When the kernel is longer than the input.
    """
    if conv.kernel > positions:
        raise ValueError(f"a {conv.kernel}-step kernel does not fit {positions} time steps")
    return (positions - conv.kernel) // conv.stride + 1


def network_shapes(geometry: Geometry, convs: Sequence[Sequence[int]],
                   widths: Sequence[int]) -> tuple[list[Conv | None], list[tuple[int, int]],
                                                   list[Geometry]]:
    """The layers of temporal convolutions then dense layers over an input of ``geometry``.

    Parameters
    ----------
    geometry : Geometry
        The input window.
    convs : sequence of (kernel, stride, channels)
        The convolutions, first to last.
    widths : sequence of int
        Output widths of the dense layers after them (hidden layers, then the outputs).

    Returns
    -------
    kinds : list of Conv or None
        Each layer's convolution, ``None`` for a dense layer (what the model file stores).
    matrices : list of (rows, columns)
        Each layer's weight matrix: ``(kernel * C_in, C_out)`` for a convolution (its kernel,
        stored once), ``(n_in, n_out)`` for a dense layer.
    geometries : list of Geometry
        The input of every convolution, then the last convolution's output.

    Raises
    ------
    ValueError
        For a convolution that is not ``(kernel, stride, channels)`` with ``channels >= 1``, or
        whose kernel does not fit its input.
    """
    kinds, matrices, geometries = [], [], [geometry]
    for spec in convs:
        if len(spec) != 3 or spec[2] < 1:
            raise ValueError(f"a convolution is (kernel, stride, channels), got {tuple(spec)}")
        kernel, stride, channels = (int(v) for v in spec)
        conv = Conv(kernel, stride)
        kinds.append(conv)
        matrices.append((kernel * geometry.channels, channels))
        geometry = Geometry(conv_positions(geometry.positions, conv), channels)
        geometries.append(geometry)
    n_in = geometry.size
    for width in widths:
        kinds.append(None)
        matrices.append((n_in, int(width)))
        n_in = int(width)
    return kinds, matrices, geometries


def patch_index(positions: int, conv: Conv) -> np.ndarray:
    """``(out_positions, kernel)`` indices of the input time steps that form each patch."""
    n_out = conv_positions(positions, conv)
    return np.arange(n_out)[:, None] * conv.stride + np.arange(conv.kernel)[None, :]


def gather_patches(x, geometry: Geometry, conv: Conv):
    """The patches of ``x`` (..., positions * channels): shape (..., out_positions, K * channels).

    Works on NumPy arrays and PyTorch tensors (both index with the NumPy index array alike).
    """
    idx = patch_index(geometry.positions, conv)
    lead = tuple(x.shape[:-1])
    if x.shape[-1] != geometry.size:
        raise ValueError(f"expected {geometry.size} values ({geometry.positions} steps x "
                         f"{geometry.channels} channels), got {x.shape[-1]}")
    steps = x.reshape(*lead, geometry.positions, geometry.channels)
    patches = steps[..., idx, :]
    return patches.reshape(*lead, idx.shape[0], conv.kernel * geometry.channels)


def float_layer(h: np.ndarray, w: np.ndarray, b: np.ndarray, conv: Conv | None,
                geometry: Geometry | None) -> tuple[np.ndarray, Geometry | None]:
    """One float layer before its ReLU: ``h @ w + b`` on the layer's input vectors.

    Returns the output (..., positions * channels) and its geometry (``None`` when the input's
    is unknown and the layer is dense).
    """
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    if conv is None:
        return h @ w + b, (None if geometry is None else Geometry(1, w.shape[1]))
    if geometry is None:
        raise ValueError("a convolution layer needs the input geometry")
    y = gather_patches(h, geometry, conv) @ w + b
    return y.reshape(*h.shape[:-1], -1), Geometry(conv_positions(geometry.positions, conv),
                                                  w.shape[1])


def float_activations(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
                      *, convs: Sequence[Conv | None] | None = None,
                      geometry: Geometry | None = None) -> list[np.ndarray]:
    """Every layer's output of the float network (ReLU after all layers but the last).

    Parameters
    ----------
    weights, biases : sequences of ndarray
        ``(n_in, n_out)`` matrices (a convolution's kernel) and biases.
    x : ndarray, shape (..., n_in)
        Network inputs (the flattened window).
    convs : sequence of Conv or None, optional
        Each layer's convolution, ``None`` for dense layers (all dense when omitted).
    geometry : Geometry, optional
        Time steps and channels of the input; needed when there are convolutions.

    Returns
    -------
    list of ndarray of float64, each (..., positions * channels) of its layer's output.
    """
    convs = [None] * len(weights) if convs is None else list(convs)
    h = np.asarray(x, dtype=np.float64)
    out = []
    for k, (w, b, conv) in enumerate(zip(weights, biases, convs, strict=True)):
        h, geometry = float_layer(h, w, b, conv, geometry)
        if k < len(weights) - 1:
            h = np.maximum(h, 0.0)
        out.append(h)
    return out
