"""The scale multipliers: MAC results to the next layer's activations, exactly
:func:`kwshw.arith.scale_column`.

One pipelined datapath serves every column of every layer in turn (a pass of the MAC array
takes ``n_in`` cycles and hands over only ``P`` columns, so there is time). Per column::

    V  = ST * A + ((LO * P) << b)
    VR = rshift_round(V, sv)
    T1 = XLO * WSR          T2 = RM * VR
    Z  = (T1 << align1) + (T2 << align2)
    Y  = clamp(rshift_round(Z, out) + B)      # ReLU or saturation

The shifts are constants of each layer, selected by the layer index (the shifted values and
rounding bits are selected, then added once); every register is as wide as the widest layer
needs (:class:`kwshw.arith.LayerWidths`), which makes it exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_MAX, ACT_MIN, ACT_WIDTH
from ..quantize import LayerPlan
from .common import check_plans, clamp, delay, max_width, select_rshift_round
from .memories import ConstantROM, const_bases

__all__ = ["Scaler"]


class Scaler(wiring.Component):
    """Per-column scale multipliers, time-multiplexed over columns and layers, pipelined.

    Parameters
    ----------
    plans : sequence of LayerPlan
        The network; gives the constant ROM, the shifts and the widths.

    Attributes
    ----------
    inp : stream, in
        One column per beat: ``acc`` (``A_j``), ``column`` (``j``) and ``last`` (``j`` is the
        layer's last column). Never stalls.
    layer : Signal, in
        Index of the layer the columns belong to (held while its columns pass).
    psum, step, xlo : Signal, in
        ``P``, ``RM`` and ``XLO`` of that layer's input vector (held likewise).
    out : stream, out
        ``value`` (``y_j``, signed ``ACT_WIDTH``), ``column``, ``last``, :attr:`LATENCY` cycles
        after the column came in.
    """

    #: Cycles from a column's ``inp`` beat to its ``out`` beat.
    LATENCY = 6

    def __init__(self, plans: Sequence[LayerPlan]) -> None:
        self._plans = list(plans)
        self._bits = check_plans(self._plans)
        self.rom = ConstantROM(self._plans)
        n_cols = max(p.n_out for p in self._plans)
        in_layout = data.StructLayout({
            "acc": unsigned(max_width(plans, "acc")),
            "column": range(n_cols),
            "last": 1,
        })
        out_layout = data.StructLayout({
            "value": signed(ACT_WIDTH),
            "column": range(n_cols),
            "last": 1,
        })
        super().__init__({
            "inp": In(stream.Signature(in_layout, always_ready=True)),
            "layer": In(range(len(self._plans))),
            "psum": In(unsigned(max_width(plans, "psum"))),
            "step": In(unsigned(max_width(plans, "step"))),
            "xlo": In(signed(ACT_WIDTH)),
            "out": Out(stream.Signature(out_layout, always_ready=True)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        plans, bits = self._plans, self._bits
        m.submodules.rom = rom = self.rom

        # Column and "last" travel beside the data through the stages.
        n = self.LATENCY
        valid = delay(m, self.inp.valid, n, name="valid")
        column = delay(m, self.inp.payload.column, n, name="column")
        last = delay(m, self.inp.payload.last, n, name="last")

        # Stage 0: constant ROM read for this layer's column.
        bases = const_bases(plans)
        with m.Switch(self.layer):
            for k, base in enumerate(bases):
                with m.Case(k):
                    m.d.comb += rom.addr.eq(base + self.inp.payload.column)
        acc0 = delay(m, self.inp.payload.acc, 1, name="acc")
        # B is added in stage 5: four registers from the ROM's output.
        bias4 = delay(m, rom.data.bias, 4, name="bias")

        # Stage 1: V = ST * A + ((LO * P) << b).
        v = Signal(signed(max_width(plans, "v")))
        m.d.sync += v.eq(rom.data.st * acc0 + ((rom.data.lo * self.psum) << bits))
        wsr1 = delay(m, rom.data.wsr, 1, name="wsr")

        # Stage 2: VR = rshift_round(V, sv); T1 = XLO * WSR.
        vr = Signal(signed(max_width(plans, "vr")))
        t1 = Signal(signed(max_width(plans, "t1")))
        m.d.sync += t1.eq(self.xlo * wsr1)
        v_floor, v_half = select_rshift_round(m, self.layer, v, [p.shifts.sv for p in plans])
        m.d.sync += vr.eq(v_floor + v_half)

        # Stage 3: T2 = RM * VR.
        t2 = Signal(signed(max_width(plans, "t2")))
        m.d.sync += t2.eq(self.step * vr)
        t1_3 = delay(m, t1, 1, name="t1_dly")

        # Stage 4: Z = (T1 << align1) + (T2 << align2).
        z = Signal(signed(max_width(plans, "z")))
        t1_al, _ = select_rshift_round(m, self.layer, t1_3, [-p.shifts.align1 for p in plans])
        t2_al, _ = select_rshift_round(m, self.layer, t2, [-p.shifts.align2 for p in plans])
        m.d.sync += z.eq(t1_al + t2_al)

        # Stage 5: Y = clamp(rshift_round(Z, out) + B), ReLU (low bound 0) or saturation.
        z_floor, z_half = select_rshift_round(m, self.layer, z, [p.shifts.out for p in plans])
        low = Signal(signed(ACT_WIDTH))
        with m.Switch(self.layer):
            for k, plan in enumerate(plans):
                with m.Case(k):
                    m.d.comb += low.eq(0 if plan.layer.relu else ACT_MIN)
        y = z_floor + z_half + bias4
        m.d.sync += self.out.payload.value.eq(clamp(y, low, ACT_MAX))

        m.d.comb += [
            self.out.valid.eq(valid),
            self.out.payload.column.eq(column),
            self.out.payload.last.eq(last),
        ]
        return m
