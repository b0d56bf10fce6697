"""``dearsim collect``, ``calibrate`` and ``validate``: fits, and one clear line for every
user mistake. The calibration tests need no PyTorch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from dearsim import load_network
from dearsim.collect.calibrate import calibrate
from dearsim.collect.comm import busbw_factor, parse_size
from dearsim.errors import DearsimError

ROOT = Path(__file__).resolve().parents[1]
HEADER = "op,workers,bytes,median_s,p10_s,p90_s,reps,algbw,busbw,backend,emulated\n"


def comm_csv(tmp_path: Path, rows: list[tuple[str, int, int, float]], header: str = HEADER,
             emulated: str = "false") -> Path:
    p = tmp_path / "comm.csv"
    body = "".join(f"{o},{w},{n},{t},{t},{t},5,0,0,gloo,{emulated}\n" for o, w, n, t in rows)
    p.write_text(header + body)
    return p


def test_calibrate_recovers_a_line(tmp_path: Path) -> None:
    a, b = 50e-6, 1e-9
    rows = [(op, 2, n, a + b * n) for op in ("allreduce", "reducescatter", "allgather")
            for n in (1024, 65536, 1 << 20, 4 << 20)]
    net, fits = calibrate(comm_csv(tmp_path, rows))
    for f in fits:
        assert f.a == pytest.approx(a, rel=1e-6) and f.b == pytest.approx(b, rel=1e-6)
        assert f.r2 == pytest.approx(1.0)
    model = load_network(net)
    assert model.costs(2).reduce_scatter.b == pytest.approx(b, rel=1e-5)
    assert "R^2 = 1.0000" in net["sources"]["fits[workers=2].allreduce"]


def test_calibrate_fits_the_mean_or_the_median(tmp_path: Path) -> None:
    # medians on one line, means on another: --stat picks the column, the sources say which
    p = tmp_path / "comm.csv"
    rows = [(n, 1e-4 + 1e-9 * n, 3e-4 + 2e-9 * n) for n in (4096, 65536, 1 << 20)]
    p.write_text(HEADER.rstrip("\n") + ",mean_s\n" + "".join(
        f"allreduce,2,{n},{med},{med},{med},5,0,0,gloo,false,{mean}\n" for n, med, mean in rows))
    for stat, a, b in (("median", 1e-4, 1e-9), ("mean", 3e-4, 2e-9)):
        net, fits = calibrate(p, stat=stat)
        assert fits[0].a == pytest.approx(a, rel=1e-6) and fits[0].b == pytest.approx(b, rel=1e-6)
        assert f"per-size {stat}s of 3 sizes" in net["sources"]["fits[workers=2].allreduce"]
    with pytest.raises(DearsimError, match="missing column.*mean_s.*--stat median"):
        calibrate(comm_csv(tmp_path, [("allreduce", 2, n, 1e-4) for n in (4096, 8192)]),
                  stat="mean")


def test_calibrate_negative_intercept_goes_through_origin(tmp_path: Path) -> None:
    rows = [("allreduce", 2, n, t) for n, t in ((1000, 1e-7), (2000, 5e-6), (4000, 1.5e-5))]
    net, fits = calibrate(comm_csv(tmp_path, rows))
    assert fits[0].a == 0.0 and fits[0].b > 0
    assert "a = 0" in net["sources"]["fits[workers=2].allreduce"]


def test_calibrate_marks_emulated(tmp_path: Path) -> None:
    rows = [("allreduce", 2, n, 1e-4 + n * 1e-9) for n in (1024, 4096)]
    net, fits = calibrate(comm_csv(tmp_path, rows, emulated="true"))
    assert fits[0].emulated and "EMULATED" in net["sources"]["fits[workers=2].allreduce"]


@pytest.mark.parametrize(
    ("rows", "header", "needle"),
    [
        ([("allreduce", 2, 4096, 1e-4)], HEADER, "one size only"),
        ([("allreduce", 2, 4096, 1e-4), ("allreduce", 2, 4096, 2e-4)], HEADER, "one size only"),
        ([("reducescatter", 2, 4096, 1e-4), ("reducescatter", 2, 8192, 2e-4)], HEADER,
         "no allreduce rows"),
        ([], "op,workers,median_s\n", "missing column(s) bytes"),
        ([], HEADER, "no measurement rows"),
    ],
)
def test_calibrate_bad_input_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list, header: str, needle: str
) -> None:
    p = comm_csv(tmp_path, rows, header)
    line = one_error_line(*run(capsys, "calibrate", p, "--out", tmp_path / "n.yaml"))
    assert needle in line and "comm.csv" in line
    assert not (tmp_path / "n.yaml").exists()


def test_calibrate_empty_size_field_names_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "comm.csv"
    p.write_text(HEADER + "allreduce,2,4096,1e-4,1,1,5,0,0,gloo,false\n"
                 "allreduce,2,,2e-4,1,1,5,0,0,gloo,false\n")
    line = one_error_line(*run(capsys, "calibrate", p, "--out", tmp_path / "n.yaml"))
    assert "comm.csv:3" in line and "'bytes'" in line


def test_calibrate_needs_no_torch(tmp_path: Path) -> None:
    rows = [("allreduce", 2, n, 1e-4 + n * 1e-9) for n in (1024, 4096)]
    p = comm_csv(tmp_path, rows)
    code = (
        "import sys; from dearsim.cli import main; "
        f"rc = main(['calibrate', {str(p)!r}, '--out', {str(tmp_path / 'n.yaml')!r}]); "
        "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_sizes_and_busbw() -> None:
    assert parse_size("4KiB") == 4096 and parse_size("1MiB") == 1 << 20
    assert parse_size("1000") == 1000
    with pytest.raises(DearsimError, match="cannot read size"):
        parse_size("4 parsecs")
    assert busbw_factor("allreduce", 2) == 1.0
    assert busbw_factor("reducescatter", 4) == 0.75


# --------------------------------------------------------------------------- needs torch


def test_unknown_model_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    line = one_error_line(*run(capsys, "collect", "layers", "--model", "no-such-model",
                         "--batch-size", 4, "--out", tmp_path / "t.csvy"))
    assert "no-such-model" in line


def test_cuda_without_cuda_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = one_error_line(*run(capsys, "collect", "layers", "--model", "tiny-mlp",
                               "--batch-size", 4, "--device", "cuda", "--out",
                               tmp_path / "t.csvy"))
    assert "--device cuda" in line and "CUDA is not available" in line


def test_torchrun_missing_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    line = one_error_line(*run(capsys, "collect", "comm", "--sizes", "4KiB,8KiB", "--launcher",
                         "/nonexistent/torchrun", "--out", tmp_path / "c.csv"))
    assert "torchrun not found" in line


def test_bad_ops_and_sizes_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    line = one_error_line(*run(capsys, "collect", "comm", "--ops", "broadcast", "--out",
                         tmp_path / "c.csv"))
    assert "unknown collective 'broadcast'" in line
    line = one_error_line(*run(capsys, "collect", "comm", "--sizes", "4KiB,lots", "--out",
                         tmp_path / "c.csv"))
    assert "--sizes" in line and "lots" in line
    line = one_error_line(*run(capsys, "collect", "comm", "--rounds", 0, "--out",
                         tmp_path / "c.csv"))
    assert "--rounds" in line
    line = one_error_line(*run(capsys, "collect", "comm", "--rounds", 5, "--reps", 3, "--out",
                         tmp_path / "c.csv"))
    assert "--rounds 5: at most --reps (3)" in line
    for args, want in ((("--rounds", 0), "--rounds"),
                       (("--rounds", 5, "--iters", 3), "--rounds 5: at most --iters (3)")):
        line = one_error_line(*run(capsys, "collect", "interference", "--model", "tiny-mlp",
                                   "--batch-size", 4, *args, "--out", tmp_path / "i.yaml"))
        assert want in line


def test_an_interrupt_takes_the_ranks_down(tmp_path: Path) -> None:
    # The launcher runs the ranks in their own session; SIGINT to dearsim alone (as a job
    # scheduler sends it) must still stop them, and dearsim exits 130. A fake torchrun
    # stands in for the ranks: it writes its pid and sleeps.
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("torch")  # collect checks for PyTorch before it launches anything
    pidfile = tmp_path / "rank.pid"
    fake = tmp_path / "fake_torchrun"
    fake.write_text(f"#!{sys.executable}\nimport os, time\n"
                    f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    fake.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = HEADER + "allreduce,2,4096,1e-4,1e-4,1e-4,5,0,0,gloo,false\n"
    (tmp_path / "c.csv").write_text(before)  # a run that kept no row leaves it as it was
    proc = subprocess.Popen(
        [sys.executable, "-m", "dearsim", "collect", "comm", "--sizes", "4KiB,8KiB",
         "--launcher", str(fake), "--out", str(tmp_path / "c.csv")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"dearsim ended before the rank started: {proc.stderr.read()}")
            time.sleep(0.05)
        rank = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted: 0 of 6 rows measured and kept" in err
        assert (tmp_path / "c.csv").read_text() == before
        assert not (tmp_path / "c.csv.partial").exists()
        time.sleep(0.2)
        with pytest.raises(ProcessLookupError):
            os.kill(rank, 0)  # the rank is gone
    finally:
        if proc.poll() is None:
            proc.kill()


def test_calibrated_trace_counts_a_negative_overhead_as_zero() -> None:
    # DDP's and the optimizer's overheads are differences of two noisy medians: one measured
    # below 0 must not make a layer's backward negative (the trace would not load)
    from dearsim import Trace
    from dearsim.collect.validate import calibrated_trace

    tr = Trace.from_layers([1e-3, 1e-4], [2e-3, 1e-4], [1000, 9000], [1e-5, 1e-5], ["a", "b"])
    terms = {"compute_slowdown": 1.5, "ddp_overhead_s": -5e-3, "optimizer_overhead_s": -1e-3}
    out = calibrated_trace(tr, terms, "ddp")
    assert out.bwd == pytest.approx([3e-3, 1.5e-4]) and out.update == pytest.approx([1.5e-5] * 2)
    terms = {**terms, "ddp_overhead_s": 1e-3, "optimizer_overhead_s": 2e-5}
    out = calibrated_trace(tr, terms, "ddp")
    assert out.bwd == pytest.approx([3e-3 + 1e-4, 1.5e-4 + 9e-4])
    assert out.update == pytest.approx([1.5e-5 + 1e-5] * 2)


def test_validate_bad_prefetch_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    cal = ROOT / "examples" / "calibration"
    line = one_error_line(*run(capsys, "validate", "--trace", cal / "mlp-b32-cpu.csvy",
                               "--network", cal / "gloo-loopback-2.yaml", "--model", "mlp",
                               "--prefetch", "next,sometimes", "--out", tmp_path / "v.csv"))
    assert "--prefetch" in line and "'sometimes'" in line
    assert not (tmp_path / "v.csv").exists()


def test_seq_len_reaches_bert_and_is_refused_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from dearsim.collect.models import build

    w = build("bert-base", 2, "meta", seq_len=8)  # meta: shapes only, nothing allocated
    assert tuple(w.kwargs["input_ids"].shape) == (2, 8)
    assert tuple(build("bert-base", 2, "meta").kwargs["input_ids"].shape) == (2, 128)
    for model, needle in (("tiny-mlp", "--seq-len applies to BERT models, not tiny-mlp"),
                          ("resnet18", "--seq-len")):
        line = one_error_line(*run(capsys, "collect", "layers", "--model", model,
                                   "--batch-size", 2, "--seq-len", 8, "--out",
                                   tmp_path / "t.csvy"))
        assert needle in line, line
    line = one_error_line(*run(capsys, "collect", "layers", "--model", "bert-base",
                               "--batch-size", 2, "--seq-len", 0, "--out", tmp_path / "t.csvy"))
    assert "--seq-len must be a positive integer" in line
