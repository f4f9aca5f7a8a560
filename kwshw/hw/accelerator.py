"""The accelerator top: feature frames in, scores out, bit-exact with :mod:`kwshw.golden`.

Block diagram (one frame; ``docs/hardware.md`` has the schedule and the widths)::

    feat ──> Window ──(layer 0)──┐               weights (P codes/word)
               │ min/max reduce  ├─> Requantizer ──> MACArray ──> Scaler ──┬─> activations
               v                 │    ^ RECIP          P lanes     ^ RM,XLO │   (ping-pong)
          FrameDivider <─────────┼────┴────────────────────────────┘       ├─> MinMax ─┐
               ^                 └── activations (layers 1..)              └─> score FIFO ──> score
               └──────────────────────────────────────────────────────────────────────┘
                                            Sequencer (layers, passes, timing)

The external interface is fixed (the host link and the board tops connect to it):
``feat`` (signed 16, ``n_mels`` values per frame, band order; after the last one an inference
runs), ``score`` (signed 16, ``n_out`` per frame, class order, back-pressure honoured),
``clear`` (one-cycle pulse: empty the window, drop any partial frame, running inference and
unread scores), and with ``memory="spram"`` a ``load`` stream of packed weight words.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import arith
from ..arith import ACT_WIDTH
from ..modelfile import Model
from .common import check_lanes, check_plans, delay, max_width
from .mac_array import MACArray
from .memories import MEMORY_KINDS, WeightMemory, const_bits, weight_words
from .minmax import MinMax
from .requant import FrameDivider, Requantizer, divider_latency
from .scaler import Scaler
from .sequencer import Sequencer, frame_cycles, layer_schedules
from .window import Window, reduce_latency, window_bits

__all__ = ["Accelerator", "PIPELINE_LATENCY", "schedule_cycles"]

#: Cycles from a read being issued to the scaler output of its hold-bank lane 0.
PIPELINE_LATENCY = (Window.READ_LATENCY + Requantizer.LATENCY + MACArray.LATENCY
                    + Scaler.LATENCY)


def schedule_cycles(model: Model, lanes: int, *, radix_bits: int = 2) -> dict[str, int]:
    """The static timing of an :class:`Accelerator` build, without building it.

    Returns
    -------
    dict
        ``ideal`` (``sum ceil(n_out / P) * n_in``), ``per_frame`` (exact, see
        :func:`kwshw.hw.sequencer.frame_cycles`), ``divider_latency`` and ``pipeline_latency``.
    """
    plans = model.plans()
    schedules = layer_schedules(plans, lanes)
    div = max(divider_latency(max_width(plans, "recip"), radix_bits),
              divider_latency(max_width(plans, "step"), radix_bits))
    return {
        "ideal": sum(s.ideal_cycles for s in schedules),
        "per_frame": frame_cycles(schedules, reduce_latency=reduce_latency(model.features),
                                  divider_latency=div, pipeline_latency=PIPELINE_LATENCY),
        "divider_latency": div,
        "pipeline_latency": PIPELINE_LATENCY,
    }


class Accelerator(wiring.Component):
    """Keyword-spotting accelerator for one quantized model.

    Parameters
    ----------
    model : Model
        The quantized network; its weights and constants are built into the memories.
    lanes : int
        MAC lanes ``P`` (a power of two).
    memory : {"bram", "spram"}
        Weight memory style (see :mod:`kwshw.hw.memories`).
    trace : bool
        Add the observation port ``trace_*`` (for test benches).
    radix_bits : int
        Quotient bits per cycle of the frame dividers.

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
        Packed weight words (:func:`kwshw.hw.memories.weight_words`), address 0 first.
        ``feat`` stays not ready until every word has been loaded once.
    trace_valid, trace_layer, trace_index, trace_value : Signal, out (``trace=True`` only)
        Pulses with every layer output ``y_j`` as the scaler produces it.
    """

    def __init__(self, model: Model, lanes: int, memory: str = "bram", trace: bool = False,
                 *, radix_bits: int = 2) -> None:
        try:
            check_lanes(lanes)
            if memory not in MEMORY_KINDS:
                raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {memory!r}")
            arith.check_bits(model.bits)
            if model.layers[0].n_in != model.features.n_inputs:
                raise ValueError(f"layer 0 has {model.layers[0].n_in} inputs, the feature "
                                 f"window gives {model.features.n_inputs}")
        except ValueError:
            # A rejected configuration is not an "unused elaboratable": no warning later.
            self._MustUse__silence = True
            raise
        self.model = model
        self.lanes = lanes
        self.memory = memory
        self.trace = trace
        self.plans = model.plans()
        self.bits = check_plans(self.plans)
        self.schedules = layer_schedules(self.plans, lanes)
        self.word_width = lanes * self.bits
        self._words = weight_words(self.plans, lanes)
        self._radix_bits = radix_bits
        hidden = [p.n_out for p in self.plans[:-1]]
        self.act_depth = max(hidden, default=0)
        n_layers = len(self.plans)
        n_out = self.plans[-1].n_out

        members = {
            "feat": In(stream.Signature(signed(ACT_WIDTH))),
            "score": Out(stream.Signature(signed(ACT_WIDTH))),
            "clear": In(1),
        }
        if memory == "spram":
            members["load"] = In(stream.Signature(unsigned(self.word_width)))
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
        return PIPELINE_LATENCY

    @property
    def divider_latency(self) -> int:
        return max(divider_latency(max_width(self.plans, "recip"), self._radix_bits),
                   divider_latency(max_width(self.plans, "step"), self._radix_bits))

    @property
    def cycles_per_frame(self) -> int:
        """Exact cycles per frame of the sequencer's schedule (see :func:`frame_cycles`)."""
        return frame_cycles(self.schedules, reduce_latency=reduce_latency(self.model.features),
                            divider_latency=self.divider_latency,
                            pipeline_latency=self.pipeline_latency)

    @property
    def ideal_cycles(self) -> int:
        """``sum over layers of ceil(n_out / P) * n_in``."""
        return sum(s.ideal_cycles for s in self.schedules)

    def memory_bits(self) -> dict[str, int]:
        """On-chip memory by kind, in bits."""
        return {
            "weights": len(self._words) * self.word_width,
            "constants": const_bits(self.plans),
            "window": window_bits(self.model.features),
            "activations": 2 * self.act_depth * ACT_WIDTH,
            "scores": self._n_out * ACT_WIDTH,
        }

    def weight_load_words(self) -> list[int]:
        """The words to send on ``load`` (SPRAM builds), in order."""
        return list(self._words)

    # --- Hardware ------------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        core = Module()     # everything that `clear` restarts
        plans, lanes, bits = self.plans, self.lanes, self.bits
        last_layer = len(plans) - 1

        # The weight memory survives `clear` (the SPRAM load state).
        m.submodules.weights = wmem = WeightMemory(self._words, self.word_width, self.memory)
        core.submodules.window = window = Window(self.model.features)
        core.submodules.sequencer = seq = Sequencer(self.schedules, lanes)
        core.submodules.divider = div = FrameDivider(
            bits, max_width(plans, "range"), max_width(plans, "recip"),
            max_width(plans, "step"), radix_bits=self._radix_bits)
        core.submodules.requant = req = Requantizer(bits, max_width(plans, "range"),
                                                    max_width(plans, "recip"))
        core.submodules.mac = mac = MACArray(lanes, bits, max_width(plans, "acc"),
                                             max_width(plans, "psum"))
        core.submodules.scaler = scaler = Scaler(plans)
        core.submodules.tracker = tracker = MinMax()
        # An unbuffered FIFO: when empty it takes `n_out` writes on consecutive cycles
        # (a buffered one of depth 2 drops the second while moving the first to its output).
        core.submodules.scores = scores = fifo.SyncFIFO(width=ACT_WIDTH, depth=self._n_out)
        m.submodules.core = ResetInserter(self.clear)(core)

        # Host side: frames in, scores out.
        loaded = wmem.loaded if self.memory == "spram" else 1
        if self.memory == "spram":
            wiring.connect(m, wiring.flipped(self.load), wmem.load)
        m.d.comb += [
            window.feat.payload.eq(self.feat.payload),
            window.feat.valid.eq(self.feat.valid & loaded),
            self.feat.ready.eq(window.feat.ready & loaded),
            self.score.payload.eq(scores.r_data),
            self.score.valid.eq(scores.r_rdy),
            scores.r_en.eq(self.score.ready),
        ]

        # Sequencer, window reduce and dividers.
        layer = seq.layer
        first_layer = layer == 0
        src_xmin = Mux(first_layer, window.xmin, tracker.xmin)
        src_range = Mux(first_layer, window.xmax - window.xmin, tracker.range)
        xlo = Signal(signed(ACT_WIDTH))
        with core.If(seq.div_start):
            core.d.sync += xlo.eq(src_xmin)
        core.d.comb += [
            seq.frame_valid.eq(window.frame_valid),
            window.take.eq(seq.take),
            seq.mm_done.eq(window.mm_done),
            div.start.eq(seq.div_start),
            div.range.eq(src_range),
            seq.div_done.eq(div.done),
            seq.out_room.eq(scores.level == 0),
            seq.layer_done.eq(scaler.out.valid & scaler.out.payload.last),
        ]

        # Reads: layer 0 from the window, later layers from the activation buffer half the
        # previous layer wrote (layer l writes half l % 2 and reads half (l - 1) % 2).
        issue = seq.issue
        h = self.act_depth
        core.d.comb += [
            window.rd_en.eq(issue.valid & first_layer),
            window.rd_first.eq(issue.payload.first),
        ]
        act_data = 0
        if h:
            core.submodules.acts = acts = memory.Memory(shape=signed(ACT_WIDTH), depth=2 * h,
                                                        init=[])
            act_rd, act_wr = acts.read_port(), acts.write_port()
            core.d.comb += act_rd.addr.eq(Mux(layer[0], 0, h) + issue.payload.index)
            act_data = act_rd.data
        read_valid = delay(core, issue.valid, Window.READ_LATENCY, name="read_valid")
        core.d.comb += [
            req.x.valid.eq(read_valid),
            req.x.payload.eq(Mux(first_layer, window.rd_data, act_data)),
            req.xlo.eq(xlo),
            req.recip.eq(div.recip),
        ]

        # MAC array: the code meets its weight word and the pass flags.
        lag = Window.READ_LATENCY + Requantizer.LATENCY
        core.d.comb += [
            wmem.addr.eq(delay(core, seq.weight_addr, lag - 1, name="waddr")),
            mac.inp.valid.eq(req.code.valid),
            mac.inp.payload.code.eq(req.code.payload),
            mac.inp.payload.weights.eq(wmem.data),
            mac.inp.payload.first.eq(delay(core, issue.payload.first, lag, name="first")),
            mac.inp.payload.last.eq(delay(core, issue.payload.last, lag, name="last")),
            mac.inp.payload.cols.eq(delay(core, issue.payload.cols, lag, name="cols")),
        ]

        # Results leave the hold bank in column order; count the columns of the layer.
        column = Signal.like(scaler.inp.payload.column)
        last_col = Signal()
        with core.Switch(layer):
            for k, plan in enumerate(plans):
                with core.Case(k):
                    core.d.comb += last_col.eq(column == plan.n_out - 1)
        with core.If(mac.result.valid):
            core.d.sync += column.eq(Mux(last_col, 0, column + 1))
        core.d.comb += [
            scaler.inp.valid.eq(mac.result.valid),
            scaler.inp.payload.acc.eq(mac.result.payload.acc),
            scaler.inp.payload.column.eq(column),
            scaler.inp.payload.last.eq(last_col),
            scaler.layer.eq(layer),
            scaler.psum.eq(mac.psum),
            scaler.step.eq(div.step),
            scaler.xlo.eq(xlo),
        ]

        # Outputs: min/max for the next layer, the activation buffer or the scores.
        out = scaler.out
        core.d.comb += [
            tracker.inp.valid.eq(out.valid),
            tracker.inp.payload.value.eq(out.payload.value),
            tracker.inp.payload.first.eq(out.payload.column == 0),
            scores.w_en.eq(out.valid & (layer == last_layer)),
            scores.w_data.eq(out.payload.value),
        ]
        if h:
            core.d.comb += [
                act_wr.en.eq(out.valid & (layer != last_layer)),
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
        return m
