"""What a run reports (``docs/model.md``, "What a run reports"), derived from the engine's
measurements."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .engine import CollectiveRecord, Range, RawRun


@dataclass(frozen=True)
class Result:
    """One simulated run.

    Times are seconds per iteration, measured in steady state: ``iteration_time_s`` is the mean
    interval between the ends of consecutive backward passes after ``warmup`` iterations;
    ``compute_s`` and ``comm_s`` are the compute-stream and link busy times of one measured
    iteration (mean over the measured ones); ``exposed_comm_s = iteration_time_s - compute_s``.
    """

    scheduler: str
    options: dict[str, Any]
    trace: str
    network: str
    workers: int
    iterations: int
    warmup: int
    iteration_time_s: float
    compute_s: float
    comm_s: float
    exposed_comm_s: float
    buckets: list[Range]
    batch_size: int | None
    comm_bytes: int
    collectives: int
    raw: RawRun | None = field(default=None, repr=False, compare=False)
    #: the median and 99th percentile of the measured iterations' times (the intervals
    #: between consecutive backward-pass ends after warm-up; ``iteration_time_s`` is their
    #: mean). numpy's default (linear) percentile.
    iteration_p50_s: float = math.nan
    iteration_p99_s: float = math.nan
    #: per worker (rank order), the time its compute stream waits per iteration:
    #: ``iteration_time_s`` minus its own compute busy time (mean over the measured iterations)
    worker_wait_s: tuple[float, ...] = field(default=(), repr=False)

    @property
    def throughput(self) -> float | None:
        """Samples per second: batch size x workers / iteration time (None if unknown)."""
        if self.batch_size is None or self.iteration_time_s <= 0:
            return None
        return self.batch_size * self.workers / self.iteration_time_s

    @property
    def overlapped_comm_s(self) -> float:
        """Link busy time hidden under compute: ``comm_s - exposed_comm_s`` (at least 0)."""
        return max(0.0, self.comm_s - self.exposed_comm_s)

    def speedup_over(self, other: Result) -> float:
        """``T_other / T_self`` (1.83 reads "83% faster")."""
        return other.iteration_time_s / self.iteration_time_s

    @property
    def wait_mean_s(self) -> float:
        """The workers' mean waiting time per iteration."""
        w = self.worker_wait_s
        return math.fsum(w) / len(w) if w else math.nan

    @property
    def wait_max_s(self) -> float:
        """The longest waiting time of a worker (the fastest worker's, usually)."""
        return max(self.worker_wait_s) if self.worker_wait_s else math.nan

    @property
    def wait_min_s(self) -> float:
        """The shortest waiting time of a worker (the straggler's, usually)."""
        return min(self.worker_wait_s) if self.worker_wait_s else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the keys of ``dearsim simulate --json``)."""
        return {
            "scheduler": self.scheduler,
            "options": self.options,
            "trace": self.trace,
            "network": self.network,
            "workers": self.workers,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "iteration_time_s": self.iteration_time_s,
            "compute_s": self.compute_s,
            "comm_s": self.comm_s,
            "exposed_comm_s": self.exposed_comm_s,
            "overlapped_comm_s": self.overlapped_comm_s,
            "throughput_samples_per_s": self.throughput,
            "batch_size": self.batch_size,
            "comm_bytes": self.comm_bytes,
            "collectives": self.collectives,
            "buckets": [list(b) for b in self.buckets],
            "iteration_p50_s": self.iteration_p50_s,
            "iteration_p99_s": self.iteration_p99_s,
            "wait_mean_s": self.wait_mean_s,
            "wait_min_s": self.wait_min_s,
            "wait_max_s": self.wait_max_s,
            "worker_wait_s": list(self.worker_wait_s),
        }


def measure(
    raw: RawRun,
    warmup: int,
    *,
    scheduler: str,
    options: dict[str, Any],
    trace: str,
    network: str,
    workers: int,
    batch_size: int | None,
) -> Result:
    """Steady-state metrics of a run.

    The period is averaged over backward-pass ends ``warmup..N-1``; per-iteration busy times
    over the iterations ``warmup..N-2``, whose communication and updates all happen inside the
    run (the last iteration's all-gathers or updates belong to an iteration never simulated).
    """
    n = raw.iterations
    period = (raw.bp_end[n - 1] - raw.bp_end[warmup]) / (n - 1 - warmup)
    measured = range(warmup, n - 1)
    compute = math.fsum(raw.busy[i] for i in measured) / len(measured)
    per_it: dict[int, list[CollectiveRecord]] = {i: [] for i in measured}
    for rec in raw.collectives:
        if rec.iteration in per_it:
            per_it[rec.iteration].append(rec)
    comm = math.fsum(r.end - r.start for i in measured for r in per_it[i]) / len(measured)
    nbytes = sum(r.nbytes for i in measured for r in per_it[i]) // len(measured)
    count = sum(len(per_it[i]) for i in measured) // len(measured)
    # The gradient groups: the layer ranges the collectives of the first measured iteration
    # carried, whatever their kind (DeAR's reduce-scatter and all-gather of a group carry the
    # same range; a layer's tensors or chunks report that layer once).
    buckets = sorted({r.layers for r in per_it[warmup]})
    p50, p99 = spread(raw.bp_end, warmup)
    waits = worker_waits(period, raw.class_busy, raw.class_ranks, warmup, n, workers)
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
        raw=raw,
        iteration_p50_s=p50,
        iteration_p99_s=p99,
        worker_wait_s=waits,
    )


def spread(bp_end: Any, warmup: int) -> tuple[float, float]:
    """The median and 99th percentile of the intervals between the backward-pass ends
    ``warmup..N-1``."""
    import numpy as np

    t = np.asarray(bp_end, dtype=float)[warmup:]
    d = np.diff(t)
    p50, p99 = np.percentile(d, [50, 99])
    return float(p50), float(p99)


def worker_waits(
    period: float, class_busy: Any, class_ranks: Any, warmup: int, n: int, workers: int
) -> tuple[float, ...]:
    """Per worker, ``period`` minus its class's mean busy time over iterations
    ``warmup..N-2`` (the iterations whose compute all happens inside the run)."""
    if class_busy is None or class_ranks is None:
        return ()
    k = n - 1 - warmup
    out = [0.0] * workers
    for busy, ranks in zip(class_busy, class_ranks):
        wait = period - math.fsum(list(busy[warmup:n - 1])) / k
        if len(ranks) == workers:
            return (wait,) * workers
        for r in ranks:
            out[r] = wait
    return tuple(out)
