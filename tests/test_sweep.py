"""Running sweeps: rows as they arrive, resume after a kill, failures recorded, executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import config, with_trace

from dearsim.cli import main
from dearsim.config import load_config
from dearsim.sweep import read_rows, run_sweep


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return with_trace(tmp_path)


SMALL = (
    "networks: [10GbE, 100GbIB]\nworkers: [2, 8, 32]\nschedules: [wfbp, ddp, dear]\n"
    "iterations: 6\n"
)


def table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")


def test_sweep_writes_rows_tables_and_config(folder: Path) -> None:
    cfg = config(folder, SMALL)
    outcome = run_sweep(load_config(cfg), folder / "out", jobs=1)
    assert outcome.ran == 18 and outcome.failed == 0
    frame = table(folder / "out")
    assert len(frame) == 18
    assert list(frame["index"]) == list(range(18))
    assert set(frame["schedule"]) == {"wfbp", "ddp", "dear"}
    assert frame["run_hash"].is_unique
    assert (frame["dearsim_version"] == "0.1.0").all()
    for col in ("iteration_time_s", "compute_s", "comm_s", "exposed_comm_s", "buckets"):
        assert frame[col].notna().all(), col
    # compute is 2 x (1+2+3+1+2) fwd... from the trace: fwd 9 ms + bwd 12 ms = 21 ms.
    assert frame["compute_s"].tolist() == pytest.approx([0.021] * 18)
    parquet = pd.read_parquet(folder / "out" / "results.parquet")
    assert parquet["error"].isna().all() and frame["error"].isna().all()
    pd.testing.assert_frame_equal(
        parquet.drop(columns="error"), frame.drop(columns="error"), check_dtype=False
    )
    assert (folder / "out" / "config.yaml").read_text() == cfg.read_text()


def test_same_config_gives_identical_results(folder: Path) -> None:
    cfg = load_config(config(folder, SMALL))
    run_sweep(cfg, folder / "a", jobs=1)
    run_sweep(cfg, folder / "b", jobs=2)
    a, b = (folder / d / "results.csv" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(folder: Path) -> None:
    # The fitted preset has no fit for 100 workers: those runs fail, the others run.
    cfg = config(folder, "networks: [10GbE-fit]\nworkers: [8, 100, 16]\nschedules: [wfbp, dear]\n")
    outcome = run_sweep(load_config(cfg), folder / "out", jobs=2)
    frame = table(folder / "out")
    assert len(frame) == 6 and outcome.failed == 2
    bad = frame[frame["status"] == "error"]
    assert set(bad["workers"]) == {100}
    assert bad["error"].str.contains("no fit for 100 workers").all()
    assert bad["iteration_time_s"].isna().all()
    assert (frame[frame["status"] == "ok"]["iteration_time_s"] > 0).all()


def test_existing_results_are_never_overwritten(folder: Path) -> None:
    cfg = load_config(config(folder, SMALL))
    run_sweep(cfg, folder / "out", jobs=1)
    before = (folder / "out" / "results.jsonl").read_text()
    with pytest.raises(Exception, match="pass --resume"):
        run_sweep(cfg, folder / "out", jobs=1)
    assert (folder / "out" / "results.jsonl").read_text() == before


def test_resume_skips_done_runs_and_tolerates_a_torn_last_line(folder: Path) -> None:
    cfg = load_config(config(folder, SMALL))
    run_sweep(cfg, folder / "full", jobs=1)
    # A sweep killed after 7 rows, in the middle of writing the 8th.
    lines = (folder / "full" / "results.jsonl").read_text().splitlines(keepends=True)
    (folder / "part").mkdir()
    (folder / "part" / "results.jsonl").write_text("".join(lines[:7]) + lines[7][:25])
    outcome = run_sweep(cfg, folder / "part", jobs=1, resume=True)
    assert outcome.skipped == 7 and outcome.ran == 11
    pd.testing.assert_frame_equal(table(folder / "part"), table(folder / "full"))


def test_resume_after_the_process_is_killed(folder: Path) -> None:
    # A real kill (SIGKILL) of a running sweep, then --resume: the final table equals an
    # uninterrupted sweep's, and the rows finished before the kill were not run again.
    body = (
        "networks: [10GbE, 100GbIB]\nworkers: [2, 4, 8, 16, 32, 64]\n"
        "sweep:\n  grid:\n    iterations: [40, 41, 42, 43, 44, 45, 46, 47]\n"
    )
    cfg = config(folder, body)
    out = folder / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dearsim", "sweep", str(cfg), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jsonl = out / "results.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_rows(jsonl))
    total = 2 * 6 * len(__import__("dearsim").schedules.names()) * 8
    assert 20 <= done_before < total, "the sweep finished before it could be killed"
    assert main(["sweep", str(cfg), "--out", str(out), "--jobs", "2", "--resume"]) == 0
    rows = read_rows(jsonl)
    assert len(rows) == total  # nothing ran twice
    run_sweep(load_config(cfg), folder / "whole", jobs=2)
    pd.testing.assert_frame_equal(table(out), table(folder / "whole"))


def test_dask_executor_gives_the_same_table_as_the_local_one(folder: Path) -> None:
    pytest.importorskip("distributed")
    cfg = load_config(config(folder, SMALL))
    run_sweep(cfg, folder / "local", jobs=2)
    run_sweep(cfg, folder / "dask", jobs=2, executor="dask")
    pd.testing.assert_frame_equal(table(folder / "dask"), table(folder / "local"))


def test_cli_sweep_prints_a_summary_and_writes_the_plot(folder: Path, capsys) -> None:
    cfg = config(folder, SMALL)
    assert main(["sweep", str(cfg), "--out", str(folder / "o"), "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert "speedup over wfbp" in captured.out
    assert "dear" in captured.out and "ddp" in captured.out
    assert "18 runs" in captured.err
    for name in ("speedup.png", "speedup.svg", "results.csv", "results.parquet"):
        assert (folder / "o" / name).stat().st_size > 0, name


def test_cli_sweep_errors_are_one_line(folder: Path, capsys) -> None:
    cfg = config(folder, "networks: [10GbE]\nworkers: [8, 0]\n")
    assert main(["sweep", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ":3: workers[1]" in err and "Traceback" not in err
    good = config(folder, SMALL, "g.yaml")
    for argv, needle in (
        (["sweep", str(good), "--executor", "spark"], "--executor must be"),
        (["sweep", str(good), "--address", "tcp://127.0.0.1:1"], "--address is for"),
        (["sweep", str(folder / "none.yaml")], "config file not found"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and err.count("\n") == 0, err


def test_plot_commands_write_png_and_svg(folder: Path, capsys) -> None:
    cfg = config(folder, SMALL)
    out = folder / "o"
    run_sweep(load_config(cfg), out, jobs=1)
    assert main(["plot", "speedup", str(out), "--x", "workers", "--baseline", "wfbp",
                 "--facet", "network"]) == 0
    assert main(["plot", "throughput", str(out / "results.parquet"), "--out",
                 str(folder / "tp")]) == 0
    assert main(["plot", "breakdown", str(out), "--where", "workers=32", "--where",
                 "network=10GbE", "--out", str(folder / "bd.png")]) == 0
    for path in (out / "speedup", folder / "tp", folder / "bd"):
        assert path.with_suffix(".png").stat().st_size > 0
        assert path.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    # Not one point: the breakdown refuses rather than mixing runs.
    assert main(["plot", "breakdown", str(out)]) == 2
    assert "select one point" in capsys.readouterr().err
    assert main(["plot", "speedup", str(out), "--baseline", "horovod"]) == 2
    assert "baseline 'horovod' is not among" in capsys.readouterr().err


def test_speedup_values_match_the_iteration_times(folder: Path) -> None:
    from dearsim.plots import load_results, with_speedup

    cfg = config(folder, SMALL)
    run_sweep(load_config(cfg), folder / "o", jobs=1)
    frame = with_speedup(load_results(folder / "o"), "wfbp")
    for _, group in frame.groupby(["network", "workers"]):
        base = group[group["schedule"] == "wfbp"]["iteration_time_s"].iloc[0]
        for _, r in group.iterrows():
            assert r["speedup"] == pytest.approx(base / r["iteration_time_s"])
    assert json.loads(frame["buckets"].iloc[0])  # buckets survive as JSON


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(capsys) -> None:
    import io

    from rich.console import Console

    from dearsim.cli import _progress

    console = Console(force_terminal=True, file=io.StringIO(), width=100)
    with _progress(console, "sweep x") as report:
        report(2, 10)
        report(6, 10)
        report(10, 10)
    screen = console.file.getvalue()
    assert "sweep x" in screen and "runs/s" in screen and "10/10" in screen
    assert capsys.readouterr().err == ""  # the bar, not lines

    plain = Console(file=io.StringIO())  # not a terminal
    with _progress(plain, "sweep y") as report:
        report(2, 10)
        report(6, 10)  # within 2 s of the start: not printed
        report(10, 10)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "sweep y: 8 runs to do (2 already done)"
    assert lines[-1].startswith("sweep y: 10/10 runs (") and "runs/s" in lines[-1]
    assert len(lines) == 2


def test_the_same_sweep_started_from_another_folder_resumes(folder: Path, tmp_path_factory,
                                                            monkeypatch) -> None:
    # The config and its trace copied elsewhere, started from another working directory,
    # resumed into the first sweep's output: every run is already there.
    cfg = config(folder, SMALL)
    first = run_sweep(load_config(cfg), folder / "out", jobs=1)
    other = tmp_path_factory.mktemp("copy")
    (other / "t.csv").write_bytes((folder / "t.csv").read_bytes())
    (other / "c.yaml").write_bytes(cfg.read_bytes())
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    again = run_sweep(load_config(other / "c.yaml"), folder / "out", jobs=1, resume=True)
    assert again.ran == 0 and again.skipped == first.ran == 18
    assert len(read_rows(folder / "out" / "results.jsonl")) == 18


def test_rows_follow_the_table_schema(folder: Path) -> None:
    from dearsim import table

    cfg = config(folder, "networks: [10GbE, 10GbE-fit]\nworkers: [8]\nschedules: [wfbp]\n")
    outcome = run_sweep(load_config(cfg), folder / "out", jobs=1)
    for row in outcome.rows:
        assert tuple(row) == table.COLUMNS
        # identical workers: the cluster columns read as such, and no jitter seed
        assert row["seed"] is None and row["cluster.jitter_cv"] == 0.0
        assert row["cluster.stragglers"] == 0 and row["cluster.straggler_slowdown"] == 1.0
    ab, fit = outcome.rows
    assert ab["network_kind"] == "alpha-beta" and ab["network.bandwidth_gbps"] > 0
    assert fit["network_kind"] == "fitted" and fit["network.alpha_s"] is None
    from dearsim.network import load_network, network_from_spec

    rebuilt = network_from_spec(json.loads(fit["network_spec"]))
    assert rebuilt.costs(8) == load_network("10GbE-fit").costs(8)


def test_workers_get_the_traces_loaded_once_in_the_parent(folder: Path, monkeypatch) -> None:
    # Each trace is read and hashed once per sweep; the runs never open a trace file.
    import dearsim.trace as trace_mod
    from dearsim import config as config_mod

    reads: list[str] = []
    real = config_mod.read_trace
    monkeypatch.setattr(config_mod, "read_trace", lambda f: reads.append(str(f)) or real(f))
    loaded = load_config(config(folder, SMALL))
    assert len(reads) == 1 and len(loaded.traces) == 1
    monkeypatch.setattr(trace_mod, "load_trace", lambda *a: pytest.fail("trace re-read"))
    assert run_sweep(loaded, folder / "out", jobs=1).failed == 0
    assert len(reads) == 1
