"""The Python API: :func:`simulate` one schedule, :func:`compare` several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import engine, schedules
from .cluster import Cluster
from .errors import DearsimError
from .network import NetworkModel, load_network
from .result import Result, measure
from .schedules import Schedule
from .trace import Trace, load_trace

DEFAULT_ITERATIONS = 10
DEFAULT_WARMUP = 2


def _trace(trace: Trace | str | Path) -> Trace:
    return trace if isinstance(trace, Trace) else load_trace(trace)


def simulate(
    trace: Trace | str | Path,
    network: NetworkModel | str | Path | Mapping[str, Any],
    workers: int | Cluster,
    scheduler: str | Schedule = "dear",
    options: Mapping[str, Any] | None = None,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    batch_size: int | None = None,
    record_ops: bool = False,
) -> Result:
    """Simulate ``iterations`` training iterations and report steady-state metrics.

    ``trace`` is a :class:`~dearsim.trace.Trace` or a trace file; ``network`` a model, a
    preset name (``"10GbE"``, ``"100GbIB"``, ...), a network YAML file or a mapping;
    ``workers`` a worker count or a :class:`~dearsim.engine.Cluster`; ``scheduler`` a
    registered name or a :class:`~dearsim.schedules.Schedule` instance with ``options``
    (the ``--set`` keys) for it. ``batch_size`` overrides the trace's per-worker batch size.
    """
    tr = _trace(trace)
    net = load_network(network)
    cluster = workers if isinstance(workers, Cluster) else Cluster(workers)
    if isinstance(scheduler, Schedule):
        if options:
            raise DearsimError("give options either to the Schedule or to simulate(), not both")
        sched = scheduler
    else:
        sched = schedules.create(scheduler, dict(options or {}))
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise DearsimError(f"warmup must be an integer >= 0, got {warmup!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < warmup + 2:
        raise DearsimError(
            f"iterations must be an integer >= warmup + 2 = {warmup + 2}, got {iterations!r}"
        )
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise DearsimError(f"batch_size must be a positive integer, got {batch_size!r}")
    costs = net.costs(cluster.workers)
    raw = engine.run(sched, tr, costs, cluster, iterations, record_ops=record_ops)
    return measure(
        raw,
        warmup,
        scheduler=sched.name,
        options=sched.options.model_dump(exclude_none=False),
        trace=tr.name,
        network=net.name,
        workers=cluster.workers,
        batch_size=batch_size if batch_size is not None else tr.batch_size,
    )


@dataclass(frozen=True)
class Comparison:
    """Results of several schedules on one workload, network and cluster."""

    results: list[Result]
    baseline: str = "wfbp"

    def ranked(self) -> list[Result]:
        """Best (shortest iteration) first; ties keep the schedule order."""
        return sorted(self.results, key=lambda r: r.iteration_time_s)

    def speedup(self, result: Result) -> float | None:
        base = next((r for r in self.results if r.scheduler == self.baseline), None)
        return None if base is None else result.speedup_over(base)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.ranked():
            row = r.to_dict()
            row[f"speedup_over_{self.baseline}"] = self.speedup(r)
            rows.append(row)
        return rows

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())


def compare(
    trace: Trace | str | Path,
    network: NetworkModel | str | Path | Mapping[str, Any],
    workers: int | Cluster,
    schedulers: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    batch_size: int | None = None,
    baseline: str = "wfbp",
) -> Comparison:
    """Run every schedule (default: all registered, with their defaults) on one setting."""
    tr = _trace(trace)
    net = load_network(network)
    names = list(schedulers) if schedulers is not None else schedules.names()
    opts = dict(options or {})
    results = [
        simulate(
            tr,
            net,
            workers,
            name,
            opts.get(name),
            iterations=iterations,
            warmup=warmup,
            batch_size=batch_size,
        )
        for name in names
    ]
    return Comparison(results, baseline)
