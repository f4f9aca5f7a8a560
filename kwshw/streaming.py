"""A network in a stream: each hop computes every layer's newest position only.

The golden model defines a network on a window (:func:`kwshw.golden.run_network` on
:func:`kwshw.golden.stream_windows`): at every hop the whole window is recomputed. A temporal
convolution's output position depends only on its own patch, and each patch is requantized
with its own min-max range, so a position computed at one hop is *the same integers* at every
later hop that still sees it. A streaming accelerator therefore keeps a history of each
convolution's outputs and computes, per hop, one new position per convolution plus the dense
layers: this module is that schedule, in integers, and ``tests/test_streaming.py`` holds it
equal to the window definition on every hop.

In hops, a convolution of stride ``S`` over steps that are ``d`` hops apart has taps ``d``
hops apart and outputs ``d * S`` hops apart; the window's input steps are the feature window's
``stride`` hops apart. Before the first hop the stream is all-zero frames (as in
:func:`kwshw.golden.stream_windows`), so each history starts filled with its layer's *rest
vector*: the layer's output on the previous layer's rest vector (the zero frame for the
first), which :func:`rest_vectors` derives from the model like every other constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import golden
from .quantize import LayerPlan

__all__ = ["LayerTiming", "convs_first", "layer_timing", "macs_per_hop", "rest_vectors",
           "stream_layers", "stream_network"]


@dataclass(frozen=True)
class LayerTiming:
    """Where a convolution finds its inputs in the stream, in hops.

    Attributes
    ----------
    taps : ndarray of int
        Ages (hops before the current one) of the input steps of the newest patch, oldest
        first.
    window_ages : ndarray of int
        Ages of this layer's output positions that the window at the current hop uses, oldest
        first (the positions the next layer sees).
    """

    taps: np.ndarray
    window_ages: np.ndarray


def convs_first(convs: Sequence[object | None]) -> bool:
    """Whether every convolution (a layer's ``conv``, ``None`` for a dense layer) comes before
    every dense layer: what streaming needs (after a dense layer no time axis is left)."""
    n_conv = sum(c is not None for c in convs)
    return all(c is not None for c in convs[:n_conv])


def layer_timing(plans: Sequence[LayerPlan], hop_stride: int) -> list[LayerTiming | None]:
    """Per layer, its :class:`LayerTiming` (``None`` for a dense layer).

    ``hop_stride`` is the feature window's stride (hops between its steps). The window's
    input step ``i`` of ``P`` is ``(P - 1 - i) * hop_stride`` hops old; a convolution's output
    position ``p`` ends at its patch's last input step.
    """
    ages = None
    out: list[LayerTiming | None] = []
    for plan in plans:
        if plan.conv is None:
            out.append(None)
            ages = None
            continue
        geo = plan.in_geometry
        if ages is None:
            ages = (geo.positions - 1 - np.arange(geo.positions)) * hop_stride
        k, s = plan.conv.kernel, plan.conv.stride
        taps = ages[-k:]  # the newest patch: the last K input steps
        n_out = plan.out_geometry.positions
        # Output position p ends at input step p * s + k - 1.
        window_ages = ages[np.arange(n_out) * s + k - 1]
        out.append(LayerTiming(taps=taps - taps[-1], window_ages=window_ages))
        ages = window_ages
    return out


def rest_vectors(plans: Sequence[LayerPlan]) -> list[np.ndarray | None]:
    """Each convolution's output on an all-zero past: its history before the first hop."""
    out: list[np.ndarray | None] = []
    step = None  # the rest vector of the current layer's input steps
    for plan in plans:
        if plan.conv is None:
            out.append(None)
            continue
        geo = plan.in_geometry
        if step is None:
            step = np.zeros(geo.channels, np.int64)
        patch = np.tile(step, plan.conv.kernel)
        step = golden.run_layer(plan, patch[None, :]).y[0]
        out.append(step)
    return out


def stream_network(plans: Sequence[LayerPlan], frames: np.ndarray,
                   hop_stride: int) -> np.ndarray:
    """Scores of every hop of ``frames`` (T, n_mels), computing new positions only.

    Equal, hop by hop, to ``golden.run_network(plans, golden.stream_windows(frames, ...))``
    (``tests/test_streaming.py``). The network's convolutions must come first, as in the
    recipe (a convolution after a dense layer has no time axis left to slide over).
    """
    return stream_layers(plans, frames, hop_stride)[-1]


def stream_layers(plans: Sequence[LayerPlan], frames: np.ndarray,
                  hop_stride: int) -> list[np.ndarray]:
    """Every layer's output at every hop of the streaming schedule, (T, n_out) per layer: a
    convolution's newest position (the one it computes at that hop, which the window of that
    hop may not use yet), a dense layer's output (the golden model's on the window).

    The last layer's is :func:`stream_network`; the accelerator's trace port shows these.

    Every hop's newest position depends on earlier hops' *inputs* only, never on their
    outputs through a state, so each layer runs once over all hops (one batch per layer, as
    fast as NumPy goes) rather than hop by hop: convolution ``k``'s newest position at hop
    ``t`` is the layer on its inputs at hops ``t - taps``, and the dense layers' input at hop
    ``t`` is the last convolution's outputs at hops ``t - window_ages``. The past before the
    first hop is that many zero frames, whose outputs are the layers' rest vectors
    (:func:`rest_vectors`): the state the accelerator's histories start in.
    """
    if not convs_first([p.conv for p in plans]):
        raise ValueError("streaming needs the convolutions before the dense layers")
    timing = layer_timing(plans, hop_stride)
    n_conv = sum(t is not None for t in timing)
    x = np.asarray(frames, np.int64)
    n_hops = len(x)
    outs: list[np.ndarray] = []
    if n_conv:
        depth = sum(int(t.taps.max()) for t in timing[:n_conv]) + \
            int(timing[n_conv - 1].window_ages.max())
        x = np.concatenate([np.zeros((depth, x.shape[1]), np.int64), x])
        for k in range(n_conv):
            x = golden.run_layer(plans[k], _at_ages(x, timing[k].taps)).y
            outs.append(x[len(x) - n_hops:])
        x = _at_ages(x, timing[n_conv - 1].window_ages)
    for k in range(n_conv, len(plans)):
        x = golden.run_layer(plans[k], x).y
        outs.append(x)
    return outs


def _at_ages(steps: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """Row ``t`` (from ``max(ages)`` on): the rows ``t - ages`` of ``steps``, concatenated."""
    t = np.arange(int(ages.max()), len(steps))
    return steps[t[:, None] - ages[None, :]].reshape(len(t), -1)


def macs_per_hop(plans: Sequence[LayerPlan]) -> dict[str, int]:
    """Multiply-accumulates per hop: the whole window recomputed vs new positions only."""
    window = sum(p.n_in * p.n_out * p.vectors for p in plans)
    stream = sum(p.n_in * p.n_out * (1 if p.conv is not None else p.vectors) for p in plans)
    return {"window": int(window), "stream": int(stream)}
