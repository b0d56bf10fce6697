"""``dearsim collect comm``: time collectives on this host's ranks (gloo on CPUs, NCCL on GPUs).

For each operation and message size: ``warmup`` untimed runs, then ``reps`` timed runs, each
started after a barrier and timed on every rank (``time.perf_counter``, after
``torch.cuda.synchronize`` on GPUs); a run's time is the slowest rank's. The CSV has one row
per (op, size): ``op, workers, bytes, median_s, p10_s, p90_s, reps, algbw, busbw, backend,
emulated``. ``bytes`` is the whole buffer (the all-reduced tensor; the reduce-scatter's
input; the all-gather's output), as dearsim's network files count it. ``algbw = bytes /
median_s`` and ``busbw`` follow nccl-tests, in GB/s (1e9 bytes/s): ``busbw = algbw x 2(n-1)/n``
for all-reduce, ``(n-1)/n`` for reduce-scatter and all-gather.

Where the backend has no reduce-scatter (or no all-gather) into one tensor, it is emulated
(all-reduce then keep this rank's shard; ``all_gather`` into a list then concatenate) and the
row says ``emulated=true``: such a row times the emulation, not a real reduce-scatter.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
import time
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
           "backend", "emulated")
DEFAULT_SIZES = "4KiB,16KiB,64KiB,256KiB,1MiB,4MiB"
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
    for op in args["ops"]:
        fn, emulated = table[op]
        for nbytes in args["sizes"]:
            numel = max(n, math.ceil(nbytes / 4 / n) * n)  # float32, a multiple of the ranks
            big = torch.ones(numel, device=device)
            small = torch.ones(numel // n, device=device)
            out, inp = {"allreduce": (None, big), "reducescatter": (small, big),
                        "allgather": (big, small)}[op]
            for _ in range(int(args["warmup"])):
                fn(out, inp)
            sync()
            times: list[float] = []
            start = time.perf_counter()
            for _ in range(int(args["reps"])):
                dist.barrier()
                sync()
                t0 = time.perf_counter()
                fn(out, inp)
                sync()
                times.append(time.perf_counter() - t0)
                # every rank decides alike: stop on the slowest rank's clock
                spent = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
                dist.all_reduce(spent, op=dist.ReduceOp.MAX)
                if spent.item() > budget and len(times) >= 3:
                    break
            t = torch.tensor(times, dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            ts = t.tolist()
            real_bytes = numel * 4
            med = statistics.median(ts)
            algbw = real_bytes / med / 1e9
            rows.append({
                "op": op, "workers": n, "bytes": real_bytes, "median_s": med,
                "p10_s": _quantile(ts, 0.1), "p90_s": _quantile(ts, 0.9), "reps": len(ts),
                "algbw": algbw, "busbw": algbw * busbw_factor(op, n),
                "backend": dist.get_backend(), "emulated": emulated,
            })
    return {"rows": rows}


# --------------------------------------------------------------------------- files


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([
                r["op"], r["workers"], r["bytes"], f"{r['median_s']:.9g}", f"{r['p10_s']:.9g}",
                f"{r['p90_s']:.9g}", r["reps"], f"{r['algbw']:.6g}", f"{r['busbw']:.6g}",
                r["backend"], "true" if r["emulated"] else "false",
            ])


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
