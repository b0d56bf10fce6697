"""A sweep left running overnight: real signals, resume from anywhere, a guarded folder,
exit statuses that tell the truth, hostile input and odd paths."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import one_error_line, run
from sweep_helpers import TRACE, config, with_trace

from dearsim.cli import main
from dearsim.config import load_config
from dearsim.errors import DearsimError
from dearsim.sweep import RESULTS_JSONL, read_rows, run_sweep

ROOT = Path(__file__).resolve().parent.parent
SMALL = (
    "networks: [10GbE, 100GbIB]\nworkers: [2, 8]\nschedules: [wfbp, dear]\niterations: 6\n"
)
# Long enough to interrupt: 2 networks x 6 worker counts x every schedule x 8 = 672 runs
# (with the seven schedules) of 40+ iterations.
LONG = (
    "networks: [10GbE, 100GbIB]\nworkers: [2, 4, 8, 16, 32, 64]\n"
    "sweep:\n  grid:\n    iterations: [40, 41, 42, 43, 44, 45, 46, 47]\n"
)
LONG_RUNS = 2 * 6 * len(__import__("dearsim").schedules.names()) * 8


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return with_trace(tmp_path)


def cli(*args: object, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dearsim", *map(str, args)], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_rows(jsonl: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError("the sweep wrote no rows in time")


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.parametrize(("sig", "status", "jobs"), [
    (signal.SIGINT, 130, 2), (signal.SIGTERM, 143, 2), (signal.SIGINT, 130, 1),
])
def test_a_signal_stops_the_sweep_keeps_rows_and_resume_completes_it(
    folder: Path, sig: int, status: int, jobs: int
) -> None:
    cfg = config(folder, LONG)
    out = folder / "o"
    proc = cli("sweep", cfg, "--out", out, "--jobs", jobs)
    try:
        wait_rows(out / RESULTS_JSONL, 20, proc)
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc, _, err = finish(proc)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == status, err
    assert stopped_in < 8, stopped_in
    kept = len(read_rows(out / RESULTS_JSONL))
    assert 20 <= kept < LONG_RUNS
    assert f"interrupted: {kept} of {LONG_RUNS} runs kept; rerun with --resume" in err
    assert "Traceback" not in err
    assert main(["sweep", str(cfg), "--out", str(out), "--jobs", "2", "--resume"]) == 0
    assert len(read_rows(out / RESULTS_JSONL)) == LONG_RUNS  # nothing ran twice
    whole = run_sweep(load_config(cfg), folder / "whole", jobs=2)
    assert whole.failed == 0
    assert (out / "results.csv").read_bytes() == (folder / "whole" / "results.csv").read_bytes()


def test_dask_sweep_stops_on_sigint(folder: Path) -> None:
    pytest.importorskip("distributed")
    cfg = config(folder, LONG)
    out = folder / "o"
    proc = cli("sweep", cfg, "--out", out, "--jobs", 2, "--executor", "dask")
    try:
        wait_rows(out / RESULTS_JSONL, 20, proc, timeout=90)
        proc.send_signal(signal.SIGINT)
        rc, _, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130, err
    kept = len(read_rows(out / RESULTS_JSONL))
    assert f"interrupted: {kept} of {LONG_RUNS} runs kept" in err


def test_simulate_exits_130_on_sigint(folder: Path) -> None:
    # A long simulation (many iterations), interrupted.
    proc = cli("simulate", "--trace", folder / "t.csv", "--network", "10GbE", "--workers", 8,
               "--scheduler", "horovod", "--iterations", 200000)
    try:
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        rc, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130 and err.strip() == "dearsim: interrupted", err


def test_resume_from_a_second_clone_and_another_folder(folder: Path, tmp_path_factory) -> None:
    # The same config and trace in two "clones", started from different working folders:
    # identical files, hashes included, and a resume across them runs nothing again.
    a = tmp_path_factory.mktemp("clone_a")
    b = tmp_path_factory.mktemp("clone_b")
    for clone in (a, b):
        (clone / "t.csv").write_text(TRACE)
        config(clone, SMALL)
    pa = cli("sweep", "c.yaml", "--out", "res", "--jobs", 1, cwd=a)
    elsewhere = tmp_path_factory.mktemp("w")
    pb = cli("sweep", b / "c.yaml", "--out", b / "res", "--jobs", 2, cwd=elsewhere)
    assert finish(pa)[0] == 0 and finish(pb)[0] == 0
    for name in ("results.csv", "config.yaml"):
        assert (a / "res" / name).read_bytes() == (b / "res" / name).read_bytes(), name
    # results.jsonl holds the same rows, in the order they finished.
    lines = [sorted((c / "res" / "results.jsonl").read_text().splitlines()) for c in (a, b)]
    assert lines[0] == lines[1]
    assert (pd.read_parquet(a / "res" / "results.parquet")
            .equals(pd.read_parquet(b / "res" / "results.parquet")))
    outcome = run_sweep(load_config(b / "c.yaml"), a / "res", jobs=1, resume=True)
    assert outcome.ran == 0 and outcome.skipped == 8


def test_two_sweeps_into_one_folder(folder: Path) -> None:
    cfg = config(folder, LONG)
    out = folder / "o"
    first = cli("sweep", cfg, "--out", out, "--jobs", 1)
    try:
        wait_rows(out / RESULTS_JSONL, 1, first)
        second = cli("sweep", cfg, "--out", out, "--jobs", 1, "--resume")
        rc, o, err = finish(second)
        assert rc == 2 and o == ""
        assert "another sweep is writing here" in err and err.count("\n") == 1, err
    finally:
        first.kill()
        first.communicate()
    # The lock dies with its process: nothing blocks the next run.
    assert run_sweep(load_config(cfg), out, jobs=2, resume=True).failed == 0


def test_resume_with_an_edited_config_says_what_differs(folder: Path, capsys) -> None:
    cfg = config(folder, SMALL)
    run_sweep(load_config(cfg), folder / "o", jobs=1)
    before = (folder / "o" / RESULTS_JSONL).read_bytes()
    config(folder, SMALL.replace("[2, 8]", "[2, 8, 16]"))
    rc, out, err = run(capsys, "sweep", cfg, "--out", folder / "o", "--resume")
    line = one_error_line(rc, out, err)
    assert "--resume with a config that runs other runs" in line
    assert "workers is [2, 8, 16], the results have [2, 8]" in line
    (folder / "t.csv").write_text(TRACE.replace("l0,1", "l0,2"))
    config(folder, SMALL)
    rc, out, err = run(capsys, "sweep", cfg, "--out", folder / "o", "--resume")
    assert "trace t has other content" in one_error_line(rc, out, err)
    assert (folder / "o" / RESULTS_JSONL).read_bytes() == before
    # A cosmetic edit (name, description, plot) still resumes.
    (folder / "t.csv").write_text(TRACE)
    cfg.write_text(cfg.read_text() + "description: now with words\n")
    assert run_sweep(load_config(cfg), folder / "o", jobs=1, resume=True).ran == 0


def test_a_folder_with_foreign_files_is_refused(folder: Path, capsys) -> None:
    cfg = config(folder, SMALL)
    mine = folder / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("precious\n")
    rc, out, err = run(capsys, "sweep", cfg, "--out", mine)
    assert "holds files dearsim did not write (results.csv)" in one_error_line(rc, out, err)
    assert (mine / "results.csv").read_text() == "precious\n"
    assert sorted(p.name for p in mine.iterdir()) == ["results.csv"]


def test_a_failed_start_leaves_nothing_that_blocks(folder: Path, capsys) -> None:
    pytest.importorskip("distributed")
    cfg = config(folder, SMALL)
    out = folder / "new" / "o"
    rc, o, err = run(capsys, "sweep", cfg, "--out", out, "--executor", "dask", "--address",
                     "tcp://127.0.0.1:9")
    assert "cannot reach the dask scheduler" in one_error_line(rc, o, err)
    assert not (folder / "new").exists()
    assert main(["sweep", str(cfg), "--out", str(out), "--jobs", "1"]) == 0


def test_failing_runs_make_the_exit_status_non_zero_with_a_summary(folder: Path,
                                                                   capsys) -> None:
    cfg = config(folder, "networks: [10GbE-fit]\nworkers: [8, 100, 200]\n"
                         "schedules: [wfbp, dear]\n")
    rc, out, err = run(capsys, "sweep", cfg, "--out", folder / "o", "--jobs", "1")
    assert rc == 1
    assert "dearsim: 4 of 6 runs failed (1 kind of error" in err
    assert "  4 x t 10GbE-fit p=100 wfbp:" in err and "no fit for 100 workers" in err
    assert "Traceback" not in err
    ok = config(folder, SMALL, "ok.yaml")
    assert run(capsys, "sweep", ok, "--out", folder / "ok", "--jobs", "1")[0] == 0


@pytest.mark.parametrize("make", ["missing_parent_file", "file", "unwritable", "fifo"])
def test_bad_out_paths_are_one_line(folder: Path, capsys, make: str) -> None:
    cfg = config(folder, SMALL)
    target = folder / "target"
    if make == "missing_parent_file":
        (folder / "f").write_text("x")
        target = folder / "f" / "o"
    elif make == "file":
        target.write_text("x")
    elif make == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        target.mkdir()
        target.chmod(0o500)
    else:
        os.mkfifo(target)
    rc, out, err = run(capsys, "sweep", cfg, "--out", target)
    assert rc == 2
    one_error_line(rc, out, err)


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "binary"])
def test_bad_input_paths_are_one_line(folder: Path, capsys, kind: str) -> None:
    bad = folder / "bad.yaml"
    if kind == "folder":
        bad.mkdir()
    elif kind == "fifo":
        os.mkfifo(bad)
    elif kind == "binary":
        bad.write_bytes(b"\xff\xfe\x00garbage")
    for argv in (["sweep", bad],
                 ["simulate", "--trace", folder / "t.csv", "--network", bad, "--workers", 2,
                  "--scheduler", "wfbp"],
                 ["simulate", "--trace", bad, "--network", "10GbE", "--workers", 2,
                  "--scheduler", "wfbp"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 2, (argv, err)
        one_error_line(rc, out, err)


def test_an_alias_bomb_config_is_refused_fast_under_a_memory_limit(folder: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    (folder / "bomb.yaml").write_text(bomb)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from dearsim.cli import main\n"
        f"sys.exit(main(['sweep', {str(folder / 'bomb.yaml')!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 2, proc.stderr
    assert "expands to more than" in proc.stderr and "Traceback" not in proc.stderr


def test_plot_on_empty_or_foreign_data_is_one_line(folder: Path, capsys) -> None:
    empty = folder / "empty"
    empty.mkdir()
    (folder / "foreign.csv").write_text("a,b\n1,2\n")
    (folder / "nothing.csv").write_text("")
    for argv in (["plot", "speedup", empty], ["plot", "speedup", folder / "foreign.csv"],
                 ["plot", "throughput", folder / "nothing.csv"],
                 ["plot", "breakdown", folder / "foreign.csv"],
                 ["plot", "speedup", folder / "missing"]):
        rc, out, err = run(capsys, *argv)
        one_error_line(rc, out, err)


def test_the_copied_folder_keeps_its_identity(folder: Path) -> None:
    # A results folder copied elsewhere is still resumable (the lock is not in the way).
    cfg = config(folder, SMALL)
    run_sweep(load_config(cfg), folder / "o", jobs=1)
    shutil.copytree(folder / "o", folder / "copy")
    assert run_sweep(load_config(cfg), folder / "copy", jobs=1, resume=True).ran == 0
    with pytest.raises(DearsimError, match="pass --resume"):
        run_sweep(load_config(cfg), folder / "copy", jobs=1)


def test_work_explosions_are_refused_naming_the_limit(folder: Path, capsys,
                                                      monkeypatch) -> None:
    cfg = config(folder, "networks: [10GbE]\nworkers: [8]\nschedules:\n"
                         "  - {name: bytescheduler, options: {partition_bytes: 1}}\n")
    rc, out, err = run(capsys, "sweep", cfg, "--out", folder / "o")
    line = one_error_line(rc, out, err)
    assert ":5: schedules[0]" in line and "chunks of partition_bytes=1" in line
    assert "DEARSIM_MAX_COLLECTIVES" in line and not (folder / "o").exists()
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 8, "--scheduler", "horovod", "--set",
                       "cycle_time_ms=1e-9")
    line = one_error_line(rc, out, err)
    assert line.startswith("dearsim: error: --set: ") and "cycle ticks" in line
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 8, "--scheduler", "wfbp", "--iterations", 10**9)
    assert "--iterations: " in one_error_line(rc, out, err)
    # Lifted by the environment variable.
    monkeypatch.setenv("DEARSIM_MAX_COLLECTIVES", "100000000000")
    from dearsim.api import check_work, max_collectives

    assert max_collectives() == 100_000_000_000
    from dearsim import schedules
    from dearsim.trace import load_trace

    check_work(load_trace(folder / "t.csv"), schedules.create("bytescheduler",
                                                              {"partition_bytes": 1}), 10)


def test_the_api_takes_numpy_numbers_and_arrays(folder: Path) -> None:
    np = pytest.importorskip("numpy")
    from dearsim import compare, simulate

    plain = simulate(folder / "t.csv", "10GbE", 8, "ddp", {"buckets": [[0, 2], [3, 4]]},
                     iterations=6, warmup=1)
    numpy = simulate(folder / "t.csv", {"alpha_s": np.float64(5.59e-5),
                                        "beta_s_per_byte": np.float32(8e-10)},
                     np.int64(8), "ddp", {"buckets": np.array([[0, 2], [3, 4]])},
                     iterations=np.int32(6), warmup=np.int8(1))
    assert numpy.buckets == plain.buckets == [(0, 2), (3, 4)]
    cmp = compare(folder / "t.csv", "10GbE", np.array(4), np.array(["wfbp", "dear"]),
                  {"dear": {"threshold_mb": np.float32(5)}}, iterations=np.int64(5))
    assert [r.scheduler for r in cmp.results] == ["wfbp", "dear"]
