"""The plots of every shipped config: nothing clipped, nothing overlapping (measured on the
figure's text extents), labels that tell traces apart."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dearsim import table
from dearsim.config import load_config
from dearsim.errors import DearsimError
from dearsim.plots import curves_figure, metric_figure, with_speedup

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")
                 if not p.stem.startswith("scale-"))


def fake_results(config: Path) -> tuple[object, object]:
    """Rows for every run of a config with made-up, plausible metrics (the layout depends
    on the labels and the axes, not on the simulation)."""
    loaded = load_config(config)
    rows = []
    for run in loaded.iter_runs():
        row = table.row(run)
        spread = (int(run.run_hash[:4], 16) % 97) / 97
        row.update(status="ok", error=None, iteration_time_s=0.1 + 0.2 * spread,
                   throughput_samples_per_s=1000 + 9000 * spread)
        for key in ("iteration_p50_s", "iteration_p99_s", "wait_mean_s", "wait_max_s"):
            row[key] = (0.05 + 0.3 * spread) * (1 + len(key) / 100)
        rows.append(row)
    return table.frame(rows), loaded.config.plot


def text_boxes(fig: object) -> list[tuple[str, object]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    boxes = []
    if fig._suptitle is not None:
        boxes.append(("suptitle", fig._suptitle.get_window_extent(r)))
    for legend in fig.legends:
        boxes.append(("legend", legend.get_window_extent(r)))
    for i, ax in enumerate(fig.axes):
        for what, t in (("title", ax.title), ("xlabel", ax.xaxis.label),
                        ("ylabel", ax.yaxis.label)):
            if t.get_visible() and t.get_text():
                boxes.append((f"ax{i} {what} {t.get_text()!r}", t.get_window_extent(r)))
        for axis in ("x", "y"):
            ax_ = ax.xaxis if axis == "x" else ax.yaxis
            lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
            for tick in ax_.get_major_ticks():  # those drawn: inside the view
                t = tick.label1
                span = (hi - lo) * 1e-9
                if (t.get_visible() and t.get_text()
                        and lo - span <= tick.get_loc() <= hi + span):
                    boxes.append((f"ax{i} {axis}tick {t.get_text()!r}",
                                  t.get_window_extent(r)))
    return boxes


def check_layout(fig: object) -> None:
    fb = fig.bbox
    boxes = text_boxes(fig)
    assert boxes
    for name, b in boxes:
        assert b.x0 >= fb.x0 - 1 and b.y0 >= fb.y0 - 1, f"{name} clipped at the left/bottom"
        assert b.x1 <= fb.x1 + 1 and b.y1 <= fb.y1 + 1, f"{name} clipped at the right/top"
    for (n1, b1), (n2, b2) in itertools.combinations(boxes, 2):
        overlap_w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
        overlap_h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
        assert not (overlap_w > 0.5 and overlap_h > 0.5), f"{n1} overlaps {n2}"


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("kind", ["speedup", "throughput", "configured"])
def test_shipped_config_plots_are_neither_clipped_nor_overlapping(name: str, kind: str) -> None:
    frame, plot = fake_results(ROOT / "configs" / f"{name}.yaml")
    if kind == "configured":  # what the sweep draws: the config's plot.y
        fig = metric_figure(frame, plot.y, plot.x, plot.facet, plot.row, plot.baseline)
    elif kind == "speedup":
        data = with_speedup(frame, plot.baseline)
        fig = curves_figure(data, "speedup", f"speedup over {plot.baseline}", plot.x,
                            plot.facet, plot.row, f"speedup over {plot.baseline}",
                            plot.baseline)
    else:
        fig = curves_figure(frame, "throughput_samples_per_s", "samples/s", plot.x,
                            plot.facet, plot.row, "throughput")
    check_layout(fig)


def test_a_huge_sweep_is_not_drawn_but_refused_in_one_line() -> None:
    frame, plot = fake_results(ROOT / "configs" / "scale-1k.yaml")
    data = with_speedup(frame, "wfbp")
    with pytest.raises(DearsimError, match="several runs per plotted point|too many"):
        curves_figure(data, "speedup", "s", "workers", None, None, "t", "wfbp")


def test_traces_with_one_stem_get_distinct_labels(tmp_path: Path) -> None:
    for d, ms in (("a", 1), ("b", 2)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "t.csv").write_text(f"name,fwd_ms,bwd_ms,bytes\nl,{ms},1,1000\n")
    (tmp_path / "c.yaml").write_text(
        "traces: [a/t.csv, b/t.csv, {path: a/t.csv, label: mine}]\nnetworks: [10GbE]\n"
        "workers: [2]\nschedules: [wfbp]\n"
    )
    labels = [r.trace for r in load_config(tmp_path / "c.yaml").runs]
    assert labels == ["a/t", "b/t", "mine"]
    (tmp_path / "d.yaml").write_text(
        "traces: [{path: a/t.csv, label: x}, {path: b/t.csv, label: x}]\n"
        "networks: [10GbE]\nworkers: [2]\nschedules: [wfbp]\n"
    )
    with pytest.raises(DearsimError, match="label 'x' already names another trace"):
        load_config(tmp_path / "d.yaml")
