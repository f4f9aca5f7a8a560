"""The sequencer: runs the layers of one frame in order, and knows the schedule's timing.

Per frame: take the pending frame from the window and wait for its min/max reduce; then per
layer: start the two dividers on the input's range, wait for them, issue the layer's passes
(``ceil(n_out / P)`` passes of ``n_in`` reads each, back to back), and wait until the scaler
has produced the layer's last column, whose min/max then feeds the next layer's dividers.
In a convolutional network (:mod:`kwshw.hw.convs`) a layer that reads a convolution history
first waits (state ``HISTORY``) for the history's min/max of the entry just written.

Nothing in the schedule depends on the data, so the cycles per frame are a closed formula
(:attr:`FrameSchedule.cycles_per_frame`, the one place they are computed), checked against
simulation by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..quantize import LayerPlan
from .common import check_lanes

__all__ = ["COLUMN_INTERVAL", "KIND_LAYOUT", "FrameSchedule", "LayerSchedule", "Sequencer",
           "layer_schedules"]

#: Cycles between two columns entering the scaler: its two multipliers each compute two of a
#: column's four products (:class:`kwshw.hw.scaler.Scaler`), so the MAC array's hold bank
#: hands over one column every two cycles.
COLUMN_INTERVAL = 2

#: What the current layer reads and writes (:attr:`Sequencer.kind`): ``first`` reads the
#: window (layer 0), ``reads_history`` a convolution history (layers ``1 .. histories``),
#: ``writes_history`` one (layers ``0 .. histories - 1``), ``last`` writes the scores.
KIND_LAYOUT = data.StructLayout({"first": 1, "reads_history": 1, "writes_history": 1,
                                 "last": 1})


@dataclass(frozen=True)
class LayerSchedule:
    """The static schedule of one layer on ``P`` lanes.

    Attributes
    ----------
    n_in, n_out : int
        Layer shape.
    passes : int
        ``ceil(n_out / P)``: passes of the MAC array over the inputs.
    spacing : int
        Cycles from one pass's first read to the next's: ``max(n_in, COLUMN_INTERVAL * P)``,
        so that a pass never ends before the previous pass's ``P`` results have left the hold
        bank.
    last_cols : int
        Columns computed by the last pass (``n_out`` not a multiple of ``P`` leaves lanes idle).
    """

    n_in: int
    n_out: int
    passes: int
    spacing: int
    last_cols: int

    @property
    def issue_cycles(self) -> int:
        """Cycles in which the layer's reads are issued, first to last."""
        return (self.passes - 1) * self.spacing + self.n_in

    @property
    def reads(self) -> int:
        """``ceil(n_out / P) * n_in``: reads issued, each with its own packed weight word."""
        return self.passes * self.n_in

    @property
    def ideal_cycles(self) -> int:
        """One MAC per lane and cycle, nothing else: one cycle per read."""
        return self.reads


def layer_schedules(plans: Sequence[LayerPlan], lanes: int) -> list[LayerSchedule]:
    """The schedule of every layer of ``plans`` on ``lanes`` MAC lanes."""
    check_lanes(lanes)
    out = []
    for plan in plans:
        passes = -(-plan.n_out // lanes)
        out.append(LayerSchedule(
            n_in=plan.n_in, n_out=plan.n_out, passes=passes,
            spacing=max(plan.n_in, COLUMN_INTERVAL * lanes),
            last_cols=plan.n_out - (passes - 1) * lanes))
    return out


@dataclass(frozen=True)
class FrameSchedule:
    """The static schedule of one frame: its layers and the latencies the sequencer waits for.

    Attributes
    ----------
    layers : tuple of LayerSchedule
        The layers, in order.
    reduce_latency : int
        Window min/max reduce, from ``take`` to ``mm_done``.
    divider_latency : int
        Frame dividers, from ``start`` to ``done``.
    pipeline_latency : int
        From a read being issued to the scaler's output for a column of the hold bank's lane 0
        (read + requantizer + MAC beat + hold + scaler).
    tracker_latency : int
        From a layer's last column out of the scaler to the first cycle the min-max tracker's
        range includes it (:attr:`~kwshw.hw.minmax.MinMax.LATENCY`): the next layer starts
        then.
    history_waits : tuple of int
        Per layer that reads a convolution history (layers ``1 ..``), the cycles it waits
        beyond ``tracker_latency`` for the history's min/max reduce of the entry just
        written.
    """

    layers: tuple[LayerSchedule, ...]
    reduce_latency: int
    divider_latency: int
    pipeline_latency: int
    tracker_latency: int
    history_waits: tuple[int, ...] = ()

    @property
    def cycles_per_frame(self) -> int:
        """Cycles from taking one frame to being able to take the next (the frame period when
        frames are always pending and scores are read at once).

        Per frame: 1 cycle (take) + ``reduce_latency`` + 1 (start); per layer:
        ``divider_latency`` + 1 (start of reads) + ``issue_cycles`` - 1 (to the last read) +
        ``pipeline_latency`` + ``COLUMN_INTERVAL * (last_cols - 1)`` (to the last column
        out) + ``tracker_latency`` (the tracker folds it; start of the next layer, or idle);
        plus, for a layer that reads a convolution history, ``history_waits`` (waiting for
        the history's min/max reduce of the entry just written).
        """
        total = 1 + self.reduce_latency + sum(self.history_waits)
        for s in self.layers:
            total += (self.divider_latency + s.issue_cycles + self.pipeline_latency
                      + COLUMN_INTERVAL * (s.last_cols - 1) + self.tracker_latency)
        return total

    @property
    def reads(self) -> int:
        """Reads issued per frame: also the number of packed weight words (one per read)."""
        return sum(s.reads for s in self.layers)

    @property
    def ideal_cycles(self) -> int:
        """``sum over layers of ceil(n_out / P) * n_in``: one MAC per lane and cycle."""
        return sum(s.ideal_cycles for s in self.layers)


class Sequencer(wiring.Component):
    """State machine over the frame's layers and passes.

    Parameters
    ----------
    schedules : sequence of LayerSchedule
        The layers, in order.
    lanes : int
        ``P``.
    histories : int
        Layers ``1 .. histories`` read a convolution history (:class:`~kwshw.hw.history.
        HistoryBank`): before their dividers start, the sequencer waits for ``hist_valid``.
        With 0 (a dense network) there is no such port.

    Attributes
    ----------
    frame_valid : Signal, in
        The window holds a pending frame.
    take : Signal, out
        Pulse: take it (and start the window's min/max reduce).
    mm_done : Signal, in
        Window reduce finished.
    div_start : Signal, out
        Pulse: start the dividers on the range of layer ``layer``'s input (the window's for
        layer 0, the min-max tracker's otherwise); also the moment to latch its ``XLO``.
    div_done : Signal, in
        Dividers finished.
    out_room : Signal, in
        The score buffer can take a whole frame's scores (checked before the last layer runs).
    layer_done : Signal, in
        The current layer's last column has left the scaler, and the min-max tracker has
        its range the next cycle (the accelerator registers the scaler's ``last`` for it).
    layer : Signal, out
        Current layer.
    kind : Signal(KIND_LAYOUT), out
        What ``layer`` reads and writes (:data:`KIND_LAYOUT`), registered with ``layer``:
        the decoders of a layer index were compare chains in front of the memories' enables.
    issue : stream, out
        One beat per read: ``index`` (input ``i``), ``first``/``last`` of a pass and ``cols``
        (lanes with real columns in this pass).
    hist_valid : Signal, in (``histories > 0`` only)
        The current layer's history has the min/max of its newest patch.
    busy : Signal, out
        A frame is being computed.
    """

    def __init__(self, schedules: Sequence[LayerSchedule], lanes: int,
                 histories: int = 0) -> None:
        self._sched = list(schedules)
        if not 0 <= histories < len(self._sched):
            raise ValueError(f"histories must be in [0, {len(self._sched)}), got {histories}")
        self._histories = histories
        self._lanes = check_lanes(lanes)
        max_in = max(s.n_in for s in self._sched)
        issue_layout = data.StructLayout({
            "index": range(max_in),
            "first": 1,
            "last": 1,
            "cols": range(lanes + 1),
        })
        members = {
            "frame_valid": In(1),
            "take": Out(1),
            "mm_done": In(1),
            "div_start": Out(1),
            "div_done": In(1),
            "out_room": In(1),
            "layer_done": In(1),
            "layer": Out(range(len(self._sched))),
            "kind": Out(KIND_LAYOUT, init=self._kind(0)),
            "issue": Out(stream.Signature(issue_layout, always_ready=True)),
            "busy": Out(1),
        }
        if histories:
            members["hist_valid"] = In(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        sched, lanes = self._sched, self._lanes
        last_layer = len(sched) - 1
        spacing = max(s.spacing for s in sched)
        idx = Signal(range(spacing))
        pas = Signal(range(max(s.passes for s in sched)))
        # Per-layer constants, registered from the current layer: a layer's first beat comes
        # at least two cycles after the layer changes (START, DIVIDE), and the lookup in front
        # of the run's compares was part of the iCE40's longest path.
        last_idx = Signal(range(max(s.n_in for s in sched)))
        space_m1 = Signal(range(spacing))
        passes = Signal.like(pas, name="passes_m1")
        last_cols = Signal(range(lanes + 1))
        with m.Switch(self.layer):
            for k, s in enumerate(sched):
                with m.Case(k):
                    m.d.sync += [last_idx.eq(s.n_in - 1),
                                 space_m1.eq(s.spacing - 1), passes.eq(s.passes - 1),
                                 last_cols.eq(s.last_cols)]

        # A beat is issued while idx <= last_idx, and it is a pass's first at idx == 0. Both
        # are registers, set from the next idx: the convolution histories' single-port RAM
        # enables hang off them, and the compare in front of a far SPRAM's chip select was the
        # iCE40's longest path.
        beat = self.issue.payload
        final_pass = pas == passes
        valid, first = Signal(), Signal()
        m.d.comb += [
            self.issue.valid.eq(valid),
            beat.index.eq(idx),
            beat.first.eq(first),
            beat.last.eq(idx == last_idx),
            beat.cols.eq(Mux(final_pass, last_cols, lanes)),
        ]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.frame_valid):
                    m.d.comb += self.take.eq(1)
                    m.d.sync += [self.layer.eq(0), self.kind.eq(self._kind(0))]
                    m.next = "WINDOW"
            with m.State("WINDOW"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.mm_done):
                    m.next = "START"
            with m.State("START"):
                m.d.comb += [self.busy.eq(1), self.div_start.eq(1)]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.div_done & (~self.kind.last | self.out_room)):
                    # idx = 0 <= last_idx: every layer has an input.
                    m.d.sync += [idx.eq(0), pas.eq(0), valid.eq(1), first.eq(1)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [idx.eq(idx + 1), valid.eq(idx < last_idx), first.eq(0)]
                with m.If(final_pass & (idx == last_idx)):
                    m.d.sync += valid.eq(0)
                    m.next = "DRAIN"
                with m.Elif(idx == space_m1):
                    m.d.sync += [idx.eq(0), pas.eq(pas + 1), valid.eq(1), first.eq(1)]
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.layer_done):
                    with m.If(self.kind.last):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.layer.eq(self.layer + 1)
                        with m.Switch(self.layer):
                            for k in range(last_layer):
                                with m.Case(k):
                                    m.d.sync += self.kind.eq(self._kind(k + 1))
                        self._next_layer(m)
            if self._histories:
                with m.State("HISTORY"):
                    m.d.comb += self.busy.eq(1)
                    with m.If(self.hist_valid):
                        m.next = "START"
        return m

    def _kind(self, layer: int) -> data.Const:
        """The :data:`KIND_LAYOUT` flags of ``layer``."""
        return KIND_LAYOUT.const({"first": layer == 0,
                                  "reads_history": 1 <= layer <= self._histories,
                                  "writes_history": layer < self._histories,
                                  "last": layer == len(self._sched) - 1})

    def _next_layer(self, m: Module) -> None:
        """From the last column of a layer to the next layer: its dividers start at once,
        unless it reads a history (layers ``1 .. histories``) whose reduce must finish."""
        if not self._histories:
            m.next = "START"
            return
        # The next layer reads a history exactly when this one writes one.
        with m.If(self.kind.writes_history):
            m.next = "HISTORY"
        with m.Else():
            m.next = "START"

