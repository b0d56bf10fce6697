"""Horovod's tensor fusion with its background cycle (SPEC 3.1, ``horovod``).

A coordinator (Horovod's rank 0) ticks at absolute times ``k * cycle_time_ms``. At a tick,
every gradient that became ready on every worker at or before the tick and has not been sent
is packed, in ready order, into fusion buffers of at most ``fusion_threshold_mb`` MiB (a
single larger gradient goes alone); the buffers are posted to the link in that order, one
all-reduce each. The iteration then ends with the WFBP family's global barrier.

Ticks are only simulated when something is waiting for one, which gives the same times as a
clock that ticks every cycle. Defaults are Horovod >= 0.21's (1 ms, 128 MiB). With explicit
``buckets`` the buffers are fixed: each bucket is posted alone at the first tick after it is
ready.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from simpy.events import Event

from .._types import PosFloat
from ..engine import Simulation, Worker
from ..network import LinearCosts, Op
from ..trace import Trace
from .base import Bucket, explicit_buckets, make_bucket
from .registry import register
from .wfbp import WfbpFamily, WfbpOptions

MIB = 1 << 20


class HorovodOptions(WfbpOptions):
    cycle_time_ms: PosFloat = 1.0
    fusion_threshold_mb: PosFloat = 128.0


def next_tick(now: float, cycle: float) -> int:
    """The smallest ``k`` with ``k * cycle >= now``."""
    k = math.ceil(now / cycle)
    while k > 0 and (k - 1) * cycle >= now:
        k -= 1
    while k * cycle < now:
        k += 1
    return k


class Coordinator:
    """Collects readiness from every worker class, ticks, fuses and posts."""

    def __init__(
        self,
        sim: Simulation,
        items: list[Bucket],
        cycle_s: float,
        threshold_bytes: float,
        fuse: bool,
    ) -> None:
        self.sim = sim
        self.cycle = cycle_s
        self.threshold = threshold_bytes
        self.fuse = fuse
        self.item_at = {b.first: b for b in items}
        self.ready_layers = frozenset(self.item_at)
        self.n_items = len(items)
        self.classes = len(sim.workers)
        self.arrived: dict[tuple[int, int], int] = {}
        self.ready: list[tuple[int, Bucket]] = []
        self.tick_armed = False
        self.remaining: dict[int, int] = {}
        self.done: dict[int, Event] = {}

    # -- called by the workers' training loops
    def gradient_ready(self, w: Worker, layer: int, it: int) -> None:
        item = self.item_at.get(layer)
        if item is None:
            return
        key = (it, layer)
        count = self.arrived.get(key, 0) + 1
        if count < self.classes:
            self.arrived[key] = count
            return
        self.arrived.pop(key, None)
        self.ready.append((it, item))
        if not self.tick_armed:
            self.tick_armed = True
            k = next_tick(self.sim.env.now, self.cycle)
            self.sim.call_at(k * self.cycle, self._tick)

    def barrier(self, w: Worker, it: int) -> list[Any]:
        if self.n_items == 0:
            return []
        return [self._done(it)]

    # -- the background cycle
    def _done(self, it: int) -> Event:
        ev = self.done.get(it)
        if ev is None:
            ev = self.done[it] = Event(self.sim.env)
            self.remaining[it] = self.n_items
        return ev

    def _tick(self) -> None:
        self.tick_armed = False
        ready, self.ready = self.ready, []
        buffers: list[tuple[int, list[Bucket]]] = []
        filled = 0
        for it, item in ready:
            last = buffers[-1] if buffers else None
            if (
                self.fuse
                and last is not None
                and last[0] == it
                and filled + item.nbytes <= self.threshold
            ):
                last[1].append(item)
                filled += item.nbytes
            else:
                buffers.append((it, [item]))
                filled = item.nbytes
        for it, items in buffers:
            nbytes = sum(b.nbytes for b in items)
            layers = (min(b.first for b in items), max(b.last for b in items))
            ev = None
            for w in self.sim.workers:
                ev = w.post(Op.ALLREDUCE, nbytes, it, layers)
            assert ev is not None
            ev.callbacks.append(partial(self._finished, it, len(items)))

    def _finished(self, it: int, count: int, _event: Event) -> None:
        self._done(it)
        self.remaining[it] -= count
        if self.remaining[it] == 0:
            self.done[it].succeed()


@register
class Horovod(WfbpFamily):
    """Horovod: gradients fused at each background-cycle tick, up to a size threshold."""

    name = "horovod"
    summary = "Horovod tensor fusion (1 ms cycle, 128 MiB buffers)"
    Options = HorovodOptions

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        return [make_bucket(trace, i, i) for i in trace.grad_layers]

    def plan(self, sim: Simulation) -> Coordinator:  # type: ignore[override]
        explicit = self.options.buckets is not None
        items = (
            explicit_buckets(sim.trace, self.options.buckets, "buckets")
            if explicit
            else self.default_buckets(sim.trace, sim.costs)
        )
        return Coordinator(
            sim,
            items,
            self.options.cycle_time_ms / 1e3,
            self.options.fusion_threshold_mb * MIB,
            fuse=not explicit,
        )
