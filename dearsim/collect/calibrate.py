"""``dearsim calibrate``: fit ``T(n) = a + b n`` to measured collectives; write a network file.

Reads the CSV of ``dearsim collect comm`` (columns ``op, workers, bytes, median_s``; others
optional), fits one line per collective and worker count by ordinary least squares on the
per-size medians (or, with ``stat="mean"``, the per-size means: column ``mean_s``), and
writes the fitted-table network form (``fits: [{workers, allreduce,
reduce_scatter, all_gather}]``). ``sources`` records, per fit, the sizes used, R^2 and the
worst residual. A fit whose intercept comes out negative is refitted through the origin
(``a = 0``), one whose slope comes out negative as a constant: network files need both >= 0.

Needs no PyTorch (matplotlib only for ``--plot``).
"""

from __future__ import annotations

import csv
import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DearsimError

FILE_OPS = {"allreduce": "allreduce", "reducescatter": "reduce_scatter",
            "allgather": "all_gather"}
_ALIASES = {"all_reduce": "allreduce", "reduce_scatter": "reducescatter",
            "all_gather": "allgather", "all-reduce": "allreduce",
            "reduce-scatter": "reducescatter", "all-gather": "allgather"}
REQUIRED = ("op", "workers", "bytes", "median_s")
#: the statistic a fit can use, and its column
STATS = {"median": "median_s", "mean": "mean_s"}


@dataclass
class LineFit:
    op: str
    workers: int
    a: float
    b: float
    sizes: list[int]
    times: list[float]
    r2: float
    worst_pct: float  # worst |residual| / measured, in percent
    worst_at: int
    constrained: str = ""
    emulated: bool = False

    def predict(self, n: float) -> float:
        return self.a + self.b * n


def read_comm_csv(path: str | Path, stat: str = "median"
                  ) -> tuple[dict[tuple[str, int], list[tuple[int, float]]],
                             dict[tuple[str, int], bool], str]:
    """(op, workers) -> [(bytes, time)], emulated flags, backend names; the time is the
    column of ``stat`` (:data:`STATS`)."""
    src = str(path)
    if stat not in STATS:
        raise DearsimError(f"unknown statistic {stat!r} (one of {', '.join(STATS)})")
    tcol = STATS[stat]
    required = (*REQUIRED[:3], tcol)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DearsimError(f"{src}: comm CSV not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DearsimError(f"{src}: cannot read: {exc}") from None
    reader = csv.reader(text.splitlines())
    rows = [(i + 1, r) for i, r in enumerate(reader) if r and any(c.strip() for c in r)]
    if not rows:
        raise DearsimError(f"{src}: empty file (expected the CSV of dearsim collect comm)")
    hline, header = rows[0]
    cols = [c.strip() for c in header]
    missing = [c for c in required if c not in cols]
    if missing:
        hint = (" (a file from before dearsim recorded means: fit the medians, --stat median)"
                if missing == ["mean_s"] else "")
        raise DearsimError(
            f"{src}:{hline}: missing column(s) {', '.join(missing)} (needs "
            f"{', '.join(required)}){hint}"
        )
    idx = {c: cols.index(c) for c in cols}
    data: dict[tuple[str, int], list[tuple[int, float]]] = {}
    emulated: dict[tuple[str, int], bool] = {}
    backends: set[str] = set()
    for line, r in rows[1:]:
        if len(r) != len(cols):
            raise DearsimError(f"{src}:{line}: expected {len(cols)} fields, got {len(r)}")
        raw_op = r[idx["op"]].strip().lower()
        op = _ALIASES.get(raw_op, raw_op)
        if op not in FILE_OPS:
            raise DearsimError(
                f"{src}:{line}: field 'op': unknown collective {raw_op!r} (allreduce, "
                "reducescatter, allgather)"
            )
        workers = _num(r[idx["workers"]], src, line, "workers", integer=True)
        nbytes = _num(r[idx["bytes"]], src, line, "bytes", integer=True)
        if not r[idx[tcol]].strip():
            raise DearsimError(
                f"{src}:{line}: field '{tcol}' is empty (a row resumed from a file without "
                f"means: fit the medians, --stat median, or measure the row again)"
            )
        t = _num(r[idx[tcol]], src, line, tcol)
        if workers < 1 or nbytes < 1 or t <= 0:
            field = "workers" if workers < 1 else "bytes" if nbytes < 1 else tcol
            raise DearsimError(f"{src}:{line}: field '{field}' must be > 0")
        key = (op, int(workers))
        data.setdefault(key, []).append((int(nbytes), t))
        if "emulated" in idx and r[idx["emulated"]].strip().lower() in ("true", "1", "yes"):
            emulated[key] = True
        if "backend" in idx and r[idx["backend"]].strip():
            backends.add(r[idx["backend"]].strip())
    if not data:
        raise DearsimError(f"{src}:{hline}: no measurement rows after the header")
    return data, emulated, ",".join(sorted(backends))


def _num(text: str, src: str, line: int, field: str, integer: bool = False) -> float:
    t = text.strip()
    try:
        v = float(t)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or (integer and not v.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise DearsimError(f"{src}:{line}: field '{field}' must be {kind}, got {t!r}")
    return v


def fit_line(op: str, workers: int, points: list[tuple[int, float]], src: str) -> LineFit:
    by_size: dict[int, list[float]] = {}
    for n, t in points:
        by_size.setdefault(n, []).append(t)
    sizes = sorted(by_size)
    times = [sorted(by_size[s])[len(by_size[s]) // 2] for s in sizes]
    if len(sizes) < 2:
        raise DearsimError(
            f"{src}: {op} with {workers} workers was measured at one size only "
            f"({sizes[0]} bytes): a line needs at least 2 sizes (3+ to judge the fit)"
        )
    k = len(sizes)
    mx = sum(sizes) / k
    my = sum(times) / k
    sxx = sum((x - mx) ** 2 for x in sizes)
    sxy = sum((x - mx) * (y - my) for x, y in zip(sizes, times))
    b = sxy / sxx
    a = my - b * mx
    constrained = ""
    if a < 0:
        b = sum(x * y for x, y in zip(sizes, times)) / sum(x * x for x in sizes)
        a = 0.0
        constrained = "intercept < 0 in the free fit: refitted with a = 0"
    if b < 0:
        a, b = my, 0.0
        constrained = "slope < 0 in the free fit: a constant (b = 0)"
    pred = [a + b * x for x in sizes]
    ss_res = sum((y - f) ** 2 for y, f in zip(times, pred))
    ss_tot = sum((y - my) ** 2 for y in times)
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    rel = [abs(f - y) / y for y, f in zip(times, pred)]
    worst = max(range(k), key=lambda i: rel[i])
    return LineFit(op, workers, a, b, sizes, times, r2, rel[worst] * 100, sizes[worst],
                   constrained)


def _size(n: int) -> str:
    for unit, v in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= v and n % (v // 1024 or 1) == 0:
            return f"{n / v:g} {unit}"
    return f"{n} B"


def calibrate(
    csv_path: str | Path, *, name: str | None = None, created: str | None = None,
    stat: str = "median",
) -> tuple[dict[str, Any], list[LineFit]]:
    """The network file (as a mapping) fitted to ``csv_path``, and the fits; ``stat``:
    which per-size statistic the lines are fitted to (``median`` or ``mean``)."""
    src = str(csv_path)
    data, emulated, backend = read_comm_csv(csv_path, stat)
    plural = {"median": "medians", "mean": "means"}[stat]
    fits = [fit_line(op, w, pts, src) for (op, w), pts in sorted(data.items())]
    for f in fits:
        f.emulated = emulated.get((f.op, f.workers), False)
    by_workers: dict[int, dict[str, LineFit]] = {}
    for f in fits:
        by_workers.setdefault(f.workers, {})[f.op] = f
    table = []
    sources: dict[str, str] = {}
    day = created or datetime.date.today().isoformat()
    for w in sorted(by_workers):
        ops = by_workers[w]
        if "allreduce" not in ops:
            raise DearsimError(
                f"{src}: no allreduce rows for {w} workers: a fitted network needs the "
                "all-reduce (reduce-scatter and all-gather are optional)"
            )
        entry: dict[str, Any] = {"workers": w}
        for op in ("allreduce", "reducescatter", "allgather"):
            f = ops.get(op)
            if f is None:
                continue
            key = FILE_OPS[op]
            entry[key] = {"a_s": float(f"{f.a:.6g}"), "b_s_per_byte": float(f"{f.b:.6g}")}
            text = (
                f"least squares T = a + b n over the per-size {plural} of {len(f.sizes)} sizes "
                f"({_size(f.sizes[0])} to {_size(f.sizes[-1])}) in {Path(src).name}"
                f"{' (' + backend + ')' if backend else ''}: R^2 = {f.r2:.4f}, worst "
                f"residual {f.worst_pct:.1f}% at {_size(f.worst_at)}"
            )
            if f.constrained:
                text += f"; {f.constrained}"
            if f.emulated:
                text += "; EMULATED collective (see the CSV's emulated column)"
            sources[f"fits[workers={w}].{key}"] = text
        table.append(entry)
    missing = sorted({FILE_OPS[o] for o in ("reducescatter", "allgather")} -
                     {k for e in table for k in e})
    desc = (f"Fitted on {day} by dearsim calibrate from {Path(src).name}"
            f"{' (' + backend + ')' if backend else ''}; workers "
            f"{', '.join(str(w) for w in sorted(by_workers))}.")
    if missing:
        desc += f" Not measured: {', '.join(missing)} (the model uses half the all-reduce)."
    net = {
        "name": name or Path(src).stem,
        "description": desc,
        "sources": sources,
        "fits": table,
    }
    return net, fits


def write_network(net: dict[str, Any], path: str | Path) -> None:
    import yaml

    from ..network import load_network

    load_network(net)  # what we write must load
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(net, sort_keys=False, width=100), encoding="utf-8")


def plot(fits: list[LineFit], path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = sorted({f.workers for f in fits})
    fig, axes = plt.subplots(1, len(workers), figsize=(5.5 * len(workers), 4), squeeze=False)
    colors = {"allreduce": "C0", "reducescatter": "C1", "allgather": "C2"}
    for ax, w in zip(axes[0], workers):
        for f in (f for f in fits if f.workers == w):
            c = colors[f.op]
            ax.loglog(f.sizes, [t * 1e3 for t in f.times], "o", color=c,
                      label=f"{f.op} measured")
            lo, hi = f.sizes[0], f.sizes[-1]
            xs = [lo * (hi / lo) ** (i / 50) for i in range(51)]
            ax.loglog(xs, [f.predict(x) * 1e3 for x in xs], "-", color=c,
                      label=f"fit a={f.a * 1e6:.1f} us, R^2={f.r2:.3f}")
        ax.set_xlabel("message size (bytes)")
        ax.set_ylabel("time (ms)")
        ax.set_title(f"{title + ': ' if title else ''}{w} workers")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
