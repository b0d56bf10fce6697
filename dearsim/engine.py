"""The SimPy engine: compute streams, one shared link, and the measurements of a run.

The engine knows no schedule. A schedule (see :mod:`dearsim.schedules`) starts processes with
:meth:`Simulation.process` that drive each :class:`WorkerClass`'s compute stream with
:meth:`WorkerClass.run` (or ``forward``/``backward``/``update``) and post collectives with
:meth:`WorkerClass.post`. Everything a schedule waits for is a :class:`Signal`: yield it from a
process to wait, ask :attr:`Signal.done`, or :meth:`Signal.on_done` to react. Schedules use only
this module's API (never SimPy's), so another evaluator can offer the same API. The engine

* runs one compute stream per *class* of identical workers: ``p`` identical workers cost one
  stream, not ``p``;
* starts a collective when every worker class has posted it and the link is free; collectives
  run one at a time in the order they became fully posted (a FIFO, like one NCCL
  communicator);
* handles a compute op's end before a collective's end at the same instant (the tie rule of
  ``docs/model.md``): compute ends are scheduled at SimPy's ``URGENT`` priority, collective
  ends and timed callbacks at ``NORMAL``;
* measures, without the schedule's help, the end of every backward pass (layer 0's backward
  op), the compute-stream busy time and the link busy time of every iteration;
* with a cluster's ``interference`` x > 0, runs every compute op at rate ``1/(1+x)`` while a
  collective is in flight on the link (``docs/model.md``, "Workers"): a compute stretch keeps
  how much of its work is done, and re-plans its end whenever a collective launch makes the
  link busy for longer (:class:`_Stretch`). The link's busy time ahead is always known (a
  FIFO of known durations), so only launches change a stretch's plan; with x = 0 none of
  this runs;
* with a cluster's ``comm_interference`` y > 0, also runs the collective in flight at rate
  ``1/(1+y)`` while any worker class computes (``docs/model.md``, "Workers"). Then no
  duration is known in advance: :class:`_Fluid` advances every compute stretch and the
  collective in flight from one change of rates to the next (a stretch or a collective
  starting or ending) and re-plans the ends whose rate changed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple, Protocol

from simpy.core import NORMAL, URGENT, Environment
from simpy.events import PENDING, Event

from .cluster import Cluster
from .network import LinearCosts, Op
from .trace import Trace

Range = tuple[int, int]


class OpKind(str, Enum):
    """Compute ops on a worker's stream."""

    FWD = "fwd"
    BWD = "bwd"
    UPDATE = "update"


FWD, BWD, UPDATE = OpKind.FWD, OpKind.BWD, OpKind.UPDATE
#: The row of each kind in :meth:`dearsim.cluster.Cluster.op_times`.

#: A compute op: ``(kind, layer, iteration)``.
ComputeOp = tuple[OpKind, int, int]


class Signal(Event):
    """Something that happens once: a compute stretch ending, a collective finishing, or a
    schedule's own condition (:meth:`Simulation.signal`). Yield it from a process to wait."""

    @property
    def done(self) -> bool:
        """Whether it has happened and everything waiting on it has been told."""
        return self.callbacks is None

    def on_done(self, callback: Callable[[Signal], None]) -> None:
        """Call ``callback(signal)`` when it happens (at once if it already has); the
        signal's :attr:`value` is what it carries (a collective's record)."""
        if self.callbacks is None:
            callback(self)
        else:
            self.callbacks.append(callback)  # type: ignore[arg-type]

    def fire(self, value: Any = None) -> None:
        """Make a schedule's own signal happen now."""
        self.succeed(value)


class _Timer(Signal):
    """A signal that happens ``delay`` from now at a given priority: SimPy's ``Timeout``,
    written the same way, with the priority as a parameter. Created without a delay it waits
    to be :meth:`arm`-ed, so posters of a collective can wait on it before the link knows
    when it ends."""

    def __init__(
        self, env: Environment, delay: float | None = None, value: Any = None,
        priority: int = NORMAL,
    ) -> None:
        self.env = env
        self.callbacks = []
        if delay is None:
            self._value = PENDING
        else:
            self._ok = True
            self._value = value
            env.schedule(self, priority, delay)

    def arm(self, delay: float, value: Any, priority: int) -> _Timer:
        self._ok = True
        self._value = value
        self.env.schedule(self, priority, delay)
        return self


class OpRecord(NamedTuple):
    """One compute op on a worker class's stream (kept only when ops are recorded)."""

    worker: int
    kind: OpKind
    layer: int
    iteration: int
    start: float
    end: float


class CollectiveRecord(NamedTuple):
    """One collective on the link. ``layers`` is the inclusive range of layers whose data
    it carries; ``tag`` tells apart collectives of the same layers (tensors, chunks)."""

    op: Op
    nbytes: int
    layers: Range
    iteration: int
    tag: int
    posted: float
    start: float
    end: float


class Link:
    """The link all collectives share. Durations are known when a collective is fully posted,
    so a FIFO without preemption reduces to remembering when the link becomes free."""

    def __init__(self, env: Environment, costs: LinearCosts, posters: int,
                 fluid: _Fluid | None = None) -> None:
        self.env = env
        self.costs = costs
        self.posters = posters
        self.free_at = 0.0
        #: under two-way interference the fluid decides when collectives end (and keeps the
        #: records); ``free_at`` is then unused
        self.fluid = fluid
        self.records: list[CollectiveRecord] = fluid.records if fluid is not None else []
        self._pending: dict[Hashable, list[Any]] = {}
        #: called as ``busier(busy_until_before, busy_until_now)`` when a launch keeps the
        #: link busy for longer (only with interference)
        self.busier: Callable[[float, float], None] | None = None

    def post(self, op: Op, nbytes: int, iteration: int, layers: Range, tag: int) -> Signal:
        if nbytes <= 0:
            raise ValueError("a message of 0 bytes is never sent")
        if self.posters == 1:
            return self._launch(None, op, nbytes, iteration, layers, tag, self.env.now)
        key = (op, iteration, layers, tag)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = [_Timer(self.env), 0, self.env.now]
        entry[1] += 1
        if entry[1] == self.posters:
            del self._pending[key]
            self._launch(entry[0], op, nbytes, iteration, layers, tag, entry[2])
        return entry[0]

    def _launch(
        self,
        sig: _Timer | None,
        op: Op,
        nbytes: int,
        iteration: int,
        layers: Range,
        tag: int,
        posted: float,
    ) -> Signal:
        if self.fluid is not None:
            if sig is None:
                sig = _Timer(self.env)
            self.fluid.launch(_FluidCollective(sig, op, nbytes, iteration, layers, tag, posted,
                                               self.costs.time(op, nbytes)))
            return sig
        now = self.env.now
        duration = self.costs.time(op, nbytes)
        wait = self.free_at - now if self.free_at > now else 0.0
        end = now + (wait + duration)  # the time SimPy will give the event
        rec = CollectiveRecord(op, nbytes, layers, iteration, tag, posted, end - duration, end)
        before = self.free_at if self.free_at > now else now
        self.free_at = end
        self.records.append(rec)
        if self.busier is not None and end > before:
            self.busier(before, end)
        if sig is None:
            return _Timer(self.env, wait + duration, rec, NORMAL)
        return sig.arm(wait + duration, rec, NORMAL)

    @property
    def unfinished(self) -> int:
        return len(self._pending)


class WorkerClass:
    """One class of identical workers: its compute stream and its handle on the link."""

    def __init__(
        self, sim: Simulation, index: int, count: int, slowdown: float, record_ops: bool,
        ranks: tuple[int, ...] | None = None,
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.index = index
        self.count = count
        self.slowdown = slowdown
        #: the workers (ranks) of this class
        self.ranks = ranks if ranks is not None else tuple(range(count))
        t = sim.trace
        if slowdown == 1.0:
            fwd, bwd, upd = t.fwd, t.bwd, t.update
        else:
            fwd = tuple(x * slowdown for x in t.fwd)
            bwd = tuple(x * slowdown for x in t.bwd)
            upd = tuple(x * slowdown for x in t.update)
        n = sim.iterations
        #: per iteration, ``{kind: durations by layer}``: one shared table unless durations
        #: vary by iteration (jitter, stalls: :meth:`vary`)
        self._tables: list[dict[OpKind, Sequence[float]]] = [{FWD: fwd, BWD: bwd, UPDATE: upd}] * n
        self.busy = [0.0] * n
        self.bp_end: list[float | None] = [None] * n
        self.ops: list[OpRecord] | None = [] if record_ops else None
        self._free_at = 0.0
        #: whether compute slows down while the link is busy (interference > 0)
        self._slowed = sim.interference > 0
        #: under two-way interference every stretch runs through the fluid
        self._fluid = sim._fluid

    def forward(self, layer: int, iteration: int) -> Signal:
        """Run layer ``layer``'s forward op of ``iteration``; the signal fires when it ends."""
        return self.run(((FWD, layer, iteration),))

    def backward(self, layer: int, iteration: int) -> Signal:
        """Run layer ``layer``'s backward op; its gradient is ready when the signal fires."""
        return self.run(((BWD, layer, iteration),))

    def update(self, layer: int, iteration: int) -> Signal:
        """Apply layer ``layer``'s update for the gradients of ``iteration``."""
        return self.run(((UPDATE, layer, iteration),))

    def run(self, ops: Sequence[ComputeOp]) -> Signal:
        """Run ``ops`` back to back; the signal fires when the last one ends.

        A schedule uses this for ops that nothing reacts to in between (a whole forward pass
        under a barrier, the backward ops up to the next gradient that is posted): the stream
        and the measurements are the same as with one signal per op, for fewer events."""
        env = self.env
        now = env.now
        if now < self._free_at:
            kind, layer, _ = ops[0]
            raise RuntimeError(
                f"schedule started a {OpKind(kind).value} op of layer {layer} while the"
                " compute stream was busy"
            )
        if self._fluid is not None:
            return self._fluid.start(self, ops)
        if self._slowed:
            return self.sim._start_stretch(self, ops)
        tables = self._tables
        busy = self.busy
        records = self.ops
        total = 0.0
        for kind, layer, it in ops:
            d = tables[it][kind][layer]
            busy[it] += d
            if records is not None:
                records.append(
                    OpRecord(self.index, OpKind(kind), layer, it, now + total, now + total + d)
                )
            total += d
            if layer == 0 and kind == BWD:
                self.bp_end[it] = now + total
        self._free_at = now + total
        return _Timer(env, total, None, URGENT)

    def vary(self, rows: Sequence[Sequence[Sequence[float]]]) -> None:
        """Use durations that differ by iteration: ``rows[it]`` holds the forward, backward
        and update durations by layer (:meth:`dearsim.cluster.Cluster.op_times`)."""
        self._tables = [{FWD: f, BWD: b, UPDATE: u} for f, b, u in rows]

    def post(self, op: Op, nbytes: int, iteration: int, layers: Range, tag: int = 0) -> Signal:
        """Post a collective; the signal fires (value: its :class:`CollectiveRecord`) when it
        has finished on the link. ``(op, iteration, layers, tag)`` identifies it across
        worker classes, so every class must post it with the same four values."""
        return self.sim.link.post(op, nbytes, iteration, layers, tag)


class Simulation:
    """What a schedule sees: the clock, the workload, the costs and the worker classes."""

    def __init__(
        self,
        trace: Trace,
        costs: LinearCosts,
        cluster: Cluster,
        iterations: int,
        record_ops: bool = False,
    ) -> None:
        self.env = Environment()
        self.trace = trace
        self.costs = costs
        self.cluster = cluster
        self.iterations = iterations
        #: compute slows down by this factor while a collective is in flight: 1 + interference
        self.interference = cluster.interference
        self._k = 1.0 + cluster.interference
        #: the collective in flight runs at rate 1/(1 + comm_interference) while any worker
        #: class computes
        self.comm_interference = cluster.comm_interference
        #: the compute stretches running now, by worker class (only with interference)
        self._stretches: dict[int, _Stretch] = {}
        groups = cluster.groups()
        self._fluid: _Fluid | None = None
        if self.comm_interference > 0 or _FLUID_ALWAYS:
            self._fluid = _Fluid(self.env, self._k, 1.0 + self.comm_interference)
        self.link = Link(self.env, costs, len(groups), self._fluid)
        if self.interference > 0 and self._fluid is None:
            self.link.busier = self._link_busier
        self.classes = [
            WorkerClass(self, i, len(ranks), slow, record_ops, ranks)
            for i, (slow, ranks) in enumerate(groups)
        ]
        if cluster.varies:
            # Every op's duration, drawn up front in the order docs/model.md gives.
            tables = [cluster.op_times(trace, it, groups).tolist() for it in range(iterations)]
            for g, w in enumerate(self.classes):
                w.vary([tables[it][g] for it in range(iterations)])

    @property
    def now(self) -> float:
        return self.env.now

    def process(self, generator: Generator[Signal, Any, Any]) -> None:
        """Start a process: a generator that yields signals to wait for them."""
        self.env.process(generator)

    def signal(self) -> Signal:
        """A new signal for a schedule's own condition; :meth:`Signal.fire` makes it happen."""
        return Signal(self.env)

    def call_at(self, time: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at absolute ``time`` (after the compute ends of that instant)."""
        timer = _Timer(self.env, max(0.0, time - self.env.now), None, NORMAL)
        timer.callbacks.append(lambda _ev: callback())  # type: ignore[union-attr]

    # ------------------------------------------------------------ interference (x > 0 only)

    def _start_stretch(self, w: WorkerClass, ops: Sequence[ComputeOp]) -> Signal:
        """:meth:`WorkerClass.run` when compute slows down while the link is busy."""
        env = self.env
        now = float(env.now)
        tables = w._tables
        durations = [tables[it][kind][layer] for kind, layer, it in ops]
        busy_until = self.link.free_at
        st = _Stretch(w, ops, durations, (now, 0.0, busy_until), self._k)
        w._free_at = math.inf  # busy until the stretch says otherwise
        self._stretches[w.index] = st
        # with the link idle: the delay is the sum of the durations, as WorkerClass.run's
        self._wake_in(st, _after(st.anchors[0], st.total, self._k))
        return st.signal

    def _wake_in(self, st: _Stretch, delay: float) -> None:
        """Set the stretch's timer ``delay`` from now; ``due`` is the time SimPy gives it."""
        st.due = self.env.now + delay
        timer = _Timer(self.env, delay, st, URGENT)
        timer.callbacks.append(self._stretch_due)  # type: ignore[union-attr]

    def _link_busier(self, before: float, until: float) -> None:
        """A launch keeps the link busy from ``before`` (now, or when it would have become
        free) to ``until``: every stretch still running after ``before`` re-plans its end."""
        now = self.env.now
        k = self._k
        for st in self._stretches.values():
            if st.end > before:
                anchor = st.anchors[-1]
                done = _work_at(anchor, now, k)
                if done > st.total:
                    done = st.total
                anchor = (now, done, until)
                st.anchors.append(anchor)
                st.end = _time_at(anchor, st.total, k)
                if st.end > st.due:
                    st.postponed = True

    def _stretch_due(self, event: Event) -> None:
        st: _Stretch = event.value
        if st.postponed:  # the link became busy for longer since this timer was set
            st.postponed = False
            now = self.env.now
            self._wake_in(st, st.end - now if st.end > now else 0.0)
            return
        w = st.worker
        del self._stretches[w.index]
        now = self.env.now
        st.finish(now, self._k)
        w._free_at = now
        st.signal.arm(0.0, None, URGENT)


def _after(anchor: tuple[float, float, float], work: float, k: float) -> float:
    """How long after time ``t`` a stretch has done ``work`` (seconds of compute at full
    speed), given that at ``t`` it had done ``w`` and that the link is busy until ``busy``
    (idle after it, unless a later launch says otherwise): at rate ``1/k`` while busy, 1
    after."""
    t, w, busy = anchor
    if busy > t:
        span = busy - t
        if (work - w) * k <= span:
            return (work - w) * k
        return span + ((work - w) - span / k)
    return work - w


def _time_at(anchor: tuple[float, float, float], work: float, k: float) -> float:
    """When the stretch has done ``work``: ``t + _after(...)``, as SimPy adds a delay."""
    return anchor[0] + _after(anchor, work, k)


def _work_at(anchor: tuple[float, float, float], time: float, k: float) -> float:
    """The inverse of :func:`_time_at`: the work done by ``time``."""
    t, w, busy = anchor
    if busy > t:
        if time <= busy:
            return w + (time - t) / k
        return w + (busy - t) / k + (time - busy)
    return w + (time - t)


class _Stretch:
    """Compute ops run back to back while compute slows down under communication.

    ``anchors`` are ``(time, work done, link busy until)``, one when the stretch starts and
    one more each time a launch kept the link busy for longer while it ran; between two
    anchors the first one's plan holds. ``end`` is the end as planned now, ``due`` when the
    timer set for it fires; a launch only ever postpones the end, so the timer is never
    late: when it fires before the end, it is set again (``postponed``)."""

    __slots__ = ("worker", "ops", "durations", "total", "anchors", "end", "due", "postponed",
                 "signal")

    def __init__(
        self, worker: WorkerClass, ops: Sequence[ComputeOp], durations: list[float],
        anchor: tuple[float, float, float], k: float,
    ) -> None:
        self.worker = worker
        self.ops = ops
        self.durations = durations
        total = 0.0
        for d in durations:  # summed in order, as WorkerClass.run does
            total += d
        self.total = total
        self.anchors = [anchor]
        self.end = _time_at(anchor, total, k)
        self.due = self.end
        self.postponed = False
        self.signal = _Timer(worker.env)

    def finish(self, now: float, k: float) -> None:
        """Book every op of the stretch, which ended at ``now``: its start and end, its
        compute busy time ``d + x * (its work done while the link was busy)`` and layer 0's
        backward end."""
        w = self.worker
        x = k - 1.0
        anchors = self.anchors
        records = w.ops
        busy_time = w.busy
        t0, _, busy0 = anchors[0]
        if len(anchors) == 1 and busy0 <= t0:
            # the link stayed idle: WorkerClass.run's arithmetic, to the last bit
            total = 0.0
            for (kind, layer, it), d in zip(self.ops, self.durations):
                busy_time[it] += d
                if records is not None:
                    records.append(
                        OpRecord(w.index, OpKind(kind), layer, it, t0 + total, t0 + total + d)
                    )
                total += d
                if layer == 0 and kind == BWD:
                    w.bp_end[it] = t0 + total
            return
        # the work done while the link was busy, as intervals of the stretch's work
        stops = [a[1] for a in anchors[1:]] + [self.total]
        slow: list[tuple[float, float]] = []
        for (t, done, busy), stop in zip(anchors, stops):
            if busy > t:
                hi = done + (busy - t) / k
                if hi > stop:
                    hi = stop
                if hi > done:
                    slow.append((done, hi))
        last = len(self.ops) - 1
        i = 0  # the anchor in force
        j = 0  # the first slow interval that may still overlap
        start = anchors[0][0]
        lo = 0.0
        for n, ((kind, layer, it), d) in enumerate(zip(self.ops, self.durations)):
            hi = lo + d
            if n == last:
                end = now
            else:
                while i + 1 < len(anchors) and anchors[i + 1][1] <= hi:
                    i += 1
                end = _time_at(anchors[i], hi, k)
            under = 0.0
            while j < len(slow) and slow[j][1] <= lo:
                j += 1
            m = j
            while m < len(slow) and slow[m][0] < hi:
                a, b = slow[m]
                under += (b if b < hi else hi) - (a if a > lo else lo)
                m += 1
            busy_time[it] += d + x * under
            if records is not None:
                records.append(OpRecord(w.index, OpKind(kind), layer, it, start, end))
            if layer == 0 and kind == BWD:
                w.bp_end[it] = end
            start = end
            lo = hi


# ------------------------------------------------------------ two-way interference (y > 0 only)

#: Tests set this to run the two-way path with y = 0 too (a cross-check of the two paths).
_FLUID_ALWAYS = False


class _FluidStretch:
    """Compute ops run back to back on one worker class under two-way interference.

    ``points`` are ``(time, work done, time per unit of work from then on)``: one when the
    stretch starts and one each time its rate changes, so an op's end is found by
    interpolation when the stretch ends."""

    __slots__ = ("worker", "ops", "durations", "total", "done", "factor", "token", "points",
                 "signal")

    def __init__(self, worker: WorkerClass, ops: Sequence[ComputeOp], durations: list[float]
                 ) -> None:
        self.worker = worker
        self.ops = ops
        self.durations = durations
        total = 0.0
        for d in durations:
            total += d
        self.total = total
        self.done = 0.0
        self.factor = 0.0  # none yet: the first plan sets it
        self.token = 0
        self.points: list[tuple[float, float, float]] = []
        self.signal = _Timer(worker.env)


class _FluidCollective:
    """A fully posted collective: its work (its duration alone) and the work done."""

    __slots__ = ("signal", "op", "nbytes", "iteration", "layers", "tag", "posted", "start",
                 "total", "done", "factor", "token")

    def __init__(self, signal: _Timer, op: Op, nbytes: int, iteration: int, layers: Range,
                 tag: int, posted: float, total: float) -> None:
        self.signal = signal
        self.op = op
        self.nbytes = nbytes
        self.iteration = iteration
        self.layers = layers
        self.tag = tag
        self.posted = posted
        self.start = 0.0
        self.total = total
        self.done = 0.0
        self.factor = 0.0
        self.token = 0


class _Fluid:
    """Compute and the link slowing each other down.

    Between two changes (a stretch or a collective starting or ending) the rates are
    constant: every running stretch does ``1/kx`` of a second's work per second while a
    collective is in flight (1 otherwise), the collective in flight ``1/ky`` while any
    stretch runs (1 otherwise). Each change first advances everything to now at the old
    rates, then gives every job whose rate changed a new timer (a token tells stale timers
    apart). Compute ends fire at ``URGENT`` and collective ends at ``NORMAL`` priority, so
    the tie rule holds. Collectives run one at a time, in the order they became fully
    posted."""

    def __init__(self, env: Environment, kx: float, ky: float) -> None:
        self.env = env
        self.kx = kx
        self.ky = ky
        self.stretches: dict[int, _FluidStretch] = {}
        self.current: _FluidCollective | None = None
        self.queue: deque[_FluidCollective] = deque()
        self.records: list[CollectiveRecord] = []
        self.last = 0.0

    # the changes

    def start(self, w: WorkerClass, ops: Sequence[ComputeOp]) -> Signal:
        """:meth:`WorkerClass.run` under two-way interference."""
        self._advance()
        tables = w._tables
        st = _FluidStretch(w, ops, [tables[it][kind][layer] for kind, layer, it in ops])
        w._free_at = math.inf  # busy until the stretch ends
        self.stretches[w.index] = st
        self._replan()
        return st.signal

    def launch(self, c: _FluidCollective) -> None:
        """A collective became fully posted: it runs now if the link is free, else queues."""
        if self.current is not None:
            self.queue.append(c)
            return
        self._advance()
        c.start = float(self.env.now)
        self.current = c
        self._replan()

    def _stretch_due(self, event: Event) -> None:
        st, token = event.value
        if token != st.token:
            return  # re-planned since
        self._advance()
        now = float(self.env.now)
        st.done = st.total
        st.points.append((now, st.total, 0.0))
        w = st.worker
        del self.stretches[w.index]
        _book(st)
        w._free_at = now
        st.signal.arm(0.0, None, URGENT)
        self._replan()

    def _collective_due(self, event: Event) -> None:
        c, token = event.value
        if token != c.token:
            return
        self._advance()
        now = float(self.env.now)
        rec = CollectiveRecord(c.op, c.nbytes, c.layers, c.iteration, c.tag, c.posted,
                               c.start, now)
        self.records.append(rec)
        c.signal.arm(0.0, rec, NORMAL)
        self.current = self.queue.popleft() if self.queue else None
        if self.current is not None:
            self.current.start = now
        self._replan()

    # the rates

    def _advance(self) -> None:
        """Every job's work done by now, at the rates in force since the last change."""
        now = float(self.env.now)
        dt = now - self.last
        if dt > 0:
            for st in self.stretches.values():
                st.done += dt / st.factor
            c = self.current
            if c is not None:
                c.done += dt / c.factor
        self.last = now

    def _replan(self) -> None:
        """New timers for the jobs whose rate changed (or that have none yet)."""
        env = self.env
        now = float(env.now)
        fc = self.kx if self.current is not None else 1.0
        for st in self.stretches.values():
            if st.factor != fc:
                st.factor = fc
                st.token += 1
                st.points.append((now, st.done, fc))
                left = st.total - st.done
                timer = _Timer(env, left * fc if left > 0 else 0.0, (st, st.token), URGENT)
                timer.callbacks.append(self._stretch_due)  # type: ignore[union-attr]
        c = self.current
        if c is not None:
            fl = self.ky if self.stretches else 1.0
            if c.factor != fl:
                c.factor = fl
                c.token += 1
                left = c.total - c.done
                timer = _Timer(env, left * fl if left > 0 else 0.0, (c, c.token), NORMAL)
                timer.callbacks.append(self._collective_due)  # type: ignore[union-attr]


def _book(st: _FluidStretch) -> None:
    """Book every op of a stretch that has just ended: its start and end (interpolated in
    the stretch's rate history), its busy time (its length) and layer 0's backward end."""
    w = st.worker
    records = w.ops
    busy_time = w.busy
    points = st.points
    last = len(st.ops) - 1
    end_time = points[-1][0]
    i = 0
    start = points[0][0]
    hi = 0.0
    for n, ((kind, layer, it), d) in enumerate(zip(st.ops, st.durations)):
        hi += d
        if n == last:
            end = end_time
        else:
            while i + 2 < len(points) and points[i + 1][1] <= hi:
                i += 1
            t, done, f = points[i]
            end = t + (hi - done) * f
            if end > end_time:
                end = end_time
        busy_time[it] += end - start
        if records is not None:
            records.append(OpRecord(w.index, OpKind(kind), layer, it, start, end))
        if layer == 0 and kind == BWD:
            w.bp_end[it] = end
        start = end


@dataclass
class RawRun:
    """Everything the engine measured in one run."""

    iterations: int
    bp_end: list[float]
    busy: list[float]
    collectives: list[CollectiveRecord]
    ops: list[OpRecord] = field(default_factory=list)
    #: per worker class, its compute busy time of every iteration (``busy`` is the maximum)
    class_busy: list[list[float]] | None = None
    #: per worker class, its workers (ranks)
    class_ranks: list[tuple[int, ...]] | None = None


class ScheduleLike(Protocol):
    """What the engine needs of a schedule: a name and a way to start its processes."""

    @property
    def name(self) -> str: ...

    def start(self, sim: Simulation) -> None: ...


def run(
    schedule: ScheduleLike,
    trace: Trace,
    costs: LinearCosts,
    cluster: Cluster,
    iterations: int,
    record_ops: bool = False,
) -> RawRun:
    """Simulate ``iterations`` training iterations of ``schedule``."""
    sim = Simulation(trace, costs, cluster, iterations, record_ops)
    schedule.start(sim)
    sim.env.run()
    bp: list[float] = []
    for it in range(iterations):
        ends = [w.bp_end[it] for w in sim.classes]
        if any(e is None for e in ends) or sim.link.unfinished:
            raise RuntimeError(
                f"schedule {schedule.name!r} stalled at t={sim.env.now:.6g}s in iteration {it}"
            )
        bp.append(max(e for e in ends if e is not None))
    busy = [max(w.busy[it] for w in sim.classes) for it in range(iterations)]
    ops: list[OpRecord] = []
    if record_ops:
        for w in sim.classes:
            ops.extend(w.ops or [])
    return RawRun(iterations, bp, busy, sim.link.records, ops,
                  [list(w.busy) for w in sim.classes], [w.ranks for w in sim.classes])
