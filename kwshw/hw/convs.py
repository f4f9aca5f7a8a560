"""How a convolutional network maps onto the accelerator's streaming schedule.

The network's convolutions come first (:func:`kwshw.hw.common.conv_layers`); per hop the
accelerator computes one new position of each (:mod:`kwshw.streaming`), then the dense layers:

* layer 0 (the first convolution) reads its patch from the :class:`~kwshw.hw.window.Window`,
  built with ``context = K_0``: its taps are the last ``K_0`` frames, ``stride`` hops apart,
  oldest first, and frames from before reset read as 0, the first history's rest vector;
* the output of convolution ``l`` is appended to history ``l + 1`` (one
  :class:`~kwshw.hw.history.HistoryBank` holds them all), which convolution ``l + 1`` reads
  at its taps, and the last one's history is read at the last convolution's ``window_ages``
  by the first dense layer (the flattened output positions of the window).

Nothing here is built for a dense network: its window and schedule are unchanged.

Histories in SPRAM (``memory="spram"``, iCE40 UltraPlus)
    The histories are the largest run-time memories of a convolutional network (the
    reference CNN's take 23 of the UP5K's 30 block RAMs), so an SPRAM build moves their values
    into the SPRAM blocks the weights leave free (:func:`history_memories`): the largest
    history first, while blocks remain; the others stay in block RAM. A block has one port,
    and history ``l + 1`` is written (by layer ``l``) while history ``l`` is read, so those
    two cannot share one without an arbiter and stalls in the data path; histories ``l`` and
    ``l + 2`` are never accessed at once and do share
    (:func:`~kwshw.hw.history.spram_groups`). With the UP5K's 4 blocks, the reference 4-bit
    CNN's weights (4 lanes) take 1, its first and third histories (576 + 3,648 words) 1 and its
    second (1,088 words) 1: one block stays free for the rest of the design.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..arith import ACT_WIDTH
from ..features import FeatureConfig
from ..quantize import LayerPlan
from ..streaming import layer_timing, rest_vectors
from .common import conv_layers
from .history import HistorySpec, spram_group_words
from .memories import spram_block_count
from .minmax import MinMax

__all__ = ["history_memories", "history_specs", "history_spram_blocks", "history_waits",
           "window_features"]


def window_features(plans: Sequence[LayerPlan], features: FeatureConfig) -> FeatureConfig:
    """The :class:`~kwshw.hw.window.Window` configuration: the feature window for a dense
    network, the first convolution's patch (``context = K_0``) for a convolutional one."""
    if not conv_layers(plans):
        return features
    return dataclasses.replace(features, context=plans[0].conv.kernel)


def history_specs(plans: Sequence[LayerPlan], hop_stride: int) -> list[HistorySpec]:
    """One history per layer ``1 .. n_conv``: the input steps of convolution ``l`` (read at
    its taps) and, last, the last convolution's outputs (read at its ``window_ages``)."""
    n_conv = conv_layers(plans)
    timing = layer_timing(plans, hop_stride)
    rests = rest_vectors(plans)
    specs = []
    for reader in range(1, n_conv + 1):
        ages = timing[reader].taps if reader < n_conv else timing[n_conv - 1].window_ages
        specs.append(HistorySpec(
            reader=reader, channels=plans[reader - 1].n_out,
            taps=tuple(int(a) for a in np.asarray(ages)),
            rest=tuple(int(v) for v in rests[reader - 1])))
    return specs


def history_waits(plans: Sequence[LayerPlan], hop_stride: int) -> tuple[int, ...]:
    """Cycles the sequencer waits, per history-fed layer, for the history's min/max reduce
    after the previous layer's last column, beyond the tracker's fold of that column
    (:attr:`FrameSchedule.history_waits`): the reduce's latency counts the fold too."""
    return tuple(s.reduce_latency - (MinMax.LATENCY - 1)
                 for s in history_specs(plans, hop_stride))


def history_memories(specs: Sequence[HistorySpec], memory: str,
                     spare_spram: int) -> tuple[str, ...]:
    """Where each history's values live, ``"bram"`` or ``"spram"``, in the order of ``specs``.

    With ``memory="bram"`` all in block RAM. With ``"spram"``: the largest first (ties: the
    earlier history), each into the SPRAM memory of its parity
    (:func:`~kwshw.hw.history.spram_groups`) while the blocks those memories take stay within
    the ``spare_spram`` the weights leave (see the module docstring).
    """
    kinds = ["bram"] * len(specs)
    if memory != "spram":
        return tuple(kinds)
    for i in sorted(range(len(specs)), key=lambda i: (-specs[i].values, i)):
        trial = kinds[:i] + ["spram"] + kinds[i + 1:]
        if history_spram_blocks(specs, trial) <= spare_spram:
            kinds = trial
    return tuple(kinds)


def history_spram_blocks(specs: Sequence[HistorySpec], memories: Sequence[str]) -> int:
    """SPRAM blocks the histories placed in ``memories`` (:func:`history_memories`) take."""
    return sum(spram_block_count(ACT_WIDTH, words)
               for words in spram_group_words(specs, memories))
