"""DeAR: decoupled all-reduce (Zhang et al., ICDCS 2023; SPEC 3.3, ``dear``).

Each all-reduce is split in two. The **reduce-scatter** of a fusion group is posted during
backpropagation, the instant all of the group's gradients are ready. The **all-gather** is
deferred to the next iteration's forward pass:

* barrier: the all-gather of ``G_0`` is posted once the backward pass has ended and every
  reduce-scatter of the iteration has finished;
* group ``G_j`` *opens* when its all-gather has finished and the forward op of the layer
  before it has ended; at that moment the all-gather of ``G_{j+1}`` is posted (one all-gather
  prefetched ahead) and ``G_j``'s layers run, each layer's update just before its forward op.

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
from typing import Any

from .._types import NonNegInt, PosFloat
from ..engine import Simulation, Worker
from ..network import Op
from ..trace import Trace
from .base import Bucket, Schedule, ScheduleOptions, explicit_buckets, make_bucket
from .registry import register
from .wfbp import backward_segments

MIB = 1 << 20


class DearOptions(ScheduleOptions):
    threshold_mb: PosFloat | None = 25.0
    #: Explicit fusion groups as inclusive layer ranges (overrides ``threshold_mb``).
    groups: list[tuple[NonNegInt, NonNegInt]] | None = None


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
        self, sim: Simulation, w: Worker, plan: list[tuple[Bucket, range]]
    ) -> Generator[Any, Any, None]:
        trace = sim.trace
        n_layers = trace.num_layers
        ready_at = {g.first: g for g, _ in plan}
        segments = backward_segments(n_layers, set(ready_at))

        def forward_ops(layers: range, it: int) -> list[tuple[str, int, int]]:
            ops = []
            for layer in layers:
                if it > 0 and trace.update[layer] > 0:
                    ops.append(("update", layer, it - 1))
                ops.append(("fwd", layer, it))
            return ops

        scatters: list[Any] = []
        for it in range(sim.iterations):
            if it == 0 or not plan:
                yield w.run(forward_ops(range(n_layers), it))
            else:
                for ev in scatters:
                    if not ev.processed:
                        yield ev
                scatters = []
                first = plan[0][0]
                gather = w.post(Op.ALL_GATHER, first.nbytes, it - 1, first.layers)
                for j, (_group, layers) in enumerate(plan):
                    if not gather.processed:
                        yield gather
                    if j + 1 < len(plan):
                        nxt = plan[j + 1][0]
                        gather = w.post(Op.ALL_GATHER, nxt.nbytes, it - 1, nxt.layers)
                    yield w.run(forward_ops(layers, it))
            for segment in segments:
                yield w.run([("bwd", layer, it) for layer in segment])
                g = ready_at.get(segment[-1])
                if g is not None:
                    scatters.append(w.post(Op.REDUCE_SCATTER, g.nbytes, it, g.layers))
        for ev in scatters:
            if not ev.processed:
                yield ev
