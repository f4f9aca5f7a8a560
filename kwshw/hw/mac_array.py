"""The MAC array: ``P`` lanes of ``b x b``-bit unsigned multiply-accumulate, output-stationary.

Each cycle one activation code ``p_i`` is broadcast to all lanes and lane ``l`` multiplies it
by its weight code ``q_i,l`` from one packed weight word, so a *pass* over the ``n_in`` inputs
yields ``A_j = sum_i p_i q_ij`` for ``P`` columns at once. ``P = sum_i p_i`` is accumulated
beside them. The products are registered before they are added, so a multiplier (a DSP block
on ECP5, LUTs on iCE40) and an accumulator's carry chain are never on one path. At the end of
a pass the accumulators are copied into a hold bank that shifts its values out, one every
``interval`` cycles, to the (time-multiplexed) scaler while the next pass already
accumulates: this is what overlaps scaling with the MACs.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import arith

__all__ = ["MACArray"]


class MACArray(wiring.Component):
    """``P`` output-stationary unsigned MAC lanes with a serial read-out of each pass.

    Parameters
    ----------
    lanes : int
        Number of lanes ``P``.
    bits : int
        Code width ``b`` of activations and weights.
    acc_width : int
        Accumulator width (``LayerWidths.acc``, the largest over the layers).
    psum_width : int
        Width of ``P = sum_i p_i`` (``LayerWidths.psum``).
    interval : int
        Cycles between two results (the scaler's
        :data:`~kwshw.hw.sequencer.COLUMN_INTERVAL`).

    Attributes
    ----------
    inp : stream, in
        One beat per input ``i`` of a pass: ``code`` (the broadcast ``p_i``), ``weights``
        (``P`` codes ``q_i,l``, lane 0 in the low bits), ``first``/``last`` marking the pass's
        first and last input, ``cols`` (with ``last``) the number of lanes holding real
        columns. Never stalls.
    result : stream, out
        After a pass, its ``cols`` results one every ``interval`` cycles, lane 0 first:
        ``acc`` (``A_j``), ``lane`` and ``last`` (the pass's last column). With
        ``interval >= 2``, ``acc`` also holds through the ``interval - 1`` cycles after its
        beat (the scaler reads it a cycle late instead of registering it). A pass must not end
        again before the previous pass's results are out (``n_in >= interval * cols``
        cycles apart): the sequencer ensures it.
    psum : Signal, out
        ``P`` of the last finished pass (the same for every pass of a layer).
    """

    #: Cycles from a pass's last input beat to its first ``result``: the product register,
    #: the accumulator, then the hold bank (loaded from the accumulators, not from the adders:
    #: an adder driving two registers keeps one of them out of its logic cell on iCE40).
    LATENCY = 3

    def __init__(self, lanes: int, bits: int, acc_width: int, psum_width: int, *,
                 interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self._lanes, self._bits = lanes, arith.check_bits(bits)
        self._interval = interval
        self._acc_width = acc_width
        in_layout = data.StructLayout({
            "code": unsigned(bits),
            "weights": data.ArrayLayout(unsigned(bits), lanes),
            "first": 1,
            "last": 1,
            "cols": range(lanes + 1),
        })
        out_layout = data.StructLayout({
            "acc": unsigned(acc_width),
            "lane": range(lanes),
            "last": 1,
        })
        super().__init__({
            "inp": In(stream.Signature(in_layout, always_ready=True)),
            "result": Out(stream.Signature(out_layout, always_ready=True)),
            "psum": Out(unsigned(psum_width)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes, width = self._lanes, self._acc_width
        beat = self._product_stage(m)
        acc = [Signal(width, name=f"acc{k}") for k in range(lanes)]
        hold = [Signal(width, name=f"hold{k}") for k in range(lanes)]
        psum = Signal.like(self.psum, name="psum_acc")
        # Starting a pass replaces the accumulator instead of clearing it in an extra cycle.
        acc_next = [Mux(beat.first, 0, acc[k]) + beat.products[k] for k in range(lanes)]
        psum_next = Mux(beat.first, 0, psum) + beat.code
        with m.If(beat.valid):
            m.d.sync += [a.eq(n) for a, n in zip(acc, acc_next, strict=True)]
            m.d.sync += psum.eq(psum_next)

        # The pass ended in the previous cycle: its sums are in the accumulators, which the
        # next pass may start overwriting in this very cycle.
        done = Signal()
        done_cols = Signal.like(beat.cols)
        m.d.sync += [done.eq(beat.valid & beat.last), done_cols.eq(beat.cols)]

        left = Signal(range(lanes + 1))
        lane = Signal(range(lanes))
        # Cycles until the next result (0: lane 0 of the bank is presented now).
        wait = Signal(range(self._interval))
        present = (left != 0) & (wait == 0)
        with m.If(done):
            m.d.sync += [h.eq(a) for h, a in zip(hold, acc, strict=True)]
            m.d.sync += [left.eq(done_cols), lane.eq(0), wait.eq(0), self.psum.eq(psum)]
        with m.Elif(present):
            m.d.sync += [left.eq(left - 1), lane.eq(lane + 1), wait.eq(self._interval - 1)]
        with m.Elif(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        # Shift the bank down one lane (a 2:1 mux per bit, not a P:1 mux) as late as the next
        # result allows: lane 0 then holds its result until then.
        shift = present if self._interval == 1 else wait == 1
        with m.If(~done & shift):
            m.d.sync += [hold[k].eq(hold[k + 1]) for k in range(lanes - 1)]
        m.d.comb += [
            self.result.valid.eq(present),
            self.result.payload.acc.eq(hold[0]),
            self.result.payload.lane.eq(lane),
            self.result.payload.last.eq(left == 1),
        ]
        return m

    def _product_stage(self, m: Module) -> Signal:
        """Register every lane's ``p_i * q_i,l`` with the beat's code and flags."""
        lanes, bits = self._lanes, self._bits
        beat = self.inp.payload
        layout = data.StructLayout({
            "valid": 1,
            "code": unsigned(bits),
            "products": data.ArrayLayout(unsigned(2 * bits), lanes),
            "first": 1,
            "last": 1,
            "cols": range(lanes + 1),
        })
        stage = Signal(layout, name="product")
        m.d.sync += [
            stage.valid.eq(self.inp.valid),
            stage.code.eq(beat.code),
            stage.first.eq(beat.first),
            stage.last.eq(beat.last),
            stage.cols.eq(beat.cols),
        ]
        m.d.sync += [stage.products[k].eq(beat.code * beat.weights[k]) for k in range(lanes)]
        return stage
