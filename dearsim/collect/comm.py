"""``dearsim collect comm``: time collectives on this host's ranks (gloo on CPUs, NCCL on GPUs).

For each operation and message size: ``warmup`` untimed runs, then ``reps`` timed runs, each
started after a barrier and timed on every rank (``time.perf_counter``, after
``torch.cuda.synchronize`` on GPUs); a run's time is the slowest rank's. The CSV has one row
per (op, size): ``op, workers, bytes, median_s, p10_s, p90_s, reps, algbw, busbw, backend,
emulated, mean_s`` (``mean_s``, the mean of the same runs, came last and later: files
written before it have no such column and are still read and resumed). ``bytes`` is the
whole buffer (the all-reduced tensor; the reduce-scatter's input; the all-gather's
output), as dearsim's network files count it. ``algbw = bytes / median_s`` and ``busbw``
follow nccl-tests, in GB/s (1e9 bytes/s): ``busbw = algbw x 2(n-1)/n`` for all-reduce,
``(n-1)/n`` for reduce-scatter and all-gather.

With ``rounds`` R > 1 the sizes are interleaved: R passes over every (op, size) row, each
pass timing about ``reps / R`` runs of each (the warm-up runs on the first pass, one untimed
run on each later one, since every pass allocates the buffers afresh), so that every size
samples the whole measurement window rather than one stretch of it: on a machine whose
speed drifts, a slow stretch then lands on all sizes instead of biasing a few. A row is
finished, and kept, when its last pass ends (or when it runs out of time).

Rows are kept as they are measured: rank 0 appends each finished (op, size) row to a side
file ``OUT.partial`` (one ``write`` of the whole line, flushed and fsynced), which starts with
the header and, on ``--resume``, the rows already in ``OUT``. When the run ends, or stops
(Ctrl-C, SIGTERM, a rank's error, the timeout), the parent process reads the side file (a
torn last line, from a rank killed in the middle of a write, is dropped), writes ``OUT``
atomically (a temporary file renamed over it) and removes the side file. ``OUT`` is thus
always a whole CSV: the previous one, or every row finished so far. A side file left by a
parent killed outright (SIGKILL) is read back by ``--resume`` as well.

Where the backend has no reduce-scatter (or no all-gather) into one tensor, it is emulated
(all-reduce then keep this rank's shard; ``all_gather`` into a list then concatenate) and the
row says ``emulated=true``: such a row times the emulation, not a real reduce-scatter.
"""

from __future__ import annotations

import csv
import math
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DearsimError

OPS = {
    "allreduce": "allreduce", "all_reduce": "allreduce", "all-reduce": "allreduce",
    "reducescatter": "reducescatter", "reduce_scatter": "reducescatter",
    "reduce-scatter": "reducescatter",
    "allgather": "allgather", "all_gather": "allgather", "all-gather": "allgather",
}
COLUMNS = ("op", "workers", "bytes", "median_s", "p10_s", "p90_s", "reps", "algbw", "busbw",
           "backend", "emulated", "mean_s")
#: the header of files written before ``mean_s`` was recorded (read, resumed; their rows'
#: ``mean_s`` is left empty)
OLD_COLUMNS = COLUMNS[:-1]
DEFAULT_SIZES = "4KiB,16KiB,64KiB,256KiB,1MiB,4MiB"
#: the order of the ops in a written file
OP_ORDER = ("allreduce", "reducescatter", "allgather")
#: test hook: rank 0 sleeps this many seconds after writing each row (interrupt tests)
ENV_ROW_PAUSE = "DEARSIM_COMM_ROW_PAUSE_S"
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
          "kb": 1000, "mb": 1000**2, "gb": 1000**3, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_ops(text: str) -> list[str]:
    out: list[str] = []
    for part in text.split(","):
        p = part.strip().lower()
        if not p:
            continue
        if p not in OPS:
            raise DearsimError(
                f"--ops: unknown collective {part.strip()!r} (use allreduce, reducescatter, "
                "allgather)"
            )
        if OPS[p] not in out:
            out.append(OPS[p])
    if not out:
        raise DearsimError("--ops: give at least one of allreduce, reducescatter, allgather")
    return out


def parse_size(text: str, flag: str = "--sizes") -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise DearsimError(f"{flag}: cannot read size {text.strip()!r} (e.g. 4KiB, 1MiB, 65536)")
    v = float(m.group(1)) * _UNITS[unit]
    if v < 1 or not float(v).is_integer():
        raise DearsimError(f"{flag}: size {text.strip()!r} is not a whole number of bytes >= 1")
    return int(v)


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({parse_size(s) for s in text.split(",") if s.strip()})
    if not sizes:
        raise DearsimError("--sizes: give at least one size")
    return sizes


def buffer_numel(nbytes: int, n: int) -> int:
    """float32 elements of the buffer measured for ``nbytes`` on ``n`` ranks: a multiple of
    ``n`` (at least ``n``), so that every rank's shard has the same size."""
    return max(n, math.ceil(nbytes / 4 / n) * n)


def buffer_bytes(nbytes: int, n: int) -> int:
    """The ``bytes`` column of a row measured for the requested size ``nbytes``."""
    return buffer_numel(nbytes, n) * 4


def plan(ops: list[str], sizes: list[int], n: int) -> list[tuple[str, int]]:
    """The (op, bytes) rows to measure, in measuring order; requested sizes that round to the
    same buffer are measured once."""
    out: list[tuple[str, int]] = []
    for op in ops:
        for s in sizes:
            key = (op, buffer_bytes(s, n))
            if key not in out:
                out.append(key)
    return out


def busbw_factor(op: str, n: int) -> float:
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n if op == "allreduce" else (n - 1) / n


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------- per rank


def _ops(dist: Any, torch: Any) -> dict[str, tuple[Any, bool]]:
    """op -> (function(inp, out), emulated). Tries the native single-tensor collectives."""
    n = dist.get_world_size()
    rank = dist.get_rank()
    rs = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    ag = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor

    def emu_rs(out: Any, inp: Any) -> None:
        dist.all_reduce(inp)
        out.copy_(inp.chunk(n)[rank])

    def emu_ag(out: Any, inp: Any) -> None:
        parts = list(out.chunk(n))
        dist.all_gather(parts, inp)

    table: dict[str, tuple[Any, bool]] = {}
    probe_in = torch.ones(2 * n, device=_dev(torch))
    probe_out = torch.empty(2, device=_dev(torch))
    try:
        rs(probe_out, probe_in)
        table["reducescatter"] = (lambda out, inp: rs(out, inp), False)
    except (RuntimeError, NotImplementedError, ValueError):
        table["reducescatter"] = (emu_rs, True)
    try:
        ag(probe_in, probe_out)
        table["allgather"] = (lambda out, inp: ag(out, inp), False)
    except (RuntimeError, NotImplementedError, ValueError):
        table["allgather"] = (emu_ag, True)
    table["allreduce"] = (lambda out, inp: dist.all_reduce(inp), False)
    return table


_DEVICE = ["cpu"]


def _dev(torch: Any) -> Any:
    return torch.device(_DEVICE[0])


def run_rank(args: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    device = args.get("device", "cpu")
    if device.startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    _DEVICE[0] = device
    n = dist.get_world_size()
    table = _ops(dist, torch)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    budget = float(args.get("max_seconds_per_size", 5.0))
    partial = args.get("partial") if dist.get_rank() == 0 else None
    pause = float(os.environ.get(ENV_ROW_PAUSE, "0") or 0)
    todo = [tuple(t) for t in (args.get("plan") or plan(args["ops"], args["sizes"], n))]
    reps = int(args["reps"])
    warmup = int(args["warmup"])
    rounds = max(1, min(int(args.get("rounds", 1)), reps))
    # per row: the timed runs so far, seconds spent on it, whether it is finished
    state: dict[tuple[str, int], dict[str, Any]] = {
        t: {"times": [], "spent": 0.0, "done": False} for t in todo}
    visits: list[tuple[str, int, int]] = []
    for rnd in range(rounds):
        want = reps * (rnd + 1) // rounds  # timed runs per row by the end of this round
        for key in todo:
            st = state[key]
            if st["done"]:
                continue
            op, nbytes = key
            fn, emulated = table[op]
            numel = buffer_numel(int(nbytes), n)
            big = torch.ones(numel, device=device)
            small = torch.ones(numel // n, device=device)
            out, inp = {"allreduce": (None, big), "reducescatter": (small, big),
                        "allgather": (big, small)}[op]
            # a fresh buffer: the warm-up runs on the first visit, one untimed run after
            for _ in range(warmup if rnd == 0 else min(warmup, 1)):
                fn(out, inp)
            sync()
            visits.append((op, int(nbytes), rnd))
            times: list[float] = st["times"]
            start = time.perf_counter()
            while len(times) < want:
                dist.barrier()
                sync()
                t0 = time.perf_counter()
                fn(out, inp)
                sync()
                times.append(time.perf_counter() - t0)
                # every rank decides alike: stop on the slowest rank's clock
                spent = torch.tensor([st["spent"] + time.perf_counter() - start],
                                     dtype=torch.float64)
                dist.all_reduce(spent, op=dist.ReduceOp.MAX)
                if spent.item() > budget and len(times) >= 3:
                    st["done"] = True
                    break
            st["spent"] += time.perf_counter() - start
            if not (st["done"] or rnd == rounds - 1):
                continue
            st["done"] = True
            t = torch.tensor(times, dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            ts = t.tolist()
            real_bytes = numel * 4
            med = statistics.median(ts)
            algbw = real_bytes / med / 1e9
            row = {
                "op": op, "workers": n, "bytes": real_bytes, "median_s": med,
                "mean_s": statistics.fmean(ts),
                "p10_s": _quantile(ts, 0.1), "p90_s": _quantile(ts, 0.9), "reps": len(ts),
                "algbw": algbw, "busbw": algbw * busbw_factor(op, n),
                "backend": dist.get_backend(), "emulated": emulated,
            }
            rows.append(row)
            if partial:
                append_row(Path(partial), row)
                if pause > 0:
                    time.sleep(pause)
    return {"rows": rows, "visits": visits}


# --------------------------------------------------------------------------- files


def _fields(r: dict[str, Any]) -> list[Any]:
    return [
        r["op"], r["workers"], r["bytes"], f"{r['median_s']:.9g}", f"{r['p10_s']:.9g}",
        f"{r['p90_s']:.9g}", r["reps"], f"{r['algbw']:.6g}", f"{r['busbw']:.6g}",
        r["backend"], "true" if r["emulated"] else "false",
        f"{r['mean_s']:.9g}" if math.isfinite(r.get("mean_s", math.nan)) else "",
    ]


def _line(fields: list[Any]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row as a single write, flushed to the disk (rank 0, as it is measured)."""
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(_line(_fields(row)))
        f.flush()
        os.fsync(f.fileno())


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (op, workers, bytes), the later one kept; ops in :data:`OP_ORDER`, then
    workers and bytes."""
    by_key = {(r["op"], r["workers"], r["bytes"]): r for r in rows}
    return [by_key[k] for k in sorted(by_key, key=lambda k: (OP_ORDER.index(k[0]), k[1], k[2]))]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the rows (sorted, one per op, workers and size) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        f.write(_line(list(COLUMNS)))
        for r in sort_rows(rows):
            f.write(_line(_fields(r)))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def partial_path(out: Path) -> Path:
    """The side file the rows of a run go to as they are measured."""
    return out.with_name(out.name + ".partial")


def read_rows(path: Path, *, torn_ok: bool = False) -> list[dict[str, Any]]:
    """The rows of a comm CSV this command wrote; one line for anything else. With
    ``torn_ok`` (the side file) a last line without its newline is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DearsimError(f"{path}: not a dearsim comm CSV (not UTF-8 text)") from None
    lines = text.split("\n")
    if torn_ok and lines and lines[-1]:
        lines = lines[:-1]  # a rank killed in the middle of a write
    lines = [ln for ln in lines if ln.strip()]
    head = [c.strip() for c in next(csv.reader([lines[0]]))] if lines else []
    cols = COLUMNS if head == list(COLUMNS) else OLD_COLUMNS
    if head != list(cols):
        raise DearsimError(
            f"{path}: not a dearsim comm CSV (its first line is not the header "
            f"{','.join(COLUMNS)}): choose another --out, or run without --resume to "
            "replace it"
        )
    rows = []
    for i, ln in enumerate(lines[1:], start=2):
        f = next(csv.reader([ln]))
        if len(f) != len(cols):
            raise DearsimError(f"{path}:{i}: expected {len(cols)} fields, got {len(f)}")
        r = dict(zip(cols, (c.strip() for c in f)))
        if r["op"] not in OP_ORDER:
            raise DearsimError(f"{path}:{i}: field 'op': unknown collective {r['op']!r}")
        try:
            row: dict[str, Any] = {
                "op": r["op"], "workers": int(r["workers"]), "bytes": int(r["bytes"]),
                **{k: float(r[k]) for k in ("median_s", "p10_s", "p90_s", "algbw", "busbw")},
                "reps": int(r["reps"]), "backend": r["backend"],
                "mean_s": float(r["mean_s"]) if r.get("mean_s") else math.nan,
            }
        except ValueError:
            raise DearsimError(
                f"{path}:{i}: not a row of dearsim collect comm (a number field is not one)"
            ) from None
        if r["emulated"] not in ("true", "false"):
            raise DearsimError(f"{path}:{i}: field 'emulated' must be true or false")
        row["emulated"] = r["emulated"] == "true"
        rows.append(row)
    return rows


def check_same_run(rows: list[dict[str, Any]], path: Path, backend: str, workers: int) -> None:
    """--resume adds rows to a file measured alike: same backend (gloo: CPUs, nccl: GPUs)
    and the same number of ranks."""
    backends = sorted({r["backend"] for r in rows} - {backend})
    if backends:
        raise DearsimError(
            f"{path}: measured with backend {backends[0]}, this run would use {backend} "
            f"({'GPUs' if backend == 'nccl' else 'CPUs'}): --resume adds only to a file "
            "measured alike; choose another --out"
        )
    counts = sorted({r["workers"] for r in rows} - {workers})
    if counts:
        raise DearsimError(
            f"{path}: measured with {counts[0]} workers, this run has --nproc {workers}: "
            "--resume adds only to a file measured alike; choose another --out"
        )


@dataclass
class Progress:
    """How far a ``collect comm`` run into a file got (read after it stopped)."""

    planned: int = 0  #: rows this run set out to measure
    kept_before: int = 0  #: rows already in the file (--resume)
    measured: int = 0  #: rows this run measured and kept
    in_file: int = 0  #: rows in the file now


class CommFile:
    """The output of ``collect comm``: the rows go to a side file as they are measured and
    become ``out`` when the run ends or stops (see the module's docstring)."""

    def __init__(self, out: Path, backend: str, workers: int) -> None:
        self.out = Path(out)
        self.partial = partial_path(self.out)
        self.backend = backend
        self.workers = workers
        self.kept: list[dict[str, Any]] = []

    def open(self, resume: bool) -> list[dict[str, Any]]:
        """Start the side file (the header, and with ``resume`` the rows already there:
        ``out``'s and a side file's left by a run killed outright); those rows."""
        kept: list[dict[str, Any]] = []
        if resume:
            for path, torn in ((self.out, False), (self.partial, True)):
                if path.exists():
                    rows = read_rows(path, torn_ok=torn)
                    check_same_run(rows, path, self.backend, self.workers)
                    kept += rows
        self.kept = sort_rows(kept)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.partial.with_name(self.partial.name + ".tmp")
            with tmp.open("w", newline="", encoding="utf-8") as f:
                f.write(_line(list(COLUMNS)))
                for r in self.kept:
                    f.write(_line(_fields(r)))
            tmp.replace(self.partial)
        except OSError as exc:
            raise DearsimError(f"{self.out}: cannot write: {exc.strerror or exc}") from None
        return self.kept

    def close(self) -> list[dict[str, Any]]:
        """Write every row kept so far to ``out`` and remove the side file; the rows. With no
        row at all, ``out`` is left as it was."""
        rows = sort_rows(read_rows(self.partial, torn_ok=True)) if self.partial.exists() else []
        if rows:
            try:
                write_csv(rows, self.out)
            except OSError as exc:
                raise DearsimError(
                    f"{self.out}: cannot write: {exc.strerror or exc} (the rows are in "
                    f"{self.partial})"
                ) from None
        self.partial.unlink(missing_ok=True)
        return rows


def notes(rows: list[dict[str, Any]]) -> list[str]:
    """Warnings worth printing: emulated collectives, and a reduce-scatter that costs as much
    as the all-reduce of the same buffer (a backend that reduce-scatters by all-reducing)."""
    out = []
    for op in ("reducescatter", "allgather"):
        if any(r["op"] == op and r["emulated"] for r in rows):
            backend = next(r["backend"] for r in rows if r["op"] == op)
            out.append(
                f"note: {backend} has no single-tensor {op}; it was EMULATED (column "
                "emulated=true): the times are those of the emulation"
            )
    ar = {(r["workers"], r["bytes"]): r["median_s"] for r in rows if r["op"] == "allreduce"}
    big = [r for r in rows if r["op"] == "reducescatter" and (r["workers"], r["bytes"]) in ar
           and r["bytes"] >= 1 << 20]
    if big and all(r["median_s"] >= 0.9 * ar[(r["workers"], r["bytes"])] for r in big):
        out.append(
            "note: reduce-scatter takes >= 90% of the all-reduce of the same buffer at every "
            "size >= 1 MiB: this backend's reduce-scatter is probably built on an all-reduce"
        )
    return out
