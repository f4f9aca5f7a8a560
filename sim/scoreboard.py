"""The scoreboard: every output of a simulation against the golden model, exactly.

Host side only (NumPy, no cocotb): a testbench records what the design produced -- the
scores and, with a trace port, every layer output ``y_j`` -- grouped into *segments*
(stretches of the stream between two resets/clears). The scoreboard recomputes each segment
with :func:`kwshw.golden.run_network` on :func:`kwshw.golden.stream_windows` of the frames
that segment pushed (the window starts from zeros after every reset/clear), and compares
value by value.

On a mismatch it names the *first* wrong value: the earliest frame, and in that frame the
earliest layer (later layers are wrong as a consequence) and the lowest column, from the
trace port when there is one, else from the scores (then the layer is the last one).

A segment that ends in an interruption (reset or clear while frames were in flight) may
lack outputs for its trailing frames; every output that did come must still be right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kwshw import golden, streaming
from kwshw.quantize import LayerPlan

__all__ = ["Mismatch", "SegmentRecord", "CheckResult", "check", "expected_segment", "X"]

#: Stands for a value with X/Z bits (recorded as ``None`` by the testbench); it never
#: equals a golden value.
X = -(1 << 62)


def _show(v) -> str:
    return "X" if v is None or v == X else str(v)


@dataclass
class Mismatch:
    """One wrong, missing or surplus output value.

    ``frame`` counts every frame pushed in the run from 0 (over all segments);
    ``segment_frame`` is its index since the last reset/clear.
    """

    frame: int
    segment: int
    segment_frame: int
    layer: int
    column: int
    kind: str                  # "value", "missing", "extra", "order"
    expected: int | None = None
    got: int | None = None
    source: str = "trace"      # "trace" or "score"

    def __str__(self) -> str:
        where = (f"frame {self.frame} (segment {self.segment}, frame {self.segment_frame} of "
                 f"it), layer {self.layer}, column {self.column}")
        if self.kind == "value":
            return f"{where}: expected {self.expected}, got {_show(self.got)} [{self.source}]"
        if self.kind == "missing":
            return f"{where}: expected {self.expected}, got nothing [{self.source}]"
        if self.kind == "extra":
            return f"{where}: unexpected output {_show(self.got)} [{self.source}]"
        return f"{where}: out of order output {_show(self.got)} [{self.source}]"

    def as_dict(self) -> dict:
        d = {k: (int(v) if isinstance(v, np.integer) else v) for k, v in self.__dict__.items()}
        if d["got"] == X:
            d["got"] = "X"
        return d


@dataclass
class SegmentRecord:
    """What a testbench observed in one segment.

    Attributes
    ----------
    frames : ndarray (T, n_mels)
        The complete frames pushed in this segment (a partial frame cut by the interruption
        is not one of them).
    scores : list of int
        Every score received in the segment, in order.
    trace : list of (layer, index, value)
        Every trace-port record in the segment, in order (empty without a trace port).
    interrupted : bool
        The segment ended with a reset/clear; trailing frames may lack outputs.
    """

    frames: np.ndarray
    scores: list[int] = field(default_factory=list)
    trace: list[tuple[int, int, int]] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class CheckResult:
    """Outcome of :func:`check`."""

    frames: int                 # frames pushed (complete), all segments
    frames_checked: int         # frames whose every output arrived and was compared
    values_checked: int         # individual values compared (scores + trace)
    mismatches: int             # wrong, missing or surplus values
    first: Mismatch | None
    per_layer: list[int]        # mismatching trace values per layer
    score_mismatches: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        if self.ok:
            return (f"{self.frames_checked} frames, {self.values_checked} values: "
                    f"0 mismatches")
        return (f"{self.mismatches} mismatching values in {self.frames} frames "
                f"(per layer {self.per_layer}, scores {self.score_mismatches}); "
                f"first: {self.first}")

    def as_dict(self) -> dict:
        return {
            "frames": self.frames, "frames_checked": self.frames_checked,
            "values_checked": self.values_checked, "mismatches": self.mismatches,
            "first_mismatch": self.first.as_dict() if self.first else None,
            "per_layer": self.per_layer, "score_mismatches": self.score_mismatches,
            "notes": self.notes,
        }


def expected_segment(plans: Sequence[LayerPlan], frames: np.ndarray, context: int,
                     stride: int) -> list[np.ndarray]:
    """Golden layer outputs ``y`` of one segment, shape (T, n_out) per layer.

    For a convolutional network, each convolution's output is the position the accelerator
    computes at that hop (:func:`kwshw.streaming.stream_layers`, whose dense layers equal the
    golden model on the windows).
    """
    frames = np.asarray(frames, np.int64)
    if len(frames) == 0:
        return [np.zeros((0, p.n_out), np.int64) for p in plans]
    if any(p.conv is not None for p in plans):
        return streaming.stream_layers(plans, frames, stride)
    x = golden.stream_windows(frames, context, stride)
    return [t.y for t in golden.run_network(plans, x)]


def _group_trace(trace, n_layers: int, widths: list[int], n_frames: int):
    """Place trace records into per-layer (frame, column) arrays.

    The k-th complete group of a layer's outputs belongs to the segment's k-th frame.
    Returns (values, present, extras, order_errors).
    """
    vals = [np.zeros((n_frames, w), np.int64) for w in widths]
    seen = [np.zeros((n_frames, w), bool) for w in widths]
    count = [0] * n_layers
    extras, order = [], []
    for rec_no, (layer, index, value) in enumerate(trace):
        if not 0 <= layer < n_layers:
            extras.append((rec_no, layer, index, value))
            continue
        w = widths[layer]
        frame, pos = divmod(count[layer], w)
        count[layer] += 1
        if frame >= n_frames:
            extras.append((rec_no, layer, index, value))
            continue
        if index != pos:
            order.append((frame, layer, pos, index, value))
        if 0 <= index < w and not seen[layer][frame, index]:
            vals[layer][frame, index] = value
            seen[layer][frame, index] = True
    return vals, seen, extras, order


@dataclass
class _Tally:
    """The running counts of one :func:`check` and every candidate for the first mismatch."""

    per_layer: list[int]
    score_bad: int = 0
    total_bad: int = 0
    checked: int = 0
    candidates: list[tuple[tuple, Mismatch]] = field(default_factory=list)

    def note(self, m: Mismatch, order_key: int = 0) -> None:
        # Order: frame, then layer, then column; for the same place the trace first.
        key = (m.frame, m.layer, m.column, 0 if m.source == "trace" else 1, order_key)
        self.candidates.append((key, m))

    def bad_score(self, m: Mismatch) -> None:
        self.total_bad += 1
        self.score_bad += 1
        self.note(m)

    def first(self) -> Mismatch | None:
        return min(self.candidates, key=lambda kc: kc[0])[1] if self.candidates else None


def _check_scores(tally: _Tally, seg: SegmentRecord, want: np.ndarray, t_len: int, *,
                  segment: int, base: int) -> np.ndarray:
    """Compare one segment's scores with ``want`` (the last layer's golden outputs).

    Returns which of the segment's ``t_len`` frames have all their scores.
    """
    n_out = want.shape[1]
    last = len(tally.per_layer) - 1
    scores = list(seg.scores)
    n_full = min(len(scores) // n_out, t_len)
    complete = np.zeros(t_len, bool)
    complete[:n_full] = True
    for k, got in enumerate(scores):
        f, c = divmod(k, n_out)
        if f >= t_len:
            tally.bad_score(Mismatch(base + f, segment, f, last, c, "extra", None, got, "score"))
            continue
        tally.checked += 1
        expected = int(want[f, c])
        if got != expected:
            tally.bad_score(Mismatch(base + f, segment, f, last, c, "value", expected, got,
                                     "score"))
    if not seg.interrupted and len(scores) < t_len * n_out:
        for k in range(len(scores), t_len * n_out):
            f, c = divmod(k, n_out)
            tally.bad_score(Mismatch(base + f, segment, f, last, c, "missing",
                                     int(want[f, c]), None, "score"))
    return complete


def _check_trace(tally: _Tally, seg: SegmentRecord, exp: list[np.ndarray],
                 complete: np.ndarray, *, segment: int, base: int) -> None:
    """Compare one segment's trace records with ``exp`` (golden outputs of every layer)."""
    n_layers, t_len, s = len(exp), len(complete), segment
    widths = [e.shape[1] for e in exp]
    vals, seen, extras, order = _group_trace(seg.trace, n_layers, widths, t_len)
    for rec_no, layer, index, value in extras:
        tally.total_bad += 1
        if 0 <= layer < n_layers:
            tally.per_layer[layer] += 1
        # Beyond the segment's frames: ordered after everything real in it.
        tally.note(Mismatch(base + t_len, s, t_len, layer, index, "extra", None, value), rec_no)
    for frame, layer, pos, _index, value in order:
        tally.total_bad += 1
        tally.per_layer[layer] += 1
        tally.note(Mismatch(base + frame, s, frame, layer, pos, "order", None, value))
    for layer in range(n_layers):
        want = exp[layer]
        have, got = seen[layer], vals[layer]
        bad = have & (got != want)
        tally.checked += int(have.sum())
        # Missing trace values: only where the segment was not cut short.
        must = np.ones_like(have) if not seg.interrupted else \
            np.repeat(complete[:, None], widths[layer], axis=1)
        missing = must & ~have
        nbad = int(bad.sum()) + int(missing.sum())
        tally.per_layer[layer] += nbad
        tally.total_bad += nbad
        for kind, mask in (("value", bad), ("missing", missing)):
            idx = np.argwhere(mask)
            if len(idx):
                f, c = (int(v) for v in idx[0])
                tally.note(Mismatch(base + f, s, f, layer, c, kind, int(want[f, c]),
                                    int(got[f, c]) if kind == "value" else None))


def check(plans: Sequence[LayerPlan], context: int, stride: int,
          segments: Sequence[SegmentRecord], *, use_trace: bool = True) -> CheckResult:
    """Compare a simulation's observations with the golden model (see the module docstring)."""
    tally = _Tally(per_layer=[0] * len(plans))
    frames_total = 0
    frames_checked = 0
    for s, seg in enumerate(segments):
        frames = np.asarray(seg.frames, np.int64)
        t_len = len(frames)
        base = frames_total
        frames_total += t_len
        exp = expected_segment(plans, frames, context, stride)
        complete = _check_scores(tally, seg, exp[-1], t_len, segment=s, base=base)
        if use_trace:
            _check_trace(tally, seg, exp, complete, segment=s, base=base)
        frames_checked += int(complete.sum()) if seg.interrupted else t_len
    notes: list[str] = []
    if use_trace and not any(seg.trace for seg in segments) and frames_total:
        notes.append("no trace records: first mismatch located from the scores only")
    return CheckResult(frames=frames_total, frames_checked=frames_checked,
                       values_checked=tally.checked, mismatches=tally.total_bad,
                       first=tally.first(), per_layer=tally.per_layer,
                       score_mismatches=tally.score_bad, notes=notes)
