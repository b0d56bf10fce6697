"""Who trains: the data-parallel workers and how fast each one computes.

A :class:`Cluster` is ``workers`` data-parallel workers (ranks ``0..p-1``) and, optionally:

* ``slowdown``: a compute-time multiplier per worker (heterogeneous GPUs, a slow node);
* ``jitter``: a :class:`Jitter`, a seeded random multiplier on every compute op of every
  worker (run-to-run noise);
* ``stalls``: :class:`Stall` s, a worker that stops for a while every ``every`` iterations
  (a data-loader hiccup, a checkpoint, OS noise);
* ``interference``: how much compute slows down while communication runs (threads competing
  for cores; on GPUs, kernels competing for SMs and memory bandwidth): while at least one
  collective is in flight on the network, every compute op progresses at rate
  ``1 / (1 + interference)`` (0, the default, turns it off; ``docs/model.md``, "Workers").
  Only the SimPy engine models it.
* ``comm_interference``: the other way round, how much communication slows down while
  compute runs (the collective's threads or kernels get less of the cores or SMs): while at
  least one worker computes, the collective in flight progresses at rate
  ``1 / (1 + comm_interference)``. 0, the default, turns it off; SimPy engine only.

How long an op takes (``docs/model.md``, "Workers"): op ``(kind, layer)`` of iteration ``i``
on worker ``w`` lasts ``(t * slowdown[w]) * m[w, i, kind, layer]``, where ``t`` is the trace's
time and ``m`` the jitter multiplier (1 without jitter); a stall of worker ``w`` in iteration
``i`` is added to the duration of layer 0's forward op of that iteration. The two evaluators
take these durations from :meth:`Cluster.op_times`, so they see the same numbers.

The jitter multipliers are drawn per iteration, in a fixed order: iteration ``i``'s are
``numpy.random.default_rng([seed, i]).standard_normal((workers, 3, layers))``, indexed
``[worker, kind, layer]`` with kinds forward 0, backward 1, update 2 (the update of
iteration ``i``'s gradients), turned into a log-normal multiplier of mean 1 and coefficient of
variation ``cv``: ``exp(sigma * z - sigma**2 / 2)`` with ``sigma**2 = log(1 + cv**2)``. A
worker's numbers therefore do not depend on how many iterations are simulated, and the
numbers of workers ``0..p-1`` do not change when more workers are added.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import DearsimError, ParamError

if TYPE_CHECKING:  # numpy is imported where it is used: not at start-up
    import numpy as np

    from .trace import Trace

#: Op kinds in the order of the second axis of :meth:`Cluster.op_times`.
KINDS = ("fwd", "bwd", "update")


def _positive(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not (0 < x < math.inf):
        raise DearsimError(f"{what} must be a positive number, got {x!r}")
    return float(x)


def _count(x: Any, what: str, low: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < low:
        raise DearsimError(f"{what} must be an integer >= {low}, got {x!r}")
    return x


@contextmanager
def _param(name: str) -> Iterator[None]:
    """A check of :meth:`Cluster.build`'s parameter ``name``: its error becomes a
    :class:`ParamError` naming the parameter (configs point at the key, the command line at
    the flag)."""
    try:
        yield
    except ParamError:
        raise
    except DearsimError as exc:
        raise ParamError(name, str(exc)) from None


def _slowdowns(values: Sequence[float], workers: int) -> tuple[float, ...]:
    """Per-worker compute-time multipliers: one per worker, each positive and finite."""
    if len(values) != workers:
        raise DearsimError(f"slowdown has {len(values)} entries for {workers} workers")
    for i, s in enumerate(values):
        if not (s > 0 and s < float("inf")):
            raise DearsimError(f"slowdown[{i}] must be a positive number, got {s!r}")
    return tuple(values)


def _stalls_within(stalls: Sequence[Any], workers: int) -> None:
    for s in stalls:
        if not isinstance(s, Stall):
            raise DearsimError(f"stalls must be Stall objects, got {s!r}")
        if s.worker >= workers:
            raise DearsimError(f"stall of worker {s.worker}: there are only {workers} workers")


def _interference(x: Any, name: str = "interference") -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not (0 <= x < math.inf):
        raise DearsimError(f"{name} must be a finite number >= 0, got {x!r}")
    return float(x)


@dataclass(frozen=True)
class Jitter:
    """A seeded per-op compute-time multiplier: log-normal with mean 1 and coefficient of
    variation ``cv`` (standard deviation / mean). ``cv = 0`` multiplies by exactly 1."""

    cv: float
    seed: int = 0
    distribution: str = "lognormal"

    def __post_init__(self) -> None:
        if isinstance(self.cv, bool) or not isinstance(self.cv, (int, float)) or not (
            0 <= self.cv < math.inf
        ):
            raise DearsimError(f"jitter cv must be a finite number >= 0, got {self.cv!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DearsimError(f"jitter seed must be an integer >= 0, got {self.seed!r}")
        if self.distribution != "lognormal":
            raise DearsimError(
                f"jitter distribution {self.distribution!r} is not known (only 'lognormal')"
            )

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv * self.cv))

    def multipliers(self, iteration: int, workers: int, layers: int) -> np.ndarray:
        """Iteration ``iteration``'s multipliers, shape ``(workers, 3, layers)``."""
        import numpy as np

        z = np.random.default_rng([self.seed, iteration]).standard_normal((workers, 3, layers))
        s = self.sigma
        return np.exp(s * z - (s * s) / 2)


@dataclass(frozen=True)
class Stall:
    """Worker ``worker`` stops for ``duration_s`` seconds at the start of iterations
    ``offset, offset + every, offset + 2*every, ...`` (before layer 0's forward op)."""

    worker: int
    every: int
    duration_s: float
    offset: int = 0

    def __post_init__(self) -> None:
        _count(self.worker, "stall worker")
        _count(self.every, "stall every", 1)
        _count(self.offset, "stall offset")
        if isinstance(self.duration_s, bool) or not isinstance(
            self.duration_s, (int, float)
        ) or not (0 <= self.duration_s < math.inf):
            raise DearsimError(f"stall duration must be a finite number >= 0 s, got "
                               f"{self.duration_s!r}")

    def hits(self, iteration: int) -> bool:
        return iteration >= self.offset and (iteration - self.offset) % self.every == 0


@dataclass(frozen=True)
class Cluster:
    """``workers`` data-parallel workers. ``slowdown`` optionally gives each worker a
    compute-time multiplier (1.0 = as in the trace); ``None`` means identical workers.
    ``jitter`` adds seeded per-op noise, ``stalls`` periodic stops, ``interference`` slows
    compute while a collective is in flight and ``comm_interference`` the collective in
    flight while a worker computes (see the module)."""

    workers: int
    slowdown: tuple[float, ...] | None = None
    jitter: Jitter | None = None
    stalls: tuple[Stall, ...] = field(default=())
    interference: float = 0.0
    comm_interference: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise DearsimError(f"workers must be a positive integer, got {self.workers!r}")
        if self.slowdown is not None:
            _slowdowns(self.slowdown, self.workers)
        if not isinstance(self.stalls, tuple):
            object.__setattr__(self, "stalls", tuple(self.stalls))
        _stalls_within(self.stalls, self.workers)
        if self.jitter is not None and not isinstance(self.jitter, Jitter):
            raise DearsimError(f"jitter must be a Jitter, got {self.jitter!r}")
        object.__setattr__(self, "interference", _interference(self.interference))
        object.__setattr__(self, "comm_interference",
                           _interference(self.comm_interference, "comm_interference"))

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        workers: int,
        *,
        slowdown: Sequence[float] | None = None,
        stragglers: int = 0,
        straggler_slowdown: float = 1.0,
        jitter_cv: float = 0.0,
        seed: int = 0,
        stalls: Sequence[Stall | Mapping[str, Any]] = (),
        interference: float = 0.0,
        comm_interference: float = 0.0,
    ) -> Cluster:
        """A cluster from flat settings (what a config's ``cluster:`` block holds).

        ``stragglers`` workers, the last ranks ``p-k..p-1``, compute ``straggler_slowdown``
        times slower (on top of ``slowdown``). ``jitter_cv > 0`` adds log-normal jitter
        seeded with ``seed``. ``stalls`` are :class:`Stall` s or mappings with ``worker``,
        ``every``, ``duration_ms`` (or ``duration_s``) and optionally ``offset``.
        ``interference`` is the slowdown of compute while a collective is in flight,
        ``comm_interference`` that of the collective in flight while a worker computes.

        A bad value raises :class:`~dearsim.errors.ParamError` naming its parameter."""
        with _param("workers"):
            _count(workers, "workers", 1)
        with _param("stragglers"):
            k = _count(stragglers, "stragglers")
        if k > workers:
            raise ParamError("stragglers", f"{k} stragglers among {workers} workers")
        with _param("straggler_slowdown"):
            factor = _positive(straggler_slowdown, "straggler_slowdown")
        slow: list[float] | None = None
        if slowdown is not None:
            with _param("slowdown"):
                slow = list(_slowdowns([float(s) for s in slowdown], workers))
        if k and factor != 1.0:
            slow = slow if slow is not None else [1.0] * workers
            for i in range(workers - k, workers):
                slow[i] = slow[i] * factor
        jit = None
        if jitter_cv:
            with _param("jitter_cv"):
                Jitter(jitter_cv)  # the coefficient alone: Jitter checks it
            with _param("seed"):
                jit = Jitter(jitter_cv, seed)
        with _param("stalls"):
            stall_objs = tuple(s if isinstance(s, Stall) else _stall_from(s) for s in stalls)
            _stalls_within(stall_objs, workers)
        with _param("interference"):
            x = _interference(interference)
        with _param("comm_interference"):
            y = _interference(comm_interference, "comm_interference")
        return cls(workers, None if slow is None else tuple(slow), jit, stall_objs, x, y)

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description (for run hashes and result rows)."""
        out: dict[str, Any] = {"workers": self.workers}
        if self.slowdown is not None:
            out["slowdown"] = [float(s) for s in self.slowdown]
        if self.jitter is not None:
            out["jitter"] = {"cv": float(self.jitter.cv), "seed": self.jitter.seed,
                             "distribution": self.jitter.distribution}
        if self.stalls:
            out["stalls"] = [
                {"worker": s.worker, "every": s.every, "duration_s": float(s.duration_s),
                 "offset": s.offset}
                for s in self.stalls
            ]
        if self.interference:  # left out when 0: the run hashes of before stay the same
            out["interference"] = self.interference
        if self.comm_interference:
            out["comm_interference"] = self.comm_interference
        return out

    # ------------------------------------------------------------------ classes

    @property
    def varies(self) -> bool:
        """Whether some op durations change from iteration to iteration (jitter, stalls)."""
        return self.jitter is not None or bool(self.stalls)

    def groups(self) -> list[tuple[float, tuple[int, ...]]]:
        """Worker classes as ``(slowdown, ranks)``, in first-seen order. Workers are in one
        class when every op of theirs lasts the same: same slowdown, no jitter and the same
        stalls. With jitter every worker is a class of its own."""
        p = self.workers
        if self.jitter is not None:
            slow = self.slowdown or (1.0,) * p
            return [(slow[w], (w,)) for w in range(p)]
        if self.slowdown is None and not self.stalls:
            return [(1.0, tuple(range(p)))]
        slow = self.slowdown or (1.0,) * p
        stalls: dict[int, tuple[Stall, ...]] = {}
        for s in self.stalls:
            stalls[s.worker] = stalls.get(s.worker, ()) + (s,)
        members: dict[Any, list[int]] = {}
        for w in range(p):
            members.setdefault((slow[w], stalls.get(w, ())), []).append(w)
        return [(key[0], tuple(ranks)) for key, ranks in members.items()]

    def classes(self) -> list[tuple[float, int]]:
        """Groups of identical workers as ``(slowdown, count)``, in first-seen order."""
        if self.slowdown is None and not self.varies:
            return [(1.0, self.workers)]
        if not self.varies:
            counts: dict[float, int] = {}
            for s in self.slowdown or ():
                counts[s] = counts.get(s, 0) + 1
            return list(counts.items())
        return [(s, len(r)) for s, r in self.groups()]

    # ------------------------------------------------------------------ durations

    def op_times(
        self, trace: Trace, iteration: int, groups: list[tuple[float, tuple[int, ...]]] | None
        = None,
    ) -> np.ndarray:
        """The op durations of iteration ``iteration`` for each worker class of
        :meth:`groups`: shape ``(classes, 3, layers)``, kinds in :data:`KINDS` order (the
        update row is the update of this iteration's gradients)."""
        groups = self.groups() if groups is None else groups
        import numpy as np

        base = np.array([trace.fwd, trace.bwd, trace.update], dtype=float)
        slow = np.array([s for s, _ in groups], dtype=float)
        d = base[None, :, :] * slow[:, None, None]
        if self.jitter is not None:  # every worker is a class, in rank order
            d = d * self.jitter.multipliers(iteration, self.workers, trace.num_layers)
        if self.stalls:  # a stalled worker is a class of its own
            where = {ranks[0]: g for g, (_, ranks) in enumerate(groups)}
            for s in self.stalls:
                if s.hits(iteration):
                    g = where[s.worker]
                    d[g, 0, 0] = d[g, 0, 0] + s.duration_s
        return d


def _stall_from(m: Mapping[str, Any]) -> Stall:
    if not isinstance(m, Mapping):
        raise DearsimError(f"a stall is a mapping with worker, every and duration_ms, got {m!r}")
    extra = set(m) - {"worker", "every", "duration_ms", "duration_s", "offset"}
    if extra:
        raise DearsimError(f"stall: unknown key {sorted(extra)[0]!r} "
                           "(valid: worker, every, duration_ms, duration_s, offset)")
    if "duration_ms" in m and "duration_s" in m:
        raise DearsimError("stall: give duration_ms or duration_s, not both")
    if "duration_ms" in m:
        dur = m["duration_ms"]
        if isinstance(dur, bool) or not isinstance(dur, (int, float)):
            raise DearsimError(f"stall duration_ms must be a number, got {dur!r}")
        dur = dur / 1e3
    else:
        dur = m.get("duration_s")
    for key in ("worker", "every"):
        if key not in m:
            raise DearsimError(f"stall: missing {key!r}")
    if dur is None:
        raise DearsimError("stall: missing 'duration_ms'")
    return Stall(m["worker"], m["every"], dur, m.get("offset", 0))
