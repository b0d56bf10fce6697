"""Running a sweep: executors, results written as they arrive, resume.

Each run of a loaded config (:attr:`dearsim.config.LoadedConfig.runs`, expanded once) is
simulated by :func:`execute`, on a process pool (``local``) or a dask.distributed cluster
(``dask``); the workers get the sweep's traces, loaded once in this process, and load its
plugins once each. Every finished run is appended at once to ``OUT/results.jsonl`` (one
JSON object per line, flushed; columns in :mod:`dearsim.table`), so killing a sweep loses no
finished row and ``--resume`` skips the runs already there (matched by their run hash, which
covers what a run computes and never a path: a sweep resumes from any folder). A run that
fails is recorded with its error and the sweep goes on. At the end the rows, in config
order, are written to ``results.csv`` and ``results.parquet`` beside ``config.yaml``, the
config that produced them.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import table
from .config import LoadedConfig, RunSpec
from .errors import DearsimError
from .plugins import load_plugins
from .trace import Trace

RESULTS_JSONL = "results.jsonl"

#: The start method of the process pool (None: the platform's default). Workers get the
#: traces and load the plugins in their initializer, whatever the method.
MP_START: str | None = None

#: The traces of this worker process, by content hash (set by :func:`init_worker`).
_TRACES: dict[str, Trace] = {}


def init_worker(traces: Mapping[str, Trace], plugins: tuple[str, ...]) -> None:
    """Process-pool initializer: keep the sweep's traces and load its plugins, once."""
    _TRACES.update(traces)
    try:
        load_plugins(plugins)
    except DearsimError:
        pass  # each run loads them again and records the error in its row


def execute(run: RunSpec, traces: Mapping[str, Trace] | None = None) -> dict[str, Any]:
    """Simulate one run and return its row. Never raises: failures become error rows."""
    from .api import simulate

    traces = _TRACES if traces is None else traces
    try:
        load_plugins(run.plugins)
        trace = traces.get(run.trace_sha256)
        if trace is None:
            raise DearsimError(f"trace {run.trace} ({run.trace_sha256[:16]}) was not sent "
                               "to this worker")
        result = simulate(
            trace,
            run.network_model(),
            run.workers,
            run.scheduler,
            run.options,
            iterations=run.iterations,
            warmup=run.warmup,
            batch_size=run.batch_size,
        )
    except Exception as exc:  # recorded, not raised: one bad point must not stop a sweep
        kind = "" if isinstance(exc, DearsimError) else f"{type(exc).__name__}: "
        return table.row(run, error=(kind + str(exc)).replace("\n", " "))
    return table.row(run, result)


def execute_batch(
    batch: list[RunSpec], traces: Mapping[str, Trace] | None = None
) -> list[dict[str, Any]]:
    return [execute(run, traces) for run in batch]


# --------------------------------------------------------------------------- executors


def _batches(runs: list[RunSpec], size: int) -> Iterator[list[RunSpec]]:
    for i in range(0, len(runs), size):
        yield runs[i : i + size]


def _needs(runs: list[RunSpec], traces: Mapping[str, Trace]) -> tuple[dict[str, Trace],
                                                                     tuple[str, ...]]:
    """The traces and plugins ``runs`` use."""
    used = {r.trace_sha256 for r in runs}
    plugins = tuple(dict.fromkeys(p for r in runs for p in r.plugins))
    return {k: v for k, v in traces.items() if k in used}, plugins


def run_local(
    runs: list[RunSpec], traces: Mapping[str, Trace], jobs: int, batch: int
) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on ``jobs`` processes (in this process if 1). Each
    worker process gets the traces and loads the plugins once, in its initializer."""
    if jobs <= 1:
        for b in _batches(runs, batch):
            yield execute_batch(b, traces)
        return
    needed, plugins = _needs(runs, traces)
    ctx = multiprocessing.get_context(MP_START) if MP_START else None
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(needed, plugins)
    ) as pool:
        todo = iter(_batches(runs, batch))
        running = set()
        for b in itertools.islice(todo, jobs * 4):
            running.add(pool.submit(execute_batch, b))
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(pool.submit(execute_batch, nxt))


def run_dask(
    runs: list[RunSpec], traces: Mapping[str, Trace], jobs: int, batch: int,
    address: str | None,
) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on a dask.distributed cluster (a local one with
    ``jobs`` worker processes when no ``address`` is given). The traces are scattered to
    every worker once; each run names the plugins its worker loads (once per process)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DearsimError(
            "--executor dask needs dask.distributed: pip install 'dearsim[distributed]'"
        ) from None
    cluster = None
    try:
        if address:
            client = Client(address, timeout="10s")
        else:
            cluster = LocalCluster(
                n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
    except OSError as exc:
        raise DearsimError(f"cannot reach the dask scheduler at {address}: {exc}") from None
    try:
        needed, _ = _needs(runs, traces)
        [shared] = client.scatter([needed], broadcast=True)
        batches = list(_batches(runs, batch))
        futures = client.map(execute_batch, batches, [shared] * len(batches), pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepOutcome:
    out: Path
    rows: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: int
    seconds: float


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.jsonl; a line cut short by a kill is ignored."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the last line of a killed sweep
    return rows


def _drop_torn_line(path: Path) -> None:
    """Cut a last line left unfinished by a killed sweep, so appending starts cleanly."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def run_sweep(
    loaded: LoadedConfig,
    out: Path,
    *,
    jobs: int = 1,
    resume: bool = False,
    executor: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepOutcome:
    """Run every run of ``loaded`` not already in ``out`` and write the result tables."""
    if jobs < 1:
        raise DearsimError(f"--jobs must be a positive integer, got {jobs}")
    if executor not in ("local", "dask"):
        raise DearsimError(f"--executor must be 'local' or 'dask', got {executor!r}")
    if address and executor != "dask":
        raise DearsimError("--address is for --executor dask")
    runs = loaded.runs
    jsonl = out / RESULTS_JSONL
    if jsonl.exists() and not resume:
        raise DearsimError(
            f"{out}: already holds results of a sweep; pass --resume to continue it, "
            "or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(loaded.text, encoding="utf-8")
    _drop_torn_line(jsonl)
    done = {r["run_hash"] for r in read_rows(jsonl)}
    todo = [r for r in runs if r.run_hash not in done]
    skipped = len(runs) - len(todo)
    batch = max(1, min(32, len(todo) // (max(jobs, 1) * 8) or 1))
    t0 = time.perf_counter()
    ran = 0
    if progress:
        progress(skipped, len(runs))
    if todo:
        source = (
            run_local(todo, loaded.traces, jobs, batch)
            if executor == "local"
            else run_dask(todo, loaded.traces, jobs, batch, address)
        )
        with jsonl.open("a", encoding="utf-8") as f:
            for rows in source:
                for row in rows:
                    f.write(json.dumps(row, allow_nan=True) + "\n")
                f.flush()
                ran += len(rows)
                if progress:
                    progress(skipped + ran, len(runs))
            os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    wanted = {r.run_hash: r.index for r in runs}
    by_hash: dict[str, dict[str, Any]] = {}
    for row in read_rows(jsonl):
        if row["run_hash"] in wanted and row["run_hash"] not in by_hash:
            row["index"] = wanted[row["run_hash"]]
            by_hash[row["run_hash"]] = row
    rows = sorted(by_hash.values(), key=lambda r: r["index"])
    write_tables(rows, out)
    failed = sum(1 for r in rows if r["status"] != "ok")
    return SweepOutcome(out, rows, ran, skipped, failed, seconds)


def results_frame(rows: list[dict[str, Any]]) -> Any:
    """Rows as a DataFrame with fixed column types (see :func:`dearsim.table.frame`)."""
    return table.frame(rows)


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    frame = results_frame(rows)
    frame.to_csv(out / "results.csv", index=False)
    try:
        frame.to_parquet(out / "results.parquet", index=False)
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        print(f"dearsim: warning: no Parquet written ({exc})", file=sys.stderr)
