"""Clusters and topologies from configs, sweeps and the command line: the same numbers as the
Python API, located errors, run hashes that identical workers keep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run
from sweep_helpers import config, with_trace

import dearsim
from dearsim.cluster import Cluster, Stall
from dearsim.config import load_config
from dearsim.errors import DearsimError
from dearsim.network import load_topology
from dearsim.sweep import execute, run_sweep
from dearsim.trace import load_trace

METRICS = ("iteration_time_s", "iteration_p50_s", "iteration_p99_s", "wait_mean_s",
           "wait_min_s", "wait_max_s", "comm_s", "exposed_comm_s")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return with_trace(tmp_path)


def _rows(folder: Path, body: str, name: str = "c.yaml") -> list[dict]:
    loaded = load_config(config(folder, body, name))
    traces = loaded.traces
    return [execute(r, traces) for r in loaded.runs]


def test_a_cluster_block_runs_what_the_python_api_runs(folder: Path) -> None:
    body = ("networks: [10GbE]\nworkers: [8]\nschedules: [ddp, dear]\niterations: 14\n"
            "seed: 3\ncluster:\n  stragglers: 2\n  straggler_slowdown: 1.5\n"
            "  jitter_cv: 0.1\n  stalls: [{worker: 1, every: 4, duration_ms: 7, offset: 1}]\n")
    rows = _rows(folder, body)
    trace = load_trace(folder / "t.csv")
    cl = Cluster.build(8, stragglers=2, straggler_slowdown=1.5, jitter_cv=0.1, seed=3,
                       stalls=[Stall(1, 4, 7e-3, 1)])
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "ok", row["error"]
        r = dearsim.simulate(trace, "10GbE", cl, row["scheduler"], iterations=14)
        for key in METRICS:
            assert row[key] == getattr(r, key), key  # the same engine: bit for bit
        assert row["cluster.stragglers"] == 2 and row["cluster.straggler_slowdown"] == 1.5
        assert row["cluster.jitter_cv"] == 0.1 and row["seed"] == 3
        assert json.loads(row["cluster.stalls"]) == [
            {"worker": 1, "every": 4, "duration_ms": 7.0, "offset": 1}]
        assert row["iteration_p99_s"] > row["iteration_p50_s"]  # jitter and stalls spread
        assert row["wait_max_s"] > row["wait_min_s"]            # stragglers wait least


def test_identical_workers_keep_their_run_hashes_and_numbers(folder: Path) -> None:
    base = "networks: [10GbE]\nworkers: [8]\nschedules: [wfbp, dear]\n"
    plain = load_config(config(folder, base, "a.yaml")).runs
    zero = load_config(config(
        folder, base + "seed: 9\ncluster: {stragglers: 0, straggler_slowdown: 1.0, "
        "jitter_cv: 0.0, stalls: []}\n", "b.yaml")).runs
    assert [r.run_hash for r in plain] == [r.run_hash for r in zero]
    assert all(r.cluster == {} and r.cluster_model() == 8 for r in zero)
    # a seed without jitter changes nothing, so it is not part of the run
    a = _rows(folder, base + "seed: 1\ncluster: {stragglers: 1, straggler_slowdown: 2}\n",
              "c.yaml")
    b = _rows(folder, base + "seed: 2\ncluster: {stragglers: 1, straggler_slowdown: 2}\n",
              "d.yaml")
    assert [r["run_hash"] for r in a] == [r["run_hash"] for r in b]
    assert a[0]["seed"] is None


def test_seeds_are_a_sweep_axis_reproducible_and_different(folder: Path) -> None:
    body = ("networks: [10GbE]\nworkers: [4]\nschedules: [dear]\niterations: 12\n"
            "cluster: {jitter_cv: 0.2}\nsweep:\n  grid:\n    seed: [0, 1, 0]\n")
    loaded = load_config(config(folder, body))
    assert loaded.n_runs == 2  # the repeated seed is one run
    one = run_sweep(loaded, folder / "o1", jobs=1).rows
    two = run_sweep(load_config(config(folder, body)), folder / "o2", jobs=1).rows
    assert [r["seed"] for r in one] == [0, 1]
    assert [r["iteration_time_s"] for r in one] == [r["iteration_time_s"] for r in two]
    assert one[0]["iteration_time_s"] != one[1]["iteration_time_s"]


def test_a_straggler_axis_slows_every_schedule(folder: Path) -> None:
    body = ("networks: [10GbE]\nworkers: [8]\niterations: 8\nschedules: [wfbp, ddp, horovod, "
            "mgwfbp, bytescheduler, dear, fsdp]\ncluster: {stragglers: 1}\n"
            "sweep:\n  grid:\n    cluster.straggler_slowdown: [1.0, 1.5, 3.0]\n")
    rows = _rows(folder, body)
    compute = load_trace(folder / "t.csv").compute_time
    by = {}
    for row in rows:
        assert row["status"] == "ok", row["error"]
        by.setdefault(row["schedule"], []).append(
            (row["cluster.straggler_slowdown"], row["iteration_time_s"]))
    assert len(by) == 7
    for name, points in by.items():
        points.sort()
        times = [t for _, t in points]
        assert times == sorted(times), name
        for f, t in points:  # never faster than the straggler's own compute
            assert t >= f * compute * (1 - 1e-12), (name, f)


def test_cluster_values_are_validated_where_they_are_written(folder: Path) -> None:
    base = "networks: [10GbE]\nworkers: [4]\nschedules: [wfbp]\n"
    cases = [
        ("cluster: {stragglers: 5}\n", ":5: cluster.stragglers", "5 stragglers among 4"),
        ("cluster: {jitter_cv: -0.1}\n", ":5: cluster.jitter_cv", "greater than or equal"),
        ("cluster: {slowdown: [1, 2]}\n", ":5: cluster.slowdown", "2 entries for 4 workers"),
        ("cluster: {stalls: [{worker: 9, every: 2, duration_ms: 1}]}\n", ":5: cluster.stalls",
         "only 4 workers"),
        ("cluster: {stalls: [{worker: 0, every: 0, duration_ms: 1}]}\n",
         ":5: cluster.stalls[0].every", "greater than 0"),
        ("cluster: {jiter_cv: 0.1}\n", ":5: cluster.jiter_cv", "unknown key"),
        ("sweep:\n  grid:\n    cluster.straggler_slowdown: [1.5, 0]\n",
         ":7: sweep.grid.cluster.straggler_slowdown[1]", "greater than 0"),
        ("sweep:\n  grid:\n    network.algorithm: [ring]\n", ":7: sweep.grid.network.algorithm",
         "applies to hierarchical networks"),
    ]
    for i, (extra, where, message) in enumerate(cases):
        path = config(folder, base + extra, f"bad{i}.yaml")
        with pytest.raises(DearsimError) as info:
            load_config(path)
        text = str(info.value)
        assert f"bad{i}.yaml{where}" in text and message in text, (extra, text)


def test_topologies_and_inline_hierarchical_networks_in_sweeps(folder: Path) -> None:
    body = ("networks:\n  - dear-cluster-10GbE\n  - kind: hierarchical\n    label: mine\n"
            "    gpus_per_node: 2\n    intra: {kind: alpha-beta, alpha_s: 1.0e-6, "
            "beta_s_per_byte: 1.0e-11}\n    inter: {kind: alpha-beta, alpha_s: 1.0e-5, "
            "beta_s_per_byte: 8.0e-10}\nworkers: [8]\nschedules: [ddp, dear]\n"
            "sweep:\n  grid:\n    network.algorithm: [ring, hierarchical]\n")
    rows = _rows(folder, body)
    assert len(rows) == 8
    trace = load_trace(folder / "t.csv")
    seen = set()
    for row in rows:
        assert row["status"] == "ok", row["error"]
        algo = row["network.algorithm"]
        seen.add((row["network"], algo))
        if row["network"] == "dear-cluster-10GbE":
            net = load_topology("dear-cluster-10GbE", algo)
            assert row["network.gpus_per_node"] == 4
        else:
            net = dearsim.network.network_from_spec(json.loads(row["network_spec"]))
            assert net.algorithm == algo and net.gpus_per_node == 2
        r = dearsim.simulate(trace, net, 8, row["scheduler"])
        assert row["iteration_time_s"] == r.iteration_time_s
    assert len(seen) == 4
    ring = {r["schedule"]: r["iteration_time_s"] for r in rows
            if r["network"] == "mine" and r["network.algorithm"] == "ring"}
    hier = {r["schedule"]: r["iteration_time_s"] for r in rows
            if r["network"] == "mine" and r["network.algorithm"] == "hierarchical"}
    assert ring != hier  # the algorithm is applied, not just recorded


def test_the_command_line_builds_the_same_cluster(capsys: pytest.CaptureFixture[str],
                                                  folder: Path) -> None:
    t = folder / "t.csv"
    rc, out, err = run(capsys, "simulate", "--trace", t, "--network", "10GbE", "--workers", 4,
                       "--scheduler", "dear", "--stragglers", 1, "--straggler-slowdown", 2,
                       "--jitter-cv", 0.1, "--seed", 5, "--stall", "0:3:4", "--json")
    assert rc == 0, err
    got = json.loads(out)
    cl = Cluster.build(4, stragglers=1, straggler_slowdown=2, jitter_cv=0.1, seed=5,
                       stalls=[Stall(0, 3, 4e-3)])
    want = dearsim.simulate(t, "10GbE", cl, "dear")
    assert got["iteration_time_s"] == want.iteration_time_s
    assert got["iteration_p99_s"] == want.iteration_p99_s
    assert got["worker_wait_s"] == list(want.worker_wait_s) and len(got["worker_wait_s"]) == 4
    rc, out, err = run(capsys, "simulate", "--trace", t, "--network", "10GbE", "--workers", 4,
                       "--scheduler", "dear", "--slowdown", "1,1,1.5,2", "--engine", "fast",
                       "--json")
    assert rc == 0, err
    want = dearsim.simulate(t, "10GbE", Cluster(4, (1.0, 1.0, 1.5, 2.0)), "dear")
    assert math.isclose(json.loads(out)["iteration_time_s"], want.iteration_time_s,
                        rel_tol=1e-9)
    # a topology by name, with the other algorithm
    rc, out, err = run(capsys, "compare", "--trace", t, "--network", "dear-cluster-10GbE",
                       "--workers", 8, "--algorithm", "ring", "--json")
    assert rc == 0, err
    ring = {r["scheduler"]: r["iteration_time_s"] for r in json.loads(out)}
    want = dearsim.simulate(t, load_topology("dear-cluster-10GbE", "ring"), 8, "ddp")
    assert ring["ddp"] == want.iteration_time_s


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--stall", "0:3"], "--stall expects WORKER:EVERY:MS[:OFFSET]"),
        (["--stall", "7:3:1"], "--stall: stall of worker 7: there are only 4 workers"),
        (["--stragglers", "9"], "--stragglers: 9 stragglers among 4 workers"),
        (["--slowdown", "1,2"], "--slowdown has 2 values for --workers 4"),
        (["--slowdown", "1,x,1,1"], "--slowdown expects numbers"),
        (["--jitter-cv", "-1"], "--jitter-cv: jitter cv must be"),
        (["--jitter-cv", "0.1", "--seed", "-1"], "--seed: jitter seed must be"),
        (["--stragglers", "1", "--straggler-slowdown", "0"], "--straggler-slowdown: "),
        (["--algorithm", "ring"], "--algorithm applies to hierarchical networks"),
        (["--engine", "warp"], "engine"),
    ],
)
def test_bad_cluster_options_get_one_line(capsys: pytest.CaptureFixture[str], folder: Path,
                                          args: list[str], needle: str) -> None:
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 4, "--scheduler", "wfbp", *args)
    assert needle in one_error_line(rc, out, err)


def test_a_sweep_plots_the_configured_metric(folder: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    body = ("networks: [10GbE]\nworkers: 4\nschedules: [wfbp, dear]\niterations: 6\n"
            "cluster: {stragglers: 1}\nsweep:\n  grid:\n    cluster.straggler_slowdown: "
            "[1, 2]\nplot: {x: cluster.straggler_slowdown, y: iteration_p99_s}\n")
    path = config(folder, body)
    rc, out, err = run(capsys, "sweep", path, "--out", folder / "o", "--jobs", 1)
    assert rc == 0, err
    assert (folder / "o" / "iteration_p99.png").stat().st_size > 0
    assert (folder / "o" / "iteration_p99.svg").exists()


def _doc_table(heading: str) -> dict[str, list[float]]:
    """The first table after ``heading`` in docs/clusters.md, as schedule -> numbers."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "clusters.md").read_text()
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| schedule"))
    out = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = [float(c) for c in cells[1:]]
    return out


def test_the_stragglers_table_in_the_docs_is_what_the_shipped_config_computes() -> None:
    loaded = load_config(Path(__file__).resolve().parent.parent / "configs" / "stragglers.yaml")
    table_ = _doc_table("### `configs/stragglers.yaml`")
    assert set(table_) == {"wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp"}
    checked = 0
    for r in loaded.iter_runs():
        if (r.trace, r.network["label"]) == ("resnet50-b64", "10GbE") and r.schedule in (
                "ddp", "dear", "fsdp"):
            row = execute(r, loaded.traces)
            col = [1.0, 1.1, 1.25, 1.5, 2.0].index(row["cluster.straggler_slowdown"])
            assert round(row["iteration_time_s"] * 1e3, 1) == table_[r.schedule][col]
            checked += 1
    assert checked == 15


def test_the_hierarchy_table_in_the_docs_is_what_the_shipped_config_computes() -> None:
    loaded = load_config(Path(__file__).resolve().parent.parent / "configs" / "hierarchy.yaml")
    table_ = _doc_table("### `configs/hierarchy.yaml`")
    cols = [("dear-cluster-10GbE", "ring"), ("dear-cluster-10GbE", "hierarchical"),
            ("dear-cluster-100GbIB", "ring"), ("dear-cluster-100GbIB", "hierarchical"),
            ("h100-nvlink-400GbIB", "ring"), ("h100-nvlink-400GbIB", "hierarchical")]
    checked = 0
    for r in loaded.iter_runs():
        if r.workers == 64 and r.schedule in ("wfbp", "dear", "fsdp"):
            row = execute(r, loaded.traces)
            col = cols.index((row["network"], row["network.algorithm"]))
            assert round(row["iteration_time_s"] * 1e3, 1) == table_[r.schedule][col]
            checked += 1
    assert checked == 18


def test_interference_from_configs_and_the_command_line(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = ("networks: [10GbE]\nworkers: [4]\nschedules: [wfbp, dear]\n"
            "sweep:\n  grid:\n    cluster.interference: [0.0, 0.5]\n")
    rows = _rows(folder, body)
    trace = load_trace(folder / "t.csv")
    for row in rows:
        x = row["cluster.interference"]
        want = dearsim.simulate(trace, "10GbE", Cluster.build(4, interference=x),
                                row["scheduler"])
        assert row["iteration_time_s"] == want.iteration_time_s
    by = {(r["schedule"], r["cluster.interference"]): r["iteration_time_s"] for r in rows}
    assert by[("wfbp", 0.5)] > by[("wfbp", 0.0)]  # the backward pass overlaps all-reduces
    assert rows[0]["run_hash"] == load_config(config(
        folder, "networks: [10GbE]\nworkers: [4]\nschedules: [wfbp, dear]\n", "p.yaml"
    )).runs[0].run_hash  # interference 0 is identical workers
    bad = config(folder, "networks: [10GbE]\nworkers: [4]\nengine: fast\n"
                         "cluster: {interference: 0.2}\n", "bad.yaml")
    with pytest.raises(DearsimError, match=r"bad.yaml:5: cluster.interference: interference "
                                           r"needs engine: simpy"):
        load_config(bad)
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 4, "--scheduler", "wfbp", "--interference", 0.5, "--json")
    assert rc == 0, err
    assert json.loads(out)["iteration_time_s"] == by[("wfbp", 0.5)]


def test_a_searched_schedule_searches_on_the_runs_cluster(folder: Path) -> None:
    from dearsim.search import search

    body = ("networks: [10GbE]\nworkers: [4]\niterations: 8\nschedules: "
            "[{name: ddp, label: ddp-opt, search: {method: optimal}}]\n"
            "cluster: {stragglers: 1, straggler_slowdown: 3.0}\n")
    (row,) = _rows(folder, body)
    assert row["status"] == "ok", row["error"]
    trace = load_trace(folder / "t.csv")
    cl = Cluster.build(4, stragglers=1, straggler_slowdown=3.0)
    found = search(trace, "10GbE", cl, "ddp", "optimal", iterations=8, warmup=2,
                   references=False)
    assert json.loads(row["options"]) == dict(found.options)
    assert row["iteration_time_s"] == dearsim.simulate(trace, "10GbE", cl, "ddp",
                                                       dict(found.options),
                                                       iterations=8).iteration_time_s
    bad = config(folder, "networks: [10GbE]\nworkers: [4]\nschedules: "
                         "[{name: ddp, search: {method: optimal}}]\n"
                         "cluster: {interference: 0.3}\n", "bad.yaml")
    with pytest.raises(DearsimError, match=r"bad.yaml:4: schedules\[0\]: a searched schedule "
                                           r"searches on the fast evaluator"):
        load_config(bad)


def test_an_unknown_algorithm_gets_one_line(capsys: pytest.CaptureFixture[str],
                                            folder: Path) -> None:
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network",
                       "dear-cluster-10GbE", "--workers", 8, "--scheduler", "wfbp",
                       "--algorithm", "tree")
    line = one_error_line(rc, out, err)
    assert "--algorithm: network dear-cluster-10GbE: algorithm must be ring or hierarchical, " \
           "got 'tree'" in line


def test_the_interference_table_in_the_docs_is_what_the_shipped_config_computes() -> None:
    loaded = load_config(Path(__file__).resolve().parent.parent / "configs" /
                         "interference.yaml")
    table_ = _doc_table("### `configs/interference.yaml`")
    assert set(table_) == {"wfbp", "ddp", "mgwfbp", "dear", "fsdp"}
    cols = [(x, y) for x in (0.0, 0.19, 0.4) for y in (0.0, 0.5, 1.0)]
    got: dict[tuple[str, str, float, float], float] = {}
    for r in loaded.iter_runs():
        row = execute(r, loaded.traces)
        key = (r.trace, r.schedule, row["cluster.interference"],
               row["cluster.comm_interference"])
        got[key] = round(row["iteration_time_s"] * 1e3, 1)
    assert len(got) == 2 * 5 * 9
    for sched, vals in table_.items():
        assert vals == [got[("resnet50-b64", sched, x, y)] for x, y in cols]
    bert = {k[1:]: v for k, v in got.items() if k[0] == "bert-base-b64-s64"}
    text = (Path(__file__).resolve().parent.parent / "docs" / "clusters.md").read_text()
    flat = " ".join(text.split())
    lead0 = bert[("ddp", 0.0, 0.0)] / bert[("dear", 0.0, 0.0)] - 1
    lead1 = bert[("ddp", 0.4, 1.0)] / bert[("dear", 0.4, 1.0)] - 1
    assert (f"DeAR's {lead0 * 100:.1f} % lead over DDP ({bert[('dear', 0.0, 0.0)]} against "
            f"{bert[('ddp', 0.0, 0.0)]} ms) shrinks to {lead1 * 100:.1f} %") in flat
