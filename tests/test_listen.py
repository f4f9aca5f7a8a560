"""``kwshw run --listen``: decoding what a standalone board sends (kwshw.host.listen)."""

from __future__ import annotations

import pytest

from boards.refmodel import random_cnn
from kwshw.detect_int import IntDetectRule
from kwshw.host.listen import Listener, listen
from kwshw.link.protocol import DetectionEvent, encode_detection, encode_scores


@pytest.fixture(scope="module")
def model():
    return random_cnn(4)


def _clock(step: float):
    t = [0.0]

    def now() -> float:
        t[0] += step
        return t[0]
    return now


def test_detections_are_decoded_with_label_time_and_posterior(model):
    rule = IntDetectRule.from_model(model)
    kw = rule.keywords[0]
    full = rule.k << rule.post_frac
    stream = encode_detection(0, DetectionEvent(cls=kw, frame=99, sum=full // 2))
    stream += encode_detection(1, DetectionEvent(cls=kw, frame=250, sum=full))
    heard = []
    chunks = iter([stream[:5], stream[5:17], stream[17:], None])
    res = listen(lambda: next(chunks), model, on_heard=heard.append)
    assert heard == res.heard and len(heard) == 2
    hop = model.features.hop_length / model.features.sample_rate
    assert heard[0].label == model.labels[kw] and heard[0].frame == 99
    assert heard[0].time_s == pytest.approx(100 * hop)
    assert heard[0].posterior == pytest.approx(0.5) and heard[1].posterior == pytest.approx(1.0)
    assert res.errors == {} and "2 detection(s)" in res.summary()


def test_broken_frames_are_counted_never_heard(model):
    good = encode_detection(3, DetectionEvent(cls=0, frame=7, sum=5))
    corrupt = bytearray(encode_detection(4, DetectionEvent(cls=0, frame=8, sum=5)))
    corrupt[-1] ^= 0xFF                           # CRC no longer checks
    foreign = encode_detection(5, DetectionEvent(cls=200, frame=9, sum=5))  # no such class
    noise = b"\x13\x37garbage"
    lst = Listener(model)
    heard = lst.feed(noise + bytes(corrupt) + good + foreign + encode_scores(0, [1, 2]))
    assert [h.frame for h in heard] == [7]
    assert lst.result.errors.get("bad CRC") and lst.result.errors.get("garbage")
    assert lst.result.errors.get("unknown class") == 1
    assert lst.result.other_packets == 1                          # the SCORES packet


def test_listen_stops_after_seconds(model):
    res = listen(lambda: b"", model, seconds=1.0, clock=_clock(0.3))
    assert res.heard == [] and res.errors == {}


def test_cli_refuses_listen_with_wav(tmp_path, model):
    from kwshw import modelfile
    from kwshw.app.cli import main

    path = tmp_path / "m.kwm"
    modelfile.save(model, path)
    assert main(["run", "--port", "/dev/null", "--model", str(path), "--listen",
                 "--wav", "x.wav"]) != 0
