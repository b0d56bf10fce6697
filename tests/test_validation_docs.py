"""docs/validation.md prints the current run's tables as the files in
``examples/calibration/run3`` give them (``summarize.py`` and ``comm_timeline.py``
recompute them here), so the page cannot drift from its data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAL = ROOT / "examples" / "calibration"
RUN = CAL / "run3"
DOC = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "examples" / "calibration"))

import comm_timeline  # noqa: E402
import summarize  # noqa: E402


@pytest.mark.parametrize("run", ["run3", "run4"])
def test_the_error_tables_are_the_run_files(run: str) -> None:
    tables = summarize.tables(CAL / run)
    assert tables.count("\n| ") > 40  # 40 rows, the summary, the headers
    assert tables in DOC


@pytest.mark.parametrize("run, label", [("run3", "third (12:06 UTC)"),
                                        ("run4", "fourth (12:16 UTC)")])
def test_the_headline_table_is_each_runs_summary(run: str, label: str) -> None:
    rows = summarize.rows(CAL / run)
    assert len(rows) == 40 and all(r["repeats"] == 3 for r in rows)
    lines = summarize.tables(CAL / run).splitlines()
    summary = next(line for line in lines if line.startswith("| all 40 |"))
    cells = [c.strip() for c in summary.split("|")[3:-1]]
    assert f"| {label} | " + " | ".join(cells) + " |" in DOC


def test_the_third_run_is_under_predicted_in_every_row_and_column() -> None:
    rows = summarize.rows(RUN)
    assert all(float(r[f"e_{s}"]) < 0 for r in rows for s, _ in summarize.SHOWN)


def test_the_comm_log_timeline_is_the_run3_log() -> None:
    pytest.importorskip("pandas")
    text = comm_timeline.timeline(str(RUN / "comm-log" / "validate-mlp-b32.comm.csv"),
                                  str(RUN / "gloo-loopback-2.yaml"))
    assert "reducescatter" in text and "allreduce" in text
    assert text.strip() in DOC


def test_the_repeatability_table_is_the_five_fits() -> None:
    import yaml

    for k in range(1, 6):
        fit = yaml.safe_load((CAL / "repeatability" / f"n{k}.yaml").read_text())["fits"][0]
        cells = []
        for op in ("allreduce", "reduce_scatter", "all_gather"):
            cells += [f"{fit[op]['a_s'] * 1e6:.0f}", f"{fit[op]['b_s_per_byte'] * 1e9:.3f}"]
        assert f"   | {k} | " + " | ".join(cells) + " |" in DOC
