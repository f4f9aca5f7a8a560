"""PyTorch training (the only package that imports torch).

- :mod:`kwshw.train.qat`: the golden model's quantizers with straight-through gradients
  (:class:`QuantMLP`).
- :mod:`kwshw.train.exact`: the integer network in torch, bit-exact with the golden model
  (:class:`IntegerNet`).
- :mod:`kwshw.train.trainer`: the recipe and the entry points :func:`train`,
  :func:`train_variants`, :func:`train_reference`.
"""

from .exact import IntegerNet
from .qat import QuantMLP
from .trainer import (
    TrainConfig,
    TrainData,
    export,
    finetune_qat,
    prepare,
    train,
    train_float,
    train_reference,
    train_variants,
)

__all__ = [
    "IntegerNet",
    "QuantMLP",
    "TrainConfig",
    "TrainData",
    "export",
    "finetune_qat",
    "prepare",
    "train",
    "train_float",
    "train_reference",
    "train_variants",
]
