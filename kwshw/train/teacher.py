"""A small convolutional teacher for knowledge distillation (training only, never deployed).

On the few thousand clips of the Speech Commands test archive a fully connected network
overfits its training speakers: trained on the labels alone it stays near 70% top-1 on
unseen speakers, while a CNN, whose convolutions and pooling build in invariance to small
shifts in time and frequency, reaches the mid 80s on the *same input window*. Distilling
the CNN's posteriors into the DNN -- on the training windows and on mixtures of them that
no label exists for -- passes some of that invariance on (Ba & Caruana 2014, "Do deep nets
really need to be deep?"; Hinton et al. 2015). The teacher sees exactly the DNN's input
window, reshaped to ``(context, n_mels)``; only the DNN is exported.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TeacherCNN"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class TeacherCNN(nn.Module):
    """Four 3x3 conv blocks (batch norm, ReLU), 2x2 max pooling between, global average pooling,
    dropout and a linear classifier, on the stacked window ``(context, n_mels)``.

    Parameters
    ----------
    context, n_mels : int
        Shape of the input window (``FeatureConfig.context``, ``FeatureConfig.n_mels``).
    n_out : int
        Number of classes.
    channels : int
        Channels of the first block (the others have twice as many).
    dropout : float
        Dropout before the classifier.
    """

    def __init__(self, context: int, n_mels: int, n_out: int, channels: int = 32,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.context, self.n_mels = int(context), int(n_mels)
        c = int(channels)
        layers: list[nn.Module] = [_block(1, c)]
        h, w, c_prev = self.context, self.n_mels, c
        for _ in range(3):
            if h >= 2 and w >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            layers.append(_block(c_prev, 2 * c))
            c_prev = 2 * c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                   nn.Linear(c_prev, n_out)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of flat input windows ``x`` (B, context * n_mels)."""
        return self.net(x.reshape(-1, 1, self.context, self.n_mels))
