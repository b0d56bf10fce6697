"""The SimPy engine: compute streams, one shared link, and the measurements of a run.

The engine knows no schedule. A schedule (see :mod:`dearsim.schedules`) starts SimPy processes
that drive each worker's compute stream with :meth:`Worker.forward`, :meth:`Worker.backward`
and :meth:`Worker.update`, and post collectives with :meth:`Worker.post`. The engine

* runs one compute stream per *class* of identical workers: ``p`` identical workers cost one
  stream, not ``p`` (SPEC section 2: workers are identical unless a config says otherwise);
* starts a collective when every worker class has posted it and the link is free; collectives
  run one at a time in the order they became fully posted (a FIFO, like one NCCL
  communicator);
* handles a compute op's end before a collective's end at the same instant (SPEC section 6):
  compute ends are scheduled at SimPy's ``URGENT`` priority, collective ends at ``NORMAL``;
* measures, without the schedule's help, the end of every backward pass (layer 0's backward
  op), the compute-stream busy time and the link busy time of every iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from simpy.core import NORMAL, URGENT, Environment
from simpy.events import Event

from .errors import DearsimError
from .network import LinearCosts, Op
from .trace import Trace

Range = tuple[int, int]


@dataclass(frozen=True)
class Cluster:
    """``workers`` data-parallel workers. ``slowdown`` optionally gives each worker a
    compute-time multiplier (1.0 = as in the trace); ``None`` means identical workers."""

    workers: int
    slowdown: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise DearsimError(f"workers must be a positive integer, got {self.workers!r}")
        if self.slowdown is not None:
            if len(self.slowdown) != self.workers:
                raise DearsimError(
                    f"slowdown has {len(self.slowdown)} entries for {self.workers} workers"
                )
            for i, s in enumerate(self.slowdown):
                if not (s > 0 and s < float("inf")):
                    raise DearsimError(f"slowdown[{i}] must be a positive number, got {s!r}")

    def classes(self) -> list[tuple[float, int]]:
        """Groups of identical workers as ``(slowdown, count)``, in first-seen order."""
        if self.slowdown is None:
            return [(1.0, self.workers)]
        counts: dict[float, int] = {}
        for s in self.slowdown:
            counts[s] = counts.get(s, 0) + 1
        return list(counts.items())


class OpRecord(NamedTuple):
    """One compute op on a worker class's stream (kept only when ops are recorded)."""

    worker: int
    kind: str
    layer: int
    iteration: int
    start: float
    end: float


class CollectiveRecord(NamedTuple):
    """One collective on the link."""

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

    def __init__(self, env: Environment, costs: LinearCosts, posters: int) -> None:
        self.env = env
        self.costs = costs
        self.posters = posters
        self.free_at = 0.0
        self.records: list[CollectiveRecord] = []
        self._pending: dict[Hashable, list[Any]] = {}

    def post(
        self, op: Op, nbytes: int, iteration: int, layers: Range, tag: int = 0
    ) -> Event:
        if nbytes <= 0:
            raise ValueError("a message of 0 bytes is never sent")
        if self.posters == 1:
            ev = Event(self.env)
            self._launch(ev, op, nbytes, iteration, layers, tag, self.env.now)
            return ev
        key = (op, iteration, layers, tag)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = [Event(self.env), 0, self.env.now]
        entry[1] += 1
        ev = entry[0]
        if entry[1] == self.posters:
            del self._pending[key]
            self._launch(ev, op, nbytes, iteration, layers, tag, entry[2])
        return ev

    def _launch(
        self,
        ev: Event,
        op: Op,
        nbytes: int,
        iteration: int,
        layers: Range,
        tag: int,
        posted: float,
    ) -> None:
        now = self.env.now
        duration = self.costs.time(op, nbytes)
        wait = self.free_at - now if self.free_at > now else 0.0
        end = now + (wait + duration)  # the time SimPy will give the event
        rec = CollectiveRecord(op, nbytes, layers, iteration, tag, posted, end - duration, end)
        self.free_at = end
        self.records.append(rec)
        ev._ok = True
        ev._value = rec
        self.env.schedule(ev, NORMAL, wait + duration)

    @property
    def unfinished(self) -> int:
        return len(self._pending)


class Worker:
    """One class of identical workers: its compute stream and its handle on the link."""

    def __init__(
        self, sim: Simulation, index: int, count: int, slowdown: float, record_ops: bool
    ) -> None:
        self.sim = sim
        self.env = sim.env
        self.index = index
        self.count = count
        self.slowdown = slowdown
        t = sim.trace
        if slowdown == 1.0:
            self.fwd, self.bwd, self.upd = t.fwd, t.bwd, t.update
        else:
            self.fwd = tuple(x * slowdown for x in t.fwd)
            self.bwd = tuple(x * slowdown for x in t.bwd)
            self.upd = tuple(x * slowdown for x in t.update)
        self._durations = {"fwd": self.fwd, "bwd": self.bwd, "update": self.upd}
        n = sim.iterations
        self.busy = [0.0] * n
        self.bp_end: list[float | None] = [None] * n
        self.ops: list[OpRecord] | None = [] if record_ops else None
        self._free_at = 0.0

    def forward(self, layer: int, iteration: int) -> Event:
        """Run layer ``layer``'s forward op of ``iteration``; the event fires when it ends."""
        return self.run((("fwd", layer, iteration),))

    def backward(self, layer: int, iteration: int) -> Event:
        """Run layer ``layer``'s backward op; its gradient is ready when the event fires."""
        return self.run((("bwd", layer, iteration),))

    def update(self, layer: int, iteration: int) -> Event:
        """Apply layer ``layer``'s update for the gradients of ``iteration``."""
        return self.run((("update", layer, iteration),))

    def run(self, ops: Sequence[tuple[str, int, int]]) -> Event:
        """Run ``ops`` -- ``(kind, layer, iteration)`` with kind ``"fwd"``, ``"bwd"`` or
        ``"update"`` -- back to back; the event fires when the last one ends.

        A schedule uses this for ops that nothing reacts to in between (a whole forward pass
        under a barrier, the backward ops up to the next gradient that is posted): the stream
        and the measurements are the same as with one event per op, for fewer events."""
        env = self.env
        now = env.now
        if now < self._free_at:
            kind, layer, _ = ops[0]
            raise RuntimeError(
                f"schedule started a {kind} op of layer {layer} while the compute stream was busy"
            )
        table = self._durations
        busy = self.busy
        records = self.ops
        total = 0.0
        for kind, layer, it in ops:
            d = table[kind][layer]
            busy[it] += d
            if records is not None:
                records.append(OpRecord(self.index, kind, layer, it, now + total, now + total + d))
            total += d
            if layer == 0 and kind == "bwd":
                self.bp_end[it] = now + total
        ev = Event(env)
        ev._ok = True
        ev._value = None
        env.schedule(ev, URGENT, total)
        self._free_at = now + total
        return ev

    def post(
        self, op: Op, nbytes: int, iteration: int, layers: Range, tag: int = 0
    ) -> Event:
        """Post a collective; the event fires (value: its :class:`CollectiveRecord`) when it
        has finished on the link. ``(op, iteration, layers, tag)`` identifies it across
        worker classes."""
        return self.sim.link.post(op, nbytes, iteration, layers, tag)


class Simulation:
    """What a schedule sees: the environment, the workload, the costs and the workers."""

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
        classes = cluster.classes()
        self.link = Link(self.env, costs, len(classes))
        self.workers = [
            Worker(self, i, count, slow, record_ops) for i, (slow, count) in enumerate(classes)
        ]

    def process(self, generator: Generator[Event, Any, Any]) -> None:
        self.env.process(generator)

    def call_at(self, time: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at absolute ``time`` (after the compute ends of that instant)."""
        ev = Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(lambda _e: callback())
        self.env.schedule(ev, NORMAL, max(0.0, time - self.env.now))


@dataclass
class RawRun:
    """Everything the engine measured in one run."""

    iterations: int
    bp_end: list[float]
    busy: list[float]
    collectives: list[CollectiveRecord]
    ops: list[OpRecord] = field(default_factory=list)


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
        ends = [w.bp_end[it] for w in sim.workers]
        if any(e is None for e in ends) or sim.link.unfinished:
            raise RuntimeError(
                f"schedule {schedule.name!r} stalled at t={sim.env.now:.6g}s in iteration {it}"
            )
        bp.append(max(e for e in ends if e is not None))
    busy = [max(w.busy[it] for w in sim.workers) for it in range(iterations)]
    ops: list[OpRecord] = []
    if record_ops:
        for w in sim.workers:
            ops.extend(w.ops or [])
    return RawRun(iterations, bp, busy, sim.link.records, ops)
