# amaranth: UnusedElaboratable=no
"""The accelerator's port contract (kwshw.hw.ports.AcceleratorSignature) is the one the
accelerator has, the host link has flipped, and the board top insists on."""

import pytest
from amaranth.hdl import signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from boards.refmodel import random_model
from boards.top import KWSCore
from kwshw.arith import ACT_WIDTH
from kwshw.hw.accelerator import Accelerator
from kwshw.hw.ports import AcceleratorSignature
from kwshw.link.gateware import HostLink, UARTHostLink
from kwshw.link.uart import check_divisor

LINK_ARGS = dict(n_bands=40, n_out=12, model_hash=bytes(8), bits=4, lanes=4, version=1)


@pytest.fixture(scope="module")
def model():
    return random_model(4, [40, 16, 12], seed=1)


def test_members_names_and_widths():
    signature = AcceleratorSignature()
    assert signature.width == ACT_WIDTH == 16
    assert dict(signature.members) == {
        "feat": In(stream.Signature(signed(16))),
        "score": Out(stream.Signature(signed(16))),
        "clear": In(1),
    }
    assert signature == AcceleratorSignature(16) != AcceleratorSignature(8)
    assert repr(signature.flip()) == "AcceleratorSignature(16).flip()"


@pytest.mark.parametrize("memory", ["bram", "spram"])
def test_accelerator_and_link_provide_it(model, memory):
    accel = Accelerator(model, 4, memory=memory)
    assert AcceleratorSignature().is_provided_by(accel)
    assert not AcceleratorSignature().flip().is_provided_by(accel)
    for link in (HostLink(timeout=10, **LINK_ARGS), UARTHostLink(divisor=8, **LINK_ARGS)):
        assert AcceleratorSignature().flip().is_provided_by(link)
        assert not AcceleratorSignature().is_provided_by(link)


def test_board_core_refuses_an_accelerator_without_the_ports(model):
    class Wrong(wiring.Component):
        feat: In(stream.Signature(signed(8)))
        score: Out(stream.Signature(signed(16)))
        clear: In(1)

        def elaborate(self, platform):
            raise NotImplementedError

    with pytest.raises(TypeError, match="AcceleratorSignature"):
        KWSCore(model, lanes=4, clk_hz=12e6, baud=115200,
                accelerator=lambda model, lanes, memory: Wrong())


def test_one_divisor_rule():
    with pytest.raises(ValueError) as rule:
        check_divisor(3)
    with pytest.raises(ValueError) as link:
        UARTHostLink(divisor=3, **LINK_ARGS)
    assert str(link.value) == str(rule.value)
