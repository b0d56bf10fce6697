"""Searched schedules in sweeps: a ``search:`` entry runs :func:`dearsim.search.search` for
each run's point and simulates the best it finds; its row is what the library gives by hand,
never worse than the default where that is a theorem, deterministic, resumable; bad entries
are one line naming the config's line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import config, with_trace

import dearsim
from dearsim import search as search_mod
from dearsim import table
from dearsim.config import load_config
from dearsim.errors import DearsimError
from dearsim.sweep import run_sweep, write_tables

# Twelve layers, a few without gradients, sizes from 40 kB to 30 MB: big enough for
# fusion choices to matter, small enough to search quickly.
WIDE = "name,fwd_ms,bwd_ms,bytes\n" + "".join(
    f"w{i},{0.5 + (i * 7) % 5 * 0.4:.1f},{1 + (i * 3) % 4 * 0.7:.1f},"
    f"{0 if i % 5 == 3 else (i * 37) % 11 * 3_000_000 + 40_000}\n" for i in range(12)
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "w.csv").write_text(WIDE)
    return with_trace(tmp_path)


SEARCHED = (
    "networks: [10GbE]\nworkers: [4, 16]\niterations: 6\nschedules:\n"
    "  - dear\n"
    "  - {name: dear, label: dear-tuned, search: {method: bayes, budget: 5, seed: 2}}\n"
    "  - {name: dear, label: dear-searched, search: {method: partition, budget: 40}}\n"
    "  - ddp\n"
    "  - {name: ddp, label: ddp-optimal, search: {method: optimal}}\n"
    "  - {name: horovod, label: horovod-scan, search: {method: scan, budget: 6}}\n"
)


def frame(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")


def test_a_searched_row_is_the_search_then_the_simulation_by_hand(folder: Path) -> None:
    loaded = load_config(config(folder, SEARCHED))
    outcome = run_sweep(loaded, folder / "out", jobs=1)
    assert outcome.failed == 0
    rows = outcome.rows
    trace = dearsim.load_trace(folder / "t.csv")
    searched = [r for r in rows if r["search"] is not None]
    assert {r["schedule"] for r in searched} == {
        "dear-tuned", "dear-searched", "ddp-optimal", "horovod-scan"}
    assert len(searched) == 8
    for row in searched:
        spec = json.loads(row["search"])
        # by hand, with the reference points computed too: the answer must not change
        found = search_mod.search(
            trace, "10GbE", row["workers"], row["scheduler"], spec["method"],
            budget=spec["budget"], seed=spec["seed"] or 0, iterations=6, warmup=2,
        )
        result = dearsim.simulate(trace, "10GbE", row["workers"], row["scheduler"],
                                  found.options, iterations=6, warmup=2)
        assert json.loads(row["options"]) == json.loads(json.dumps(found.options))
        assert row["iteration_time_s"] == result.iteration_time_s
        assert row["comm_bytes"] == result.comm_bytes
        assert json.loads(row["buckets"]) == [list(b) for b in result.buckets]
        assert spec["evaluations"] == found.evaluations
        assert spec["best_time_s"] == found.iteration_time_s
        assert spec["default_time_s"] == found.default_time_s
        # the fast evaluator's time is the engine's within 1e-9
        assert row["iteration_time_s"] == pytest.approx(spec["best_time_s"], rel=1e-9)
    tuned = next(r for r in searched if r["schedule"] == "dear-tuned")
    assert json.loads(tuned["search"])["method"] == "bayes"
    assert json.loads(tuned["search"])["evaluations"] == 5
    assert 1 <= json.loads(tuned["search"])["trials_to_best"] <= 5
    # a run without a search has none in its row, and its options as given
    plain = [r for r in rows if r["schedule"] == "dear"]
    assert all(r["search"] is None and r["options"] == "{}" for r in plain)


# (schedule, method): a searched variant that can never be worse than the schedule's
# default. optimal: the exact best contiguous buckets, and the WFBP family's defaults are
# contiguous buckets (identical workers); scan: keeps the default when no grid point beats
# it; partition: starts from the scan's answer and accepts only improvements. (bayes has no
# such guarantee: it is the real tuner, which can land worse than the default.)
DOMINATES = [("wfbp", "optimal"), ("ddp", "optimal"), ("mgwfbp", "optimal"),
             ("ddp", "scan"), ("horovod", "scan"), ("dear", "scan"), ("dear", "partition")]


@pytest.mark.parametrize("name, method", DOMINATES)
def test_a_searched_variant_is_never_worse_than_the_default(folder: Path, name: str,
                                                            method: str) -> None:
    budget = {"scan": ", budget: 5", "partition": ", budget: 30"}.get(method, "")
    cfg = config(folder, (
        "networks: [10GbE, 100GbIB, {name: slow, alpha_s: 1.0e-3, bandwidth_gbps: 1}]\n"
        "workers: [2, 8, 64]\niterations: 5\n"
        f"schedules: [{name}, {{name: {name}, label: tuned, "
        f"search: {{method: {method}{budget}}}}}]\n"
    ))
    cfg.write_text(cfg.read_text().replace("traces: [t.csv]", "traces: [t.csv, w.csv]"))
    outcome = run_sweep(load_config(cfg), folder / "out", jobs=1)
    data = frame(folder / "out")
    assert outcome.failed == 0 and len(data) == 2 * 3 * 3 * 2
    pivot = data.pivot_table(index="group_hash", columns="schedule", values="iteration_time_s")
    assert len(pivot) == 18
    # the search compares on the fast evaluator, the rows are the engine's: 1e-9 apart
    assert (pivot["tuned"] <= pivot[name] * (1 + 1e-9)).all(), pivot
    found = data[data["schedule"] == "tuned"]["search"].map(json.loads)
    assert all(f["best_time_s"] <= f["default_time_s"] for f in found)


LOC = "networks: [10GbE]\nworkers: [4]\nschedules:\n"


@pytest.mark.parametrize(
    "body, where, message",
    [
        (LOC + "  - {name: dear, search: {method: grid}}\n", ":5: schedules[0].search.method",
         "'scan', 'bayes', 'optimal' or 'partition'"),
        (LOC + "  - wfbp\n  - name: dear\n    search:\n      method: optimal\n",
         ":8: schedules[1].search.method",
         "method 'optimal' does not apply to schedule 'dear' (it has: scan, bayes, partition)"),
        (LOC + "  - {name: fsdp, search: {method: scan}}\n", ":5: schedules[0].search.method",
         "no search method applies to it"),
        (LOC + "  - name: dear\n    search:\n      method: scan\n      budget: 0\n",
         ":8: schedules[0].search.budget", "greater than 0"),
        (LOC + "  - {name: dear, search: {method: scan, budget: true}}\n",
         ":5: schedules[0].search.budget", "not true/false"),
        (LOC + "  - {name: dear, search: {method: scan, budget: 100001}}\n",
         ":5: schedules[0].search.budget", "at most 10,000"),
        (LOC + "  - {name: ddp, search: {method: optimal, budget: 5}}\n",
         ":5: schedules[0].search.budget", "exact and takes no budget"),
        (LOC + "  - {name: dear, search: {method: partition, seed: 1}}\n",
         ":5: schedules[0].search.seed", "seed is for method 'bayes'"),
        (LOC + "  - {name: dear, search: {method: scan, budgte: 4}}\n",
         ":5: schedules[0].search.budgte", "unknown key"),
        (LOC + "  - {name: dear, search: {budget: 4}}\n",
         ":5: schedules[0].search.method", "required, but missing"),
        (LOC + "  - name: dear\n    options: {threshold_mb: 5}\n    search: {method: scan}\n",
         ":6: schedules[0].options", "a searched schedule takes no options"),
        ("networks: [10GbE]\nworkers: [4]\nsweep:\n  grid:\n    schedule:\n      - wfbp\n"
         "      - {name: wfbp, search: {method: bayes}}\n",
         ":8: sweep.grid.schedule[1].search.method",
         "method 'bayes' does not apply to schedule 'wfbp'"),
    ],
)
def test_bad_search_entries_name_the_config_line(folder: Path, body: str, where: str,
                                                 message: str) -> None:
    path = config(folder, body)
    with pytest.raises(DearsimError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert where in msg, msg
    assert message in msg, msg
    assert "\n" not in msg


def test_bayes_without_scikit_optimize_is_refused_at_load(folder: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "skopt" else real(name, *a))
    path = config(folder, LOC + "  - {name: dear, search: {method: bayes}}\n")
    with pytest.raises(DearsimError, match=r":5: schedules\[0\]\.search\.method: method "
                                           r"'bayes' needs scikit-optimize"):
        load_config(path)
    # the other methods need nothing more
    config(folder, LOC + "  - {name: dear, search: {method: scan}}\n")
    assert len(load_config(path).runs) == 1


def test_hashes_cover_the_search_only_when_there_is_one(folder: Path) -> None:
    runs = load_config(config(folder, (
        "networks: [10GbE]\nworkers: [4]\nschedules:\n  - dear\n"
        "  - {name: dear, label: a, search: {method: bayes}}\n"
        "  - {name: dear, label: a, search: {method: bayes, budget: 10, seed: 0}}\n"
        "  - {name: dear, label: b, search: {method: bayes, seed: 1}}\n"
        "  - {name: dear, label: c, search: {method: partition}}\n"
    ))).runs
    # the defaults filled in: the first two searched entries are one run
    assert [r.schedule for r in runs] == ["dear", "a", "b", "c"]
    plain, a, b, c = runs
    assert "search" not in plain.identity()  # the hashes of runs without a search stay
    assert a.search == {"method": "bayes", "budget": 10, "seed": 0}
    assert b.search == {"method": "bayes", "budget": 10, "seed": 1}
    assert c.search == {"method": "partition", "budget": 400, "seed": None}
    assert len({r.run_hash for r in runs}) == 4
    assert len({r.group_hash for r in runs}) == 1  # compared with each other
    assert all(r.options == {} for r in runs)


def test_option_axes_leave_searched_schedules_alone(folder: Path) -> None:
    runs = load_config(config(folder, (
        "networks: [10GbE]\nworkers: [4]\n"
        "schedules: [dear, {name: dear, label: s, search: {method: scan, budget: 4}}]\n"
        "sweep:\n  grid:\n    options.threshold_mb: [5, 50]\n"
    ))).runs
    assert [(r.schedule, r.options) for r in runs] == [
        ("dear", {"threshold_mb": 5}), ("s", {}), ("dear", {"threshold_mb": 50})]
    with pytest.raises(DearsimError, match="no schedule in this sweep has an option"):
        load_config(config(folder, (
            "networks: [10GbE]\nworkers: [4]\n"
            "schedules: [{name: dear, search: {method: scan}}]\n"
            "sweep:\n  grid:\n    options.threshold_mb: [5, 50]\n"
        )))


SMALL = (
    "networks: [10GbE, 100GbIB]\nworkers: [2, 16]\niterations: 5\nschedules:\n"
    "  - dear\n"
    "  - {name: dear, label: dear-tuned, search: {method: bayes, budget: 4}}\n"
    "  - {name: dear, label: dear-searched, search: {method: partition, budget: 20}}\n"
    "  - {name: mgwfbp, label: mgwfbp-optimal, search: {method: optimal}}\n"
)


def test_searched_rows_are_the_same_whatever_the_jobs(folder: Path) -> None:
    loaded = load_config(config(folder, SMALL))
    run_sweep(loaded, folder / "a", jobs=1)
    run_sweep(loaded, folder / "b", jobs=2)
    a, b = (folder / d / "results.csv" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    assert frame(folder / "a")["search"].notna().sum() == 12


def test_resume_skips_done_searched_runs(folder: Path, monkeypatch) -> None:
    loaded = load_config(config(folder, SMALL))
    run_sweep(loaded, folder / "full", jobs=1)
    lines = (folder / "full" / "results.jsonl").read_text().splitlines(keepends=True)
    (folder / "part").mkdir()
    (folder / "part" / "results.jsonl").write_text("".join(lines[:6]) + lines[6][:40])
    searches: list[str] = []
    real = search_mod.search

    def counting(*args, **kw):
        searches.append(args[3])
        return real(*args, **kw)

    monkeypatch.setattr(search_mod, "search", counting)
    outcome = run_sweep(loaded, folder / "part", jobs=1, resume=True)
    assert outcome.skipped == 6 and outcome.ran == 10
    # rows 0-5 are the first point's four runs and the second's dear and dear-tuned: four
    # of the twelve searched runs are done, and only the other eight search
    assert len(searches) == 12 - 4
    pd.testing.assert_frame_equal(frame(folder / "part"), frame(folder / "full"))


def test_tables_take_rows_without_a_search_column(folder: Path, monkeypatch) -> None:
    # Rows of an older dearsim have no "search": the tables get the column, empty, and
    # chunks with and without it line up.
    loaded = load_config(config(folder, SMALL))
    out = folder / "out"
    run_sweep(loaded, out, jobs=1)
    expected = frame(out)
    jsonl = out / "results.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for row in rows[::2]:
        if row["search"] is None:
            del row["search"]
    import numpy as np

    assert [r["index"] for r in rows] == list(range(len(rows)))  # one job: in order
    lines = [json.dumps(r) + "\n" for r in rows]
    jsonl.write_text("".join(lines))
    offsets = np.cumsum([0] + [len(line.encode()) for line in lines[:-1]])
    monkeypatch.setattr("dearsim.sweep.CHUNK_ROWS", 3)
    write_tables(jsonl, offsets, out)
    got = frame(out)
    assert tuple(got.columns) == table.COLUMNS
    pd.testing.assert_frame_equal(got, expected)
    parquet = pd.read_parquet(out / "results.parquet")
    assert tuple(parquet.columns) == table.COLUMNS
    assert parquet["search"].notna().sum() == 12


def test_a_search_that_fails_is_an_error_row_and_the_sweep_goes_on(folder: Path) -> None:
    # The fitted preset has no fit for 100 workers: the search fails there, the row says
    # why and what was asked; the other point runs.
    cfg = config(folder, "networks: [10GbE-fit]\nworkers: [8, 100]\nschedules:\n"
                         "  - {name: ddp, label: ddp-optimal, search: {method: optimal}}\n")
    outcome = run_sweep(load_config(cfg), folder / "out", jobs=1)
    assert outcome.failed == 1
    ok, bad = outcome.rows
    assert ok["status"] == "ok" and json.loads(ok["options"])["buckets"]
    assert bad["status"] == "error" and "no fit for 100 workers" in bad["error"]
    assert bad["options"] == "{}" and bad["iteration_time_s"] is None
    assert json.loads(bad["search"]) == {"method": "optimal", "budget": None, "seed": None}


def test_the_cli_refuses_a_bad_search_in_one_line(folder: Path, capsys) -> None:
    from dearsim.cli import main

    cfg = config(folder, LOC + "  - ddp\n  - {name: ddp, search: {method: partition}}\n")
    assert main(["sweep", str(cfg), "--out", str(folder / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert ":6: schedules[1].search.method: method 'partition' does not apply to schedule " \
           "'ddp' (it has: scan, optimal)" in err
    assert not (folder / "out").exists()  # refused before anything ran
