"""A model judged in a long stream of held-back audio: FRR at false accepts per hour.

:func:`held_out_stream` builds the evaluation stream of a task from the corpora under a data
folder (:mod:`kwshw.corpora`), only from clips of the held-back splits, so no clip a model
trained on is in it:

``wake_word``
    Negatives: every held-back clip that is not the wake word: the other wake phrases, every
    Speech Commands word, ``_silence_`` (1 s of background noise each). Keywords: the held-back
    wake-word clips, spliced in at seeded positions (:func:`kwshw.streams.build_stream`).
``speech_commands``
    Negatives: the held-back ``_unknown_`` and ``_silence_`` clips, plus the clips of the
    wake-word phrases held back from the 12-class task's general speech
    (:func:`kwshw.corpora.general_speech_phrases`: words and speech the model never heard).
    No training split holds those phrases, so their clips are divided in halves by file
    (:func:`general_speech_split`): one half in the ``validation`` stream, the other in the
    ``test`` stream, both in ``validation+test``. Detection thresholds chosen on the validation
    stream are then judged on the test stream on general speech they have not seen.
    Keywords: the held-back clips of the ten words, each event labelled with its class.

:func:`evaluate_stream` runs a model over a stream (any mode of
:func:`kwshw.evaluate.run_windows`), applies the board's detection rule
(:func:`kwshw.evaluate.detect`: same smoothing, same refractory time) and reports the
false-reject rate at each false-accept rate per hour, the whole curve, and the result at the
model's own thresholds (:func:`kwshw.evaluate.detection_thresholds`: a reference threshold
and, for several keyword classes, an offset per class chosen by :func:`choose_threshold`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .corpora import general_speech_phrases, open_dataset
from .datasets import DEFAULT_SPLIT_SALT, Dataset, DatasetError, Item, load_item, which_set
from .evaluate import DEFAULT_REFRACTORY, DEFAULT_SMOOTHING, default_threshold, keyword_classes
from .evaluate import class_offsets as eval_class_offsets
from .modelfile import Model
from .streams import (
    DEFAULT_MIN_GAP_S,
    OFFSET_QUANTILE,
    Stream,
    build_stream,
    estimate_class_offsets,
    frr_at_fa_per_hour,
    multiclass_operating_points,
    plot_stream_det,
    stream_operating_points,
    stream_posteriors,
)

__all__ = [
    "DEFAULT_FA_TARGETS",
    "choose_threshold",
    "DEFAULT_THRESHOLD_FA_PER_HOUR",
    "evaluate_stream",
    "general_speech_split",
    "held_out_stream",
]

#: False accepts per hour at which FRR is reported.
DEFAULT_FA_TARGETS: tuple[float, ...] = (0.5, 1.0, 5.0)
#: The false-accept rate a model's default threshold is chosen for (on its validation stream).
DEFAULT_THRESHOLD_FA_PER_HOUR = 5.0


def general_speech_split(path: str | os.PathLike) -> str:
    """``"validation"`` or ``"test"``: the stream a held-back general-speech clip (a clip of a
    phrase of :func:`kwshw.corpora.general_speech_phrases`) belongs to, half and half by its
    ``phrase/file`` name (:func:`kwshw.datasets.which_set`; the benchmark names no speakers)."""
    p = Path(path)
    half = which_set(f"{p.parent.name}/{p.name}", 50.0, 50.0, DEFAULT_SPLIT_SALT)
    return "validation" if half == "validation" else "test"   # which_set's p = 100 is "train"


def _read(items: Sequence[Item], sample_rate: int,
          skipped: list[str]) -> list[tuple[str, np.ndarray]]:
    out = []
    for it in items:
        try:
            out.append((it.key, load_item(it, sample_rate)))
        except DatasetError as e:  # e.g. benchmark FLACs with samples outside 16 bits
            skipped.append(str(e))
    return out


def _parts(task: str, data_root, split: str, keyword: str) -> tuple[list[Item], list[Item],
                                                                     Dataset]:
    """(negative items, keyword items, the task's dataset) of the held-back stream."""
    if task == "wake_word":
        ds = open_dataset("wake_word", data_root, split, keyword=keyword)
        neg = [it for it in ds if it.label_index == 0]
        return neg, [it for it in ds if it.label_index == 1], ds
    ds = open_dataset("speech_commands", data_root, split)
    kw = set(keyword_classes(ds.labels))
    neg = [it for it in ds if it.label_index not in kw]
    _, held_phrases = general_speech_phrases(data_root)
    if held_phrases:
        ww = open_dataset("wake_word", data_root, "all", keyword=held_phrases[0],
                          general_negatives=False)
        parts = split.split("+")
        neg += [it for it in ww if Path(it.path).parent.name in held_phrases
                and general_speech_split(it.path) in parts]
    return neg, [it for it in ds if it.label_index in kw], ds


def held_out_stream(task: str, data_root: str | os.PathLike, *,
                    split: str = "validation+test", keyword: str = "alexa", seed: int = 0,
                    sample_rate: int = 16000, min_gap_s: float = DEFAULT_MIN_GAP_S,
                    progress: bool = True) -> tuple[Stream, dict]:
    """The evaluation stream of ``task`` (composition in the module docstring).

    Parameters
    ----------
    task : {"speech_commands", "wake_word"}
    data_root : path
        The data folder (``$KWSHW_DATA``).
    split : str
        Held-back splits the clips come from (``"validation"``, ``"test"``, joined by ``+``).
    keyword : str
        The wake word (``task="wake_word"``).
    seed : int
        Order of the clips and positions of the keywords.
    sample_rate : int
        Rate the clips are read at.
    min_gap_s : float
        Negative audio around every keyword (:func:`kwshw.streams.build_stream`).
    progress : bool
        Say what is being read.

    Returns
    -------
    (Stream, dict)
        The stream and a description: clip counts, hours, unreadable clips left out.
    """
    if split in ("train", "all") or "train" in split.split("+"):
        raise ValueError(f"an evaluation stream is made of held-back clips only, not {split!r}")
    neg_items, kw_items, ds = _parts(task, data_root, split, keyword)
    if progress:
        print(f"stream: reading {len(neg_items)} negative and {len(kw_items)} keyword clips",
              flush=True)
    skipped: list[str] = []
    negatives = _read(neg_items, sample_rate, skipped)
    keywords = [(key, audio, it.label_index) for it in kw_items
                for key, audio in _read([it], sample_rate, skipped)]
    stream = build_stream(negatives, keywords, sample_rate=sample_rate, seed=seed,
                          min_gap_s=min_gap_s)
    info = {"task": task, "split": split, "seed": seed, "labels": list(ds.labels),
            "negative_clips": len(negatives), "keyword_clips": len(keywords),
            "hours": stream.duration_s / 3600, "negative_hours": stream.negative_hours,
            "unreadable_clips": skipped}
    if skipped:
        warnings.warn(f"stream: left out {len(skipped)} unreadable clip(s)", stacklevel=2)
    return stream, info


def _curve(points: dict, n: int = 300) -> dict:
    step = max(1, len(points["thresholds"]) // n)
    return {k: np.asarray(points[k])[::step].tolist() for k in ("thresholds", "fa_per_hour",
                                                                 "frr")}


def _at_threshold(points_fn: Callable[..., dict], threshold: float, offsets) -> dict:
    p = points_fn([threshold], offsets)
    return {"threshold": threshold, "per_class": bool(offsets and any(offsets.values())),
            "frr": float(p["frr"][0]),
            "fa_per_hour": float(p["fa_per_hour"][0]), "false_accepts": int(p["false_accepts"][0])}


def _points(post: np.ndarray, stream: Stream, classes: list[int], hop: int, smoothing: int,
            refractory: int) -> Callable[..., dict]:
    """``points(thresholds=None, offsets=None)``: the stream's operating points."""
    hours = stream.negative_hours

    def points(thresholds=None, offsets=None):
        if len(classes) == 1:
            return stream_operating_points(post[:, classes[0]], stream.events, hop, hours,
                                           thresholds, smoothing=smoothing,
                                           refractory=refractory)
        return multiclass_operating_points(post, stream.events, hop, hours, classes,
                                           thresholds, class_offsets=offsets,
                                           smoothing=smoothing, refractory=refractory)
    return points


def evaluate_stream(model: Model, stream: Stream, *, modes: Sequence[str] = ("golden",),
                    fa_targets: Sequence[float] = DEFAULT_FA_TARGETS,
                    threshold: float | None = None,
                    class_offsets: Mapping[int, float] | None = None,
                    smoothing: int = DEFAULT_SMOOTHING, refractory: int = DEFAULT_REFRACTORY,
                    plot: str | os.PathLike | None = None, title: str = "") -> dict:
    """FRR at false accepts per hour of ``model`` on ``stream``, per mode.

    The curve sweeps the reference threshold; every keyword class detects at it moved by its
    offset (:func:`kwshw.evaluate.offset_threshold`), the model's own
    (:func:`kwshw.evaluate.class_offsets`: 0 for a file without them) unless ``class_offsets``
    are given.

    Parameters
    ----------
    model : Model
    stream : Stream
        Events labelled with the model's class indices (1 for a wake word).
    modes : sequence of str
        :func:`kwshw.evaluate.run_windows` modes (``golden``, ``float``, ``dynamicN``,
        ``staticN``).
    fa_targets : sequence of float
        False accepts per hour at which FRR is read off the curve.
    threshold : float, optional
        One more operating point: every class at this threshold. By default the model's own
        thresholds (:func:`kwshw.evaluate.detection_thresholds`).
    class_offsets : mapping, optional
        ``{class: nines}`` instead of the model's.
    smoothing, refractory : int
        The detection rule (frames).
    plot : path, optional
        PNG of the DET curves (FA/h on the x axis).
    title : str
        The plot's title.

    Returns
    -------
    dict
        ``{"hours", "negative_hours", "events", "class_offsets", "results": {mode: {"frr_at":
        {target: ...}, "at_threshold": {...}, "curve": {...}}}, "plot"}``.
    """
    classes = keyword_classes(model.labels)
    hop = model.features.hop_length
    offsets = dict(eval_class_offsets(model) if class_offsets is None else class_offsets)
    if threshold is None:
        at = (default_threshold(model), offsets)
    else:
        at = (float(threshold), None)
    out = {"hours": stream.duration_s / 3600, "negative_hours": stream.negative_hours,
           "events": len(stream.events), "smoothing": smoothing, "refractory": refractory,
           "keyword_classes": classes,
           "class_offsets": {model.labels[c]: v for c, v in offsets.items()}, "results": {}}
    curves = {}
    for mode in modes:
        points = _points(stream_posteriors(model, stream, mode), stream, classes, hop,
                         smoothing, refractory)
        p = points(None, offsets)
        out["results"][mode] = {"frr_at": _frr_at(p, fa_targets),
                                "at_threshold": _at_threshold(points, *at), "curve": _curve(p)}
        curves[mode] = (np.asarray(p["fa_per_hour"]), np.asarray(p["frr"]))
    if plot is not None and curves:
        out["plot"] = str(plot_stream_det(curves, plot, title))
    return out


def _frr_at(points: dict, fa_targets: Sequence[float]) -> dict:
    out = {}
    for target in fa_targets:
        frr, fa, t = frr_at_fa_per_hour(points, target)
        out[f"{target:g}"] = {"frr": frr, "fa_per_hour": fa, "threshold": t}
    return out


def choose_threshold(model: Model, data_root: str | os.PathLike, *,
                     fa_per_hour: float = DEFAULT_THRESHOLD_FA_PER_HOUR,
                     split: str = "validation", seed: int = 0, keyword: str = "alexa",
                     mode: str = "golden", min_gap_s: float = DEFAULT_MIN_GAP_S,
                     per_class: bool = True, stream: Stream | None = None,
                     progress: bool = False) -> dict:
    """The detection thresholds of ``model`` for at most ``fa_per_hour`` false accepts per hour
    on the held-back ``split`` stream, run in ``mode`` (by default the golden model: the
    integers the accelerator computes).

    With several keyword classes and ``per_class``, each class first gets its offset from the
    stream (:func:`kwshw.streams.estimate_class_offsets`); then the reference threshold is the
    lowest-FRR point of the sweep at the target. The trainer stores the result in
    ``meta["detection"]`` (:func:`kwshw.evaluate.detection_thresholds` reads it), so a model
    file brings thresholds chosen for a stated false-accept rate on speakers it was not
    trained on, instead of a fixed 0.5. The evaluation in ``bench/`` reports them on the
    validation and test streams.

    Returns
    -------
    dict
        ``threshold``, ``class_offsets`` (``{label: nines}``, empty for one keyword class or
        without ``per_class``), ``offset_quantile``, ``fa_per_hour_target``, ``split``,
        ``seed``, ``mode``, and the ``frr`` / ``fa_per_hour`` reached there, with the stream's
        ``negative_hours`` and ``events``.
    """
    if stream is None:  # callers choosing for several models pass the one stream they built
        stream, _ = held_out_stream(model.task, data_root, split=split, keyword=keyword,
                                    seed=seed, sample_rate=model.features.sample_rate,
                                    min_gap_s=min_gap_s, progress=progress)
    classes = keyword_classes(model.labels)
    hop = model.features.hop_length
    post = stream_posteriors(model, stream, mode)
    offsets = {}
    if per_class and len(classes) > 1:
        offsets = estimate_class_offsets(post, stream.events, hop, classes)
    p = _points(post, stream, classes, hop, DEFAULT_SMOOTHING, DEFAULT_REFRACTORY)(
        None, offsets or None)
    at = _frr_at(p, (fa_per_hour,))[f"{fa_per_hour:g}"]
    return {"threshold": at["threshold"],
            "class_offsets": {model.labels[c]: v for c, v in offsets.items()},
            "offset_quantile": OFFSET_QUANTILE,
            "fa_per_hour_target": fa_per_hour, "split": split, "seed": seed, "mode": mode,
            "frr": at["frr"], "fa_per_hour": at["fa_per_hour"],
            "negative_hours": stream.negative_hours, "events": len(stream.events)}
