"""docs/validation.md prints the current run's tables as the files in
``examples/calibration/run3`` give them (``summarize.py`` and ``comm_timeline.py``
recompute them here), so the page cannot drift from its data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "examples" / "calibration" / "run3"
DOC = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "examples" / "calibration"))

import comm_timeline  # noqa: E402
import summarize  # noqa: E402


def test_the_error_tables_are_the_run3_files() -> None:
    tables = summarize.tables(RUN)
    assert tables.count("\n| ") > 40  # 40 rows, the summary, the headers
    assert tables in DOC


def test_the_summary_numbers_quoted_in_the_text_are_the_tables() -> None:
    rows = summarize.rows(RUN)
    assert len(rows) == 40 and all(r["repeats"] == 3 for r in rows)
    # "Every prediction is below its measurement (40 of 40 rows, every column)"
    assert all(float(r[f"e_{s}"]) < 0 for r in rows for s, _ in summarize.SHOWN)
    assert "40\nrows" in DOC or "40 rows" in DOC.replace("\n", " ")
    first = summarize.tables(RUN).splitlines()
    summary = next(line for line in first if line.startswith("| all 40 |"))
    med, worst = summary.split("|")[3].strip().rstrip(" %").split(" / ")
    assert f"{med} / {worst} % from the trace and the network" in DOC.replace("\n", " ")


def test_the_comm_log_timeline_is_the_run3_log() -> None:
    pytest.importorskip("pandas")
    text = comm_timeline.timeline(str(RUN / "comm-log" / "validate-mlp-b32.comm.csv"),
                                  str(RUN / "gloo-loopback-2.yaml"))
    assert "reducescatter" in text and "allreduce" in text
    assert text.strip() in DOC
