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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .. import arith, quantize

__all__ = [
    "QuantMLP",
    "fake_quant_act",
    "fake_quant_weight",
    "round_half_up",
    "weight_grid",
]


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 1/2)``: the contract's rounding (torch.round rounds half to even)."""
    return torch.floor(x + 0.5)


class _StraightThrough(torch.autograd.Function):
    """Forward: exactly ``q`` (``x + (q - x).detach()`` would round). Backward: identity."""

    @staticmethod
    def forward(ctx, x, q):  # noqa: D102
        return q.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad, None


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
        lo = x.min(dim=-1, keepdim=True).values
        r = x.max(dim=-1, keepdim=True).values - lo
        safe = torch.where(r > 0, r, torch.ones_like(r))
        p = round_half_up((x - lo) * (m / safe)).clamp(0, m)
        xq = torch.where(r > 0, lo + p * (safe / m), x)
    return _ste(x, xq)


class QuantMLP(nn.Module):
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

    Weights are stored as ``(n_in, n_out)`` matrices (column ``j`` feeds output ``j``), the
    layout of the model file.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, bits: int | None = None,
                 dropout: float = 0.0, input_dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        sizes = [int(n_in), *map(int, hidden), int(n_out)]
        self.sizes = sizes
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            # PyTorch's nn.Linear initialisation (Kaiming-uniform, a = sqrt(5)).
            bound = 1.0 / np.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(b).uniform_(-bound, bound)))
        self.norms = nn.ModuleList(nn.BatchNorm1d(h) for h in sizes[1:-1]) if batch_norm else None
        self.bits = bits
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)

    @property
    def bits(self) -> int | None:
        return self._bits

    @bits.setter
    def bits(self, bits: int | None) -> None:
        if bits is not None and getattr(self, "norms", None) is not None:
            raise ValueError("fold the batch norm first (QuantMLP.folded()): the quantizers "
                             "see the weights the accelerator stores")
        self._bits = None if bits is None else arith.check_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.weights)
        if self.input_dropout and self.training:
            x = nn.functional.dropout(x, self.input_dropout, True)
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if self._bits is not None:
                x = fake_quant_act(x, self._bits)
                w = fake_quant_weight(w, self._bits)
            x = x @ w + b
            if k < n - 1:
                if self.norms is not None:
                    x = self.norms[k](x)
                x = torch.relu(x)
                if self.dropout and self.training:
                    x = nn.functional.dropout(x, self.dropout, True)
        return x

    @torch.no_grad()
    def folded(self) -> QuantMLP:
        """A copy without batch norm that computes the same function in inference mode.

        Every norm's running statistics and affine parameters are merged into the matrix and
        bias before it: ``y = (x W + b - mu) g / sqrt(var + eps) + beta``. A network without
        batch norm is returned as a plain copy.
        """
        out = QuantMLP(self.sizes[0], self.sizes[1:-1], self.sizes[-1], bits=None,
                       dropout=self.dropout, input_dropout=self.input_dropout)
        out = out.to(self.weights[0].dtype)
        out.load_state_dict({k: v for k, v in self.state_dict().items()
                             if not k.startswith("norms.")})
        if self.norms is not None:
            for k, bn in enumerate(self.norms):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                out.weights[k].mul_(scale)
                out.biases[k].copy_((self.biases[k] - bn.running_mean) * scale + bn.bias)
        out.bits = self._bits
        out.train(self.training)
        return out

    def numpy_params(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The latent float weights ``(n_in, n_out)`` and biases as float64 NumPy arrays
        (batch norm folded in)."""
        if self.norms is not None:
            return self.folded().numpy_params()
        ws = [w.detach().double().cpu().numpy().copy() for w in self.weights]
        bs = [b.detach().double().cpu().numpy().copy() for b in self.biases]
        return ws, bs
