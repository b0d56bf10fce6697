"""``dearsim collect comm`` keeps every finished row and resumes: an interrupted run leaves
its rows in --out, ``--resume`` measures only the missing ones, and a file that is not
one measured alike is refused in one line. Skipped without PyTorch."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

pytest.importorskip("torch")

from dearsim.collect import comm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADER = ",".join(comm.COLUMNS) + "\n"


def row(op: str, nbytes: int, workers: int = 2, backend: str = "gloo", t: float = 1e-4) -> str:
    return f"{op},{workers},{nbytes},{t},{t},{t},3,0.5,0.5,{backend},false,{t}\n"


def keys(path: Path) -> set[tuple[str, int]]:
    return {(r["op"], int(r["bytes"])) for r in csv.DictReader(path.open())}


def dearsim_proc(*argv: object, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dearsim", *[str(a) for a in argv]],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for(cond, proc: subprocess.Popen[str], what: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"dearsim ended before {what}: {proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def test_interrupted_run_keeps_its_rows_and_resume_completes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "comm.csv"
    partial = comm.partial_path(out)
    common = ["--ops", "allreduce,allgather", "--sizes", "4KiB,8KiB", "--reps", 2, "--warmup", 1,
              "--nproc", 2, "--timeout", 120]
    # rank 0 pauses after each row (a test hook) so that SIGTERM lands mid-run
    proc = dearsim_proc("collect", "comm", *common, "--out", out,
                        env={comm.ENV_ROW_PAUSE: "2"})
    try:
        wait_for(lambda: partial.exists() and len(partial.read_text().splitlines()) >= 2,
                 proc, "the first row")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    kept = list(csv.DictReader(out.open()))
    assert 1 <= len(kept) < 4, err
    assert f"{len(kept)} of 4 rows measured and kept" in err and "--resume" in err
    assert not partial.exists()
    # the ranks are gone: nothing writes the side file again
    time.sleep(3)
    assert not partial.exists()
    before = out.read_text().splitlines()[1:]

    rc, _, err = run(capsys, "collect", "comm", *common, "--out", out, "--resume")
    assert rc == 0, err
    assert f"{4 - len(kept)} measured, {len(kept)} kept from before" in err
    after = out.read_text().splitlines()
    assert set(before) <= set(after[1:])  # the kept rows, not measured again
    assert len(after) == 5

    full = tmp_path / "full.csv"
    rc, _, err = run(capsys, "collect", "comm", *common, "--out", full)
    assert rc == 0, err
    assert keys(out) == keys(full) and len(keys(full)) == 4


FAKE_RANK = """
import json, os, sys, time
argfile = sys.argv[-1]
args = json.load(open(argfile))
open(os.path.join(os.path.dirname(argfile), 'pid.0'), 'w').write(str(os.getpid()))
with open(args['partial'], 'a') as f:
    for op, nbytes in args['plan'][:2]:
        f.write(f'{op},2,{nbytes},1e-4,1e-4,1e-4,3,0.5,0.5,gloo,false,1e-4\\n')
    f.write('allgather,2,40')  # a write cut short
open(args['partial'] + '.ready', 'w').write('')
time.sleep(120)
"""


def test_interrupt_kills_ranks_torchrun_left_behind(tmp_path: Path) -> None:
    # A stand-in for torchrun that starts its "rank" in a session of its own (as torchrun
    # does) and dies on SIGTERM without passing it on: the rank, found by its pid file,
    # must go too; its two finished rows are kept, its torn last line dropped.
    fake = tmp_path / "fake_torchrun"
    rank_py = tmp_path / "rank.py"
    rank_py.write_text(FAKE_RANK)
    fake.write_text(
        f"#!{sys.executable}\nimport subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(rank_py)!r}, 'dearsim.collect.worker', "
        "sys.argv[-1]], start_new_session=True)\ntime.sleep(120)\n"
    )
    fake.chmod(0o755)
    out = tmp_path / "c.csv"
    ready = Path(str(comm.partial_path(out)) + ".ready")
    proc = dearsim_proc("collect", "comm", "--sizes", "4KiB,8KiB", "--launcher", fake,
                        "--out", out)
    try:
        wait_for(ready.exists, proc, "the fake rank's rows", timeout=60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: 2 of 6 rows measured and kept, 2 rows in" in err
    rows = list(csv.DictReader(out.open()))
    assert [(r["op"], r["bytes"]) for r in rows] == [("allreduce", "4096"), ("allreduce", "8192")]
    assert not comm.partial_path(out).exists()
    time.sleep(0.3)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(rank_py) not in ps, "the fake rank survived"


def test_resume_reads_a_side_file_left_by_a_killed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every planned row is in the file or its side file: nothing is launched
    out = tmp_path / "comm.csv"
    out.write_text(HEADER + row("allreduce", 4096))
    comm.partial_path(out).write_text(HEADER + row("allreduce", 8192, t=2e-4) + "allred")
    rc, _, err = run(capsys, "collect", "comm", "--ops", "allreduce", "--sizes", "4KiB,8KiB",
                     "--launcher", "/nonexistent/torchrun", "--out", out, "--resume")
    assert rc == 0, err
    assert "0 measured, 2 kept from before" in err
    assert out.read_text() == HEADER + row("allreduce", 4096) + row("allreduce", 8192, t=2e-4)
    assert not comm.partial_path(out).exists()


def test_resume_keeps_rows_of_a_file_without_means(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a file written before mean_s was recorded: read, resumed, rewritten with the new
    # header and an empty mean; calibrate fits its medians and refuses its means in one line
    old_header = ",".join(comm.OLD_COLUMNS) + "\n"
    old = [f"allreduce,2,{n},{t},{t},{t},3,0.5,0.5,gloo,false\n"
           for n, t in ((4096, 1e-4), (8192, 2e-4))]
    out = tmp_path / "comm.csv"
    out.write_text(old_header + "".join(old))
    rc, _, err = run(capsys, "collect", "comm", "--ops", "allreduce", "--sizes", "4KiB,8KiB",
                     "--launcher", "/nonexistent/torchrun", "--out", out, "--resume")
    assert rc == 0, err
    assert out.read_text() == HEADER + "".join(r[:-1] + ",\n" for r in old)
    net = tmp_path / "n.yaml"
    rc, _, err = run(capsys, "calibrate", out, "--out", net)
    assert rc == 0, err
    line = one_error_line(*run(capsys, "calibrate", out, "--out", net, "--stat", "mean"))
    assert "comm.csv:2" in line and "'mean_s' is empty" in line and "--stat median" in line
    line = one_error_line(*run(capsys, "calibrate", out, "--out", net, "--stat", "mode"))
    assert "--stat" in line and "'mode'" in line


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name,value\nx,1\n", "not a dearsim comm CSV"),
        ("", "not a dearsim comm CSV"),
        (HEADER + row("allreduce", 4096, workers=4), "measured with 4 workers, this run has "
         "--nproc 2"),
        (HEADER + row("allreduce", 4096, backend="nccl"), "measured with backend nccl, this "
         "run would use gloo"),
        (HEADER + "allreduce,2,4096,fast,1,1,3,0.5,0.5,gloo,false,1\n", "comm.csv:2"),
        (HEADER + "broadcast,2,4096,1,1,1,3,0.5,0.5,gloo,false,1\n", "unknown collective"),
        (HEADER + "allreduce,2,4096,1,1,1,3,0.5,0.5,gloo,false\n", "expected 12 fields"),
    ],
)
def test_resume_refuses_other_files_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    out = tmp_path / "comm.csv"
    out.write_text(text)
    line = one_error_line(*run(capsys, "collect", "comm", "--sizes", "4KiB", "--launcher",
                               "/nonexistent/torchrun", "--out", out, "--resume"))
    assert needle in line and "comm.csv" in line
    assert out.read_text() == text  # untouched
    assert not comm.partial_path(out).exists()


def test_a_failed_run_keeps_its_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a torchrun that writes one row and fails: the error says the row was kept
    fake = tmp_path / "fake_torchrun"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nargs = json.load(open(sys.argv[-1]))\n"
        "open(args['partial'], 'a').write('allreduce,2,4096,1e-4,1e-4,1e-4,3,0.5,0.5,gloo,"
        "false,1e-4\\n')\nsys.exit(3)\n"
    )
    fake.chmod(0o755)
    out = tmp_path / "c.csv"
    line = one_error_line(*run(capsys, "collect", "comm", "--sizes", "4KiB,8KiB", "--launcher",
                               fake, "--out", out))
    assert "failed (exit 3)" in line
    assert "1 of 6 rows measured and kept in" in line and "--resume" in line
    assert keys(out) == {("allreduce", 4096)}


def test_rounds_interleave_the_sizes(tmp_path: Path) -> None:
    """--rounds 3: three passes over every (op, size) row; 7 timed runs split 2 + 2 + 3;
    each row finished with all 7, written to the side file as its last pass ends."""
    from dearsim.collect import launch

    partial = tmp_path / "c.csv.partial"
    partial.write_text(HEADER)
    todo = [("allreduce", 4096), ("allreduce", 8192), ("allgather", 4096)]
    res = launch.run_task("comm", {"ops": ["allreduce", "allgather"], "sizes": [4096, 8192],
                                   "reps": 7, "warmup": 1, "device": "cpu", "rounds": 3,
                                   "max_seconds_per_size": 60.0, "plan": todo,
                                   "partial": str(partial)}, 2, timeout_s=120)
    assert [tuple(v) for v in res["visits"]] == [(op, b, r) for r in range(3) for op, b in todo]
    assert [(r["op"], r["bytes"], r["reps"]) for r in res["rows"]] == [
        (op, b, 7) for op, b in todo]
    kept = comm.read_rows(partial)
    assert [(r["op"], r["bytes"], r["reps"]) for r in kept] == [(op, b, 7) for op, b in todo]
    for r in kept:
        assert r["p10_s"] <= r["median_s"] <= r["p90_s"] and r["mean_s"] > 0
