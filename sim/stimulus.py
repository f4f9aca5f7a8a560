"""Stimulus for the testbenches: real feature frames, models, and adversarial vectors.

- :func:`real_lfbe` computes LFBE frames from recordings of one fixed corpus under
  ``$KWSHW_DATA`` (:data:`STIMULUS_CORPUS`, see :func:`recordings`) with the project's own
  front end (:func:`kwshw.audio.load_audio`, :func:`kwshw.features.lfbe`), picking files
  deterministically from a seed.
- :func:`random_model` builds a :class:`kwshw.modelfile.Model` with random weights whose
  formats are calibrated on real features (:func:`kwshw.quantize.calibrate_out_fracs`), for
  testing before (and beside) a trained model: its activations have realistic ranges.
- :func:`adversarial_frames` gives the edge cases of the arithmetic contract: constant
  vectors (``R = 0``), extreme values, alternating extremes, single spikes.

No torch here: this is imported by ``sim.network`` and so by the ``kwshw sim`` command.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kwshw.arith import ACT_MAX, ACT_MIN
from kwshw.features import FeatureConfig, Normalizer, stack_windows
from kwshw.layers import Geometry, network_shapes
from kwshw.modelfile import Model, from_float
from kwshw.quantize import DEFAULT_INPUT_FRAC, calibrate_out_fracs, features_to_int

__all__ = [
    "SMALL_FEATURES",
    "STIMULUS_CORPUS",
    "data_dir",
    "recordings",
    "real_lfbe",
    "random_model",
    "real_frames",
    "adversarial_frames",
    "random_frames",
]

#: A reduced front end for fast simulations: the real 40-band LFBE, a short window.
SMALL_FEATURES = FeatureConfig(n_mels=40, context=4, stride=3)

#: The corpus sub-folder of the data folder that test stimuli are drawn from: the canonical
#: Speech Commands v0.02 test archive. Fixed so that the stimuli do not change when other
#: corpora are added to (or removed from) the data folder.
STIMULUS_CORPUS = "speech_commands_v0.02_test"

_AUDIO_EXT = (".wav", ".flac")
#: Folders whose files are not utterances: silence clips and background-noise recordings.
_EXCLUDED_DIRS = ("_silence_", "_background_noise_")


def data_dir() -> Path | None:
    """``$KWSHW_DATA`` (or ``../shared/data`` next to the repository) if it exists."""
    env = os.environ.get("KWSHW_DATA")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in cands:
        if c.is_dir():
            return c
    return None


def recordings(root: Path | None = None) -> list[Path]:
    """The audio files of the stimulus corpus, sorted (deterministic order).

    ``root`` (default :func:`data_dir`) is the data folder: the files are taken from its
    :data:`STIMULUS_CORPUS` sub-folder only, so other corpora lying beside it do not change
    the stimuli. If there is no such sub-folder, ``root`` itself is taken to be the corpus.
    Files under ``_silence_`` and ``_background_noise_`` folders are left out.
    """
    root = root or data_dir()
    if root is None:
        raise FileNotFoundError("no speech data: set KWSHW_DATA to the data folder")
    root = Path(root)
    corpus = root / STIMULUS_CORPUS
    if corpus.is_dir():
        root = corpus
    files = [p for p in root.rglob("*") if p.is_file()
             and p.name.lower().endswith(_AUDIO_EXT)
             and not any(d in p.relative_to(root).parts for d in _EXCLUDED_DIRS)]
    if not files:
        raise FileNotFoundError(f"no recordings under {root}")
    return sorted(files)


def real_lfbe(n_frames: int, cfg: FeatureConfig = SMALL_FEATURES, *, seed: int = 0,
              root: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """At least ``n_frames`` consecutive LFBE frames (float32, (n_frames, n_mels)) from
    :func:`recordings` picked at random (seeded), one recording after another; and their
    paths."""
    from kwshw.audio import load_audio
    from kwshw.features import lfbe

    files = recordings(root)
    rng = random.Random(seed)
    out, used, have = [], [], 0
    while have < n_frames:
        path = files[rng.randrange(len(files))]
        audio = load_audio(path, cfg.sample_rate)
        f = lfbe(audio, cfg)
        out.append(f)
        used.append(str(path))
        have += len(f)
    return np.concatenate(out)[:n_frames], used


def random_model(hidden: Sequence[int], bits: int, *, n_out: int = 12,
                 features: FeatureConfig = SMALL_FEATURES, calib: np.ndarray | None = None,
                 seed: int = 0, in_frac: int = DEFAULT_INPUT_FRAC,
                 headroom: float = 2.0, constant_column: bool = False,
                 convs: Sequence[Sequence[int]] = ()) -> Model:
    """A model with random weights, formats calibrated on ``calib`` LFBE frames.

    Parameters
    ----------
    hidden : sequence of int
        Dense hidden layer widths (the input is ``features.n_inputs``, or the last
        convolution's flattened output; the output ``n_out``).
    convs : sequence of (kernel, stride, channels)
        Temporal convolutions before the dense layers (a version-2 model).
    calib : ndarray (T, n_mels), optional
        Float LFBE frames to fit the normalization and calibrate the output formats;
        standard normal features if omitted.
    constant_column : bool
        Make one column of every layer constant (``ST_j = 0``), an edge case of the contract.
    """
    rng = np.random.default_rng(seed)
    if calib is None:
        calib = rng.standard_normal((64, features.n_mels)).astype(np.float32)
    norm = Normalizer.fit(calib)
    x = stack_windows(norm.apply(calib), features)
    geometry = Geometry(features.context, features.n_mels)
    layer_convs, matrices, _ = network_shapes(geometry, convs, [*hidden, n_out])
    weights, biases = [], []
    for rows, cols in matrices:
        w = rng.standard_normal((rows, cols)) * np.sqrt(2.0 / rows)
        b = rng.standard_normal(cols) * 0.1
        if constant_column:
            w[:, cols // 2] = w[0, cols // 2]
        weights.append(w)
        biases.append(b)
    shape_kw = {"convs": layer_convs, "geometry": geometry}
    fracs = calibrate_out_fracs(weights, biases, x, headroom=headroom, **shape_kw)
    labels = [f"class{k}" for k in range(n_out)]
    return from_float(weights, biases, bits=bits, out_fracs=fracs, features=features,
                      norm_mean=norm.mean, norm_std=norm.std, labels=labels,
                      task="random", in_frac=in_frac, meta={"random_seed": seed},
                      convs=layer_convs)


def real_frames(model: Model, lfbe_frames: np.ndarray) -> np.ndarray:
    """The integer input frames the host sends for float LFBE frames: normalized with the
    model's statistics, then :func:`kwshw.quantize.features_to_int`."""
    norm = (np.asarray(lfbe_frames, np.float64) - model.norm_mean) / model.norm_std
    return features_to_int(norm.astype(np.float32), model.in_frac)


def adversarial_frames(n_mels: int, *, seed: int = 0) -> np.ndarray:
    """Edge cases of the contract, one frame each (int64, (T, n_mels)).

    Constant frames (so constant windows once the window fills: ``R = 0``) at 0, the
    extremes and an ordinary value; full-scale alternating extremes; single spikes; ramps;
    all ones but one; and a few uniformly random full-range frames.
    """
    rng = np.random.default_rng(seed)
    f = []
    for v in (0, ACT_MAX, ACT_MIN, 1, -1, 12345):
        f.append(np.full(n_mels, v))
    alt = np.where(np.arange(n_mels) % 2 == 0, ACT_MAX, ACT_MIN)
    f += [alt, -alt - 1, np.where(np.arange(n_mels) % 3 == 0, ACT_MIN, ACT_MAX)]
    spike = np.zeros(n_mels, np.int64)
    spike[rng.integers(n_mels)] = ACT_MAX
    f.append(spike)
    spike2 = np.full(n_mels, ACT_MAX)
    spike2[rng.integers(n_mels)] = ACT_MIN
    f.append(spike2)
    f.append(np.linspace(ACT_MIN, ACT_MAX, n_mels).astype(np.int64))
    f.append(np.linspace(ACT_MAX, ACT_MIN, n_mels).astype(np.int64))
    for _ in range(4):
        f.append(rng.integers(ACT_MIN, ACT_MAX + 1, n_mels))
    # A constant stretch long enough to make the whole window constant, then extremes.
    f += [np.full(n_mels, 777)] * 4
    f += [np.full(n_mels, ACT_MIN)] * 2 + [np.full(n_mels, ACT_MAX)] * 2
    return np.stack(f).astype(np.int64)


def random_frames(n: int, n_mels: int, *, seed: int = 0, scale: int = 4096) -> np.ndarray:
    """``n`` random frames: mostly normal around 0 (``scale``), some full-range uniform."""
    rng = np.random.default_rng(seed)
    out = np.clip(np.round(rng.standard_normal((n, n_mels)) * scale), ACT_MIN, ACT_MAX)
    wild = rng.random(n) < 0.2
    out[wild] = rng.integers(ACT_MIN, ACT_MAX + 1, (int(wild.sum()), n_mels))
    return out.astype(np.int64)
