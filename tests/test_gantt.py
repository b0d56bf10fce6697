"""Gantt pictures (dearsim.gantt): written, nothing clipped, and the bars are the ops."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.text import Text

import dearsim
from dearsim import Cluster, DearsimError, Trace
from dearsim.gantt import plot_timeline, timeline_bars, timeline_figure

ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = ("wfbp", "bytescheduler", "ddp", "dear")


@cache
def resnet() -> Trace:
    return dearsim.load_trace(ROOT / "traces" / "resnet50-b64.csvy")


@cache
def results(workers: int = 8) -> tuple[dearsim.Result, ...]:
    return tuple(
        dearsim.simulate(resnet(), "10GbE", workers, s, iterations=6, record_ops=True)
        for s in SCHEDULES
    )


def drawn(fig: Any) -> list[tuple[str, str, str, str, float, float]]:
    """Every bar in the figure as (schedule, row, kind, own|other, start, width), in ms."""
    out = []
    for ax in fig.axes:
        for coll in ax.collections:
            if not isinstance(coll, PolyCollection) or not coll.get_gid():
                continue
            schedule, row, kind, own = coll.get_gid().split("|")
            for path in coll.get_paths():
                xs = path.vertices[:, 0]
                out.append((schedule, row, kind, own, float(xs.min()), float(xs.max() - xs.min())))
    return out


def test_pictures_are_written_as_png_and_svg(tmp_path: Path) -> None:
    paths = plot_timeline(results(), tmp_path / "sub" / "resnet.png")
    assert [p.name for p in paths] == ["resnet.png", "resnet.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.parse(paths[1]).getroot().tag.endswith("svg")
    # No suffix: both are added.
    assert [p.name for p in plot_timeline(results(), tmp_path / "x")] == ["x.png", "x.svg"]


@pytest.mark.parametrize("count", [1, 4])
def test_nothing_is_clipped(count: int) -> None:
    fig = timeline_figure(results()[:count])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    assert tight.x0 >= -0.5 and tight.y0 >= -0.5
    assert tight.x1 <= box.x1 + 0.5 and tight.y1 <= box.y1 + 0.5
    # Tick labels of ticks outside an axis's limits exist but are never drawn.
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    hidden.update({id(tick.label1), id(tick.label2)})
    texts = [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]
    assert len(texts) > 10
    for t in texts:
        ext = t.get_window_extent(renderer)
        assert box.x0 - 0.5 <= ext.x0 and ext.x1 <= box.x1 + 0.5, t.get_text()
        assert box.y0 - 0.5 <= ext.y0 and ext.y1 <= box.y1 + 0.5, t.get_text()
    # The title, the legend and every schedule's heading are there.
    words = " ".join(t.get_text() for t in texts)
    for s in SCHEDULES[:count]:
        assert f"{s}: " in words
    assert "all-reduce" in words and "next iteration starts" in words
    if count == 4:
        assert "reduce-scatter" in words and "all-gather" in words


@pytest.mark.parametrize("iteration", [None, 3])
def test_full_colour_bars_are_the_ops_of_the_chosen_iteration(iteration: int | None) -> None:
    rs = results()
    fig = timeline_figure(rs, iteration=iteration)
    bars = drawn(fig)
    for r in rs:
        it = r.warmup if iteration is None else iteration
        t0 = min(op.start for op in r.raw.ops if op.iteration == it and op.kind.value == "fwd")
        want = Counter(
            (
                "compute",
                op.kind.value,
                round((op.start - t0) * 1e3, 6),
                round((op.end - op.start) * 1e3, 6),
            )
            for op in r.raw.ops
            if op.iteration == it
        ) + Counter(
            ("link", c.op.value, round((c.start - t0) * 1e3, 6), round((c.end - c.start) * 1e3, 6))
            for c in r.raw.collectives
            if c.iteration == it
        )
        got = Counter(
            (row, kind, round(s, 6), round(w, 6))
            for sched, row, kind, own, s, w in bars
            if sched == r.scheduler and own == "own"
        )
        assert got == want, r.scheduler
    # The faded bars of other iterations stay on the axis.
    ax = fig.axes[-1]
    lo, hi = ax.get_xlim()
    assert all(lo <= s and s + w <= hi for *_, own, s, w in bars if own == "other")
    assert any(own == "other" for *_, own, _, _ in bars)


def test_the_dashed_line_is_the_next_iteration_start() -> None:
    rs = results()
    fig = timeline_figure(rs)
    for ax, r in zip(fig.axes, rs):
        xs = [line.get_xdata()[0] for line in ax.get_lines()]
        assert xs == [pytest.approx(r.iteration_time_s * 1e3, rel=1e-9)], r.scheduler


def test_worker_classes_get_a_compute_row_each() -> None:
    r = dearsim.simulate(
        resnet(),
        "10GbE",
        Cluster(4, slowdown=(1.0, 1.0, 1.0, 1.3)),
        "dear",
        iterations=5,
        record_ops=True,
    )
    fig = timeline_figure([r])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["compute 0", "compute 1", "link"]
    bars, _ = timeline_bars([r])
    assert {b.row for b in bars} == {"compute 0", "compute 1", "link"}


def test_user_mistakes_are_dearsim_errors() -> None:
    plain = dearsim.simulate(resnet(), "10GbE", 4, "wfbp", iterations=4)
    with pytest.raises(DearsimError, match="record_ops=True"):
        timeline_figure([plain])
    with pytest.raises(DearsimError, match="iteration 6 is not one of the 0..5"):
        timeline_figure(results(), iteration=6)
    with pytest.raises(DearsimError, match="each schedule once"):
        timeline_figure([results()[0], results()[0]])
    with pytest.raises(DearsimError, match="no results"):
        timeline_figure([])
