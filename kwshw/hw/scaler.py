"""The scale multipliers: MAC results to the next layer's activations, exactly
:func:`kwshw.arith.scale_column`.

One pipelined datapath serves every column of every layer in turn (a pass of the MAC array
takes ``n_in`` cycles and hands over only ``P`` columns, so there is time). Per column::

    V  = ST * A + ((LO * P) << b)
    VR = rshift_round(V, sv)
    T1 = XLO * WSR          T2 = RM * VR
    Z  = (T1 << align1) + (T2 << align2)
    Y  = clamp(rshift_round(Z, out) + B)      # ReLU or saturation

Two multipliers compute the four products, each two of them in consecutive cycles: ``M1``
does ``ST * A`` then ``LO * P``, ``M2`` does ``XLO * WSR`` then ``RM * VR``. A column may
therefore follow the previous one after :data:`~kwshw.hw.sequencer.COLUMN_INTERVAL` = 2
cycles, not 1 (the MAC array's hold bank shifts at that pace), which costs a few cycles per
layer and saves half the multipliers: on an iCE40UP5K the four products of 17-19 bit operands
need ten of its eight 16 x 16 DSPs, and the ones left over were built as soft multipliers (the
scaler on the iCEBreaker reference DNN: 1,418 LUTs in ``bench/results/area-before.json``,
311 with six DSPs in ``area.json`` at ``881edd1``).

The shifts are constants of each layer, selected by codes registered from the layer index
(the shifted values and rounding bits are selected, then added once); every register is as
wide as the widest layer needs (:class:`kwshw.arith.LayerWidths`), which makes it exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..arith import ACT_WIDTH
from ..quantize import LayerPlan
from .common import (
    check_plans,
    delay,
    dsp_product,
    max_width,
    saturate,
    select_rshift_round,
)
from .memories import ConstantROM, const_bases, const_roms
from .sequencer import COLUMN_INTERVAL

__all__ = ["Scaler", "z_offsets"]


class Scaler(wiring.Component):
    """Per-column scale multipliers, time-multiplexed over columns and layers, pipelined.

    Parameters
    ----------
    plans : sequence of LayerPlan
        The network; gives the constant ROM, the shifts and the widths.
    dsp_strips : bool
        On iCE40, build each product as one DSP and its operands' top strips in logic
        (:func:`~kwshw.hw.common.dsp_product`): 3 DSPs fewer on the reference CNN for some
        150 LUTs, for designs whose other multipliers need the DSPs.

    Attributes
    ----------
    inp : stream, in
        One column per beat, at least :data:`~kwshw.hw.sequencer.COLUMN_INTERVAL` cycles
        after the previous one (as the MAC array's hold bank sends them): ``acc`` (``A_j``),
        ``column`` (``j``) and ``last`` (``j`` is the layer's last column). ``acc`` must
        still hold in the cycle after the beat (the hold bank keeps it): it is read then.
        A layer's columns come in order, 0 first. Never stalls.
    layer : Signal, in
        Index of the layer the columns belong to: set at least a cycle before its first
        column (the per-layer constants are registered from it) and held while its columns
        pass.
    psum, step, xlo : Signal, in
        ``P``, ``RM`` and ``XLO`` of that layer's input vector (held likewise).
    out : stream, out
        ``value`` (``y_j``, signed ``ACT_WIDTH``), ``column``, ``last``, :attr:`LATENCY` cycles
        after the column came in.
    """

    #: Cycles from a column's ``inp`` beat to its ``out`` beat.
    LATENCY = 11

    def __init__(self, plans: Sequence[LayerPlan], *, dsp_strips: bool = False) -> None:
        self._plans, self._dsp_strips = list(plans), dsp_strips
        self._bits = check_plans(self._plans)
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
        family = getattr(platform, "family", None)
        roms = const_roms(plans, family)
        strips = family if self._dsp_strips else None
        m.submodules.rom = rom = ConstantROM(plans, roms[0])

        # "last" travels beside the data; valid[k] marks a column k cycles in. The column
        # index only as far as the second ROM read: the output's is counted (a layer's
        # columns come in order), a register instead of a delay line as long as the pipeline.
        n = self.LATENCY
        valid = [self.inp.valid]
        for k in range(1, n + 1):
            valid.append(delay(m, valid[-1], 1, name=f"valid{k}"))
        # The last cycle, the clamp, is a plain register stage after the paced ones.
        column, last = Signal.like(self.inp.payload.column), Signal()
        m.d.sync += last.eq(_paced_delay(m, self.inp.payload.last, valid, n - 1, "last"))
        with m.If(valid[n]):
            m.d.sync += column.eq(Mux(last, 0, column + 1))

        # Cycle 0: the constant ROM read for this column; its output then holds until the
        # next column's read (at least COLUMN_INTERVAL cycles later).
        bases = const_bases(plans)
        base = Signal(range(max(bases) + 1))
        with m.Switch(self.layer):
            for k, b in enumerate(bases):
                with m.Case(k):
                    m.d.sync += base.eq(b)
        m.d.comb += [rom.addr.eq(base + self.inp.payload.column), rom.en.eq(self.inp.valid)]
        if len(roms) == 2:
            # WSR and B from a second ROM read at cycle 4: WSR is taken at cycle 5 and B waits
            # in two paced registers for cycle 9's addition, not in a delay line from cycle 2
            # (the paced WSR and B registers of the one-ROM way: 2 x 18 + 4 x 13 flip-flops on
            # the CNN reference, against 2 x 13).
            m.submodules.rom_late = rom_late = ConstantROM(plans, roms[1])
            column_4 = _paced_delay(m, self.inp.payload.column, valid, 4, "column")
            m.d.comb += [rom_late.addr.eq(base + column_4), rom_late.en.eq(valid[4])]
            wsr = rom_late.data.wsr
            bias = _paced_delay(m, rom_late.data.bias, valid[5:], 4, "bias")
        else:
            # Taken at valid[2], when the ROM's output is this column's.
            wsr = _paced_delay(m, rom.data.wsr, valid[2:], 4, "wsr")
            bias = _paced_delay(m, rom.data.bias, valid[2:], 8, "bias")

        # Cycles 1, 2: M1's operands ST, A then LO, P; cycles 2, 3: its products; cycle 4: V;
        # cycle 5: VR. A is read at cycle 1, where the MAC array's hold bank still holds it
        # (a register of its own here was 16 logic cells on the iCEBreaker CNN).
        p1, p2 = self._shared_multiply(m, "m1", valid[1], (rom.data.st, self.inp.payload.acc),
                                       (rom.data.lo, self.psum), strips=strips)
        v = Signal(signed(max_width(plans, "v")))
        m.d.sync += v.eq(p1 + (p2 << bits))
        vr = Signal(signed(max_width(plans, "vr")))
        v_floor, v_half = select_rshift_round(m, self.layer, v, [p.shifts.sv for p in plans])
        m.d.sync += vr.eq(v_floor + v_half)

        # Cycles 5, 6: M2's operands XLO, WSR then RM, VR; cycles 6, 7: T1 = XLO * WSR and
        # T2 = RM * VR; cycle 8: Z.
        # Z is computed k_l bits further left and shifted k_l bits more (`z_offsets`).
        # T1 is aligned before it waits for T2 (`_shared_multiply`'s ``first_shifts``).
        ks = z_offsets(plans)
        t1_al, t2 = self._shared_multiply(
            m, "m2", valid[5], (self.xlo, wsr), (self.step, vr),
            first_shifts=[p.shifts.align1 + k for p, k in zip(plans, ks, strict=True)],
            strips=strips)
        z = Signal(signed(max(p.widths.z + max(k, 0) for p, k in zip(plans, ks, strict=True))))
        t2_al, _ = select_rshift_round(m, self.layer, t2, [-(p.shifts.align2 + k)
                                                           for p, k in zip(plans, ks, strict=True)])
        m.d.sync += z.eq(t1_al + t2_al)

        # Cycle 9: rshift_round(Z, out) + B; cycle 10: Y = its clamp, ReLU (low bound 0) or
        # saturation. In one cycle, the shift's selection, the adder and the clamp's
        # comparisons were the ECP5's longest path.
        z_floor, z_half = select_rshift_round(
            m, self.layer, z, [p.shifts.out + k for p, k in zip(plans, ks, strict=True)])
        y = Signal(signed(max_width(plans, "y")))
        m.d.sync += y.eq(z_floor + z_half + bias)
        relu = Signal()
        with m.Switch(self.layer):
            for k, plan in enumerate(plans):
                with m.Case(k):
                    m.d.sync += relu.eq(plan.layer.relu)
        m.d.sync += self.out.payload.value.eq(saturate(y, ACT_WIDTH, relu))

        m.d.comb += [
            self.out.valid.eq(valid[n]),
            self.out.payload.column.eq(column),
            self.out.payload.last.eq(last),
        ]
        return m

    def _shared_multiply(self, m: Module, name: str, first: Value,
                         a: tuple[Value, Value], b: tuple[Value, Value], *,
                         first_shifts: Sequence[int] | None = None,
                         strips: str | None = None) -> tuple[Value, Signal]:
        """One multiplier for two products of a column: operands ``a`` taken while ``first``,
        ``b`` in the cycle after (columns are at least two cycles apart). Returns both
        products two cycles after ``b`` was taken: the second from the multiplier's register,
        the first one register further on, shifted left by ``first_shifts[layer]`` when
        given.

        The operands are registered before the multiplier, so no block RAM output (the
        constant ROM's) and no multiplexer share a path with it; a DSP block takes these
        registers in. The product register is loaded every cycle, so that on iCE40 it shares
        the logic cells of the adder that ends a multiplier wider than one DSP; two
        registers loaded from the adder would each take cells of their own. With ``strips``
        (the platform's family) the product is :func:`~kwshw.hw.common.dsp_product`'s: on
        iCE40 one DSP and the operands' top strips in logic, not a DSP per strip.
        """
        # Exactly as wide as the operands need: one bit more made the 8-bit ST * A 19 x 25 bits,
        # on ECP5 two MULT18X18D plus the 19th bit's partial products in logic, all added in
        # the cycle of the product register (the 8-bit ULX3S build's longest path).
        x = Signal(signed(max(_signed_width(a[0]), _signed_width(b[0]))), name=f"{name}_x")
        y = Signal(signed(max(_signed_width(a[1]), _signed_width(b[1]))), name=f"{name}_y")
        m.d.sync += [x.eq(Mux(first, a[0], b[0])), y.eq(Mux(first, a[1], b[1]))]
        # A signal, so that the RTLIL holds one multiplier cell, not one per use.
        product = Signal(signed(len(x) + len(y)), name=name)
        m.d.sync += product.eq(dsp_product(x, y, strips))
        first_product, widen = product[:len(a[0]) + len(a[1]) + 1].as_signed(), 0
        if first_shifts is not None:
            # The shift's multiplexer sits in front of the held register, which then shares
            # its logic cells; held as is, the register was a flip-flop per cell on iCE40.
            first_product, _ = select_rshift_round(m, self.layer, first_product,
                                                   [-s for s in first_shifts])
            widen = max(first_shifts)
        held = Signal(signed(len(a[0]) + len(a[1]) + 1 + widen), name=f"{name}_a")
        m.d.sync += held.eq(first_product)
        return held, product


#: At most this many offset vectors are tried one by one (:func:`z_offsets`); beyond, only
#: no offset and each shift made equal over the layers.
_MAX_OFFSET_SEARCH = 50_000


def z_offsets(plans: Sequence[LayerPlan]) -> list[int]:
    """Per layer ``l``, the ``k_l`` by which the scaler computes ``Z`` further left and then
    shifts it further right: ``(T1 << align1 + k) + (T2 << align2 + k)``, then
    ``rshift_round(., out + k)``, which equals ``rshift_round(Z, out)`` exactly for any
    ``k >= 0`` (``Z << k`` has ``k`` zero low bits); ``Z``'s register is ``max(k)`` bits
    wider.

    Each of the three shifts is selected per layer among its distinct values, a multiplexer
    of as many inputs over each result bit; the offsets trade one shift's choices against
    the others'. Every vector of offsets from 0 to the largest spread of a shift over the
    layers is tried (when there are at most ``_MAX_OFFSET_SEARCH``; otherwise none, and
    each of the three shifts made equal over the layers, ``k_l = max(shift) - shift_l``):
    the fewest choices in all wins, then the narrowest ``Z``, then the smallest offsets, so
    a network whose shifts gain nothing keeps its datapath bit for bit. A trained 4-bit CNN
    (output shifts 17, 13, 13, 14, 15; ``align2`` 2, 0, 1, 1, 1; ``align1`` 0) gets
    ``k = 0, 1, 1, 0, 0``: the output's shifts 17, 14, 14, 14, 15, ``align2`` two values,
    ``align1`` two, four choices against five (making ``align2`` equal also leaves five).
    """
    shifts = [(p.shifts.align1, p.shifts.align2, p.shifts.out) for p in plans]

    def choices(ks: Sequence[int]) -> int:
        return sum(len({s[i] + k for s, k in zip(shifts, ks, strict=True)}) - 1
                   for i in range(3))

    spread = max(max(s[i] for s in shifts) - min(s[i] for s in shifts) for i in range(3))
    if (spread + 1) ** len(shifts) <= _MAX_OFFSET_SEARCH:
        candidates = itertools.product(range(spread + 1), repeat=len(shifts))
    else:
        candidates = [(0,) * len(shifts)] + [
            tuple(max(s[i] for s in shifts) - s[i] for s in shifts) for i in range(3)]
    return list(min(candidates, key=lambda ks: (choices(ks), max(ks), sum(ks), ks)))


def _signed_width(value: Value) -> int:
    """Bits of the narrowest signed value that holds every value of ``value``."""
    shape = value.shape()
    return shape.width + (not shape.signed)


def _paced_delay(m: Module, value: Value, valid: Sequence[Value], cycles: int,
                 name: str) -> Value:
    """``value`` of the column marked by ``valid[0]`` (taken in that cycle), ``cycles``
    cycles later (a multiple of ``COLUMN_INTERVAL``).

    ``valid[k]`` marks that column ``k`` cycles on. Columns come at least ``COLUMN_INTERVAL``
    (2) cycles apart, so a register loaded at ``valid[k]`` keeps its column's value for two
    cycles; a chain of ``cycles / 2`` such registers does what ``cycles`` plain ones would
    (on iCE40 each flip-flop of a delay line is a logic cell of its own).
    """
    assert cycles % COLUMN_INTERVAL == 0
    for k in range(0, cycles, COLUMN_INTERVAL):
        reg = Signal.like(value, name=f"{name}_{k + COLUMN_INTERVAL}")
        with m.If(valid[k]):
            m.d.sync += reg.eq(value)
        value = reg
    return value

