"""The Python API: simulate() and compare()."""

from __future__ import annotations

from pathlib import Path

import pytest

import dearsim
from dearsim import AlphaBeta, DearsimError, Trace
from dearsim.schedules import create, names

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "vgg16-b32.csvy"
A = Trace.from_layers([1e-3, 1e-3], [1e-3, 1e-3], [2_000_000, 2_000_000], name="A")
NET = AlphaBeta(0.0, 1e-9)


def test_schedules_are_registered_in_the_documented_order() -> None:
    assert names() == ["wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp"]


def test_simulate_accepts_paths_presets_and_objects_alike() -> None:
    from_path = dearsim.simulate(EXAMPLE, "10GbE", 16, "ddp")
    from_objects = dearsim.simulate(
        dearsim.load_trace(EXAMPLE), dearsim.load_network("10GbE"), 16, create("ddp")
    )
    assert from_path.iteration_time_s == from_objects.iteration_time_s
    assert from_path.throughput == pytest.approx(32 * 16 / from_path.iteration_time_s)


def test_result_reports_the_documented_metrics() -> None:
    r = dearsim.simulate(A, NET, 2, "wfbp")
    # Example A of docs/model.md: iteration 7 ms, compute 4 ms, two 2 ms all-reduces, exposed 3 ms.
    assert r.iteration_time_s == pytest.approx(7e-3)
    assert r.compute_s == pytest.approx(4e-3)
    assert r.comm_s == pytest.approx(4e-3)
    assert r.exposed_comm_s == pytest.approx(3e-3)
    assert r.overlapped_comm_s == pytest.approx(1e-3)
    assert r.buckets == [(0, 0), (1, 1)]
    assert r.comm_bytes == 4_000_000 and r.collectives == 2
    assert r.throughput is None  # A has no batch size
    assert dearsim.simulate(A, NET, 2, "wfbp", batch_size=8).throughput == pytest.approx(
        8 * 2 / 7e-3
    )


def test_compare_ranks_best_first_with_speedup_over_wfbp() -> None:
    cmp = dearsim.compare(A, NET, 2, options={"dear": {"threshold_mb": None}})
    ranked = cmp.ranked()
    times = [r.iteration_time_s for r in ranked]
    assert times == sorted(times)
    assert ranked[0].scheduler == "dear"  # 6 ms, example A
    assert cmp.speedup(ranked[0]) == pytest.approx(7 / 6)
    frame = cmp.to_frame()
    assert list(frame["scheduler"])[0] == "dear"
    assert frame["speedup_over_wfbp"].iloc[0] == pytest.approx(7 / 6)


@pytest.mark.parametrize(
    "kwargs, param, match",
    [
        ({"iterations": 3}, "iterations", "iterations: must be an integer >= warmup \\+ 2 = 4"),
        ({"warmup": -1}, "warmup", "warmup: must be an integer >= 0, got -1"),
        ({"batch_size": 0}, "batch_size", "batch_size: must be a positive integer, got 0"),
        ({"workers": 0}, "workers", "workers: must be a positive integer, got 0"),
        ({"scheduler": "gossip"}, "scheduler", "unknown scheduler 'gossip'"),
        ({"options": {"colour": 1}}, "options", "unknown option 'colour'"),
    ],
)
def test_bad_values_raise_param_errors_naming_the_parameter(kwargs, param, match) -> None:
    args = {"workers": 2, "scheduler": "wfbp", **kwargs}
    with pytest.raises(dearsim.ParamError, match=match) as info:
        dearsim.simulate(A, NET, **args)
    assert info.value.param == param
    assert info.value.for_flag("--x").startswith("--x: ")


def test_compare_checks_the_run_length_before_running() -> None:
    with pytest.raises(dearsim.ParamError) as info:
        dearsim.compare(A, NET, 2, batch_size=-4)
    assert info.value.param == "batch_size"


def test_options_go_to_one_place() -> None:
    with pytest.raises(DearsimError, match="not both"):
        dearsim.simulate(A, NET, 2, create("dear"), {"threshold_mb": None})


def test_comparison_speedup_comes_from_the_table_module() -> None:
    from dearsim import table

    cmp = dearsim.compare(A, NET, 2, ["wfbp", "dear"])
    base = cmp.results[0]
    for r in cmp.results:
        assert cmp.speedup(r) == table.speedup(base.iteration_time_s, r.iteration_time_s)
    assert table.speedup_column() in cmp.rows()[0]
    assert dearsim.compare(A, NET, 2, ["dear"]).speedup(cmp.results[1]) is None


def test_warmup_zero_still_measures_steady_state_for_static_schedules() -> None:
    # For a deterministic barrier schedule the period is the same from the first interval.
    r0 = dearsim.simulate(A, NET, 2, "ddp", iterations=4, warmup=0)
    r2 = dearsim.simulate(A, NET, 2, "ddp", iterations=10, warmup=2)
    assert r0.iteration_time_s == pytest.approx(r2.iteration_time_s)
