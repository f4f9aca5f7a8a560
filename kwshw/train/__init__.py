"""PyTorch training (the only package that imports torch).

- :mod:`kwshw.train.qat`: the golden model's quantizers with straight-through gradients
  (:class:`QuantMLP`).
- :mod:`kwshw.train.exact`: the integer network in torch, bit-exact with the golden model
  (:class:`IntegerNet`).
- :mod:`kwshw.train.trainer`: the recipe and the entry points :func:`train`,
  :func:`train_variants`, :func:`train_reference`.
"""

import os as _os

# Must happen before torch loads its OpenMP runtime. By default OpenMP worker threads spin
# while they wait for work; with anything else busy on the machine (a second training, a
# synthesis job) the spinning threads starve each other and training gets 5-50x slower.
# Measured on the 2-core machine (docs/training.md): two trainings at once 6.0 s/epoch each
# spinning vs 0.75-1.4 s/epoch passive; one training beside a build 1.5 vs 0.6 s/epoch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .exact import IntegerNet  # noqa: E402
from .qat import QuantMLP  # noqa: E402
from .trainer import (  # noqa: E402
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
