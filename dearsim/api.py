"""The Python API: :func:`simulate` one schedule, :func:`compare` several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import engine as _engine
from . import schedules, table
from .cluster import Cluster
from .errors import DearsimError, ParamError
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
    engine: str = "simpy",
) -> Result:
    """Simulate ``iterations`` training iterations and report steady-state metrics.

    ``trace`` is a :class:`~dearsim.trace.Trace` or a trace file; ``network`` a model, a
    preset name (``"10GbE"``, ``"100GbIB"``, ...), a network YAML file or a mapping;
    ``workers`` a worker count or a :class:`~dearsim.cluster.Cluster`; ``scheduler`` a
    registered name or a :class:`~dearsim.schedules.Schedule` instance with ``options``
    (the ``--set`` keys) for it. ``batch_size`` overrides the trace's per-worker batch size.

    ``engine`` is ``"simpy"`` (the reference: every op and collective can be recorded with
    ``record_ops``) or ``"fast"`` (:mod:`dearsim.fast`, the SimPy-free evaluator: the same
    numbers within 1e-9, several times faster, ``Result.raw`` is ``None``).

    A bad value raises :class:`~dearsim.errors.ParamError` naming the parameter.
    """
    if engine not in ("simpy", "fast"):
        raise ParamError("engine", f"must be 'simpy' or 'fast', got {engine!r}")
    if engine == "fast" and record_ops:
        raise ParamError("record_ops", "needs engine='simpy' (the fast evaluator records no ops)")
    _check_run_length(iterations, warmup, batch_size)
    if not isinstance(workers, Cluster):
        _check_workers(workers)
    tr = _trace(trace)
    net = load_network(network)
    cluster = workers if isinstance(workers, Cluster) else Cluster(workers)
    if isinstance(scheduler, Schedule):
        if options:
            raise ParamError(
                "options", "give options either to the Schedule or to simulate(), not both"
            )
        sched = scheduler
    else:
        try:
            cls = schedules.get(scheduler)
        except DearsimError as exc:
            raise ParamError("scheduler", str(exc)) from None
        try:
            sched = cls(dict(options or {}))
        except ParamError:
            raise
        except DearsimError as exc:
            raise ParamError("options", str(exc)) from None
    costs = net.costs(cluster.workers)
    if engine == "fast":
        from . import fast

        fast_raw = fast.run(sched, tr, costs, cluster, iterations)
        measure_run: Any = fast.measure
        raw: Any = fast_raw
    else:
        raw = _engine.run(sched, tr, costs, cluster, iterations, record_ops=record_ops)
        measure_run = measure
    return measure_run(
        raw,
        warmup,
        scheduler=sched.name,
        options=sched.options.model_dump(exclude_none=False),
        trace=tr.name,
        network=net.name,
        workers=cluster.workers,
        batch_size=batch_size if batch_size is not None else tr.batch_size,
    )


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_workers(workers: Any) -> None:
    if not _is_int(workers) or workers < 1:
        raise ParamError("workers", f"must be a positive integer, got {workers!r}")


def _check_run_length(iterations: Any, warmup: Any, batch_size: Any) -> None:
    if not _is_int(warmup) or warmup < 0:
        raise ParamError("warmup", f"must be an integer >= 0, got {warmup!r}")
    if not _is_int(iterations) or iterations < warmup + 2:
        raise ParamError(
            "iterations", f"must be an integer >= warmup + 2 = {warmup + 2}, got {iterations!r}"
        )
    if batch_size is not None and (not _is_int(batch_size) or batch_size <= 0):
        raise ParamError("batch_size", f"must be a positive integer, got {batch_size!r}")


@dataclass(frozen=True)
class Comparison:
    """Results of several schedules on one workload, network and cluster."""

    results: list[Result]
    baseline: str = table.BASELINE

    def ranked(self) -> list[Result]:
        """Best (shortest iteration) first; ties keep the schedule order."""
        return sorted(self.results, key=lambda r: r.iteration_time_s)

    def speedup(self, result: Result) -> float | None:
        """``T_baseline / T`` (:func:`dearsim.table.speedup`); None without the baseline."""
        base = next((r for r in self.results if r.scheduler == self.baseline), None)
        return None if base is None else table.speedup(base.iteration_time_s,
                                                       result.iteration_time_s)

    def rows(self) -> list[dict[str, Any]]:
        """Ranked results as dictionaries, each with its ``speedup_over_<baseline>``."""
        rows = []
        for r in self.ranked():
            row = r.to_dict()
            row[table.speedup_column(self.baseline)] = self.speedup(r)
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
    baseline: str = table.BASELINE,
) -> Comparison:
    """Run every schedule (default: all registered, with their defaults) on one setting."""
    _check_run_length(iterations, warmup, batch_size)
    if not isinstance(workers, Cluster):
        _check_workers(workers)
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
