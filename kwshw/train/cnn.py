"""The convolutional network of the CNN recipe, with the golden model's quantizers.

:class:`QuantCNN` is a stack of temporal convolutions over the feature window followed by dense
layers, ReLU between layers, as :mod:`kwshw.layers` defines them: a convolution takes one
*patch* (``kernel`` consecutive steps of all channels) per output position and multiplies it
by its kernel, stored once. With ``bits`` set, every patch (and every dense layer's input
vector) is fake-quantized with its own min-max range and every kernel column-wise, one column
per output channel (:func:`kwshw.train.qat.fake_quant_act`, :func:`fake_quant_weight`): the
quantizers of the golden model, so the exported integers compute what QAT trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..layers import Conv, Geometry, gather_patches, network_shapes
from .qat import QuantNet, fake_quant_act, fake_quant_weight

__all__ = ["QuantCNN"]


class QuantCNN(QuantNet):
    """Temporal convolutions then dense layers, with switchable fake quantization.

    Parameters
    ----------
    context, n_mels : int
        The input window: ``context`` steps of ``n_mels`` bands, flattened step-major.
    convs : sequence of (kernel, stride, channels)
        The convolutions, first to last.
    hidden : sequence of int
        Widths of the dense hidden layers after the convolutions.
    n_out : int
        Number of classes.
    bits : int or None
        ``None``: float network. ``2..8``: fake-quantized at this width.
    dropout, input_dropout : float
        Dropout after every hidden ReLU / on the input (training only).
    batch_norm : bool
        Batch norm before every hidden ReLU (float training only; :meth:`folded` merges it).

    Kernels are stored as ``(kernel * in_channels, out_channels)`` matrices, rows step-major
    (the layout of :func:`kwshw.layers.gather_patches` and of the model file).
    """

    def __init__(self, context: int, n_mels: int, convs: Sequence[Sequence[int]],
                 hidden: Sequence[int], n_out: int, *, bits: int | None = None,
                 dropout: float = 0.0, input_dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.context, self.n_mels = int(context), int(n_mels)
        self.conv_spec = tuple(tuple(int(v) for v in c) for c in convs)
        self.hidden = tuple(int(h) for h in hidden)
        self.n_out = int(n_out)
        self.geometries, shapes = self._shapes()
        self._make_layers(shapes, batch_norm=batch_norm, bits=bits, dropout=dropout,
                          input_dropout=input_dropout)

    def _shapes(self) -> tuple[list[Geometry], list[tuple[int, int]]]:
        if not self.conv_spec:
            raise ValueError("QuantCNN needs at least one convolution")
        _, matrices, geometries = network_shapes(Geometry(self.context, self.n_mels),
                                                 self.conv_spec, [*self.hidden, self.n_out])
        return geometries, matrices

    @property
    def convs(self) -> list[Conv | None]:
        """Each layer's convolution (``None`` for the dense layers), as the model file stores."""
        return [Conv(k, s) for k, s, _ in self.conv_spec] + \
            [None] * (len(self.hidden) + 1)

    def _layer(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Layer ``k`` before its norm and ReLU: (N, size) -> (N, positions, channels)."""
        conv = self.convs[k]
        x = h[:, None, :] if conv is None else gather_patches(h, self.geometries[k], conv)
        w = self.weights[k]
        if self._bits is not None:
            x = fake_quant_act(x, self._bits)
            w = fake_quant_weight(w, self._bits)
        return x @ w + self.biases[k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.weights)
        if self.input_dropout and self.training:
            x = nn.functional.dropout(x, self.input_dropout, True)
        for k in range(n):
            y = self._layer(k, x)
            if k < n - 1:
                if self.norms is not None:
                    y = self.norms[k](y.reshape(-1, y.shape[-1])).reshape(y.shape)
                y = torch.relu(y)
                if self.dropout and self.training:
                    y = nn.functional.dropout(y, self.dropout, True)
            x = y.reshape(len(y), -1)
        return x

    def _unnormed(self) -> QuantCNN:
        return QuantCNN(self.context, self.n_mels, self.conv_spec, self.hidden, self.n_out,
                        dropout=self.dropout, input_dropout=self.input_dropout)

    def numpy_params(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The latent float kernels/matrices and biases as float64 NumPy arrays (batch norm
        folded in): what the model file stores."""
        if self.norms is not None:
            return self.folded().numpy_params()
        ws = [w.detach().double().cpu().numpy().copy() for w in self.weights]
        bs = [b.detach().double().cpu().numpy().copy() for b in self.biases]
        return ws, bs
