"""WFBP: wait-free backpropagation, and the loop the whole WFBP family shares.

Each iteration: the forward pass, then the backward pass in reverse layer order; gradients
are posted to the link as all-reduces the instant they are ready. A global barrier ends the
iteration: the next forward starts only when the backward has ended, every all-reduce has
finished and the whole update ``sum(u)`` has run on the compute stream.

``wfbp`` itself does no fusion: one all-reduce per gradient *tensor* (what PyTorch and
Horovod do without fusion), a layer's tensors in the trace's order; without a per-tensor
breakdown, one per layer with a gradient. ``ddp`` and ``mgwfbp`` post fixed buckets of layers
instead, ``horovod`` fuses what is ready at each tick of its background cycle: each plugs a
:class:`GradientPoster` into the same loop.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator
from typing import Any, Protocol

from .._types import NonNegInt
from ..engine import BWD, Range, Signal, Simulation, WorkerClass
from ..network import LinearCosts, Op
from ..trace import Trace
from .base import (
    Bucket,
    Schedule,
    ScheduleOptions,
    backward_segments,
    explicit_buckets,
    forward_ops,
    grad_tensors,
    layers_with_updates,
    make_bucket,
    update_ops,
)
from .registry import register


class WfbpOptions(ScheduleOptions):
    #: Explicit buckets as inclusive layer ranges (e.g. from the fusion search).
    buckets: list[tuple[NonNegInt, NonNegInt]] | None = None


class GradientPoster(Protocol):
    """How a WFBP-family schedule sends gradients: told when a layer's gradient is ready, it
    posts collectives; the barrier waits for what it returns."""

    #: the layers after whose backward op :meth:`gradient_ready` has something to do
    ready_layers: frozenset[int]

    def gradient_ready(self, w: WorkerClass, layer: int, it: int) -> None: ...

    def barrier(self, w: WorkerClass, it: int) -> list[Signal]: ...


class FixedMessages:
    """Posts fixed messages as soon as their gradients are ready: for each ready layer, the
    all-reduces ``(nbytes, layers, tag)`` it completes, in posting order."""

    def __init__(self, messages: dict[int, list[tuple[int, Range, int]]]) -> None:
        self.messages = messages
        self.ready_layers = frozenset(messages)
        self.sent: dict[tuple[int, int], list[Signal]] = {}

    @classmethod
    def of_buckets(cls, buckets: list[Bucket]) -> FixedMessages:
        """One all-reduce per bucket, posted when its lowest gradient layer is ready."""
        return cls({b.first: [(b.nbytes, b.layers, 0)] for b in buckets})

    def gradient_ready(self, w: WorkerClass, layer: int, it: int) -> None:
        for nbytes, layers, tag in self.messages.get(layer, ()):
            ev = w.post(Op.ALLREDUCE, nbytes, it, layers, tag)
            self.sent.setdefault((w.index, it), []).append(ev)

    def barrier(self, w: WorkerClass, it: int) -> list[Signal]:
        return self.sent.pop((w.index, it), [])


class WfbpFamily(Schedule):
    """The shared training loop of the WFBP family."""

    Options = WfbpOptions

    @abstractmethod
    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        """The schedule's own grouping of the layers with gradients, in forward order."""

    def buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        """Explicit buckets if given, else :meth:`default_buckets`."""
        if self.options.buckets is not None:
            return explicit_buckets(trace, self.options.buckets, "buckets")
        return self.default_buckets(trace, costs)

    def plan(self, sim: Simulation) -> GradientPoster:
        return FixedMessages.of_buckets(self.buckets(sim.trace, sim.costs))

    def worker(
        self, sim: Simulation, w: WorkerClass, plan: GradientPoster
    ) -> Generator[Signal, Any, None]:
        trace = sim.trace
        n_layers = trace.num_layers
        segments = backward_segments(n_layers, plan.ready_layers)
        updated = layers_with_updates(trace)
        for it in range(sim.iterations):
            # The previous iteration's update, then the forward pass: nothing in between
            # reacts to a single op, so they run as one stretch of the compute stream.
            ops = update_ops(updated, it - 1) if it > 0 else []
            ops += forward_ops(trace, range(n_layers), it, with_updates=False)
            yield w.run(ops)
            for segment in segments:
                # base.backward_ops, written out: this is the hottest loop of the WFBP
                # family (a call per segment measured ~2% of a Horovod run)
                yield w.run([(BWD, layer, it) for layer in segment])
                plan.gradient_ready(w, segment[-1], it)
            for ev in plan.barrier(w, it):
                if not ev.done:
                    yield ev
        last = update_ops(updated, sim.iterations - 1)
        if last:
            yield w.run(last)


@register
class Wfbp(WfbpFamily):
    """One all-reduce per gradient tensor, posted the instant it is ready."""

    name = "wfbp"
    summary = "wait-free backprop: one all-reduce per gradient tensor, no fusion"

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        return [make_bucket(trace, i, i) for i in trace.grad_layers]

    def plan(self, sim: Simulation) -> GradientPoster:
        if self.options.buckets is not None:
            return super().plan(sim)
        return FixedMessages(
            {
                layer: [(t.nbytes, (layer, layer), t.index) for t in tensors]
                for layer, tensors in enumerate(grad_tensors(sim.trace))
                if tensors
            }
        )
