"""DeAR: decoupled all-reduce (Zhang et al., ICDCS 2023; lzhangbv/dear_pytorch), ``dear``.

Each all-reduce is split in two. The **reduce-scatter** of a fusion group is posted during
backpropagation, the instant all of the group's gradients are ready. The **all-gather** is
deferred to the next iteration's forward pass:

* barrier: the all-gather of ``G_0`` is posted once the backward pass has ended and every
  reduce-scatter of the iteration has finished;
* group ``G_j`` *opens* when its all-gather has finished and the forward op of the layer
  before it has ended; then ``G_j``'s layers run, each layer's update just before its
  forward op;
* the other all-gathers are posted by the ``prefetch`` rule:

  - ``chain`` (default): the all-gather of ``G_{j+1}`` is posted the instant the all-gather
    of ``G_j`` finishes, so they run back to back from the barrier. The public code does
    this on GPUs: the forward pre-hook of ``G_j`` blocks the host until ``G_j``'s all-gather
    is done and then posts ``G_{j+1}``'s, while the host runs far ahead of the GPU's forward
    ops;
  - ``next``: the all-gather of ``G_{j+1}`` is posted when ``G_j`` opens (exactly one ahead),
    as the same code behaves when the host waits for every op (on CPUs).

The public implementation launches a reduce-scatter from the gradient hook without making the
communication stream wait for the gradient (a race that can only look faster); dearsim keeps
the dependency: a reduce-scatter never starts before its gradients exist.

Fusion groups are runs of consecutive layers in forward order. The default is DeAR's greedy
threshold: walking the layers with gradients forward, a layer joins the current group if the
group is empty or the total stays *below* ``threshold_mb`` MiB (25 by default); otherwise it
starts a new group. ``threshold_mb: null`` gives every layer with a gradient its own group
("DeAR w/o TF"). Layers without parameters run with the group of the nearest layer with
parameters before them (layers before the first one run with ``G_0``). ``groups`` sets the
groups explicitly as layer ranges.

The very first iteration has nothing to gather.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Literal

from .._types import NonNegInt, PosFloat
from ..engine import Signal, Simulation, WorkerClass
from ..network import Op
from ..trace import Trace
from ..units import MIB
from .base import (
    Bucket,
    Schedule,
    ScheduleOptions,
    backward_ops,
    backward_segments,
    explicit_buckets,
    forward_ops,
    make_bucket,
)
from .registry import register


class DearOptions(ScheduleOptions):
    threshold_mb: PosFloat | None = 25.0
    #: Explicit fusion groups as inclusive layer ranges (overrides ``threshold_mb``).
    groups: list[tuple[NonNegInt, NonNegInt]] | None = None
    #: When the all-gathers after the first are posted: ``chain`` or ``next``.
    prefetch: Literal["chain", "next"] = "chain"


def greedy_groups(trace: Trace, threshold_mb: float | None) -> list[Bucket]:
    """DeAR's threshold grouping over the layers with gradients, in forward order."""
    grads = trace.grad_layers
    if threshold_mb is None:
        return [make_bucket(trace, i, i) for i in grads]
    limit = threshold_mb * MIB
    runs: list[list[int]] = []
    total = 0
    for layer in grads:
        if runs and total + trace.size[layer] < limit:
            runs[-1].append(layer)
            total += trace.size[layer]
        else:
            runs.append([layer])
            total = trace.size[layer]
    return [make_bucket(trace, r[0], r[-1]) for r in runs]


@register
class Dear(Schedule):
    """DeAR: reduce-scatter under backprop, all-gather under the next forward pass."""

    name = "dear"
    summary = "DeAR: reduce-scatter in BP, all-gather prefetched in next FF"
    Options = DearOptions

    def groups(self, trace: Trace) -> list[Bucket]:
        if self.options.groups is not None:
            return explicit_buckets(trace, self.options.groups, "groups")
        return greedy_groups(trace, self.options.threshold_mb)

    def plan(self, sim: Simulation) -> list[tuple[Bucket, range]]:
        """Each group with the layers whose forward ops run when it opens."""
        groups = self.groups(sim.trace)
        n = sim.trace.num_layers
        starts = [0] + [g.first for g in groups[1:]]
        ends = [s - 1 for s in starts[1:]] + [n - 1]
        return [(g, range(s, e + 1)) for g, s, e in zip(groups, starts, ends)]

    def worker(
        self, sim: Simulation, w: WorkerClass, plan: list[tuple[Bucket, range]]
    ) -> Generator[Signal, Any, None]:
        trace = sim.trace
        n_layers = trace.num_layers
        ready_at = {g.first: g for g, _ in plan}
        segments = backward_segments(n_layers, ready_at)
        chain = self.options.prefetch == "chain"
        m = len(plan)

        scatters: list[Signal] = []
        for it in range(sim.iterations):
            if it == 0 or not plan:
                yield w.run(forward_ops(trace, range(n_layers), it))
            else:
                for ev in scatters:
                    if not ev.done:
                        yield ev
                scatters = []
                gathers: list[Signal | None] = [None] * m

                def gather(j: int, it: int = it, gathers: list[Signal | None] = gathers) -> None:
                    group = plan[j][0]
                    sig = w.post(Op.ALL_GATHER, group.nbytes, it - 1, group.layers)
                    gathers[j] = sig
                    if chain and j + 1 < m:
                        sig.on_done(lambda _sig: gather(j + 1))

                gather(0)  # the barrier has passed
                for j, (_group, layers) in enumerate(plan):
                    sig = gathers[j]
                    assert sig is not None, "an all-gather is waited for before it was posted"
                    if not sig.done:
                        yield sig
                    if not chain and j + 1 < m:
                        gather(j + 1)
                    yield w.run(forward_ops(trace, layers, it))
            for segment in segments:
                yield w.run(backward_ops(segment, it))
                g = ready_at.get(segment[-1])
                if g is not None:
                    scatters.append(w.post(Op.REDUCE_SCATTER, g.nbytes, it, g.layers))
        for ev in scatters:
            if not ev.done:
                yield ev
