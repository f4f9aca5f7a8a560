"""Log-mel filterbank energy (LFBE) front end.

The configuration is carried by every model file, so a model is always paired
with the exact front end it was trained on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["FeatureConfig"]


@dataclass(frozen=True)
class FeatureConfig:
    """Exact definition of the front end and of the stacked input window.

    Attributes
    ----------
    sample_rate : int
        Audio sample rate in Hz; other rates are resampled or refused by :mod:`kwshw.audio`.
    win_length : int
        Analysis window length in samples (25 ms).
    hop_length : int
        Hop between feature frames in samples (10 ms); the host sends one frame per hop.
    n_fft : int
        FFT size (>= ``win_length``).
    n_mels : int
        Number of mel bands (one feature frame has ``n_mels`` values).
    fmin, fmax : float
        Edges of the mel filterbank in Hz.
    log_floor : float
        Energies are floored at this value before the natural logarithm.
    context : int
        Number of feature frames stacked into the model's input window.
    stride : int
        Hops between two stacked frames; the window spans ``(context - 1) * stride + 1`` frames.
    """

    sample_rate: int = 16000
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    log_floor: float = 1e-6
    context: int = 25
    stride: int = 4

    @property
    def n_inputs(self) -> int:
        """Length of the model's input vector (``context * n_mels``)."""
        return self.context * self.n_mels

    @property
    def span(self) -> int:
        """Number of consecutive feature frames the input window covers."""
        return (self.context - 1) * self.stride + 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature configuration keys: {sorted(unknown)}")
        return cls(**d)
