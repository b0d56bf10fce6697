"""MG-WFBP: merged-gradient WFBP (Shi et al., INFOCOM 2019; HKBU-HPML/MG-WFBP), ``mgwfbp``.

The merge rule walks the layers from the last to the first, keeping one bucket open. With
``taob[l]`` the start of layer ``l``'s backward op (relative to the start of the backward
pass), ``taoc[l]`` the time its all-reduce would start and ``tc[l]`` the all-reduce time of
the bytes it holds, layer ``l-1`` joins the open bucket when its gradient is ready before the
open bucket's all-reduce would end, and either that all-reduce would not have started yet or
waiting for ``l-1`` costs less than the all-reduce startup ``a``. Merging adds ``l-1``'s
bytes to the bucket and moves its all-reduce to ``l-1``.

The published pseudo-code recomputes all of ``taoc`` after each merge; the walk only ever reads
``taoc[l]`` once everything above ``l`` is final, so computing it on arrival is the same
result in O(L) instead of O(L^2).
"""

from __future__ import annotations

from ..network import LinearCosts
from ..trace import Trace
from .base import Bucket, buckets_from_runs
from .registry import register
from .wfbp import WfbpFamily


def merge_rule(trace: Trace, costs: LinearCosts) -> list[list[int]]:
    """MG-WFBP's runs of layers (over all layers, in reverse order as they are formed)."""
    n = trace.num_layers
    b = trace.bwd
    p = list(trace.size)
    a = costs.startup

    la, lb = costs.allreduce.a, costs.allreduce.b
    live = costs.workers > 1

    def allreduce(nbytes: float) -> float:
        # costs.time(Op.ALLREDUCE, nbytes), the same floats, without its dispatch
        return la + lb * nbytes if live and nbytes > 0 else 0.0

    tc = [allreduce(x) for x in p]
    taob = [0.0] * n
    for layer in range(n - 2, -1, -1):
        taob[layer] = taob[layer + 1] + b[layer + 1]
    taoc = [0.0] * n
    taoc[n - 1] = taob[n - 1] + b[n - 1]
    runs: list[list[int]] = []
    current = [n - 1]
    for layer in range(n - 1, 0, -1):
        if layer < n - 1:
            taoc[layer] = max(taoc[layer + 1] + tc[layer + 1], taob[layer] + b[layer])
        ready = taob[layer - 1] + b[layer - 1]
        if ready < taoc[layer] + tc[layer] and (taoc[layer] > ready or ready - taoc[layer] < a):
            p[layer - 1] += p[layer]
            p[layer] = 0
            tc[layer] = 0.0
            tc[layer - 1] = allreduce(p[layer - 1])
            current.append(layer - 1)
        else:
            runs.append(current)
            current = [layer - 1]
    runs.append(current)
    return runs


@register
class MgWfbp(WfbpFamily):
    """MG-WFBP: merge a layer into the next-ready one when that hides startup costs."""

    name = "mgwfbp"
    summary = "MG-WFBP merge rule (Shi et al. 2019)"

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        return buckets_from_runs(trace, merge_rule(trace, costs))
