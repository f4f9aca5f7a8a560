"""The front end a :class:`~kwshw.features.FeatureConfig` names: float64 or integer.

Every path from audio to a model's input (feature extraction for training and evaluation,
the stream evaluation, the host that feeds a board) asks this module, so a model trained on
the integer front end (``FeatureConfig.integer``) is trained, evaluated and run on the same
integers the standalone gateware computes:

- :func:`lfbe`: the smoothed log-mel frames, ``float32`` nat; for the integer front end the
  exact values of :meth:`kwshw.features_int.IntFrontEnd.lfbe` (multiples of ``2^-16``).
- :func:`normalizer`: the per-band normalization that turns them into the network's input;
  for the integer front end an :class:`~kwshw.features_int.IntNormalizer`, whose output times
  ``2^in_frac`` is the gateware's input code.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import features
from .features import FeatureConfig, Normalizer
from .features_int import IntFrontEnd, IntNormalizer, pcm_from_float

__all__ = ["integer_front_end", "lfbe", "normalizer"]


@lru_cache(maxsize=8)
def integer_front_end(cfg: FeatureConfig) -> IntFrontEnd:
    """The (unnormalized) :class:`IntFrontEnd` of ``cfg``, built once: its ROMs and derived
    ranges cost more than a clip's features."""
    return IntFrontEnd(cfg)


def lfbe(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Smoothed log-mel frames of ``audio`` (samples in ``[-1, 1]``) by the front end ``cfg``
    names, ``float32 (n_frames, n_mels)`` nat.

    The integer front end takes the samples as 16-bit PCM (:func:`pcm_from_float`: exact for
    audio read from 16-bit files; louder samples, e.g. of an augmented copy, saturate as a
    16-bit microphone would).
    """
    if not cfg.integer:
        return features.lfbe(audio, cfg)
    fe = integer_front_end(cfg)
    # |ln E| < 32 nat with 16 fraction bits: exact in float32's 24-bit mantissa.
    return IntFrontEnd.to_float_log(fe.lfbe(pcm_from_float(audio))).astype(np.float32)


def normalizer(mean: np.ndarray, std: np.ndarray, cfg: FeatureConfig,
               in_frac: int) -> Normalizer:
    """The normalization with per-band ``mean``/``std`` for a model of front end ``cfg``
    whose input has ``in_frac`` fraction bits."""
    if not cfg.integer:
        return Normalizer(mean=mean, std=std)
    return IntNormalizer(mean=mean, std=std, cfg=cfg, in_frac=in_frac)
