"""An independent oracle: the timeline of the statically grouped schedules, written straight
from the rules of ``docs/model.md`` (the network and the schedules) in plain Python (no
SimPy, nothing imported from dearsim).

Every worker has a compute-stream clock; the link is one ``free_at`` time. Because a worker
posts its collectives in a fixed program order, and a collective starts when every worker
has posted it and the link is free, a FIFO link reduces to
``start = max(time the last worker posted it, free_at)``, taken in program order.

* ``wfbp_timeline``: the WFBP family with given buckets (``ddp``, ``mgwfbp``, explicit
  buckets) or per-tensor messages (``wfbp``: ``tensor_messages``);
* ``dear_timeline``: DeAR with given fusion groups and either prefetch rule;
* ``ddp_buckets`` and ``dear_groups``: the two size-based grouping rules.

A worker is described by its compute-time multiplier (``slowdown``), one entry per worker.
Timelines return ``(bp_end, log)``: the end of every iteration's backward pass (the latest
over the workers) and the link's collectives in order as
``(op, nbytes, iteration, (first, last), start, end)``.
"""

from __future__ import annotations

MIB = 1 << 20


def ring_costs(p, alpha, beta, gamma=0.0):
    """The ring collective times for ``p`` workers, as functions of the message size."""
    k = (p - 1) / p

    def cost(steps, per_byte):
        return lambda n: 0.0 if p == 1 or n <= 0 else steps * (p - 1) * alpha + k * n * per_byte

    return {
        "allreduce": cost(2, 2 * beta + gamma),
        "reduce_scatter": cost(1, beta + gamma),
        "all_gather": cost(1, beta),
    }


class Link:
    """One link shared by every collective, run one at a time in posting order."""

    def __init__(self, costs):
        self.costs = costs
        self.free_at = 0.0
        self.log = []

    def run(self, op, nbytes, iteration, layers, posted):
        start = max(posted, self.free_at)
        end = start + self.costs[op](nbytes)
        self.free_at = end
        self.log.append((op, nbytes, iteration, tuple(layers), start, end))
        return end


def _grad_layers(size, lo, hi):
    return [i for i in range(lo, hi + 1) if size[i] > 0]


def _forward(clock, f, k, layers):
    t = clock
    for layer in layers:
        t += f[layer] * k
    return t


def _backward(clock, b, k, n_layers):
    """Run the backward pass from ``clock``; returns the time each gradient is ready."""
    ready = [0.0] * n_layers
    t = clock
    for layer in range(n_layers - 1, -1, -1):
        t += b[layer] * k
        ready[layer] = t
    return ready


def tensor_messages(tensors):
    """``wfbp``'s messages: one per gradient tensor, ``(ready layer, bytes, (l, l))``, in
    posting order (layers from last to first, a layer's tensors in their order)."""
    return [
        (layer, nbytes, (layer, layer))
        for layer in range(len(tensors) - 1, -1, -1)
        for nbytes in tensors[layer]
    ]


def wfbp_timeline(f, b, s, u, buckets, costs, iterations, slowdown=(1.0,), messages=None):
    """The WFBP family: forward, backward; each bucket's all-reduce is posted when its last
    gradient (its lowest gradient layer's) is ready; a global barrier waits for the backward
    pass, every all-reduce and then runs the whole update ``sum(u)``. ``messages`` (from
    :func:`tensor_messages`) replaces the buckets."""
    n = len(f)
    link = Link(costs)
    if messages is not None:
        info = list(messages)
    else:
        # Buckets become ready in backward order: the one whose lowest gradient layer is
        # highest first.
        info = []
        for lo, hi in buckets:
            grads = _grad_layers(s, lo, hi)
            info.append((grads[0], sum(s[i] for i in grads), (lo, hi)))
        info.sort(key=lambda x: -x[0])
    clock = [0.0] * len(slowdown)
    bp_end = []
    for it in range(iterations):
        ready = []
        for w, k in enumerate(slowdown):
            r = _backward(_forward(clock[w], f, k, range(n)), b, k, n)
            clock[w] = r[0]
            ready.append(r)
        bp_end.append(max(clock))
        ends = [
            link.run("allreduce", nbytes, it, layers, max(r[first] for r in ready))
            for first, nbytes, layers in info
        ]
        for w, k in enumerate(slowdown):
            t = max([clock[w], *ends])
            for layer in range(n):
                t += u[layer] * k
            clock[w] = t
    return bp_end, link.log


def dear_timeline(f, b, s, u, groups, costs, iterations, slowdown=(1.0,), prefetch="chain"):
    """DeAR: reduce-scatter of a group posted when its gradients are ready; barrier; the
    all-gather of G_0 posted once the backward pass ended and every reduce-scatter finished;
    G_j opens when its all-gather finished and the previous forward op ended and runs its
    layers (update before forward). ``chain``: the all-gather of G_{j+1} is posted when
    G_j's finishes; ``next``: when G_j opens."""
    n = len(f)
    m = len(groups)
    link = Link(costs)
    first = [_grad_layers(s, lo, hi)[0] for lo, hi in groups]
    nbytes = [sum(s[i] for i in _grad_layers(s, lo, hi)) for lo, hi in groups]
    # The layers whose forward ops run when G_j opens: from its first gradient layer (layer 0
    # for G_0) up to the layer before G_{j+1}'s first gradient layer.
    starts = [0] + first[1:]
    runs = [range(starts[j], (starts[j + 1] if j + 1 < m else n)) for j in range(m)]
    layers = [tuple(g) for g in groups]
    clock = [0.0] * len(slowdown)
    scatter_ends = []
    bp_end = []
    for it in range(iterations):
        if it == 0 or m == 0:  # the very first iteration has nothing to gather
            for w, k in enumerate(slowdown):
                t = clock[w]
                for layer in range(n):
                    if it > 0:
                        t += u[layer] * k
                    t += f[layer] * k
                clock[w] = t
        else:
            posted = max(clock + scatter_ends)  # the barrier
            gathered = link.run("all_gather", nbytes[0], it - 1, layers[0], posted)
            if prefetch == "chain":  # nothing else is on the link: back to back
                chained = [gathered]
                for j in range(1, m):
                    chained.append(
                        link.run("all_gather", nbytes[j], it - 1, layers[j], chained[-1])
                    )
            for j in range(m):
                if prefetch == "chain":
                    gathered = chained[j]
                opened = [max(c, gathered) for c in clock]
                if prefetch == "next" and j + 1 < m:
                    gathered = link.run(
                        "all_gather", nbytes[j + 1], it - 1, layers[j + 1], max(opened)
                    )
                for w, k in enumerate(slowdown):
                    t = opened[w]
                    for layer in runs[j]:
                        t += u[layer] * k
                        t += f[layer] * k
                    clock[w] = t
        ready = []
        for w, k in enumerate(slowdown):
            r = _backward(clock[w], b, k, n)
            clock[w] = r[0]
            ready.append(r)
        bp_end.append(max(clock))
        scatter_ends = [
            link.run("reduce_scatter", nbytes[j], it, layers[j], max(r[first[j]] for r in ready))
            for j in range(m - 1, -1, -1)
        ]
    return bp_end, link.log


def period(bp_end, warmup):
    """The mean interval between consecutive backward-pass ends after warm-up."""
    return (bp_end[-1] - bp_end[warmup]) / (len(bp_end) - 1 - warmup)


# --------------------------------------------------------------------------- grouping rules

def ddp_buckets(s, first_bucket_mb=None, bucket_cap_mb=None):
    """ddp: fill buckets in reverse layer order; the first closes when it reaches its limit,
    later ones at the cap (25 MiB unless given); the first limit is ``first_bucket_mb`` if
    given, else the cap if the cap was given, else 1 MiB. Returned in forward order."""
    if first_bucket_mb is None:
        first_bucket_mb = 1.0 if bucket_cap_mb is None else bucket_cap_mb
    if bucket_cap_mb is None:
        bucket_cap_mb = 25.0
    buckets, current, filled = [], [], 0
    limit = first_bucket_mb * MIB
    for layer in range(len(s) - 1, -1, -1):
        if s[layer] <= 0:
            continue
        current.append(layer)
        filled += s[layer]
        if filled >= limit:
            buckets.append((min(current), max(current)))
            current, filled, limit = [], 0, bucket_cap_mb * MIB
    if current:
        buckets.append((min(current), max(current)))
    return sorted(buckets)


def dear_groups(s, threshold_mb=25.0):
    """dear: walk gradient layers forward; join the current group while empty or its
    total stays below the threshold; ``None`` gives every gradient layer its own group."""
    groups, total = [], 0
    for layer in range(len(s)):
        if s[layer] <= 0:
            continue
        if groups and threshold_mb is not None and total + s[layer] < threshold_mb * MIB:
            groups[-1][1] = layer
            total += s[layer]
        else:
            groups.append([layer, layer])
            total = s[layer]
    return [tuple(g) for g in groups]
