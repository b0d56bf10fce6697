"""The Python API: :func:`simulate` one schedule, :func:`compare` several."""

from __future__ import annotations

import os
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

#: The most collectives (plus Horovod cycle ticks) one simulation may post, all iterations
#: together, unless told otherwise (``max_collectives=`` or ``DEARSIM_MAX_COLLECTIVES``).
MAX_COLLECTIVES = 5_000_000
MAX_COLLECTIVES_ENV = "DEARSIM_MAX_COLLECTIVES"


def _trace(trace: Trace | str | Path) -> Trace:
    if isinstance(trace, Trace):
        return trace
    if not isinstance(trace, (str, Path)):
        raise ParamError("trace", f"must be a Trace or a trace file path, got "
                                  f"{type(trace).__name__}")
    return load_trace(trace)  # refuses a FIFO or other special file before reading


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays (anywhere inside lists, tuples and mappings)
    turned into Python numbers and lists, so every number-taking parameter accepts them."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if isinstance(value, list) else [
            plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return plain(tolist())
    return value


def max_collectives(limit: int | None = None) -> int:
    """The work limit in force: ``limit``, else ``DEARSIM_MAX_COLLECTIVES``, else the
    default :data:`MAX_COLLECTIVES`."""
    if limit is not None:
        limit = plain(limit)
        if not _is_int(limit) or limit < 1:
            raise ParamError("max_collectives", f"must be a positive integer, got {limit!r}")
        return int(limit)
    env = os.environ.get(MAX_COLLECTIVES_ENV)
    if env:
        try:
            value = int(env.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise DearsimError(f"{MAX_COLLECTIVES_ENV}={env!r}: must be a positive integer")
        return value
    return MAX_COLLECTIVES


def collectives_per_iteration(trace: Trace, sched: Schedule) -> tuple[int, str]:
    """An upper bound on what one iteration of ``sched`` posts on ``trace`` (collectives,
    or Horovod's cycle ticks), and what was counted: ByteScheduler's chunks are
    ``sum(ceil(tensor / partition_bytes))``; Horovod ticks about every ``cycle_time_ms`` of
    compute; every other schedule posts at most two collectives per gradient tensor."""
    opts = sched.options
    part = getattr(opts, "partition_bytes", None)
    if sched.name == "bytescheduler" and isinstance(part, int) and part > 0:
        chunks = sum(-(-t // part) for layer in trace.tensors for t in layer if t > 0)
        return chunks, f"chunks of partition_bytes={part}"
    cycle_ms = getattr(opts, "cycle_time_ms", None)
    if sched.name == "horovod" and isinstance(cycle_ms, (int, float)) and cycle_ms > 0:
        ticks = trace.compute_time / (cycle_ms / 1e3)
        per = max(ticks, 2 * trace.num_tensors)
        if ticks >= 2 * trace.num_tensors:
            return (int(min(per, 1e18)) + 1,
                    f"cycle ticks (compute {trace.compute_time * 1e3:.3g} ms / "
                    f"cycle_time_ms={cycle_ms:g})")
    return 2 * trace.num_tensors, "collectives (two per gradient tensor at most)"


def check_work(trace: Trace, sched: Schedule, iterations: int,
               limit: int | None = None) -> None:
    """Refuse a simulation that would post more than the work limit (see
    :func:`max_collectives`), naming the limit and how to lift it."""
    cap = max_collectives(limit)
    per, what = collectives_per_iteration(trace, sched)
    total = per * iterations
    if total <= cap:
        return
    param = "options" if per > cap else "iterations"
    raise ParamError(
        param,
        f"{sched.name} on {trace.name} would post about {total:,} {what} "
        f"({per:,} per iteration x {iterations} iterations), more than the limit of "
        f"{cap:,}; lift it with max_collectives= (Python) or {MAX_COLLECTIVES_ENV}=N",
    )


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
    max_collectives: int | None = None,
) -> Result:
    """Simulate ``iterations`` training iterations and report steady-state metrics.

    ``trace`` is a :class:`~dearsim.trace.Trace` or a trace file; ``network`` a model, a
    preset name (``"10GbE"``, ``"100GbIB"``, ...), a network YAML file or a mapping;
    ``workers`` a worker count or a :class:`~dearsim.cluster.Cluster`; ``scheduler`` a
    registered name or a :class:`~dearsim.schedules.Schedule` instance with ``options``
    (the ``--set`` keys) for it. ``batch_size`` overrides the trace's per-worker batch size.

    ``batch_size`` only rescales the reported throughput (samples/s): the trace's compute
    times were measured at its own batch size and are not changed.

    ``engine`` is ``"simpy"`` (the reference: every op and collective can be recorded with
    ``record_ops``) or ``"fast"`` (:mod:`dearsim.fast`, the SimPy-free evaluator: the same
    numbers within 1e-9, several times faster, ``Result.raw`` is ``None``).

    Numbers may be numpy scalars and lists numpy arrays. A simulation that would post more
    than ``max_collectives`` collectives (default :data:`MAX_COLLECTIVES`, or the
    ``DEARSIM_MAX_COLLECTIVES`` environment variable) is refused before it starts.

    A bad value raises :class:`~dearsim.errors.ParamError` naming the parameter.
    """
    if engine not in ("simpy", "fast"):
        raise ParamError("engine", f"must be 'simpy' or 'fast', got {engine!r}")
    if engine == "fast" and record_ops:
        raise ParamError("record_ops", "needs engine='simpy' (the fast evaluator records no ops)")
    workers, iterations, warmup, batch_size = (
        plain(workers), plain(iterations), plain(warmup), plain(batch_size))
    options = plain(options) if options is not None else None
    network = plain(network) if isinstance(network, Mapping) else network
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
    check_work(tr, sched, iterations, max_collectives)
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
    max_collectives: int | None = None,
    record_ops: bool = False,
    engine: str = "simpy",
) -> Comparison:
    """Run every schedule (default: all registered, with their defaults) on one setting
    (``record_ops``: keep every op and collective, for timelines; ``engine`` as in
    :func:`simulate`)."""
    workers, iterations, warmup, batch_size = (
        plain(workers), plain(iterations), plain(warmup), plain(batch_size))
    if schedulers is not None:
        schedulers = [str(plain(n)) for n in schedulers]
    options = plain(options) if options is not None else None
    network = plain(network) if isinstance(network, Mapping) else network
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
            max_collectives=max_collectives,
            record_ops=record_ops,
            engine=engine,
        )
        for name in names
    ]
    return Comparison(results, baseline)
