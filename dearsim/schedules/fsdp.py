"""FSDP / ZeRO-3: fully sharded data parallelism, ``fsdp`` (``docs/model.md``, 4.5).

Every worker keeps ``1/p`` of each unit's parameters. A unit is all-gathered before its
forward ops, freed after them, all-gathered again before its backward ops, and its gradient
is reduce-scattered as soon as it is computed; the optimiser step runs after the backward
pass on the shards. The model follows PyTorch FSDP (``torch/distributed/fsdp``,
``_runtime_utils.py``) with its defaults:

* ``sharding_strategy=FULL_SHARD`` (reshard after forward), except that the **root** unit is
  not freed after the forward ("with the intention that they are immediately used for
  backward computation"), so it has no all-gather in the backward pass. The root is ``U_0``,
  the unit holding layer 0 (the root's own parameters are the first the forward needs);
* ``forward_prefetch=False``: the host thread issues a unit's all-gather in the unit's
  pre-forward hook; it runs ahead of the GPU, so that is as soon as the rate limiter allows;
* ``backward_prefetch=BACKWARD_PRE``: the pre-backward hook of ``U_j`` all-gathers ``U_j``
  if it was not prefetched, then prefetches ``U_{j-1}`` (the next unit in backward order);
* ``limit_all_gathers=True``: every free of a unit's parameters (a reshard) records an event
  on the compute stream; before issuing an all-gather the host waits for the oldest such
  event once two are queued (``_FreeEventQueue``, at most two all-gathers in flight);
* units are the wrapped modules; here fusion groups of consecutive layers, formed by DeAR's
  threshold rule (``threshold_mb``, default 25 MiB; ``null``: one unit per layer with a
  gradient) or given as ``groups``.

Host (one per worker class and iteration, started when the iteration may begin: after the
previous barrier and update): forward hooks ``U_0..U_{m-1}`` (limiter, post the all-gather;
post-forward free of every unit but the root, whose event is its forward ops' end); then the
backward hooks ``U_{m-1}..U_0`` (limiter and all-gather of ``U_j`` unless prefetched or the
root; limiter and prefetch of ``U_{j-1}`` unless it is the root; post-backward free of
``U_j``, whose event is its gradient's readiness). GPU: each unit's forward ops wait for its
all-gather and the previous unit's ops; each unit's backward ops wait for its backward
all-gather; the reduce-scatter of ``U_j`` is posted when its gradients are ready; the barrier
waits for the backward pass and every reduce-scatter, then the whole update runs.

All-gathers carry tag 0 in the forward pass and tag 1 in the backward pass. Both evaluators
run this schedule (:mod:`dearsim.fast` replays the host's rate limiter and merges the
reduce-scatters into the link by the time they are fully posted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

from .._types import NonNegInt, PosFloat
from ..engine import BWD, Signal, Simulation, WorkerClass
from ..network import Op
from ..trace import Trace
from .base import (
    Bucket,
    Schedule,
    ScheduleOptions,
    explicit_buckets,
    forward_ops,
    layers_with_updates,
    update_ops,
)
from .dear import greedy_groups
from .registry import register

#: PyTorch FSDP's rate limit: at most this many frees pending before an all-gather waits.
MAX_INFLIGHT_ALL_GATHERS = 2


class FsdpOptions(ScheduleOptions):
    #: Units by DeAR's greedy threshold (MiB); ``null``: one unit per layer with a gradient.
    threshold_mb: PosFloat | None = 25.0
    #: Explicit units as inclusive layer ranges (overrides ``threshold_mb``).
    groups: list[tuple[NonNegInt, NonNegInt]] | None = None
    #: ``BACKWARD_PRE`` (PyTorch's default) prefetches the next unit's all-gather in the
    #: pre-backward hook; ``false`` turns prefetching off.
    backward_prefetch: bool = True
    #: PyTorch's ``limit_all_gathers`` (default True).
    limit_all_gathers: bool = True


@register
class Fsdp(Schedule):
    """FSDP FULL_SHARD: all-gather in forward and backward, reduce-scatter of gradients."""

    name = "fsdp"
    summary = "FSDP/ZeRO-3: all-gather per unit in FF and BP, reduce-scatter of gradients"
    Options = FsdpOptions

    def units(self, trace: Trace) -> list[Bucket]:
        if self.options.groups is not None:
            return explicit_buckets(trace, self.options.groups, "groups")
        return greedy_groups(trace, self.options.threshold_mb)

    def plan(self, sim: Simulation) -> list[tuple[Bucket, range]]:
        """Each unit with the layers whose ops it owns (as DeAR's groups)."""
        units = self.units(sim.trace)
        n = sim.trace.num_layers
        starts = [0] + [u.first for u in units[1:]]
        ends = [s - 1 for s in starts[1:]] + [n - 1]
        return [(u, range(s, e + 1)) for u, s, e in zip(units, starts, ends)]

    def worker(
        self, sim: Simulation, w: WorkerClass, plan: list[tuple[Bucket, range]]
    ) -> Generator[Signal, Any, None]:
        trace = sim.trace
        n_layers = trace.num_layers
        updated = layers_with_updates(trace)
        m = len(plan)
        queue: deque[Signal] = deque()  # the host's free events, across iterations
        for it in range(sim.iterations):
            if m == 0:
                yield w.run(forward_ops(trace, range(n_layers), it, with_updates=False))
                yield w.run([(BWD, layer, it) for layer in range(n_layers - 1, -1, -1)])
            else:
                fwd_done = [sim.signal() for _ in range(m)]
                grads = [sim.signal() for _ in range(m)]
                ag_f = [sim.signal() for _ in range(m)]
                ag_b = [sim.signal() for _ in range(m)]
                sim.process(self._host(sim, w, it, plan, queue, fwd_done, grads, ag_f, ag_b))
                for j, (_unit, layers) in enumerate(plan):
                    yield from _wait_posted(ag_f[j])
                    yield w.run(forward_ops(trace, layers, it, with_updates=False))
                    fwd_done[j].fire()
                scatters: list[Signal] = []
                for j in range(m - 1, -1, -1):
                    unit, layers = plan[j]
                    if j != 0:
                        yield from _wait_posted(ag_b[j])
                    top = [(BWD, layer, it) for layer in reversed(layers) if layer >= unit.first]
                    rest = [(BWD, layer, it) for layer in reversed(layers) if layer < unit.first]
                    yield w.run(top)
                    scatters.append(w.post(Op.REDUCE_SCATTER, unit.nbytes, it, unit.layers))
                    grads[j].fire()
                    if rest:
                        yield w.run(rest)
                for ev in scatters:
                    if not ev.done:
                        yield ev
            if updated:
                yield w.run(update_ops(updated, it))

    def _host(
        self,
        sim: Simulation,
        w: WorkerClass,
        it: int,
        plan: list[tuple[Bucket, range]],
        queue: deque[Signal],
        fwd_done: list[Signal],
        grads: list[Signal],
        ag_f: list[Signal],
        ag_b: list[Signal],
    ) -> Generator[Signal, Any, None]:
        """The host thread of one iteration: it issues the all-gathers as soon as the rate
        limiter lets it, and queues the free events."""
        limit = MAX_INFLIGHT_ALL_GATHERS if self.options.limit_all_gathers else None
        m = len(plan)

        def limiter() -> Generator[Signal, Any, None]:
            if limit is not None and len(queue) >= limit:
                ev = queue.popleft()
                if not ev.done:
                    yield ev

        def gather(j: int, tag: int, posted: Signal) -> None:
            unit = plan[j][0]
            posted.fire(w.post(Op.ALL_GATHER, unit.nbytes, it, unit.layers, tag))

        for j in range(m):  # forward hooks
            yield from limiter()
            gather(j, 0, ag_f[j])
            if j != 0:  # post-forward reshard; the root keeps its parameters
                queue.append(fwd_done[j])
        prefetched: set[int] = set()
        for j in range(m - 1, -1, -1):  # backward hooks
            if j != 0 and j not in prefetched:
                yield from limiter()
                gather(j, 1, ag_b[j])
            if self.options.backward_prefetch and j - 1 >= 1:
                yield from limiter()
                gather(j - 1, 1, ag_b[j - 1])
                prefetched.add(j - 1)
            queue.append(grads[j])  # post-backward reshard (the root too)


def _wait_posted(posted: Signal) -> Generator[Signal, Any, None]:
    """Wait until the host has posted a collective, then until it has finished."""
    if not posted.done:
        yield posted
    sig = posted.value
    if not sig.done:
        yield sig
