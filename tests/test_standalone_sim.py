"""The whole standalone keyword spotter in Verilator (sim.standalone, ``kwshw sim --wav``).

A continuous recording made of real keyword clips goes through the microphone model (PDM
bits, or I2S slots), the board core's pins, its front end, network and detector, and out of
its UART; the frames into the accelerator, its scores, the detector's events and the
DETECTION packets must equal the golden chain's, hop for hop. The model has random weights
(the test must not depend on training) and a low threshold, so that it detects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from boards.refmodel import random_model
from kwshw import modelfile
from kwshw.audio import load_audio
from kwshw.detect_int import IntDetectRule
from kwshw.link.protocol import DetectionEvent, encode_detection
from kwshw.microphone import PDMConfig
from kwshw.streams import build_stream
from sim import toolchain
from sim.standalone import _compare, golden_chain, mic_bits, run_standalone_sim

needs_verilator = pytest.mark.skipif(not toolchain.have_simulator("verilator"),
                                     reason="Verilator not installed")
LANES = 8
#: Low enough that a random model fires several times in a few seconds.
THRESHOLD = 0.3


def _model():
    # The real 16 kHz front end (40 bands, 5 frames of context) and the 12 Speech Commands
    # classes; 8 MHz keeps it real time.
    return random_model(4, (200, 32, 12), seed=1)


def _data() -> Path:
    root = os.environ.get("KWSHW_DATA")
    if not root:
        pytest.skip("KWSHW_DATA is not set to the real-speech folder (see its README.md)")
    return Path(root) / "speech_commands_v0.02_test"


def _recording(seconds_of_negatives: float = 2.0) -> np.ndarray:
    """Three keywords spoken by different speakers between pieces of other words, as one
    continuous recording (kwshw.streams.build_stream)."""
    root = _data()
    kws = [(f.name, load_audio(f), label) for label, word in enumerate(("yes", "no", "up"))
           for f in sorted((root / word).glob("*.wav"))[:1]]
    piece = int(seconds_of_negatives / 4 * 16_000)
    negs = [(f.name, load_audio(f)[:piece])
            for f in sorted((root / "_unknown_").glob("*.wav*"))[:4]]
    return build_stream(negs, kws, seed=3, min_gap_s=0.4).audio


def _check(res, n_samples: int) -> None:
    print(res.summary())      # shown with pytest -s
    # The first frame needs a whole window (400 samples), then one per hop of 160.
    assert res.hops == (n_samples - 400) // 160 + 1 and res.frames_received >= res.hops
    assert res.frontend_mismatches == 0, res.summary()
    assert res.score_mismatches == 0, res.summary()
    assert len(res.golden_detections) >= 2, "the recording must make detections"
    assert res.detections == res.golden_detections, res.summary()
    assert res.uart_detections == res.golden_detections, res.summary()
    assert not res.overrun and not res.uart_errors and res.ok


@pytest.mark.data
@needs_verilator
def test_recording_through_pdm_board_core_equals_golden_chain():
    audio = _recording()
    assert 4.5 < len(audio) / 16_000 < 6
    model = _model()
    res = run_standalone_sim(model, audio, mic="pdm", lanes=LANES, threshold=THRESHOLD)
    assert res.clk_hz == 8_000_000 and res.mic_clock_hz == 1_600_000
    _check(res, len(audio))
    # Times: the hop index and the end of that hop.
    assert all(h.time_s == round((h.frame + 1) * 0.01, 4) for h in res.detections)
    assert res.audio_per_wall_second > 0.01


@pytest.mark.data
@needs_verilator
@pytest.mark.slow  # 42 s: the PDM recording above runs in CI; tests/test_cocotb_mic the I2S pins
def test_recording_through_i2s_board_core_equals_golden_chain():
    audio = _recording()[:16_000]
    res = run_standalone_sim(_model(), audio, mic="i2s", lanes=LANES, threshold=THRESHOLD)
    assert res.clk_hz == 8_192_000 and res.mic_clock_hz == 1_024_000
    _check(res, len(audio))


# --- The checker finds what differs (no simulator) ----------------------------------------------

def _tiny():
    from kwshw.features import FeatureConfig

    cfg = FeatureConfig(n_fft=64, win_length=48, hop_length=24, n_mels=8, smooth=3, context=3,
                        stride=2)
    model = random_model(4, (24, 10, 5), features=cfg, seed=3)
    return model, IntDetectRule.from_model(model, 0.25, k=2, refractory=1)


def _perfect_recording(want: dict) -> dict:
    """What a board that computes exactly the golden chain records."""
    line = b"".join(encode_detection(k, DetectionEvent(d.cls, d.frame, d.sum))
                    for k, d in enumerate(want["events"]))
    return {"feat": want["frames"].reshape(-1).tolist(),
            "scores": want["scores"].reshape(-1).tolist(),
            "events": [[d.cls, d.frame, d.sum, 0] for d in want["events"]],
            "uart": [[b, 0] for b in line], "framing_errors": 0, "overrun": 0}


def test_checker_counts_mismatches_per_hop():
    model, rule = _tiny()
    t = np.arange(24 * 14) / 16_000
    audio = 0.3 * np.sin(2 * np.pi * 700 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 9 * t))
    mic = PDMConfig(4_096_000, 4, 16, 4, cic_order=4)
    want = golden_chain(model, rule, "pdm", mic, mic_bits(audio, "pdm", mic))
    assert len(want["events"]) >= 2
    good = _compare(model, want, _perfect_recording(want))
    assert (good["frontend_mismatches"], good["score_mismatches"], good["uart_errors"]) == (
        0, 0, 0)
    assert good["detections"] == good["uart_detections"] == good["golden_detections"]

    rec = _perfect_recording(want)
    rec["feat"][3 * 8 + 5] += 1                  # hop 3's sixth band
    rec["scores"] = rec["scores"][:-1]           # the last hop's scores incomplete
    rec["events"] = rec["events"][1:]            # the first detection missing
    rec["uart"][9][0] ^= 0x10                    # a payload bit of the first packet
    bad = _compare(model, want, rec)
    assert (bad["frontend_mismatches"], bad["first_frontend_mismatch"]) == (1, 3)
    assert (bad["score_mismatches"], bad["first_score_mismatch"]) == (1, len(want["frames"]) - 1)
    assert bad["detections"] == good["detections"][1:]
    assert bad["uart_errors"] >= 1 and bad["uart_detections"] == good["detections"][1:]


# --- The command ------------------------------------------------------------------------------

def test_cli_refuses_bad_combinations(tmp_path, capsys):
    from kwshw.app import cli

    path = tmp_path / "m.kwm"
    modelfile.save(_model(), path)
    assert cli.main(["sim", "--model", str(path), "--wav", "x.wav", "--gate-level",
                     "ecp5"]) == 2
    assert "--gate-level" in capsys.readouterr().err
    assert cli.main(["sim", "--model", str(path), "--mic", "i2s"]) == 2
    assert "--mic only apply to the standalone simulation (--wav)" in capsys.readouterr().err
    assert cli.main(["sim", "--model", str(path), "--wav", str(tmp_path / "none.wav")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["sim", "--model", str(path), "--wav", str(tmp_path / "none.wav"),
                     "--clock", "25"]) == 2
    assert "25 MHz" in capsys.readouterr().err


@needs_verilator
def test_cli_sim_wav_prints_mismatches_and_detections(tmp_path, capsys):
    """``kwshw sim --wav`` on a 44.1 kHz file (resampled): the design of the PDM test above
    (same model, lanes and rule, so its Verilator build is shared)."""
    from kwshw.app import cli

    path = tmp_path / "m.kwm"
    modelfile.save(_model(), path)
    rng = np.random.default_rng(5)
    t = np.arange(int(0.6 * 44_100)) / 44_100
    audio = 0.3 * np.sin(2 * np.pi * 500 * t * (1 + t)) + 0.05 * rng.normal(size=len(t))
    wav = tmp_path / "clip.wav"
    sf.write(wav, audio.astype(np.float32), 44_100, subtype="PCM_16")
    code = cli.main(["sim", "--model", str(path), "--wav", str(wav), "--mic", "pdm",
                     "--lanes", str(LANES), "--threshold", str(THRESHOLD)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "clip.wav: 0.60 s, 58 hops" in out
    assert "front end        0 mismatching frames of 58" in out
    assert "scores           0 mismatching frames of 58" in out
    assert "equal, hop for hop" in out and "audio s per wall s" in out
