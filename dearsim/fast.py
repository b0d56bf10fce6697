"""A fast evaluator of every schedule, without SimPy: the same run as :mod:`dearsim.engine`,
computed with numpy over whole iterations instead of one event at a time.

:func:`run` returns a :class:`FastRun` (the backward-pass ends, the compute busy time and the
collectives of every iteration); :func:`measure` turns it into the same
:class:`~dearsim.result.Result` as :func:`dearsim.result.measure`, and :func:`simulate` mirrors
:func:`dearsim.simulate`. Worker classes of different speeds are rows of one array, so a
cluster of 1024 distinct speeds costs one computation, not 1024 processes.

How each schedule is computed (the rules are those of the schedule modules):

* **Compute streams.** A worker class runs its ops in stretches (the engine's
  :meth:`~dearsim.engine.WorkerClass.run`); a stretch that starts at ``t`` ends at
  ``t + (d_1 + d_2 + ...)``. The evaluator sums each stretch in the same order
  (``np.add.accumulate`` is sequential), so the times at which gradients become ready are
  the engine's to the last bit: the decisions that compare times (Horovod's ticks,
  ByteScheduler's credit at an instant) see the same numbers.
* **The link** is a FIFO whose collectives have known post times ``P`` and durations ``d``:
  ``end_k = max(P_k, end_{k-1}) + d_k``, i.e. ``end = S + maximum.accumulate(P - S_prev)``
  with ``S`` the running sum of the durations (equal to the engine's times up to rounding).
* **WFBP family** (``wfbp``, ``ddp``, ``mgwfbp``, explicit buckets) and **DeAR**: the
  barrier leaves the link empty, so an iteration depends only on when each worker class
  starts it. Iterations are computed one by one until the classes start one in the same
  relative position as the previous one; from then on every iteration is the previous one
  shifted by the same period (identical workers: from the second iteration on).
* **Horovod**: the ticks are at absolute times ``k * cycle``, so every iteration is computed,
  vectorised within it: a gradient goes with the tick ``next_tick(ready)``; a tick's tensors
  share one buffer when they fit the threshold (a Python scan splits the rare tick that does
  not fit).
* **ByteScheduler**: when the credit never stops a chunk (checked, vectorised, for the whole
  iteration), every chunk is posted the instant its gradient is ready; otherwise a tight
  Python event loop replays the queue and the credit for that iteration. The next forward
  pass's per-layer waits are a ``maximum.accumulate``. Every iteration is computed (no
  shifted copies): its posting order compares absolute times, which must round as the
  engine's do.
* **FSDP**: which free event each of the host's all-gathers waits for (the rate limiter)
  depends only on how many events the host finds queued when an iteration starts, so the
  host's program is replayed once per queue length. An iteration is then one pass over its
  all-gathers in posting order, vectorised over the worker classes (a single class uses
  plain floats): each unit's forward ops, or backward ops up to its gradient, follow its
  all-gather; the reduce-scatters are merged into the link by the time they are fully
  posted, before an all-gather fully posted at the same instant (the engine handles the
  compute end that posts a reduce-scatter before the event that resumes the host). Every
  iteration is computed: the merge compares absolute times. When collectives take no time
  (one worker, a network that costs nothing), several can start and end at one instant;
  their order within that instant may differ from the engine's, and nothing measured
  depends on it. A network whose all-gathers take no time while its reduce-scatters do
  (alpha = beta = 0 with gamma > 0) is refused: there the same-instant order changes times.

Ties follow the engine: compute ends are handled before collective ends and ticks at the same
instant (a tick takes every gradient ready at or before it; a chunk whose gradient is ready at
the instant another chunk's all-reduce ends still sees that chunk's bytes as taken).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import Cluster
from .engine import CollectiveRecord, RawRun
from .errors import DearsimError
from .network import LinearCosts, NetworkModel, Op
from .result import Result, spread, worker_waits
from .schedules import Schedule
from .schedules.base import backward_segments, grad_tensors
from .schedules.bytescheduler import ByteScheduler, layer_chunks
from .schedules.dear import Dear
from .schedules.fsdp import MAX_INFLIGHT_ALL_GATHERS, Fsdp
from .schedules.horovod import Horovod
from .schedules.wfbp import Wfbp, WfbpFamily
from .trace import Trace
from .units import MIB

__all__ = ["FastRun", "measure", "run", "simulate"]

OPS = (Op.ALLREDUCE, Op.REDUCE_SCATTER, Op.ALL_GATHER)
_AR, _RS, _AG = 0, 1, 2
NEG = -math.inf


# --------------------------------------------------------------------------- the result


@dataclass
class FastRun:
    """What :func:`run` measured: per iteration, the backward-pass end (latest over the
    worker classes) and the compute busy time (busiest class); every collective on the link
    in link order as parallel arrays (``iteration`` is the iteration whose gradients it
    carries)."""

    iterations: int
    bp_end: np.ndarray
    busy: np.ndarray
    op: np.ndarray
    nbytes: np.ndarray
    iteration: np.ndarray
    first: np.ndarray
    last: np.ndarray
    tag: np.ndarray
    posted: np.ndarray
    start: np.ndarray
    end: np.ndarray
    #: iterations actually computed (the others were shifted copies)
    computed: int = 0
    #: per iteration, each worker class's compute busy time: shape (iterations, classes)
    class_busy: np.ndarray | None = None
    #: per worker class, its workers (ranks)
    class_ranks: list[tuple[int, ...]] | None = None

    @property
    def collectives(self) -> int:
        return len(self.op)

    def per_iteration(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Collectives, bytes and link busy time of each iteration."""
        n = self.iterations
        count = np.bincount(self.iteration, minlength=n)
        nbytes = np.bincount(self.iteration, weights=self.nbytes.astype(float), minlength=n)
        busy = np.bincount(self.iteration, weights=self.end - self.start, minlength=n)
        return count, nbytes, busy

    def to_raw(self) -> RawRun:
        """The engine's :class:`~dearsim.engine.RawRun` of the same run (for
        :func:`dearsim.result.measure` and comparisons; slower than :func:`measure`)."""
        recs = [
            CollectiveRecord(OPS[o], int(nb), (int(a), int(b)), int(i), int(t), p, s, e)
            for o, nb, i, a, b, t, p, s, e in zip(
                self.op.tolist(),
                self.nbytes.tolist(),
                self.iteration.tolist(),
                self.first.tolist(),
                self.last.tolist(),
                self.tag.tolist(),
                self.posted.tolist(),
                self.start.tolist(),
                self.end.tolist(),
            )
        ]
        cb = None if self.class_busy is None else self.class_busy.T.tolist()
        return RawRun(self.iterations, self.bp_end.tolist(), self.busy.tolist(), recs, [], cb,
                      self.class_ranks)


class _Log:
    """Collectives of one iteration, appended as arrays."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[tuple[Any, ...]] = []

    def add(self, op, nbytes, it, first, last, tag, posted, start, end) -> None:
        m = len(start)
        if m == 0:
            return
        self.parts.append(
            (
                np.full(m, op, dtype=np.int8) if np.isscalar(op) else op,
                nbytes,
                np.full(m, it, dtype=np.int64),
                first,
                last,
                tag,
                posted,
                start,
                end,
            )
        )


def _concat(parts: list[tuple[Any, ...]], k: int, dtype: Any) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(p[k], dtype=dtype) for p in parts])


def _shifted(bp: list[float], busy: list[float], n: int, start_it: int,
             delta: float) -> tuple[int, float]:
    """Iterations ``start_it..n-1`` are copies of iteration ``start_it - 1`` shifted by
    ``delta`` per iteration: fill their backward-pass ends and busy times here; their
    collectives are laid out by :func:`_finish` (one broadcast per field, no per-iteration
    logs). Returns the ``(start_it, delta)`` to hand to it."""
    for it in range(start_it, n):
        bp.append(bp[start_it - 1] + (it - start_it + 1) * delta)
        busy.append(busy[start_it - 1])
    return start_it, delta


_FIELDS = ((0, np.int8), (1, np.int64), (2, np.int64), (3, np.int64), (4, np.int64),
           (5, np.int64), (6, float), (7, float), (8, float))


def _finish(n: int, bp: list[float], busy: list[np.ndarray], logs: list[_Log], computed: int,
            last_busy: np.ndarray | None = None, ranks: list[tuple[int, ...]] | None = None,
            shift: tuple[int, float] | None = None) -> FastRun:
    """``busy``: per iteration, every class's busy time (an array over the classes).
    ``shift``: from :func:`_shifted`, the iterations after ``logs`` that copy the last one."""
    parts = [p for log in logs for p in log.parts]
    cols = [_concat(parts, k, dt) for k, dt in _FIELDS]
    if shift is not None and shift[0] < n:
        start_it, delta = shift
        src = [_concat(logs[start_it - 1].parts, k, dt) for k, dt in _FIELDS]
        ks = np.arange(1, n - start_it + 1)
        shifts = ks * delta  # the k-th copy is the source + k * delta, as one addition
        reps = len(ks)
        copies = [np.tile(src[k], reps) for k in (0, 1, 3, 4, 5)]
        its = (src[2][None, :] + ks[:, None]).ravel()
        times = [(src[k][None, :] + shifts[:, None]).ravel() for k in (6, 7, 8)]
        extra = [copies[0], copies[1], its, copies[2], copies[3], copies[4], *times]
        cols = [np.concatenate([c, e]) for c, e in zip(cols, extra)]
    cb = np.array(busy[:n], dtype=float)
    if last_busy is not None:
        cb[n - 1] = last_busy
    return FastRun(
        iterations=n,
        bp_end=np.array(bp[:n], dtype=float),
        busy=cb.max(axis=1),
        class_busy=cb,
        class_ranks=ranks,
        op=cols[0],
        nbytes=cols[1],
        iteration=cols[2],
        first=cols[3],
        last=cols[4],
        tag=cols[5],
        posted=cols[6],
        start=cols[7],
        end=cols[8],
        computed=computed,
    )


# --------------------------------------------------------------------------- building blocks


def durations(costs: LinearCosts, op: Op, nbytes: np.ndarray) -> np.ndarray:
    """``costs.time(op, n)`` for an array of sizes (the same floats)."""
    n = np.asarray(nbytes, dtype=float)
    if costs.workers <= 1:
        return np.zeros_like(n)
    line = costs.allreduce if op is Op.ALLREDUCE else (
        costs.reduce_scatter if op is Op.REDUCE_SCATTER else costs.all_gather
    )
    return np.where(n > 0, line.a + line.b * n, 0.0)


def fifo(posted: np.ndarray, dur: np.ndarray, free: float = NEG) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends on a FIFO link free at ``free`` of collectives fully posted at
    ``posted`` (in link order) lasting ``dur``: ``end_k = max(P_k, end_{k-1}) + d_k``."""
    if len(dur) == 0:
        return dur, dur
    s = np.cumsum(dur)
    lead = np.maximum.accumulate(posted - (s - dur))
    if free > NEG:
        lead = np.maximum(lead, free)
    end = s + lead
    prev = np.empty_like(end)
    prev[0] = free
    prev[1:] = end[:-1]
    start = np.maximum(posted, prev)
    return start, end


def seq_sums(d: np.ndarray, segments: Sequence[Sequence[int]]) -> np.ndarray:
    """Per worker class (rows of ``d``), each segment's ops summed in order from 0.0, as the
    engine sums a stretch: ``(C, len(segments))``. (``np.add.accumulate`` is sequential;
    padding a segment with trailing zeros leaves its sum unchanged.)"""
    c = d.shape[0]
    m = len(segments)
    if m == 0:
        return np.zeros((c, 0))
    lens = np.fromiter((len(s) for s in segments), dtype=np.int64, count=m)
    maxlen = int(lens.max())
    if maxlen == 0:
        return np.zeros((c, m))
    flat = np.fromiter((x for s in segments for x in s), dtype=np.int64, count=int(lens.sum()))
    if c * m >= 256 and maxlen * 4 <= c * m:
        # Many classes: add position by position, on (C, m) arrays; the same additions in
        # the same order as the accumulate below, without its (C, m, maxlen) copy.
        idx = np.full((m, maxlen), d.shape[1], dtype=np.int64)
        idx[np.arange(maxlen)[None, :] < lens[:, None]] = flat
        src = np.concatenate([d, np.zeros((c, 1))], axis=1)
        acc = src[:, idx[:, 0]]
        for k in range(1, maxlen):
            acc += src[:, idx[:, k]]
        return acc
    if c * m * maxlen <= 1 << 22:
        idx = np.full((m, maxlen), d.shape[1], dtype=np.int64)  # the pad column holds 0.0
        mask = np.arange(maxlen)[None, :] < lens[:, None]
        idx[mask] = flat
        padded = np.concatenate([d, np.zeros((c, 1))], axis=1)[:, idx]
        return np.add.accumulate(padded, axis=2)[:, :, -1]
    acc = np.zeros((c, m))
    offs = np.r_[0, np.cumsum(lens)]
    for j in range(m):
        if lens[j]:
            acc[:, j] = np.add.accumulate(d[:, flat[offs[j]:offs[j + 1]]], axis=1)[:, -1]
    return acc


_PER_TRACE: dict[int, tuple[Trace, dict[Any, Any]]] = {}


def _per_trace(trace: Trace, key: Any, make: Any) -> Any:
    """``make()``, kept per trace (the last few traces, the 64 most recently used keys
    each): what depends only on the trace (and the cluster's speeds), not on the schedule's
    options, is worked out once per search."""
    hit = _PER_TRACE.get(id(trace))
    if hit is None or hit[0] is not trace:
        if len(_PER_TRACE) >= 8:
            _PER_TRACE.pop(next(iter(_PER_TRACE)))
        hit = _PER_TRACE[id(trace)] = (trace, {})
    memo = hit[1]
    if key in memo:
        value = memo[key] = memo.pop(key)  # the most recently used go last
        return value
    if len(memo) >= 64:
        memo.pop(next(iter(memo)))  # the least recently used
    value = memo[key] = make()
    return value


def _segments(trace: Trace, stops: Sequence[int]) -> tuple[list[list[int]], dict[int, int]]:
    """The backward segments cut at ``stops`` and, per stop layer, its segment's index."""
    def make() -> tuple[list[list[int]], dict[int, int]]:
        segs = backward_segments(trace.num_layers, stops)
        return segs, {seg[-1]: j for j, seg in enumerate(segs)}

    return _per_trace(trace, ("segs", tuple(stops)), make)


class _Streams:
    """The worker classes' op durations (rows: classes; the engine's ``x * slowdown``).

    Built from a cluster (durations the same every iteration), or, for one iteration of a
    cluster whose durations vary, from :meth:`dearsim.cluster.Cluster.op_times` (``d``) and
    the previous iteration's update durations (``u_prev``): ``u`` is then the update that
    runs in this iteration (of the previous iteration's gradients) and ``usum`` this
    iteration's own update (its busy time)."""

    varies = False

    def __init__(self, trace: Trace, cluster: Cluster | None, d: np.ndarray | None = None,
                 u_prev: np.ndarray | None = None) -> None:
        self.trace = trace
        self.n = trace.num_layers
        self.has_update = [i for i in range(self.n) if trace.update[i] > 0]
        self.upd_set = frozenset(self.has_update)
        self._cache: dict[Any, Any] = {}
        if d is None:
            assert cluster is not None
            classes = cluster.classes()
            self.slow = np.array([s for s, _ in classes], dtype=float)
            self.c = len(classes)
            s = self.slow[:, None]
            self.f = np.array(trace.fwd, dtype=float)[None, :] * s
            self.b = np.array(trace.bwd, dtype=float)[None, :] * s
            self.u = np.array(trace.update, dtype=float)[None, :] * s
            # per class, one iteration's compute (for busy times)
            self.fsum = np.array([math.fsum(r) for r in self.f.tolist()])
            self.bsum = np.array([math.fsum(r) for r in self.b.tolist()])
            self.usum = np.array([math.fsum(r) for r in self.u.tolist()])
            self.u_own = self.u
        else:
            self.c = d.shape[0]
            self.f = d[:, 0, :]
            self.b = d[:, 1, :]
            self.u = d[:, 2, :] if u_prev is None else u_prev
            self.fsum = self.f.sum(axis=1)
            self.bsum = self.b.sum(axis=1)
            self.usum = d[:, 2, :].sum(axis=1)
            #: this iteration's own update (schedules with a barrier run it at the end)
            self.u_own = d[:, 2, :]
        self.uf_pair = np.concatenate([self.u, self.f], axis=1)

    def at(self, it: int) -> _Streams:
        return self

    def busy(self, with_update: bool) -> np.ndarray:
        """Per class, one iteration's compute busy time (with or without its update)."""
        return self.fsum + self.bsum + (self.usum if with_update else 0.0)

    def backward(self, stops: Sequence[int]) -> tuple[list[list[int]], np.ndarray]:
        """The backward segments cut at ``stops`` and their per-class stretch sums."""
        key = ("bwd", tuple(stops))
        hit = self._cache.get(key)
        if hit is None:
            segs = _segments(self.trace, stops)[0]
            hit = self._cache[key] = (segs, seq_sums(self.b, segs))
        return hit

    def forward(self, with_updates: str) -> np.ndarray:
        """Per class, a whole forward pass as one stretch: ``"none"`` (no updates),
        ``"before"`` (every update, then every forward op) or ``"interleaved"`` (each
        layer's update just before its forward op)."""
        key = ("fwd", with_updates)
        hit = self._cache.get(key)
        if hit is None:
            fw = [("f", i) for i in range(self.n)]
            if with_updates == "before":
                ops = [("u", i) for i in self.has_update] + fw
            elif with_updates == "interleaved":
                ops = [op for i in range(self.n)
                       for op in ((("u", i),) if i in self.upd_set else ()) + (("f", i),)]
            else:
                ops = fw
            hit = self._cache[key] = self.stretch(ops)
        return hit

    def sums(self, kind: str, segments: Sequence[Sequence[int]], key: Any) -> np.ndarray:
        """Per class, each segment of ``kind`` ops (``"f"``, ``"b"``, or ``"u"``: this
        iteration's own update) summed as a stretch: ``(C, len(segments))``, cached under
        ``key`` (something that tells these segments apart)."""
        key = ("sums", kind, key)
        hit = self._cache.get(key)
        if hit is None:
            d = self.f if kind == "f" else (self.b if kind == "b" else self.u_own)
            hit = self._cache[key] = seq_sums(d, segments)
        return hit

    def stretch(self, ops: Sequence[tuple[str, int]]) -> np.ndarray:
        """Per class, the sum of one stretch of ``("f"|"u", layer)`` ops."""
        d = self.uf_pair
        idx = [(layer if k == "u" else self.n + layer) for k, layer in ops]
        return seq_sums(d, [idx])[:, 0] if idx else np.zeros(self.c)


class _VaryingStreams:
    """Streams whose durations change every iteration (jitter, stalls): :meth:`at` gives
    iteration ``it``'s :class:`_Streams` (ask for the iterations in order)."""

    varies = True

    def __init__(self, trace: Trace, cluster: Cluster) -> None:
        self.trace = trace
        self.cluster = cluster
        self.groups = cluster.groups()
        self.c = len(self.groups)
        self.n = trace.num_layers
        self.has_update = [i for i in range(self.n) if trace.update[i] > 0]
        self.upd_set = frozenset(self.has_update)
        self._last: tuple[int, _Streams] | None = None

    def at(self, it: int) -> _Streams:
        last = self._last
        if last is not None and last[0] == it:
            return last[1]
        d = self.cluster.op_times(self.trace, it, self.groups)
        u_prev = None
        if last is not None and last[0] == it - 1:
            u_prev = last[1].d[:, 2, :]
        elif it > 0:
            u_prev = self.cluster.op_times(self.trace, it - 1, self.groups)[:, 2, :]
        st = _Streams(self.trace, None, d, u_prev)
        st.d = d  # type: ignore[attr-defined]
        self._last = (it, st)
        return st


def _streams(trace: Trace, cluster: Cluster) -> Any:
    """The worker classes' streams, kept per trace and speeds (a search evaluates one
    workload many times)."""
    if cluster.varies:
        return _VaryingStreams(trace, cluster)
    return _per_trace(trace, ("streams", cluster.slowdown), lambda: _Streams(trace, cluster))


def _same_shape(a: np.ndarray, b: np.ndarray) -> float | None:
    """If state ``b`` is state ``a`` shifted by one common delta (up to rounding), the delta."""
    if a.shape != b.shape:
        return None
    fa = np.isfinite(a)
    if not np.array_equal(fa, np.isfinite(b)):
        return None
    if not fa.any():
        return None
    diff = b[fa] - a[fa]
    delta = float(diff.max())
    scale = float(np.abs(b[fa]).max())
    if float(diff.max() - diff.min()) <= 1e-13 * scale + 1e-18:
        return delta
    return None


# --------------------------------------------------------------------------- WFBP family


def _wfbp_messages(schedule: WfbpFamily, trace: Trace, costs: LinearCosts):
    """Posting order: ``(ready layer, nbytes, first, last, tag)``."""
    if isinstance(schedule, Wfbp) and schedule.options.buckets is None:
        return _per_trace(trace, "tensor_msgs", lambda: [
            (layer, nb, layer, layer, k)
            for layer in range(trace.num_layers - 1, -1, -1)
            for k, nb in enumerate(trace.tensors[layer])
        ])
    msgs = {b.first: (b.nbytes, b.first, b.last, 0) for b in schedule.buckets(trace, costs)}
    return [(layer, *msgs[layer]) for layer in sorted(msgs, reverse=True)]


def _run_wfbp(schedule, trace, costs, cluster, n, horovod: bool = False) -> FastRun:
    st = _streams(trace, cluster)
    if horovod:
        hv = _HorovodPlan(schedule, trace)
        stops = hv.ready_layers
    else:
        msgs = _wfbp_messages(schedule, trace, costs)
        stops = sorted({m[0] for m in msgs})
    seg_of = _segments(trace, stops)[1]
    if not horovod:
        m_seg = np.array([seg_of[m[0]] + 1 for m in msgs], dtype=np.int64)
        m_bytes = np.array([m[1] for m in msgs], dtype=np.int64)
        m_first = np.array([m[2] for m in msgs], dtype=np.int64)
        m_last = np.array([m[3] for m in msgs], dtype=np.int64)
        m_tag = np.array([m[4] for m in msgs], dtype=np.int64)
        m_dur = durations(costs, Op.ALLREDUCE, m_bytes)
    else:
        hv.bind(seg_of, costs)
    t = np.zeros(st.c)  # when each class starts the iteration's first stretch
    bp: list[float] = []
    busy: list[np.ndarray] = []
    logs: list[_Log] = []
    prev_state: np.ndarray | None = None
    ranks = [r for _, r in cluster.groups()]
    it = 0
    while it < n:
        sti = st.at(it)
        segsum = sti.backward(stops)[1]
        start = t + sti.forward("none" if it == 0 else "before")
        ready = np.add.accumulate(np.concatenate([start[:, None], segsum], axis=1), axis=1)
        bpw = ready[:, -1]
        log = _Log()
        if horovod:
            last_end = hv.iteration(ready, it, log)
        elif len(m_seg):
            r = ready[:, m_seg]
            posted = r.max(axis=0)
            first_post = r.min(axis=0)
            s, e = fifo(posted, m_dur)
            log.add(_AR, m_bytes, it, m_first, m_last, m_tag, first_post, s, e)
            last_end = float(e[-1])
        else:
            last_end = NEG
        logs.append(log)
        bp.append(float(bpw.max()))
        busy.append(sti.busy(True))
        t = np.maximum(bpw, last_end)
        it += 1
        if horovod or it >= n or st.varies:
            continue
        if it >= 2 and prev_state is not None:
            delta = _same_shape(prev_state, t)
            if delta is not None:
                shift = _shifted(bp, busy, n, it, delta)
                return _finish(n, bp, busy, logs, it, ranks=ranks, shift=shift)
        if it >= 1:
            prev_state = t.copy()
    return _finish(n, bp, busy, logs, it, ranks=ranks)


class _HorovodPlan:
    """Horovod's items (tensors, or fixed buckets) in posting order and its tick rule."""

    def __init__(self, schedule: Horovod, trace: Trace) -> None:
        from .schedules.base import explicit_buckets

        opts = schedule.options
        items = []  # (ready layer, first, last, nbytes, key)
        if opts.buckets is not None:
            for b in explicit_buckets(trace, opts.buckets, "buckets"):
                items.append((b.first, b.first, b.last, b.nbytes, b.first))
            self.fuse = False
        else:
            for layer, tensors in enumerate(grad_tensors(trace)):
                for t in tensors:
                    items.append((layer, layer, layer, t.nbytes, t.gid))
            self.fuse = True
        items.sort(key=lambda x: -x[0])  # stable: a layer's items keep their order
        self.items = items
        self.ready_layers = sorted({x[0] for x in items})
        self.cycle = opts.cycle_time_ms / 1e3
        self.threshold = opts.fusion_threshold_mb * MIB

    def bind(self, seg_of: dict[int, int], costs: LinearCosts) -> None:
        it = self.items
        self.seg = np.array([seg_of[x[0]] + 1 for x in it], dtype=np.int64)
        self.first = np.array([x[1] for x in it], dtype=np.int64)
        self.last = np.array([x[2] for x in it], dtype=np.int64)
        self.nbytes = np.array([x[3] for x in it], dtype=np.int64)
        self.key = np.array([x[4] for x in it], dtype=np.int64)
        self.costs = costs

    def ticks(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group the items (ready at ``r``, non-decreasing) by tick: the index of each
        group's first item and the group's tick time."""
        c = self.cycle
        k = np.ceil(r / c)
        for _ in range(4):  # the engine's next_tick adjustments
            down = (k > 0) & ((k - 1) * c >= r)
            up = k * c < r
            if not (down.any() or up.any()):
                break
            k = k - down + up
        lead = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        rl = r[lead]
        tau = rl + (k[lead] * c - rl)
        # the engine: a tick takes the items ready at or before it; the next one is armed by
        # the first item after it. Check the grouping by k says exactly that.
        group_end = np.r_[lead[1:], len(r)] - 1
        ok = bool(np.all(r[group_end] <= tau)) and bool(np.all(rl[1:] > tau[:-1]))
        if ok:
            return lead, tau
        return self._ticks_scan(r)

    def _ticks_scan(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .schedules.horovod import next_tick

        c = self.cycle
        rr = r.tolist()
        leads, taus = [], []
        i = 0
        while i < len(rr):
            now = rr[i]
            k = next_tick(now, c)
            tau = now + max(0.0, k * c - now)
            leads.append(i)
            taus.append(tau)
            while i < len(rr) and rr[i] <= tau:
                i += 1
        return np.array(leads, dtype=np.int64), np.array(taus)

    def iteration(self, ready: np.ndarray, it: int, log: _Log) -> float:
        if len(self.items) == 0:
            return NEG
        r = ready[:, self.seg].max(axis=0)
        lead, tau = self.ticks(r)
        m = len(r)
        if not self.fuse:
            starts = np.arange(m)
            post = np.repeat(tau, np.diff(np.r_[lead, m]))
        else:
            csum = np.cumsum(self.nbytes)
            bounds = np.r_[lead, m]
            before = np.r_[0, csum][bounds]
            totals = np.diff(before)
            big = np.flatnonzero(totals > self.threshold)
            if len(big) == 0:
                starts = lead
                post = tau
            else:
                starts_l: list[int] = []
                post_l: list[float] = []
                nb = self.nbytes.tolist()
                thr = self.threshold
                for g in range(len(lead)):
                    a, b = int(bounds[g]), int(bounds[g + 1])
                    if totals[g] <= thr:
                        starts_l.append(a)
                        post_l.append(float(tau[g]))
                        continue
                    filled = 0
                    for i in range(a, b):
                        if i > a and filled + nb[i] <= thr:
                            filled += nb[i]
                        else:
                            starts_l.append(i)
                            post_l.append(float(tau[g]))
                            filled = nb[i]
                starts = np.array(starts_l, dtype=np.int64)
                post = np.array(post_l)
        nbytes = np.add.reduceat(self.nbytes, starts)
        first = np.minimum.reduceat(self.first, starts)
        last = np.maximum.reduceat(self.last, starts)
        tag = self.key[starts]
        dur = durations(self.costs, Op.ALLREDUCE, nbytes)
        s, e = fifo(post, dur)
        log.add(_AR, nbytes, it, first, last, tag, post, s, e)
        return float(e[-1])


# --------------------------------------------------------------------------- DeAR


def _run_dear(schedule: Dear, trace: Trace, costs: LinearCosts, cluster: Cluster, n: int):
    st = _streams(trace, cluster)
    groups = schedule.groups(trace)
    m = len(groups)
    nl = st.n
    chain = schedule.options.prefetch == "chain"
    firsts = [g.first for g in groups]
    seg_of = _segments(trace, firsts)[1]
    # groups in posting (backward) order for the reduce-scatters
    order = np.arange(m - 1, -1, -1)
    g_bytes = np.array([g.nbytes for g in groups], dtype=np.int64)
    g_first = np.array([g.first for g in groups], dtype=np.int64)
    g_last = np.array([g.last for g in groups], dtype=np.int64)
    zeros = np.zeros(m, dtype=np.int64)
    rs_seg = np.array([seg_of[firsts[j]] + 1 for j in order], dtype=np.int64)
    rs_dur = durations(costs, Op.REDUCE_SCATTER, g_bytes[order])
    ag_dur = durations(costs, Op.ALL_GATHER, g_bytes)
    if m:
        starts = [0] + firsts[1:]
        ends = [s - 1 for s in starts[1:]] + [nl - 1]
        upd = st.upd_set

        def group_ops() -> list[list[int]]:
            # per group, its forward stretch: each layer's update (column i of ``uf_pair``)
            # just before its forward op (column nl + i)
            return [[x for i in range(a, b + 1) for x in ((i, nl + i) if i in upd else (nl + i,))]
                    for a, b in zip(starts, ends)]

        g_idx = _per_trace(trace, ("dear_ops", tuple(firsts)), group_ops)
    bpw = np.zeros(st.c)
    rs_end = NEG
    bp: list[float] = []
    busy: list[np.ndarray] = []
    logs: list[_Log] = []
    prev_state: np.ndarray | None = None
    ranks = [r for _, r in cluster.groups()]
    it = 0
    while it < n:
        sti = st.at(it)
        segsum = sti.backward(firsts)[1]
        if m:
            key = ("groups", tuple(firsts))
            g_sum = sti._cache.get(key)
            if g_sum is None:
                g_sum = sti._cache[key] = seq_sums(sti.uf_pair, g_idx)
        log = _Log()
        if it == 0 or m == 0:
            fend = bpw + sti.forward("none" if it == 0 else "interleaved")
        else:
            barrier = max(float(bpw.max()), rs_end)
            waited = float(np.maximum(bpw, rs_end).min())  # the first class to post G_0's
            if chain:
                ag_end = np.add.accumulate(np.r_[barrier, ag_dur])[1:]
                ag_post = np.r_[barrier, ag_end[:-1]]
                # clock_j = max(clock_{j-1}, ag_end_j) + g_j, clock_{-1} = barrier
                gs = np.cumsum(g_sum, axis=1)
                lead = np.maximum.accumulate(ag_end[None, :] - (gs - g_sum), axis=1)
                fend = gs[:, -1] + lead[:, -1]
                first_post = ag_post.copy()
                first_post[0] = waited
            else:
                ag_end = np.empty(m)
                ag_post = np.empty(m)
                first_post = np.empty(m)
                ag_post[0] = barrier
                first_post[0] = waited
                ag_end[0] = barrier + ag_dur[0]
                clock = np.full(st.c, barrier)
                gl = g_sum.T
                for j in range(m):
                    opened = np.maximum(clock, ag_end[j])
                    if j + 1 < m:
                        p = float(opened.max())
                        ag_post[j + 1] = p
                        first_post[j + 1] = float(opened.min())
                        ag_end[j + 1] = p + ag_dur[j + 1]
                    clock = opened + gl[j]
                fend = clock
            log.add(_AG, g_bytes, it - 1, g_first, g_last, zeros, first_post, ag_post, ag_end)
        ready = np.add.accumulate(np.concatenate([fend[:, None], segsum], axis=1), axis=1)
        bpw = ready[:, -1]
        if m:
            r = ready[:, rs_seg]
            s, e = fifo(r.max(axis=0), rs_dur)
            log.add(_RS, g_bytes[order], it, g_first[order], g_last[order], zeros, r.min(axis=0),
                    s, e)
            rs_end = float(e[-1])
        logs.append(log)
        bp.append(float(bpw.max()))
        busy.append(sti.busy(True))
        it += 1
        if it >= n:
            break
        if st.varies:
            continue
        state = np.r_[bpw, rs_end]
        if prev_state is not None and it >= 2:
            delta = _same_shape(prev_state, state)
            if delta is not None:
                shift = _shifted(bp, busy, n, it, delta)
                return _finish(n, bp, busy, logs, it, st.busy(False), ranks, shift)
        prev_state = state
    return _finish(n, bp, busy, logs, it, st.at(n - 1).busy(False), ranks)


# --------------------------------------------------------------------------- ByteScheduler


def _run_bytescheduler(schedule: ByteScheduler, trace, costs, cluster, n) -> FastRun:
    st = _streams(trace, cluster)
    part = schedule.options.partition_bytes
    full = schedule.options.credit_bytes
    chunks = [layer_chunks(t, part) for t in trace.tensors]
    has = [i for i in range(st.n) if chunks[i]]
    seg_of = _segments(trace, has)[1]
    # chunks in the order they are posted when the credit never stops one
    c_layer, c_tag, c_size = [], [], []
    for layer in reversed(has):
        for k, size in enumerate(chunks[layer]):
            c_layer.append(layer)
            c_tag.append(k)
            c_size.append(size)
    c_layer_a = np.array(c_layer, dtype=np.int64)
    c_tag_a = np.array(c_tag, dtype=np.int64)
    c_size_a = np.array(c_size, dtype=np.int64)
    c_dur = durations(costs, Op.ALLREDUCE, c_size_a)
    c_seg = np.array([seg_of[x] + 1 for x in c_layer], dtype=np.int64)
    posted_before = np.cumsum(c_size_a) - c_size_a
    cum_size = np.r_[0, np.cumsum(c_size_a)]
    has_a = np.array(has, dtype=np.int64)
    # the last chunk of each layer in that order (its all-reduce ends last)
    last_of_layer = np.r_[np.flatnonzero(c_layer_a[1:] != c_layer_a[:-1]), len(c_layer) - 1] \
        if c_layer else np.zeros(0, dtype=np.int64)
    # forward: per class, cumulative (update + forward) per layer and whether layer waits
    fin = np.full(st.n, NEG)  # when each layer's chunks of the previous iteration finished
    bpw = np.zeros(st.c)
    bp: list[float] = []
    busy: list[np.ndarray] = []
    logs: list[_Log] = []
    ranks = [r for _, r in cluster.groups()]
    it = 0
    while it < n:
        sti = st.at(it)
        segsum = sti.backward(has)[1]
        if it == 0:
            fend = bpw + sti.forward("none")
        else:
            uf = sti._cache.get("uf")
            if uf is None:
                uf = sti.u + sti.f
                sti._cache["uf"] = uf
                sti._cache["uf_cum"] = np.cumsum(uf, axis=1)
            uf_cum = sti._cache["uf_cum"]
            # end_l = max(end_{l-1}, fin_l) + d_l: a FIFO per class against the layer waits
            prev_cum = uf_cum - uf
            lead = np.maximum.accumulate(
                np.maximum(fin[None, :] - prev_cum, bpw[:, None]), axis=1
            )
            fend = uf_cum[:, -1] + lead[:, -1]
        ready = np.add.accumulate(np.concatenate([fend[:, None], segsum], axis=1), axis=1)
        bpw = ready[:, -1]
        log = _Log()
        fin = np.full(st.n, NEG)
        if c_layer:
            r = ready[:, c_seg].max(axis=0)
            s, e = fifo(r, c_dur)
            done = np.searchsorted(e, r, side="left")
            outstanding = posted_before - cum_size[np.minimum(done, np.arange(len(r)))]
            if np.all(outstanding < full):
                log.add(_AR, c_size_a, it, c_layer_a, c_layer_a, c_tag_a, r, s, e)
                fin[has_a[::-1]] = e[last_of_layer]
            else:
                rl = ready[:, [seg_of[x] + 1 for x in reversed(has)]].max(axis=0)
                _credit_loop(reversed(has), rl.tolist(), chunks, costs, full, it, log, fin)
        logs.append(log)
        bp.append(float(bpw.max()))
        busy.append(sti.busy(True))
        it += 1
        if it >= n:
            break
        # No shortcut: every iteration is computed. ByteScheduler's posting order compares
        # absolute times (a gradient ready vs a chunk's end, credit at that instant), so
        # copying a repeating iteration forward (exact only up to rounding) can resolve a
        # near-tie differently from the engine, whose later times round differently.
    return _finish(n, bp, busy, logs, it, st.at(n - 1).busy(False), ranks)


def _credit_loop(layers, ready, chunks, costs: LinearCosts, full: int, it: int, log: _Log,
                 fin: np.ndarray) -> None:
    """The queue and the credit, event by event, for one iteration: gradient-ready events
    (``ready``, for ``layers`` in backward order) and all-reduce ends, compute first at a
    tie; the link is a FIFO."""
    layers = list(layers)
    time = costs.time
    AR = Op.ALLREDUCE
    queue: list[tuple[int, int, int]] = []
    credit = full
    free = NEG
    posted: list[tuple[float, int, int]] = []  # (end, size, layer) in link order
    rec: list[tuple[int, int, int, float, float, float]] = []
    left = {layer: len(chunks[layer]) for layer in layers}
    nr = len(layers)
    i = 0
    j = 0
    while i < nr or j < len(posted):
        if i < nr and (j >= len(posted) or ready[i] <= posted[j][0]):
            now = ready[i]
            layer = layers[i]
            for k, size in enumerate(chunks[layer]):
                heapq.heappush(queue, (layer, k, size))
            i += 1
        else:
            now, size, layer = posted[j]
            j += 1
            credit = min(full, credit + size)
            left[layer] -= 1
            if left[layer] == 0:
                fin[layer] = now
        while credit > 0 and queue:
            layer, k, size = heapq.heappop(queue)
            credit -= size
            d = time(AR, size)
            end = now + ((free - now) + d) if free > now else now + d
            rec.append((layer, k, size, now, end - d, end))
            free = end
            posted.append((end, size, layer))
    if rec:
        a = np.array(rec)
        lay = a[:, 0].astype(np.int64)
        log.add(_AR, a[:, 2].astype(np.int64), it, lay, lay, a[:, 1].astype(np.int64),
                a[:, 3], a[:, 4], a[:, 5])


# --------------------------------------------------------------------------- FSDP

#: an all-gather of the FSDP host: ``(unit, tag, waits_for)`` (see :func:`_fsdp_host`)
_Gather = tuple[int, int, "tuple[int, int] | None"]


def _fsdp_host(m: int, prefetch: bool, limit: int | None, stale: int
               ) -> tuple[list[_Gather], int]:
    """One iteration of the FSDP host thread (:meth:`~dearsim.schedules.fsdp.Fsdp._host`)
    replayed on its queue of free events, which starts with ``stale`` events of earlier
    iterations (all in the past: waiting for one never delays the host). Returns the
    all-gathers in posting order as ``(unit, tag, waits_for)``, ``waits_for`` being ``None``
    or ``(kind, unit)``, the free event of this iteration the rate limiter waits for (kind
    0: the unit's forward ops end; 1: its gradient is ready), and the events left queued."""
    queue: deque[tuple[int, int] | None] = deque([None] * stale)
    out: list[_Gather] = []

    def gather(j: int, tag: int) -> None:
        wait = queue.popleft() if limit is not None and len(queue) >= limit else None
        out.append((j, tag, wait))

    for j in range(m):  # forward hooks
        gather(j, 0)
        if j != 0:
            queue.append((0, j))
    prefetched: set[int] = set()
    for j in range(m - 1, -1, -1):  # backward hooks
        if j != 0 and j not in prefetched:
            gather(j, 1)
        if prefetch and j - 1 >= 1:
            gather(j - 1, 1)
            prefetched.add(j - 1)
        queue.append((1, j))
    return out, len(queue)


class _FifoLink:
    """The link as the engine computes it, one collective at a time (the same floats)."""

    __slots__ = ("free", "rows")

    def __init__(self) -> None:
        self.free = 0.0
        self.rows: list[tuple[int, int, int, float, float, float]] = []

    def post(self, op: int, unit: int, tag: int, posted: float, first: float, d: float) -> float:
        """Collective ``op`` of ``unit``, fully posted at ``posted`` (first post at
        ``first``), lasting ``d``; returns its end."""
        free = self.free
        end = posted + ((free - posted) + d) if free > posted else posted + d
        self.rows.append((op, unit, tag, first, end - d, end))
        self.free = end
        return end


def _run_fsdp(schedule: Fsdp, trace: Trace, costs: LinearCosts, cluster: Cluster, n: int
              ) -> FastRun:
    st = _streams(trace, cluster)
    units = schedule.units(trace)
    m = len(units)
    nl = st.n
    opts = schedule.options
    limit = MAX_INFLIGHT_ALL_GATHERS if opts.limit_all_gathers else None
    # The schedule's stretches: each unit's forward ops; each unit's backward ops down to
    # its gradient, then the layers before U_0's first gradient (no units: one stretch each).
    starts = [0] + [u.first for u in units[1:]]
    ends = [s - 1 for s in starts[1:]] + [nl - 1]
    fwd_segs = [list(range(a, b + 1)) for a, b in zip(starts, ends)]
    bwd_segs = [list(range(b, u.first - 1, -1)) for u, b in zip(units, ends)]
    bwd_segs.append(list(range((units[0].first if m else nl) - 1, -1, -1)))
    u_seg = [st.has_update]
    key = ("fsdp", tuple(starts), tuple(u.first for u in units))  # names the stretches
    ag_d = [costs.time(Op.ALL_GATHER, u.nbytes) for u in units]
    rs_d = [costs.time(Op.REDUCE_SCATTER, u.nbytes) for u in units]
    if m and min(ag_d) == 0.0 and max(rs_d) > 0.0:
        raise DearsimError(
            "the fast evaluator does not run fsdp on a network whose all-gathers take no time"
            " while its reduce-scatters do (which of a reduce-scatter and an all-gather posted"
            " at the same instant goes first then follows the engine's event order, and changes"
            " the times); use the SimPy engine (engine='simpy')"
        )
    u_bytes = np.array([u.nbytes for u in units], dtype=np.int64)
    u_first = np.array([u.first for u in units], dtype=np.int64)
    u_last = np.array([u.last for u in units], dtype=np.int64)
    hosts: dict[int, tuple[list[_Gather], int]] = {}  # the host's program by queue length
    stale = 0
    link = _FifoLink()
    t = np.zeros(st.c)  # when each class starts the iteration (and its host thread)
    bp: list[float] = []
    busy: list[np.ndarray] = []
    logs: list[_Log] = []
    ranks = [r for _, r in cluster.groups()]
    for it in range(n):
        sti = st.at(it)
        fw = sti.sums("f", fwd_segs, key)
        bw = sti.sums("b", bwd_segs, key)
        log = _Log()
        if m == 0:
            bpw = (t + fw[:, 0]) + bw[:, 0]
        else:
            if stale not in hosts:
                hosts[stale] = _fsdp_host(m, opts.backward_prefetch, limit, stale)
            gathers, stale = hosts[stale]
            link.rows = []
            if st.c == 1:  # plain floats: numpy calls on one value cost more than the work
                end = _fsdp_iteration(gathers, fw[0].tolist(), bw[0].tolist(), float(t[0]),
                                      link, ag_d, rs_d, max, float, float)
                bpw = np.array([end])
            else:
                bpw = _fsdp_iteration(gathers, np.ascontiguousarray(fw.T),
                                      np.ascontiguousarray(bw.T), t, link, ag_d, rs_d,
                                      np.maximum, lambda x: float(x.max()),
                                      lambda x: float(x.min()))
            a = np.array(link.rows)
            k = a[:, 1].astype(np.int64)
            log.add(a[:, 0].astype(np.int8), u_bytes[k], it, u_first[k], u_last[k],
                    a[:, 2].astype(np.int64), a[:, 3], a[:, 4], a[:, 5])
        # the barrier: the backward pass and every reduce-scatter; then the whole update
        barrier = np.maximum(bpw, link.free)
        t = barrier + sti.sums("u", u_seg, None)[:, 0] if st.has_update else barrier
        logs.append(log)
        bp.append(float(bpw.max()))
        busy.append(sti.busy(True))
    return _finish(n, bp, busy, logs, n, ranks=ranks)


def _fsdp_iteration(gathers: list[_Gather], fw: Any, bw: Any, t: Any, link: _FifoLink,
                    ag_d: list[float], rs_d: list[float], mx: Any, hi: Any, lo: Any) -> Any:
    """The collectives of one FSDP iteration on ``link`` and each class's backward-pass
    end. ``fw[j]``/``bw[j]``: per class, unit ``j``'s forward and backward stretch
    (``bw[m]``: the layers before U_0's first gradient); ``t``: when each class starts.
    Per-class values are numpy arrays (``mx`` = ``np.maximum``, ``hi``/``lo`` the largest
    and smallest as a float) or, for one class, floats.

    The host's all-gathers are taken in posting order; a unit's compute follows its
    all-gather (forward ops; backward ops up to its gradient, which posts its
    reduce-scatter). The link takes collectives in the order they are fully posted (the
    last class posts them); a reduce-scatter fully posted at the instant an all-gather is
    goes first: it is posted as a compute op ends, while the host thread is resumed by an
    event fired at that instant, handled after the compute ends."""
    m = len(ag_d)
    events: list[list[Any]] = [[None] * m, [None] * m]  # per unit: fwd_done, grads
    host = clock = t
    pending: deque[tuple[int, int, int, float, float, float]] = deque()  # reduce-scatters
    for j, tag, wait in gathers:
        if wait is not None:
            host = mx(host, events[wait[0]][wait[1]])
        posted = hi(host)
        while pending and pending[0][3] <= posted:
            link.post(*pending.popleft())
        end = link.post(_AG, j, tag, posted, lo(host), ag_d[j])
        if tag == 0:  # unit j's forward ops
            clock = mx(clock, end) + fw[j]
        else:  # unit j's backward ops up to its gradient; then its reduce-scatter
            clock = mx(clock, end) + bw[j]
            pending.append((_RS, j, 0, hi(clock), lo(clock), rs_d[j]))
        events[tag][j] = clock
    clock = clock + bw[0]  # U_0, the root: it has no all-gather in the backward pass
    pending.append((_RS, 0, 0, hi(clock), lo(clock), rs_d[0]))
    for rs in pending:
        link.post(*rs)
    return clock + bw[m]


# --------------------------------------------------------------------------- entry points


def run(
    schedule: Schedule, trace: Trace, costs: LinearCosts, cluster: Cluster, iterations: int
) -> FastRun:
    """The run :func:`dearsim.engine.run` would simulate, computed without SimPy."""
    if cluster.interference or cluster.comm_interference:
        # Compute slowed while the link is busy (or the link while compute runs) couples
        # every ready time to the link's timeline; the vectorised passes below assume it
        # does not.
        from .errors import ParamError

        raise ParamError(
            "interference" if cluster.interference else "comm_interference",
            "needs engine='simpy' (the fast evaluator does not model it)",
        )
    if isinstance(schedule, Horovod):
        return _run_wfbp(schedule, trace, costs, cluster, iterations, horovod=True)
    if isinstance(schedule, WfbpFamily):
        return _run_wfbp(schedule, trace, costs, cluster, iterations)
    if isinstance(schedule, Dear):
        return _run_dear(schedule, trace, costs, cluster, iterations)
    if isinstance(schedule, ByteScheduler):
        return _run_bytescheduler(schedule, trace, costs, cluster, iterations)
    if isinstance(schedule, Fsdp):
        return _run_fsdp(schedule, trace, costs, cluster, iterations)
    raise DearsimError(f"the fast evaluator does not know scheduler {schedule.name!r}")


def measure(
    raw: FastRun,
    warmup: int,
    *,
    scheduler: str,
    options: dict[str, Any],
    trace: str,
    network: str,
    workers: int,
    batch_size: int | None,
) -> Result:
    """The :class:`~dearsim.result.Result` of a fast run (as :func:`dearsim.result.measure`)."""
    n = raw.iterations
    period = (float(raw.bp_end[n - 1]) - float(raw.bp_end[warmup])) / (n - 1 - warmup)
    lo, hi = warmup, n - 1
    k = hi - lo
    compute = math.fsum(raw.busy[lo:hi].tolist()) / k
    sel = (raw.iteration >= lo) & (raw.iteration < hi)
    comm = math.fsum((raw.end[sel] - raw.start[sel]).tolist()) / k
    nbytes = int(raw.nbytes[sel].sum()) // k
    count = int(sel.sum()) // k
    w = raw.iteration == warmup
    buckets = sorted(set(zip(raw.first[w].tolist(), raw.last[w].tolist())))
    p50, p99 = spread(raw.bp_end, warmup)
    waits = () if raw.class_busy is None else worker_waits(
        period, raw.class_busy.T.tolist(), raw.class_ranks, warmup, n, workers)
    return Result(
        scheduler=scheduler,
        options=options,
        trace=trace,
        network=network,
        workers=workers,
        iterations=n,
        warmup=warmup,
        iteration_time_s=period,
        compute_s=compute,
        comm_s=comm,
        exposed_comm_s=period - compute,
        buckets=buckets,
        batch_size=batch_size,
        comm_bytes=nbytes,
        collectives=count,
        raw=None,
        iteration_p50_s=p50,
        iteration_p99_s=p99,
        worker_wait_s=waits,
    )


def simulate(
    trace: Trace | str | Path,
    network: NetworkModel | str | Path | Mapping[str, Any],
    workers: int | Cluster,
    scheduler: str | Schedule = "dear",
    options: Mapping[str, Any] | None = None,
    *,
    iterations: int = 10,
    warmup: int = 2,
    batch_size: int | None = None,
) -> Result:
    """:func:`dearsim.simulate` on the fast evaluator (same arguments and result, except
    that ``Result.raw`` is ``None``; :func:`run` gives the measurements)."""
    from .api import simulate as api_simulate

    return api_simulate(
        trace, network, workers, scheduler, options, iterations=iterations, warmup=warmup,
        batch_size=batch_size, engine="fast",
    )


def evaluate(
    schedule: Schedule,
    trace: Trace,
    costs: LinearCosts,
    cluster: Cluster,
    iterations: int = 10,
    warmup: int = 2,
) -> float:
    """Just the iteration time of a run (what the searches minimise)."""
    raw = run(schedule, trace, costs, cluster, iterations)
    return (float(raw.bp_end[-1]) - float(raw.bp_end[warmup])) / (iterations - 1 - warmup)


