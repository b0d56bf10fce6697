"""Communication slowed by compute, the cluster's ``comm_interference`` y (docs/model.md 2.6).

* hand-worked timelines: an all-reduce under a backward op (with and without compute slowed
  too), DeAR's collectives under the backward and forward passes, a collective slowed by a
  slow worker's compute while the fast one waits;
* the two-way path run with y = 0 against the one-way path (``interference`` only), for
  every schedule and cluster: two independent implementations of the same rule;
* an independent fluid simulation of the WFBP family on workers of any speeds, written from
  the rule;
* bounds (each collective lasts between its time alone and ``1 + y`` times it; compute as
  with ``interference``); ``p = 1`` changes nothing;
* the fast evaluator refuses it; ``Cluster`` checks it and leaves it out of ``spec()`` at 0.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from interference_helpers import (
    EVERY,
    ITERS,
    NET,
    ONE_AR,
    fluid_wfbp,
    ms,
    ops_of,
    ring_allreduce,
    sim,
    span,
    wfbp_messages,
)
from strategies import FEW, close, clusters, geq, networks, options_for, traces, worker_counts

import dearsim
from dearsim import engine, fast, schedules
from dearsim.cluster import Cluster
from dearsim.engine import BWD, FWD
from dearsim.errors import DearsimError, ParamError

MS = 1e-3


# --------------------------------------------------------------------------- by hand

# ONE_AR: f = [1, 1], b = [2, 1] ms, layer 1 has 1.5e6 B: its all-reduce takes 1.5 ms alone.


@pytest.mark.parametrize(
    ("x", "y", "b0_end", "ar_end", "period"),
    [
        # AR 3-4.5 under b0 3-5: hidden
        (0.0, 0.0, 5.0, 4.5, 5.0),
        # y = 1: 2 ms under b0 at rate 1/2 = 1 ms of work, then 0.5 ms alone: AR ends 5.5
        (0.0, 1.0, 5.0, 5.5, 5.5),
        # y = 3: 2 ms at rate 1/4 = 0.5 ms of work, then 1 ms: 6
        (0.0, 3.0, 5.0, 6.0, 6.0),
        # x = y = 1: both at half speed from 3; the AR's 1.5 ms of work ends at 6, when b0
        # has done 1.5 of its 2 ms; its last 0.5 ms at full speed: 6.5
        (1.0, 1.0, 6.5, 6.0, 6.5),
        # x = 1, y = 0.5: the AR runs 3-5.25 (rate 2/3); b0 does 1.125 ms by then, 0.875
        # more: 6.125
        (1.0, 0.5, 6.125, 5.25, 6.125),
    ],
)
def test_allreduce_under_a_backward_op(x, y, b0_end, ar_end, period):
    r = sim(ONE_AR, NET, Cluster(2, interference=x, comm_interference=y), record_ops=True)
    f0, f1, b1, b0 = ops_of(r)[:4]
    assert span(f0) == (FWD, 0, 0, 1)
    assert span(f1) == (FWD, 1, 1, 2)
    assert span(b1) == (BWD, 1, 2, 3)
    assert span(b0) == (BWD, 0, 3, b0_end)
    ar = r.raw.collectives[0]
    assert ms(ar.posted, ar.start, ar.end) == (3, 3, ar_end)
    assert ms(r.iteration_time_s) == period
    # the compute busy time: 2 + 1 + b0's length
    assert ms(r.compute_s) == 3 + (b0_end - 3)
    # the link's busy time is the AR's length, slowed
    assert ms(r.comm_s) == ar_end - 3


@pytest.mark.parametrize("prefetch", ["chain", "next"])
def test_dear_collectives_under_both_passes(prefetch):
    # One group per layer, f = b = [1, 1] ms, 2 MB each: RS and AG 1 ms alone; y = 1.
    # It 0: f 0-2, b1 2-3, RS(G1) from 3 under b0 3-4 (0.5 ms of work), alone 4-4.5;
    # RS(G0) 4.5-5.5; the barrier at 5.5; AG(G0) 5.5-6.5 with nothing computing; G0 opens
    # at 6.5 and AG(G1) runs under f0 6.5-7.5 (0.5 ms of work), alone 7.5-8; f1 8-9, b1
    # 9-10, b0 10-11: 7 ms a step (6 without it, the docs' example A).
    tr = dearsim.Trace.from_layers([1 * MS, 1 * MS], [1 * MS, 1 * MS], [2_000_000, 2_000_000])
    opts = {"threshold_mb": None, "prefetch": prefetch}
    r = sim(tr, NET, Cluster(2, comm_interference=1.0), "dear", opts, record_ops=True)
    got = [(c.op.value, *ms(c.start, c.end)) for c in r.raw.collectives[:6]]
    assert got == [
        ("reduce_scatter", 3, 4.5), ("reduce_scatter", 4.5, 5.5),
        ("all_gather", 5.5, 6.5), ("all_gather", 6.5, 8),
        ("reduce_scatter", 10, 11.5), ("reduce_scatter", 11.5, 12.5),
    ]
    it1 = {(o.kind, o.layer): span(o) for o in ops_of(r) if o.iteration == 1}
    assert it1[(FWD, 0)] == (FWD, 0, 6.5, 7.5)
    assert it1[(FWD, 1)] == (FWD, 1, 8, 9)
    assert ms(*r.raw.bp_end[:3]) == (4, 11, 18)
    assert ms(r.iteration_time_s) == 7
    assert ms(sim(tr, NET, 2, "dear", opts).iteration_time_s) == 6


def test_a_slow_worker_computing_slows_the_collective():
    # Rank 1 twice as slow; f = [1, 1], b = [4, 1], layer 1's AR 1.5 ms alone; y = 1.
    # Rank 0: f 0-2, b1 2-3, b0 3-7. Rank 1: f 0-4, b1 4-6, posts at 6: the AR starts at 6,
    # while rank 1's b0 runs 6-14: at half speed it ends at 9 (rank 0 finished computing at
    # 7, but rank 1 computes all along). Rank 0 starts iteration 1 at 9 (f 9-11, b1 11-12,
    # b0 12-16); rank 1 at 14, posts at 20: AR 20-23 under its b0 20-28.
    tr = dearsim.Trace.from_layers([1 * MS, 1 * MS], [4 * MS, 1 * MS], [0, 1_500_000])
    r = sim(tr, NET, Cluster(2, slowdown=(1.0, 2.0), comm_interference=1.0), record_ops=True)
    b0 = [span(o) for o in r.raw.ops if (o.kind, o.layer) == (BWD, 0) and o.iteration < 2]
    assert sorted(b0) == [(BWD, 0, 3, 7), (BWD, 0, 6, 14), (BWD, 0, 12, 16), (BWD, 0, 20, 28)]
    ars = r.raw.collectives
    assert [ms(a.start, a.end) for a in ars[:2]] == [(6, 9), (20, 23)]
    assert ms(*r.raw.bp_end[:2]) == (14, 28)
    assert ms(r.iteration_time_s) == 14


def test_engine_run_directly():
    sched = schedules.create("wfbp", {})
    raw = engine.run(sched, ONE_AR, NET.costs(2), Cluster(2, comm_interference=1.0), 4)
    # 5 ms of compute, the AR ends at 5.5: the next iteration starts 0.5 ms later each time
    assert ms(*raw.bp_end) == (5, 10.5, 16, 21.5)


# --------------------------------------------------------------------------- two paths


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), cluster=clusters(), x=st.floats(0.0, 3.0),
       data=st.data())
def test_two_way_path_with_y_zero_is_the_one_way_path(name, trace, net, cluster, x, data,
                                                      monkeypatch_module):
    # The one-way path knows every collective's end at its launch and re-plans compute
    # stretches (engine._Stretch); the two-way path advances every job between changes of
    # rate (engine._Fluid). With y = 0 both follow the same rule.
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    cl = Cluster(cluster.workers, cluster.slowdown, interference=x)
    one = sim(trace, net, cl, name, opts, record_ops=True)
    monkeypatch_module.setattr(engine, "_FLUID_ALWAYS", True)
    try:
        two = sim(trace, net, cl, name, opts, record_ops=True)
    finally:
        monkeypatch_module.setattr(engine, "_FLUID_ALWAYS", False)
    for i, (a, b) in enumerate(zip(one.raw.bp_end, two.raw.bp_end)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"backward pass {i}: {a} {b}"
    assert len(one.raw.collectives) == len(two.raw.collectives)
    for a, b in zip(one.raw.collectives, two.raw.collectives):
        assert (a.op, a.nbytes, a.layers, a.iteration, a.tag) == (
            b.op, b.nbytes, b.layers, b.iteration, b.tag)
        for u, v in zip(a[5:], b[5:]):  # posted, start, end
            assert math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12), (a, b)
    assert len(one.raw.ops) == len(two.raw.ops)
    for a, b in zip(sorted(one.raw.ops), sorted(two.raw.ops)):
        assert a[:4] == b[:4]
        assert math.isclose(a.start, b.start, rel_tol=1e-9, abs_tol=1e-12), (a, b)
        assert math.isclose(a.end, b.end, rel_tol=1e-9, abs_tol=1e-12), (a, b)
    for a, b in zip(one.raw.busy, two.raw.busy):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


# --------------------------------------------------------------------------- an oracle
# (interference_helpers.fluid_wfbp: a fluid simulation of the WFBP family from the rule)


@FEW
@given(trace=traces(with_grads=True, positive_times=True), net=networks(),
       cluster=clusters(max_workers=4), x=st.floats(0.0, 3.0), y=st.floats(0.01, 4.0),
       data=st.data())
def test_wfbp_family_against_a_fluid_simulation(trace, net, cluster, x, y, data):
    p = cluster.workers
    name, opts, messages = wfbp_messages(trace, data)
    cl = Cluster(p, cluster.slowdown, interference=x, comm_interference=y)
    r = sim(trace, net, cl, name, opts, record_ops=True)
    want = fluid_wfbp(trace, messages, ring_allreduce(net, p), cluster.slowdown, x, ITERS, y)
    for g, (_, ranks) in enumerate(cl.groups()):
        got = [o.end for o in ops_of(r, g) if (o.kind, o.layer) == (BWD, 0)]
        for i, (a, b) in enumerate(zip(got, want[ranks[0]])):
            assert math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12), (
                f"rank {ranks[0]}: backward pass {i} ends at {a}, the fluid simulation "
                f"says {b}")


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), cluster=clusters(), x=st.floats(0.0, 3.0),
       y=st.floats(0.01, 4.0), data=st.data())
def test_bounds(name, trace, net, cluster, x, y, data):
    # A collective runs at a rate between 1/(1+y) and 1, an op between 1/(1+x) and 1: so
    # every collective lasts between its time alone and (1 + y) times it, an iteration's
    # compute between the trace's and (1 + x) times it (per worker class).
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    cl = Cluster(cluster.workers, cluster.slowdown, interference=x, comm_interference=y)
    r = sim(trace, net, cl, name, opts)
    costs = net.costs(cluster.workers)
    for c in r.raw.collectives:
        alone = costs.time(c.op, c.nbytes)
        assert geq(c.start, c.posted)
        assert geq(c.end - c.start, alone), c
        assert geq((1 + y) * alone, c.end - c.start), c
    for c0, c1 in zip(r.raw.collectives, r.raw.collectives[1:]):  # one at a time
        assert geq(c1.start, c0.end)
    slow = cluster.slowdown or (1.0,) * cluster.workers
    assert geq(r.compute_s, trace.compute_time * min(slow))
    assert geq((1 + x) * trace.compute_time * max(slow), r.compute_s)
    assert geq(r.iteration_time_s, r.compute_s)


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), y=st.floats(0.01, 5.0), data=st.data())
def test_one_worker_nothing_in_flight_nothing_changes(name, trace, net, y, data):
    # p = 1: every collective costs 0; the two-way path runs and gives today's numbers.
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    plain = sim(trace, net, 1, name, opts)
    slowed = sim(trace, net, Cluster(1, interference=0.5, comm_interference=y), name, opts)
    for a, b in zip(plain.raw.bp_end, slowed.raw.bp_end):
        assert close(a, b)
    assert close(plain.iteration_time_s, slowed.iteration_time_s)
    assert close(plain.compute_s, slowed.compute_s)


@pytest.mark.parametrize("name", ["wfbp", "ddp", "dear"])
@FEW
@given(trace=traces(), net=networks(), p=worker_counts(2, 16), y=st.floats(0.01, 3.0),
       data=st.data())
def test_between_a_free_link_and_a_slower_network(name, trace, net, p, y, data):
    # A theorem for identical workers, x = 0 and a fixed grouping and posting order: every
    # time in the run is built by + and max from the durations (docs/model.md 2.6), compute
    # ops keep theirs, and a collective's lies between its time alone and (1 + y) times
    # it. So every backward pass ends no earlier than with y = 0 and no later than on a
    # network (1 + y) times slower.
    opts = data.draw(options_for(name), label="options")
    none = sim(trace, net, p, name, opts)
    slowed = sim(trace, net, Cluster(p, comm_interference=y), name, opts)
    slower = dearsim.AlphaBeta(net.alpha * (1 + y), net.beta * (1 + y), net.gamma * (1 + y))
    worst = sim(trace, slower, p, name, opts)
    for i, (a, b, c) in enumerate(zip(none.raw.bp_end, slowed.raw.bp_end, worst.raw.bp_end)):
        assert geq(b, a), f"backward pass {i} ends earlier with y: {b} < {a}"
        assert geq(c, b), f"backward pass {i} ends later than on a slower network: {b} > {c}"
    assert geq(slowed.iteration_time_s, none.iteration_time_s)
    assert geq(worst.iteration_time_s, slowed.iteration_time_s)


# --------------------------------------------------------------------------- the API


def test_the_fast_evaluator_refuses_it():
    cl = Cluster(4, comm_interference=0.3)
    sched = schedules.create("wfbp", {})
    with pytest.raises(ParamError, match="comm_interference: needs engine='simpy'"):
        fast.run(sched, ONE_AR, NET.costs(4), cl, 5)
    with pytest.raises(ParamError, match="needs engine='simpy'"):
        dearsim.simulate(ONE_AR, NET, cl, "wfbp", engine="fast")


@pytest.mark.parametrize("bad", [-0.1, math.inf, math.nan, True, "0.5", None])
def test_cluster_checks_it(bad):
    with pytest.raises(DearsimError, match="comm_interference must be a finite number >= 0"):
        Cluster(2, comm_interference=bad)
    with pytest.raises(DearsimError, match="comm_interference"):
        Cluster.build(2, comm_interference=bad)


def test_build_and_spec():
    cl = Cluster.build(4, interference=0.25, comm_interference=0.5)
    assert (cl.interference, cl.comm_interference) == (0.25, 0.5)
    assert cl.spec()["comm_interference"] == 0.5
    assert isinstance(Cluster(3, comm_interference=1).comm_interference, float)
    # 0 is left out: the description (and the run hashes made from it) of before
    assert Cluster(4, comm_interference=0).spec() == Cluster(4).spec() == {"workers": 4}
    assert Cluster(4, comm_interference=0.5).groups() == Cluster(4).groups()


# --------------------------------------------------------------------------- configs, CLI


def test_from_configs_and_the_command_line(tmp_path, capsys):
    import json

    from cli_helpers import run
    from sweep_helpers import config, with_trace

    from dearsim.config import load_config
    from dearsim.sweep import execute
    from dearsim.trace import load_trace

    folder = with_trace(tmp_path)
    body = ("networks: [10GbE]\nworkers: [4]\nschedules: [wfbp, dear]\n"
            "sweep:\n  grid:\n    cluster.comm_interference: [0.0, 0.5]\n")
    loaded = load_config(config(folder, body, "c.yaml"))
    rows = [execute(r, loaded.traces) for r in loaded.runs]
    trace = load_trace(folder / "t.csv")
    for row in rows:
        y = row["cluster.comm_interference"]
        want = dearsim.simulate(trace, "10GbE", Cluster.build(4, comm_interference=y),
                                row["scheduler"])
        assert row["iteration_time_s"] == want.iteration_time_s
    by = {(r["schedule"], r["cluster.comm_interference"]): r["iteration_time_s"] for r in rows}
    assert by[("wfbp", 0.5)] > by[("wfbp", 0.0)]  # all-reduces under the backward pass
    # 0 is identical workers: the run hash of before
    plain = load_config(config(folder, "networks: [10GbE]\nworkers: [4]\n"
                                       "schedules: [wfbp, dear]\n", "p.yaml"))
    assert rows[0]["run_hash"] == plain.runs[0].run_hash
    bad = config(folder, "networks: [10GbE]\nworkers: [4]\nengine: fast\n"
                         "cluster: {comm_interference: 0.2}\n", "bad.yaml")
    with pytest.raises(DearsimError, match=r"bad.yaml:5: cluster.comm_interference: "
                                           r"comm_interference needs engine: simpy"):
        load_config(bad)
    searched = config(folder, "networks: [10GbE]\nworkers: [4]\nschedules: "
                              "[{name: ddp, search: {method: optimal}}]\n"
                              "cluster: {comm_interference: 0.3}\n", "searched.yaml")
    with pytest.raises(DearsimError, match=r"searched.yaml:4: schedules\[0\]: a searched "
                                           r"schedule searches on the fast evaluator, which "
                                           r"does not model cluster.comm_interference"):
        load_config(searched)
    neg = config(folder, "networks: [10GbE]\nworkers: [4]\n"
                         "cluster: {comm_interference: -1}\n", "neg.yaml")
    with pytest.raises(DearsimError, match=r"neg.yaml.*comm_interference"):
        load_config(neg)
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 4, "--scheduler", "wfbp", "--comm-interference", 0.5,
                       "--json")
    assert rc == 0, err
    assert json.loads(out)["iteration_time_s"] == by[("wfbp", 0.5)]
    rc, out, err = run(capsys, "simulate", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 4, "--scheduler", "dear", "--comm-interference", -2)
    assert rc == 2 and err.strip().splitlines() == [
        "dearsim: error: --comm-interference: comm_interference must be a finite number >= 0,"
        " got -2.0"]


# --------------------------------------------------------------------------- calibration


def test_parameter_from_the_collectives_beside_compute():
    from dearsim.collect.interference import cluster_comm_interference

    y, how = cluster_comm_interference({"comm_slowdown": 1.75})
    assert math.isclose(y, 0.75) and "y = 0.7500" in how
    # no slower (or faster, within noise) beside compute: 0
    assert cluster_comm_interference({"comm_slowdown": 0.9})[0] == 0.0
    assert cluster_comm_interference({"comm_slowdown": 1.0})[0] == 0.0
    # a file written before it was measured
    y, how = cluster_comm_interference({"comm_compute_slowdown": 1.2})
    assert y == 0.0 and "not measured" in how


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, "fast", [1]])
def test_parameter_from_bad_terms_is_one_clear_error(bad):
    from dearsim.collect.interference import cluster_comm_interference

    with pytest.raises(DearsimError, match="comm_slowdown must be a positive number"):
        cluster_comm_interference({"comm_slowdown": bad})


def test_validate_predicts_with_both_interferences(tmp_path):
    from dearsim.collect import validate

    result = {"world": 2, "rows": [
        {"schedule": "wfbp", "setting": "per-tensor", "options": {}, "measured_s": 6e-3},
    ]}
    terms = {"compute_slowdown": 1.0, "comm_compute_slowdown": 2.0, "comm_busy_fraction": 1.0,
             "comm_slowdown": 2.0, "ddp_overhead_s": 0.0, "optimizer_overhead_s": 0.0}
    (row,) = validate.predict(result, ONE_AR, NET, terms)
    # x = y = 1: the hand-worked 6.5 ms above; x alone: 5.75 ms (docs/model.md 2.6)
    assert (row["interference"], row["comm_interference"]) == (1.0, 1.0)
    assert math.isclose(row["predicted_x_ms"], 5.75)
    assert math.isclose(row["predicted_xy_ms"], 6.5)
    assert math.isclose(row["predicted_cal_xy_ms"], 6.5)
    assert math.isclose(row["error_xy_pct"], (6.5 / 6 - 1) * 100)
    # terms without comm_slowdown (written before it was measured): y = 0, x's numbers
    old = {k: v for k, v in terms.items() if k != "comm_slowdown"}
    (row,) = validate.predict(result, ONE_AR, NET, old)
    assert row["comm_interference"] == 0.0
    assert row["predicted_xy_ms"] == row["predicted_x_ms"]


def test_validate_predicts_only_the_stems_asked_for():
    from dearsim.collect import validate

    result = {"world": 2, "rows": [
        {"schedule": "wfbp", "setting": "per-tensor", "options": {}, "measured_s": 6e-3},
        {"schedule": "ddp", "setting": "default", "options": {}, "measured_s": 5e-3},
    ]}
    terms = {"compute_slowdown": 1.1, "comm_compute_slowdown": 2.0, "comm_busy_fraction": 1.0,
             "comm_slowdown": 2.0, "ddp_overhead_s": 1e-4, "optimizer_overhead_s": 0.0}
    full = validate.predict(result, ONE_AR, NET, terms)
    some = validate.predict(result, ONE_AR, NET, terms, stems={"cal_xy_", "serial_cal_"})
    for a, b in zip(full, some):
        got = {k for k in b if k.startswith(("predicted_", "error_"))}
        assert got == {"predicted_cal_xy_ms", "error_cal_xy_pct", "predicted_serial_cal_ms",
                       "error_serial_cal_pct"}
        assert all(b[k] == a[k] for k in got)
        assert b["measured_ms"] == a["measured_ms"]
