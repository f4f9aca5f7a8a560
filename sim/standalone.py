"""The whole standalone keyword spotter in Verilator: an audio file in, detections out.

:func:`run_standalone_sim` is the library entry point of ``kwshw sim --wav``. It builds
:class:`boards.standalone.StandaloneCore` (microphone receiver, front end, accelerator,
detector, UART) for a model, turns the audio into what a microphone puts on its data pin
(:func:`mic_bits`: the deterministic PDM modulator, or 24-bit I2S slots), simulates the core
in Verilator and compares every stage with the golden chain (:func:`golden_chain`: the
golden receiver, :class:`kwshw.features_int.IntFrontEndStream`, :func:`kwshw.golden.run_network`,
:class:`kwshw.detect_int.IntStreamDetector`).

The harness keeps Python away from the fast signals. The microphone is Verilog
(``kwshw_standalone_tb.v``): it plays the bit stream from a file in step with the core's own
microphone clock, so the simulator runs free between the events that matter. The core sits in
a :class:`StandaloneProbe` that brings its internal streams out as ports; the cocotb testbench
(:mod:`sim.tb_standalone`) only watches those low-rate streams (feature values into the
accelerator, scores out of it, detector events) and decodes the UART line.

Nothing here imports cocotb (it runs in the simulator's process).
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Module, Signal, UnusedElaboratable, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards.errors import BuildError
from boards.standalone import FRAME_WIDTH, StandaloneCore, mic_config
from kwshw import golden
from kwshw.arith import ACT_WIDTH
from kwshw.audio import load_audio
from kwshw.detect_int import IntDetectRule, IntStreamDetector
from kwshw.features_int import IntFrontEnd, IntFrontEndStream, pcm_from_float
from kwshw.hw.detection import event_layout
from kwshw.link.protocol import Decoder, Packet, decode_detection
from kwshw.microphone import (
    PCM_RATE,
    I2SConfig,
    PDMConfig,
    PDMDecimator,
    i2s_receive,
    i2s_sd_bits,
    pdm_modulate,
)
from kwshw.modelfile import Model

from . import toolchain
from .network import _locked, cache_root

__all__ = ["MICS", "CLOCKS", "StandaloneProbe", "StandaloneResult", "Heard", "make_core",
           "standalone_clock", "mic_bits", "golden_chain", "run_standalone_sim"]

_REPO = Path(__file__).resolve().parents[1]
_TB_VERILOG = Path(__file__).with_name("kwshw_standalone_tb.v")
_TOP, _PROBE = "kwshw_standalone_tb", "kwshw_standalone_probe"
#: How long the LED stays lit after a detection (the boards' default).
HOLD_MS = 250.0
#: The microphones a standalone design takes.
MICS = ("pdm", "i2s")
#: Design clocks tried by :func:`standalone_clock`, slowest first (the simulation's cost is
#: proportional to the clock): PDM needs a whole divisor to 16 kHz, I2S a multiple of
#: 1.024 MHz (:func:`boards.standalone.mic_config`).
CLOCKS = {"pdm": (8_000_000, 12_000_000, 16_000_000, 20_000_000, 24_000_000, 48_000_000),
          "i2s": (8_192_000, 12_288_000, 16_384_000, 24_576_000, 49_152_000)}
#: The runner builds Verilator designs with every signal public and writable, which makes it
#: evaluate all combinational logic at every clock edge; the testbench only needs the top
#: level's ports (public in ``kwshw_standalone_tb.v``).
_BUILD_ARGS = {"verilator": ["--no-public-flat-rw", *toolchain.VERILATOR_TIMING],
               "icarus": []}


class StandaloneProbe(wiring.Component):
    """A :class:`boards.standalone.StandaloneCore` with what the testbench watches as ports.

    Parameters
    ----------
    core : StandaloneCore
        The design under test (PDM or I2S microphone, block RAM weights).

    Attributes
    ----------
    mic_tick : Out(1)
        High in the system cycle after the microphone clock returned to its level at reset
        (a PDM clock rises, an I2S SCK falls): the microphone puts its next bit on the pin.
    mic_data : In(1)
        The microphone's data pin (PDM ``data`` or I2S ``sd``).
    tx, led, overrun : Out(1)
        The core's pins.
    feat_fire, feat : Out
        A feature value enters the accelerator (``valid & ready``), and its value.
    score_fire, score : Out
        A score leaves the accelerator for the detector.
    event_fire, event_cls, event_frame, event_sum : Out
        A detection event leaves the detector for the UART.
    """

    def __init__(self, core: StandaloneCore):
        if core.memory != "bram":
            raise ValueError("the standalone simulation has block RAM weights (no flash)")
        self.core = core
        ev = event_layout(core.rule, FRAME_WIDTH)
        if max(ev.members["cls"].width, ev.members["sum"].width - 24, FRAME_WIDTH - 16) > 16:
            raise ValueError("the detection events are wider than the testbench's ports")
        super().__init__({
            "mic_tick": Out(1), "mic_data": In(1),
            "tx": Out(1, init=1), "led": Out(1), "overrun": Out(1),
            "feat_fire": Out(1), "feat": Out(signed(ACT_WIDTH)),
            "score_fire": Out(1), "score": Out(signed(ACT_WIDTH)),
            # The widths of kwshw_standalone_tb.v's ports.
            "event_fire": Out(1), "event_cls": Out(16), "event_frame": Out(32),
            "event_sum": Out(40),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        pdm = core.mic_kind == "pdm"
        clock, data = (core.mic.clk, core.mic.data) if pdm else (core.mic.sck, core.mic.sd)
        # The receivers' clocks start high (PDM) or low (I2S) out of reset; a microphone
        # answers the edge that leaves the other level.
        rest = int(pdm)
        seen = Signal(init=rest)
        m.d.sync += seen.eq(clock)
        m.d.comb += [self.mic_tick.eq((clock == rest) & (seen != rest)), data.eq(self.mic_data)]
        acc, det = core.accelerator, core.detector
        m.d.comb += [
            self.tx.eq(core.tx), self.led.eq(core.led), self.overrun.eq(core.overrun),
            self.feat_fire.eq(acc.feat.valid & acc.feat.ready), self.feat.eq(acc.feat.payload),
            self.score_fire.eq(acc.score.valid & acc.score.ready),
            self.score.eq(acc.score.payload),
            self.event_fire.eq(det.events.valid & det.events.ready),
            self.event_cls.eq(det.events.payload.cls),
            self.event_frame.eq(det.events.payload.frame),
            self.event_sum.eq(det.events.payload.sum),
        ]
        return m


# --- The design -------------------------------------------------------------------------------

def make_core(model: Model, mic: str, clk_hz: int, *, lanes: int, rule: IntDetectRule,
              baud: int, mic_cfg: PDMConfig | I2SConfig | None = None,
              hold_ms: float = HOLD_MS) -> StandaloneCore:
    """The standalone core of ``model`` (block RAM weights); :class:`BuildError` when the clock
    gives no exact 16 kHz or a stage does not keep up with the audio."""
    if mic not in MICS:
        raise ValueError(f"mic must be one of {MICS}, not {mic!r}")
    return StandaloneCore(model, lanes=lanes, clk_hz=clk_hz, baud=baud, mic=mic,
                          mic_cfg=mic_cfg, rule=rule, hold_ms=hold_ms)


def standalone_clock(model: Model, mic: str, *, lanes: int, rule: IntDetectRule,
                     baud: int) -> int:
    """The slowest clock of :data:`CLOCKS` at which the core keeps up with the audio.

    Raises
    ------
    BuildError
        When none does, with the reason at the fastest clock.
    """
    err = None
    for clk in CLOCKS[mic]:
        try:
            make_core(model, mic, clk, lanes=lanes, rule=rule, baud=baud)
            return clk
        except (BuildError, ValueError) as e:
            err = e
    raise BuildError(f"no simulation clock up to {CLOCKS[mic][-1] / 1e6:g} MHz works: {err}")


def _digest() -> str:
    """Hash of the code that determines the simulated Verilog."""
    h = hashlib.sha256()
    files = sorted((_REPO / "kwshw" / "hw").glob("*.py"))
    files += sorted((_REPO / "kwshw" / "link").glob("*.py"))
    files += [_REPO / "kwshw" / n for n in ("microphone.py", "features_int.py", "detect_int.py",
                                            "arith.py", "quantize.py", "golden.py",
                                            "modelfile.py", "generate.py")]
    files += [_REPO / "boards" / n for n in ("standalone.py", "flashboot.py")]
    files += [Path(__file__), _TB_VERILOG]
    for f in files:
        if f.exists():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _design(core: StandaloneCore, hold_ms: float) -> Path:
    """Verilog of the probe around ``core`` (made with ``hold_ms``), cached by model, design
    point and code."""
    key = hashlib.sha256(repr((core.model.sha256, core.lanes, core.mic_kind, core.clk_hz,
                               core.mic_cfg, core.baud, core.rule, hold_ms,
                               _digest())).encode())
    folder = cache_root() / "standalone" / key.hexdigest()[:20]
    path = folder / f"{_PROBE}.v"
    with _locked(folder / ".lock"):
        if not path.exists():
            tmp = folder / f"{_PROBE}.v.tmp"
            toolchain.convert(StandaloneProbe(core), tmp, name=_PROBE)
            tmp.replace(path)
    return path


# --- Stimulus and golden chain ------------------------------------------------------------------

def mic_bits(audio: np.ndarray, mic: str, cfg: PDMConfig | I2SConfig) -> np.ndarray:
    """What the microphone sends for ``audio`` (16 kHz, floats in ``[-1, 1]``): one bit per
    PDM clock (:func:`kwshw.microphone.pdm_modulate` of its int16 PCM), or one SD bit per SCK
    (:func:`kwshw.microphone.i2s_sd_bits`, left slot, of its 24-bit samples)."""
    a = np.asarray(audio, np.float64)
    if mic == "pdm":
        return pdm_modulate(pcm_from_float(a), cfg)
    s24 = np.clip(np.floor(a * (1 << 23) + 0.5), -(1 << 23), (1 << 23) - 1).astype(np.int64)
    return i2s_sd_bits(s24)


def golden_chain(model: Model, rule: IntDetectRule, mic: str, cfg: PDMConfig | I2SConfig,
                 bits: np.ndarray) -> dict:
    """What the board computes from microphone ``bits``, stage by stage: ``pcm``, ``frames``
    (one per whole hop of PCM), ``scores`` and ``events`` (:class:`kwshw.detect_int.Detection`).
    """
    pcm = PDMDecimator(cfg)(bits) if mic == "pdm" else i2s_receive(bits)
    hop = model.features.hop_length
    frames = IntFrontEndStream(IntFrontEnd.from_model(model)).run(pcm[:len(pcm) // hop * hop])
    if len(frames) == 0:
        raise ValueError(f"the audio is too short for one feature frame "
                         f"({model.features.win_length} samples)")
    x = golden.stream_windows(frames, model.features.context, model.features.stride)
    scores = golden.run_network(model.plans(), x)[-1].y
    return {"pcm": pcm, "frames": frames, "scores": scores,
            "events": IntStreamDetector(rule).run(scores)}


def _write_bits(path: Path, bits: np.ndarray) -> None:
    """The file format of ``kwshw_standalone_tb.v``: a 32-bit count, then 8 bits per byte."""
    b = np.asarray(bits, np.uint8)
    path.write_bytes(np.uint32(len(b)).astype("<u4").tobytes()
                     + np.packbits(b, bitorder="little").tobytes())


# --- Result -------------------------------------------------------------------------------------

@dataclass
class Heard:
    """One detection: hop index (detector frame), its end in seconds, class and label, and
    ``SUM_c`` (the smoothed posterior times ``k 2^PF``)."""

    frame: int
    time_s: float
    cls: int
    label: str
    sum: int


@dataclass
class StandaloneResult:
    """Outcome of :func:`run_standalone_sim`; :meth:`summary` is what ``kwshw sim --wav``
    prints, :meth:`to_dict` its ``--json``.

    ``frontend_mismatches`` and ``score_mismatches`` count the hops (of the golden chain's
    ``hops``) whose feature frame or scores differ from the golden chain's or never came;
    ``detections`` are the detector's events within those hops, ``uart_detections`` the
    DETECTION packets decoded from the ``tx`` pin, ``golden_detections`` the golden chain's.
    """

    ok: bool
    source: str
    mic: str
    mic_clock_hz: float
    clk_hz: int
    lanes: int
    simulator: str
    audio_seconds: float
    hops: int
    frames_received: int
    frontend_mismatches: int
    first_frontend_mismatch: int | None
    score_mismatches: int
    first_score_mismatch: int | None
    detections: list[Heard]
    uart_detections: list[Heard]
    golden_detections: list[Heard]
    uart_errors: int
    overrun: bool
    simulated_cycles: int
    sim_seconds: float
    build_seconds: float
    stimulus_seconds: float
    log: str
    build_dir: str
    wave: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def detections_match(self) -> bool:
        """The detector's events and the UART's packets are the golden chain's."""
        return self.detections == self.golden_detections == self.uart_detections

    @property
    def audio_per_wall_second(self) -> float:
        """Simulated audio seconds per wall-clock second (the simulator run alone)."""
        return self.audio_seconds / self.sim_seconds if self.sim_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(detections_match=self.detections_match,
                 audio_per_wall_second=round(self.audio_per_wall_second, 4))
        return d

    def summary(self) -> str:
        """The human-readable report."""
        def first(k):
            return f" (first at hop {k})" if k is not None else ""

        lines = [
            f"design           standalone core, {self.mic.upper()} microphone at "
            f"{self.mic_clock_hz / 1e6:g} MHz, {self.clk_hz / 1e6:g} MHz clock, {self.lanes} "
            f"lanes, {self.simulator}",
            f"audio            {self.source}: {self.audio_seconds:.2f} s, {self.hops} hops",
            f"front end        {self.frontend_mismatches} mismatching frames of {self.hops}"
            + first(self.first_frontend_mismatch),
            f"scores           {self.score_mismatches} mismatching frames of {self.hops}"
            + first(self.first_score_mismatch),
            f"detections       board {len(self.detections)}, UART {len(self.uart_detections)}, "
            f"golden {len(self.golden_detections)}: "
            + ("equal, hop for hop" if self.detections_match else "DIFFERENT"),
        ]
        lines += _detection_table(self)
        if self.uart_errors:
            lines.append(f"UART errors      {self.uart_errors}")
        if self.overrun:
            lines.append("overrun          the microphone receiver dropped samples")
        lines.append(
            f"speed            {self.audio_seconds:.2f} s of audio in {self.sim_seconds:.1f} s "
            f"({self.audio_per_wall_second:.3f} audio s per wall s, "
            f"{self.simulated_cycles / max(self.sim_seconds, 1e-9) / 1e6:.2f} M cycles/s); "
            f"build {self.build_seconds:.1f} s, stimulus {self.stimulus_seconds:.1f} s")
        lines += [f"note             {n}" for n in self.notes]
        if self.wave:
            lines.append(f"waves            {self.wave}")
        lines.append(f"log              {self.log}")
        return "\n".join(lines)


def _detection_table(res: StandaloneResult) -> list[str]:
    sources = (res.detections, res.uart_detections, res.golden_detections)
    seen = {(h.frame, h.cls): h for src in sources for h in src}
    if not seen:
        return []
    out = ["    hop   time s  class         board  UART  golden"]
    for key in sorted(seen):
        h = seen[key]
        marks = ["x" if any((g.frame, g.cls) == key for g in src) else "-" for src in sources]
        out.append(f"  {h.frame:5d}  {h.time_s:7.2f}  {h.label:<12s}  "
                   f"{marks[0]:>5s}  {marks[1]:>4s}  {marks[2]:>6s}")
    return out


def _heard(model: Model, frame: int, cls: int, total: int) -> Heard:
    f = model.features
    return Heard(frame=int(frame), time_s=round((frame + 1) * f.hop_length / f.sample_rate, 4),
                 cls=int(cls), label=model.labels[cls], sum=int(total))


def _unwrap(frames: list[int], width: int = FRAME_WIDTH) -> list[int]:
    """Hop indices from the events' ``width``-bit frame counter (events come in order)."""
    out, base, last = [], 0, -1
    for f in frames:
        if f < last:
            base += 1 << width
        out.append(base + f)
        last = f
    return out


def _mismatching(got: np.ndarray, want: np.ndarray, width: int) -> list[int]:
    """Hops whose ``width`` values in ``got`` (flat, in order) differ from ``want``'s row or
    are missing."""
    n = len(want)
    have = np.asarray(got, np.int64)[:n * width]
    rows = have[:len(have) // width * width].reshape(-1, width)
    bad = [t for t in range(len(rows)) if not np.array_equal(rows[t], want[t])]
    return bad + list(range(len(rows), n))


def _uart_events(model: Model, line: bytes, n: int) -> tuple[list[Heard], int]:
    """The DETECTION packets on the line within the first ``n`` hops, and the count of
    undecodable stretches and other packets."""
    items = Decoder().feed(line)
    packets = [p for p in items if isinstance(p, Packet)]
    errors = len(items) - len(packets)
    events = []
    for p in packets:
        try:
            events.append(decode_detection(p))
        except ValueError:
            errors += 1
    # The board sends its FRAME_WIDTH-bit counter in the packet's 32-bit field.
    frames = _unwrap([e.frame for e in events])
    return [_heard(model, f, e.cls, e.sum) for f, e in zip(frames, events, strict=True)
            if f < n], errors


def _compare(model: Model, want: dict, rec: dict) -> dict:
    """Everything :class:`StandaloneResult` says about the recording ``rec``."""
    n, bands, n_out = len(want["frames"]), model.features.n_mels, len(model.labels)
    fe_bad = _mismatching(rec["feat"], want["frames"], bands)
    score_bad = _mismatching(rec["scores"], want["scores"], n_out)
    frames = _unwrap([e[1] for e in rec["events"]])
    board = [_heard(model, f, e[0], e[2]) for f, e in zip(frames, rec["events"], strict=True)
             if f < n]
    uart, uart_errors = _uart_events(model, bytes(b for b, _ in rec["uart"]), n)
    return dict(hops=n, frames_received=len(rec["feat"]) // bands,
                frontend_mismatches=len(fe_bad), first_frontend_mismatch=min(fe_bad, default=None),
                score_mismatches=len(score_bad), first_score_mismatch=min(score_bad, default=None),
                detections=board, uart_detections=uart,
                golden_detections=[_heard(model, d.frame, d.cls, d.sum) for d in want["events"]],
                uart_errors=uart_errors + rec["framing_errors"], overrun=bool(rec["overrun"]))


# --- Running it ---------------------------------------------------------------------------------

def _run_folder(sources: list[Path]) -> Path:
    h = hashlib.sha256()
    for s in sources:
        h.update(s.read_bytes())
    root = cache_root() / "runs" / f"standalone-{h.hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _simulate(sources: list[Path], bits: np.ndarray, tb: dict, simulator: str,
              waves: bool) -> tuple[dict, toolchain.SimRun, float]:
    """Run the testbench; returns its recording, the run and the seconds of building."""
    root = _run_folder(sources)
    with _locked(root / ".lock"):
        bits_path, cfg_path, out = root / "mic-bits.bin", root / "tb.json", root / "result.json"
        _write_bits(bits_path, bits)
        cfg_path.write_text(json.dumps({**tb, "bits": str(bits_path), "out": str(out)}))
        out.unlink(missing_ok=True)
        t0 = time.perf_counter()
        run = toolchain.simulate(sources, _TOP, "sim.tb_standalone", simulator=simulator,
                                 build_dir=root, waves=waves, build_args=_BUILD_ARGS[simulator],
                                 env={"KWSHW_TB_CONFIG": str(cfg_path)})
        seconds = time.perf_counter() - t0
        rec = json.loads(out.read_text())
    return rec, run, seconds - rec["wall_seconds"]


def _testbench_config(core: StandaloneCore, n_hops: int) -> dict:
    hop_cycles = int(core.model.features.hop_length * core.clk_hz / PCM_RATE)
    packet_cycles = (8 + 10) * 10 * core.divisor      # one DETECTION packet on the line
    return {"uart_divisor": core.divisor, "want_scores": n_hops * len(core.model.labels),
            "tail_cycles": 4 * hop_cycles + 10_000,
            "drain_cycles": (len(core.rule.keywords) + 1) * packet_cycles + 10_000}


def run_standalone_sim(model: Model, audio: np.ndarray | str | Path, *, mic: str = "pdm",
                       lanes: int = 8, clk_hz: int | None = None,
                       threshold: float | None = None, rule: IntDetectRule | None = None,
                       baud: int = 1_000_000, simulator: str = "verilator",
                       waves: bool = False, mic_cfg: PDMConfig | I2SConfig | None = None,
                       source: str | None = None) -> StandaloneResult:
    """Simulate the standalone keyword spotter of ``model`` on an audio recording and compare
    it with the golden chain, hop by hop.

    Parameters
    ----------
    model : Model
        The network (its front end configuration, normalization and labels set the design).
    audio : ndarray or path
        16 kHz samples in ``[-1, 1]``, or an audio file (:func:`kwshw.audio.load_audio`:
        another sample rate is resampled).
    mic : {"pdm", "i2s"}
        The microphone on the pins.
    lanes : int
        MAC lanes.
    clk_hz : int, optional
        Design clock; by default the slowest of :data:`CLOCKS` that keeps up
        (:func:`standalone_clock`).
    threshold : float, optional
        Detection threshold (default: the model's own); ``rule`` replaces the whole rule.
    baud : int
        UART baud rate of the DETECTION packets.
    simulator : {"verilator", "icarus"}
        Icarus works too, about a hundred times slower.
    waves : bool
        Record a waveform of the whole run (large: use short audio).
    mic_cfg : PDMConfig or I2SConfig, optional
        The receiver's configuration (tests pass a small one); :func:`mic_config` of the clock
        by default.
    source : str, optional
        What ``audio`` is, for the report (default: the file name).

    Returns
    -------
    StandaloneResult

    Raises
    ------
    BuildError
        When the design cannot be built at that clock (no exact 16 kHz, not real time).
    kwshw.audio.AudioError, ValueError
        Unreadable audio, or shorter than one hop.
    """
    with warnings.catch_warnings():
        # Cores built only for their facts (the clock search; a design found in the cache)
        # are never elaborated: Amaranth would warn when they are collected.
        warnings.simplefilter("ignore", UnusedElaboratable)
        res = _run(model, audio, mic=mic, lanes=lanes, clk_hz=clk_hz, threshold=threshold,
                   rule=rule, baud=baud, simulator=simulator, waves=waves, mic_cfg=mic_cfg,
                   source=source)
        gc.collect()
    return res


def _run(model: Model, audio: np.ndarray | str | Path, *, mic: str, lanes: int,
         clk_hz: int | None, threshold: float | None, rule: IntDetectRule | None, baud: int,
         simulator: str, waves: bool, mic_cfg: PDMConfig | I2SConfig | None,
         source: str | None) -> StandaloneResult:
    t0 = time.perf_counter()
    if mic not in MICS:
        raise ValueError(f"mic must be one of {MICS}, not {mic!r}")
    rule = rule or IntDetectRule.from_model(model, threshold)
    clk_hz = clk_hz or standalone_clock(model, mic, lanes=lanes, rule=rule, baud=baud)
    cfg = mic_cfg or mic_config(mic, clk_hz)
    # Before the audio: a design that cannot be built is refused before any work.
    core = make_core(model, mic, clk_hz, lanes=lanes, rule=rule, baud=baud, mic_cfg=cfg)
    if isinstance(audio, (str, Path)):
        source = source or Path(audio).name
        audio = load_audio(audio, model.features.sample_rate)
    bits = mic_bits(audio, mic, cfg)
    want = golden_chain(model, rule, mic, cfg, bits)
    t1 = time.perf_counter()
    sources = [_design(core, HOLD_MS), _TB_VERILOG]
    convert_seconds = time.perf_counter() - t1
    rec, run, build_seconds = _simulate(sources, bits, _testbench_config(core, len(want["frames"])),
                                        simulator, waves)
    bit_hz = cfg.pdm_hz if mic == "pdm" else cfg.sck_hz
    return _result(_compare(model, want, rec), rec, run, source=source or "audio", mic=mic,
                   bit_hz=bit_hz, clk_hz=int(clk_hz), lanes=lanes, simulator=simulator,
                   build_seconds=build_seconds + convert_seconds, stimulus_seconds=t1 - t0)


def _result(cmp: dict, rec: dict, run: toolchain.SimRun, *, bit_hz: float, build_seconds: float,
            stimulus_seconds: float, **design) -> StandaloneResult:
    res = StandaloneResult(
        ok=False, mic_clock_hz=bit_hz, **design, **cmp,
        audio_seconds=round(rec["bits_played"] / bit_hz, 4), simulated_cycles=rec["end_cycle"],
        sim_seconds=round(rec["wall_seconds"], 3), build_seconds=round(build_seconds, 3),
        stimulus_seconds=round(stimulus_seconds, 3), log=str(run.log),
        build_dir=str(run.build_dir), wave=str(run.wave) if run.wave else None)
    if res.frames_received < res.hops:
        res.notes.append(f"only {res.frames_received} of {res.hops} frames came out")
    res.ok = (res.frontend_mismatches == 0 and res.score_mismatches == 0
              and res.detections_match and not res.uart_errors and not res.overrun)
    return res
