"""Running a sweep: executors, results written as they arrive, resume.

Each run of a config (:func:`dearsim.config.expand`) is simulated by :func:`execute`, on a
process pool (``local``) or a dask.distributed cluster (``dask``). Every finished run is
appended at once to ``OUT/results.jsonl`` (one JSON object per line, flushed), so killing a
sweep loses no finished row and ``--resume`` skips the runs already there (matched by the
hash of their full description). A run that fails is recorded with its error and the sweep
goes on. At the end the rows, in config order, are written to ``results.csv`` and
``results.parquet`` beside ``config.yaml``, the config that produced them.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import __version__
from .config import LoadedConfig, RunSpec, expand, network_from_spec
from .errors import DearsimError

RESULTS_JSONL = "results.jsonl"
METRICS = (
    "iteration_time_s",
    "throughput_samples_per_s",
    "compute_s",
    "comm_s",
    "exposed_comm_s",
    "overlapped_comm_s",
    "comm_bytes",
    "collectives",
)


@lru_cache(maxsize=64)
def _trace(path: str, digest: str) -> Any:
    from .trace import load_trace

    return load_trace(path)


def execute(index: int, run_hash: str, group_hash: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Simulate one run and return its row. Never raises: failures become error rows."""
    from .api import simulate

    row = flatten(index, run_hash, group_hash, spec)
    try:
        result = simulate(
            _trace(spec["trace_file"], spec["trace_sha256"]),
            network_from_spec(spec["network"]),
            spec["workers"],
            spec["scheduler"],
            spec["options"],
            iterations=spec["iterations"],
            warmup=spec["warmup"],
            batch_size=spec["batch_size"],
        )
    except Exception as exc:  # recorded, not raised: one bad point must not stop a sweep
        kind = "" if isinstance(exc, DearsimError) else f"{type(exc).__name__}: "
        row["status"] = "error"
        row["error"] = (kind + str(exc)).replace("\n", " ")
        return row
    data = result.to_dict()
    for key in METRICS:
        row[key] = data[key]
    row["n_buckets"] = len(result.buckets)
    row["buckets"] = json.dumps([list(b) for b in result.buckets])
    return row


def execute_batch(batch: list[tuple[int, str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [execute(*item) for item in batch]


def flatten(index: int, run_hash: str, group_hash: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The row's description columns: the run's configuration, flat."""
    net = spec["network"]
    row: dict[str, Any] = {
        "index": index,
        "run_hash": run_hash,
        "group_hash": group_hash,
        "dearsim_version": __version__,
        "status": "ok",
        "error": None,
        "trace": spec["trace"],
        "trace_sha256": spec["trace_sha256"],
        "network": net["label"],
        "network_kind": net["kind"],
        "network.alpha_s": net.get("alpha_s"),
        "network.beta_s_per_byte": net.get("beta_s_per_byte"),
        "network.gamma_s_per_byte": net.get("gamma_s_per_byte"),
        "network.bandwidth_gbps": (
            8e-9 / net["beta_s_per_byte"] if net.get("beta_s_per_byte") else None
        ),
        "workers": spec["workers"],
        "schedule": spec["schedule"],
        "scheduler": spec["scheduler"],
        "options": json.dumps(spec["options"], sort_keys=True),
        "batch_size": spec["batch_size"],
        "iterations": spec["iterations"],
        "warmup": spec["warmup"],
        "seed": spec["seed"],
    }
    for key in METRICS:
        row[key] = None
    row["n_buckets"] = None
    row["buckets"] = None
    return row


# --------------------------------------------------------------------------- executors

Batch = list[tuple[int, str, str, dict[str, Any]]]


def _batches(runs: list[RunSpec], size: int) -> Iterator[Batch]:
    for i in range(0, len(runs), size):
        yield [(r.index, r.run_hash, r.group_hash, r.spec) for r in runs[i : i + size]]


def run_local(runs: list[RunSpec], jobs: int, batch: int) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on ``jobs`` processes (in this process if 1)."""
    if jobs <= 1:
        for b in _batches(runs, batch):
            yield execute_batch(b)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
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
    runs: list[RunSpec], jobs: int, batch: int, address: str | None
) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on a dask.distributed cluster (a local one with
    ``jobs`` worker processes when no ``address`` is given)."""
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
        futures = client.map(execute_batch, list(_batches(runs, batch)), pure=False)
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
    runs = expand(loaded)
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
            run_local(todo, jobs, batch)
            if executor == "local"
            else run_dask(todo, jobs, batch, address)
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


NUMERIC = (
    "network.alpha_s", "network.beta_s_per_byte", "network.gamma_s_per_byte",
    "network.bandwidth_gbps", "batch_size", *METRICS, "n_buckets",
)


def results_frame(rows: list[dict[str, Any]]) -> Any:
    """Rows as a DataFrame with fixed column types: numbers that may be missing are floats
    (NaN when missing), so CSV and Parquet read back alike."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for col in NUMERIC:
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:

    frame = results_frame(rows)
    frame.to_csv(out / "results.csv", index=False)
    try:
        frame.to_parquet(out / "results.parquet", index=False)
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        print(f"dearsim: warning: no Parquet written ({exc})", file=sys.stderr)
