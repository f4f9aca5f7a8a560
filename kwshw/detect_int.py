"""The keyword detection rule in integers: softmax, smoothing, threshold and refractory time,
every bit defined, so that gateware (:class:`kwshw.hw.detection.KeywordDetector`) can apply it
on chip exactly.

This is the golden model of the rule the host applies in float (:func:`kwshw.evaluate.detect`,
:class:`kwshw.evaluate.StreamDetector`, one detector per keyword class,
:func:`kwshw.evaluate.keyword_classes`). Its input is the accelerator's score stream: per frame
the ``n_out`` final-layer outputs ``z_j`` (signed ``ACT_WIDTH``-bit, logit ``z_j 2^-F`` with
``F`` the last layer's ``out_frac``). ``docs/detection.md`` derives every width and gives the
measured agreement with the float rule.

The rule, per frame (``EF = EXP_FRAC``, ``UF = exp_index``, ``PF = post_frac``):

1. ``d_j = max(z) - z_j`` (``0 <= d_j <= ACT_MAX - ACT_MIN``).
2. Base-2 exponent with the logit scale and ``log2 e`` folded into one constant:
   ``u_j = min(rshift_round(d_j LOG2E, LOG2E_SHIFT), U_END)`` [``2^-UF``, log2 units] with
   ``LOG2E = round(log2(e) 2^(LOG2E_WIDTH - 1))`` and ``LOG2E_SHIFT = LOG2E_WIDTH - 1 - UF + F``,
   ``U_END = (EF + 2) 2^UF`` (beyond it every ``e_j`` is 0).
3. ``e_j = rshift_round(POW2[u_j mod 2^UF], floor(u_j / 2^UF))`` [``2^-EF``] with the ROM
   ``POW2[f] = round(2^(EF - f 2^-UF))``: ``e_j`` approximates ``exp(logit_j - logit_max)``;
   ``e = 2^EF`` for the largest score, so ``S = sum_j e_j >= 2^EF > 0``.
4. ``P_c = floor((e_c 2^(PF + 1) + S) / (2 S))`` [``2^-PF``]: the posterior of keyword class
   ``c``, rounded half up, ``0 <= P_c <= 2^PF``.
5. ``SUM_c = P_c[t] + ... + P_c[t - k + 1]``, posteriors from before the start (or the last
   :meth:`IntStreamDetector.clear`) counting 0, as :func:`kwshw.evaluate.smooth` does.
6. Class ``c`` fires at frame ``t`` when ``SUM_c >= T_INT_c`` and it has not fired within
   the last ``refractory`` frames, with ``T_INT_c = ceil(threshold_c k 2^PF)`` (exact, from
   the float threshold's binary value), clamped to ``[0, k 2^PF + 1]``: ``SUM_c / (k 2^PF)
   >= threshold_c`` in exact arithmetic. Every keyword class has its own threshold (a model
   file's :func:`kwshw.evaluate.detection_thresholds`), or all share one.

Several keyword classes firing on the same frame: each class has its own refractory time, as
the host runtime's one :class:`kwshw.evaluate.StreamDetector` per class, so all of them fire
(reported in class order); a detection of one class does not hold back another.

The ROM is computed once from floats with :func:`kwshw.quantize.round_half_up`; everything
after that is integer.

Measured against the float rule (``docs/detection.md``): the posteriors differ by at most
7.9e-4 (random 16-bit scores, and synthetic streams of 2..12 classes at ``F = 6..12``), and
on 20 synthetic streams of 3000 frames at four thresholds 10 of 1964 detections differ
(0.5%, a detection one frame off counting twice).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .arith import ACT_MAX, ACT_MIN, ACT_WIDTH, rshift_round, unsigned_width
from .evaluate import (
    DEFAULT_REFRACTORY,
    DEFAULT_SMOOTHING,
    detect,
    detection_thresholds,
    keyword_classes,
    posteriors,
)
from .quantize import round_half_up

__all__ = [
    "EXP_FRAC",
    "EXP_INDEX",
    "POST_FRAC",
    "LOG2E_WIDTH",
    "D_MAX",
    "Detection",
    "IntDetectRule",
    "IntStreamDetector",
    "Agreement",
    "exp_table",
    "threshold_int",
    "int_posteriors",
    "moving_sums",
    "detect_int",
    "compare_with_float",
    "rshift_round_var",
]

#: Fraction bits of the exponentials ``e_j``: ``e = 2^EXP_FRAC`` for the largest score, so
#: ``e_j`` and a ROM word fit 16 bits, the width of an iCE40 block RAM word.
EXP_FRAC = 15
#: Default index bits of the ``2^-f`` ROM (``2^EXP_INDEX`` words): the step of ``u`` is
#: ``2^-7`` in log2 units, a relative error of at most 0.27% in ``e_j``. 128 words leave room
#: in one 256-word block RAM for the scores and the smoothing history of a 12-class model.
EXP_INDEX = 7
#: Default fraction bits of the posteriors ``P_c`` (``0 <= P_c <= 2^15``: 16 bits).
POST_FRAC = 15
#: Width of the unsigned constant ``LOG2E`` (``2^15 <= LOG2E < 2^16``): its rounding moves
#: ``u`` by at most 0.04 of a step (``docs/detection.md``).
LOG2E_WIDTH = 16
#: Largest difference of two scores.
D_MAX = ACT_MAX - ACT_MIN

_LOG2E = round(float(round_half_up(math.log2(math.e) * 2.0 ** (LOG2E_WIDTH - 1))))
assert 1 << (LOG2E_WIDTH - 1) <= _LOG2E < 1 << LOG2E_WIDTH


def exp_table(index_bits: int = EXP_INDEX) -> np.ndarray:
    """The ROM ``POW2[f] = round(2^(EXP_FRAC - f 2^-index_bits))``, ``f < 2^index_bits``.

    Returns
    -------
    numpy.ndarray
        ``int64``, decreasing from ``POW2[0] = 2^EXP_FRAC``, every word ``> 2^(EXP_FRAC - 1)``.
    """
    f = np.arange(1 << index_bits, dtype=np.float64)
    table = round_half_up(2.0 ** (EXP_FRAC - f / (1 << index_bits))).astype(np.int64)
    assert table[0] == 1 << EXP_FRAC and table.min() > 1 << (EXP_FRAC - 1)
    return table


def threshold_int(threshold: float, k: int, post_frac: int = POST_FRAC) -> int:
    """``T_INT = ceil(threshold k 2^post_frac)`` in exact arithmetic, clamped to
    ``[0, k 2^post_frac + 1]`` (below 0: every frame is above; above 1: none is).

    ``SUM >= T_INT`` is then exactly ``SUM / (k 2^post_frac) >= threshold`` for every integer
    ``SUM`` in ``[0, k 2^post_frac]``.
    """
    if not math.isfinite(threshold):
        raise ValueError(f"detection threshold must be finite, got {threshold!r}")
    top = k << post_frac
    return max(0, min(top + 1, math.ceil(Fraction(threshold) * top)))


class Detection(NamedTuple):
    """One detection: the frame (counted from the start or the last clear), the class index
    (in the model's ``n_out`` classes) and the smoothed sum ``SUM_c`` (``/ (k 2^PF)`` is the
    smoothed posterior)."""

    frame: int
    cls: int
    sum: int


def _check_int(name: str, value, lo: int, hi: float) -> int:
    if isinstance(value, bool) or int(value) != value or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class IntDetectRule:
    """The integer detection rule of one model and threshold, with its derived constants.

    Parameters
    ----------
    n_out : int
        Scores per frame (the model's classes), at least 2.
    keywords : sequence of int
        The keyword classes, strictly increasing, in ``[0, n_out)``; at least one.
    out_frac : int
        Fraction bits ``F`` of the scores (the last layer's ``out_frac``, ``-32..32``).
    threshold : float or sequence of float
        Smoothed posterior at which a class fires (``>=``): one for every keyword class, or
        one per keyword class (in the order of ``keywords``).
    k : int
        Smoothing length in frames (``>= 1``).
    refractory : int
        Frames after a detection of a class in which that class does not fire again.
    exp_index : int
        Index bits ``UF`` of the ``2^-f`` ROM (4..10).
    post_frac : int
        Fraction bits ``PF`` of the posteriors (8..20).

    Attributes
    ----------
    log2e, log2e_shift, u_end : int
        ``LOG2E``, ``LOG2E_SHIFT`` and ``U_END`` of the module docstring.
    d_end : int
        The smallest ``d`` with ``u = U_END`` (``D_MAX`` if none): hardware may clip ``d``
        to it before multiplying, with the same ``u`` for every ``d``.
    thresholds : tuple of float
        The threshold of each keyword class.
    t_ints : tuple of int
        ``T_INT_c`` of each keyword class (:func:`threshold_int`).
    table : numpy.ndarray
        The ROM ``POW2`` (:func:`exp_table`).
    """

    n_out: int
    keywords: tuple[int, ...]
    out_frac: int
    threshold: float | tuple[float, ...]
    k: int = DEFAULT_SMOOTHING
    refractory: int = DEFAULT_REFRACTORY
    exp_index: int = EXP_INDEX
    post_frac: int = POST_FRAC
    table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "n_out", _check_int("n_out", self.n_out, 2, 1 << 12))
        kw = tuple(int(c) for c in self.keywords)
        if not kw or any(not 0 <= c < self.n_out for c in kw) or list(kw) != sorted(set(kw)):
            raise ValueError(f"keywords must be strictly increasing class indices in "
                             f"[0, {self.n_out}), at least one; got {self.keywords!r}")
        set_(self, "keywords", kw)
        set_(self, "out_frac", _check_int("out_frac", self.out_frac, -32, 32))
        set_(self, "k", _check_int("smoothing length k", self.k, 1, 1 << 12))
        set_(self, "refractory", _check_int("refractory", self.refractory, 0, 1 << 24))
        set_(self, "exp_index", _check_int("exp_index", self.exp_index, 4, 10))
        set_(self, "post_frac", _check_int("post_frac", self.post_frac, 8, 20))
        set_(self, "threshold", self._check_thresholds(self.threshold, len(kw)))
        for t in self.thresholds:
            threshold_int(t, self.k, self.post_frac)   # raises if not finite
        set_(self, "table", exp_table(self.exp_index))
        self._check_widths()

    @staticmethod
    def _check_thresholds(threshold, n_kw: int) -> float | tuple[float, ...]:
        if isinstance(threshold, (int, float, np.floating, np.integer)):
            return float(threshold)
        thr = tuple(float(t) for t in threshold)
        if len(thr) != n_kw:
            raise ValueError(f"one threshold, or one per keyword class ({n_kw}), got "
                             f"{len(thr)}")
        return thr

    @classmethod
    def from_model(cls, model, threshold: float | None = None, *, k: int = DEFAULT_SMOOTHING,
                   refractory: int = DEFAULT_REFRACTORY, **kwargs) -> IntDetectRule:
        """The rule of a :class:`kwshw.modelfile.Model`: its classes, keyword classes
        (:func:`kwshw.evaluate.keyword_classes`) and score format; ``threshold`` ``None`` is
        the model's own, one per keyword class (:func:`kwshw.evaluate.detection_thresholds`),
        a number is every class's."""
        thr = detection_thresholds(model, threshold)
        keywords = tuple(keyword_classes(model.labels))
        return cls(n_out=len(model.labels), keywords=keywords,
                   out_frac=model.layers[-1].out_frac,
                   threshold=tuple(thr[c] for c in keywords), k=k, refractory=refractory,
                   **kwargs)

    # --- derived constants -----------------------------------------------------------------

    @property
    def log2e(self) -> int:
        """``LOG2E = round(log2(e) 2^(LOG2E_WIDTH - 1))``."""
        return _LOG2E

    @property
    def log2e_shift(self) -> int:
        """``LOG2E_SHIFT = LOG2E_WIDTH - 1 - UF + F``: ``u = rshift_round(d LOG2E,
        LOG2E_SHIFT)``."""
        return LOG2E_WIDTH - 1 - self.exp_index + self.out_frac

    @property
    def u_end(self) -> int:
        """``U_END = (EXP_FRAC + 2) 2^UF``: every ``u`` from here on gives ``e = 0``."""
        return (EXP_FRAC + 2) << self.exp_index

    @functools.cached_property
    def d_end(self) -> int:
        """The smallest ``d`` with ``u >= U_END`` (``D_MAX`` if none)."""
        u = self._u_raw(np.arange(D_MAX + 1, dtype=np.int64))
        hit = np.flatnonzero(u >= self.u_end)
        return int(hit[0]) if hit.size else D_MAX

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The threshold of each keyword class (order of :attr:`keywords`)."""
        if isinstance(self.threshold, tuple):
            return self.threshold
        return (self.threshold,) * len(self.keywords)

    @functools.cached_property
    def t_ints(self) -> tuple[int, ...]:
        """``T_INT_c`` of each keyword class (:func:`threshold_int`)."""
        return tuple(threshold_int(t, self.k, self.post_frac) for t in self.thresholds)

    @property
    def sum_max(self) -> int:
        """Largest smoothed sum, ``k 2^PF``."""
        return self.k << self.post_frac

    @property
    def exp_sum_max(self) -> int:
        """Largest ``S``: every class at the maximum."""
        return self.n_out << EXP_FRAC

    # --- the rule --------------------------------------------------------------------------

    def _u_raw(self, d):
        return rshift_round(np.asarray(d, np.int64) * self.log2e, self.log2e_shift)

    def exp(self, d) -> np.ndarray:
        """Steps 2-3: ``e`` [``2^-EXP_FRAC``] of score differences ``d >= 0`` (any shape)."""
        u = np.minimum(self._u_raw(d), self.u_end)
        mask = (1 << self.exp_index) - 1
        return rshift_round_var(self.table[u & mask], u >> self.exp_index)

    def frame_posteriors(self, scores) -> np.ndarray:
        """Steps 1-4 for a ``(frames, n_out)`` score array: ``(frames, len(keywords))``
        posteriors [``2^-post_frac``]."""
        z = np.asarray(scores, np.int64)
        if z.ndim != 2 or z.shape[1] != self.n_out:
            raise ValueError(f"scores must have shape (frames, {self.n_out}), got {z.shape}")
        if z.size and (z.min() < ACT_MIN or z.max() > ACT_MAX):
            raise ValueError(f"scores must be {ACT_WIDTH}-bit signed integers")
        e = self.exp(z.max(axis=1, keepdims=True) - z)
        s = e.sum(axis=1, keepdims=True)
        num = (e[:, list(self.keywords)] << (self.post_frac + 1)) + s
        return num // (2 * s)

    def _check_widths(self) -> None:
        """Every intermediate stays below 62 bits (the int64 golden model is exact)."""
        assert self.log2e_shift >= -24
        widest = max(unsigned_width(D_MAX * self.log2e) + max(0, -self.log2e_shift),
                     EXP_FRAC + self.post_frac + 2 + unsigned_width(self.n_out))
        assert widest <= 62, widest


def rshift_round_var(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """:func:`kwshw.arith.rshift_round` by a per-element shift ``>= 0``: ``floor((2 x >>
    shift) + 1) / 2)``, the form a one-bit-per-cycle shifter computes."""
    return (((np.asarray(x, np.int64) << 1) >> np.asarray(shift, np.int64)) + 1) >> 1


def int_posteriors(scores, rule: IntDetectRule) -> np.ndarray:
    """The keyword posteriors ``P_c`` [``2^-rule.post_frac``] of a ``(frames, n_out)`` score
    array, ``(frames, len(rule.keywords))`` ``int64``."""
    return rule.frame_posteriors(scores)


def moving_sums(post, k: int) -> np.ndarray:
    """``SUM[t] = post[t - k + 1] + ... + post[t]`` along axis 0, earlier frames counting 0."""
    p = np.asarray(post, np.int64)
    c = np.cumsum(np.concatenate([np.zeros((1, *p.shape[1:]), np.int64), p]), axis=0)
    # c[i] is the sum of the first i frames; frames before the start are the zero c[0].
    return c[1:] - c[np.maximum(np.arange(len(p)) + 1 - k, 0)]


def _fires(sums: np.ndarray, t_ints: Sequence[int], refractory: int) -> list[tuple[int, int]]:
    """``(frame, column)`` of the firings of each column's sums (column ``col`` at
    ``t_ints[col]``), frame-major order."""
    out = []
    for col in range(sums.shape[1]):
        last = None
        for t in np.flatnonzero(sums[:, col] >= t_ints[col]):
            if last is None or t - last > refractory:
                out.append((int(t), col))
                last = int(t)
    return sorted(out)


def detect_int(scores, rule: IntDetectRule) -> list[Detection]:
    """The detections of a stream of scores (``(frames, n_out)``, from the start or a clear),
    in frame order, classes of one frame in class order."""
    sums = moving_sums(rule.frame_posteriors(scores), rule.k)
    return [Detection(t, rule.keywords[col], int(sums[t, col]))
            for t, col in _fires(sums, rule.t_ints, rule.refractory)]


class IntStreamDetector:
    """:func:`detect_int` one frame at a time, as the gateware runs it.

    Parameters
    ----------
    rule : IntDetectRule
        The rule and its constants.

    Attributes
    ----------
    frame : int
        Frames taken since the start or the last :meth:`clear`.
    sums : numpy.ndarray
        ``SUM_c`` of the last frame, one per keyword class.
    """

    def __init__(self, rule: IntDetectRule) -> None:
        self.rule = rule
        self.clear()

    def clear(self) -> None:
        """Back to the start: history 0, no refractory time running, frame 0."""
        n_kw = len(self.rule.keywords)
        self._hist = np.zeros((self.rule.k, n_kw), np.int64)
        self._cool = np.zeros(n_kw, np.int64)   # frames each class must still wait
        self.frame = 0
        self.sums = np.zeros(n_kw, np.int64)

    def update(self, scores: Sequence[int]) -> list[Detection]:
        """Take one frame's ``n_out`` scores; return its detections (class order)."""
        rule = self.rule
        post = rule.frame_posteriors(np.asarray(scores, np.int64).reshape(1, -1))[0]
        self._hist[self.frame % rule.k] = post
        self.sums = self._hist.sum(axis=0)
        out = []
        for col, (c, t_int) in enumerate(zip(rule.keywords, rule.t_ints, strict=True)):
            if self._cool[col] == 0 and self.sums[col] >= t_int:
                out.append(Detection(self.frame, c, int(self.sums[col])))
                self._cool[col] = rule.refractory
            elif self._cool[col] > 0:
                self._cool[col] -= 1
        self.frame += 1
        return out

    def run(self, frames: Iterable[Sequence[int]]) -> list[Detection]:
        """:meth:`update` on every frame; all detections."""
        return [d for f in frames for d in self.update(f)]


class Agreement(NamedTuple):
    """The integer rule against the float rule on one score stream."""

    max_posterior_error: float   #: ``max |P_c 2^-PF - posteriors(z 2^-F)[c]|``
    int_detections: int
    float_detections: int
    mismatches: int              #: detections (frame, class) in one rule but not the other


def compare_with_float(scores, rule: IntDetectRule) -> Agreement:
    """Run the integer rule and the float rule (:func:`kwshw.evaluate.posteriors`,
    :func:`kwshw.evaluate.detect` per keyword class) on the same score stream."""
    z = np.asarray(scores, np.int64)
    post_f = posteriors(z * 2.0 ** -rule.out_frac)[:, list(rule.keywords)]
    post_i = rule.frame_posteriors(z) * 2.0 ** -rule.post_frac
    err = float(np.max(np.abs(post_i - post_f), initial=0.0))
    fl = {(int(t), c) for col, (c, thr) in enumerate(zip(rule.keywords, rule.thresholds,
                                                          strict=True))
          for t in detect(post_f[:, col], thr, rule.k, rule.refractory)}
    it = {(d.frame, d.cls) for d in detect_int(z, rule)}
    return Agreement(err, len(it), len(fl), len(it ^ fl))
