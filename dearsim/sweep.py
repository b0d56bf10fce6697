"""Running a sweep: executors, rows streamed to disk, interrupts, resume, a guarded folder.

Each run of a loaded config (:meth:`dearsim.config.LoadedConfig.iter_runs`, built as they
are needed) is simulated by :func:`execute`, on a process pool (``local``) or a
dask.distributed cluster (``dask``), a bounded number of batches at a time; the workers get
the sweep's traces, loaded once in this process, and load its plugins once each.

Every finished run is appended at once to ``OUT/results.jsonl`` (one JSON object per line,
flushed; columns in :mod:`dearsim.table`), so an interrupt or a kill loses no finished row
and ``--resume`` skips the runs already there. At the end the rows are streamed, in config
order, into ``results.csv`` and ``results.parquet`` (a few thousand rows at a time): the
parent's memory does not grow with the number of runs.

SIGINT and SIGTERM stop a sweep promptly: no new run starts, the runs in progress are
abandoned (a worker returns the rows it finished first), every finished row is kept, and
:attr:`SweepOutcome.interrupted` names the signal.

The results folder is dearsim's: ``OUT/.dearsim/sweep.json`` says which sweep it holds (a
hash of its runs' hashes) and ``OUT/.dearsim/lock`` is locked while a sweep writes there.
A second sweep into the same folder, ``--resume`` with a config that runs something else, or
a folder that holds files dearsim did not write are refused with one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import table
from .config import LoadedConfig, RunSpec, config_data
from .errors import DearsimError
from .plugins import load_plugins
from .trace import Trace

RESULTS_JSONL = "results.jsonl"
STATE_DIR = ".dearsim"
MANIFEST = "sweep.json"
LOCK = "lock"
#: Files dearsim writes in a results folder (besides ``.dearsim/``).
OWN_FILES = (
    RESULTS_JSONL, "results.csv", "results.parquet", "config.yaml", "speedup.png",
    "speedup.svg",
)

#: The start method of the process pool (None: the platform's default). Workers get the
#: traces and load the plugins in their initializer, whatever the method.
MP_START: str | None = None

#: Seconds an interrupted sweep waits for runs in progress to hand back what they finished.
GRACE_S = 2.0

#: Rows per chunk when the final tables are written.
CHUNK_ROWS = 4096

#: The traces of this worker process, by content hash (set by :func:`init_worker`).
_TRACES: dict[str, Trace] = {}
#: Set in a worker when it is told to stop: batches return the rows finished so far.
_STOP = threading.Event()
#: Sweeps told to stop (dask workers are shared between sweeps: each has a token).
_STOPPED_TOKENS: set[str] = set()


def _stop_handler(signum: int, frame: Any) -> None:
    _STOP.set()


def init_worker(traces: Mapping[str, Trace], plugins: tuple[str, ...]) -> None:
    """Process-pool initializer: keep the sweep's traces and load its plugins, once. A
    terminal's Ctrl-C reaches every process of the group: workers ignore it and leave the
    decision to the parent, which tells them to stop with SIGUSR1 (SIGTERM does the same)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _stop_handler)
    signal.signal(signal.SIGTERM, _stop_handler)
    _TRACES.update(traces)
    try:
        load_plugins(plugins)
    except DearsimError:
        pass  # each run loads them again and records the error in its row


def stop_token(token: str) -> None:
    """Run on every dask worker by an interrupted sweep: its batches return early."""
    _STOPPED_TOKENS.add(token)


def searched(run: RunSpec, trace: Trace) -> tuple[dict[str, Any], dict[str, Any]]:
    """A searched run's search (:func:`dearsim.search.search` on the fast evaluator, for the
    run's trace, network, workers and run length; deterministic): the best options it found,
    and what the row's ``search`` column reports (the search as configured, how many
    evaluations it made, and the fast evaluator's iteration times of the best found and of the
    schedule's default)."""
    from .search import search

    spec = dict(run.search or {})
    found = search(
        trace,
        run.network_model(),
        run.cluster_model(),  # stragglers and jitter included: the search sees the cluster
        run.scheduler,
        spec["method"],
        budget=spec["budget"],
        seed=spec["seed"] or 0,
        iterations=run.iterations,
        warmup=run.warmup,
        references=False,
    )
    report = {
        **spec,
        "evaluations": found.evaluations,
        "best_time_s": found.iteration_time_s,
        "default_time_s": found.default_time_s,
    }
    if found.trials_to_best is not None:
        report["trials_to_best"] = found.trials_to_best
    return dict(found.options), report


def execute(run: RunSpec, traces: Mapping[str, Trace] | None = None) -> dict[str, Any]:
    """Simulate one run and return its row. Never raises: failures become error rows. A
    searched run (``run.search``) first searches its options (:func:`searched`), then
    simulates the best found with the run's own engine; its row holds those options."""
    from .api import simulate

    traces = _TRACES if traces is None else traces
    options, report = run.options, None
    try:
        load_plugins(run.plugins)
        trace = traces.get(run.trace_sha256)
        if trace is None:
            raise DearsimError(f"trace {run.trace} ({run.trace_sha256[:16]}) was not sent "
                               "to this worker")
        if run.search is not None:
            options, report = searched(run, trace)
        result = simulate(
            trace,
            run.network_model(),
            run.cluster_model(),
            run.scheduler,
            options,
            iterations=run.iterations,
            warmup=run.warmup,
            batch_size=run.batch_size,
            engine=run.engine,
        )
    except Exception as exc:  # recorded, not raised: one bad point must not stop a sweep
        kind = "" if isinstance(exc, DearsimError) else f"{type(exc).__name__}: "
        return table.row(run, error=(kind + str(exc)).replace("\n", " "), options=options,
                         search=report)
    return table.row(run, result, options=options, search=report)


def execute_batch(
    batch: list[RunSpec], traces: Mapping[str, Trace] | None = None, token: str = ""
) -> list[dict[str, Any]]:
    """The rows of a batch; a worker told to stop returns the rows finished so far."""
    rows = []
    for run in batch:
        if _STOP.is_set() or (token and token in _STOPPED_TOKENS):
            break
        rows.append(execute(run, traces))
    return rows


# --------------------------------------------------------------------------- interrupts


class _Abandon(BaseException):
    """Raised in this process by a signal to abandon the run in progress (jobs=1)."""


class Stopper:
    """Catches SIGINT and SIGTERM while a sweep runs (in the main thread; elsewhere the
    process's own handlers stay). ``signum`` is the first signal received."""

    def __init__(self) -> None:
        self.signum: int | None = None
        #: When true, a signal also raises :class:`_Abandon` (a run in this process).
        self.abandon = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self.abandon:
            self.abandon = False
            raise _Abandon

    @property
    def stopped(self) -> bool:
        return self.signum is not None


# --------------------------------------------------------------------------- executors


def _batches(runs: Iterable[RunSpec], size: int) -> Iterator[list[RunSpec]]:
    batch: list[RunSpec] = []
    for run in runs:
        batch.append(run)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _needs(traces: Mapping[str, Trace], plugins: tuple[str, ...]) -> tuple[dict[str, Trace],
                                                                          tuple[str, ...]]:
    return dict(traces), tuple(plugins)


def run_local(
    runs: Iterable[RunSpec], traces: Mapping[str, Trace], jobs: int, batch: int,
    plugins: tuple[str, ...] = (), stopper: Stopper | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on ``jobs`` processes (in this process if 1), with at
    most ``4 * jobs`` batches queued. Each worker process gets the traces and loads the
    plugins once, in its initializer. Stops promptly when ``stopper`` catches a signal."""
    stopper = stopper or Stopper()
    if jobs <= 1:
        yield []  # started
        for run in runs:
            if stopper.stopped:
                return
            try:
                stopper.abandon = True
                row = execute(run, traces)
                stopper.abandon = False
            except _Abandon:
                return
            finally:
                stopper.abandon = False
            yield [row]
        return
    needed, plugins = _needs(traces, plugins)
    yield []  # started
    ctx = multiprocessing.get_context(MP_START) if MP_START else None
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(needed, plugins)
    )
    stopping = False
    try:
        todo = _batches(runs, batch)
        running = set()
        for _ in range(jobs * 4):
            b = next(todo, None)
            if b is None:
                break
            running.add(pool.submit(execute_batch, b))
        while running and not stopper.stopped:
            done, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                yield _result(fut)
                if not stopper.stopped:
                    nxt = next(todo, None)
                    if nxt is not None:
                        running.add(pool.submit(execute_batch, nxt))
        if stopper.stopped:
            stopping = True
            procs = list((getattr(pool, "_processes", None) or {}).values())
            for fut in running:
                fut.cancel()
            for proc in procs:  # finish the run in progress, return the batch so far
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + GRACE_S
            running = {f for f in running if not f.cancelled()}
            while running and time.monotonic() < deadline:
                done, running = wait(running, timeout=max(0.0, deadline - time.monotonic()),
                                     return_when=FIRST_COMPLETED)
                for fut in done:
                    with contextlib.suppress(Exception):
                        yield fut.result()
    finally:
        if stopping or sys.exc_info()[0] is not None:
            _kill_pool(pool)
        else:
            pool.shutdown(wait=True)


def _result(fut: Any) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = fut.result()
    except BrokenProcessPool:
        raise DearsimError(
            "a worker process died (out of memory, or killed); the finished rows are kept: "
            "rerun with --resume"
        ) from None
    return rows


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=2)


def run_dask(
    runs: Iterable[RunSpec], traces: Mapping[str, Trace], jobs: int, batch: int,
    address: str | None, plugins: tuple[str, ...] = (), stopper: Stopper | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches as they finish, on a dask.distributed cluster (a local one with
    ``jobs`` worker processes when no ``address`` is given), at most ``4 * jobs`` batches
    submitted at a time. The traces are scattered to every worker once; each run names the
    plugins its worker loads (once per process)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DearsimError(
            "--executor dask needs dask.distributed: pip install 'dearsim[distributed]'"
        ) from None
    stopper = stopper or Stopper()
    cluster = None
    client = None
    try:
        if address:
            client = Client(address, timeout="10s")
        else:
            # Worker processes inherit an ignored SIGINT: a terminal's Ctrl-C is the
            # parent's to handle.
            with _sigint_ignored():
                cluster = LocalCluster(
                    n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                    dashboard_address=None,
                )
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise DearsimError(f"cannot reach the dask scheduler at {address}: {exc}") from None
    token = uuid.uuid4().hex
    try:
        yield []  # started
        [shared] = client.scatter([dict(traces)], broadcast=True)
        todo = _batches(runs, batch)
        ac = as_completed()
        for _ in range(max(1, jobs) * 4):
            b = next(todo, None)
            if b is None:
                break
            ac.add(client.submit(execute_batch, b, shared, token, pure=False))
        while not ac.is_empty() and not stopper.stopped:
            if not ac.has_ready():
                time.sleep(0.02)
                continue
            fut = next(ac)
            rows = fut.result()
            fut.release()
            yield rows
            nxt = None if stopper.stopped else next(todo, None)
            if nxt is not None:
                ac.add(client.submit(execute_batch, nxt, shared, token, pure=False))
        if stopper.stopped:
            with contextlib.suppress(Exception):
                client.run(stop_token, token)
            deadline = time.monotonic() + GRACE_S
            while not ac.is_empty() and time.monotonic() < deadline:
                if not ac.has_ready():
                    time.sleep(0.02)
                    continue
                fut = next(ac)
                with contextlib.suppress(Exception):
                    yield fut.result()
            ac.clear()
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


# --------------------------------------------------------------------------- the folder


def _state(out: Path) -> Path:
    return out / STATE_DIR


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = _state(out) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DearsimError(f"{out}: unreadable {STATE_DIR}/{MANIFEST} ({exc}); "
                           "choose another --out") from None
    if not isinstance(data, dict) or "sweep_hash" not in data:
        raise DearsimError(f"{out}: {STATE_DIR}/{MANIFEST} is not dearsim's; "
                           "choose another --out")
    return data


def _manifest(loaded: LoadedConfig) -> dict[str, Any]:
    from . import __version__

    return {
        "format": 1,
        "name": loaded.name,
        "runs": loaded.n_runs,
        "sweep_hash": loaded.sweep_hash,
        "dearsim_version": __version__,
        "traces": {label: sha for sha, label in sorted(loaded.trace_labels.items())},
        "config": config_data(loaded),
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if value is not None else "(not set)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Config keys that do not change what a sweep runs.
COSMETIC_KEYS = ("name", "description", "plot")


def differences(old: Mapping[str, Any], loaded: LoadedConfig) -> list[str]:
    """What differs between the sweep a folder holds and ``loaded``, one phrase each."""
    from . import __version__

    out: list[str] = []
    before = old.get("config") or {}
    now = config_data(loaded) or {}
    for key in sorted(set(before) | set(now), key=str):
        if key in COSMETIC_KEYS:
            continue
        if before.get(key) != now.get(key):
            out.append(f"{key} is {_short(now.get(key))}, the results have "
                       f"{_short(before.get(key))}")
    new_traces = {label: sha for sha, label in loaded.trace_labels.items()}
    for label, sha in (old.get("traces") or {}).items():
        if label in new_traces and new_traces[label] != sha:
            out.append(f"trace {label} has other content (sha256 {new_traces[label][:12]}, "
                       f"the results have {sha[:12]})")
    if old.get("dearsim_version") != __version__:
        out.append(f"dearsim is {__version__}, the results were made by "
                   f"{old.get('dearsim_version')}")
    if not out:
        out.append(f"its {loaded.n_runs} runs are not the {old.get('runs')} runs of the "
                   "results (a network file, a preset or a plugin changed?)")
    return out


class _Folder:
    """The results folder, locked while a sweep writes to it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created: list[Path] = []
        self.lock_fd: int | None = None
        #: Files this sweep wrote in a fresh start (removed if the start fails).
        self.fresh: list[Path] = []
        #: Whether this sweep created ``.dearsim/`` (or found it without a manifest).
        self.new_state = False

    def open(self, resume: bool = False) -> None:
        """Create and lock the folder. A folder holding files dearsim did not write is
        refused; so is one with rows but no ``.dearsim/`` (an older dearsim's), unless
        resuming (then every row must match the config)."""
        from .paths import make_folder

        missing = []
        p = self.out
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        make_folder(self.out, "results folder")
        self.created = missing  # removed again if the sweep fails to start
        state = _state(self.out)
        if not state.exists():
            foreign = sorted(x.name for x in self.out.iterdir())
            legacy = RESULTS_JSONL in foreign and set(foreign) <= set(OWN_FILES)
            if foreign and not (legacy and resume):
                raise DearsimError(
                    f"{self.out}: "
                    + ("holds results without a .dearsim/sweep.json (an older dearsim's?)"
                       if legacy else
                       f"holds files dearsim did not write ({', '.join(foreign[:3])}"
                       f"{', ...' if len(foreign) > 3 else ''})")
                    + "; choose another --out or an empty folder"
                )
        self.new_state = not (state / MANIFEST).exists()
        try:
            state.mkdir(exist_ok=True)
            self.lock_fd = os.open(state / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DearsimError(f"{self.out}: cannot write here: {exc.strerror}") from None
        import fcntl

        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DearsimError(f"{self.out}: cannot lock the folder: {exc.strerror}") \
                    from None
            holder = os.pread(self.lock_fd, 64, 0).decode(errors="replace").strip()
            os.close(self.lock_fd)
            self.lock_fd = None
            raise DearsimError(
                f"{self.out}: another sweep is writing here"
                + (f" (process {holder})" if holder else "")
                + "; wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(self.lock_fd, 0)
        os.pwrite(self.lock_fd, f"{os.getpid()}\n".encode(), 0)

    def close(self) -> None:
        if self.lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.lock_fd, 0)
            os.close(self.lock_fd)
            self.lock_fd = None

    def discard(self) -> None:
        """Undo a start that failed before any row: remove what this sweep created (a
        folder that held a sweep before keeps its manifest; the lock file is harmless)."""
        self.close()
        state = _state(self.out)
        for p in self.fresh:
            with contextlib.suppress(OSError):
                p.unlink()
        if self.new_state:
            for name in (MANIFEST, LOCK, MANIFEST + ".tmp"):
                with contextlib.suppress(OSError):
                    (state / name).unlink()
            with contextlib.suppress(OSError):
                state.rmdir()
        for p in self.created:
            with contextlib.suppress(OSError):
                p.rmdir()  # only if empty


# --------------------------------------------------------------------------- rows on disk


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, row) for each row of a results.jsonl; a line cut short is skipped."""
    with path.open("rb") as f:
        pos = 0
        for line in f:
            start, pos = pos, pos + len(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the last line of a killed sweep
            if isinstance(row, dict):
                yield start, row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.jsonl (all in memory: for small files); a torn line is ignored."""
    if not path.exists():
        return []
    return [row for _, row in iter_rows(path)]


def _drop_torn_line(path: Path) -> None:
    """Cut a last line left unfinished by a killed sweep, so appending starts cleanly
    (reads only the file's tail)."""
    if not path.exists():
        return
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        pos = size
        while pos > 0:
            step = min(pos, 1 << 16)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(pos + cut + 1)
                return
        f.truncate(0)


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepOutcome:
    out: Path
    total: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    #: The signal that interrupted the sweep, or None.
    interrupted: int | None = None
    #: (first error of a kind, how many runs failed with that kind), most frequent first.
    failures: list[tuple[str, int]] = field(default_factory=list)
    #: Byte offset in results.jsonl of each run's row (-1: none), by index.
    offsets: Any = None

    @property
    def kept(self) -> int:
        return self.skipped + self.ran

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, in config order (read from disk: for small sweeps and tests)."""
        return list(_rows_in_order(self.out / RESULTS_JSONL, self.offsets))


def _rows_in_order(jsonl: Path, offsets: Any) -> Iterator[dict[str, Any]]:
    with jsonl.open("rb") as f:
        for off in offsets:
            if off < 0:
                continue
            f.seek(int(off))
            yield json.loads(f.readline())


def _check_args(jobs: int, executor: str, address: str | None) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise DearsimError(f"--jobs must be a positive integer, got {jobs}")
    if executor not in ("local", "dask"):
        raise DearsimError(f"--executor must be 'local' or 'dask', got {executor!r}")
    if address and executor != "dask":
        raise DearsimError("--address is for --executor dask")


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
    """Run every run of ``loaded`` not already in ``out`` and write the result tables.

    Returns with :attr:`SweepOutcome.interrupted` set (and no tables written) when SIGINT
    or SIGTERM stopped it; raises :class:`DearsimError` for a folder it must not write to."""
    import numpy as np

    _check_args(jobs, executor, address)
    out = Path(out)
    folder = _Folder(out)
    folder.open(resume)
    started = False
    try:
        jsonl = out / RESULTS_JSONL
        old = read_manifest(out)
        n = loaded.n_runs
        offsets = np.full(n, -1, dtype=np.int64)
        has_rows = jsonl.exists() and jsonl.stat().st_size > 0
        if old is not None and has_rows:
            if not resume:
                raise DearsimError(
                    f"{out}: already holds results of sweep {old.get('name')!r}; pass "
                    "--resume to continue it, or choose another --out"
                )
            if old["sweep_hash"] != loaded.sweep_hash:
                diffs = differences(old, loaded)
                raise DearsimError(
                    f"{out}: --resume with a config that runs other runs: "
                    + "; ".join(diffs[:3]) + (f" (and {len(diffs) - 3} more)"
                                              if len(diffs) > 3 else "")
                    + "; choose another --out to run it"
                )
            _drop_torn_line(jsonl)
            for off, row in iter_rows(jsonl):
                i = row.get("index")
                if (isinstance(i, int) and 0 <= i < n and offsets[i] < 0
                        and _hash_int(row.get("run_hash")) == int(loaded.hashes[i])):
                    offsets[i] = off
        elif has_rows and resume:
            # Rows without a manifest (an older dearsim's folder): adopted only when every
            # row is a run of this config.
            _drop_torn_line(jsonl)
            for off, row in iter_rows(jsonl):
                i = row.get("index")
                if not (isinstance(i, int) and 0 <= i < n
                        and _hash_int(row.get("run_hash")) == int(loaded.hashes[i])):
                    raise DearsimError(
                        f"{out}: holds rows this config does not run (row {i}, run "
                        f"{row.get('run_hash')}); choose another --out to run it"
                    )
                if offsets[i] < 0:
                    offsets[i] = off
            _write_atomic(_state(out) / MANIFEST, json.dumps(_manifest(loaded), indent=1))
        else:
            # A new sweep, or a folder whose earlier start wrote no row.
            _write_atomic(_state(out) / MANIFEST, json.dumps(_manifest(loaded), indent=1))
            _write_atomic(out / "config.yaml", loaded.text)
            if jsonl.exists():
                jsonl.unlink()
            folder.fresh = [out / "config.yaml", jsonl]
        done = int((offsets >= 0).sum())
        todo = (r for r in loaded.iter_runs() if offsets[r.index] < 0)
        batch = max(1, min(32, (n - done) // (max(jobs, 1) * 8) or 1))
        t0 = time.perf_counter()
        ran = 0
        with Stopper() as stopper:
            if n - done > 0:
                source = (
                    run_local(todo, loaded.traces, jobs, batch, loaded.plugins, stopper)
                    if executor == "local"
                    else run_dask(todo, loaded.traces, jobs, batch, address, loaded.plugins,
                                  stopper)
                )
                next(source, None)  # start the executor: a failed start raises here
                if progress:
                    progress(done, n)
                with jsonl.open("ab") as f:
                    pos = f.seek(0, os.SEEK_END)
                    for rows in source:
                        started = True
                        for row in rows:
                            line = (json.dumps(row, allow_nan=True) + "\n").encode()
                            f.write(line)
                            offsets[row["index"]] = pos
                            pos += len(line)
                        f.flush()
                        ran += len(rows)
                        if progress:
                            progress(done + ran, n)
                    f.flush()
                    os.fsync(f.fileno())
            elif progress:
                progress(done, n)
            started = True
            seconds = time.perf_counter() - t0
            outcome = SweepOutcome(out, n, ran, done, 0, seconds, stopper.signum,
                                   offsets=offsets)
            if stopper.stopped or (offsets < 0).any():
                outcome.interrupted = stopper.signum or signal.SIGTERM
                return outcome
            outcome.failed, outcome.failures = write_tables(jsonl, offsets, out)
            return outcome
    except BaseException:
        if not started:
            folder.discard()
        raise
    finally:
        folder.close()


def _hash_int(value: Any) -> int:
    try:
        return int(str(value), 16)
    except ValueError:
        return -1


def error_kind(error: str) -> str:
    """An error message with its numbers blanked: failures of one kind share it."""
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", error or "")


def write_tables(jsonl: Path, offsets: Any, out: Path) -> tuple[int, list[tuple[str, int]]]:
    """Stream the rows into ``results.csv`` and ``results.parquet``, in config order, a
    chunk at a time; return the number of failed runs and the failures by kind."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = table.arrow_schema()
    csv_tmp = out / "results.csv.tmp"
    pq_tmp = out / "results.parquet.tmp"
    kinds: dict[str, list[Any]] = {}
    failed = 0
    writer = pq.ParquetWriter(pq_tmp, schema)
    try:
        with csv_tmp.open("w", encoding="utf-8", newline="") as csv:
            first = True
            rows: list[dict[str, Any]] = []

            def flush() -> None:
                nonlocal first
                # every column, in order, even from rows of an older dearsim (no search)
                frame = table.frame(rows).reindex(columns=list(table.COLUMNS))
                frame.to_csv(csv, index=False, header=first)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema,
                                                        preserve_index=False))
                first = False
                rows.clear()

            for row in _rows_in_order(jsonl, offsets):
                if row.get("status") != "ok":
                    failed += 1
                    kind = kinds.setdefault(error_kind(str(row.get("error"))),
                                            [_describe_failure(row), 0])
                    kind[1] += 1
                rows.append(row)
                if len(rows) >= CHUNK_ROWS:
                    flush()
            if rows or first:
                flush()
    finally:
        writer.close()
    os.replace(csv_tmp, out / "results.csv")
    os.replace(pq_tmp, out / "results.parquet")
    failures = sorted(((first_, count) for first_, count in kinds.values()),
                      key=lambda x: -x[1])
    return failed, failures


def _describe_failure(row: Mapping[str, Any]) -> str:
    return (f"{row.get('trace')} {row.get('network')} p={row.get('workers')} "
            f"{row.get('schedule')}: {row.get('error')}")


def results_frame(rows: list[dict[str, Any]]) -> Any:
    """Rows as a DataFrame with fixed column types (see :func:`dearsim.table.frame`)."""
    return table.frame(rows)
