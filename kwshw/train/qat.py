"""Quantization-aware training: the golden model's quantizers in a PyTorch forward pass.

Two quantizers, both min-max and both affine, exactly as :mod:`kwshw.quantize` and
:mod:`kwshw.golden` define them:

- **weights, column-wise** (:func:`fake_quant_weight`): column ``j`` of ``W`` (``n_in x n_out``,
  column ``j`` feeds output ``j``) is replaced by the values its stored integers stand for,
  ``w_hat_ij = (LO_j 2**b + ST_j q_ij) 2**-(Ew + b)``, with ``LO_j``, ``ST_j``, ``Ew`` and
  ``q_ij`` computed the way :func:`kwshw.quantize.quantize_layer` computes them. In float64 the
  result equals :meth:`kwshw.quantize.IntLayer.dequantized_weights` of the exported layer.
- **activations, per frame** (:func:`fake_quant_act`): every layer's input vector (one row of
  the batch = one frame) is quantized with its own min-max range,
  ``p = round((x - min) M / R)``, dequantized ``min + R p / M`` (``M = 2**b - 1``, ``R = max -
  min``; a constant row is kept as it is, the contract's ``R = 0`` case).

Rounding is half up (``floor(v + 1/2)``), the contract's one rounding mode. Gradients are
straight-through: the backward pass sees the identity, so the latent float weights keep
learning from changes smaller than a quantization step.

The first layer may be trained as a **convolution over time** (a TDNN layer,
:func:`expand_time_conv`): one small kernel of ``kernel`` frames x all mel bands per output
channel, slid along the window with a stride. It is still one fully connected layer, whose
``n_in x (positions * channels)`` matrix holds the kernel once per position and zeros
elsewhere; that expanded matrix is what the quantizers, the model file, the golden model and
the accelerator see. Tying the positions' weights during training gives the network the
shift invariance along time that a plain first layer would have to learn from data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .. import arith, quantize
from ..layers import Conv, conv_positions

__all__ = [
    "QuantMLP",
    "QuantNet",
    "align_zero",
    "expand_time_conv",
    "fake_quant_act",
    "fake_quant_weight",
    "fold_batch_norms",
    "round_half_up",
    "time_conv_positions",
    "weight_grid",
]


class _StraightThrough(torch.autograd.Function):
    """Forward: exactly ``q`` (``x + (q - x).detach()`` would round). Backward: identity."""

    @staticmethod
    def forward(ctx, x, q):  # noqa: D102
        return q.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad, None


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """:func:`kwshw.arith.round_half_up` of a tensor, ``floor(x + 1/2)``, the same values
    (floor division by 1 is the floor; tested): PyTorch's float floor division takes an
    ``fmod``, a division and two corrections per element, several times the floor's time,
    and the quantizers round every activation of every training step."""
    return torch.floor(x + 0.5)


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` in the forward pass, the identity's gradient in the backward pass."""
    return _StraightThrough.apply(x, q.detach())


@torch.no_grad()
def weight_grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The integers :func:`kwshw.quantize.quantize_layer` stores for weights ``w`` (n_in, n_out).

    Returns ``(codes, lo, st, w_exp)`` as float tensors of ``w``'s dtype (exact integers) and
    the weight exponent. The exponent is found by the quantizer's own search
    (``quantize._weight_exponent``) so there is one definition of it.
    """
    m = arith.code_max(bits)
    lo = w.min(dim=0).values
    step = (w.max(dim=0).values - lo) / m
    e = quantize._weight_exponent(lo.double().cpu().numpy(), step.double().cpu().numpy(), bits)
    lo_i = round_half_up(lo.double() * 2.0**e)
    st_i = round_half_up(step.double() * 2.0 ** (e + bits))
    scaled = w.double() * 2.0 ** (e + bits) - lo_i * 2.0**bits
    q = torch.where(st_i > 0, scaled / st_i.clamp(min=1), torch.zeros_like(scaled))
    codes = round_half_up(q).clamp(0, m)
    return codes.to(w.dtype), lo_i.to(w.dtype), st_i.to(w.dtype), e


def fake_quant_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Column-wise min-max fake quantization of ``w`` (n_in, n_out), straight-through."""
    codes, lo_i, st_i, e = weight_grid(w, bits)
    wq = (lo_i.double() * 2.0**bits + st_i.double() * codes.double()) * 2.0 ** -(e + bits)
    return _ste(w, wq.to(w.dtype))


def fake_quant_act(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-row (per-frame) min-max fake quantization of ``x`` (..., n), straight-through."""
    m = arith.code_max(bits)
    with torch.no_grad():
        lo, hi = torch.aminmax(x, dim=-1, keepdim=True)
        r = hi - lo
        safe = torch.where(r > 0, r, torch.ones_like(r))
        p = round_half_up((x - lo) * (m / safe)).clamp(0, m)
        xq = torch.where(r > 0, lo + p * (safe / m), x)
    return _ste(x, xq)


def time_conv_positions(context: int, kernel: int, stride: int, channels: int = 1) -> int:
    """Number of kernel positions of a time convolution over a ``context``-frame window.

    Raises
    ------
    ValueError
        For a kernel longer than the window, a stride or channel count below 1.
    """
    if not 1 <= kernel <= context or stride < 1:
        raise ValueError(f"time convolution kernel {kernel} / stride {stride} does not fit a "
                         f"{context}-frame window (need 1 <= kernel <= {context}, stride >= 1)")
    if channels < 1:
        raise ValueError(f"time convolution needs at least 1 channel, got {channels}")
    return conv_positions(context, Conv(kernel, stride))


def expand_time_conv(kernel: torch.Tensor, bias: torch.Tensor, context: int, n_mels: int,
                     stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fully connected layer that computes a time convolution over a window.

    Parameters
    ----------
    kernel : torch.Tensor
        ``(k * n_mels, channels)``: column ``c`` is channel ``c``'s kernel over ``k``
        consecutive frames, laid out like the window (frame-major, bands within a frame).
    bias : torch.Tensor
        ``(channels,)``.
    context, n_mels : int
        The window: ``context`` frames of ``n_mels`` bands, oldest first.
    stride : int
        Frames between the kernel's positions.

    Returns
    -------
    weight : torch.Tensor
        ``(context * n_mels, positions * channels)``; output ``p * channels + c`` is channel
        ``c`` at the window's frames ``p * stride .. p * stride + k - 1``. Differentiable in
        ``kernel`` (the positions share it).
    bias : torch.Tensor
        ``(positions * channels,)``.
    """
    k = kernel.shape[0] // n_mels
    if k * n_mels != kernel.shape[0]:
        raise ValueError(f"kernel rows {kernel.shape[0]} are not a multiple of {n_mels} bands")
    n_pos = time_conv_positions(context, k, stride)
    blocks = [nn.functional.pad(kernel, (0, 0, p * stride * n_mels,
                                         (context - p * stride - k) * n_mels))
              for p in range(n_pos)]
    return torch.cat(blocks, dim=1), bias.repeat(n_pos)


def align_zero(kernel: torch.Tensor, levels: int) -> torch.Tensor:
    """``kernel`` with each column's negative part scaled so that 0 falls on its code grid.

    A column of an expanded time convolution is the kernel plus many zeros. Column-wise
    min-max quantization places ``levels + 1`` codes evenly over ``[min, max]`` of the column
    (zeros included), and 0 is in general *between* two codes: every one of the column's zeros
    would become the same small nonzero weight, an error that adds up coherently over the
    window instead of averaging out (a 4-bit network of the unaligned recipe drops from 77% to
    30%). Scaling the column's negative values by ``alpha > 0`` makes ``-min / (max - min)``
    the nearest ``k / levels`` with ``1 <= k <= levels - 1``, so that 0 is code ``k`` exactly
    (up to the rounding of the stored ``LO`` and ``ST``: below 2**-7 of a step). Columns
    without negative or without positive values are left as they are (0 is their min or max).
    ``levels = 15`` also aligns 8-bit grids (255 = 15 x 17). Differentiable in ``kernel``
    (``k`` is a constant of each step); idempotent, and exact under positive or negative
    scaling of a column, so batch-norm folding keeps the alignment.
    """
    lo, hi = kernel.min(dim=0).values, kernel.max(dim=0).values
    mixed = (lo < 0) & (hi > 0)
    # 1 in the other columns keeps the division finite; their alpha is 1 below.
    neg, pos = torch.where(mixed, -lo, 1.0), torch.where(mixed, hi, 1.0)
    target = torch.round((neg / (pos + neg)).detach() * levels).clamp(1, levels - 1) / levels
    alpha = torch.where(mixed, target * pos / ((1 - target) * neg), 1.0)
    return torch.where(kernel < 0, kernel * alpha, kernel)


@torch.no_grad()
def fold_batch_norms(net: nn.Module, out: nn.Module) -> None:
    """Merge ``net.norms`` (one per hidden layer, in inference mode) into ``out``'s weights and
    biases: ``y = (x W + b - mu) g / sqrt(var + eps) + beta``, column by column."""
    for k, bn in enumerate(net.norms):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        out.weights[k].mul_(scale)
        out.biases[k].copy_((net.biases[k] - bn.running_mean) * scale + bn.bias)


class QuantNet(nn.Module):
    """What the recipe's networks share: trained matrices and biases, batch norm that folds
    away, switchable fake quantization (:class:`QuantMLP`, :class:`kwshw.train.cnn.QuantCNN`).
    """

    def _make_layers(self, shapes: Sequence[tuple[int, int]], *, batch_norm: bool,
                     bits: int | None, dropout: float, input_dropout: float) -> None:
        """One ``(rows, columns)`` matrix and bias per layer, a norm per hidden layer."""
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in shapes:
            # PyTorch's nn.Linear initialisation (Kaiming-uniform, a = sqrt(5)); for a kernel
            # the fan-in is the kernel's, not the window's.
            bound = 1.0 / np.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(b).uniform_(-bound, bound)))
        # One norm per trained column: per channel for a convolution (its positions share the
        # kernel, so they share the norm and stay tied when it is folded).
        self.norms = (nn.ModuleList(nn.BatchNorm1d(b) for _, b in shapes[:-1])
                      if batch_norm else None)
        self.bits = bits
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)

    @property
    def bits(self) -> int | None:
        return self._bits

    @bits.setter
    def bits(self, bits: int | None) -> None:
        if bits is not None and getattr(self, "norms", None) is not None:
            raise ValueError(f"fold the batch norm first ({type(self).__name__}.folded()): "
                             "the quantizers see the weights the accelerator stores")
        self._bits = None if bits is None else arith.check_bits(bits)

    def _unnormed(self) -> QuantNet:
        """A new network of the same shape without batch norm (subclasses)."""
        raise NotImplementedError

    def _fold_into(self, out: QuantNet) -> None:
        """Merge this network's norms into ``out``, a copy of its parameters."""
        if self.norms is not None:
            fold_batch_norms(self, out)

    @torch.no_grad()
    def folded(self) -> QuantNet:
        """A copy without batch norm that computes the same function in inference mode.

        Every norm's running statistics and affine parameters are merged into the matrix and
        bias before it: ``y = (x W + b - mu) g / sqrt(var + eps) + beta``. A network without
        batch norm is returned as a plain copy.
        """
        out = self._unnormed().to(self.weights[0].dtype)
        out.load_state_dict({k: v for k, v in self.state_dict().items()
                             if not k.startswith("norms.")})
        self._fold_into(out)
        out.bits = self._bits
        out.train(self.training)
        return out


class QuantMLP(QuantNet):
    """Fully connected network with ReLU between layers and switchable fake quantization.

    Parameters
    ----------
    n_in : int
        Input width (``FeatureConfig.n_inputs``).
    hidden : sequence of int
        Hidden layer widths, e.g. ``(128, 128, 128)``.
    n_out : int
        Number of classes.
    bits : int or None
        ``None``: float network. ``2..8``: weights and every layer input are fake-quantized
        at this width (settable later through :attr:`bits`).
    dropout : float
        Dropout after every hidden ReLU (training only).
    input_dropout : float
        Dropout on the network input (training only).
    batch_norm : bool
        Batch normalization between every hidden layer's matrix product and its ReLU (float
        training only). The accelerator has no batch norm: :meth:`folded` merges it into the
        weights and biases, which :meth:`numpy_params` and QAT (``bits`` set) require.
    time_conv : (kernel, stride, channels), optional
        Train the first layer as a convolution over time (:func:`expand_time_conv`): the first
        hidden layer is then ``positions * channels`` wide and ``hidden`` lists the layers
        after it. Needs ``n_mels``.
    n_mels : int, optional
        Bands per frame of the input window (``n_in = context * n_mels``).

    Weights are stored as ``(n_in, n_out)`` matrices (column ``j`` feeds output ``j``), the
    layout of the model file.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, bits: int | None = None,
                 dropout: float = 0.0, input_dropout: float = 0.0,
                 batch_norm: bool = False, time_conv: Sequence[int] | None = None,
                 n_mels: int | None = None) -> None:
        super().__init__()
        n_in = int(n_in)
        self.time_conv = None if time_conv is None else tuple(int(v) for v in time_conv)
        self.n_mels = None if n_mels is None else int(n_mels)
        # (rows, columns) of every trained matrix; the first is the kernel with a time conv.
        shapes = []
        if self.time_conv is not None:
            if len(self.time_conv) != 3 or self.n_mels is None or self.n_mels < 1 \
                    or n_in % self.n_mels:
                raise ValueError(f"time_conv needs (kernel, stride, channels) and n_mels "
                                 f"dividing n_in = {n_in}; got {time_conv}, {n_mels}")
            k, stride, channels = self.time_conv
            self._context = n_in // self.n_mels
            self._positions = time_conv_positions(self._context, k, stride, channels)
            shapes.append((k * self.n_mels, channels))
            widths = [n_in, self._positions * channels, *map(int, hidden), int(n_out)]
        else:
            widths = [n_in, *map(int, hidden), int(n_out)]
        shapes += list(zip(widths[len(shapes):-1], widths[len(shapes) + 1:], strict=True))
        self.sizes = widths
        self._make_layers(shapes, batch_norm=batch_norm, bits=bits, dropout=dropout,
                          input_dropout=input_dropout)

    @property
    def convs(self) -> list[None]:
        """Every layer is dense in the model file (a time convolution is stored expanded)."""
        return [None] * len(self.weights)

    def layer(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``k``'s fully connected weight ``(n_in, n_out)`` and bias (the expanded
        time convolution for ``k = 0`` when there is one)."""
        if k == 0 and self.time_conv is not None:
            return expand_time_conv(self._kernel(), self.biases[0], self._context,
                                    self.n_mels, self.time_conv[1])
        return self.weights[k], self.biases[k]

    def _kernel(self) -> torch.Tensor:
        # Zero on the code grid of the width being trained (15 levels for float: 4 and 8 bits).
        levels = arith.code_max(self._bits) if self._bits is not None else 15
        return align_zero(self.weights[0], levels)

    def _norm(self, k: int, x: torch.Tensor) -> torch.Tensor:
        if k == 0 and self.time_conv is not None:
            n, c = len(x), self.time_conv[2]
            y = self.norms[0](x.view(n, self._positions, c).transpose(1, 2))
            return y.transpose(1, 2).reshape(n, -1)
        return self.norms[k](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.weights)
        if self.input_dropout and self.training:
            x = nn.functional.dropout(x, self.input_dropout, True)
        for k in range(n):
            w, b = self.layer(k)
            if self._bits is not None:
                x = fake_quant_act(x, self._bits)
                w = fake_quant_weight(w, self._bits)
            x = x @ w + b
            if k < n - 1:
                if self.norms is not None:
                    x = self._norm(k, x)
                x = torch.relu(x)
                if self.dropout and self.training:
                    x = nn.functional.dropout(x, self.dropout, True)
        return x

    def _unnormed(self) -> QuantMLP:
        hidden = self.sizes[2:-1] if self.time_conv is not None else self.sizes[1:-1]
        return QuantMLP(self.sizes[0], hidden, self.sizes[-1], bits=None,
                        dropout=self.dropout, input_dropout=self.input_dropout,
                        time_conv=self.time_conv, n_mels=self.n_mels)

    def _fold_into(self, out: QuantMLP) -> None:
        if self.time_conv is not None:  # the aligned kernel, which folding keeps aligned
            out.weights[0].copy_(self._kernel())
        super()._fold_into(out)

    def numpy_params(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The latent float weights ``(n_in, n_out)`` and biases as float64 NumPy arrays
        (batch norm folded in, a time convolution expanded): what the model file stores."""
        if self.norms is not None:
            return self.folded().numpy_params()
        with torch.no_grad():
            layers = [self.layer(k) for k in range(len(self.weights))]
        ws = [w.detach().double().cpu().numpy().copy() for w, _ in layers]
        bs = [b.detach().double().cpu().numpy().copy() for _, b in layers]
        return ws, bs
