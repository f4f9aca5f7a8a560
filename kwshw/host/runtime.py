"""Host runtime: stream a WAV file (or the microphone) to a board and report detections.

The board computes the network; the host computes the features (the exact front end of
:mod:`kwshw.features`, normalized with the model file's statistics and converted to the
integer input format) and sends one frame per 10 ms hop over the host link
(:class:`kwshw.link.protocol.Link`). Every frame's scores come back; the host turns them into
posteriors (softmax of the logits) and applies the streaming detection rule of
:mod:`kwshw.evaluate` -- moving-average smoothing and a threshold with a refractory time
(:class:`kwshw.evaluate.StreamDetector`), one detector per keyword class.

``check=True`` also runs the integer golden model on the same frames and compares every score
the board returns with it: the accelerator is bit-exact, so any difference is a fault (wrong
bitstream, corrupted weights, a link problem the CRC missed).

The CLI's ``kwshw run --port PORT --wav FILE [--check]`` calls :func:`run`;
``kwshw run --port PORT`` without ``--wav`` calls :func:`run_live` (the microphone; needs
``sounddevice``).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import golden
from ..audio import load_audio
from ..evaluate import (
    DEFAULT_REFRACTORY,
    DEFAULT_SMOOTHING,
    StreamDetector,
    detection_thresholds,
    keyword_classes,
    model_normalizer,
    posteriors,
)
from ..features import FrameSmoother, log_mel
from ..features_int import IntFrontEnd, IntFrontEndStream, pcm_from_float
from ..frontends import lfbe
from ..link.protocol import Link, LinkError
from ..modelfile import load
from ..quantize import features_to_int

__all__ = ["RunError", "Detection", "RunResult", "wav_frames", "expected_scores",
           "run", "run_frames", "run_live", "DEFAULT_BAUD"]

#: The boards' host link baud rate (see the board table in :mod:`boards`).
DEFAULT_BAUD = 1_000_000


class RunError(Exception):
    """The board cannot be used with this model (wrong model, wrong shape) or the link failed;
    the message says what to do."""


@dataclass
class Detection:
    """One detection: frame index, time in seconds from the start, class, smoothed posterior."""

    frame: int
    time_s: float
    label: str
    index: int
    posterior: float

    def __str__(self) -> str:
        return f"{self.time_s:8.2f} s  {self.label:<12} p={self.posterior:.3f}"


@dataclass
class RunResult:
    """What a run did."""

    frames: int
    detections: list[Detection] = field(default_factory=list)
    scores: np.ndarray | None = None
    mismatches: int | None = None
    mismatch_frames: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    audio_s: float = 0.0

    def summary(self) -> str:
        rate = self.frames / self.elapsed_s if self.elapsed_s > 0 else float("inf")
        text = (f"{self.frames} frames ({self.audio_s:.2f} s of audio) in {self.elapsed_s:.2f} s "
                f"({rate:.0f} frames/s), {len(self.detections)} detection(s)")
        if self.mismatches is not None:
            text += (", all scores equal the golden model" if self.mismatches == 0 else
                     f", {self.mismatches} score(s) differ from the golden model in "
                     f"{len(self.mismatch_frames)} frame(s)")
        return text


def _model(model):
    if isinstance(model, (str, Path)):
        return load(model)
    return model


def wav_frames(wav, model) -> np.ndarray:
    """Integer feature frames ``(T, n_mels)`` of a WAV/FLAC file, as the board takes them."""
    model = _model(model)
    audio = load_audio(wav, model.features.sample_rate)
    return audio_frames(audio, model)


def audio_frames(audio: np.ndarray, model) -> np.ndarray:
    """Integer feature frames of audio samples at the model's sample rate."""
    return _board_frames(lfbe(audio, model.features), model)


def _board_frames(frames: np.ndarray, model) -> np.ndarray:
    """Normalized, integer feature frames from (smoothed) log-mel frames."""
    return features_to_int(model_normalizer(model).apply(frames), model.in_frac)


def expected_scores(model, frames: np.ndarray) -> np.ndarray:
    """The golden model's scores for ``frames`` streamed from a reset window."""
    f = model.features
    windows = golden.stream_windows(np.asarray(frames, np.int64), f.context, f.stride)
    return golden.run_network(model.plans(), windows)[-1].y


class _Detectors:
    """One :class:`kwshw.evaluate.StreamDetector` per keyword class."""

    def __init__(self, model, threshold: float | None, smoothing: int | None,
                 refractory: int | None):
        self.labels = list(model.labels)
        self.keywords = keyword_classes(self.labels)
        thresholds = detection_thresholds(model, threshold)
        self.scale = 2.0 ** -model.layers[-1].out_frac
        self.hop_s = model.features.hop_length / model.features.sample_rate
        k = smoothing or DEFAULT_SMOOTHING
        r = DEFAULT_REFRACTORY if refractory is None else refractory
        self.detectors = {c: StreamDetector(thresholds[c], k, r) for c in self.keywords}

    def update(self, t: int, scores) -> list[Detection]:
        post = posteriors(np.asarray(scores, np.float64) * self.scale)
        out = []
        for c, det in self.detectors.items():
            if det.update(post[c]):
                out.append(Detection(t, (t + 1) * self.hop_s, self.labels[c], c,
                                     det.smoothed))
        return out


def _connect(link: Link, model) -> None:
    """Check that the board runs ``model``; clear its window."""
    try:
        ident = link.ident()
    except LinkError as e:
        raise RunError(f"no answer from the board ({e}); is the bitstream loaded, the "
                            f"port right and the baud rate the board's?") from None
    want = bytes.fromhex(model.sha256)[:8]
    if ident.model_hash != want:
        raise RunError(f"the board runs model {ident.model_hash.hex()}, not this model "
                            f"({want.hex()}); build and program the board for it")
    if (ident.n_bands, ident.n_out) != (model.features.n_mels, model.shape[-1]):
        raise RunError(f"board takes {ident.n_bands} bands and gives {ident.n_out} "
                            f"scores; the model has {model.features.n_mels} and "
                            f"{model.shape[-1]}")
    link.reset()


def run_frames(link: Link, model, frames: Iterable, *, check: bool = False,
               threshold: float | None = None, smoothing: int | None = None,
               refractory: int | None = None, expected: np.ndarray | None = None,
               out: Callable[[str], None] | None = print, pace_s: float = 0.0) -> RunResult:
    """Stream integer ``frames`` over an open ``link`` (from a reset window) and detect.

    Parameters
    ----------
    link : Link
        Host link to the board.
    model : Model or path
        The model the board was built for (checked through IDENT).
    frames : iterable of int arrays (n_mels,)
        Feature frames in the network's input format.
    check : bool
        Compare every score with the golden model (``expected`` if given, else computed from
        ``frames``, which must then be an array).
    threshold, smoothing, refractory :
        Detection rule (see :class:`kwshw.evaluate.StreamDetector`); threshold ``None`` is
        the model's own, one per keyword class (:func:`kwshw.evaluate.detection_thresholds`);
        a number is every class's threshold.
    out : callable or None
        Where detections (and mismatches) are printed as they happen.
    pace_s : float
        Wait until each frame's real time (live playback); 0 sends as fast as the link goes.
    """
    model = _model(model)
    _connect(link, model)
    if check and expected is None:
        expected = expected_scores(model, np.asarray(frames))
    dets = _Detectors(model, threshold, smoothing, refractory)
    result = RunResult(frames=0)
    all_scores = []
    mismatches = 0
    start = time.monotonic()
    for t, frame in enumerate(frames):
        if pace_s:
            delay = start + t * pace_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            scores = link.push_frame([int(v) for v in frame])
        except LinkError as e:
            raise RunError(f"frame {t}: {e}") from None
        all_scores.append(scores)
        if check:
            bad = np.flatnonzero(np.asarray(scores) != expected[t])
            if bad.size:
                mismatches += int(bad.size)
                result.mismatch_frames.append(t)
                if out:
                    out(f"frame {t}: board {list(np.asarray(scores)[bad])} != golden "
                        f"{list(expected[t][bad])} at class(es) {list(bad)}")
        for d in dets.update(t, scores):
            result.detections.append(d)
            if out:
                out(str(d))
        result.frames += 1
    result.elapsed_s = time.monotonic() - start
    result.audio_s = result.frames * dets.hop_s
    result.scores = np.array(all_scores, dtype=np.int64).reshape(-1, model.shape[-1])
    result.mismatches = mismatches if check else None
    return result


def run(port, wav, model, *, check: bool = False, baud: int = DEFAULT_BAUD,
        threshold: float | None = None, smoothing: int | None = None,
        refractory: int | None = None, link: Link | None = None,
        out: Callable[[str], None] | None = print, timeout: float = 1.0) -> RunResult:
    """Stream the features of ``wav`` to the board on serial ``port`` and print detections.

    Parameters
    ----------
    port : str
        Serial port of the board (e.g. ``/dev/ttyUSB1``); ignored when ``link`` is given.
    wav : str or Path
        Audio file (WAV/FLAC, resampled to the model's rate).
    model : Model or path
        The model file the board was built for.
    check : bool
        Compare every returned score with the golden model; mismatches are printed and
        counted in the result.
    baud : int
        Link baud rate (the board table's, 1 Mbaud).
    link : Link, optional
        An open link (tests, or a caller that keeps the port open).

    Returns
    -------
    RunResult
        Frames, detections, scores, mismatches, timing; :meth:`RunResult.summary` is the
        one-line account the CLI prints at the end.
    """
    model = _model(model)
    frames = wav_frames(wav, model)
    if link is None:
        try:
            link = Link.open(port, baud, timeout=timeout)
        except Exception as e:  # serial.SerialException, ImportError
            raise RunError(f"cannot open {port}: {e}") from None
    return run_frames(link, model, frames, check=check, threshold=threshold,
                      smoothing=smoothing, refractory=refractory, out=out)


def stream_frames(blocks: Iterable[np.ndarray], model) -> Iterator[np.ndarray]:
    """Integer feature frames of audio arriving in blocks (any sizes), one per hop.

    Yields the frames :func:`audio_frames` computes for the concatenated audio, bit for bit
    (tested), as soon as each frame's samples are in: framing, log-mel and the smoothing across
    hops (:class:`kwshw.features.FrameSmoother`) are done one frame at a time. A model of the
    integer front end (``FeatureConfig.integer``) gets the gateware's frames
    (:class:`kwshw.features_int.IntFrontEndStream`), which go hop by hop: its last frame is the
    last whose window ends at a whole hop of the samples given.
    """
    model = _model(model)
    cfg = model.features
    if cfg.integer:
        yield from _stream_int_frames(blocks, model)
        return
    smoother = FrameSmoother(cfg.smooth)
    buf = np.zeros(0, np.float32)
    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, np.float32)])
        while len(buf) >= cfg.win_length:
            # float64 log-mel, smoothed in float64 as lfbe does: the same bits, not just close
            raw = log_mel(buf[:cfg.win_length], cfg)[0]
            yield _board_frames(smoother(raw)[None, :], model)[0]
            buf = buf[cfg.hop_length:]


def _stream_int_frames(blocks: Iterable[np.ndarray], model) -> Iterator[np.ndarray]:
    """:func:`stream_frames` for a model of the integer front end: the golden model of the
    gateware's, one hop of 16-bit samples at a time."""
    front_end = IntFrontEndStream(IntFrontEnd.from_model(model))
    hop = model.features.hop_length
    buf = np.zeros(0, np.int64)
    for block in blocks:
        buf = np.concatenate([buf, pcm_from_float(np.asarray(block, np.float64).reshape(-1))])
        while len(buf) >= hop:
            frame = front_end.push(buf[:hop])
            buf = buf[hop:]
            if frame is not None:
                yield frame


def run_live(port, model, *, seconds: float | None = None, baud: int = DEFAULT_BAUD,
             threshold: float | None = None, device=None, link: Link | None = None,
             out: Callable[[str], None] | None = print) -> RunResult:
    """Stream the microphone to the board (needs the ``sounddevice`` package).

    Audio is captured at the model's sample rate; every hop (10 ms) the newest window of
    samples becomes one feature frame, exactly as :func:`kwshw.features.lfbe` frames a file.
    Runs for ``seconds`` (forever when ``None``, until Ctrl-C).
    """
    try:
        import sounddevice as sd
    except ImportError:
        raise RunError("live input needs the 'sounddevice' package "
                            "(pip install sounddevice)") from None
    model = _model(model)
    cfg = model.features
    if link is None:
        link = Link.open(port, baud)
    blocks: queue.Queue = queue.Queue()

    def callback(indata, n, t, status):
        blocks.put(indata[:, 0].copy())

    def blocks_until_done():
        total = 0
        limit = None if seconds is None else int(seconds * cfg.sample_rate)
        while limit is None or total < limit:
            block = blocks.get()
            total += len(block)
            yield block

    with sd.InputStream(samplerate=cfg.sample_rate, channels=1, dtype="float32",
                        blocksize=cfg.hop_length, device=device, callback=callback):
        try:
            result = run_frames(link, model, stream_frames(blocks_until_done(), model),
                                threshold=threshold, out=out)
        except KeyboardInterrupt:
            result = RunResult(frames=0)
    return result
