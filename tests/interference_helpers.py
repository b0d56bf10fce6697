"""Shared by the interference tests (``test_interference.py``: compute slowed by
communication; ``test_comm_interference.py``: both ways): the hand-worked workload, small
helpers, and an independent fluid simulation of the WFBP family written from the rules of
docs/model.md 2.6."""

from __future__ import annotations

import math
from collections import deque

from hypothesis import strategies as st
from strategies import ALL_SCHEDULES, partitions

import dearsim

EVERY = ALL_SCHEDULES + ("fsdp",)
MS = 1e-3
ITERS, WARMUP = 8, 2
NET = dearsim.AlphaBeta(0.0, 1e-9)  # p = 2: an all-reduce of n bytes takes n ns

# f = [1, 1], b = [2, 1] ms, layer 1 has 1.5e6 B: its all-reduce takes 1.5 ms alone.
ONE_AR = dearsim.Trace.from_layers([1 * MS, 1 * MS], [2 * MS, 1 * MS], [0, 1_500_000])


def sim(trace, net, workers, name="wfbp", options=None, **kw):
    kw.setdefault("iterations", ITERS)
    kw.setdefault("warmup", WARMUP)
    return dearsim.simulate(trace, net, workers, name, dict(options or {}), **kw)


def ops_of(result, worker=0):
    return [o for o in result.raw.ops if o.worker == worker]


def ms(*times):
    """Times in ms, rounded to 1e-9 ms: sums of 1e-3 s are not exact in binary."""
    out = tuple(round(t / MS, 9) for t in times)
    return out[0] if len(out) == 1 else out


def span(op):
    """An op record as (kind, layer, start ms, end ms)."""
    return (op.kind, op.layer, *ms(op.start, op.end))


def ring_allreduce(net, p):
    """The ring all-reduce's time of docs/model.md 2.1, written out."""
    def cost(nbytes):
        q = (p - 1) / p
        return 2 * (p - 1) * net.alpha + 2 * q * nbytes * net.beta + q * nbytes * net.gamma

    return cost


def wfbp_messages(trace, data, per_tensor=None):
    """A WFBP-family run to check: per-tensor ``wfbp`` or ``ddp`` with drawn buckets (drawn
    when ``per_tensor`` is None). Returns ``(name, options, messages)``, ``messages`` as
    ``(ready layer, bytes)`` in posting order."""
    if per_tensor is None:
        per_tensor = data.draw(st.booleans(), label="per tensor")
    if per_tensor:
        return "wfbp", {}, [(layer, nb) for layer in range(trace.num_layers - 1, -1, -1)
                            for nb in trace.tensors[layer]]
    buckets = data.draw(partitions(trace), label="buckets")
    messages = []
    for lo, hi in sorted(buckets, key=lambda b: -b[0]):
        grads = [i for i in range(lo, hi + 1) if trace.size[i] > 0]
        messages.append((grads[0], sum(trace.size[i] for i in grads)))
    return "ddp", {"buckets": buckets}, messages


def fluid_wfbp(trace, messages, cost, slowdown, x, iterations, y=0.0):
    """The WFBP family on workers of any speeds with both interferences, as a fluid
    simulation written from the rule: time moves from event to event (an op ending, a
    collective ending); in between every running op does 1/(1+x) s of work a second while a
    collective is in flight (1 otherwise), and the collective in flight 1/(1+y) while any
    worker computes (1 otherwise). A message goes on the link (a FIFO) when the last worker
    posts it; at one instant ops end before collectives; a worker's next iteration starts
    when its backward pass has ended and every all-reduce of the iteration has finished.
    ``messages``: ``(ready layer, bytes)`` in posting order. Returns each worker's
    backward-pass ends, ``[worker][iteration]``."""
    kx, ky = 1 + x, 1 + y
    n = trace.num_layers
    classes = range(len(slowdown))

    def program(c):
        for it in range(iterations):
            if it > 0:
                for u in trace.update:
                    yield ("op", u * slowdown[c], None)
            for f in trace.fwd:
                yield ("op", f * slowdown[c], None)
            for layer in range(n - 1, -1, -1):
                yield ("op", trace.bwd[layer] * slowdown[c], (it, layer))
                for m, (ready, _) in enumerate(messages):
                    if ready == layer:
                        yield ("post", it * len(messages) + m, None)
            yield ("barrier", it, None)

    progs = [program(c) for c in classes]
    left: list = [None for _ in classes]
    running: list = [None for _ in classes]
    waiting: list = [None for _ in classes]
    posted: dict = {}
    ended: set = set()
    link: deque = deque()  # [message, work left]; the head is in flight
    t = 0.0
    bp = [[0.0] * iterations for _ in classes]
    finished = [False for _ in classes]

    def advance(c):
        while True:
            if waiting[c] is not None:
                it = waiting[c]
                if not all(m in ended for m in range(it * len(messages),
                                                     (it + 1) * len(messages))):
                    return
                waiting[c] = None
            step = next(progs[c], None)
            if step is None:
                finished[c] = True
                return
            kind, value, tag = step
            if kind == "op":
                running[c], left[c] = tag, value
                if value > 0:
                    return
                end_op(c)
            elif kind == "post":
                posted[value] = posted.get(value, 0) + 1
                if posted[value] == len(slowdown):
                    link.append([value, cost(messages[value % len(messages)][1])])
            else:
                waiting[c] = value

    def end_op(c):
        tag = running[c]
        if tag is not None and tag[1] == 0:
            bp[c][tag[0]] = t
        running[c] = left[c] = None

    for c in classes:
        advance(c)
    while not all(finished):
        active = [c for c in classes if left[c] is not None]
        fc = kx if link else 1.0
        fl = ky if active else 1.0
        if not active and not link:  # everyone waits at a barrier that has opened
            for c in classes:
                advance(c)
            continue
        ends = {c: t + left[c] * fc for c in active}
        link_end = t + link[0][1] * fl if link else math.inf
        horizon = min([link_end, *ends.values()])
        for c in active:
            left[c] = 0.0 if ends[c] == horizon else left[c] - (horizon - t) / fc
        if link:
            link[0][1] = 0.0 if link_end == horizon else link[0][1] - (horizon - t) / fl
        t = horizon
        for c in classes:  # ops end first, and whoever can go on posts
            if left[c] == 0.0:
                end_op(c)
        for c in classes:
            if left[c] is None and not finished[c] and waiting[c] is None:
                advance(c)
        if link and link[0][1] == 0.0:  # then the collective ends
            ended.add(link.popleft()[0])
        for c in classes:
            if left[c] is None and not finished[c]:
                advance(c)
    return bp
