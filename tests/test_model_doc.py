"""Every worked example of ``docs/model.md`` runs here.

The examples are fenced code blocks with the info string ``dearsim-example`` holding YAML::

    name: A
    trace: {fwd_ms: [...], bwd_ms: [...], bytes: [...]}   # optional update_ms, tensors
    network: {alpha_s: ..., beta_s_per_byte: ...}
    workers: 2
    runs:
      - {schedule: wfbp, options: {...}, expect_ms: 7, buckets: [[0, 0], [1, 1]], why: "..."}

Each run is simulated and its iteration time compared with the hand-computed ``expect_ms``
(and its buckets with ``buckets`` where given). The markdown table right after each block
must list the same runs: the same schedule and the same number, row by row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import dearsim

DOC = Path(__file__).resolve().parent.parent / "docs" / "model.md"
FENCE = re.compile(r"^```dearsim-example[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
#: Fewer examples than this means some were deleted: the test must notice.
MIN_EXAMPLES = 5
MIN_RUNS = 25


def _examples() -> list[tuple[dict[str, Any], str]]:
    """(example, the text after its block up to the next block) for every example."""
    text = DOC.read_text(encoding="utf-8")
    matches = list(FENCE.finditer(text))
    out = []
    for k, m in enumerate(matches):
        data = yaml.safe_load(m.group(1))
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        out.append((data, text[m.end() : end]))
    return out


EXAMPLES = _examples()


def _cases() -> list[Any]:
    cases = []
    for ex, _ in EXAMPLES:
        for k, run in enumerate(ex["runs"]):
            cases.append(pytest.param(ex, run, id=f"{ex['name']}-{run['schedule']}-{k}"))
    return cases


def _trace(spec: dict[str, Any]) -> dearsim.Trace:
    ms = 1e-3
    update = spec.get("update_ms")
    return dearsim.Trace.from_layers(
        [x * ms for x in spec["fwd_ms"]],
        [x * ms for x in spec["bwd_ms"]],
        spec["bytes"],
        None if update is None else [x * ms for x in update],
        tensors=spec.get("tensors"),
    )


def test_the_document_has_its_examples():
    names = [ex["name"] for ex, _ in EXAMPLES]
    assert len(names) >= MIN_EXAMPLES, f"{DOC}: only {len(names)} worked examples: {names}"
    assert len(set(names)) == len(names), f"{DOC}: example names repeat: {names}"
    assert sum(len(ex["runs"]) for ex, _ in EXAMPLES) >= MIN_RUNS
    for ex, _ in EXAMPLES:
        assert set(ex) <= {"name", "trace", "network", "workers", "runs"}, ex["name"]
        for run in ex["runs"]:
            assert set(run) <= {"schedule", "options", "expect_ms", "buckets", "why"}, run
            assert run.get("why"), f"example {ex['name']}: a run without its working: {run}"


@pytest.mark.parametrize("ex, run", _cases())
def test_worked_example(ex: dict[str, Any], run: dict[str, Any]) -> None:
    res = dearsim.simulate(
        _trace(ex["trace"]),
        ex["network"],
        ex["workers"],
        run["schedule"],
        run.get("options") or {},
        iterations=8,
        warmup=2,
    )
    assert res.iteration_time_s == pytest.approx(run["expect_ms"] * 1e-3, rel=1e-9), run["why"]
    if "buckets" in run:
        assert [list(b) for b in res.buckets] == run["buckets"], run["why"]


def _table_rows(after: str) -> list[list[str]]:
    """The body rows of the first markdown table in ``after``, as lists of cells."""
    rows: list[list[str]] = []
    started = False
    for line in after.splitlines():
        if line.startswith("|"):
            started = True
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif started:
            break
    # header and the |---| line
    return rows[2:]


def _number(cell: str) -> float:
    m = re.fullmatch(r"\**([0-9]+(?:\.[0-9]+)?)\**", cell)
    assert m, f"not a number of ms: {cell!r}"
    return float(m.group(1))


@pytest.mark.parametrize("ex, after", EXAMPLES, ids=[ex["name"] for ex, _ in EXAMPLES])
def test_table_matches_its_example(ex: dict[str, Any], after: str) -> None:
    rows = _table_rows(after)
    runs = ex["runs"]
    assert len(rows) == len(runs), (
        f"example {ex['name']}: the table after it has {len(rows)} rows, the YAML {len(runs)} runs"
    )
    for row, run in zip(rows, runs):
        assert row[0].strip("`") == run["schedule"], (ex["name"], row, run)
        assert _number(row[2]) == pytest.approx(run["expect_ms"]), (ex["name"], row, run)
