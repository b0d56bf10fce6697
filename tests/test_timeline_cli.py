"""The command-line faces of timelines: ``simulate --timeline/--rank-traces``,
``compare --gantt`` and ``plot timeline``."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import one_error_line, run

TRACE = Path(__file__).resolve().parent.parent / "traces" / "vgg16-b32.csvy"
BASE = ["--trace", TRACE, "--network", "10GbE", "--workers", 4]


def test_simulate_writes_a_chrome_trace_and_rank_traces(capsys, tmp_path):
    out = tmp_path / "run.json"
    ranks = tmp_path / "ranks"
    rc, stdout, err = run(capsys, "simulate", *BASE, "--scheduler", "dear", "--json",
                          "--timeline", out, "--rank-traces", ranks)
    assert rc == 0, err
    summary = json.loads(stdout)
    data = json.loads(out.read_text())
    names = {e["name"] for e in data["traceEvents"] if e.get("ph") == "X"}
    assert any(n.startswith("ncclDevKernel_ReduceScatter") for n in names)
    assert any(n.startswith("ncclDevKernel_AllGather") for n in names)
    assert data["distributedInfo"]["world_size"] == 4
    # the link track's busy time is the reported link busy time of the measured iterations
    comm = [e for e in data["traceEvents"] if e.get("ph") == "X" and e["name"].startswith("nccl")]
    measured = summary["iterations"] - 1 - summary["warmup"]
    busy_us = sum(e["dur"] for e in comm)
    assert abs(busy_us - summary["comm_s"] * 1e6 * measured) < 1e-3 * busy_us
    assert sorted(p.name for p in ranks.iterdir()) == [f"rank{r}.pt.trace.json" for r in range(4)]


def test_compare_and_plot_timeline_draw_gantt_pictures(capsys, tmp_path):
    rc, _, err = run(capsys, "compare", *BASE, "--gantt", tmp_path / "cmp.png")
    assert rc == 0, err
    assert (tmp_path / "cmp.png").stat().st_size > 0 and (tmp_path / "cmp.svg").exists()
    rc, _, err = run(capsys, "plot", "timeline", *BASE, "--scheduler", "wfbp",
                     "--scheduler", "dear", "--set", "dear.prefetch=next",
                     "--out", tmp_path / "two.png")
    assert rc == 0, err
    assert (tmp_path / "two.png").stat().st_size > 0


def test_plot_timeline_bad_input_is_one_line(capsys, tmp_path):
    line = one_error_line(*run(capsys, "plot", "timeline", *BASE, "--scheduler", "nope",
                               "--out", tmp_path / "x.png"))
    assert "nope" in line
    line = one_error_line(*run(capsys, "plot", "timeline", *BASE, "--scheduler", "wfbp",
                               "--set", "dear.prefetch=next", "--out", tmp_path / "x.png"))
    assert "dear" in line
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    line = one_error_line(*run(capsys, "simulate", *BASE, "--scheduler", "ddp",
                               "--timeline", blocker / "t.json"))
    assert str(blocker) in line
