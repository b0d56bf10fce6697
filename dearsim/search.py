"""Tuning a schedule's fusion on the fast evaluator (:mod:`dearsim.fast`): ``dearsim search``.

Methods (``docs/search.md`` has the details):

* ``scan``: one threshold over a log grid (1-256 MiB, ``budget`` points), exhaustively:
  ``ddp`` (``bucket_cap_mb``), ``horovod`` (``fusion_threshold_mb``), ``dear``
  (``threshold_mb``); the schedule's default (options ``{}``) when no grid point beats it,
  so a scan never reports worse than the default.
* ``bayes``: the real systems' tuners, reproduced with scikit-optimize's Gaussian-process
  minimiser (expected improvement, seeded): DeAR's one threshold over 1-256 MB in 10 trials;
  Horovod's autotuner over fusion threshold (0-64 MB) x cycle time (1-100 ms), up to 20
  samples; ByteScheduler's partition x credit, 15 points (10 random, then 5 suggested).
* ``optimal``: the exactly optimal partition of the layers into contiguous buckets for the
  WFBP family (``wfbp``, ``ddp``, ``mgwfbp``), by dynamic programming over bucket boundaries.
* ``partition``: non-uniform DeAR groups by a local search over group boundaries, started
  from the scan's answer (so never worse than it, nor than the default).

Why the dynamic program is exact (identical workers). With the global barrier, an iteration
is ``update + forward`` followed by the backward pass, during which bucket ``k`` (a run of
consecutive gradient layers) is posted when its lowest layer's gradient is ready, at ``r_k``
(fixed by the trace, not by the partition), and runs on the one FIFO link:
``end_k = max(r_k, end_{k-1}) + T(bytes_k)``. The next iteration starts at
``max(bp_end, end_last)``, and ``bp_end`` does not depend on the partition, so the period is
minimised by minimising ``end_last``. Walk the gradient layers from the last to the first and
let ``E(j)`` be the smallest possible end of the bucket that closes at gradient layer ``j``,
over all partitions of the layers above ``j``. ``E(j) = min_i max(r_j, E(i-1)) + T(bytes of
layers i..j)``: every later end is ``max(r, previous end) + T``, monotone non-decreasing in
the previous end, so a prefix partition with a smaller end at the same boundary is never
worse for any continuation, and keeping only the smallest ``E`` per boundary loses nothing.
``O(G^2)`` for ``G`` gradient layers (vectorised over ``i``). With worker classes of
different speeds the classes may start an iteration at different times, so the program (which
takes a gradient as ready when the slowest class has it, all classes starting together) is a
heuristic there; the result is always re-measured with the evaluator.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import fast, schedules
from .cluster import Cluster
from .errors import DearsimError, ParamError
from .network import LinearCosts, NetworkModel, Op, load_network
from .trace import Trace, load_trace
from .units import MIB

Range = tuple[int, int]

#: the methods each schedule supports
METHODS: dict[str, tuple[str, ...]] = {
    "wfbp": ("optimal",),
    "ddp": ("scan", "optimal"),
    "horovod": ("scan", "bayes"),
    "mgwfbp": ("optimal",),
    "bytescheduler": ("bayes",),
    "dear": ("scan", "bayes", "partition"),
}
#: the threshold option a ``scan`` varies
THRESHOLD_OPTION = {
    "ddp": "bucket_cap_mb",
    "horovod": "fusion_threshold_mb",
    "dear": "threshold_mb",
}
DEFAULT_BUDGET = {"scan": 64, "bayes": 0, "optimal": 0, "partition": 400}
#: the real tuners' trial counts
BAYES_TRIALS = {"dear": 10, "horovod": 20, "bytescheduler": 15}
BAYES_RANDOM = {"dear": 3, "horovod": 5, "bytescheduler": 10}
SCAN_LO_MB, SCAN_HI_MB = 1.0, 256.0
#: the largest budget a sweep config may give a search (a typo must not start a search of
#: days; ``dearsim search`` and :func:`search` take any)
MAX_BUDGET = 10_000


def effective_budget(scheduler: str, method: str, budget: int | None) -> int | None:
    """What a search with ``budget`` (None: the method's default) spends: grid points
    (``scan``), trials (``bayes``), evaluations (``partition``); None for ``optimal``."""
    if method == "optimal":
        return None
    if budget is not None:
        return budget
    if method == "bayes":
        return BAYES_TRIALS[scheduler]
    return DEFAULT_BUDGET[method]


@dataclass
class Setting:
    """One workload: what every evaluation shares."""

    trace: Trace
    costs: LinearCosts
    cluster: Cluster
    network: str
    iterations: int = 10
    warmup: int = 2
    evaluations: int = 0

    def time(self, scheduler: str, options: Mapping[str, Any]) -> float:
        """Iteration time of one schedule with ``options`` (the fast evaluator)."""
        self.evaluations += 1
        sched = schedules.create(scheduler, dict(options))
        return fast.evaluate(sched, self.trace, self.costs, self.cluster, self.iterations,
                             self.warmup)

    def ranges(self, scheduler: str, options: Mapping[str, Any]) -> list[Range]:
        """The buckets or groups a schedule uses, as layer ranges."""
        sched = schedules.create(scheduler, dict(options))
        raw = fast.run(sched, self.trace, self.costs, self.cluster, self.iterations)
        w = raw.iteration == self.warmup
        pairs = np.unique(np.stack([raw.first[w], raw.last[w]], axis=1), axis=0)
        return [(int(a), int(b)) for a, b in pairs.tolist()]


@dataclass
class SearchResult:
    """What a search found."""

    scheduler: str
    method: str
    options: dict[str, Any]
    iteration_time_s: float
    default_time_s: float
    ranges: list[Range]
    evaluations: int
    threshold_time_s: float | None = None
    threshold_options: dict[str, Any] | None = None
    reference_time_s: float | None = None
    reference: str | None = None
    trials_to_best: int | None = None
    history: list[tuple[dict[str, Any], float]] = field(default_factory=list, repr=False)

    @property
    def gain_over_default(self) -> float:
        """``T_default / T_searched - 1`` (0.10 reads "10% faster than the default")."""
        return self.default_time_s / self.iteration_time_s - 1.0

    @property
    def gain_over_threshold(self) -> float | None:
        if self.threshold_time_s is None:
            return None
        return self.threshold_time_s / self.iteration_time_s - 1.0

    @property
    def gap_to_reference(self) -> float | None:
        """``T_found / T_reference - 1``: how far a Bayesian tuner landed from the best
        answer known (the scan's, or a dense grid's)."""
        if self.reference_time_s is None:
            return None
        return self.iteration_time_s / self.reference_time_s - 1.0

    def yaml_snippet(self) -> str:
        """A schedule entry for a sweep config."""
        label = f"{self.scheduler}-searched"
        opts = ", ".join(f"{k}: {_yaml_value(v)}" for k, v in self.options.items())
        return f"- {{name: {self.scheduler}, label: {label}, options: {{{opts}}}}}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler,
            "method": self.method,
            "options": self.options,
            "ranges": [list(r) for r in self.ranges],
            "iteration_time_s": self.iteration_time_s,
            "default_time_s": self.default_time_s,
            "gain_over_default": self.gain_over_default,
            "threshold_options": self.threshold_options,
            "threshold_time_s": self.threshold_time_s,
            "gain_over_threshold": self.gain_over_threshold,
            "reference": self.reference,
            "reference_time_s": self.reference_time_s,
            "gap_to_reference": self.gap_to_reference,
            "trials_to_best": self.trials_to_best,
            "evaluations": self.evaluations,
            "yaml": self.yaml_snippet(),
        }


def _yaml_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


# --------------------------------------------------------------------------- scan


def log_grid(points: int, lo: float = SCAN_LO_MB, hi: float = SCAN_HI_MB) -> list[float]:
    """``points`` thresholds evenly spaced in log between ``lo`` and ``hi`` MiB."""
    if points == 1:
        return [lo]
    return [float(x) for x in np.geomspace(lo, hi, points)]


def scan(setting: Setting, scheduler: str, budget: int) -> SearchResult:
    """Every threshold of a ``budget``-point log grid, and the schedule's default: the best
    of them (the default, as options ``{}``, when no grid point beats it; so a scan never
    reports worse than the default)."""
    key = THRESHOLD_OPTION[scheduler]
    default = setting.time(scheduler, {})
    history: list[tuple[dict[str, Any], float]] = []
    for mb in log_grid(budget):
        opts = {key: mb}
        history.append((opts, setting.time(scheduler, opts)))
    best_opts, best = min(history, key=lambda x: x[1])
    if default < best:
        best_opts, best = {}, default
    return SearchResult(
        scheduler=scheduler,
        method="scan",
        options=dict(best_opts),
        iteration_time_s=best,
        default_time_s=default,
        ranges=setting.ranges(scheduler, best_opts),
        evaluations=setting.evaluations,
        threshold_time_s=best,
        threshold_options=dict(best_opts),
        history=history,
    )


# --------------------------------------------------------------------------- bayes


def bayes(setting: Setting, scheduler: str, budget: int, seed: int,
          references: bool = True) -> SearchResult:
    try:
        from skopt import gp_minimize
        from skopt.space import Integer, Real
    except ImportError:  # pragma: no cover - depends on the environment
        raise DearsimError(
            "method 'bayes' needs scikit-optimize: pip install 'dearsim[search]'"
        ) from None
    calls = budget or BAYES_TRIALS[scheduler]
    n_random = min(BAYES_RANDOM[scheduler], calls)
    space: list[Any]
    to_opts: Callable[[list[Any]], dict[str, Any]]
    if scheduler == "dear":
        space = [Real(1.0, 256.0, prior="log-uniform", name="threshold_mb")]

        def to_opts(x: list[Any]) -> dict[str, Any]:
            return {"threshold_mb": float(x[0])}

    elif scheduler == "horovod":
        space = [
            Real(0.0, 64.0, name="fusion_threshold_mb"),
            Real(1.0, 100.0, name="cycle_time_ms"),
        ]

        def to_opts(x: list[Any]) -> dict[str, Any]:
            # 0 MB means no fusion; the option must be > 0: one byte fuses nothing either
            return {
                "fusion_threshold_mb": max(float(x[0]), 1.0 / MIB),
                "cycle_time_ms": float(x[1]),
            }

    else:
        space = [
            Integer(1_000_000, 128_000_000, prior="log-uniform", name="partition_bytes"),
            Integer(1_000_000, 512_000_000, prior="log-uniform", name="credit_bytes"),
        ]

        def to_opts(x: list[Any]) -> dict[str, Any]:
            return {"partition_bytes": int(x[0]), "credit_bytes": int(x[1])}

    default = setting.time(scheduler, {})
    history: list[tuple[dict[str, Any], float]] = []

    def objective(x: list[Any]) -> float:
        opts = to_opts(x)
        t = setting.time(scheduler, opts)
        history.append((opts, t))
        return t * 1e3  # ms: a well-scaled objective for the Gaussian process

    # One BLAS thread: the Gaussian process works on matrices of ``calls`` rows, where
    # threads only cost their wake-ups, and a sweep runs a search in each of its worker
    # processes, one per core: with BLAS threads of their own they fought for the cores
    # (paper.yaml on 2 cores: 248 s instead of 38 s). threadpoolctl comes with scikit-learn.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        one_thread: Any = contextlib.nullcontext()
    else:
        one_thread = threadpool_limits(limits=1)

    with warnings.catch_warnings(), one_thread:
        # skopt warns when it proposes a point twice (it then draws a random one)
        warnings.simplefilter("ignore", UserWarning)
        gp_minimize(
            objective,
            space,
            n_calls=calls,
            n_initial_points=n_random,
            acq_func="EI",
            random_state=seed,
        )
    best_i = min(range(len(history)), key=lambda i: history[i][1])
    best_opts, best = history[best_i]
    # the best answer known, to say how far the tuner landed from it
    thr_t = thr_o = None
    ref_t: float | None = None
    ref_name: str | None = None
    sub = _fresh(setting)
    if references and scheduler == "dear":
        ref = scan(sub, scheduler, 64)
        ref_t, ref_name = ref.iteration_time_s, "scan of threshold_mb (64 points)"
        thr_t, thr_o = ref.threshold_time_s, ref.threshold_options
    elif references and scheduler == "horovod":
        grid = [{"fusion_threshold_mb": f, "cycle_time_ms": c}
                for f in [1.0 / MIB, *log_grid(11, 0.25, 64)] for c in log_grid(12, 1, 100)]
        ref_t = min(sub.time(scheduler, o) for o in grid)
        ref_name = "12x12 grid of fusion threshold x cycle time"
        sc = scan(_fresh(setting), scheduler, 64)
        thr_t, thr_o = sc.threshold_time_s, sc.threshold_options
    elif references:
        grid = [{"partition_bytes": int(p * 1e6), "credit_bytes": int(c * 1e6)}
                for p in log_grid(8, 1, 128) for c in log_grid(8, 1, 512)]
        ref_t = min(sub.time(scheduler, o) for o in grid)
        ref_name = "8x8 grid of partition x credit"
    return SearchResult(
        scheduler=scheduler,
        method="bayes",
        options=dict(best_opts),
        iteration_time_s=best,
        default_time_s=default,
        ranges=setting.ranges(scheduler, best_opts),
        evaluations=len(history),
        threshold_time_s=thr_t,
        threshold_options=thr_o,
        reference_time_s=ref_t,
        reference=ref_name,
        trials_to_best=best_i + 1,
        history=history,
    )


def _fresh(s: Setting) -> Setting:
    return Setting(s.trace, s.costs, s.cluster, s.network, s.iterations, s.warmup)


# --------------------------------------------------------------------------- optimal


def ready_times(trace: Trace, cluster: Cluster) -> np.ndarray:
    """When each layer's gradient is ready, relative to the end of the forward pass, on the
    slowest class (classes starting the backward pass together)."""
    b = np.array(trace.bwd, dtype=float)
    suffix = np.cumsum(b[::-1])[::-1]
    slow = max(s for s, _ in cluster.classes())
    return suffix * slow


def optimal_buckets(
    trace: Trace, costs: LinearCosts, cluster: Cluster
) -> tuple[list[Range], float]:
    """The partition of the gradient layers into contiguous buckets whose last all-reduce
    ends earliest (see the module docstring): the buckets in forward order and that end,
    relative to the end of the forward pass."""
    grads = list(trace.grad_layers)
    if not grads:
        return [], -math.inf
    desc = grads[::-1]  # posting order: the last layer first
    g = len(desc)
    r = ready_times(trace, cluster)[desc]
    size = np.array([trace.size[i] for i in desc], dtype=float)
    csize = np.r_[0.0, np.cumsum(size)]
    line = costs.allreduce
    a, bb = (line.a, line.b) if costs.workers > 1 else (0.0, 0.0)
    best = np.full(g + 1, math.inf)  # best[j]: smallest end with buckets covering desc[:j]
    best[0] = -math.inf
    arg = np.zeros(g + 1, dtype=np.int64)
    for j in range(1, g + 1):
        # the last bucket is desc[i:j], ready when desc[j-1] (its lowest layer) is
        i = np.arange(j)
        ends = np.maximum(r[j - 1], best[:j]) + (a + bb * (csize[j] - csize[i]))
        k = int(np.argmin(ends))
        best[j] = ends[k]
        arg[j] = k
    out: list[Range] = []
    j = g
    while j > 0:
        i = int(arg[j])
        out.append((desc[j - 1], desc[i]))
        j = i
    return sorted(out), float(best[g])


def optimal(setting: Setting, scheduler: str, references: bool = True) -> SearchResult:
    ranges, _ = optimal_buckets(setting.trace, setting.costs, setting.cluster)
    default = setting.time(scheduler, {})
    opts = {"buckets": [list(x) for x in ranges]}
    t = setting.time(scheduler, opts) if ranges else default
    thr_t = thr_o = None
    if scheduler == "ddp" and references:
        sc = scan(_fresh(setting), "ddp", 64)
        thr_t, thr_o = sc.iteration_time_s, sc.threshold_options
    return SearchResult(
        scheduler=scheduler,
        method="optimal",
        options=opts,
        iteration_time_s=t,
        default_time_s=default,
        ranges=ranges,
        evaluations=setting.evaluations,
        threshold_time_s=thr_t,
        threshold_options=thr_o,
    )


# --------------------------------------------------------------------------- DeAR partition


def _groups_of(cuts: tuple[int, ...], grads: list[int]) -> list[list[int]]:
    """Groups as layer ranges from the indices (into ``grads``) where a new group starts."""
    bounds = [0, *cuts, len(grads)]
    return [[grads[a], grads[b - 1]] for a, b in zip(bounds, bounds[1:])]


def partition(setting: Setting, budget: int, start: SearchResult | None = None) -> SearchResult:
    """Local search over DeAR's group boundaries from the best single threshold: try moving
    each boundary by 1, 2, 4, ... gradient layers, removing it, and splitting each group in
    two; keep any move that lowers the iteration time; stop when no move helps or after
    ``budget`` evaluations."""
    grads = list(setting.trace.grad_layers)
    start = start or scan(_fresh(setting), "dear", 64)
    default = start.default_time_s
    thr_opts = dict(start.options)
    groups0 = setting.ranges("dear", thr_opts)
    first_idx = {layer: k for k, layer in enumerate(grads)}
    cuts = tuple(sorted(first_idx[lo] for lo, _ in groups0)[1:]) if grads else ()
    seen: dict[tuple[int, ...], float] = {}
    prefetch = thr_opts.get("prefetch", "chain")

    def cost(c: tuple[int, ...]) -> float:
        hit = seen.get(c)
        if hit is None:
            opts = {"groups": _groups_of(c, grads), "prefetch": prefetch}
            hit = seen[c] = setting.time("dear", opts)
        return hit

    best_t = start.iteration_time_s
    seen[cuts] = best_t
    best = cuts
    g = len(grads)
    improved = True
    while improved and len(seen) < budget:
        improved = False
        moves: list[tuple[int, ...]] = []
        cur = list(best)
        for k in range(len(cur)):
            lo = cur[k - 1] + 1 if k > 0 else 1
            hi = cur[k + 1] - 1 if k + 1 < len(cur) else g - 1
            step = 1
            while step < g:
                for d in (-step, step):
                    x = cur[k] + d
                    if lo <= x <= hi:
                        moves.append(tuple(cur[:k] + [x] + cur[k + 1:]))
                step *= 2
            moves.append(tuple(cur[:k] + cur[k + 1:]))
        bounds = [0, *cur, g]
        for a, b in zip(bounds, bounds[1:]):
            if b - a >= 2:
                moves.append(tuple(sorted(cur + [(a + b) // 2])))
        for mv in moves:
            if len(seen) >= budget:
                break
            if mv in seen:
                continue
            t = cost(mv)
            if t < best_t * (1 - 1e-12):
                best_t, best = t, mv
                improved = True
                break
    if best == cuts:
        opts = thr_opts
        ranges = groups0
    else:
        opts = {"groups": _groups_of(best, grads)}
        if prefetch != "chain":
            opts["prefetch"] = prefetch
        ranges = [tuple(x) for x in opts["groups"]]
    return SearchResult(
        scheduler="dear",
        method="partition",
        options=opts,
        iteration_time_s=best_t,
        default_time_s=default,
        ranges=[(int(a), int(b)) for a, b in ranges],
        evaluations=len(seen) + start.evaluations,
        threshold_time_s=start.iteration_time_s,
        threshold_options=thr_opts,
    )


# --------------------------------------------------------------------------- entry point


def search(
    trace: Trace | str | Path,
    network: NetworkModel | str | Path | Mapping[str, Any],
    workers: int | Cluster,
    scheduler: str,
    method: str,
    *,
    budget: int | None = None,
    seed: int = 0,
    iterations: int = 10,
    warmup: int = 2,
    references: bool = True,
) -> SearchResult:
    """Search ``scheduler``'s fusion with ``method`` (see the module docstring).

    ``budget``: grid points (``scan``, default 64), trials (``bayes``, default the real
    tuner's), evaluations (``partition``, default 400); ``optimal`` needs none.
    ``references=False`` skips what is computed only to be reported beside the answer (the
    Bayesian tuners' reference grids, DDP's best threshold next to its optimal buckets):
    the answer is the same, and a sweep that only runs it is faster."""
    schedules.get(scheduler)  # unknown scheduler: one clear line
    valid = METHODS.get(scheduler, ())
    if method not in valid:
        raise DearsimError(
            f"method {method!r} does not apply to scheduler {scheduler!r}"
            + (f" (valid: {', '.join(valid)})" if valid else "")
        )
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise ParamError("budget", f"must be a positive integer, got {budget!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParamError("seed", f"must be an integer, got {seed!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < warmup + 2:
        raise ParamError("iterations", f"must be an integer >= warmup + 2 = {warmup + 2}, "
                         f"got {iterations!r}")
    tr = trace if isinstance(trace, Trace) else load_trace(trace)
    net = load_network(network)
    cluster = workers if isinstance(workers, Cluster) else Cluster(workers)
    setting = Setting(tr, net.costs(cluster.workers), cluster, net.name, iterations, warmup)
    if method == "scan":
        return scan(setting, scheduler, budget or DEFAULT_BUDGET["scan"])
    if method == "bayes":
        return bayes(setting, scheduler, budget or 0, seed, references)
    if method == "optimal":
        return optimal(setting, scheduler, references)
    return partition(setting, budget or DEFAULT_BUDGET["partition"])


def to_json(result: SearchResult) -> str:
    return json.dumps(result.to_dict())


_ = Op  # re-exported name used in docs
