"""The whole measure-calibrate-validate loop on this machine's CPU: 2 gloo ranks on
127.0.0.1, a tiny model. Skipped without PyTorch."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dearsim import load_network, load_trace
from dearsim.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_collect_calibrate_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace_p, comm_p, net_p = tmp_path / "t.csvy", tmp_path / "comm.csv", tmp_path / "net.yaml"
    rc, out, err = run(capsys, "collect", "layers", "--model", "tiny-mlp", "--batch-size", 8,
                       "--iters", 5, "--warmup", 1, "--threads", 1, "--out", trace_p)
    assert rc == 0, err
    tr = load_trace(trace_p)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    expected = {n: p.numel() * 4 for n, p in model.named_parameters()}
    assert list(tr.names) == ["0", "2", "4"]  # every layer, forward order
    assert tr.size == tuple(expected[f"{n}.weight"] + expected[f"{n}.bias"] for n in tr.names)
    assert tr.total_bytes == sum(expected.values())
    assert all(x > 0 for x in tr.fwd) and all(x > 0 for x in tr.bwd)
    assert all(x >= 0 for x in tr.update)
    prov = tr.meta["provenance"]
    assert prov["method"] == "measured"
    assert prov["totals"]["tensors"] == len(expected)
    assert "hooked_step_ms" in prov["hook_overhead"] and "torch" in prov["framework"]
    assert "collect layers" in prov["command"]

    rc, out, err = run(capsys, "collect", "comm", "--sizes", "4KiB,64KiB,512KiB",
                       "--reps", 5, "--warmup", 1, "--nproc", 2, "--timeout", 90, "--out", comm_p)
    assert rc == 0, err
    rows = list(csv.DictReader(comm_p.open()))
    assert {r["op"] for r in rows} == {"allreduce", "reducescatter", "allgather"}
    assert len(rows) == 9
    for r in rows:
        assert r["workers"] == "2" and r["backend"] == "gloo"
        assert r["emulated"] in ("true", "false")
        assert float(r["p10_s"]) <= float(r["median_s"]) <= float(r["p90_s"])
        assert float(r["mean_s"]) > 0
        bus = float(r["algbw"]) * (1.0 if r["op"] == "allreduce" else 0.5)
        assert math.isclose(float(r["busbw"]), bus, rel_tol=1e-3)

    rc, out, err = run(capsys, "calibrate", comm_p, "--out", net_p, "--plot",
                       tmp_path / "fit.png")
    assert rc == 0, err
    assert (tmp_path / "fit.png").stat().st_size > 0
    net = load_network(net_p)
    assert net.costs(2).allreduce.b >= 0
    assert any("R^2" in s for s in net.sources.values())

    interf_p = tmp_path / "interference.yaml"
    rc, out, err = run(capsys, "collect", "interference", "--model", "tiny-mlp",
                       "--batch-size", 8, "--iters", 4, "--warmup", 1, "--threads", 1,
                       "--rounds", 2, "--timeout", 90, "--out", interf_p)
    assert rc == 0, err
    import yaml

    doc = yaml.safe_load(interf_p.read_text())
    assert "--iters 4" in doc["command"] and "--rounds 2" in doc["command"]
    terms = doc["interference"]
    assert terms["rounds"] == 2
    assert terms["cluster_comm_interference"] == pytest.approx(
        max(0.0, terms["comm_slowdown"] - 1), abs=1e-6)
    assert 0 < terms["comm_busy_fraction"] <= 1
    assert terms["comm_reps_with_compute"] >= 1
    for k in ("plain_step_s", "dear_step_s", "wfbp_step_s"):
        assert terms[k] > 0
    # the file rounds every term to 1e-9 s: a difference of two rounded terms is within 2e-9
    assert terms["dear_overhead_s"] == pytest.approx(
        terms["dear_step_s"] - terms["plain_step_s"], abs=2e-9)
    assert terms["wfbp_overhead_s"] == pytest.approx(
        terms["wfbp_step_s"] - terms["plain_step_s"], abs=2e-9)
    x = terms["cluster_interference"]
    assert x >= 0 and "interference:" in err

    out_csv = tmp_path / "val.csv"
    rc, out, err = run(capsys, "validate", "--trace", trace_p, "--network", net_p, "--model",
                       "tiny-mlp", "--iters", 3, "--warmup", 1, "--threads", 1,
                       "--bucket-caps", "0.02", "--thresholds", "0.07", "--timeout", 90,
                       "--interference", interf_p, "--comm-log", "--out", out_csv)
    assert rc == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    # --comm-log: every collective DeAR and WFBP posted in the timed steps, on both ranks
    comm = list(csv.DictReader((tmp_path / "val.comm.csv").open()))
    assert {(r["schedule"], r["prefetch"]) for r in comm} == {
        ("dear", "next"), ("dear", "chain"), ("wfbp", "")}
    assert {r["rank"] for r in comm} == {"0", "1"}
    assert {int(r["step"]) for r in comm} == {0, 1, 2, 3}  # --iters 3: four timed steps
    wfbp = [r for r in comm if r["schedule"] == "wfbp" and r["rank"] == "0"]
    assert sorted(int(r["bytes"]) for r in wfbp if r["step"] == "0") == sorted(expected.values())
    assert {r["op"] for r in comm if r["schedule"] == "dear"} == {"reducescatter", "allgather"}
    for r in comm:
        assert 0 <= float(r["posted_ms"]) <= float(r["completed_ms"])
    assert [r["schedule"] for r in rows] == ["ddp", "ddp", "dear", "dear", "wfbp"]
    assert [r["prefetch"] for r in rows] == ["", "", "next", "chain", ""]
    for r in rows:
        assert float(r["measured_ms"]) > 0 and float(r["predicted_ms"]) > 0
        for stem in ("", "x_", "cal_", "cal_x_", "xy_", "cal_xy_", "serial_", "serial_cal_"):
            pct = (float(r[f"predicted_{stem}ms"]) / float(r["measured_ms"]) - 1) * 100
            assert math.isclose(float(r[f"error_{stem}pct"]), pct, abs_tol=0.01)
        # interference never makes these fixed-grouping runs faster (identical workers)
        assert float(r["predicted_x_ms"]) >= float(r["predicted_ms"]) - 1e-6
        assert float(r["predicted_cal_x_ms"]) >= float(r["predicted_cal_ms"]) - 1e-6
        assert math.isclose(float(r["interference"]), x, abs_tol=1e-4)
        y = terms["cluster_comm_interference"]
        assert math.isclose(float(r["comm_interference"]), y, abs_tol=1e-4)
        # the no-overlap bound is never below the overlapped prediction
        assert float(r["predicted_serial_ms"]) >= float(r["predicted_ms"]) - 1e-3
    assert "+ interference x: median" in out and "interference from" in out
    for r in rows[2:4]:
        assert "groups=2" in r["setting"]  # 0.07 MiB: layer 0, then layers 1-2
    # DeAR's (both prefetch rules) and WFBP's parameters after two steps equal DDP's
    line = next(ln for ln in out.splitlines() if ln.startswith("correctness"))
    assert line.startswith("correctness after 2 steps")
    diffs = {x.split()[0]: float(x.split()[-1]) for x in line.split(":", 1)[1].split(",")}
    assert set(diffs) == {"dear-next", "dear-chain", "wfbp"}
    assert all(d < 1e-6 for d in diffs.values()), diffs
    # the measurement is kept: predicted again from it, without training, the same rows
    again = tmp_path / "again.csv"
    rc, _, err = run(capsys, "validate", "--trace", trace_p, "--network", net_p,
                     "--interference", interf_p, "--measured", tmp_path / "val.result.json",
                     "--out", again)
    assert rc == 0, err
    assert again.read_text() == out_csv.read_text()
