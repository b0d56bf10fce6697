"""Horovod's tensor fusion with its background cycle (``horovod``).

A coordinator (Horovod's rank 0) ticks at absolute times ``k * cycle_time_ms``. At a tick,
every gradient *tensor* that became ready on every worker at or before the tick and has not
been sent is packed, in ready order, into fusion buffers of at most ``fusion_threshold_mb``
MiB (a single larger tensor goes alone); the buffers are posted to the link in that order,
one all-reduce each. The iteration then ends with the WFBP family's global barrier.

Ticks are only simulated when something is waiting for one, which gives the same times as a
clock that ticks every cycle. Defaults are Horovod >= 0.21's (1 ms, 128 MiB). With explicit
``buckets`` the buffers are fixed: each bucket is posted alone at the first tick after it is
ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from .._types import PosFloat
from ..engine import Signal, Simulation, WorkerClass
from ..network import LinearCosts, Op
from ..trace import Trace
from ..units import MIB
from .base import Bucket, Rendezvous, explicit_buckets, grad_tensors, make_bucket
from .registry import register
from .wfbp import GradientPoster, WfbpFamily, WfbpOptions


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


@dataclass(frozen=True)
class Item:
    """What the coordinator packs: a gradient tensor, or a fixed bucket. ``key`` names it
    uniquely among the items of an iteration (the tag of a buffer that starts with it)."""

    first: int
    last: int
    nbytes: int
    key: int


class Coordinator(GradientPoster):
    """Collects readiness from every worker class, ticks, fuses and posts."""

    def __init__(
        self,
        sim: Simulation,
        items_at: dict[int, list[Item]],
        cycle_s: float,
        threshold_bytes: float,
        fuse: bool,
    ) -> None:
        self.sim = sim
        self.cycle = cycle_s
        self.threshold = threshold_bytes
        self.fuse = fuse
        self.items_at = items_at
        self.ready_layers = frozenset(items_at)
        self.n_items = sum(len(v) for v in items_at.values())
        self.everyone = Rendezvous(len(sim.classes))
        self.several = len(sim.classes) > 1
        self.ready: list[tuple[int, Item]] = []
        self.tick_armed = False
        self.remaining: dict[int, int] = {}
        self.done: dict[int, Signal] = {}

    # -- called by the workers' training loops
    def gradient_ready(self, w: WorkerClass, layer: int, it: int) -> None:
        items = self.items_at.get(layer)
        if not items or (self.several and not self.everyone.arrive((it, layer))):
            return
        if len(items) == 1:
            self.ready.append((it, items[0]))
        else:
            self.ready.extend([(it, item) for item in items])
        if not self.tick_armed:
            self.tick_armed = True
            k = next_tick(self.sim.now, self.cycle)
            self.sim.call_at(k * self.cycle, self._tick)

    def barrier(self, w: WorkerClass, it: int) -> list[Signal]:
        if self.n_items == 0:
            return []
        return [self._done(it)]

    # -- the background cycle
    def _done(self, it: int) -> Signal:
        ev = self.done.get(it)
        if ev is None:
            ev = self.done[it] = self.sim.signal()
            self.remaining[it] = self.n_items
        return ev

    def _tick(self) -> None:
        self.tick_armed = False
        ready, self.ready = self.ready, []
        buffers: list[tuple[int, list[Item]]] = []
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
            signal = None
            for w in self.sim.classes:
                signal = w.post(Op.ALLREDUCE, nbytes, it, layers, tag=items[0].key)
            assert signal is not None
            signal.on_done(partial(self._finished, it, len(items)))

    def _finished(self, it: int, count: int, _signal: Signal) -> None:
        self._done(it)
        self.remaining[it] -= count
        if self.remaining[it] == 0:
            self.done[it].fire()


@register
class Horovod(WfbpFamily):
    """Horovod: gradient tensors fused at each background-cycle tick, up to a threshold."""

    name = "horovod"
    summary = "Horovod tensor fusion (1 ms cycle, 128 MiB buffers)"
    Options = HorovodOptions

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        return [make_bucket(trace, i, i) for i in trace.grad_layers]

    def plan(self, sim: Simulation) -> GradientPoster:
        trace = sim.trace
        explicit = self.options.buckets is not None
        items_at: dict[int, list[Item]] = {}
        if explicit:
            for b in explicit_buckets(trace, self.options.buckets, "buckets"):
                items_at[b.first] = [Item(b.first, b.last, b.nbytes, b.first)]
        else:
            for layer, tensors in enumerate(grad_tensors(trace)):
                if tensors:
                    items_at[layer] = [Item(layer, layer, t.nbytes, t.gid) for t in tensors]
        return Coordinator(
            sim,
            items_at,
            self.options.cycle_time_ms / 1e3,
            self.options.fusion_threshold_mb * MIB,
            fuse=not explicit,
        )
