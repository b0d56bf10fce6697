"""``dearsim validate``'s parent side without PyTorch: the no-overlap bound among its
predictions, and the collectives file made from the trainers' logs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import FEW, geq, networks, traces

import dearsim
from dearsim.collect import validate
from dearsim.schedules.dear import greedy_groups


def result_for(trace: dearsim.Trace, world: int, measured_s: float = 0.01) -> dict:
    """A validate result (as the ranks return it) with one ddp, one dear and one wfbp run."""
    rows = [
        {"schedule": "ddp", "setting": "default", "options": {}, "measured_s": measured_s},
        {"schedule": "dear", "setting": "threshold_mb=1", "measured_s": measured_s,
         "options": {"threshold_mb": 1.0, "prefetch": "next"},
         "groups": [(g.first, g.last) for g in greedy_groups(trace, 1.0)]},
        {"schedule": "wfbp", "setting": "per-tensor", "options": {}, "measured_s": measured_s},
    ]
    return {"world": world, "rows": rows}


def test_no_overlap_is_compute_plus_link_time_by_hand() -> None:
    # two layers, 1 ms forward and backward each, 2e6 B of gradients each; all-reduce 2 ms
    # (a = 0, b = 1e-9 s/B, 2 workers: 2(p-1)/p = 1). WFBP overlaps layer 1's all-reduce
    # with layer 0's backward: 1+1 (fwd) + 1 (bwd 1) + max(1, 2) + 2 = 7 ms per iteration
    # (forward waits for nothing: the barrier ends the iteration). No overlap: compute 4 ms +
    # two all-reduces 4 ms = 8 ms.
    trace = dearsim.Trace.from_layers([1e-3, 1e-3], [1e-3, 1e-3], [2_000_000, 2_000_000])
    net = dearsim.AlphaBeta(alpha=0.0, beta=1e-9)
    res = {"world": 2, "rows": [{"schedule": "wfbp", "setting": "per-tensor", "options": {},
                                 "measured_s": 0.008}]}
    (row,) = validate.predict(res, trace, net, None)
    assert row["predicted_ms"] == pytest.approx(7.0)
    assert row["predicted_serial_ms"] == pytest.approx(8.0)
    assert row["error_serial_pct"] == pytest.approx(0.0, abs=1e-9)
    assert row["error_pct"] == pytest.approx(-12.5)


@FEW
@given(trace=traces(), net=networks(gamma=False), world=st.integers(2, 16))
def test_no_overlap_is_never_faster_than_the_simulated_run(trace, net, world) -> None:
    """ddp, dear and wfbp on identical workers keep compute or the link busy at every
    instant of an iteration, so compute + link time bounds the iteration time from above;
    the bound is tight when nothing overlaps."""
    if not trace.grad_layers:
        return
    for row in validate.predict(result_for(trace, world), trace, net, None):
        assert geq(row["predicted_serial_ms"], row["predicted_ms"]), row
        assert row["predicted_serial_ms"] <= (
            trace.compute_time * 1e3 + 3 * trace.total_bytes * 1e3 + 1e9
        )


def test_terms_add_the_no_overlap_bound_with_terms() -> None:
    trace = dearsim.Trace.from_layers([1e-3, 2e-3], [2e-3, 1e-3], [1_000_000, 3_000_000],
                                      [1e-4, 1e-4])
    terms = {"compute_slowdown": 1.5, "comm_compute_slowdown": 1.0, "comm_busy_fraction": 1.0,
             "ddp_overhead_s": 0.0, "optimizer_overhead_s": 0.0}
    rows = validate.predict(result_for(trace, 2), trace, dearsim.load_network("10GbE"), terms)
    for row in rows:
        assert {"predicted_serial_ms", "predicted_serial_cal_ms"} <= set(row)
        # compute 1.5x slower, same collectives: the bound grows by half the compute
        grow = row["predicted_serial_cal_ms"] - row["predicted_serial_ms"]
        assert grow == pytest.approx(0.5 * trace.compute_time * 1e3, rel=1e-9)


def test_comm_rows_split_the_log_into_steps_and_drop_what_follows_the_last() -> None:
    log0 = {"starts": [10.0, 10.010, 10.020],
            "entries": [["reducescatter", 100, 10.004, 10.006],
                        ["allgather", 100, 10.009, None],          # completion never seen
                        ["allgather", 100, 10.011, 10.012],
                        ["reducescatter", 100, 10.015, 10.019],
                        ["allgather", 100, 10.021, 10.022]]}       # posted after the end
    log1 = {"starts": [20.0, 20.011, 20.020],
            "entries": [["reducescatter", 100, 20.005, 20.006],
                        ["allgather", 100, 20.010, 20.0115],
                        ["allgather", 100, 20.012, 20.013],
                        ["reducescatter", 100, 20.016, 20.018]]}
    res = {"world": 2, "rows": [
        {"schedule": "ddp", "setting": "default", "options": {}},
        {"schedule": "dear", "setting": "threshold_mb=1", "options": {"prefetch": "chain"},
         "comm_log": [log0, log1]},
    ]}
    rows = validate.comm_rows(res)
    got = [(r["rank"], r["step"], r["index"], r["op"]) for r in rows]
    assert got == [(0, 0, 0, "reducescatter"), (0, 0, 1, "allgather"), (0, 1, 0, "allgather"),
                   (0, 1, 1, "reducescatter"),
                   (1, 0, 0, "reducescatter"), (1, 0, 1, "allgather"), (1, 1, 0, "allgather"),
                   (1, 1, 1, "reducescatter")]
    assert rows[0]["posted_ms"] == pytest.approx(4.0)
    assert rows[0]["completed_ms"] == pytest.approx(6.0)
    assert rows[1]["completed_ms"] is None
    assert rows[2]["posted_ms"] == pytest.approx(1.0)  # from step 1's start on rank 0
    assert rows[5]["posted_ms"] == pytest.approx(10.0)  # rank 1: before its step 1 began
    assert all(r["prefetch"] == "chain" and r["schedule"] == "dear" for r in rows)
    assert all(math.isfinite(r["posted_ms"]) for r in rows)


@pytest.mark.parametrize("schedule", ["ddp", "dear", "wfbp"])
def test_each_trainer_gets_its_own_overhead_spread_by_bytes(schedule: str) -> None:
    trace = dearsim.Trace.from_layers([1e-3] * 3, [1e-3, 2e-3, 3e-3], [1000, 0, 3000],
                                      [0.0, 0.0, 0.0])
    terms = {"compute_slowdown": 1.0, "ddp_overhead_s": 0.004, "dear_overhead_s": 0.008,
             "wfbp_overhead_s": -0.002, "optimizer_overhead_s": 0.0}
    ct = validate.calibrated_trace(trace, terms, schedule)
    extra = {"ddp": 0.004, "dear": 0.008, "wfbp": 0.0}[schedule]  # below 0 counts as 0
    added = [c - b for c, b in zip(ct.bwd, trace.bwd)]
    assert added == pytest.approx([extra / 4, 0.0, 3 * extra / 4])
    assert ct.fwd == trace.fwd
    # a file written before the trainers' overheads were measured: nothing added
    old = {k: v for k, v in terms.items() if k not in ("dear_overhead_s", "wfbp_overhead_s")}
    if schedule != "ddp":
        assert validate.calibrated_trace(trace, old, schedule).bwd == trace.bwd


def test_validate_measured_predicts_a_kept_run_again(tmp_path, capsys) -> None:
    """``validate --measured OUT.result.json``: the same measurements, another network, no
    training. The hand case above: WFBP 7 ms with 2 ms all-reduces; with 4 ms ones (beta
    doubled) f 0-2, b1 2-3, AR(1) 3-7 while b0 3-4, AR(0) 7-11: 11 ms."""
    import csv
    import json

    from cli_helpers import one_error_line, run

    from dearsim.trace import save_trace

    trace = dearsim.Trace.from_layers([1e-3, 1e-3], [1e-3, 1e-3], [2_000_000, 2_000_000])
    trace_p = tmp_path / "t.csvy"
    save_trace(trace, trace_p)
    res = {"world": 2, "threads": 1, "check": {"wfbp": 0.0},
           "tensors": [[2_000_000], [2_000_000]], "tensor_names": [["w"], ["w"]],
           "rows": [{"schedule": "wfbp", "setting": "per-tensor", "options": {},
                     "measured_s": 0.008}]}
    kept = tmp_path / "v.result.json"
    kept.write_text(json.dumps({"model": "mlp", "device": "cpu", "result": res}))
    for beta, want in (("1e-9", 7.0), ("2e-9", 11.0)):
        net = tmp_path / f"n{beta}.yaml"
        net.write_text(f"alpha_s: 0\nbeta_s_per_byte: {beta}\n")
        out = tmp_path / f"again-{beta}.csv"
        rc, _, err = run(capsys, "validate", "--trace", trace_p, "--network", net,
                         "--measured", kept, "--out", out)
        assert rc == 0, err
        (row,) = list(csv.DictReader(out.open()))
        assert float(row["measured_ms"]) == pytest.approx(8.0)
        assert float(row["predicted_ms"]) == pytest.approx(want)
        assert row["model"] == "mlp"
        # the measurement is kept next to the new CSV too, unchanged
        assert json.loads((tmp_path / f"again-{beta}.result.json").read_text())["result"] == res
    bad = tmp_path / "bad.json"
    bad.write_text("{\"rows\": []}")
    for argv, needle in (
        (["--measured", kept, "--model", "mlp"], "--model: not with --measured"),
        ([], "--model is required"),
        (["--measured", bad], "not a validate result"),
        (["--measured", tmp_path / "missing.json"], "cannot read"),
    ):
        line = one_error_line(*run(capsys, "validate", "--trace", trace_p, "--network", net,
                                   "--out", tmp_path / "x.csv", *argv))
        assert needle in line, line
    # a result that does not match the trace (no tensors for a trace without a breakdown)
    del res["tensors"]
    kept.write_text(json.dumps({"model": "mlp", "device": "cpu", "result": res}))
    line = one_error_line(*run(capsys, "validate", "--trace", trace_p, "--network", net,
                               "--measured", kept, "--out", tmp_path / "x.csv"))
    assert "does not match" in line
