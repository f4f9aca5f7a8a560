"""Keyword spotting judged in long streams: misses at a number of false accepts per hour.

A keyword spotter runs on continuous audio, so the figure that matters is how many keywords it
misses while it fires at most ``N`` times per hour on everything else. This module builds such
streams, runs a model over them and scores the detections.

Streams
-------
:func:`build_stream` splices isolated clips into one long recording: the negative clips (other
words, noise) back to back in a seeded random order, every keyword clip inserted *between* two
negative clips (nothing is mixed, so the audio of a keyword event is exactly its clip), with at
least ``min_gap_s`` of negative audio before every keyword and after the last one.
:func:`user_stream` turns a user's own long recording plus a file of keyword times
(:func:`load_keyword_times`) into the same :class:`Stream`. A stream is saved as a 16-bit WAV
with a JSON sidecar (:meth:`Stream.save`) that anyone can inspect.

Scoring
-------
Frame ``t`` is the decision made when feature frame ``t`` (samples ``[t * hop, t * hop +
win)``) is the newest in the model's window, one per 10 ms hop. :func:`kwshw.evaluate.detect`
is the one detection rule (smoothed posterior ``>= threshold``, refractory time).

A keyword event covering samples ``[start, end)`` has the *tolerance window* of frames
``[start // hop - before, (end - 1) // hop + after]`` (:func:`event_windows`). The window
reaches past the keyword's end because the detector is causal: the smoothed posterior rises
only once most of the keyword is inside the model's input window (``FeatureConfig.span`` = 97
frames, 0.97 s, by default) and the moving average (10 frames) adds its own delay. The default
``after`` of :data:`DEFAULT_TOLERANCE_AFTER` = 100 frames (1 s) covers both; ``before``
defaults to 0 (a causal detector cannot fire before the keyword begins).

:func:`match_detections` (one keyword):

- a detection inside an event's tolerance window is a *hit* for that event; each detection
  hits at most one event (the earliest one still unhit whose window holds it), and further
  detections inside the windows of already-hit events count neither as hits nor as false
  accepts;
- every other detection is a *false accept*;
- FRR is the fraction of events without a hit, FA/h the number of false accepts per hour of
  *negative* audio (the stream minus its keyword events, :attr:`Stream.negative_seconds`).

:func:`match_multiclass_detections` (several keyword classes, e.g. the 10 words of Speech
Commands): a detection of class ``c`` hits an event of label ``c`` whose window holds it; any
other detection of a keyword class is a false accept, *including a detection of the wrong
class inside an event's window* (on a device it triggers the wrong action, which is worse than
a miss). A detection of the right class counts once per event, as above.

:func:`stream_operating_points` / :func:`multiclass_operating_points` sweep the threshold and
give ``(threshold, fa_per_hour, frr)`` curves; :func:`frr_at_fa_per_hour` reads the FRR at a
target FA/h off a curve and :func:`plot_stream_det` draws them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import load_audio
from .evaluate import (
    DEFAULT_REFRACTORY,
    DEFAULT_SMOOTHING,
    _pyplot,
    detect,
    fire,
    model_normalizer,
    offset_threshold,
    posteriors,
    run_stream,
    save_figure,
    smooth,
)
from .features import FeatureConfig
from .frontends import lfbe

__all__ = [
    "DEFAULT_MIN_GAP_S",
    "DEFAULT_TOLERANCE_AFTER",
    "DEFAULT_TOLERANCE_BEFORE",
    "OFFSET_QUANTILE",
    "KeywordEvent",
    "Stream",
    "build_stream",
    "estimate_class_offsets",
    "event_windows",
    "frame_of_sample",
    "frr_at_fa_per_hour",
    "load_keyword_times",
    "match_detections",
    "match_multiclass_detections",
    "multiclass_detections",
    "multiclass_operating_points",
    "plot_stream_det",
    "shared_sources",
    "stream_operating_points",
    "stream_posteriors",
    "user_stream",
]

#: Frames before a keyword's first frame in which a detection still counts as a hit.
DEFAULT_TOLERANCE_BEFORE = 0
#: Frames after a keyword's last frame in which a detection still counts as a hit (1 s): the
#: model's window (0.97 s) plus the posterior smoothing delay the detection may lag behind.
DEFAULT_TOLERANCE_AFTER = 100
#: Negative audio between keywords in :func:`build_stream` (seconds). At least the tolerance
#: after a keyword (1 s) plus the refractory time (1 s), so that a detection anywhere in one
#: keyword's window can neither count for the next keyword nor hide it by its refractory time.
DEFAULT_MIN_GAP_S = 2.0
#: :func:`estimate_class_offsets` compares classes by the smoothed posterior that this
#: fraction of their negative frames reaches: on a validation stream of 0.3 h (110,000 frames)
#: the 110th highest frame, several separate bumps per class rather than the single highest.
OFFSET_QUANTILE = 1e-3
#: Format tag of the JSON sidecar of :meth:`Stream.save`.
_FORMAT = "kwshw-stream"
#: Frame alignment of the feature chunks of :func:`stream_posteriors`.
_ALIGN = 64


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------

@dataclass
class KeywordEvent:
    """One keyword in a stream.

    Attributes
    ----------
    start, end : int
        Samples ``[start, end)`` of the keyword.
    label : int
        Class index of the keyword (1 for a wake word).
    source : str
        The clip (path or key) the keyword comes from, for reports.
    """

    start: int
    end: int
    label: int = 1
    source: str = ""

    def __post_init__(self) -> None:
        self.start, self.end, self.label = int(self.start), int(self.end), int(self.label)
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"keyword event needs 0 <= start < end, got [{self.start}, "
                             f"{self.end}) ({self.source or 'no source'})")


@dataclass
class Stream:
    """A long recording with the positions of its keywords.

    Attributes
    ----------
    audio : numpy.ndarray
        Mono ``float32`` samples.
    sample_rate : int
        Hz.
    events : list of KeywordEvent
        The keywords, sorted by start.
    sources : list of str
        Every clip the stream is made of (keywords, negatives, noise), to check that no
        training clip is in an evaluation stream (:func:`shared_sources`).
    segments : list of (int, int, str)
        ``(start, end, key)`` of every spliced clip in stream order (keywords and negatives,
        not a mixed-in noise), when known: which clip each sample comes from.
    """

    audio: np.ndarray
    sample_rate: int
    events: list[KeywordEvent] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        a = np.ascontiguousarray(np.asarray(self.audio, np.float32))
        if a.ndim != 1:
            raise ValueError(f"stream audio must be 1-D (mono), got shape {a.shape}")
        if int(self.sample_rate) <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")
        self.audio, self.sample_rate = a, int(self.sample_rate)
        self.events = sorted(self.events, key=lambda e: (e.start, e.end))
        for e in self.events:
            if e.end > len(a):
                raise ValueError(f"keyword event [{e.start}, {e.end}) ({e.source}) ends after "
                                 f"the stream's {len(a)} samples")
        self.sources = list(self.sources)
        self.segments = [(int(a), int(b), str(k)) for a, b, k in self.segments]

    @property
    def duration_s(self) -> float:
        """Length of the stream in seconds."""
        return len(self.audio) / self.sample_rate

    @property
    def negative_seconds(self) -> float:
        """Seconds of the stream outside every keyword event (overlapping events counted
        once): the denominator of false accepts per hour."""
        covered, reach = 0, 0
        for e in self.events:  # sorted by start: merge the intervals
            lo = max(e.start, reach)
            if e.end > lo:
                covered += e.end - lo
            reach = max(reach, e.end)
        return (len(self.audio) - covered) / self.sample_rate

    @property
    def negative_hours(self) -> float:
        """:attr:`negative_seconds` in hours."""
        return self.negative_seconds / 3600.0

    @property
    def keyword_times(self) -> np.ndarray:
        """``(n_events, 2)`` array of ``[start_s, end_s]`` of the keywords."""
        t = np.array([[e.start, e.end] for e in self.events], np.float64).reshape(-1, 2)
        return t / self.sample_rate

    @property
    def labels(self) -> np.ndarray:
        """Label of every event, ``int64``."""
        return np.array([e.label for e in self.events], np.int64)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the stream as a 16-bit PCM WAV plus sidecars next to it.

        ``path`` (``.wav`` appended if it has another suffix) gets the audio, clipped to
        ``[-1, 1]``; ``<stem>.json`` the sample rate, length, events (samples and seconds,
        labels, sources) and sources; ``<stem>.csv`` the keyword times as ``start_s,end_s,label``
        lines, the format of :func:`load_keyword_times`. Reloading (:meth:`load`) gives the
        16-bit version of the audio, so evaluate the loaded stream when the numbers must be
        reproducible from the files.

        Returns
        -------
        pathlib.Path
            The WAV file.
        """
        import soundfile as sf

        path = Path(path)
        if path.suffix.lower() != ".wav":
            path = path.with_name(path.name + ".wav")
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.clip(self.audio, -1.0, 1.0), self.sample_rate, subtype="PCM_16")
        meta = {
            "format": _FORMAT, "version": 1, "audio": path.name,
            "sample_rate": self.sample_rate, "n_samples": len(self.audio),
            "duration_s": self.duration_s, "negative_seconds": self.negative_seconds,
            "events": [{"start": e.start, "end": e.end, "label": e.label, "source": e.source,
                        "start_s": e.start / self.sample_rate,
                        "end_s": e.end / self.sample_rate} for e in self.events],
            "sources": self.sources,
            "segments": [list(seg) for seg in self.segments],
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        lines = ["# start_s,end_s,label (keyword times of " + path.name + ")"]
        lines += [f"{e.start / self.sample_rate:.6f},{e.end / self.sample_rate:.6f},{e.label}"
                  for e in self.events]
        path.with_suffix(".csv").write_text("\n".join(lines) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Stream:
        """Read a stream written by :meth:`save` (the WAV path; its ``.json`` sidecar must be
        next to it).

        Raises
        ------
        ValueError
            When the sidecar is missing, not a stream sidecar, or disagrees with the WAV.
        """
        import soundfile as sf

        path = Path(path)
        side = path.with_suffix(".json")
        if not side.is_file():
            raise ValueError(f"{side} (the keyword times of {path}) does not exist")
        meta = json.loads(side.read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{side} is not a {_FORMAT} sidecar")
        audio, rate = sf.read(path, dtype="float32", always_2d=False)
        if audio.ndim != 1:
            raise ValueError(f"{path} has {audio.shape[1]} channels, a stream has one")
        if rate != meta["sample_rate"] or len(audio) != meta["n_samples"]:
            raise ValueError(f"{path} ({len(audio)} samples at {rate} Hz) does not match "
                             f"{side} ({meta['n_samples']} samples at {meta['sample_rate']} Hz)")
        events = [KeywordEvent(d["start"], d["end"], d["label"], d.get("source", ""))
                  for d in meta["events"]]
        return cls(audio, rate, events, list(meta.get("sources", [])),
                   [tuple(seg) for seg in meta.get("segments", [])])


def shared_sources(stream: Stream, sources: Sequence[str | os.PathLike]) -> list[str]:
    """The clips of ``stream`` that are also in ``sources`` (e.g. the training clips), sorted;
    empty when the stream is clean."""
    theirs = {str(s) for s in sources}
    return sorted({s for s in stream.sources if s in theirs})


def _clip(audio, what: str) -> np.ndarray:
    a = np.asarray(audio, np.float32)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what}: a clip must be non-empty 1-D audio, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: the clip holds NaN or infinite samples")
    return a


def build_stream(negatives: Sequence[tuple[str, np.ndarray]],
                 keywords: Sequence[tuple[str, np.ndarray, int]], *, sample_rate: int = 16000,
                 seed: int = 0, min_gap_s: float = DEFAULT_MIN_GAP_S,
                 noise: tuple[str, np.ndarray] | None = None,
                 snr_db: float | None = None) -> Stream:
    """Splice keyword clips between negative clips into one long stream.

    The negative clips are concatenated back to back in a random order. The keywords, in a
    random order, are inserted at random boundaries between two negative clips (or before the
    first / after the last), never inside a clip, such that there are at least ``min_gap_s``
    seconds of negative audio before the first keyword, between two consecutive keywords and
    after the last one (where the detector still has to fire). The positions are drawn
    uniformly in the continuous slack (``n`` sorted uniform offsets in ``[0, total - (n + 1) *
    gap]``, keyword ``i`` at ``offset_i + i * gap``) and moved to the next clip boundary
    that keeps the spacing. Clips are joined without a crossfade: both sides of a boundary are
    ordinary recordings, and the model sees such jumps between clips in training too.

    Parameters
    ----------
    negatives : sequence of (str, numpy.ndarray)
        ``(key, audio)`` of the non-keyword clips (other words, noise), at ``sample_rate``.
    keywords : sequence of (str, numpy.ndarray, int)
        ``(key, audio, label)`` of the keyword clips.
    sample_rate : int
        Sample rate of every clip (read them with :func:`kwshw.audio.load_audio`).
    seed : int
        Seed of the orders, positions and noise offset: equal seeds give equal streams.
    min_gap_s : float
        Minimum negative audio around every keyword, in seconds (see
        :data:`DEFAULT_MIN_GAP_S`).
    noise : (str, numpy.ndarray), optional
        ``(key, audio)`` of a background noise recording mixed over the *whole* stream,
        looped from a random offset (then the keyword audio is no longer exactly its clip).
    snr_db : float, optional
        With ``noise``: ratio of the mean power of the keyword clips to that of the added noise
        (dB).

    Returns
    -------
    Stream
        ``sources`` lists every clip key: keywords, negatives and the noise.

    Raises
    ------
    ValueError
        When there are no clips, a clip is empty or not 1-D, or the negative audio is too short
        to space the keywords (the message gives the seconds needed and available).
    """
    if not keywords and not negatives:
        raise ValueError("build_stream needs at least one clip")
    if (noise is None) != (snr_db is None):
        raise ValueError("give both noise and snr_db, or neither")
    if noise is not None and not keywords:
        raise ValueError("snr_db is relative to the keyword clips: noise needs keywords")
    if min_gap_s < 0:
        raise ValueError(f"min_gap_s must be >= 0, got {min_gap_s}")
    negs = [(str(k), _clip(a, f"negative {k}")) for k, a in negatives]
    kws = [(str(k), _clip(a, f"keyword {k}"), int(lab)) for k, a, lab in keywords]
    rng = np.random.default_rng(seed)
    negs = [negs[i] for i in rng.permutation(len(negs))]
    kws = [kws[i] for i in rng.permutation(len(kws))]
    gap = int(round(min_gap_s * sample_rate))
    bounds = _keyword_boundaries([len(a) for _, a in negs], len(kws), gap, rng,
                                 min_gap_s, sample_rate)
    audio, events, segments = _splice(negs, kws, bounds)
    sources = [k for k, _, _ in kws] + [k for k, _ in negs]
    if noise is not None:
        audio = _mix_noise(audio, noise, [a for _, a, _ in kws], snr_db, rng)
        sources.append(str(noise[0]))
    return Stream(audio, sample_rate, events, sources, segments)


def _keyword_boundaries(lengths: Sequence[int], n: int, gap: int, rng: np.random.Generator,
                        min_gap_s: float, sample_rate: int) -> np.ndarray:
    """Boundary (index of the negative clip it precedes) of each of ``n`` keywords, with at
    least ``gap`` negative samples before each keyword and after the last (rule in
    :func:`build_stream`)."""
    # cum[b]: negative samples before boundary b (boundary b precedes negative clip b).
    cum = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    total = int(cum[-1])
    # Latest admissible boundary of every keyword, from the last one backwards: it leaves
    # `gap` after the last keyword and between keywords. Feasible iff the first one still has
    # `gap` before it; a failure here means no placement exists for this order of clips.
    latest = np.full(n, -1, np.int64)
    limit = total - gap
    for i in range(n - 1, -1, -1):
        latest[i] = np.searchsorted(cum, limit, side="right") - 1
        if latest[i] < 0:
            break
        limit = int(cum[latest[i]]) - gap
    if n and (latest.min() < 0 or cum[latest[0]] < gap):
        raise ValueError(
            f"not enough negative audio for {n} keywords {min_gap_s:g} s apart: need at least "
            f"{(n + 1) * gap / sample_rate:.1f} s of negatives ({n + 1} gaps; more when clips are "
            f"long, as keywords go between clips), have {total / sample_rate:.1f} s in "
            f"{len(lengths)} clips")
    slack = total - (n + 1) * gap  # >= 0 here
    targets = np.sort(rng.uniform(0.0, slack, n)) + gap * np.arange(1, n + 1)
    bounds = np.empty(n, np.int64)
    # Negative samples before the previous keyword; none for the first, whose own target is
    # already >= gap (and latest[0] too).
    prev = -gap
    for i in range(n):
        want = max(targets[i], prev + gap)
        # The next boundary at or after the target, but never past the latest admissible one
        # (which is always >= prev + gap, so the spacing holds either way).
        bounds[i] = min(int(np.searchsorted(cum, want, side="left")), int(latest[i]))
        prev = int(cum[bounds[i]])
    return bounds


def _splice(negs: list[tuple[str, np.ndarray]], kws: list[tuple[str, np.ndarray, int]],
            bounds: np.ndarray) -> tuple[np.ndarray, list[KeywordEvent],
                                         list[tuple[int, int, str]]]:
    """The stream's audio, keyword events and segments: keyword ``i`` before negative clip
    ``bounds[i]``."""
    pieces, events, segments, pos = [], [], [], 0
    kw_at: dict[int, list[int]] = {}
    for i, b in enumerate(bounds):
        kw_at.setdefault(int(b), []).append(i)
    for b in range(len(negs) + 1):
        for i in kw_at.get(b, []):
            key, a, lab = kws[i]
            pieces.append(a)
            events.append(KeywordEvent(pos, pos + len(a), lab, key))
            segments.append((pos, pos + len(a), key))
            pos += len(a)
        if b < len(negs):
            pieces.append(negs[b][1])
            segments.append((pos, pos + len(negs[b][1]), negs[b][0]))
            pos += len(negs[b][1])
    return np.concatenate(pieces), events, segments


def _mix_noise(audio: np.ndarray, noise: tuple[str, np.ndarray],
               keyword_audio: Sequence[np.ndarray], snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus the noise recording, looped from a random offset, at ``snr_db`` below
    the keyword clips' mean power."""
    nkey, nz = str(noise[0]), _clip(noise[1], f"noise {noise[0]}").astype(np.float64)
    p_noise = float(np.mean(nz ** 2))
    if p_noise == 0.0:
        raise ValueError(f"noise {nkey} is silent; no level gives an SNR")
    p_kw = float(np.mean(np.concatenate(keyword_audio).astype(np.float64) ** 2))
    start = int(rng.integers(len(nz)))
    idx = (start + np.arange(len(audio))) % len(nz)
    gain = math.sqrt(p_kw / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (audio + gain * nz[idx]).astype(np.float32)


def _parse_fields(line: str) -> list[str]:
    # Commas when there are any, else whitespace (tab-separated label files).
    parts = line.split(",") if "," in line else line.split()
    return [p.strip() for p in parts]


def load_keyword_times(path: str | os.PathLike, *, duration_s: float | None = None,
                       default_duration_s: float = 1.0,
                       default_label: int = 1) -> list[tuple[float, float, int]]:
    """Read a keyword-times file: one keyword per line, ``start_s[,end_s[,label]]``.

    Fields are separated by commas (or, without commas, by white space). Blank lines and lines
    starting with ``#`` are skipped. A line with one number gives the keyword's *centre*; the
    keyword then lasts ``default_duration_s`` around it (cut at 0 and at ``duration_s``). A
    missing label is ``default_label``.

    Parameters
    ----------
    path : path
        The text file.
    duration_s : float, optional
        Length of the recording: times beyond it are errors.
    default_duration_s : float
        Duration given to a keyword known only by its centre.
    default_label : int
        Label of lines without one.

    Returns
    -------
    list of (float, float, int)
        ``(start_s, end_s, label)`` in the file's order.

    Raises
    ------
    ValueError
        For a missing or unreadable file; naming the file and line: unparsable fields,
        more than three fields, a negative or non-finite time, ``end_s <= start_s``, a
        negative label, or a time beyond ``duration_s``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the keyword-times file {path}: {e}") from e
    out = []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {no} ({line!r})"
        fields = _parse_fields(line)
        if len(fields) > 3:
            raise ValueError(f"{where}: expected start_s[,end_s[,label]], got {len(fields)} "
                             "fields")
        try:
            times = [float(f) for f in fields[:2]]
            label = int(fields[2]) if len(fields) == 3 else default_label
        except ValueError:
            raise ValueError(f"{where}: expected start_s[,end_s[,label]] with numeric times "
                             "and an integer label") from None
        if not all(math.isfinite(t) for t in times):
            raise ValueError(f"{where}: times must be finite")
        if any(t < 0 for t in times):
            raise ValueError(f"{where}: negative time")
        if label < 0:
            raise ValueError(f"{where}: negative label {label}")
        if len(times) == 1:
            c = times[0]
            start, end = max(0.0, c - default_duration_s / 2), c + default_duration_s / 2
            if duration_s is not None:
                end = min(end, float(duration_s))
            check = c
        else:
            start, end = times
            if end <= start:
                raise ValueError(f"{where}: end_s ({end}) must be after start_s ({start})")
            check = end
        if duration_s is not None and check > duration_s:
            raise ValueError(f"{where}: time {check} s is beyond the recording's "
                             f"{duration_s:.3f} s")
        if end <= start:
            raise ValueError(f"{where}: the keyword is empty within the recording")
        out.append((start, end, label))
    return out


def user_stream(audio: np.ndarray | str | os.PathLike,
                keyword_times: str | os.PathLike | Sequence, *, sample_rate: int = 16000,
                default_duration_s: float = 1.0, default_label: int = 1,
                source: str | None = None) -> Stream:
    """A user's own long recording with its keyword times as a :class:`Stream`.

    Parameters
    ----------
    audio : numpy.ndarray or path
        Mono samples at ``sample_rate``, or an audio file (read by
        :func:`kwshw.audio.load_audio`, resampled to ``sample_rate``).
    keyword_times : path or sequence
        A keyword-times file (:func:`load_keyword_times`) or a sequence whose items are a
        centre time ``c``, ``(start_s, end_s)`` or ``(start_s, end_s, label)`` in seconds.
    sample_rate : int
        Hz.
    default_duration_s, default_label : float, int
        For keywords given by their centre / without a label.
    source : str, optional
        Name of the recording in ``sources`` and the events (the file name by default).

    Raises
    ------
    ValueError
        For malformed, negative or out-of-range keyword times (naming the line or item).
    """
    if isinstance(audio, (str, os.PathLike)):
        source = source or str(audio)
        audio = load_audio(audio, sample_rate)
    source = source or "user recording"
    a = np.asarray(audio, np.float32)
    if a.ndim != 1:
        raise ValueError(f"the recording must be 1-D (mono), got shape {a.shape}")
    dur = len(a) / sample_rate
    if isinstance(keyword_times, (str, os.PathLike)):
        times = load_keyword_times(keyword_times, duration_s=dur,
                                   default_duration_s=default_duration_s,
                                   default_label=default_label)
    else:
        times = []
        for i, item in enumerate(keyword_times):
            it = list(np.atleast_1d(np.asarray(item, np.float64)))
            where = f"keyword time {i} ({item!r})"
            if not 1 <= len(it) <= 3 or not all(math.isfinite(v) for v in it):
                raise ValueError(f"{where}: expected a centre, (start_s, end_s) or "
                                 "(start_s, end_s, label)")
            if min(it[:2]) < 0 or it[min(1, len(it) - 1)] > dur:
                raise ValueError(f"{where}: outside the recording's 0..{dur:.3f} s")
            if len(it) == 1:
                s, e = max(0.0, it[0] - default_duration_s / 2), min(dur, it[0]
                                                                     + default_duration_s / 2)
            else:
                s, e = it[0], it[1]
            lab = int(it[2]) if len(it) == 3 else default_label
            if e <= s or lab < 0:
                raise ValueError(f"{where}: needs start_s < end_s and a label >= 0")
            times.append((s, e, lab))
    events = [KeywordEvent(int(round(s * sample_rate)), min(len(a), int(round(e * sample_rate))),
                           lab, source) for s, e, lab in times]
    return Stream(a, sample_rate, events, [source])


# ---------------------------------------------------------------------------------------------
# Running a model over a stream
# ---------------------------------------------------------------------------------------------

def stream_posteriors(model, stream: Stream | np.ndarray, mode: str = "golden",
                      chunk_frames: int = 8192) -> np.ndarray:
    """Class posteriors of every frame of a stream, streamed from reset, shape ``(T, C)``.

    The same numbers as :func:`kwshw.evaluate.stream_scores` on the whole stream's features
    (``lfbe`` of all the audio at once), computed in chunks of about ``chunk_frames``
    decisions so that an hour of audio (360,000 windows of ``n_inputs`` values, gigabytes
    of features and spectra) never sits in memory at once: each chunk recomputes the feature
    frames of history its first windows reach back to (the window span plus the front end's
    smoothing), and chunks are aligned to 64 frames so that even the BLAS summation order of
    the mel energies is that of one call (the tests check bit equality).

    Parameters
    ----------
    model : kwshw.modelfile.Model
        The model file.
    stream : Stream or numpy.ndarray
        The stream (its sample rate must be the model's) or its audio.
    mode : str
        How to run the network (:func:`kwshw.evaluate.run_windows`).
    chunk_frames : int
        Decisions per chunk (rounded up to a multiple of 64).

    Returns
    -------
    numpy.ndarray
        ``float64 (n_frames, n_classes)``; column 1 is the wake word's keyword.
    """
    cfg: FeatureConfig = model.features
    if isinstance(stream, Stream):
        if stream.sample_rate != cfg.sample_rate:
            raise ValueError(f"the stream is at {stream.sample_rate} Hz, the model's front end "
                             f"at {cfg.sample_rate} Hz")
        audio = stream.audio
    else:
        audio = np.asarray(stream, np.float32)
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be positive, got {chunk_frames}")
    norm = model_normalizer(model)
    win, hop = cfg.win_length, cfg.hop_length
    total = 1 if len(audio) < win else 1 + (len(audio) - win) // hop
    history = (cfg.span - 1) + (cfg.smooth - 1)  # log-mel frames a window's features reach
    # The mel energies are matrix-vector products whose BLAS kernel sums a few rows at a time
    # and the leftover rows of a call in another order (last-bit differences). Starting every
    # call at a multiple of _ALIGN frames, with whole multiples of it in every chunk but the
    # last, gives each frame the same row group as one call on the whole stream would.
    step = -(-int(chunk_frames) // _ALIGN) * _ALIGN
    out = []
    for a in range(0, total, step):
        b = min(total, a + step)
        lo = max(0, a - history) // _ALIGN * _ALIGN
        if total == 1:
            seg = audio  # shorter than one window: lfbe pads it
        else:
            seg = audio[lo * hop:(b - 1) * hop + win]
        feats = lfbe(seg, cfg)
        # Rows before `a - lo` only serve as history: their own smoothing may be cut short,
        # but the windows of frames a..b-1 never reach them unless lo is the stream's start.
        first = max(0, a - (cfg.span - 1)) - lo
        frames = norm.apply(feats[first:b - lo])
        out.append(posteriors(run_stream(model, frames, mode, start=a - lo - first)))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# Matching detections with keywords
# ---------------------------------------------------------------------------------------------

def frame_of_sample(n: int | np.ndarray, hop: int) -> int | np.ndarray:
    """The frame whose hop holds sample ``n`` (``n // hop``; frame ``t`` starts at sample
    ``t * hop``). Works on integers and integer arrays."""
    if isinstance(n, np.ndarray):
        return n // hop
    return int(n) // int(hop)


def event_windows(events: Sequence[KeywordEvent], hop_length: int, *,
                  tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                  tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Tolerance windows of the events, ``(lo, hi)`` frame arrays, both ends included:
    ``lo = max(0, start // hop - before)``, ``hi = (end - 1) // hop + after``."""
    if tolerance_frames_before < 0 or tolerance_frames_after < 0:
        raise ValueError("tolerances must be >= 0 frames")
    start = np.array([e.start for e in events], np.int64)
    end = np.array([e.end for e in events], np.int64)
    lo = np.maximum(0, frame_of_sample(start, hop_length) - int(tolerance_frames_before))
    hi = frame_of_sample(end - 1, hop_length) + int(tolerance_frames_after)
    return lo, hi


def _match_windows(det: np.ndarray, lo: np.ndarray, hi: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(hits per window, mask of the detections outside every window)`` under the rule of
    the module docstring; ``det`` sorted, windows in any order."""
    n = len(lo)
    hits = np.zeros(n, bool)
    if n == 0 or det.size == 0:
        return hits, np.ones(det.size, bool)
    order = np.lexsort((hi, lo))
    lo_s, hi_s = lo[order], hi[order]
    if np.all(hi_s[:-1] < lo_s[1:]):
        # Disjoint windows (always so in build_stream's streams): one search per detection.
        i = np.searchsorted(lo_s, det, side="right") - 1
        inside = (i >= 0) & (det <= hi_s[np.maximum(i, 0)])
        hits[order[np.unique(i[inside])]] = True
        return hits, ~inside
    outside = np.ones(det.size, bool)
    for j, t in enumerate(det):
        cand = np.flatnonzero((lo_s <= t) & (hi_s >= t))  # earliest window first
        if cand.size:
            outside[j] = False
            free = cand[~hits[order[cand]]]
            if free.size:
                hits[order[free[0]]] = True
    return hits, outside


def match_detections(detections, events: Sequence[KeywordEvent], hop_length: int, *,
                     tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                     tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """Hits and false accepts of one keyword's detections (rule in the module docstring).

    Parameters
    ----------
    detections : array of int
        Frames at which the detector fired (:func:`kwshw.evaluate.detect`).
    events : sequence of KeywordEvent
        The keywords (their labels are not looked at).
    hop_length : int
        Samples per frame.
    tolerance_frames_before, tolerance_frames_after : int
        Tolerance window around each keyword (:func:`event_windows`).

    Returns
    -------
    hits : numpy.ndarray of bool
        Per event (in the order given), whether a detection hit it.
    false_accepts : int
        Detections outside every tolerance window.
    fa_frames : numpy.ndarray
        Their frames.
    """
    det = np.sort(np.asarray(detections, np.int64).ravel())
    lo, hi = event_windows(events, hop_length, tolerance_frames_before=tolerance_frames_before,
                           tolerance_frames_after=tolerance_frames_after)
    hits, outside = _match_windows(det, lo, hi)
    return hits, int(outside.sum()), det[outside]


def _per_class(value, classes: Sequence[int], what: str = "threshold") -> dict[int, float]:
    """``{class: value}`` from one value or a mapping with every class."""
    if isinstance(value, Mapping):
        missing = sorted(set(classes) - set(value))
        if missing:
            raise ValueError(f"no {what} for keyword classes {missing}")
        return {c: float(value[c]) for c in classes}
    return {c: float(value) for c in classes}


def multiclass_detections(post, keyword_classes: Sequence[int],
                          threshold: float | Mapping[int, float],
                          smoothing: int = DEFAULT_SMOOTHING,
                          refractory: int = DEFAULT_REFRACTORY) -> list[tuple[int, int]]:
    """Detections of several keyword classes: :func:`kwshw.evaluate.detect` on each class's
    posterior column (each class with its own refractory time, and its own threshold when
    ``threshold`` maps classes to thresholds).

    Returns
    -------
    list of (int, int)
        ``(frame, class)`` sorted by frame, then class.
    """
    p = np.asarray(post, np.float64)
    if p.ndim != 2:
        raise ValueError(f"posteriors must have shape (T, C), got {p.shape}")
    thr = _per_class(threshold, [int(c) for c in keyword_classes])
    out = [(int(t), int(c)) for c in keyword_classes
           for t in detect(p[:, c], thr[int(c)], smoothing, refractory)]
    return sorted(out)


def match_multiclass_detections(detections: Sequence[tuple[int, int]],
                                events: Sequence[KeywordEvent], hop_length: int, *,
                                tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                                tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER
                                ) -> tuple[np.ndarray, int, list[tuple[int, int]]]:
    """Hits and false accepts of multi-class detections (rule in the module docstring: a
    detection of the wrong class inside a keyword's window is a false accept).

    Returns
    -------
    hits : numpy.ndarray of bool
        Per event, whether a detection of its label hit it.
    false_accepts : int
        Detections that hit no event of their class.
    fa : list of (int, int)
        Those detections, ``(frame, class)``, sorted.
    """
    d = np.asarray(detections, np.int64).reshape(-1, 2)
    labels = np.array([e.label for e in events], np.int64)
    lo, hi = event_windows(events, hop_length, tolerance_frames_before=tolerance_frames_before,
                           tolerance_frames_after=tolerance_frames_after)
    hits = np.zeros(len(events), bool)
    fa: list[tuple[int, int]] = []
    for c in np.unique(d[:, 1]):
        det = np.sort(d[d[:, 1] == c, 0])
        mine = np.flatnonzero(labels == c)
        h, outside = _match_windows(det, lo[mine], hi[mine])
        hits[mine] = h
        fa += [(int(t), int(c)) for t in det[outside]]
    return hits, len(fa), sorted(fa)


# ---------------------------------------------------------------------------------------------
# Threshold sweeps
# ---------------------------------------------------------------------------------------------

def _default_thresholds(smoothed: Sequence[np.ndarray], peaks: np.ndarray,
                        n: int) -> np.ndarray:
    """About ``n`` thresholds where the curve changes, and one above everything.

    Every distinct smoothed value when there are at most ``n``; otherwise half at the ``r``-th
    highest local maximum of the smoothed posteriors for ``r`` log-spaced (so the
    few-false-accepts end is resolved), a quarter at quantiles of every frame's value and a
    quarter at the events' peaks (their quantiles when there are more)."""
    vals = np.concatenate([np.ravel(s) for s in smoothed])
    vals = vals[np.isfinite(vals)]
    top = max(1.0, float(vals.max())) if vals.size else 1.0
    reject_all = [np.nextafter(top, np.inf)]
    distinct = np.unique(vals)
    if distinct.size <= n:  # few levels (e.g. hand-made posteriors): all of them, exactly
        return np.unique(np.concatenate([distinct, reject_all]))
    grid = [np.quantile(vals, np.linspace(0.0, 1.0, max(2, n // 4)))]
    local = []
    for s in smoothed:
        s = np.asarray(s)
        if s.size >= 3:
            core = (s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:])
            local.append(s[1:-1][core])
        local.append(s[[0, -1]] if s.size else s)
    lm = np.sort(np.concatenate(local))[::-1] if local else np.zeros(0)
    lm = lm[np.isfinite(lm)]
    if lm.size:
        ranks = np.unique(np.geomspace(1, lm.size, max(2, n // 2)).astype(np.int64)) - 1
        grid.append(lm[ranks])
    pk = peaks[np.isfinite(peaks)]
    if pk.size:
        grid.append(pk if pk.size <= n // 4 else np.quantile(pk, np.linspace(0, 1, n // 4)))
    grid.append(reject_all)
    return np.unique(np.concatenate(grid))


def _sweep_result(thr, fa, misses, n_events, negative_hours, smoothing, refractory, before,
                  after) -> dict:
    fa = np.asarray(fa, np.int64)
    misses = np.asarray(misses, np.int64)
    return {
        "thresholds": np.asarray(thr, np.float64),
        "fa_per_hour": fa / negative_hours,
        "frr": misses / n_events if n_events else np.full(len(thr), np.nan),
        "false_accepts": fa, "misses": misses, "n_events": int(n_events),
        "negative_hours": float(negative_hours), "smoothing": int(smoothing),
        "refractory": int(refractory), "tolerance_frames_before": int(before),
        "tolerance_frames_after": int(after),
    }


def stream_operating_points(post, events: Sequence[KeywordEvent], hop_length: int,
                            negative_hours: float, thresholds=None, *,
                            smoothing: int = DEFAULT_SMOOTHING,
                            refractory: int = DEFAULT_REFRACTORY, n_thresholds: int = 200,
                            tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                            tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER) -> dict:
    """False accepts per hour and false-reject rate of one keyword at a sweep of thresholds.

    At every threshold the detections are those of :func:`kwshw.evaluate.detect` (the
    posterior is smoothed once; the same rule is then applied per threshold) and they are
    matched with the events by :func:`match_detections`.

    Parameters
    ----------
    post : array (T,)
        Keyword posterior of every frame of the stream, from reset.
    events : sequence of KeywordEvent
        The stream's keywords.
    hop_length : int
        Samples per frame.
    negative_hours : float
        Hours of negative audio (:attr:`Stream.negative_hours`).
    thresholds : array, optional
        Thresholds to try; by default about ``n_thresholds`` of them where the curve changes
        (log-spaced in the number of bumps above them, quantiles of the smoothed posterior,
        the events' peaks) plus one above every value (no detection: FA/h 0, FRR 1).
    smoothing, refractory : int
        The detection rule's parameters (frames).
    n_thresholds : int
        Size of the default grid.
    tolerance_frames_before, tolerance_frames_after : int
        Tolerance windows (:func:`event_windows`).

    Returns
    -------
    dict
        ``thresholds`` (increasing), ``fa_per_hour``, ``frr``, ``false_accepts``, ``misses``
        (arrays, one entry per threshold), and the scalars ``n_events``, ``negative_hours``,
        ``smoothing``, ``refractory``, ``tolerance_frames_before/after``.
    """
    if not negative_hours > 0:
        raise ValueError(f"negative_hours must be positive, got {negative_hours}")
    s = smooth(np.asarray(post, np.float64).ravel(), smoothing)
    lo, hi = event_windows(events, hop_length, tolerance_frames_before=tolerance_frames_before,
                           tolerance_frames_after=tolerance_frames_after)
    if thresholds is None:
        peaks = np.array([s[a:b + 1].max() if a < s.size else -np.inf
                          for a, b in zip(lo, hi, strict=True)])
        thr = _default_thresholds([s], peaks, n_thresholds)
    else:
        thr = np.unique(np.asarray(thresholds, np.float64).ravel())
    fa, misses = [], []
    for t in thr:
        hits, outside = _match_windows(fire(s, t, refractory), lo, hi)
        fa.append(int(outside.sum()))
        misses.append(int((~hits).sum()))
    return _sweep_result(thr, fa, misses, len(events), negative_hours, smoothing, refractory,
                         tolerance_frames_before, tolerance_frames_after)


def _level_of(values: np.ndarray, offset: float) -> np.ndarray:
    """The reference levels at which a class with ``offset`` has the threshold ``values``
    (the inverse of :func:`kwshw.evaluate.offset_threshold`, for the sweep's grid)."""
    if offset == 0.0:
        return values
    return 1.0 - (1.0 - values) * 10.0 ** offset


def multiclass_operating_points(post, events: Sequence[KeywordEvent], hop_length: int,
                                negative_hours: float, keyword_classes: Sequence[int],
                                thresholds=None, *,
                                class_offsets: Mapping[int, float] | None = None,
                                smoothing: int = DEFAULT_SMOOTHING,
                                refractory: int = DEFAULT_REFRACTORY, n_thresholds: int = 200,
                                tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                                tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER) -> dict:
    """:func:`stream_operating_points` for several keyword classes.

    At every threshold the detections are :func:`multiclass_detections` and they are matched
    by :func:`match_multiclass_detections` (a wrong class inside a keyword's window is a false
    accept). ``post`` is ``(T, C)``; every event's label must be one of ``keyword_classes``.
    The classes share the threshold, or with ``class_offsets`` (``{class: nines}``,
    :func:`estimate_class_offsets`) each class detects at the swept threshold moved by its
    offset (:func:`kwshw.evaluate.offset_threshold`); ``thresholds`` are then the reference
    levels. Returns the same dict, plus ``keyword_classes`` and ``class_offsets``.
    """
    if not negative_hours > 0:
        raise ValueError(f"negative_hours must be positive, got {negative_hours}")
    p = np.asarray(post, np.float64)
    if p.ndim != 2:
        raise ValueError(f"posteriors must have shape (T, C), got {p.shape}")
    classes = [int(c) for c in keyword_classes]
    labels = np.array([e.label for e in events], np.int64)
    stray = sorted(set(labels.tolist()) - set(classes))
    if stray:
        raise ValueError(f"events with labels {stray} that are not keyword classes {classes}")
    off = _per_class(0.0 if class_offsets is None else class_offsets, classes, "offset")
    s = {c: smooth(p[:, c], smoothing) for c in classes}
    lo, hi = event_windows(events, hop_length, tolerance_frames_before=tolerance_frames_before,
                           tolerance_frames_after=tolerance_frames_after)
    per_class = {c: np.flatnonzero(labels == c) for c in classes}
    if thresholds is None:
        peaks = np.array([_level_of(s[e.label][a:b + 1].max(), off[e.label])
                          if a < p.shape[0] else -np.inf
                          for e, a, b in zip(events, lo, hi, strict=True)])
        thr = _default_thresholds([_level_of(s[c], off[c]) for c in classes], peaks,
                                  n_thresholds)
    else:
        thr = np.unique(np.asarray(thresholds, np.float64).ravel())
    fa, misses = [], []
    for t in thr:
        n_fa, n_hit = 0, 0
        for c in classes:
            mine = per_class[c]
            hits, outside = _match_windows(fire(s[c], offset_threshold(t, off[c]), refractory),
                                           lo[mine], hi[mine])
            n_fa += int(outside.sum())
            n_hit += int(hits.sum())
        fa.append(n_fa)
        misses.append(len(events) - n_hit)
    out = _sweep_result(thr, fa, misses, len(events), negative_hours, smoothing, refractory,
                        tolerance_frames_before, tolerance_frames_after)
    out["keyword_classes"] = classes
    out["class_offsets"] = off
    return out


def estimate_class_offsets(post, events: Sequence[KeywordEvent], hop_length: int,
                           keyword_classes: Sequence[int], *,
                           quantile: float = OFFSET_QUANTILE,
                           smoothing: int = DEFAULT_SMOOTHING,
                           tolerance_frames_before: int = DEFAULT_TOLERANCE_BEFORE,
                           tolerance_frames_after: int = DEFAULT_TOLERANCE_AFTER
                           ) -> dict[int, float]:
    """Per keyword class, how much higher (in nines, ``-log10(1 - p)``) its threshold should sit
    than the others' for the classes to false-accept alike.

    A model is not equally sure of itself on every class: one word can reach ``0.9999`` on
    ordinary speech where the others stay below ``0.99``, and one shared threshold is then set
    by that word alone. For class ``c`` this takes the smoothed posterior (the detection rule's
    moving average) at every frame of the stream outside the tolerance windows of ``c``'s own
    events (other keywords' events included: detecting ``c`` there is a false accept too), the
    value that a fraction ``quantile`` of those frames reaches, and its nines ``n_c``. The
    offsets are ``n_c`` minus their mean, rounded to 0.001 (what the model file stores).

    Parameters
    ----------
    post : array (T, C)
        Posteriors of every frame of a stream (:func:`stream_posteriors`), normally the
        *validation* stream: offsets are chosen, like thresholds, on audio the model did not
        train on and judged on other audio.
    events, hop_length, keyword_classes :
        As for :func:`multiclass_operating_points`.
    quantile : float
        Fraction of the negative frames above the compared value (:data:`OFFSET_QUANTILE`).
    smoothing : int
        The detection rule's moving average (frames).

    Returns
    -------
    dict
        ``{class: offset}``; pass it as ``class_offsets`` to :func:`multiclass_operating_points`.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    p = np.asarray(post, np.float64)
    if p.ndim != 2:
        raise ValueError(f"posteriors must have shape (T, C), got {p.shape}")
    lo, hi = event_windows(events, hop_length, tolerance_frames_before=tolerance_frames_before,
                           tolerance_frames_after=tolerance_frames_after)
    labels = np.array([e.label for e in events], np.int64)
    nines = {}
    for c in (int(c) for c in keyword_classes):
        negative = np.ones(p.shape[0], bool)
        for a, b in zip(lo[labels == c], hi[labels == c], strict=True):
            negative[a:b + 1] = False
        if not negative.any():
            raise ValueError(f"class {c}: no negative frames in the stream")
        q = float(np.quantile(smooth(p[:, c], smoothing)[negative], 1.0 - quantile))
        nines[c] = -math.log10(max(1.0 - q, np.finfo(np.float64).eps))
    mean = sum(nines.values()) / len(nines)
    return {c: round(n - mean, 3) for c, n in nines.items()}


def frr_at_fa_per_hour(points: dict, target: float) -> tuple[float, float, float]:
    """The lowest false-reject rate among the thresholds of a sweep whose FA/h is ``<= target``.

    With the refractory time, FA/h is not strictly monotone in the threshold (a higher
    threshold can split one long bump into two detections), so this takes the best admissible
    point rather than the first threshold below the target; ties go to the lower FA/h, then
    the lower threshold.

    Parameters
    ----------
    points : dict
        From :func:`stream_operating_points` / :func:`multiclass_operating_points`.
    target : float
        False accepts per hour allowed.

    Returns
    -------
    (float, float, float)
        ``(frr, fa_per_hour, threshold)`` of that point.

    Raises
    ------
    ValueError
        When no threshold of the sweep reaches the target (only with a custom grid: the
        default one ends with a threshold that never fires).
    """
    fa = np.asarray(points["fa_per_hour"], np.float64)
    frr = np.asarray(points["frr"], np.float64)
    thr = np.asarray(points["thresholds"], np.float64)
    ok = np.flatnonzero(fa <= target * (1 + 1e-12))
    if ok.size == 0:
        raise ValueError(f"no threshold of the sweep gives <= {target} false accepts per hour "
                         f"(lowest: {fa.min():.3g})")
    i = ok[np.lexsort((thr[ok], fa[ok], frr[ok]))[0]]
    return float(frr[i]), float(fa[i]), float(thr[i])


def _envelope(fa, frr) -> tuple[np.ndarray, np.ndarray]:
    """The best FRR reachable at each FA/h or fewer (the curve :func:`frr_at_fa_per_hour`
    reads from), sorted by FA/h."""
    fa, frr = np.asarray(fa, np.float64), np.asarray(frr, np.float64)
    order = np.lexsort((frr, fa))
    return fa[order], np.minimum.accumulate(frr[order])


def plot_stream_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path,
                    title: str = "", fa_range: tuple[float, float] = (0.1, 1000.0),
                    markers: Sequence[float] = (0.5, 1.0, 5.0)) -> Path:
    """Save stream DET curves ``{name: (fa_per_hour, frr)}`` as a PNG.

    x: false accepts per hour (log axis over ``fa_range``; 0 FA/h is drawn at the left edge),
    y: false rejects in % of keywords. Each curve is the best FRR at each FA/h or fewer (the
    definition of :func:`frr_at_fa_per_hour`). Dotted vertical lines mark ``markers`` FA/h.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (fa, frr) in curves.items():
        x, y = _envelope(fa, frr)
        ax.step(np.clip(x, fa_range[0], fa_range[1]), y * 100, where="post", label=name)
    for m in markers:
        ax.axvline(m, color="gray", linestyle=":", linewidth=1)
        ax.text(m, 1.0, f" {m:g}/h", transform=ax.get_xaxis_transform(), fontsize=7,
                va="top", color="gray")
    ax.set_xscale("log")
    ax.set_xlim(*fa_range)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("false accepts per hour of negative audio")
    ax.set_ylabel("false rejects (% of keywords)")
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
