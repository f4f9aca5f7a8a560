"""Stand-in models for builds and tests: the reference network shape with random weights.

Resource use and timing of the accelerator depend on the network's shape, the code width and
the lane count, hardly on the weight values, so a random model of the right shape measures a
board build as well as a trained one (and exists before any training has run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kwshw.evaluate import keyword_classes
from kwshw.features import FeatureConfig
from kwshw.layers import REFERENCE_CNN, Geometry, network_shapes
from kwshw.modelfile import from_float
from kwshw.quantize import DEFAULT_INPUT_FRAC, calibrate_out_fracs

__all__ = ["REFERENCE_SHAPE", "SPEECH_COMMANDS_LABELS", "random_cnn", "random_model",
           "with_class_offsets"]

#: The reference network: 40 mels x 25 frames in, 12 classes; the first hidden layer is the
#: recipe's time convolution (``TrainConfig.time_conv`` = 5 frames, stride 2, 16 channels:
#: 11 positions x 16 = 176 units, one fully connected layer in hardware), then 2 x 128.
REFERENCE_SHAPE = (1000, 176, 128, 128, 12)
SPEECH_COMMANDS_LABELS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                          "_unknown_", "_silence_")


def random_model(bits: int = 4, shape: Sequence[int] = REFERENCE_SHAPE, *, seed: int = 0,
                 features=None, labels: Sequence[str] | None = None):
    """A :class:`kwshw.modelfile.Model` with random (He-scaled) weights of ``shape``.

    ``features`` defaults to ``FeatureConfig()`` when ``shape[0]`` is its 1000 inputs, else to
    a config with ``n_mels = shape[0] // 5`` bands and 5 frames (stride 2), so that small test
    networks still run through the real window.
    """
    shape = list(shape)
    if features is None:
        features = FeatureConfig()
        if shape[0] != features.n_inputs:
            if shape[0] % 5:
                raise ValueError(f"input width {shape[0]} is not 5 frames of n_mels bands")
            features = FeatureConfig(n_mels=shape[0] // 5, context=5, stride=2)
    n_out = shape[-1]
    if labels is None:
        labels = (list(SPEECH_COMMANDS_LABELS) if n_out == 12 else
                  [f"kw{k}" for k in range(n_out - 2)] + ["_unknown_", "_silence_"]
                  if n_out > 2 else ["_other_", "keyword"][:n_out])
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float32)
               for a, b in zip(shape[:-1], shape[1:], strict=True)]
    biases = [rng.normal(0, 0.1, b).astype(np.float32) for b in shape[1:]]
    calib = rng.normal(0, 1, (256, shape[0]))
    fracs = calibrate_out_fracs(weights, biases, calib)
    return from_float(weights, biases, bits=bits, out_fracs=fracs, features=features,
                      norm_mean=np.zeros(features.n_mels, np.float32),
                      norm_std=np.ones(features.n_mels, np.float32), labels=list(labels),
                      task="speech_commands" if n_out == 12 else "test",
                      in_frac=DEFAULT_INPUT_FRAC, meta={"random": True, "seed": seed})


def random_cnn(bits: int = 4, convs: Sequence[Sequence[int]] = REFERENCE_CNN["convs"],
               hidden: Sequence[int] = REFERENCE_CNN["hidden"], *, seed: int = 0,
               features: FeatureConfig | None = None, labels: Sequence[str] | None = None):
    """A convolutional :class:`kwshw.modelfile.Model` (a version-2 file) with random weights:
    ``convs`` ``(kernel, stride, channels)`` over the feature window, then dense ``hidden``
    layers and one output per label.

    The defaults are the CNN recipe's network on ``FeatureConfig()`` with the 12 Speech
    Commands classes.
    """
    features = FeatureConfig() if features is None else features
    labels = list(SPEECH_COMMANDS_LABELS if labels is None else labels)
    rng = np.random.default_rng(seed)
    geometry = Geometry(features.context, features.n_mels)
    kinds, matrices, _ = network_shapes(geometry, convs, [*hidden, len(labels)])
    weights, biases = [], []
    for rows, cols in matrices:
        weights.append(rng.normal(0, 1 / np.sqrt(rows), (rows, cols)))
        biases.append(rng.normal(0, 0.1, cols))
    calib = rng.normal(0, 1, (256, features.n_inputs))
    fracs = calibrate_out_fracs(weights, biases, calib, convs=kinds, geometry=geometry)
    return from_float(weights, biases, bits=bits, out_fracs=fracs, features=features,
                      norm_mean=np.zeros(features.n_mels), norm_std=np.ones(features.n_mels),
                      labels=labels, task="speech_commands" if len(labels) == 12 else "test",
                      in_frac=DEFAULT_INPUT_FRAC, convs=kinds,
                      meta={"random": True, "seed": seed})


def with_class_offsets(model, threshold: float = 0.999):
    """``model`` with detection thresholds as a trained 12-class model brings them
    (``meta["detection"]``: a reference threshold and a different offset per keyword class,
    :func:`kwshw.evaluate.detection_thresholds`), so that the on-chip detector is built with
    its table of per-class thresholds, as it is for a trained model."""
    labels = [model.labels[c] for c in keyword_classes(model.labels)]
    det = {"threshold": threshold,
           "class_offsets": {lab: round(0.1 * i - 0.05 * (len(labels) - 1), 3)
                             for i, lab in enumerate(labels)}}
    return dataclasses.replace(model, meta={**model.meta, "detection": det})
