"""Gantt pictures of simulated runs: one iteration of several schedules on one time axis.

For each schedule, a compute row (forward, backward and update ops; one row per worker class
when the workers differ) and a link row (all-reduces, reduce-scatters, all-gathers), aligned at
the start of the chosen iteration's forward pass. The chosen iteration's ops are drawn in full
colour; whatever else runs in the same stretch of time (the previous iteration's all-gathers,
the next iteration's forward pass) is drawn faded, and a dashed line marks where the next
iteration's forward pass starts, so the distance from 0 to it is the iteration time.
``docs/timelines.md`` shows and explains the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import FWD, OpKind, RawRun
from .errors import DearsimError
from .network import Op
from .result import Result

MS = 1e3

#: Colours of the compute ops and the collectives (the chosen iteration; others are faded).
COLOURS: dict[Any, str] = {
    OpKind.FWD: "#4c72b0",
    OpKind.BWD: "#dd8452",
    OpKind.UPDATE: "#55a868",
    Op.ALLREDUCE: "#8172b3",
    Op.REDUCE_SCATTER: "#c44e52",
    Op.ALL_GATHER: "#2a9d8f",
}
LABELS: dict[Any, str] = {
    OpKind.FWD: "forward",
    OpKind.BWD: "backward",
    OpKind.UPDATE: "update",
    Op.ALLREDUCE: "all-reduce",
    Op.REDUCE_SCATTER: "reduce-scatter",
    Op.ALL_GATHER: "all-gather",
}
FADED = 0.28

#: Row heights and positions inside one schedule's axes.
_BAR = 0.7


@dataclass(frozen=True)
class Bar:
    """One drawn bar: ``row`` is ``"compute"`` (``"compute <class>"`` with several classes)
    or ``"link"``; ``kind`` an :class:`~dearsim.engine.OpKind` or
    :class:`~dearsim.network.Op`; times in ms from the chosen iteration's forward start."""

    schedule: str
    row: str
    kind: Any
    iteration: int
    start: float
    width: float


def _raw(result: Result) -> RawRun:
    raw = result.raw
    if raw is None or not raw.ops:
        raise DearsimError(
            f"the {result.scheduler} result has no recorded ops: run simulate(...,"
            " record_ops=True) to draw its timeline"
        )
    return raw


def _iteration(result: Result, raw: RawRun, iteration: int | None) -> int:
    n = raw.iterations
    it = result.warmup if iteration is None else iteration
    if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it < n:
        raise DearsimError(
            f"iteration {it!r} is not one of the 0..{n - 1} simulated for {result.scheduler}"
        )
    return it


def _forward_start(raw: RawRun, it: int) -> float | None:
    starts = [op.start for op in raw.ops if op.iteration == it and op.kind is FWD]
    return min(starts) if starts else None


def timeline_bars(
    results: Sequence[Result], *, iteration: int | None = None
) -> tuple[list[Bar], float]:
    """The bars :func:`timeline_figure` draws and the span of its time axis (ms).

    The chosen iteration's bars are every op and collective of that iteration, whole; the
    others are those of other iterations that run within the span, cut to it."""
    if not results:
        raise DearsimError("no results to draw")
    chosen: list[Bar] = []
    spans: list[tuple[Result, RawRun, int, float]] = []
    for r in results:
        raw = _raw(r)
        it = _iteration(r, raw, iteration)
        t0 = _forward_start(raw, it)
        if t0 is None:
            raise DearsimError(f"iteration {it} of {r.scheduler} has no forward ops")
        spans.append((r, raw, it, t0))
    end = 0.0
    for r, raw, it, t0 in spans:
        classes = max(op.worker for op in raw.ops) + 1
        for op in raw.ops:
            if op.iteration == it:
                row = "compute" if classes == 1 else f"compute {op.worker}"
                chosen.append(
                    Bar(
                        r.scheduler,
                        row,
                        op.kind,
                        it,
                        (op.start - t0) * MS,
                        (op.end - op.start) * MS,
                    )
                )
        for c in raw.collectives:
            if c.iteration == it:
                chosen.append(
                    Bar(r.scheduler, "link", c.op, it, (c.start - t0) * MS, (c.end - c.start) * MS)
                )
        end = max(end, max(b.start + b.width for b in chosen if b.schedule == r.scheduler))
    bars = list(chosen)
    for r, raw, it, t0 in spans:
        classes = max(op.worker for op in raw.ops) + 1
        items: list[tuple[str, Any, int, float, float]] = [
            (
                "compute" if classes == 1 else f"compute {op.worker}",
                op.kind,
                op.iteration,
                op.start,
                op.end,
            )
            for op in raw.ops
        ]
        items += [("link", c.op, c.iteration, c.start, c.end) for c in raw.collectives]
        for row, kind, other, s, e in items:
            if other == it:
                continue
            a, b = max((s - t0) * MS, 0.0), min((e - t0) * MS, end)
            if b > a:
                bars.append(Bar(r.scheduler, row, kind, other, a, b - a))
    return bars, end


def timeline_figure(
    results: Sequence[Result], *, iteration: int | None = None, title: str | None = None
) -> Any:
    """A matplotlib ``Figure`` of one iteration of each result (see the module's docstring).

    ``iteration`` picks the iteration (default: each result's first measured one, its
    ``warmup``); every result needs recorded ops (``simulate(..., record_ops=True)``)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    results = list(results)
    names = [r.scheduler for r in results]
    if len(set(names)) != len(names):
        raise DearsimError(f"each schedule once, please: got {names}")
    bars, end = timeline_bars(results, iteration=iteration)
    rows_of: dict[str, list[str]] = {}
    for r in results:
        classes = max(op.worker for op in _raw(r).ops) + 1
        rows = ["compute"] if classes == 1 else [f"compute {c}" for c in range(classes)]
        rows_of[r.scheduler] = rows + ["link"]

    heights = [len(rows_of[n]) for n in names]
    fig = Figure(
        figsize=(11, 0.55 * sum(heights) + 0.55 * len(results) + 1.6), layout="constrained"
    )
    axes = fig.subplots(
        len(results), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights}
    )[:, 0]
    used: set[Any] = set()
    for ax, r in zip(axes, results):
        raw = _raw(r)
        it = _iteration(r, raw, iteration)
        rows = rows_of[r.scheduler]
        ypos = {row: len(rows) - 1 - k for k, row in enumerate(rows)}
        groups: dict[tuple[str, Any, bool], list[tuple[float, float]]] = {}
        for b in bars:
            if b.schedule == r.scheduler:
                groups.setdefault((b.row, b.kind, b.iteration == it), []).append((b.start, b.width))
        for (row, kind, own), spans in sorted(
            groups.items(), key=lambda kv: (kv[0][2], kv[0][0], LABELS[kv[0][1]])
        ):
            link = row == "link"
            coll = ax.broken_barh(
                spans,
                (ypos[row] - _BAR / 2, _BAR),
                facecolors=COLOURS[kind],
                alpha=1.0 if own else FADED,
                edgecolors="white" if link else "none",
                linewidths=0.3 if link else 0,
            )
            coll.set_gid(f"{r.scheduler}|{row}|{kind.value}|{'own' if own else 'other'}")
            used.add(kind)
        t0 = _forward_start(raw, it)
        t_next = _forward_start(raw, it + 1) if it + 1 < raw.iterations else None
        if t0 is not None and t_next is not None and (t_next - t0) * MS <= end:
            ax.axvline((t_next - t0) * MS, color="black", linestyle="--", linewidth=1)
        ax.set_yticks([ypos[row] for row in rows], rows)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(
            f"{r.scheduler}: {r.iteration_time_s * MS:.1f} ms per iteration"
            f" (compute {r.compute_s * MS:.1f} ms, exposed communication"
            f" {r.exposed_comm_s * MS:.1f} ms)",
            loc="left",
            fontsize=9,
        )
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
    axes[-1].set_xlim(0, end * 1.01 if end > 0 else 1.0)
    chosen_it = iteration if iteration is not None else None
    which = f"iteration {chosen_it}" if chosen_it is not None else "the first measured iteration"
    axes[-1].set_xlabel(f"time since the start of {which}'s forward pass (ms)")
    order = [OpKind.FWD, OpKind.BWD, OpKind.UPDATE, Op.ALLREDUCE, Op.REDUCE_SCATTER, Op.ALL_GATHER]
    handles: list[Any] = [Patch(color=COLOURS[k], label=LABELS[k]) for k in order if k in used]
    handles.append(Patch(facecolor="#888888", alpha=FADED, label="faded: other iterations"))
    handles.append(Line2D([], [], color="black", linestyle="--", label="next iteration starts"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 8),
        fontsize=8,
        frameon=False,
    )
    if title is None:
        title = _title(results)
    fig.suptitle(title, fontsize=10)
    return fig


def _title(results: Sequence[Result]) -> str:
    first = results[0]
    same = all(
        (r.trace, r.network, r.workers) == (first.trace, first.network, first.workers)
        for r in results
    )
    if same:
        return (
            f"{first.trace} on {first.network}, {first.workers} workers:"
            " one iteration of each schedule"
        )
    return "one iteration of each schedule"


def plot_timeline(
    results: Sequence[Result],
    path: str | Path,
    *,
    iteration: int | None = None,
    title: str | None = None,
    dpi: int = 150,
) -> list[Path]:
    """Draw :func:`timeline_figure` and write it as PNG and SVG: ``path`` names either (or
    neither: both suffixes are added); returns the two paths written."""
    out = Path(path)
    if out.suffix.lower() in (".png", ".svg"):
        stem = out.with_suffix("")
    else:
        stem = out
    fig = timeline_figure(results, iteration=iteration, title=title)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths
