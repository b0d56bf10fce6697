"""WFBP: wait-free backpropagation, and the loop the whole WFBP family shares (SPEC 3.1).

Each iteration: the forward pass, then the backward pass in reverse layer order; a bucket of
gradients is posted to the link as one all-reduce the instant its last gradient is ready (its
lowest layer's backward op ends). A global barrier ends the iteration: the next forward starts
only when the backward has ended, every all-reduce has finished and the whole update
``sum(u)`` has run on the compute stream.

``wfbp`` itself uses one bucket per layer with a gradient (no tensor fusion). ``ddp``,
``mgwfbp`` and ``horovod`` change only how gradients are grouped and when they are posted.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator
from typing import Any

from .._types import NonNegInt
from ..engine import Simulation, Worker
from ..network import LinearCosts, Op
from ..trace import Trace
from .base import Bucket, Schedule, ScheduleOptions, explicit_buckets, make_bucket
from .registry import register


class WfbpOptions(ScheduleOptions):
    #: Explicit buckets as inclusive layer ranges (e.g. from the fusion search).
    buckets: list[tuple[NonNegInt, NonNegInt]] | None = None


class Poster:
    """Posts a worker's gradients and tells it what the iteration's barrier waits for.

    The default posts fixed buckets as soon as they are ready."""

    def __init__(self, buckets: list[Bucket]) -> None:
        self.buckets = buckets
        self.ready_at = {b.first: b for b in buckets}
        #: the layers after whose backward op :meth:`gradient_ready` has something to do
        self.ready_layers = frozenset(self.ready_at)
        self.sent: dict[tuple[int, int], list[Any]] = {}

    def gradient_ready(self, w: Worker, layer: int, it: int) -> None:
        b = self.ready_at.get(layer)
        if b is not None:
            ev = w.post(Op.ALLREDUCE, b.nbytes, it, b.layers)
            self.sent.setdefault((w.index, it), []).append(ev)

    def barrier(self, w: Worker, it: int) -> list[Any]:
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

    def plan(self, sim: Simulation) -> Poster:
        return Poster(self.buckets(sim.trace, sim.costs))

    def worker(self, sim: Simulation, w: Worker, plan: Poster) -> Generator[Any, Any, None]:
        n_layers = sim.trace.num_layers
        with_update = [layer for layer in range(n_layers) if sim.trace.update[layer] > 0]
        segments = backward_segments(n_layers, plan.ready_layers)
        for it in range(sim.iterations):
            # The previous iteration's update, then the forward pass: nothing in between
            # reacts to a single op, so they run as one stretch of the compute stream.
            ops = [("update", layer, it - 1) for layer in with_update] if it > 0 else []
            ops += [("fwd", layer, it) for layer in range(n_layers)]
            yield w.run(ops)
            for segment in segments:
                yield w.run([("bwd", layer, it) for layer in segment])
                plan.gradient_ready(w, segment[-1], it)
            for ev in plan.barrier(w, it):
                if not ev.processed:
                    yield ev
        if with_update:
            yield w.run([("update", layer, sim.iterations - 1) for layer in with_update])


def backward_segments(n_layers: int, stops: frozenset[int] | set[int]) -> list[list[int]]:
    """The backward pass (layers ``L-1..0``) cut after each layer in ``stops`` and after
    layer 0: the stretches of backward ops with nothing to react to inside them."""
    segments: list[list[int]] = []
    current: list[int] = []
    for layer in range(n_layers - 1, -1, -1):
        current.append(layer)
        if layer in stops or layer == 0:
            segments.append(current)
            current = []
    return segments


@register
class Wfbp(WfbpFamily):
    """One all-reduce per layer with a gradient, posted the instant it is ready."""

    name = "wfbp"
    summary = "wait-free backprop: one all-reduce per layer, no fusion"

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        return [make_bucket(trace, i, i) for i in trace.grad_layers]
