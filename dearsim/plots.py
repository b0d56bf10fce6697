"""Plots of results (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .result import Result
from .table import BASELINE, POINT_COLUMNS, speedup, with_speedup

__all__ = [
    "POINT_COLUMNS", "Y_CHOICES", "breakdown", "breakdown_bars", "load_results",
    "metric_curves", "metric_figure", "speedup_curves", "throughput_curves", "with_speedup",
]


def breakdown(
    results: Sequence[Result], path: str | Path, title: str | None = None,
    baseline: str = BASELINE,
) -> Path:
    """Horizontal bars per schedule: compute plus exposed communication (the iteration time),
    and beside it the link's busy time; labelled with the speedup over ``baseline``."""
    from matplotlib.figure import Figure

    ordered = sorted(results, key=lambda r: r.iteration_time_s, reverse=True)
    base = next((r for r in results if r.scheduler == baseline), None)
    names = [r.scheduler for r in ordered]
    y = list(range(len(ordered)))
    ms = 1e3
    fig = Figure(figsize=(8, 0.55 * len(ordered) + 1.9), layout="constrained")
    ax = fig.add_subplot()
    h = 0.38
    ax.barh([i + h / 2 for i in y], [r.compute_s * ms for r in ordered], h, label="compute",
            color="#4c72b0")
    ax.barh([i + h / 2 for i in y], [max(0.0, r.exposed_comm_s) * ms for r in ordered], h,
            left=[r.compute_s * ms for r in ordered], label="exposed communication",
            color="#dd8452")
    ax.barh([i - h / 2 for i in y], [r.comm_s * ms for r in ordered], h,
            label="link busy (all communication)", color="#8c8c8c")
    for i, r in zip(y, ordered):
        label = f"{r.iteration_time_s * ms:.1f} ms"
        if base is not None:
            label += f"  ({speedup(base.iteration_time_s, r.iteration_time_s):.2f}x vs {baseline})"
        ax.text(r.iteration_time_s * ms, i + h / 2, " " + label, va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlabel("time per iteration (ms)")
    xmax = max(max(r.iteration_time_s, r.comm_s) for r in ordered) * ms
    ax.set_xlim(0, xmax * 1.45 if xmax > 0 else 1)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


# --------------------------------------------------------------------------- sweep results

def load_results(path: str | Path) -> Any:
    """A sweep's results as a DataFrame, from its folder or a .parquet/.csv/.jsonl file."""
    import pandas as pd

    from .errors import DearsimError

    p = Path(path)
    if p.is_dir():
        for name in ("results.parquet", "results.csv", "results.jsonl"):
            if (p / name).exists():
                p = p / name
                break
        else:
            raise DearsimError(f"{path}: no results.parquet, results.csv or results.jsonl here")
    if not p.exists():
        raise DearsimError(f"{path}: no such results file")
    if not p.is_file():
        raise DearsimError(f"{path}: not a results file (a folder or a special file)")
    try:
        if p.suffix == ".parquet":
            frame = pd.read_parquet(p)
        elif p.suffix == ".jsonl":
            from .sweep import read_rows

            frame = pd.DataFrame(read_rows(p))
        else:
            frame = pd.read_csv(p)
    except Exception as exc:  # a file that is not a results table
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DearsimError(f"{path}: cannot read results: {first}") from None
    missing = [c for c in ("status", "schedule", "group_hash", "iteration_time_s")
               if c not in frame.columns]
    if missing:
        raise DearsimError(f"{path}: not a dearsim results table (no column "
                           f"{', '.join(missing)})")
    if not (frame["status"] == "ok").any():
        raise DearsimError(f"{path}: no successful runs to plot")
    return frame


def _panels(frame: Any, x: str, facet: str | None, row: str | None, what: str) -> Any:
    """Check that (row, facet, x, schedule) picks one run; return facet/row values."""
    from .errors import DearsimError

    for col in [c for c in (x, facet, row) if c]:
        if col not in frame.columns:
            raise DearsimError(f"no column {col!r} in the results")
    keys = [c for c in (row, facet, x) if c] + ["schedule"]
    dup = frame.groupby(keys, dropna=False).size()
    if (dup > 1).any():
        groups = frame.groupby(keys, dropna=False)
        varying = [  # columns that vary among runs drawn at one point
            c for c in POINT_COLUMNS
            if c in frame.columns and c not in keys
            and groups[c].nunique(dropna=False).max() > 1
        ]
        raise DearsimError(
            f"several runs per {what} point; the results also vary in "
            f"{', '.join(varying) or 'columns not plotted'}: choose them as --x, --facet or "
            "--row, or select rows first"
        )
    rows = list(dict.fromkeys(frame[row])) if row else [None]  # in the order of the runs
    cols = list(dict.fromkeys(frame[facet])) if facet else [None]
    return rows, cols


#: The most panels and points a curves figure draws (beyond that it is not legible).
MAX_PANELS = 36
MAX_POINTS = 20_000


def curves_figure(
    frame: Any, y: str, ylabel: str, x: str, facet: str | None, row: str | None,
    title: str, baseline: str | None = None, logy: bool = False,
) -> Any:
    """The figure of :func:`metric_curves` (and so of :func:`speedup_curves` and
    :func:`throughput_curves`), not saved."""
    from matplotlib.figure import Figure

    from .errors import DearsimError

    if frame.empty:
        raise DearsimError("no successful runs to plot")
    facet = facet if facet and frame[facet].nunique() > 1 else None
    row = row if row and frame[row].nunique() > 1 else None
    rows, cols = _panels(frame, x, facet, row, "plotted")
    if len(rows) * len(cols) > MAX_PANELS or len(frame) > MAX_POINTS:
        raise DearsimError(
            f"{len(rows) * len(cols)} panels and {len(frame):,} points are too many to draw "
            f"legibly (at most {MAX_PANELS} panels, {MAX_POINTS:,} points): plot a selection "
            "with dearsim plot"
        )
    if not _is_numeric(frame[x]):
        raise DearsimError(f"--x {x}: not a numeric column; choose workers, batch_size, a "
                           "numeric network.* or cluster.* column, or seed")
    fig = Figure(figsize=(4.2 * len(cols) + 1.2, 3.2 * len(rows) + 0.9), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex=True)
    schedules = list(dict.fromkeys(frame["schedule"]))
    xs = frame[x].astype(float)
    log = xs.min() > 0 and xs.max() / xs.min() >= 8
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            ax = axes[i][j]
            sel = frame
            if row:
                sel = sel[sel[row] == rv]
            if facet:
                sel = sel[sel[facet] == cv]
            for k, name in enumerate(schedules):
                part = sel[sel["schedule"] == name].sort_values(x)
                if part.empty:
                    continue
                style = "--" if name == baseline else "-"
                ax.plot(part[x], part[y], style, marker="o", ms=3.5, label=name,
                        color=f"C{k % 10}")
            if log:
                ax.set_xscale("log", base=2 if x == "workers" else 10)
                ticks = sorted(set(xs))
                ax.set_xticks(ticks, _thinned_labels(ticks, panel_width_in=4.2))
                ax.minorticks_off()
            if logy:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            label = " · ".join(str(v) for v in (rv, cv) if v is not None)
            if label:
                ax.set_title(label, fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel(x)
            if j == 0:
                ax.set_ylabel(ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # As many legend columns as fit the figure's width (about 1.4 in per entry at 8 pt).
    width_in = fig.get_figwidth()
    longest = max((len(lab) for lab in labels), default=1)
    per_entry = 0.55 + 0.075 * longest
    ncols = max(1, min(len(labels), int(width_in // per_entry)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
               fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig


def _thinned_labels(ticks: list[float], panel_width_in: float) -> list[str]:
    """Labels for log-scale ticks at every value, left empty where a label would run into
    the previous one (about 0.08 in per character at 8-10 pt, on ~80% of the panel)."""
    import math

    lo, hi = math.log(ticks[0]), math.log(ticks[-1])
    span = (hi - lo) or 1.0
    usable = panel_width_in * 0.8
    out: list[str] = []
    last_right = -math.inf
    for t in ticks:
        text = f"{t:g}"
        centre = (math.log(t) - lo) / span * usable
        half = 0.5 * (0.085 * len(text) + 0.08)
        if centre - half >= last_right:
            out.append(text)
            last_right = centre + half
        else:
            out.append("")
    return out


def _is_numeric(col: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(col))


def _save(fig: Any, path: str | Path) -> list[Path]:
    """Write ``path`` as PNG and SVG (its suffix, if any, is replaced)."""
    stem = Path(path)
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    outs = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(outs[0], dpi=130)
    fig.savefig(outs[1])
    return outs


def speedup_curves(
    frame: Any, path: str | Path, x: str = "workers", baseline: str = BASELINE,
    facet: str | None = "network", row: str | None = "trace",
) -> list[Path]:
    """Speedup over ``baseline`` against ``x``, one line per schedule, panels by ``facet``
    (columns) and ``row`` (rows). Writes PNG and SVG; returns their paths."""
    return metric_curves(frame, path, "speedup", x, facet, row, baseline)


def throughput_curves(
    frame: Any, path: str | Path, x: str = "workers", facet: str | None = "network",
    row: str | None = "trace",
) -> list[Path]:
    """Throughput (samples/s) against ``x``, one line per schedule."""
    return metric_curves(frame, path, "throughput", x, facet, row)


#: What a sweep's plot can show on its y axis (``plot.y`` in a config): the speedup over
#: the baseline, the throughput, or one of these time metrics, drawn in milliseconds.
TIME_METRICS = {
    "iteration_time_s": "iteration time, mean (ms)",
    "iteration_p50_s": "iteration time, p50 (ms)",
    "iteration_p99_s": "iteration time, p99 (ms)",
    "wait_mean_s": "waiting time per worker, mean (ms)",
    "wait_max_s": "waiting time per worker, max (ms)",
}
Y_CHOICES = ("speedup", "throughput", *TIME_METRICS)


def metric_figure(
    frame: Any, y: str, x: str = "workers", facet: str | None = "network",
    row: str | None = "trace", baseline: str = BASELINE,
) -> Any:
    """The figure of :func:`metric_curves`, not saved."""
    from .errors import DearsimError

    if y == "speedup":
        data = with_speedup(frame, baseline)
        return curves_figure(data, "speedup", f"speedup over {baseline}", x, facet, row,
                             f"speedup over {baseline} (T_{baseline} / T)", baseline)
    data = frame[frame["status"] == "ok"]
    if y == "throughput":
        return curves_figure(data, "throughput_samples_per_s", "samples/s", x, facet, row,
                             "throughput")
    if y not in TIME_METRICS:
        raise DearsimError(f"y {y!r}: choose one of {', '.join(Y_CHOICES)}")
    if y not in data.columns:
        raise DearsimError(f"no column {y!r} in the results")
    data = data.assign(_ms=data[y].astype(float) * 1e3)
    lo, hi = data["_ms"].min(), data["_ms"].max()
    logy = bool(lo > 0 and hi / lo >= 8)  # schedules an order of magnitude apart
    return curves_figure(data, "_ms", TIME_METRICS[y], x, facet, row, TIME_METRICS[y],
                         baseline, logy)


def metric_curves(
    frame: Any, path: str | Path, y: str, x: str = "workers", facet: str | None = "network",
    row: str | None = "trace", baseline: str = BASELINE,
) -> list[Path]:
    """``y`` (one of :data:`Y_CHOICES`) against ``x``, one line per schedule, panels by
    ``facet`` and ``row``; time metrics in ms (log scale when they span 8x or more). Writes
    PNG and SVG; returns their paths."""
    return _save(metric_figure(frame, y, x, facet, row, baseline), path)


def breakdown_bars(frame: Any, path: str | Path) -> list[Path]:
    """Iteration-time breakdown (compute, overlapped and exposed communication) per schedule
    for one point of a sweep (``frame`` must hold one run per schedule)."""
    from matplotlib.figure import Figure

    from .errors import DearsimError

    data = frame[frame["status"] == "ok"]
    if data.empty:
        raise DearsimError("no successful runs to plot")
    if data["schedule"].duplicated().any():
        raise DearsimError("several runs per schedule: select one point (e.g. --where workers=64)")
    data = data.sort_values("iteration_time_s", ascending=False)
    ms = 1e3
    fig = Figure(figsize=(8, 0.5 * len(data) + 1.9), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(data)))
    compute = data["compute_s"] * ms
    exposed = data["exposed_comm_s"].clip(lower=0) * ms
    overlapped = data["overlapped_comm_s"] * ms
    ax.barh(y, compute, color="#4c72b0", label="compute")
    ax.barh(y, exposed, left=compute, color="#dd8452", label="exposed communication")
    ax.barh(y, overlapped, left=compute - overlapped, height=0.3, color="#55a868",
            label="overlapped communication (under compute)")
    ax.set_yticks(y, list(data["schedule"]))
    ax.set_xlabel("time per iteration (ms)")
    first = data.iloc[0]
    ax.set_title(f"{first['trace']}, {first['network']}, {first['workers']} workers", fontsize=10)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return _save(fig, path)
