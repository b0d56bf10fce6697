"""The results table, defined once: its columns, the metrics, the baseline and the speedup.

A sweep writes one row per run (``results.jsonl``/``.csv``/``.parquet``), the summary and the
plots read those rows, and :class:`~dearsim.api.Comparison` ranks results with the same
speedup. Everything that names a column or computes a speedup comes from here.

Units are in the column names: ``_s`` seconds, ``_s_per_byte`` seconds per byte, ``_gbps``
gigabits per second, ``_bytes`` bytes, ``_per_s`` per second.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import DearsimError

if TYPE_CHECKING:
    from .config import RunSpec
    from .result import Result

#: The schedule that speedups are measured against, unless told otherwise.
BASELINE = "wfbp"

#: Seconds per byte at 1 Gb/s (``bandwidth_gbps = BETA_AT_1GBPS / beta_s_per_byte``).
BETA_AT_1GBPS = 8e-9

#: What a run reports, one column each (see :class:`~dearsim.result.Result`).
METRICS = (
    "iteration_time_s",
    "throughput_samples_per_s",
    "compute_s",
    "comm_s",
    "exposed_comm_s",
    "overlapped_comm_s",
    "comm_bytes",
    "collectives",
    "iteration_p50_s",
    "iteration_p99_s",
    "wait_mean_s",
    "wait_min_s",
    "wait_max_s",
)

#: The alpha-beta parameters of a run's network, as ``network.<field>`` columns (empty for
#: other kinds of network; the whole description is in ``network_spec``).
NETWORK_FIELDS = ("alpha_s", "beta_s_per_byte", "gamma_s_per_byte", "bandwidth_gbps")
NETWORK_COLUMNS = tuple(f"network.{f}" for f in NETWORK_FIELDS)

#: The settings of hierarchical networks, as ``network.<field>`` columns (empty for others).
HIERARCHY_FIELDS = ("algorithm", "gpus_per_node", "nics_per_node")
HIERARCHY_COLUMNS = tuple(f"network.{f}" for f in HIERARCHY_FIELDS)

#: A run's cluster (``cluster:`` in configs), as ``cluster.<key>`` columns: always filled
#: (identical workers read 0 stragglers, slowdown 1, jitter 0, both interferences 0), so they can
#: be plotted;
#: ``cluster.slowdown`` and ``cluster.stalls`` are JSON (empty for none), ``seed`` is the
#: jitter's seed (empty without jitter).
CLUSTER_COLUMNS = (
    "cluster.stragglers",
    "cluster.straggler_slowdown",
    "cluster.jitter_cv",
    "seed",
    "cluster.interference",
    "cluster.comm_interference",
    "cluster.slowdown",
    "cluster.stalls",
)

#: Columns that describe a run apart from its schedule: the point it simulates.
POINT_COLUMNS = (
    "trace",
    "network",
    *NETWORK_COLUMNS,
    *HIERARCHY_COLUMNS,
    "workers",
    *CLUSTER_COLUMNS,
    "batch_size",
    "iterations",
    "warmup",
)

#: Every column of a results row, in order.
COLUMNS = (
    "index",
    "run_hash",
    "group_hash",
    "dearsim_version",
    "status",
    "error",
    "trace",
    "trace_sha256",
    "network",
    "network_kind",
    *NETWORK_COLUMNS,
    *HIERARCHY_COLUMNS,
    "network_spec",
    "workers",
    *CLUSTER_COLUMNS,
    "schedule",
    "scheduler",
    "options",
    "search",
    "batch_size",
    "iterations",
    "warmup",
    "engine",
    *METRICS,
    "n_buckets",
    "buckets",
)

#: Numeric columns that may be missing: floats (NaN when missing) in every table format.
NUMERIC = (*NETWORK_COLUMNS, "network.gpus_per_node", "network.nics_per_node", "batch_size",
           "cluster.stragglers", "cluster.straggler_slowdown", "cluster.jitter_cv", "seed",
           "cluster.interference", "cluster.comm_interference", *METRICS, "n_buckets")


def speedup(t_baseline: float, t: float) -> float:
    """``T_baseline / T``: 1.83 reads "83% faster than the baseline"."""
    return t_baseline / t


def speedup_column(baseline: str = BASELINE) -> str:
    """The column a :class:`~dearsim.api.Comparison` row holds its speedup in."""
    return f"speedup_over_{baseline}"


def network_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``network*`` columns of a run from its network's spec."""
    beta = spec.get("beta_s_per_byte")
    return {
        "network": spec["label"],
        "network_kind": spec["kind"],
        "network.alpha_s": spec.get("alpha_s"),
        "network.beta_s_per_byte": beta,
        "network.gamma_s_per_byte": spec.get("gamma_s_per_byte"),
        "network.bandwidth_gbps": BETA_AT_1GBPS / beta if beta else None,
        "network_spec": json.dumps(spec, sort_keys=True),
        **{f"network.{f}": spec.get(f) for f in HIERARCHY_FIELDS},
    }


def cluster_columns(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``cluster.*`` and ``seed`` columns of a run from its cluster settings (the keys
    of :meth:`~dearsim.cluster.Cluster.build` that differ from identical workers)."""
    slow, stalls = settings.get("slowdown"), settings.get("stalls")
    return {
        "cluster.stragglers": settings.get("stragglers", 0),
        "cluster.straggler_slowdown": settings.get("straggler_slowdown", 1.0),
        "cluster.jitter_cv": settings.get("jitter_cv", 0.0),
        "seed": settings.get("seed"),
        "cluster.interference": settings.get("interference", 0.0),
        "cluster.comm_interference": settings.get("comm_interference", 0.0),
        "cluster.slowdown": json.dumps(slow) if slow else None,
        "cluster.stalls": json.dumps(stalls, sort_keys=True) if stalls else None,
    }


def metrics(result: Result) -> dict[str, Any]:
    """The metric columns of a result (``METRICS``, ``n_buckets``, ``buckets`` as JSON)."""
    data = result.to_dict()
    out = {key: data[key] for key in METRICS}
    out["n_buckets"] = len(result.buckets)
    out["buckets"] = json.dumps([list(b) for b in result.buckets])
    return out


def row(
    run: RunSpec,
    result: Result | None = None,
    error: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results row of one run: its description, then its metrics (``None`` when it
    failed with ``error``). ``options``: the options simulated, when a search chose them
    (default: the run's); ``search``: what the search reports (default: the run's search,
    or nothing), as JSON in the ``search`` column."""
    from . import __version__

    out: dict[str, Any] = dict.fromkeys(COLUMNS)
    out.update(
        index=run.index,
        run_hash=run.run_hash,
        group_hash=run.group_hash,
        dearsim_version=__version__,
        status="ok" if error is None else "error",
        error=error,
        trace=run.trace,
        trace_sha256=run.trace_sha256,
        workers=run.workers,
        schedule=run.schedule,
        scheduler=run.scheduler,
        options=json.dumps(run.options if options is None else options, sort_keys=True),
        search=(None if search is None and run.search is None
                else json.dumps(run.search if search is None else search, sort_keys=True)),
        batch_size=run.batch_size,
        iterations=run.iterations,
        warmup=run.warmup,
        engine=run.engine,
    )
    out.update(network_columns(run.network))
    out.update(cluster_columns(run.cluster))
    if result is not None and error is None:
        out.update(metrics(result))
    return out


def frame(rows: list[dict[str, Any]]) -> Any:
    """Rows as a DataFrame with fixed column types: numbers that may be missing are floats
    (NaN when missing), so CSV and Parquet read back alike."""
    import pandas as pd

    data = pd.DataFrame(rows)
    for col in NUMERIC:
        if col in data.columns:
            data[col] = pd.to_numeric(data[col], errors="coerce").astype(float)
    return data


def with_speedup(data: Any, baseline: str = BASELINE) -> Any:
    """Successful rows with a ``speedup`` column: the ``baseline`` schedule's iteration time
    in the same group (same everything but the schedule) over the row's."""
    ok = data[data["status"] == "ok"].copy()
    if baseline not in set(ok["schedule"]):
        have = ", ".join(sorted(set(ok["schedule"])))
        raise DearsimError(f"baseline {baseline!r} is not among the results' schedules ({have})")
    base = ok[ok["schedule"] == baseline].set_index("group_hash")["iteration_time_s"]
    ok["speedup"] = speedup(ok["group_hash"].map(base), ok["iteration_time_s"])
    return ok


#: Integer columns (never missing).
INTEGER = ("index", "workers", "iterations", "warmup")


def arrow_schema() -> Any:
    """The Parquet schema of a results table: integers, floats (``NUMERIC``, null when
    missing) and strings; fixed, so a table written a chunk at a time has one schema."""
    import pyarrow as pa

    def kind(col: str) -> Any:
        if col in INTEGER:
            return pa.int64()
        if col in NUMERIC:
            return pa.float64()
        return pa.string()

    return pa.schema([(col, kind(col)) for col in COLUMNS])
