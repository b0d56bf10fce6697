"""ByteScheduler: priority scheduling of gradient chunks with credits (Peng et al., SOSP 2019;
SPEC 3.2, ``bytescheduler``).

There is no global barrier. Each layer's gradient is cut into ``ceil(s / partition_bytes)``
chunks (full chunks, then the remainder), each its own all-reduce. A chunk enters a priority
queue when its layer's gradient is ready; lower layer index goes first, then lower chunk
index (the next forward pass needs the input-side layers first).

Credit: starting from ``credit_bytes``, whenever the credit is above zero and the queue is not
empty, the highest-priority chunk is posted and its size taken off the credit (which may go
below zero); when a chunk's all-reduce finishes its size is given back, never above the full
credit. Posted chunks run on the link in posting order and are never preempted.

When every chunk of layer ``l`` has finished, ``l``'s update runs on the compute stream just
before ``l``'s next forward op, which cannot start earlier: the next forward pass overlaps the
rest of the communication.

The real ByteScheduler counts partition and credit in parameters (defaults 1M / 4M; the DeAR
study ran 4M / 16M parameters, i.e. 16 MB / 64 MB of fp32 gradients, the defaults here).
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from functools import partial
from typing import Any

from simpy.events import Event

from .._types import PosInt
from ..engine import Simulation, Worker
from ..network import Op
from .base import Schedule, ScheduleOptions
from .registry import register
from .wfbp import backward_segments


class ByteSchedulerOptions(ScheduleOptions):
    partition_bytes: PosInt = 16_000_000
    credit_bytes: PosInt = 64_000_000


def chunk_sizes(nbytes: int, partition: int) -> list[int]:
    """``nbytes`` cut into chunks of ``partition`` bytes, the remainder last."""
    if nbytes <= 0:
        return []
    full, rest = divmod(nbytes, partition)
    return [partition] * full + ([rest] if rest else [])


class Core:
    """The ByteScheduler core: the priority queue and the credit.

    With identical workers this is each worker's own core. With workers of different speeds
    one core serves them all, like a coordinator: a chunk enters the queue once its gradient
    is ready on every worker, so all workers post chunks in one order. (Independent cores
    would post in different orders and, like NCCL, wait on each other forever.)"""

    def __init__(self, sim: Simulation, chunks: list[list[int]], credit: int) -> None:
        self.sim = sim
        self.chunks = chunks
        self.full = credit
        self.credit = credit
        self.queue: list[tuple[int, int, int, int]] = []
        self.arrived: dict[tuple[int, int], int] = {}
        self.left: dict[tuple[int, int], int] = {}
        self.finished: set[tuple[int, int]] = set()
        self.waiting: dict[tuple[int, int], Event] = {}

    def gradient_ready(self, it: int, layer: int) -> None:
        """A worker class has ``layer``'s gradient of ``it``; queue its chunks once all have."""
        key = (it, layer)
        count = self.arrived.get(key, 0) + 1
        if count < len(self.sim.workers):
            self.arrived[key] = count
            return
        self.arrived.pop(key, None)
        self.left[key] = len(self.chunks[layer])
        for k, size in enumerate(self.chunks[layer]):
            heapq.heappush(self.queue, (it, layer, k, size))
        self._dispatch()

    def busy(self, it: int, layer: int) -> bool:
        """Whether ``layer``'s gradient of ``it`` still has a chunk to finish."""
        return bool(self.chunks[layer]) and (it, layer) not in self.finished

    def wait(self, it: int, layer: int) -> Event:
        """An event that fires when every chunk of ``layer``'s gradient has finished."""
        ev = self.waiting.get((it, layer))
        if ev is None:
            ev = self.waiting[(it, layer)] = Event(self.sim.env)
        return ev

    def _dispatch(self) -> None:
        while self.credit > 0 and self.queue:
            it, layer, k, size = heapq.heappop(self.queue)
            self.credit -= size
            ev = None
            for w in self.sim.workers:
                ev = w.post(Op.ALLREDUCE, size, it, (layer, layer), tag=k)
            assert ev is not None
            ev.callbacks.append(partial(self._done, it, layer, size))

    def _done(self, it: int, layer: int, size: int, _event: Event) -> None:
        self.credit = min(self.full, self.credit + size)
        key = (it, layer)
        self.left[key] -= 1
        if self.left[key] == 0:
            del self.left[key]
            self.finished.add(key)
            ev = self.waiting.pop(key, None)
            if ev is not None:
                ev.succeed()
        self._dispatch()


@register
class ByteScheduler(Schedule):
    """ByteScheduler: chunked, prioritised, credit-limited all-reduces; no barrier."""

    name = "bytescheduler"
    summary = "ByteScheduler: chunks by priority under a credit, no barrier"
    Options = ByteSchedulerOptions

    def plan(self, sim: Simulation) -> Core:
        part = self.options.partition_bytes
        chunks = [chunk_sizes(s, part) for s in sim.trace.size]
        return Core(sim, chunks, self.options.credit_bytes)

    def worker(self, sim: Simulation, w: Worker, core: Core) -> Generator[Any, Any, None]:
        trace = sim.trace
        n_layers = trace.num_layers
        has_chunks = {i for i in range(n_layers) if core.chunks[i]}
        segments = backward_segments(n_layers, has_chunks)

        for it in range(sim.iterations):
            layer = 0
            while layer < n_layers:
                if it > 0 and core.busy(it - 1, layer):
                    yield core.wait(it - 1, layer)
                # Run on, without another event, through every layer whose chunks are done.
                ops: list[tuple[str, int, int]] = []
                while True:
                    if it > 0 and trace.update[layer] > 0:
                        ops.append(("update", layer, it - 1))
                    ops.append(("fwd", layer, it))
                    layer += 1
                    if layer == n_layers or (it > 0 and core.busy(it - 1, layer)):
                        break
                yield w.run(ops)
            for segment in segments:
                yield w.run([("bwd", layer, it) for layer in segment])
                if segment[-1] in has_chunks:
                    core.gradient_ready(it, segment[-1])
        last_it = sim.iterations - 1
        for layer in range(n_layers):
            if core.busy(last_it, layer):
                yield core.wait(last_it, layer)
