"""A model judged in a long stream of held-back audio: FRR at false accepts per hour.

:func:`held_out_stream` builds the evaluation stream of a task from the corpora under a data
folder (:mod:`kwshw.corpora`), only from clips of the held-back splits, so no clip a model
trained on is in it:

``wake_word``
    Negatives: every held-back clip that is not the wake word: the other wake phrases, every
    Speech Commands word, ``_silence_`` (1 s of background noise each). Keywords: the held-back
    wake-word clips, spliced in at seeded positions (:func:`kwshw.streams.build_stream`).
``speech_commands``
    Negatives: the held-back ``_unknown_`` and ``_silence_`` clips, plus every clip of the
    wake-word phrases held back from the 12-class task's general speech
    (:func:`kwshw.corpora.general_speech_phrases`: words and speech the model never heard).
    Keywords: the held-back clips of the ten words, each event labelled with its class.

:func:`evaluate_stream` runs a model over a stream (any mode of
:func:`kwshw.evaluate.run_windows`), applies the board's detection rule
(:func:`kwshw.evaluate.detect`: same smoothing, same refractory time) and reports the
false-reject rate at each false-accept rate per hour, the whole curve, and the result at one
threshold (the model's default, :func:`default_threshold`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .corpora import general_speech_phrases, open_dataset
from .datasets import Dataset, DatasetError, Item, load_item
from .evaluate import DEFAULT_REFRACTORY, DEFAULT_SMOOTHING, default_threshold, keyword_classes
from .modelfile import Model
from .streams import (
    DEFAULT_MIN_GAP_S,
    Stream,
    build_stream,
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
    "held_out_stream",
]

#: False accepts per hour at which FRR is reported.
DEFAULT_FA_TARGETS: tuple[float, ...] = (0.5, 1.0, 5.0)
#: The false-accept rate a model's default threshold is chosen for (on its validation stream).
DEFAULT_THRESHOLD_FA_PER_HOUR = 5.0


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
        neg += [it for it in ww if Path(it.path).parent.name in held_phrases]
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


def _at_threshold(points_fn: Callable[[Sequence[float]], dict], threshold: float) -> dict:
    p = points_fn([threshold])
    return {"threshold": threshold, "frr": float(p["frr"][0]),
            "fa_per_hour": float(p["fa_per_hour"][0]), "false_accepts": int(p["false_accepts"][0])}


def evaluate_stream(model: Model, stream: Stream, *, modes: Sequence[str] = ("golden",),
                    fa_targets: Sequence[float] = DEFAULT_FA_TARGETS,
                    threshold: float | None = None, smoothing: int = DEFAULT_SMOOTHING,
                    refractory: int = DEFAULT_REFRACTORY,
                    plot: str | os.PathLike | None = None, title: str = "") -> dict:
    """FRR at false accepts per hour of ``model`` on ``stream``, per mode.

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
        One more operating point, at this threshold (default: :func:`default_threshold`).
    smoothing, refractory : int
        The detection rule (frames).
    plot : path, optional
        PNG of the DET curves (FA/h on the x axis).
    title : str
        The plot's title.

    Returns
    -------
    dict
        ``{"hours", "negative_hours", "events", "results": {mode: {"frr_at": {target: ...},
        "at_threshold": {...}, "curve": {...}}}, "plot"}``.
    """
    classes = keyword_classes(model.labels)
    hop = model.features.hop_length
    thr = default_threshold(model) if threshold is None else float(threshold)
    hours = stream.negative_hours
    out = {"hours": stream.duration_s / 3600, "negative_hours": hours,
           "events": len(stream.events), "smoothing": smoothing, "refractory": refractory,
           "keyword_classes": classes, "results": {}}
    curves = {}
    for mode in modes:
        post = stream_posteriors(model, stream, mode)

        def points(thresholds=None, post=post):
            if len(classes) == 1:
                return stream_operating_points(post[:, classes[0]], stream.events, hop, hours,
                                               thresholds, smoothing=smoothing,
                                               refractory=refractory)
            return multiclass_operating_points(post, stream.events, hop, hours, classes,
                                               thresholds, smoothing=smoothing,
                                               refractory=refractory)

        p = points()
        frr_at = {}
        for target in fa_targets:
            frr, fa, t = frr_at_fa_per_hour(p, target)
            frr_at[f"{target:g}"] = {"frr": frr, "fa_per_hour": fa, "threshold": t}
        out["results"][mode] = {"frr_at": frr_at, "at_threshold": _at_threshold(points, thr),
                                "curve": _curve(p)}
        curves[mode] = (np.asarray(p["fa_per_hour"]), np.asarray(p["frr"]))
    if plot is not None and curves:
        out["plot"] = str(plot_stream_det(curves, plot, title))
    return out


def choose_threshold(model: Model, data_root: str | os.PathLike, *,
                     fa_per_hour: float = DEFAULT_THRESHOLD_FA_PER_HOUR,
                     split: str = "validation", seed: int = 0, keyword: str = "alexa",
                     mode: str = "golden", min_gap_s: float = DEFAULT_MIN_GAP_S,
                     stream: Stream | None = None, progress: bool = False) -> dict:
    """The lowest-FRR threshold at which ``model`` makes at most ``fa_per_hour`` false accepts
    per hour on the held-back ``split`` stream, run in ``mode`` (by default the golden model:
    the integers the accelerator computes).

    The trainer stores the result in ``meta["detection"]`` (:func:`kwshw.evaluate.
    default_threshold` reads it), so a model file brings a threshold chosen for a stated
    false-accept rate on speakers it was not trained on, instead of a fixed 0.5. The
    evaluation in ``bench/`` reports it on the validation and test streams.

    Returns
    -------
    dict
        ``threshold``, ``fa_per_hour_target``, ``split``, ``seed``, and the ``frr`` /
        ``fa_per_hour`` reached there, with the stream's ``negative_hours`` and ``events``.
    """
    if stream is None:  # callers choosing for several models pass the one stream they built
        stream, _ = held_out_stream(model.task, data_root, split=split, keyword=keyword,
                                    seed=seed, sample_rate=model.features.sample_rate,
                                    min_gap_s=min_gap_s, progress=progress)
    res = evaluate_stream(model, stream, modes=(mode,), fa_targets=(fa_per_hour,))
    at = res["results"][mode]["frr_at"][f"{fa_per_hour:g}"]
    return {"threshold": at["threshold"], "fa_per_hour_target": fa_per_hour, "split": split,
            "seed": seed, "mode": mode, "frr": at["frr"], "fa_per_hour": at["fa_per_hour"],
            "negative_hours": res["negative_hours"], "events": res["events"]}
