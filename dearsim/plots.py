"""Plots of results (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .result import Result


def breakdown(
    results: Sequence[Result], path: str | Path, title: str | None = None, baseline: str = "wfbp"
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
            label += f"  ({r.speedup_over(base):.2f}x vs {baseline})"
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
