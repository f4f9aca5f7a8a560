"""The accelerator top: feature frames in, scores out, bit-exact with :mod:`kwshw.golden`.

Block diagram (one frame; ``docs/hardware.md`` has the schedule and the widths)::

    feat ──> Window ──(layer 0)──┐               weights (P codes/word)
               │ min/max pairs   ├─> Requantizer ──> MACArray ──> Scaler ──┬─> activations
               │ (to MinMax)     │    ^ RECIP          P lanes     ^ RM,XLO │   (ping-pong)
          FrameDivider <─────────┼────┴────────────────────────────┘       ├─> MinMax ─┐
               ^                 └── activations (layers 1..)              └─> score FIFO ──> score
               └──────────────────────────────────────────────────────────────────────┘
                                            Sequencer (layers, passes, timing)

``MinMax`` (the tracker) gives every layer's ``XLO`` and ``R``: it follows a layer's outputs
and folds the stored min/max pairs of the window (layer 0) and of the convolution histories.

The external interface is fixed (the host link and the board tops connect to it):
``feat`` (signed 16, ``n_mels`` values per frame, band order; after the last one an inference
runs), ``score`` (signed 16, ``n_out`` per frame, class order, back-pressure honoured),
``clear`` (one-cycle pulse: empty the window, drop any partial frame, running inference and
unread scores), and with ``memory="spram"`` a ``load`` stream of packed weight words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from amaranth.hdl import Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import arith
from ..arith import ACT_WIDTH
from ..modelfile import Model
from ..quantize import LayerPlan
from .common import (
    DISJOINT_PORTS,
    check_lanes,
    check_plans,
    conv_layers,
    delay,
    disjoint_read_port,
    max_width,
)
from .convs import (
    history_memories,
    history_specs,
    history_spram_blocks,
    history_waits,
    window_features,
)
from .history import HistoryBank, bank_bits
from .mac_array import MACArray
from .memories import (
    MEMORY_KINDS,
    SPRAM_BLOCKS,
    WeightMemory,
    const_bits,
    load_words,
    spram_block_count,
    weight_words,
)
from .minmax import MinMax
from .ports import AcceleratorSignature
from .requant import FrameDivider, Requantizer, frame_divider_latency
from .scaler import Scaler
from .score_buffer import ScoreBuffer
from .sequencer import COLUMN_INTERVAL, FrameSchedule, Sequencer, layer_schedules
from .window import Window, reduce_latency, window_bits

__all__ = ["Accelerator", "PIPELINE_LATENCY", "activation_depth", "frame_schedule",
           "memory_bits", "score_fifo_depth"]

#: Cycles from a read being issued to the scaler output of its hold-bank lane 0.
PIPELINE_LATENCY = (Window.READ_LATENCY + Requantizer.LATENCY + MACArray.LATENCY
                    + Scaler.LATENCY)


def frame_schedule(model: Model, lanes: int, *, radix_bits: int = 1) -> FrameSchedule:
    """The static schedule of an :class:`Accelerator` build, without building it: its layers
    and the latencies of the blocks the sequencer waits for.

    :attr:`FrameSchedule.cycles_per_frame` is the exact frame period (equal to simulation).
    """
    plans = model.plans()
    return FrameSchedule(
        layers=tuple(layer_schedules(plans, lanes)),
        reduce_latency=reduce_latency(window_features(plans, model.features)),
        divider_latency=frame_divider_latency(max_width(plans, "recip"),
                                              max_width(plans, "step"), radix_bits),
        pipeline_latency=PIPELINE_LATENCY,
        tracker_latency=MinMax.LATENCY,
        history_waits=history_waits(plans, model.features.stride))


def score_fifo_depth(n_out: int) -> int:
    """Depth of the score FIFO (:class:`~kwshw.hw.score_buffer.ScoreBuffer`): a frame's
    ``n_out`` scores in its storage memory (``depth - 1`` words) plus its output register."""
    return n_out + 1


def activation_depth(plans: Sequence[LayerPlan]) -> int:
    """Values in each half of the ping-pong activation buffer: the widest hidden dense layer
    (0 for a network with a single dense layer, which has no buffer; the convolutions write
    their histories)."""
    return max((p.n_out for p in plans[conv_layers(plans):-1]), default=0)


def memory_bits(model: Model, lanes: int) -> dict[str, int]:
    """On-chip memory of an :class:`Accelerator` build by kind, in bits, without building it."""
    plans = model.plans()
    bits = {
        "weights": frame_schedule(model, lanes).reads * lanes * check_plans(plans),
        "constants": const_bits(plans),
        "window": window_bits(window_features(plans, model.features)),
        "activations": 2 * activation_depth(plans) * ACT_WIDTH,
        "scores": plans[-1].n_out * ACT_WIDTH,
    }
    specs = history_specs(plans, model.features.stride)
    if specs:
        bits["histories"] = bank_bits(specs)
    return bits


class _Blocks(NamedTuple):
    """The components of one :class:`Accelerator` elaboration, for its wiring helpers."""

    wmem: WeightMemory
    window: Window
    seq: Sequencer
    div: FrameDivider
    req: Requantizer
    mac: MACArray
    scaler: Scaler
    tracker: MinMax
    scores: ScoreBuffer
    histories: HistoryBank | None = None


class Accelerator(wiring.Component):
    """Keyword-spotting accelerator for one quantized model.

    Parameters
    ----------
    model : Model
        The quantized network; its weights and constants are built into the memories.
    lanes : int
        MAC lanes ``P`` (a power of two).
    memory : {"bram", "spram"}
        Weight memory style (see :mod:`kwshw.hw.memories`). With ``"spram"`` the
        convolution histories also go into the SPRAM blocks the weights leave
        (:func:`kwshw.hw.convs.history_memories`).
    trace : bool
        Add the observation port ``trace_*`` (for test benches).
    radix_bits : int
        Quotient bits per cycle of the frame dividers.
    spram_blocks : int
        SPRAM blocks of the FPGA (``memory="spram"`` only; the iCE40 UltraPlus has 4).
    dsp_strips : bool
        On iCE40, the scaler's products in one DSP each, their operands' top strips in
        logic (:class:`~kwshw.hw.scaler.Scaler`): for a design whose other multipliers need
        the DSPs.

    Attributes
    ----------
    feat : stream, in
        Feature values (signed ``ACT_WIDTH``), ``n_mels`` per frame in band order. Ready
        whenever no complete frame is pending (and, with SPRAM, once the weights are loaded),
        so the next frame can stream in while the current one is computed.
    score : stream, out
        ``n_out`` scores per frame in class order (signed ``ACT_WIDTH``, the last layer's
        output format). A frame's last layer only starts once the previous frame's scores are
        all read, so nothing is lost however long ``ready`` stays low.
    clear : Signal, in
        One-cycle pulse: restart from an all-zero window, as after reset.
    load : stream, in (``memory="spram"`` only)
        Stored weight words (:func:`kwshw.hw.memories.load_words`, :attr:`load_width`
        bits), address 0 first.
        ``feat`` stays not ready until every word has been loaded once.
    trace_valid, trace_layer, trace_index, trace_value : Signal, out (``trace=True`` only)
        Pulses with every layer output ``y_j`` as the scaler produces it.
    """

    def __init__(self, model: Model, lanes: int, memory: str = "bram", trace: bool = False,
                 *, radix_bits: int = 1, spram_blocks: int = SPRAM_BLOCKS,
                 dsp_strips: bool = False) -> None:
        check_lanes(lanes)
        if memory not in MEMORY_KINDS:
            raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {memory!r}")
        arith.check_bits(model.bits)
        conv0 = model.layers[0].conv
        n_window = model.features.n_inputs if conv0 is None else \
            conv0.kernel * model.features.n_mels
        if model.layers[0].n_in != n_window:
            raise ValueError(f"layer 0 has {model.layers[0].n_in} inputs, the feature "
                             f"window gives {n_window}")
        self.model = model
        self.lanes = lanes
        self.dsp_strips = dsp_strips
        self.memory = memory
        self.trace = trace
        self.plans = model.plans()
        self.bits = check_plans(self.plans)
        self.n_conv = conv_layers(self.plans)
        self.window_features = window_features(self.plans, model.features)
        self.history_specs = history_specs(self.plans, model.features.stride)
        self.schedule = frame_schedule(model, lanes, radix_bits=radix_bits)
        self.word_width = lanes * self.bits
        self._words = weight_words(self.plans, lanes)
        self._load, self.load_width = load_words(self.plans, lanes)
        self.history_memories = history_memories(
            self.history_specs, memory, spram_blocks - self.weight_spram_blocks)
        self._radix_bits = radix_bits
        self.act_depth = activation_depth(self.plans)
        n_layers = len(self.plans)
        n_out = self.plans[-1].n_out

        members = dict(AcceleratorSignature(ACT_WIDTH).members)
        if memory == "spram":
            members["load"] = In(stream.Signature(unsigned(self.load_width)))
        if trace:
            members.update({
                "trace_valid": Out(1),
                "trace_layer": Out(range(n_layers)),
                "trace_index": Out(range(max(p.n_out for p in self.plans))),
                "trace_value": Out(signed(ACT_WIDTH)),
            })
        super().__init__(members)
        self._n_out = n_out

    # --- Static facts about this build -------------------------------------------------------

    @property
    def pipeline_latency(self) -> int:
        """Cycles from a read being issued to the scaler output of its hold-bank lane 0."""
        return self.schedule.pipeline_latency

    @property
    def divider_latency(self) -> int:
        """Cycles of the frame dividers, from ``start`` to ``done``."""
        return self.schedule.divider_latency

    @property
    def cycles_per_frame(self) -> int:
        """Exact cycles per frame (:attr:`FrameSchedule.cycles_per_frame`)."""
        return self.schedule.cycles_per_frame

    @property
    def ideal_cycles(self) -> int:
        """``sum over layers of ceil(n_out / P) * n_in``."""
        return self.schedule.ideal_cycles

    @property
    def weight_spram_blocks(self) -> int:
        """SPRAM blocks of the weight memory (``memory="spram"``; 0 otherwise)."""
        if self.memory != "spram":
            return 0
        return spram_block_count(self.load_width, max(len(self._load), 1))

    @property
    def spram_blocks_used(self) -> int:
        """SPRAM blocks of this build: the weights' and the convolution histories' placed
        there (0 with ``memory="bram"``)."""
        return self.weight_spram_blocks + history_spram_blocks(self.history_specs,
                                                               self.history_memories)

    def memory_bits(self) -> dict[str, int]:
        """On-chip memory by kind, in bits (:func:`memory_bits`)."""
        return memory_bits(self.model, self.lanes)

    @property
    def weight_depth(self) -> int:
        """Words of the weight memory, one per read (``P * b`` bits each)."""
        return len(self._words)

    def weight_load_words(self) -> list[int]:
        """The words to send on ``load`` (SPRAM builds), in order (:func:`load_words`)."""
        return list(self._load)

    # --- Hardware ------------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        core = Module()     # everything that `clear` restarts
        # The weight memory survives `clear` (the SPRAM load state).
        m.submodules.weights = wmem = WeightMemory(self._words, self.word_width, self.memory)
        blocks = self._add_blocks(core, wmem)
        m.submodules.core = ResetInserter(self.clear)(core)
        self._connect_host(m, blocks)
        xlo = self._connect_control(core, blocks)
        act_wr = self._connect_reads(core, blocks, xlo)
        self._connect_mac(core, blocks)
        self._connect_scaler(core, blocks, xlo)
        self._connect_outputs(m, core, blocks, act_wr)
        return m

    def _add_blocks(self, core: Module, wmem: WeightMemory) -> _Blocks:
        """The data path's components, added to ``core`` in data-path order."""
        plans, bits = self.plans, self.bits
        core.submodules.window = window = Window(self.window_features)
        core.submodules.sequencer = seq = Sequencer(self.schedule.layers, self.lanes,
                                                    histories=self.n_conv)
        core.submodules.divider = div = FrameDivider(
            bits, max_width(plans, "range"), max_width(plans, "recip"),
            max_width(plans, "step"), radix_bits=self._radix_bits)
        core.submodules.requant = req = Requantizer(bits, max_width(plans, "range"),
                                                    max_width(plans, "recip"))
        core.submodules.mac = mac = MACArray(self.lanes, bits, max_width(plans, "acc"),
                                             max_width(plans, "psum"),
                                             interval=COLUMN_INTERVAL)
        core.submodules.scaler = scaler = Scaler(plans, dsp_strips=self.dsp_strips)
        # The tracker also folds the window's stored min/max pairs (as a frame is taken) and
        # the histories' (after a convolution's entry): one set of comparators and min/max
        # registers gives every layer's XLO and R.
        core.submodules.tracker = tracker = MinMax(pairs=True)
        # A buffered FIFO reads its storage synchronously, so the storage maps to one block
        # RAM (an unbuffered one is n_out x 16 flip-flops and a read multiplexer: 200 LUTs and
        # 204 flip-flops on the iCEBreaker reference, bench/results/area-before.json). The
        # scaler writes a frame's n_out scores without looking at w_stream.ready (the last
        # layer starts only when the FIFO is empty); depth n_out + 1 is n_out words of storage
        # plus the output register (`score_fifo_depth`).
        core.submodules.scores = scores = ScoreBuffer(signed(ACT_WIDTH),
                                                      score_fifo_depth(self._n_out))
        hists = None
        if self.history_specs:
            core.submodules.histories = hists = HistoryBank(self.history_specs,
                                                            self.history_memories)
        return _Blocks(wmem=wmem, window=window, seq=seq, div=div, req=req, mac=mac,
                       scaler=scaler, tracker=tracker, scores=scores, histories=hists)

    def _connect_host(self, m: Module, b: _Blocks) -> None:
        """Host side: frames in, scores out (and, with SPRAM, the weight load)."""
        loaded = b.wmem.loaded if self.memory == "spram" else 1
        if self.memory == "spram":
            wiring.connect(m, wiring.flipped(self.load), b.wmem.load)
        m.d.comb += [
            b.window.feat.payload.eq(self.feat.payload),
            b.window.feat.valid.eq(self.feat.valid & loaded),
            self.feat.ready.eq(b.window.feat.ready & loaded),
        ]
        wiring.connect(m, b.scores.r_stream, wiring.flipped(self.score))

    def _connect_control(self, core: Module, b: _Blocks) -> Signal:
        """Sequencer, window reduce and dividers; returns ``XLO`` of the current layer's input,
        latched when its dividers start."""
        window, seq, div = b.window, b.seq, b.div
        # XLO and R of the current layer's input are the tracker's: it folded the outputs of
        # the layer before, or the stored min/max pairs of the window (layer 0) or of the
        # history the layer reads. The window's and the histories' reduces never overlap each
        # other or a layer's outputs (the sequencer waits for each).
        fold = b.tracker.pairs
        core.d.comb += [fold.valid.eq(window.fold.valid), fold.payload.eq(window.fold.payload)]
        if b.histories is not None:
            with core.If(b.histories.fold.valid):
                core.d.comb += [fold.valid.eq(1), fold.payload.eq(b.histories.fold.payload)]
            # Ungated: the sequencer waits for it only before layers 1 .. n_conv, and then
            # the history written last is the one the layer reads.
            core.d.comb += seq.hist_valid.eq(b.histories.mm_valid)
        xlo = Signal(signed(ACT_WIDTH))
        with core.If(seq.div_start):
            core.d.sync += xlo.eq(b.tracker.xmin)
        # The score buffer's emptiness, a cycle late: the sequencer reads it before the last
        # layer runs, when the frame before has long written its scores, so the buffer can
        # only drain meanwhile and a late "empty" at most delays the start by the cycle the
        # host took the last score. (Into the sequencer's state enable it was both iCEBreaker
        # references' longest path.)
        out_room = Signal()
        core.d.sync += out_room.eq(b.scores.empty)
        # A layer ends for the sequencer the cycle after its last column, when the tracker
        # (which registers its input) folds it: the next layer's dividers then start on the
        # whole range.
        layer_done = Signal()
        core.d.sync += layer_done.eq(b.scaler.out.valid & b.scaler.out.payload.last)
        core.d.comb += [
            seq.frame_valid.eq(window.frame_valid),
            window.take.eq(seq.take),
            seq.mm_done.eq(window.mm_done),
            div.start.eq(seq.div_start),
            div.range.eq(b.tracker.range),
            seq.div_done.eq(div.done),
            seq.out_room.eq(out_room),
            seq.layer_done.eq(layer_done),
        ]
        return xlo

    def _history_reads(self, core: Module, b: _Blocks) -> Signal:
        """Layers ``1 .. n_conv`` read their history: one request per pass (with the pass's
        first beat, so the patch follows one cycle later, as the window's values do).
        Returns the value of the current layer's patch."""
        layer, issue, hists = b.seq.layer, b.seq.issue, b.histories
        core.d.comb += [
            hists.req.valid.eq(issue.valid & issue.payload.first & b.seq.kind.reads_history),
            hists.read_from.eq(layer - 1),
            hists.patch.ready.eq(1),
        ]
        return hists.patch.payload.value

    def _connect_reads(self, core: Module, b: _Blocks,
                       xlo: Signal) -> memory.WritePort | None:
        """Reads into the requantizer: layer 0 from the window, later layers from the
        activation buffer half the previous layer wrote (layer ``l`` writes half ``l % 2`` and
        reads half ``(l - 1) % 2``). Returns the buffer's write port (None without one)."""
        layer, issue, h = b.seq.layer, b.seq.issue, self.act_depth
        first_layer = b.seq.kind.first
        core.d.comb += [
            b.window.rd_en.eq(issue.valid & first_layer),
            b.window.rd_first.eq(issue.payload.first),
        ]
        act_data, act_wr = 0, None
        if h:
            # Layer l reads one half and writes the other: no read collides with a write.
            core.submodules.acts = acts = memory.Memory(shape=signed(ACT_WIDTH), depth=2 * h,
                                                        init=[], attrs=DISJOINT_PORTS)
            act_rd, act_wr = disjoint_read_port(core, acts, "acts_rd"), acts.write_port()
            core.d.comb += act_rd.addr.eq(Mux(layer[0], 0, h) + issue.payload.index)
            act_data = act_rd.data
        read_valid = delay(core, issue.valid, Window.READ_LATENCY, name="read_valid")
        value = Signal(signed(ACT_WIDTH))
        core.d.comb += value.eq(Mux(first_layer, b.window.rd_data, act_data))
        if b.histories is not None:
            value = Mux(b.seq.kind.reads_history, self._history_reads(core, b), value)
        core.d.comb += [
            b.req.x.valid.eq(read_valid),
            b.req.x.payload.eq(value),
            b.req.xlo.eq(xlo),
            b.req.recip.eq(b.div.recip),
        ]
        return act_wr

    def _connect_mac(self, core: Module, b: _Blocks) -> None:
        """MAC array: each code meets its weight word and its pass's flags."""
        issue, mac = b.seq.issue, b.mac
        lag = Window.READ_LATENCY + Requantizer.LATENCY
        core.d.comb += [
            b.wmem.addr.eq(self._weight_address(core, b, lag - WeightMemory.LATENCY)),
            mac.inp.valid.eq(b.req.code.valid),
            mac.inp.payload.code.eq(b.req.code.payload),
            mac.inp.payload.weights.eq(b.wmem.data),
            mac.inp.payload.first.eq(delay(core, issue.payload.first, lag, name="first")),
            mac.inp.payload.last.eq(delay(core, issue.payload.last, lag, name="last")),
            mac.inp.payload.cols.eq(delay(core, issue.payload.cols, lag, name="cols")),
        ]

    @staticmethod
    def _weight_address(core: Module, b: _Blocks, cycles: int) -> Signal:
        """The weight memory's read address ``cycles`` after the sequencer issued the beat
        it goes with: the count of the frame's reads before it (the words are stored in read
        order, :func:`~kwshw.hw.memories.weight_words`). Counted from the read strobe and
        the frame start, delayed, rather than counted at the sequencer and delayed as an
        address: on iCE40 every bit of every register of that delay line was a logic cell
        of its own."""
        start = delay(core, b.seq.take, cycles, name="wstart")
        read = delay(core, b.seq.issue.valid, cycles, name="wread")
        addr = Signal.like(b.wmem.addr, name="waddr")
        with core.If(start):
            core.d.sync += addr.eq(0)
        with core.Elif(read):
            core.d.sync += addr.eq(addr + 1)
        return addr

    def _connect_scaler(self, core: Module, b: _Blocks, xlo: Signal) -> None:
        """Results leave the hold bank in column order; count the columns of the layer."""
        layer, scaler, mac = b.seq.layer, b.scaler, b.mac
        column = Signal.like(scaler.inp.payload.column)
        # The layer's last column is looked up into a register (the layer is set well before
        # its first column): the lookup and the compare in one cycle, from the sequencer's
        # layer into the scaler's `last`, was an iCEBreaker longest path.
        last_column = Signal.like(column)
        with core.Switch(layer):
            for k, plan in enumerate(self.plans):
                with core.Case(k):
                    core.d.sync += last_column.eq(plan.n_out - 1)
        last_col = column == last_column
        with core.If(mac.result.valid):
            core.d.sync += column.eq(Mux(last_col, 0, column + 1))
        core.d.comb += [
            scaler.inp.valid.eq(mac.result.valid),
            scaler.inp.payload.acc.eq(mac.result.payload.acc),
            scaler.inp.payload.column.eq(column),
            scaler.inp.payload.last.eq(last_col),
            scaler.layer.eq(layer),
            scaler.psum.eq(mac.psum),
            scaler.step.eq(b.div.step),
            scaler.xlo.eq(xlo),
        ]

    def _connect_outputs(self, m: Module, core: Module, b: _Blocks,
                         act_wr: memory.WritePort | None) -> None:
        """Outputs: min/max for the next layer, the activation buffer or the scores."""
        layer, kind, out = b.seq.layer, b.seq.kind, b.scaler.out
        # Whether the next output is a layer's first is a register (set by the last): the
        # column compare ran on through the tracker's comparison into its registers' enable
        # (an iCEBreaker longest path).
        first = Signal(init=1)
        with core.If(out.valid):
            core.d.sync += first.eq(out.payload.last)
        core.d.comb += [
            b.tracker.inp.valid.eq(out.valid),
            b.tracker.inp.payload.value.eq(out.payload.value),
            b.tracker.inp.payload.first.eq(first),
            b.scores.w_stream.valid.eq(out.valid & kind.last),
            b.scores.w_stream.payload.eq(out.payload.value),
        ]
        if b.histories is not None:
            core.d.comb += [b.histories.inp.valid.eq(out.valid & kind.writes_history),
                            b.histories.write_to.eq(layer),
                            b.histories.inp.payload.eq(out.payload.value),
                            b.histories.entry_min.eq(b.tracker.xmin),
                            b.histories.entry_max.eq(b.tracker.xmax)]
        if act_wr is not None:
            h = self.act_depth
            core.d.comb += [
                act_wr.en.eq(out.valid & ~kind.last & ~kind.writes_history),
                act_wr.addr.eq(Mux(layer[0], h, 0) + out.payload.column),
                act_wr.data.eq(out.payload.value),
            ]
        if self.trace:
            m.d.comb += [
                self.trace_valid.eq(out.valid),
                self.trace_layer.eq(layer),
                self.trace_index.eq(out.payload.column),
                self.trace_value.eq(out.payload.value),
            ]
