"""ByteScheduler: priority scheduling of gradient chunks with credits (Peng et al., SOSP 2019;
bytedance/byteps, branch bytescheduler), ``bytescheduler``.

There is no global barrier. Each gradient *tensor* is cut into ``ceil(n / partition_bytes)``
chunks (full chunks, then the remainder), each its own all-reduce (without a per-tensor
breakdown in the trace, each layer is one tensor). A chunk enters a priority queue when its
layer's gradient is ready; lower layer index goes first, then lower tensor index, then lower
chunk index (the next forward pass needs the input-side layers first).

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

from .._types import PosInt
from ..engine import ComputeOp, Signal, Simulation, WorkerClass
from ..network import Op
from .base import (
    Rendezvous,
    Schedule,
    ScheduleOptions,
    backward_ops,
    backward_segments,
    forward_ops,
)
from .registry import register


class ByteSchedulerOptions(ScheduleOptions):
    partition_bytes: PosInt = 16_000_000
    credit_bytes: PosInt = 64_000_000


def chunk_sizes(nbytes: int, partition: int) -> list[int]:
    """``nbytes`` cut into chunks of ``partition`` bytes, the remainder last."""
    if nbytes <= 0:
        return []
    full, rest = divmod(nbytes, partition)
    return [partition] * full + ([rest] if rest else [])


def layer_chunks(tensors: tuple[int, ...], partition: int) -> list[int]:
    """A layer's chunks in priority order: tensor by tensor, each cut into chunks. A chunk's
    position in this list is its tag (tensor-major, so the order is (tensor, chunk))."""
    return [c for nbytes in tensors for c in chunk_sizes(nbytes, partition)]


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
        self.everyone = Rendezvous(len(sim.classes))
        self.left: dict[tuple[int, int], int] = {}
        self.finished: set[tuple[int, int]] = set()
        self.waiting: dict[tuple[int, int], Signal] = {}

    def gradient_ready(self, it: int, layer: int) -> None:
        """A worker class has ``layer``'s gradient of ``it``; queue its chunks once all have."""
        key = (it, layer)
        if not self.everyone.arrive(key):
            return
        self.left[key] = len(self.chunks[layer])
        for k, size in enumerate(self.chunks[layer]):
            heapq.heappush(self.queue, (it, layer, k, size))
        self._dispatch()

    def busy(self, it: int, layer: int) -> bool:
        """Whether ``layer``'s gradient of ``it`` still has a chunk to finish."""
        return bool(self.chunks[layer]) and (it, layer) not in self.finished

    def wait(self, it: int, layer: int) -> Signal:
        """A signal that fires when every chunk of ``layer``'s gradient has finished."""
        ev = self.waiting.get((it, layer))
        if ev is None:
            ev = self.waiting[(it, layer)] = self.sim.signal()
        return ev

    def _dispatch(self) -> None:
        while self.credit > 0 and self.queue:
            it, layer, k, size = heapq.heappop(self.queue)
            self.credit -= size
            signal = None
            for w in self.sim.classes:
                signal = w.post(Op.ALLREDUCE, size, it, (layer, layer), tag=k)
            assert signal is not None
            signal.on_done(partial(self._done, it, layer, size))

    def _done(self, it: int, layer: int, size: int, _signal: Signal) -> None:
        self.credit = min(self.full, self.credit + size)
        key = (it, layer)
        self.left[key] -= 1
        if self.left[key] == 0:
            del self.left[key]
            self.finished.add(key)
            ev = self.waiting.pop(key, None)
            if ev is not None:
                ev.fire()
        self._dispatch()


@register
class ByteScheduler(Schedule):
    """ByteScheduler: chunked, prioritised, credit-limited all-reduces; no barrier."""

    name = "bytescheduler"
    summary = "ByteScheduler: chunks by priority under a credit, no barrier"
    Options = ByteSchedulerOptions

    def plan(self, sim: Simulation) -> Core:
        part = self.options.partition_bytes
        chunks = [layer_chunks(t, part) for t in sim.trace.tensors]
        return Core(sim, chunks, self.options.credit_bytes)

    def worker(self, sim: Simulation, w: WorkerClass, core: Core) -> Generator[Signal, Any, None]:
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
                start = layer
                while True:
                    layer += 1
                    if layer == n_layers or (it > 0 and core.busy(it - 1, layer)):
                        break
                ops: list[ComputeOp] = forward_ops(trace, range(start, layer), it)
                yield w.run(ops)
            for segment in segments:
                yield w.run(backward_ops(segment, it))
                if segment[-1] in has_chunks:
                    core.gradient_ready(it, segment[-1])
        last_it = sim.iterations - 1
        for layer in range(n_layers):
            if core.busy(last_it, layer):
                yield core.wait(last_it, layer)
