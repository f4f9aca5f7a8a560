"""PyTorch training (the only package that imports torch)."""

from .trainer import TrainConfig, train, train_reference

__all__ = ["TrainConfig", "train", "train_reference"]
