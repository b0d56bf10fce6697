"""``engine: fast`` in a sweep config: the SimPy-free evaluator gives the engine's numbers
(within 1e-9), its runs are told apart from SimPy runs, and a bad value is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from dearsim.config import load_config
from dearsim.sweep import run_sweep

BODY = (
    "traces: [resnet50-b64]\nnetworks: [10GbE, 100GbIB]\nworkers: [4, 16]\n"
    "schedules: [wfbp, ddp, horovod, mgwfbp, bytescheduler, dear]\niterations: 8\n"
)


def sweep(tmp_path: Path, name: str, extra: str = "") -> dict:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(BODY + extra)
    outcome = run_sweep(load_config(cfg), tmp_path / name, jobs=1)
    assert outcome.failed == 0
    return {(r["network"], r["workers"], r["schedule"]): r for r in outcome.rows}


def test_fast_sweep_equals_the_engine(tmp_path: Path) -> None:
    simpy = sweep(tmp_path, "simpy")
    fast = sweep(tmp_path, "fast", "engine: fast\n")
    assert simpy.keys() == fast.keys() and len(simpy) == 24
    for key, a in simpy.items():
        b = fast[key]
        assert a["engine"] == "simpy" and b["engine"] == "fast"
        assert a["run_hash"] != b["run_hash"]  # not bit-identical: other runs
        for metric in ("iteration_time_s", "compute_s", "comm_s", "exposed_comm_s"):
            assert b[metric] == pytest.approx(a[metric], rel=1e-9), (key, metric)
        assert (b["collectives"], b["comm_bytes"], b["buckets"]) == (
            a["collectives"], a["comm_bytes"], a["buckets"])


def test_simpy_runs_keep_their_hashes(tmp_path: Path) -> None:
    # Saying the default explicitly changes nothing: old results still resume.
    a = sweep(tmp_path, "implicit")
    b = sweep(tmp_path, "explicit", "engine: simpy\n")
    assert {k: r["run_hash"] for k, r in a.items()} == {k: r["run_hash"] for k, r in b.items()}


def test_a_bad_engine_is_one_line(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BODY + "engine: numba\n")
    line = one_error_line(*run(capsys, "sweep", cfg, "--out", tmp_path / "out"))
    assert "engine" in line and "bad.yaml" in line
