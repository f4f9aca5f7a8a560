"""cocotb drivers and monitors for Amaranth ``lib.stream`` valid/ready interfaces.

Timing discipline (the same in Icarus and Verilator, whose value-read semantics right
after a clock edge differ): inputs are written right after a rising edge, and every
transfer decision is taken at the *falling* edge, when the design has settled and the
values are exactly those the next rising edge samples. A stream transfers on a rising
edge where ``valid & ready``.

To keep simulations fast the coroutines only wake every cycle while an interface is
active; while waiting for a partner they sleep on a value change of the partner's signal.

Randomness (input gaps, back-pressure) comes from a ``random.Random`` the caller seeds,
so every run is reproducible from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import cocotb
from cocotb.triggers import Event, FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

__all__ = [
    "Clocking",
    "StreamSource",
    "StreamSink",
    "ValidMonitor",
    "signal_value",
]


def signal_value(handle, signed: bool = False, allow_x: bool = False) -> int | None:
    """Integer value of a signal; with X/Z bits ``None`` if ``allow_x``, else ``ValueError``."""
    v = handle.value
    try:
        if signed and hasattr(v, "to_signed"):
            return v.to_signed()
        return int(v)        # 1-bit signals give a Logic, wider ones a LogicArray
    except ValueError:
        if allow_x:
            return None
        raise


class Clocking:
    """The clock of a testbench: period and cycle count from simulation time."""

    def __init__(self, clk, period_ns: int = 10):
        self.clk = clk
        self.period_ns = period_ns

    def start(self):
        from cocotb.clock import Clock

        return Clock(self.clk, self.period_ns, unit="ns").start(start_high=False)

    def cycle(self) -> int:
        """``floor(t / period)``: rising edge ``k`` happens at ``t = (k + 1/2) period``, so
        right after it this is ``k``, and after the following falling edge already ``k + 1``
        (the edge that will sample the values then present)."""
        return int(get_sim_time(unit="ns") // self.period_ns)

    async def cycles(self, n: int) -> None:
        """Sleep ``n`` rising edges without waking Python each cycle; returns right after the
        ``n``-th rising edge from now."""
        clk = self.clk
        if n <= 0:
            return
        if n <= 2:
            for _ in range(n):
                await RisingEdge(clk)
            return
        period, half = self.period_ns, self.period_ns / 2
        t = get_sim_time(unit="ns")
        k = int((t - half) // period) + 1 if t >= half else 0
        target = half + (k + n - 1) * period            # time of the n-th rising edge
        delay = target - half - t                       # sleep until the falling edge before it
        if delay > 0:
            await Timer(delay, unit="ns")
        await RisingEdge(clk)


class StreamSource:
    """Drive values into a stream (``valid``/``ready``/``payload``) with optional random gaps.

    Parameters
    ----------
    clocking : Clocking
    valid, ready, payload : signal handles
    rng : random.Random
        Source of the input gaps.
    gap_prob : float
        Probability that, before a value, the source idles (``valid`` low).
    max_gap : int
        Longest idle stretch in cycles (uniform 1..max_gap).
    """

    def __init__(self, clocking: Clocking, valid, ready, payload, *, rng: random.Random,
                 gap_prob: float = 0.0, max_gap: int = 4, signed: bool = True):
        self.clk = clocking
        self.valid, self.ready, self.payload = valid, ready, payload
        self.rng = rng
        self.gap_prob = gap_prob
        self.max_gap = max_gap
        self.width = len(payload)
        self.sent = 0
        self.last_accept_cycle = -1
        self.on_progress: Callable[[], None] | None = None
        self.valid.value = 0

    def _encode(self, v: int) -> int:
        return int(v) & ((1 << self.width) - 1)

    async def send(self, values: Iterable[int], on_accept: Callable[[int], None] | None = None,
                   abort: Event | None = None) -> int:
        """Send ``values``; returns how many were accepted (fewer only if ``abort`` is set).

        Must be called right after a rising edge (or at start-up). Returns right after the
        rising edge that accepted the last value, with ``valid`` low again.
        """
        n = 0
        for v in values:
            if self.gap_prob and self.rng.random() < self.gap_prob:
                self.valid.value = 0
                await self.clk.cycles(self.rng.randint(1, self.max_gap))
            self.payload.value = self._encode(v)
            self.valid.value = 1
            while True:
                await FallingEdge(self.clk.clk)
                if abort is not None and abort.is_set():
                    self.valid.value = 0
                    return n
                if self.ready.value == 1:
                    await RisingEdge(self.clk.clk)    # the transfer happens here
                    break
                # Sleep until ready rises (no per-cycle wake-ups during long computations).
                await RisingEdge(self.ready)
            n += 1
            self.sent += 1
            if self.on_progress is not None:
                self.on_progress()
            self.last_accept_cycle = self.clk.cycle()
            if on_accept is not None:
                on_accept(n)
        self.valid.value = 0
        return n


class StreamSink:
    """Receive a stream with optional random back-pressure; every transfer is recorded
    (a payload with X/Z bits as ``None``).

    ``ready`` is held low for random stretches (probability ``stall_prob`` per value, 1..
    ``max_stall`` cycles) while data is offered; ``callback(value, cycle)`` sees each value.
    """

    def __init__(self, clocking: Clocking, valid, ready, payload, *, rng: random.Random,
                 stall_prob: float = 0.0, max_stall: int = 4, signed: bool = True,
                 callback: Callable[[int, int], None] | None = None):
        self.clk = clocking
        self.valid, self.ready, self.payload = valid, ready, payload
        self.rng = rng
        self.stall_prob = stall_prob
        self.max_stall = max_stall
        self.signed = signed
        self.callback = callback
        self.received: list[int] = []
        self.cycles: list[int] = []
        self._task = None
        self.ready.value = 0

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.ready.value = 0

    async def _run(self):
        clk = self.clk.clk
        self.ready.value = 1
        while True:
            await FallingEdge(clk)
            if self.valid.value != 1:
                # Idle: sleep until data is offered; then maybe refuse it for a while.
                await RisingEdge(self.valid)
                if self.stall_prob and self.rng.random() < self.stall_prob:
                    self.ready.value = 0
                    await self.clk.cycles(self.rng.randint(1, self.max_stall))
                    self.ready.value = 1
                continue
            # valid & ready at this falling edge: the next rising edge transfers.
            value = signal_value(self.payload, self.signed, allow_x=True)
            await RisingEdge(clk)
            cyc = self.clk.cycle()
            self.received.append(value)
            self.cycles.append(cyc)
            if self.callback is not None:
                self.callback(value, cyc)
            if self.stall_prob and self.rng.random() < self.stall_prob:
                self.ready.value = 0
                await self.clk.cycles(self.rng.randint(1, self.max_stall))
                self.ready.value = 1


class ValidMonitor:
    """Record every cycle in which a valid-only port (no back-pressure) has ``valid`` high
    (fields with X/Z bits as ``None``).

    ``fields`` maps names to ``(handle, signed)``; each record is a dict of their values
    plus ``cycle``; ``callback(record)`` sees each record.
    """

    def __init__(self, clocking: Clocking, valid, fields: dict, *,
                 callback: Callable[[dict], None] | None = None):
        self.clk = clocking
        self.valid = valid
        self.fields = fields
        self.callback = callback
        self.records: list[dict] = []
        self._task = None

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        clk = self.clk.clk
        while True:
            await FallingEdge(clk)
            if self.valid.value != 1:
                await RisingEdge(self.valid)
                continue
            rec = {name: signal_value(h, s, allow_x=True) for name, (h, s) in self.fields.items()}
            # At this falling edge the cycle count already names the next rising edge: the
            # one that samples these values.
            rec["cycle"] = self.clk.cycle()
            self.records.append(rec)
            if self.callback is not None:
                self.callback(rec)
