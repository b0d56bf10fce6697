"""The command line (spellings in ``docs/model.md``), run in-process through ``dearsim.cli.main``.

Bad input must exit non-zero with exactly one line on standard error that names the
file/line/field, and never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dearsim import schedules
from dearsim.cli import main

SCHEDULES = ["wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp"]
RESULT_KEYS = ("iteration_time_s", "compute_s", "comm_s", "exposed_comm_s")

from cli_helpers import one_error_line, run


@pytest.fixture
def example_a(tmp_path: Path) -> dict[str, Path]:
    """Example A of ``docs/model.md``: f = [1, 1] ms, b = [1, 1] ms, s = [2e6, 2e6] B; p = 2,
    alpha = 0, beta = 1e-9 s/B (so an all-reduce of 2e6 B takes 2 ms, an RS or AG 1 ms)."""
    trace = tmp_path / "a.csv"
    trace.write_text("name,fwd_ms,bwd_ms,bytes\nl0,1,1,2000000\nl1,1,1,2000000\n")
    net = tmp_path / "net.yaml"
    net.write_text("alpha_s: 0\nbeta_s_per_byte: 1e-9\n")
    return {"trace": trace, "network": net}




def sim_args(ex: dict[str, Path], scheduler: str = "wfbp", workers: object = 2) -> list[object]:
    return ["simulate", "--trace", ex["trace"], "--network", ex["network"],
            "--workers", workers, "--scheduler", scheduler]




# --------------------------------------------------------------------------- simulate --json


def test_simulate_json_shape(capsys: pytest.CaptureFixture[str], example_a) -> None:
    rc, out, err = run(capsys, *sim_args(example_a), "--json")
    assert rc == 0, err
    assert out.count("\n") == 1 and out.endswith("\n")  # one JSON object on one line
    data = json.loads(out)
    assert isinstance(data, dict)
    for key in RESULT_KEYS:
        assert isinstance(data[key], float), key
    assert isinstance(data["buckets"], list)
    for b in data["buckets"]:
        assert isinstance(b, list) and len(b) == 2 and all(isinstance(x, int) for x in b)


@pytest.mark.parametrize(
    ("scheduler", "sets", "expected_ms", "buckets"),
    [
        ("wfbp", [], 7.0, [[0, 0], [1, 1]]),
        ("dear", ["threshold_mb=null"], 6.0, [[0, 0], [1, 1]]),
        ("ddp", [], 7.0, [[0, 0], [1, 1]]),
        ("bytescheduler", [], 7.0, None),
        ("dear", [], 8.0, [[0, 1]]),
        ("horovod", ["cycle_time_ms=10"], 10.0, None),
    ],
)
def test_spec_example_a(
    capsys: pytest.CaptureFixture[str], example_a, scheduler, sets, expected_ms, buckets
) -> None:
    argv = sim_args(example_a, scheduler)
    for s in sets:
        argv += ["--set", s]
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["iteration_time_s"] == pytest.approx(expected_ms * 1e-3, abs=1e-9)
    assert data["compute_s"] == pytest.approx(4e-3, abs=1e-9)
    assert data["exposed_comm_s"] == pytest.approx((expected_ms - 4) * 1e-3, abs=1e-9)
    assert data["comm_s"] == pytest.approx(4e-3, abs=1e-9)  # AR 2+2 or RS 1+1 + AG 1+1
    if buckets is not None:
        assert data["buckets"] == buckets


def test_simulate_table(capsys: pytest.CaptureFixture[str], example_a) -> None:
    rc, out, err = run(capsys, *sim_args(example_a))
    assert rc == 0, err
    assert "iteration time (ms)" in out and "7.000" in out


def test_simulate_preset_and_batch_size(capsys: pytest.CaptureFixture[str], example_a) -> None:
    argv = sim_args(example_a, "mgwfbp", 64)
    argv[4] = "10GbE-fit"
    rc, out, err = run(capsys, *argv, "--batch-size", 32, "--iterations", 6, "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["workers"] == 64
    assert data["throughput_samples_per_s"] == pytest.approx(32 * 64 / data["iteration_time_s"])


# --------------------------------------------------------------------------- bad input


def test_missing_trace_file(capsys, example_a, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    argv = sim_args(example_a)
    argv[2] = missing
    line = one_error_line(*run(capsys, *argv, "--json"))
    assert str(missing) in line and "not found" in line


def test_malformed_row(capsys, example_a, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,fwd_ms,bwd_ms,bytes\nl0,1,1,5\nl1,1,1,5\nl2,1,1\n")
    argv = sim_args(example_a)
    argv[2] = bad
    line = one_error_line(*run(capsys, *argv, "--json"))
    assert f"{bad}:4:" in line and "expected 4 fields" in line


def test_negative_time(capsys, example_a, tmp_path: Path) -> None:
    bad = tmp_path / "neg.csv"
    bad.write_text("name,fwd_ms,bwd_ms,bytes\nl0,1,-2,5\n")
    argv = sim_args(example_a)
    argv[2] = bad
    line = one_error_line(*run(capsys, *argv))
    assert f"{bad}:2:" in line and "'bwd_ms'" in line and ">= 0" in line


def test_unknown_scheduler(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a, "gossip"), "--json"))
    assert "unknown scheduler 'gossip'" in line
    for name in SCHEDULES:
        assert name in line  # the message lists the choices


def test_unknown_set_key(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a, "dear"), "--set", "bucket_cap_mb=4"))
    assert "'bucket_cap_mb'" in line and "'dear'" in line and "threshold_mb" in line


def test_set_without_equals(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a, "dear"), "--set", "threshold_mb"))
    assert "--set" in line and "KEY=VALUE" in line and "'threshold_mb'" in line


@pytest.mark.parametrize("value", ["-1", "0", "abc"])
def test_bad_set_value(capsys, example_a, value: str) -> None:
    argv = [*sim_args(example_a, "dear"), "--set", f"threshold_mb={value}"]
    line = one_error_line(*run(capsys, *argv))
    assert "'threshold_mb'" in line and "'dear'" in line


@pytest.mark.parametrize("workers", [0, -3])
def test_bad_worker_count(capsys, example_a, workers: int) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a, workers=workers)))
    assert "--workers" in line and str(workers) in line


def test_non_integer_workers(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a, workers="four")))
    assert "--workers" in line


def test_invalid_network_file(capsys, example_a, tmp_path: Path) -> None:
    net = tmp_path / "broken.yaml"
    net.write_text("name: lab\nalpha_s: 1e-5\n")
    argv = sim_args(example_a)
    argv[4] = net
    line = one_error_line(*run(capsys, *argv))
    assert str(net) in line and "beta_s_per_byte" in line


def test_negative_network_value(capsys, example_a, tmp_path: Path) -> None:
    net = tmp_path / "neg.yaml"
    net.write_text("alpha_s: 1e-5\nbeta_s_per_byte: -1e-9\n")
    argv = sim_args(example_a)
    argv[4] = net
    line = one_error_line(*run(capsys, *argv))
    assert f"{net}:2: beta_s_per_byte" in line


def test_unknown_network(capsys, example_a, tmp_path: Path) -> None:
    argv = sim_args(example_a)
    argv[4] = tmp_path / "nonet.yaml"
    line = one_error_line(*run(capsys, *argv))
    assert "nonet.yaml" in line and "10GbE" in line


def test_fitted_network_missing_worker_count(capsys, example_a, tmp_path: Path) -> None:
    net = tmp_path / "cluster.yaml"
    net.write_text("fits:\n  - {workers: 4, allreduce: {a_s: 1e-5, b_s_per_byte: 1e-9}}\n")
    argv = sim_args(example_a, workers=8)
    argv[4] = net
    line = one_error_line(*run(capsys, *argv, "--json"))
    assert "cluster" in line and "no fit for 8 workers" in line and "4" in line


def test_fitted_preset_missing_worker_count(capsys, example_a) -> None:
    argv = sim_args(example_a, workers=48)
    argv[4] = "100GbIB-fit"
    line = one_error_line(*run(capsys, *argv))
    assert "100GbIB-fit" in line and "48 workers" in line


def test_fitted_network_missing_worker_count_names_file(capsys, example_a, tmp_path) -> None:
    """Regression: with a 'name:' key the error once named only that name, not the file."""
    net = tmp_path / "cluster.yaml"
    net.write_text(
        "name: lab\nfits:\n  - {workers: 4, allreduce: {a_s: 1e-5, b_s_per_byte: 1e-9}}\n"
    )
    argv = sim_args(example_a, workers=8)
    argv[4] = net
    line = one_error_line(*run(capsys, *argv))
    assert "cluster.yaml" in line


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_too_few_iterations(capsys, example_a, iterations: int) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a), "--iterations", iterations))
    assert "iterations" in line and f"got {iterations}" in line


def test_negative_warmup(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a), "--warmup", -1))
    assert "--warmup: must be an integer >= 0, got -1" in line


def test_zero_batch_size(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *sim_args(example_a), "--batch-size", 0))
    assert line == "dearsim: error: --batch-size: must be a positive integer, got 0"


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--iterations", 3], "--iterations: must be an integer >= warmup + 2 = 4, got 3"),
        (["--workers", 0], "--workers: must be a positive integer, got 0"),
        (["--set", "colour=red"], "--set: unknown option 'colour'"),
    ],
)
def test_library_parameter_errors_name_the_flag(capsys, example_a, argv, flag) -> None:
    args = sim_args(example_a)
    line = one_error_line(*run(capsys, *args, *argv))
    assert line.startswith("dearsim: error: " + flag), line
    # compare maps the same library errors to its own flags
    cargs = ["compare", "--trace", example_a["trace"], "--network", example_a["network"],
             "--workers", 2]
    if argv[0] != "--set":
        line = one_error_line(*run(capsys, *cargs, *argv))
        assert line.startswith("dearsim: error: " + flag), line


def test_flag_for_walks_subcommands() -> None:
    import typer

    from dearsim.cli import app, flag_for

    command = typer.main.get_command(app)
    assert flag_for(command, ["simulate", "--json"], "batch_size") == "--batch-size"
    assert flag_for(command, ["compare"], "options") == "--set"
    assert flag_for(command, ["simulate"], "record_ops") is None
    assert flag_for(command, ["plot", "speedup", "x"], "baseline") == "--baseline"
    assert flag_for(command, [], "workers") is None


def test_missing_required_option(capsys, example_a) -> None:
    argv = sim_args(example_a)
    del argv[1:3]  # no --trace
    line = one_error_line(*run(capsys, *argv))
    assert "--trace" in line


def test_unknown_command(capsys) -> None:
    line = one_error_line(*run(capsys, "simulat"))
    assert "simulat" in line


# --------------------------------------------------------------------------- compare


def compare_args(ex: dict[str, Path]) -> list[object]:
    return ["compare", "--trace", ex["trace"], "--network", ex["network"], "--workers", 2]


def test_compare_table_lists_every_schedule(capsys, example_a) -> None:
    rc, out, err = run(capsys, *compare_args(example_a))
    assert rc == 0, err
    assert set(schedules.names()) == set(SCHEDULES)
    for name in SCHEDULES:
        assert name in out
    assert "T_wfbp / T" in out and "wfbp" in out
    # Not a terminal: 80 columns, and no number cut.
    assert max(len(line) for line in out.splitlines()) <= 80


def test_compare_json_is_ranked(capsys, example_a) -> None:
    rc, out, err = run(capsys, *compare_args(example_a), "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert sorted(r["scheduler"] for r in rows) == sorted(SCHEDULES)
    times = [r["iteration_time_s"] for r in rows]
    assert times == sorted(times)
    by = {r["scheduler"]: r for r in rows}
    assert by["wfbp"]["iteration_time_s"] == pytest.approx(7e-3, abs=1e-9)
    assert by["dear"]["iteration_time_s"] == pytest.approx(8e-3, abs=1e-9)  # default 25 MiB
    assert by["wfbp"]["speedup_over_wfbp"] == pytest.approx(1.0)
    assert by["dear"]["speedup_over_wfbp"] == pytest.approx(7 / 8)


def test_compare_scoped_set(capsys, example_a) -> None:
    argv = [*compare_args(example_a), "--set", "dear.threshold_mb=null", "--json"]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    rows = json.loads(out)
    assert rows[0]["scheduler"] == "dear"  # 6 ms beats everything else (7 ms)
    assert rows[0]["iteration_time_s"] == pytest.approx(6e-3, abs=1e-9)
    assert rows[0]["options"]["threshold_mb"] is None


def test_compare_unscoped_set_goes_to_every_taker(capsys, example_a) -> None:
    rc, out, err = run(capsys, *compare_args(example_a), "--set", "threshold_mb=null", "--json")
    assert rc == 0, err
    by = {r["scheduler"]: r for r in json.loads(out)}
    assert by["dear"]["iteration_time_s"] == pytest.approx(6e-3, abs=1e-9)


def test_compare_unknown_scoped_scheduler(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *compare_args(example_a), "--set", "deer.threshold_mb=1"))
    assert "unknown scheduler 'deer'" in line


def test_compare_unknown_scoped_key(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *compare_args(example_a), "--set", "ddp.threshold_mb=1"))
    assert "'threshold_mb'" in line and "'ddp'" in line


def test_compare_unknown_unscoped_key(capsys, example_a) -> None:
    line = one_error_line(*run(capsys, *compare_args(example_a), "--set", "fusion=1"))
    assert "'fusion'" in line


def test_compare_plot_png(capsys, example_a, tmp_path: Path) -> None:
    png = tmp_path / "plots" / "out.png"
    rc, out, err = run(capsys, *compare_args(example_a), "--json", "--plot", png)
    assert rc == 0, err
    assert json.loads(out)  # stdout is still only the JSON
    data = png.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")
    assert str(png) in err


def test_compare_plot_unknown_format(capsys, example_a, tmp_path: Path) -> None:
    bad = tmp_path / "out.xyz"
    rc, out, err = run(capsys, *compare_args(example_a), "--plot", bad)
    assert rc != 0 and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "--plot" in lines[0]


# --------------------------------------------------------------------------- listings


def test_schedulers_lists_names_and_options(capsys) -> None:
    rc, out, err = run(capsys, "schedulers")
    assert rc == 0, err
    for name in SCHEDULES:
        assert name in out
    for key in ("bucket_cap_mb", "first_bucket_mb", "cycle_time_ms", "fusion_threshold_mb",
                "partition_bytes", "credit_bytes", "threshold_mb"):
        assert key in out


def test_networks_lists_presets(capsys) -> None:
    rc, out, err = run(capsys, "networks")
    assert rc == 0, err
    for name in ("10GbE", "100GbIB", "10GbE-fit", "100GbIB-fit"):
        assert name in out


def test_version(capsys) -> None:
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.startswith("dearsim ")


# --------------------------------------------------------------------------- console script


def test_console_script_bad_input_has_no_traceback(tmp_path: Path) -> None:
    """The installed ``dearsim`` script, in a fresh process: one line, no traceback."""
    bad = tmp_path / "bad.csv"
    bad.write_text("name,fwd_ms,bwd_ms,bytes\nl0,1,1,5\nl1,one,1,5\n")
    script = Path(sys.executable).with_name("dearsim")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dearsim.cli"]
    proc = subprocess.run(
        [*cmd, "simulate", "--trace", str(bad), "--network", "10GbE", "--workers", "4",
         "--scheduler", "dear", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{bad}:3:" in lines[0] and "'fwd_ms'" in lines[0]


@pytest.mark.parametrize("network", ["10GbE", "100GbIB"])
def test_compare_runs_on_every_shipped_trace_at_64_workers(network: str, capsys) -> None:
    from dearsim import shipped

    names = shipped.trace_names()
    assert len(names) >= 6
    for name in names:
        argv = ["compare", "--trace", str(shipped.find_trace(name)), "--network", network,
                "--workers", "64", "--json"]
        assert main(argv) == 0, name
        rows = json.loads(capsys.readouterr().out)
        assert [r["scheduler"] for r in rows] != []
        assert len(rows) == len(SCHEDULES)
        times = [r["iteration_time_s"] for r in rows]
        assert times == sorted(times)
        assert all(t >= r["compute_s"] for t, r in zip(times, rows))
