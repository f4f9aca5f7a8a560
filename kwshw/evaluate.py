"""Evaluation of model files: accuracy, confusion, false rejects at fixed false accepts, DET
curves, memory footprint, and the streaming detection rule.

NumPy only (matplotlib, lazily, for the plots), so anyone with a model file can evaluate it
without PyTorch. Everything here works from a :class:`kwshw.modelfile.Model`:

How a model is run ("modes")
----------------------------
``"golden"``
    The model's own integers through the integer golden model
    (:func:`kwshw.golden.run_network`), i.e. exactly what the accelerator computes.
``"float"``
    The float reference network stored in the file (:func:`kwshw.golden.float_forward`).
``"dynamicN"`` (e.g. ``"dynamic4"``)
    Post-training dynamic quantization: the float reference re-quantized at ``N`` bits by
    :func:`kwshw.modelfile.from_float` (column-wise weights, per-frame activations, the file's
    output formats), run by the golden model.
``"staticN"``
    The baseline: per-tensor *static* min-max quantization at ``N`` bits of the float
    reference (:func:`kwshw.quantize.static_fake_quant`): one range per weight matrix, one
    fixed range per layer input calibrated on the training data (stored at export in
    ``meta["static_ranges"]``), values outside it clipped.

Scores are logits in float units (integers times ``2**-out_frac`` for the golden model).

Tasks
-----
``speech_commands`` (12 classes): one window per clip (the one ending at the clip's last
frame), top-1 accuracy and the confusion matrix.

``wake_word`` (keyword vs ``_other_``): every clip is *streamed* through the network from a
reset window, one decision per 10 ms hop, exactly as on the board; the keyword posterior is
smoothed and thresholded by :func:`detect` (the one detection rule, also used by the board
runtime through :class:`StreamDetector`). A clip's score is the largest smoothed posterior it
reaches, so "the detector fires somewhere in the clip" is ``score >= threshold``. Reported:

- FRR at FAR: the fraction of keyword clips on which the detector never fires, at the
  threshold where at most 1% (5%) of the *negative clips* make it fire;
- false accepts per hour: detections (:func:`detect`, with its refractory time) on the negative
  clips streamed one after another from reset, divided by their total duration. The negatives
  are isolated words (hard negatives), not hours of ordinary audio, so this rate is a
  pessimistic, small-sample figure; the duration it rests on is reported next to it.
- the DET curve (FRR against FAR of negative clips), saved as a PNG.

The splits are by speaker for Speech Commands; the wake-word clips have no speaker labels and
are split by file (see :mod:`kwshw.datasets`), so their scores are optimistic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import golden, quantize, streaming
from .corpora import TASKS, find_corpora, open_dataset
from .datasets import extract
from .features import FeatureConfig, Normalizer, stack_windows
from .frontends import normalizer
from .layers import Conv, Geometry, float_activations, float_layer
from .modelfile import Model, from_float, load

__all__ = [
    "DEFAULT_SMOOTHING",
    "DEFAULT_REFRACTORY",
    "FALLBACK_THRESHOLD",
    "StreamDetector",
    "TASKS",
    "accuracy",
    "confusion_matrix",
    "class_offsets",
    "default_threshold",
    "detection_thresholds",
    "det_curve",
    "detect",
    "fire",
    "evaluate",
    "footprint",
    "keyword_classes",
    "offset_threshold",
    "frr_at_far",
    "model_normalizer",
    "open_dataset",
    "plot_confusion",
    "plot_det",
    "posteriors",
    "requantize",
    "resolve_root",
    "run_stream",
    "run_windows",
    "save_figure",
    "smooth",
    "static_ranges",
    "stream_scores",
]

#: Posterior smoothing of the streaming detector: moving average over this many frames (10 ms).
DEFAULT_SMOOTHING = 10
#: Frames after a detection during which the detector cannot fire again (1 s).
DEFAULT_REFRACTORY = 100
#: Detection threshold of a model file that does not carry its own (``meta["detection"]``).
FALLBACK_THRESHOLD = 0.5


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def accuracy(y_true, y_pred) -> float:
    """Fraction of ``y_pred == y_true`` (``nan`` for no examples)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of examples of true class ``i`` predicted as ``j``."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} holds a class outside 0..{n_classes - 1}")
    c = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(c, (y_true, y_pred), 1)
    return c


def det_curve(pos_scores, neg_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-accept and false-reject rates of the rule ``score >= threshold`` at every threshold
    that changes them.

    Returns ``(far, frr, thresholds)``, thresholds increasing: at ``thresholds[i]``, ``far[i]``
    is the fraction of negatives with ``score >= thresholds[i]`` and ``frr[i]`` the fraction of
    positives with ``score < thresholds[i]``. The first threshold accepts everything
    (``far = 1`` when there are negatives), and a last one (``+inf``) rejects everything.
    """
    pos = np.asarray(pos_scores, np.float64).ravel()
    neg = np.asarray(neg_scores, np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("det_curve needs at least one positive and one negative score")
    thr = np.concatenate([np.unique(np.concatenate([pos, neg])), [np.inf]])
    neg_s, pos_s = np.sort(neg), np.sort(pos)
    far = 1.0 - np.searchsorted(neg_s, thr, side="left") / neg.size
    frr = np.searchsorted(pos_s, thr, side="left") / pos.size
    return far, frr, thr


def frr_at_far(pos_scores, neg_scores, target_far: float) -> tuple[float, float, float]:
    """False-reject rate at the lowest threshold whose false-accept rate is ``<= target_far``.

    Returns ``(frr, far, threshold)`` with the FAR actually reached (at most the target: with
    ``N`` negatives, ``floor(target_far * N)`` of them may be accepted).
    """
    far, frr, thr = det_curve(pos_scores, neg_scores)
    ok = np.flatnonzero(far <= target_far + 1e-12)
    i = int(ok[0])  # far decreases with the threshold; the first admissible one is the lowest
    return float(frr[i]), float(far[i]), float(thr[i])


# ---------------------------------------------------------------------------------------------
# The streaming detection rule
# ---------------------------------------------------------------------------------------------

def posteriors(logits) -> np.ndarray:
    """Softmax over the last axis (float64)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def smooth(post, k: int = DEFAULT_SMOOTHING) -> np.ndarray:
    """Causal moving average over the last ``k`` frames (frames before the stream's start count
    as 0, as after a reset): ``s[t] = (post[t-k+1] + ... + post[t]) / k`` along axis 0."""
    if int(k) != k or k < 1:
        raise ValueError(f"smoothing length must be a positive integer, got {k}")
    p = np.asarray(post, np.float64)
    padded = np.concatenate([np.zeros((k - 1, *p.shape[1:])), p])
    # Each window summed oldest to newest, exactly as StreamDetector sums its history.
    win = np.lib.stride_tricks.sliding_window_view(padded, k, axis=0)
    return np.sum(np.ascontiguousarray(win), axis=-1) / k


def detect(post, threshold: float, k: int = DEFAULT_SMOOTHING,
           refractory: int = DEFAULT_REFRACTORY) -> np.ndarray:
    """Frames at which the detector fires on a stream of keyword posteriors (from reset).

    The rule: the smoothed posterior :func:`smooth` reaches ``threshold`` (``>=``) at frame
    ``t``, and the detector has not fired within the last ``refractory`` frames
    (``refractory = 0``: it fires on every frame at or above the threshold).
    :class:`StreamDetector` is the same rule one frame at a time.
    """
    return fire(smooth(np.asarray(post, np.float64).ravel(), k), threshold, refractory)


def fire(smoothed, threshold: float, refractory: int = DEFAULT_REFRACTORY) -> np.ndarray:
    """The firing part of :func:`detect` on an already smoothed posterior: frames ``t`` with
    ``smoothed[t] >= threshold`` and no detection within the ``refractory`` frames before.

    After a detection at ``t`` the next one is the first frame ``> t + refractory`` at or above
    the threshold, so the work is one step per detection (threshold sweeps over hour-long
    streams call this hundreds of times on one smoothed array).
    """
    above = np.flatnonzero(np.asarray(smoothed, np.float64) >= threshold)
    if refractory <= 0 or above.size == 0:
        return above.astype(np.int64)
    fires = []
    i = 0
    while i < above.size:
        t = int(above[i])
        fires.append(t)
        i = int(np.searchsorted(above, t + refractory + 1, side="left"))
    return np.asarray(fires, np.int64)


def keyword_classes(labels: Sequence[str]) -> list[int]:
    """Indices of the keyword classes: every label not starting with ``_`` (``_unknown_``,
    ``_silence_``, ``_other_`` are not keywords). The one rule for the detectors, the
    evaluation streams and the board's LED."""
    return [k for k, lab in enumerate(labels) if not lab.startswith("_")]


def default_threshold(model: Model) -> float:
    """The reference detection threshold a model file brings: ``meta["detection"]
    ["threshold"]`` (chosen at export for a stated false-accept rate on its validation stream,
    see :mod:`kwshw.stream_eval`), else :data:`FALLBACK_THRESHOLD`. Each keyword class
    detects at this threshold moved by its offset (:func:`detection_thresholds`)."""
    det = model.meta.get("detection") or {}
    return float(det.get("threshold", FALLBACK_THRESHOLD))


def offset_threshold(level: float, offset: float) -> float:
    """The threshold ``1 - (1 - level) 10^-offset``: ``level`` moved by ``offset`` "nines"
    (``-log10(1 - p)``, the scale on which a keyword spotter's thresholds sit: 0.999 is three
    nines). Offset 0 gives ``level`` itself, bit for bit; a level above 1 (fires never) stays
    above 1."""
    level, offset = float(level), float(offset)
    if offset == 0.0:
        return level
    return 1.0 - (1.0 - level) * 10.0 ** -offset


def class_offsets(model: Model) -> dict[int, float]:
    """Per keyword class, its threshold offset in nines (:func:`offset_threshold`) from
    ``meta["detection"]["class_offsets"]`` (``{label: offset}``, chosen at export on the
    validation stream, :func:`kwshw.streams.estimate_class_offsets`); 0 for every class of a
    file without them (one threshold for all)."""
    det = model.meta.get("detection") or {}
    given = det.get("class_offsets") or {}
    stray = sorted(set(given) - set(model.labels))
    if stray:
        raise ValueError(f"meta['detection']['class_offsets'] names labels {stray} that the "
                         f"model does not have ({model.labels})")
    return {c: float(given.get(model.labels[c], 0.0)) for c in keyword_classes(model.labels)}


def detection_thresholds(model: Model, threshold: float | None = None) -> dict[int, float]:
    """The detection threshold of every keyword class: ``threshold`` for all of them when
    given, else the model's own (:func:`default_threshold` moved by :func:`class_offsets`)."""
    if threshold is not None:
        return {c: float(threshold) for c in keyword_classes(model.labels)}
    level = default_threshold(model)
    return {c: offset_threshold(level, off) for c, off in class_offsets(model).items()}


class StreamDetector:
    """The detection rule of :func:`detect`, fed one posterior per frame (board runtime).

    Parameters
    ----------
    threshold : float
        Fire when the smoothed posterior is ``>= threshold``.
    k : int
        Smoothing length in frames.
    refractory : int
        Frames after a detection in which the detector does not fire again.
    """

    def __init__(self, threshold: float, k: int = DEFAULT_SMOOTHING,
                 refractory: int = DEFAULT_REFRACTORY) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"smoothing length must be a positive integer, got {k}")
        self.threshold, self.k, self.refractory = float(threshold), int(k), int(refractory)
        self.reset()

    def reset(self) -> None:
        """Back to the state after a reset: empty history, nothing fired."""
        self._hist = np.zeros(self.k, np.float64)
        self._t = 0
        self._last: int | None = None
        self.smoothed = 0.0

    def update(self, posterior: float) -> bool:
        """Take the next frame's keyword posterior; return True if the detector fires now."""
        self._hist[self._t % self.k] = float(posterior)
        # Summed oldest to newest, as smooth() does, so both give the same bits.
        ordered = np.roll(self._hist, -((self._t + 1) % self.k))
        self.smoothed = float(np.sum(ordered)) / self.k
        t = self._t
        self._t += 1
        if self.smoothed >= self.threshold and (self._last is None
                                                or t - self._last > self.refractory):
            self._last = t
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Running a model
# ---------------------------------------------------------------------------------------------

def model_normalizer(model: Model) -> Normalizer:
    """The normalization stored in the model file, for the model's front end
    (:func:`kwshw.frontends.normalizer`)."""
    return normalizer(np.asarray(model.norm_mean, np.float64),
                      np.asarray(model.norm_std, np.float64), model.features, model.in_frac)


def requantize(model: Model, bits: int) -> Model:
    """Post-training dynamic quantization of the model's float reference at ``bits``, with the
    model's normalization, input and output formats."""
    if model.float_weights is None:
        raise ValueError("the model file has no float reference to re-quantize")
    return from_float(model.float_weights, model.float_biases, bits=bits,
                      out_fracs=[lay.out_frac for lay in model.layers],
                      features=model.features, norm_mean=model.norm_mean,
                      norm_std=model.norm_std, labels=model.labels, task=model.task,
                      in_frac=model.in_frac, meta=dict(model.meta), keep_float=True,
                      convs=model.convs)


def static_ranges(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                  x: np.ndarray, *, convs: Sequence[Conv | None] | None = None,
                  geometry: Geometry | None = None) -> list[tuple[float, float]]:
    """Per-layer input ranges ``(min, max)`` of the float network on calibration inputs ``x``
    (the static baseline's fixed activation ranges)."""
    h = np.asarray(x, np.float64)
    acts = [h] + float_activations(weights, biases, h, convs=convs, geometry=geometry)[:-1]
    return [(float(a.min()), float(a.max())) for a in acts]


def _static_forward(model: Model, x: np.ndarray, bits: int) -> np.ndarray:
    ranges = model.meta.get("static_ranges")
    if ranges is None:
        raise ValueError("the model file has no meta['static_ranges'] (calibrated activation "
                         "ranges of the static baseline); export it with kwshw.train")
    h = np.asarray(x, np.float64)
    geometry = model.geometries()[0]
    n = len(model.float_weights)
    for k, (w, b) in enumerate(zip(model.float_weights, model.float_biases, strict=True)):
        w = np.asarray(w, np.float64)
        lo, hi = ranges[k]
        h = quantize.static_fake_quant(h, lo, hi, bits)
        wq = quantize.static_fake_quant(w, float(w.min()), float(w.max()), bits)
        h, geometry = float_layer(h, wq, b, model.layers[k].conv, geometry)
        if k < n - 1:
            h = np.maximum(h, 0.0)
    return h


def _logits(model: Model, y: np.ndarray) -> np.ndarray:
    """The last layer's integer outputs ``y`` as float logits (its output format)."""
    return np.asarray(y).astype(np.float64) * 2.0 ** -model.layers[-1].out_frac


def _golden_logits(model: Model, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    plans = model.plans()
    xi = quantize.features_to_int(x, model.in_frac)
    out = [golden.run_network(plans, xi[i:i + chunk])[-1].y for i in range(0, len(xi), chunk)]
    return _logits(model, np.concatenate(out)) if out else \
        np.zeros((0, model.layers[-1].n_out))


def run_windows(model: Model, x: np.ndarray, mode: str = "golden") -> np.ndarray:
    """Logits of normalized float input windows ``x`` (N, n_inputs) in the given mode
    (see the module docstring)."""
    x = np.asarray(x, np.float64)
    if mode == "golden":
        return _golden_logits(model, x)
    if mode == "float":
        if model.float_weights is None:
            raise ValueError("the model file has no float reference")
        return golden.float_forward(model.float_weights, model.float_biases, x,
                                    convs=model.convs, geometry=model.geometries()[0])
    if mode.startswith("dynamic"):
        return _golden_logits(requantize(model, int(mode[7:])), x)
    if mode.startswith("static"):
        if model.float_weights is None:
            raise ValueError("the model file has no float reference")
        return _static_forward(model, x, int(mode[6:]))
    raise ValueError(f"unknown mode {mode!r} (golden, float, dynamicN, staticN)")


def _streams_new_positions(model: Model) -> bool:
    """Whether :mod:`kwshw.streaming` runs the model: convolutions, all before the dense
    layers (the CNN recipe; the DNN's time convolution is one dense layer)."""
    return any(c is not None for c in model.convs) and streaming.convs_first(model.convs)


def run_stream(model: Model, frames: np.ndarray, mode: str = "golden",
               start: int = 0) -> np.ndarray:
    """Logits of the windows ending at hops ``start .. T - 1`` of normalized float frames
    ``(T, n_mels)`` streamed from reset (zeros before the first, as after a reset).

    The same numbers as :func:`run_windows` on ``stack_windows(frames, cfg)[start:]``. In
    golden mode a convolutional network computes each convolution's new position per hop only
    (:func:`kwshw.streaming.stream_network`, proven equal to the window definition), about a
    tenth of the work of recomputing every window.
    """
    cfg = model.features
    frames = np.asarray(frames)
    if mode != "golden" or not _streams_new_positions(model):
        x = stack_windows(frames, cfg, np.arange(start, len(frames)))
        return run_windows(model, x, mode)
    # The window path's casts: stack_windows gives float32, run_windows reads float64.
    xi = quantize.features_to_int(frames.astype(np.float32).astype(np.float64), model.in_frac)
    return _logits(model, streaming.stream_network(model.plans(), xi, cfg.stride)[start:])


def stream_scores(model: Model, frames_list: Sequence[np.ndarray], mode: str = "golden",
                  keyword: int = 1) -> list[np.ndarray]:
    """Keyword posterior of every frame of every clip, each clip streamed from reset.

    ``frames_list`` holds raw LFBE frames ``(T, n_mels)`` per clip. In ``golden`` mode the
    integer window is built by :func:`kwshw.golden.stream_windows`, as the accelerator does
    (a convolutional model's clips run through :func:`run_stream`, the same numbers).
    """
    cfg = model.features
    norm = model_normalizer(model)
    if mode == "golden" and _streams_new_positions(model):  # new positions only, same numbers
        return [posteriors(run_stream(model, norm.apply(f)))[:, keyword] for f in frames_list]
    xs, lens = [], []
    for f in frames_list:
        xs.append(stack_windows(norm.apply(f), cfg))  # zeros before the start, as after reset
        lens.append(len(f))
    if not xs:
        return []
    x = np.concatenate(xs)
    post = posteriors(run_windows(model, x, mode))[:, keyword]
    return np.split(post, np.cumsum(lens)[:-1])


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def resolve_root(data_root: str | os.PathLike, task: str) -> Path:
    """The corpus folder ``task`` is validated and tested on: the wake-word corpus, or the
    Speech Commands corpus of role ``"split"`` (:func:`kwshw.corpora.find_corpora`)."""
    corpora = find_corpora(data_root, task)
    return next(c.root for c in corpora if c.role == "split")


# ---------------------------------------------------------------------------------------------
# Footprint
# ---------------------------------------------------------------------------------------------

def footprint(model: Model, kind: str = "dynamic", bits: int | None = None) -> dict:
    """Memory of a deployed network in bits, all constants included.

    ``kind="dynamic"``: :meth:`kwshw.modelfile.Model.footprint` (codes plus the four 18-bit
    per-column constants). ``"float"``: every weight and bias as float32. ``"static"``: codes,
    biases as 32-bit values, and per layer four 32-bit values (the weight and activation
    ranges). ``ratio_to_float32`` compares with the float32 network.
    """
    params = sum(lay.n_in * lay.n_out + lay.n_out for lay in model.layers)
    n_w = sum(lay.n_in * lay.n_out for lay in model.layers)
    n_b = sum(lay.n_out for lay in model.layers)
    f32 = params * 32
    if kind == "dynamic" and (bits is None or bits == model.bits):
        fp = dict(model.footprint())
    elif kind == "dynamic":
        fp = requantize(model, bits).footprint()
    elif kind == "float":
        fp = {"parameters": params, "weight_bits": n_w * 32, "constant_bits": n_b * 32,
              "total_bits": f32, "float32_bits": f32, "ratio_to_float32": 1.0}
    elif kind == "static":
        b = model.bits if bits is None else bits
        wb, cb = n_w * b, n_b * 32 + len(model.layers) * 4 * 32
        fp = {"parameters": params, "weight_bits": wb, "constant_bits": cb,
              "total_bits": wb + cb, "float32_bits": f32, "ratio_to_float32": (wb + cb) / f32}
    else:
        raise ValueError(f"unknown footprint kind {kind!r}")
    fp["weight_ratio_to_float32"] = fp["weight_bits"] / (n_w * 32)
    return fp


def _mode_footprint(model: Model, mode: str) -> dict:
    if mode == "golden":
        return footprint(model)
    if mode == "float":
        return footprint(model, "float")
    if mode.startswith("dynamic"):
        return footprint(model, "dynamic", int(mode[7:]))
    return footprint(model, "static", int(mode[6:]))


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib imported lazily)
# ---------------------------------------------------------------------------------------------

def _pyplot():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise RuntimeError("plots need matplotlib: pip install 'kwshw[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Lay out, write as a 120-dpi PNG and close a matplotlib figure; returns the path."""
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_confusion(conf: np.ndarray, labels: Sequence[str], path, title: str = "") -> Path:
    """Save a confusion matrix (rows: true class, columns: predicted) as a PNG."""
    plt = _pyplot()
    conf = np.asarray(conf)
    fig, ax = plt.subplots(figsize=(7, 6))
    rates = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            if conf[i, j]:
                ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return save_figure(fig, path)


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str = "") -> Path:
    """Save DET curves ``{name: (far, frr)}`` (fractions) as a PNG, log-log axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (far, frr) in curves.items():
        ax.step(np.maximum(far, 1e-4) * 100, np.maximum(frr, 1e-4) * 100, where="post",
                label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.1, 100)
    ax.set_ylim(0.1, 100)
    ax.set_xlabel("false accepts (% of negative clips)")
    ax.set_ylabel("false rejects (% of keyword clips)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Whole evaluation
# ---------------------------------------------------------------------------------------------

def _extract(dataset, cfg: FeatureConfig, progress: bool, cache):
    return extract(dataset, cfg, progress=progress, cache=cache, on_error="skip")


def evaluate(model: str | os.PathLike | Model, data_root: str | os.PathLike, *,
             split: str = "validation", modes: Sequence[str] = ("golden", "float"),
             far_targets: Sequence[float] = (0.01, 0.05), smoothing: int = DEFAULT_SMOOTHING,
             refractory: int = DEFAULT_REFRACTORY, plots: str | os.PathLike | None = None,
             progress: bool = True, cache: bool | str | os.PathLike = True,
             dataset_kwargs: dict | None = None) -> dict:
    """Evaluate a model file on a split of its task's corpus.

    Parameters
    ----------
    model : path or Model
        The model file (or a loaded model).
    data_root : path
        ``$KWSHW_DATA`` (holding the corpora) or the corpus folder itself.
    split : str
        ``"validation"``, ``"test"``, ``"train"``, or several joined by ``+``.
    modes : sequence of str
        How to run the network (module docstring): ``golden``, ``float``, ``dynamicN``,
        ``staticN``. Modes that need a float reference are skipped (with a note) without one.
    far_targets : sequence of float
        Wake word: FAR operating points (fractions of negative clips).
    smoothing, refractory : int
        Wake word: the detection rule's parameters (frames).
    plots : path, optional
        Folder for PNGs (confusion matrix per mode, or one DET plot).
    progress : bool
        Progress bars of the feature extraction.
    cache : bool or path
        Feature cache (see :func:`kwshw.datasets.extract`).
    dataset_kwargs : dict, optional
        Passed to the dataset class.

    Returns
    -------
    dict
        ``{"model": {...}, "task", "split", "n_clips", "results": {mode: {...}}, "skipped"}``;
        each result has the metrics and the ``footprint``.

    Raises
    ------
    kwshw.modelfile.ModelFileError, kwshw.datasets.DatasetError, ValueError
        For an unusable model file, data folder or argument; the message names the problem.
    """
    m = model if isinstance(model, Model) else load(model)
    ds = _open_corpus(m, data_root, split, dataset_kwargs)
    fs = _extract(ds, m.features, progress, cache)
    out = _report_head(m, None if isinstance(model, Model) else str(model), ds, fs, split)
    usable = _usable_modes(m, modes, out["skipped"])
    plot_dir = None if plots is None else Path(plots)
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
    if m.task == "speech_commands":
        out["results"].update(_classify_clips(m, fs, usable, split, plot_dir))
        return out
    results, curves = _stream_clips(m, fs, usable, far_targets, smoothing, refractory)
    out["results"].update(results)
    if plot_dir is not None and curves:
        out["det_png"] = str(plot_det(curves, plot_dir / "det.png",
                                      f"{m.labels[1]} vs other words, {split}"))
    return out


def _open_corpus(m: Model, data_root, split: str, dataset_kwargs: dict | None):
    """The dataset of the model's task, refused unless its labels are the model's."""
    task = m.task
    if task not in TASKS:
        raise ValueError(f"model task {task!r} is not one kwshw can evaluate ({TASKS})")
    kwargs = {"general_speech": False} if task == "speech_commands" else {}
    ds = open_dataset(task, data_root, split, **{**kwargs, **(dataset_kwargs or {})})
    if list(ds.labels) != list(m.labels):
        raise ValueError(f"the model's labels {m.labels} differ from the corpus' {ds.labels}")
    return ds


def _report_head(m: Model, path: str | None, ds, fs, split: str) -> dict:
    """The evaluation report before any result: model, corpus, clips; empty results."""
    return {
        "model": {"sha256": m.sha256, "bits": m.bits, "shape": m.shape, "task": m.task,
                  "path": path},
        "task": m.task, "split": split, "n_clips": int(fs.n_clips),
        "n_speakers": len(ds.speakers()) or None, "labels": list(m.labels),
        "unreadable_clips": [f"{it.path}: {why}" for it, why in getattr(fs, "skipped", [])],
        "results": {}, "skipped": {},
    }


def _usable_modes(m: Model, modes: Sequence[str], skipped: dict) -> list[str]:
    """The modes the model file can run; each other one gets its reason in ``skipped``."""
    usable = []
    for mode in modes:
        if mode != "golden" and m.float_weights is None:
            skipped[mode] = "no float reference in the model file"
        elif mode.startswith("static") and "static_ranges" not in m.meta:
            skipped[mode] = "no calibrated static ranges in the model meta"
        else:
            usable.append(mode)
    return usable


def _classify_clips(m: Model, fs, usable: Sequence[str], split: str,
                    plot_dir: Path | None) -> dict[str, dict]:
    """12 classes: top-1 accuracy and confusion of each mode on one window per clip."""
    x, y = fs.windows(model_normalizer(m))
    results = {}
    for mode in usable:
        pred = run_windows(m, x, mode).argmax(axis=1)
        conf = confusion_matrix(y, pred, len(m.labels))
        res = {"accuracy": accuracy(y, pred), "confusion": conf.tolist(),
               "footprint": _mode_footprint(m, mode)}
        if plot_dir is not None:
            res["confusion_png"] = str(plot_confusion(
                conf, m.labels, plot_dir / f"confusion_{mode}.png",
                f"{mode} ({m.bits}-bit file), {split}: {100 * res['accuracy']:.1f}%"))
        results[mode] = res
    return results


def _stream_clips(m: Model, fs, usable: Sequence[str], far_targets: Sequence[float],
                  smoothing: int, refractory: int) -> tuple[dict[str, dict], dict]:
    """Wake word: every clip streamed from reset in each mode; returns the results and the
    DET curves ``{mode: (far, frr)}``."""
    labels = fs.clip_labels
    frames = [fs.clip(c) for c in range(fs.n_clips)]
    hop_s = m.features.hop_length / m.features.sample_rate
    neg_hours = sum(len(f) for f, lab in zip(frames, labels, strict=True) if lab == 0) \
        * hop_s / 3600.0
    results, curves = {}, {}
    for mode in usable:
        post = stream_scores(m, frames, mode)
        sm = [smooth(p, smoothing) for p in post]
        score = np.array([s.max() for s in sm])
        pos, neg = score[labels == 1], score[labels == 0]
        far, frr, _ = det_curve(pos, neg)
        neg_post = [p for p, lab in zip(post, labels, strict=True) if lab == 0]
        ops = [_operating_point(pos, neg, neg_post, target, smoothing, refractory, neg_hours)
               for target in far_targets]
        # Clip accuracy of the plain decision (posterior >= 0.5 somewhere).
        res = {"operating_points": ops,
               "clip_accuracy_at_0.5": accuracy(labels, (score >= 0.5).astype(np.int64)),
               "n_positive": int(pos.size), "n_negative": int(neg.size),
               "negative_hours": neg_hours, "smoothing": smoothing, "refractory": refractory,
               "det": {"far": far[::max(1, len(far) // 200)].tolist(),
                       "frr": frr[::max(1, len(frr) // 200)].tolist()},
               "footprint": _mode_footprint(m, mode)}
        results[mode], curves[mode] = res, (far, frr)
    return results, curves


def _operating_point(pos: np.ndarray, neg: np.ndarray, neg_post: Sequence[np.ndarray],
                     target: float, smoothing: int, refractory: int, neg_hours: float) -> dict:
    """FRR at the threshold of FAR ``target``, and the detections it makes on the negatives
    streamed one after another (``neg_post``: their keyword posteriors)."""
    r, a, th = frr_at_far(pos, neg, target)
    fa = sum(len(detect(p, th, smoothing, refractory)) for p in neg_post)
    return {"target_far": target, "frr": r, "far": a, "threshold": th, "false_accepts": fa,
            "false_accepts_per_hour": fa / neg_hours if neg_hours else math.nan}
