"""Compute slowed by communication, the cluster's ``interference`` (docs/model.md 2.6).

* hand-worked timelines on the SimPy engine: an op that overlaps an all-reduce for part of
  its run, a launch in the middle of another worker's op, DeAR's forward ops under its
  all-gathers;
* ``interference = 0`` is the run of today, bit for bit, for every schedule and cluster;
* ``p = 1``: nothing is ever in flight, so interference changes nothing, bit for bit;
* bounds and monotonicity (which are theorems is said at each test);
* an independent oracle of the WFBP family with interference, written from the rule;
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
from strategies import (
    ALL_SCHEDULES,
    FEW,
    close,
    clusters,
    geq,
    networks,
    options_for,
    traces,
    worker_counts,
)

import dearsim
from dearsim import engine, fast, schedules
from dearsim.cluster import Cluster, Jitter, Stall
from dearsim.engine import BWD, FWD
from dearsim.errors import DearsimError, ParamError

MS = 1e-3


# --------------------------------------------------------------------------- by hand

# ONE_AR: f = [1, 1], b = [2, 1] ms, layer 1 has 1.5e6 B: its all-reduce takes 1.5 ms.


@pytest.mark.parametrize(
    ("x", "b0_end", "period"),
    [
        # b0 3-5 under AR 3-4.5: hidden, 5 ms a step
        (0.0, 5.0, 5.0),
        # 1.5 ms busy at rate 1/1.5 = 1 ms of work, then 1 ms at full speed: 4.5 + 1 = 5.5
        (0.5, 5.5, 5.5),
        # 1.5 ms busy at rate 1/2 = 0.75 ms of work, then 1.25 ms: 4.5 + 1.25 = 5.75
        (1.0, 5.75, 5.75),
        # 1.5 ms busy at rate 1/4 = 0.375 ms, then 1.625 ms: 4.5 + 1.625 = 6.125
        (3.0, 6.125, 6.125),
    ],
)
def test_backward_op_partly_under_an_allreduce(x, b0_end, period):
    r = sim(ONE_AR, NET, Cluster(2, interference=x), record_ops=True)
    ops = ops_of(r)
    f0, f1, b1, b0 = ops[:4]
    assert span(f0) == (FWD, 0, 0, 1)
    assert span(f1) == (FWD, 1, 1, 2)
    assert span(b1) == (BWD, 1, 2, 3)
    assert span(b0) == (BWD, 0, 3, b0_end)
    ar = r.raw.collectives[0]
    assert ms(ar.start, ar.end) == (3, 4.5)  # communication is not slowed
    assert ms(r.raw.bp_end[0]) == b0_end
    assert ms(r.iteration_time_s) == period
    # the compute busy time counts the slowed op: 2 + 1 + (b0's length)
    assert ms(r.compute_s) == 3 + (b0_end - 3)
    # every op of every iteration: forward ops are never under communication here
    for o in ops:
        want = (ONE_AR.fwd if o.kind == FWD else ONE_AR.bwd)[o.layer]
        if (o.kind, o.layer) == (BWD, 0):
            want = (b0_end - 3) * MS
        assert math.isclose(o.end - o.start, want, rel_tol=1e-9), o


def test_op_that_ends_while_the_link_is_still_busy():
    # b = [0.5, 1]: b0 3-? entirely under AR 3-4.5. x = 1: it lasts 0.5 * 2 = 1 ms, ends at
    # 4; the barrier waits for the AR to 4.5; every iteration 2 + 1 + 1.5 = 4.5 ms.
    tr = dearsim.Trace.from_layers([1 * MS, 1 * MS], [0.5 * MS, 1 * MS], [0, 1_500_000])
    r = sim(tr, NET, Cluster(2, interference=1.0), record_ops=True)
    assert span(ops_of(r)[3]) == (BWD, 0, 3, 4)
    assert ms(*r.raw.bp_end[:2]) == (4, 8.5)
    assert ms(r.iteration_time_s) == 4.5
    assert ms(r.compute_s) == 4


def test_launch_in_the_middle_of_another_workers_op():
    # Two workers, rank 1 twice as slow; f = [1, 1], b = [4, 1], layer 1's AR 1.5 ms, x = 1.
    # Iteration 0: rank 0 f 0-2, b1 2-3, b0 from 3 (4 ms of work). Rank 1 f 0-4, b1 4-6,
    # posts at 6: the AR starts at 6 (the last poster) and runs 6-7.5, in the middle of
    # rank 0's b0, which has done 3 ms by then: at rate 1/2 it does 0.75 ms of work by 7.5,
    # its last 0.25 ms at full speed: it ends at 7.75.
    # Rank 1's b0 (8 ms of work) starts at 6: 0.75 ms done by 7.5, 7.25 ms more: 14.75.
    # Iteration 1: rank 0 f 7.75-9.75, b1 -10.75, b0 10.75-14.75 at full speed (the AR only
    # starts when rank 1 posts at 14.75 + 4 + 2 = 20.75); rank 1's b0 ends at
    # 20.75 + 1.5 + 7.25 = 29.5.
    tr = dearsim.Trace.from_layers([1 * MS, 1 * MS], [4 * MS, 1 * MS], [0, 1_500_000])
    cl = Cluster(2, slowdown=(1.0, 2.0), interference=1.0)
    r = sim(tr, NET, cl, record_ops=True)
    fast0 = ops_of(r, 0)
    assert fast0[3].iteration == 0 and span(fast0[3]) == (BWD, 0, 3, 7.75)
    assert fast0[7].iteration == 1 and span(fast0[7]) == (BWD, 0, 10.75, 14.75)
    ars = r.raw.collectives
    assert ms(ars[0].start, ars[0].end) == (6, 7.5)
    assert ms(ars[1].start, ars[1].end) == (20.75, 22.25)
    assert ms(*r.raw.bp_end[:2]) == (14.75, 29.5)
    assert ms(r.iteration_time_s) == 14.75
    # without interference: rank 0's b0 3-7, rank 1's b0 6-14, then 14 ms a step
    r0 = sim(tr, NET, Cluster(2, slowdown=(1.0, 2.0)), record_ops=True)
    assert span(ops_of(r0, 0)[3]) == (BWD, 0, 3, 7)
    assert ms(*r0.raw.bp_end[:2]) == (14, 28)


@pytest.mark.parametrize("prefetch", ["chain", "next"])
def test_dear_forward_under_its_all_gathers(prefetch):
    # docs/model.md example A with one group per layer (6 ms a step without interference),
    # x = 1. It 0: f 0-2, b1 2-3, RS(G1) 3-4 under b0 3-?: 0.5 ms of work by 4, 0.5 more:
    # b0 ends 4.5. RS(G0) 4.5-5.5; barrier 5.5; AG(G0) 5.5-6.5; G0 opens at 6.5 with AG(G1)
    # 6.5-7.5 (chain: posted as AG(G0) ends; next: as G0 opens, the same instant): f0 does
    # 0.5 ms by 7.5 and ends at 8; f1 8-9, b1 9-10, RS(G1) 10-11 under b0: b0 ends 11.5.
    # From then on 7 ms a step: 11.5 - 4.5.
    tr = dearsim.Trace.from_layers([1 * MS, 1 * MS], [1 * MS, 1 * MS], [2_000_000, 2_000_000])
    opts = {"threshold_mb": None, "prefetch": prefetch}
    r = sim(tr, NET, Cluster(2, interference=1.0), "dear", opts, record_ops=True)
    ops = ops_of(r)
    f0 = next(o for o in ops if (o.kind, o.layer, o.iteration) == (FWD, 0, 1))
    f1 = next(o for o in ops if (o.kind, o.layer, o.iteration) == (FWD, 1, 1))
    assert span(f0) == (FWD, 0, 6.5, 8)
    assert span(f1) == (FWD, 1, 8, 9)
    assert ms(*r.raw.bp_end[:3]) == (4.5, 11.5, 18.5)
    assert ms(r.iteration_time_s) == 7
    assert ms(sim(tr, NET, 2, "dear", opts).iteration_time_s) == 6


def test_jitter_and_stalls_slow_down_too():
    # the rule applies to the drawn durations, stalls included (a stall is part of f0)
    tr = dearsim.Trace.from_layers([1 * MS, 2 * MS, 1 * MS], [2 * MS, 1 * MS, 3 * MS],
                                   [1_000_000, 0, 3_000_000], [0.1 * MS, 0, 0.2 * MS])
    kw = dict(jitter=Jitter(0.1, 3), stalls=(Stall(1, 2, 0.5 * MS),))
    # (DeAR with one group would overlap nothing: its one all-gather precedes the forward)
    for name, opts in (("wfbp", {}), ("dear", {"threshold_mb": None}), ("bytescheduler", {})):
        base = sim(tr, NET, Cluster(3, **kw), name, opts)
        slowed = sim(tr, NET, Cluster(3, interference=0.7, **kw), name, opts)
        assert all(geq(b, a) for a, b in zip(base.raw.bp_end, slowed.raw.bp_end)), name
        assert slowed.raw.bp_end[-1] > base.raw.bp_end[-1], name


# --------------------------------------------------------------------------- x = 0, p = 1


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), p=worker_counts(2, 16), data=st.data())
def test_zero_interference_is_todays_run_exactly(name, trace, net, p, data):
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    plain = sim(trace, net, p, name, opts, record_ops=True)
    zero = sim(trace, net, Cluster(p, interference=0.0), name, opts, record_ops=True)
    assert zero.raw.bp_end == plain.raw.bp_end
    assert zero.raw.busy == plain.raw.busy
    assert zero.raw.collectives == plain.raw.collectives
    assert zero.raw.ops == plain.raw.ops
    assert zero.to_dict() == plain.to_dict()


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), cluster=clusters(), data=st.data())
def test_zero_interference_is_todays_run_exactly_heterogeneous(name, trace, net, cluster, data):
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    plain = sim(trace, net, cluster, name, opts)
    zero = sim(trace, net, Cluster(cluster.workers, cluster.slowdown, interference=0),
               name, opts)
    assert zero.raw.bp_end == plain.raw.bp_end
    assert zero.raw.busy == plain.raw.busy
    assert zero.to_dict() == plain.to_dict()


@pytest.mark.parametrize("name", EVERY)
@FEW
@given(trace=traces(), net=networks(), x=st.floats(0.01, 5.0), data=st.data())
def test_one_worker_nothing_in_flight_nothing_changes(name, trace, net, x, data):
    # p = 1: every collective costs 0 and is never in flight; the slowed path of the engine
    # runs (x > 0) and must give today's numbers bit for bit.
    opts = data.draw(options_for(name), label="options") if name != "fsdp" else {}
    plain = sim(trace, net, 1, name, opts, record_ops=True)
    slowed = sim(trace, net, Cluster(1, interference=x), name, opts, record_ops=True)
    assert slowed.raw.bp_end == plain.raw.bp_end
    assert slowed.raw.busy == plain.raw.busy
    assert slowed.raw.ops == plain.raw.ops
    assert slowed.to_dict() == plain.to_dict()


# --------------------------------------------------------------------------- bounds


def scaled(cluster: Cluster, factor: float) -> Cluster:
    slow = cluster.slowdown or (1.0,) * cluster.workers
    return Cluster(cluster.workers, tuple(s * factor for s in slow))


@pytest.mark.parametrize("name", ["wfbp", "ddp", "dear"])
@FEW
@given(trace=traces(), net=networks(), cluster=clusters(), x=st.floats(0.01, 3.0),
       data=st.data())
def test_between_no_interference_and_all_compute_slowed(name, trace, net, cluster, x, data):
    # A theorem for schedules with a fixed grouping and posting order, any workers: every
    # time in the run is built by + and max from the op durations (docs/model.md 2.6), and
    # an op's slowed duration lies in [d, d (1 + x)] whenever it runs. So every backward pass
    # ends no earlier than without interference and no later than with every compute op
    # (1 + x) times longer.
    opts = data.draw(options_for(name), label="options")
    none = sim(trace, net, cluster, name, opts)
    slowed = sim(trace, net, Cluster(cluster.workers, cluster.slowdown, interference=x),
                 name, opts)
    worst = sim(trace, net, scaled(cluster, 1 + x), name, opts)
    for i, (a, b, c) in enumerate(zip(none.raw.bp_end, slowed.raw.bp_end, worst.raw.bp_end)):
        assert geq(b, a), f"backward pass {i} ends earlier with interference: {b} < {a}"
        assert geq(c, b), f"backward pass {i} ends later than all compute slowed: {b} > {c}"
    assert geq(slowed.compute_s, none.compute_s)
    assert geq(worst.compute_s, slowed.compute_s)
    assert geq(slowed.iteration_time_s, slowed.compute_s)


@pytest.mark.parametrize("name", ["wfbp", "ddp", "mgwfbp", "dear"])
@FEW
@given(trace=traces(), net=networks(), p=worker_counts(2, 32), xa=st.floats(0.0, 3.0),
       xb=st.floats(0.0, 3.0), data=st.data())
def test_more_interference_never_faster(name, trace, net, p, xa, xb, data):
    # Identical workers, fixed grouping: a theorem. The one compute stream posts at its op
    # boundaries (DeAR's chained all-gathers follow each other with no gap), so while an op
    # runs the link is busy from its start (or not at all) up to some time E: the op ends at
    # s + d + x * min(d, (E - s) / (1 + x)), non-decreasing in s, E and x; by induction every
    # time is. The barrier resets the run, so the period is monotone too. (MG-WFBP's merge
    # rule reads the trace and the network only: its buckets do not depend on x.)
    # Not a theorem for horovod (ticks at absolute times) and bytescheduler (see the
    # anomaly below), as for a slower network (tests/test_properties.py), nor for workers
    # of different speeds: a launch that comes later because a slow worker was slowed can
    # leave a fast worker's op more time at full speed.
    lo, hi = sorted((xa, xb))
    opts = data.draw(options_for(name), label="options")
    a = sim(trace, net, Cluster(p, interference=lo), name, opts)
    b = sim(trace, net, Cluster(p, interference=hi), name, opts)
    for i, (ta, tb) in enumerate(zip(a.raw.bp_end, b.raw.bp_end)):
        assert geq(tb, ta), f"x={hi}: backward pass {i} ends earlier than with x={lo}"
    assert geq(b.iteration_time_s, a.iteration_time_s), (a.iteration_time_s, b.iteration_time_s)
    assert geq(b.compute_s, a.compute_s)


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@FEW
@given(trace=traces(), net=networks(), p=worker_counts(2, 16), x=st.floats(0.01, 3.0),
       data=st.data())
def test_compute_time_bounds(name, trace, net, p, x, data):
    # Each op lasts between d and d (1 + x): so does the compute of an iteration.
    opts = data.draw(options_for(name), label="options")
    r = sim(trace, net, Cluster(p, interference=x), name, opts)
    assert geq(r.compute_s, trace.compute_time)
    assert geq((1 + x) * trace.compute_time, r.compute_s)
    assert geq(r.iteration_time_s, r.compute_s)
    assert close(r.exposed_comm_s, r.iteration_time_s - r.compute_s)


def test_anomaly_bytescheduler_interference_can_shorten_the_run():
    # With x = 0 layer 3's gradient is ready at 12.5 ms, the instant chunk 1 of layer 5
    # ends and gives back its credit: layer 3 (higher priority) is posted before chunk 2 of
    # layer 5. With x = 0.25 layer 3's backward op ran under communication and its gradient
    # comes later, so chunk 2 of layer 5 goes first and layer 2's chunks pass layer 3's. The
    # run settles at 21.1 ms a step instead of 21.5 and its 10th backward pass ends earlier.
    tr = dearsim.Trace.from_layers(
        [3 * MS, 1 * MS, 2 * MS, 1 * MS, 0.5 * MS, 1 * MS],
        [0.5 * MS, 3 * MS, 1 * MS, 1 * MS, 1 * MS, 2 * MS],
        [0, 0, 4_000_000, 500_000, 0, 4_000_000],
    )
    net = dearsim.AlphaBeta(0.0, 2e-9)
    opts = {"partition_bytes": 1_000_000, "credit_bytes": 2_000_000}
    a = sim(tr, net, Cluster(2), "bytescheduler", opts, iterations=10)
    b = sim(tr, net, Cluster(2, interference=0.25), "bytescheduler", opts, iterations=10)
    assert ms(a.iteration_time_s, b.iteration_time_s) == (21.5, 21.1)
    assert ms(a.raw.bp_end[0], b.raw.bp_end[0]) == (17, 18.625)  # at first: later
    assert ms(a.raw.bp_end[-1], b.raw.bp_end[-1]) == (210.5, 208.525)  # in the end: earlier


# --------------------------------------------------------------------------- an oracle


def oracle_wfbp(trace, messages, cost, x, iterations):
    """The WFBP family on identical workers with interference, from the rule: the one
    compute stream posts only between its ops, so while an op runs from ``s`` the link is
    busy from ``s`` until ``free`` (its free time then) and idle after; the op ends at
    ``s + d + x * min(d, (free - s) / (1 + x))``. ``messages``: ``(ready layer, bytes)`` in
    posting order. Returns the backward-pass ends."""
    n = trace.num_layers

    def op(t, d, free):
        busy = free - t if free > t else 0.0
        return t + d + x * min(d, busy / (1 + x))

    t = free = 0.0
    bp = []
    for it in range(iterations):
        if it > 0:  # the barrier: the link is idle; the update of the previous iteration
            t = max(t, free)
            for u in trace.update:
                t += u
        for f in trace.fwd:
            t = op(t, f, free)
        for layer in range(n - 1, -1, -1):
            t = op(t, trace.bwd[layer], free)
            for ready, nbytes in messages:
                if ready == layer:
                    free = max(free, t) + cost(nbytes)
        bp.append(t)
    return bp


@FEW
@given(trace=traces(with_grads=True), net=networks(), p=worker_counts(2, 32),
       x=st.floats(0.0, 4.0), data=st.data())
def test_wfbp_family_against_an_oracle(trace, net, p, x, data):
    name, opts, messages = wfbp_messages(trace, data)
    r = sim(trace, net, Cluster(p, interference=x), name, opts)
    want = oracle_wfbp(trace, messages, ring_allreduce(net, p), x, ITERS)
    for i, (got, exp) in enumerate(zip(r.raw.bp_end, want)):
        assert close(got, exp), f"backward pass {i} ends at {got}, the oracle says {exp}"


@FEW
@given(trace=traces(with_grads=True, positive_times=True), net=networks(),
       cluster=clusters(max_workers=4), x=st.floats(0.0, 4.0), data=st.data())
def test_wfbp_family_with_unequal_workers_against_a_fluid_simulation(trace, net, cluster, x,
                                                                    data):
    # the oracle is interference_helpers.fluid_wfbp, with y = 0
    p = cluster.workers
    name, opts, messages = wfbp_messages(trace, data, per_tensor=False)
    cl = Cluster(p, cluster.slowdown, interference=x)
    r = sim(trace, net, cl, name, opts, record_ops=True)
    want = fluid_wfbp(trace, messages, ring_allreduce(net, p), cluster.slowdown, x, ITERS)
    for g, (_, ranks) in enumerate(cl.groups()):  # a worker class: its first rank's
        got = [o.end for o in ops_of(r, g) if (o.kind, o.layer) == (BWD, 0)]
        for i, (a, b) in enumerate(zip(got, want[ranks[0]])):
            assert math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12), (
                f"rank {ranks[0]}: backward pass {i} ends at {a}, the fluid simulation "
                f"says {b}")
    for i, a in enumerate(r.raw.bp_end):  # the run's: the latest worker's
        assert math.isclose(a, max(w[i] for w in want), rel_tol=1e-7, abs_tol=1e-12)


# --------------------------------------------------------------------------- the API


def test_the_fast_evaluator_refuses_it():
    cl = Cluster(4, interference=0.3)
    sched = schedules.create("wfbp", {})
    with pytest.raises(ParamError, match="interference: needs engine='simpy'"):
        fast.run(sched, ONE_AR, NET.costs(4), cl, 5)
    with pytest.raises(ParamError, match="needs engine='simpy'"):
        dearsim.simulate(ONE_AR, NET, cl, "wfbp", engine="fast")
    with pytest.raises(ParamError, match="needs engine='simpy'"):
        fast.evaluate(sched, ONE_AR, NET.costs(4), cl)
    # at 0 it runs, with today's numbers
    zero = fast.evaluate(sched, ONE_AR, NET.costs(4), Cluster(4, interference=0.0))
    assert zero == fast.evaluate(sched, ONE_AR, NET.costs(4), Cluster(4))


@pytest.mark.parametrize("bad", [-0.1, math.inf, math.nan, True, "0.5", None])
def test_cluster_checks_interference(bad):
    with pytest.raises(DearsimError, match="interference must be a finite number >= 0"):
        Cluster(2, interference=bad)
    with pytest.raises(DearsimError, match="interference"):
        Cluster.build(2, interference=bad)


def test_build_and_spec():
    cl = Cluster.build(4, stragglers=1, straggler_slowdown=2.0, interference=0.25)
    assert cl.interference == 0.25 and cl.slowdown == (1.0, 1.0, 1.0, 2.0)
    assert cl.spec()["interference"] == 0.25
    assert Cluster(3, interference=1).interference == 1.0
    assert isinstance(Cluster(3, interference=1).interference, float)
    # 0 is left out: the description (and the run hashes made from it) of before
    assert "interference" not in Cluster.build(4, interference=0.0).spec()
    assert Cluster(4, interference=0).spec() == Cluster(4).spec() == {"workers": 4}
    assert Cluster.build(4).interference == 0.0
    # interference does not split identical workers into classes
    assert Cluster(4, interference=0.5).groups() == Cluster(4).groups()


def test_engine_run_directly():
    # engine.run (what the schedules' tests use) takes it from the cluster
    sched = schedules.create("wfbp", {})
    raw = engine.run(sched, ONE_AR, NET.costs(2), Cluster(2, interference=0.5), 4)
    assert ms(*raw.bp_end) == (5.5, 11, 16.5, 22)


# --------------------------------------------------------------------------- calibration


def test_parameter_from_a_link_busy_all_the_time():
    from dearsim.collect.interference import cluster_interference

    x, how = cluster_interference({"comm_compute_slowdown": 1.5, "comm_busy_fraction": 1.0})
    assert math.isclose(x, 0.5) and "x = 0.5000" in how
    # an older file without the busy fraction: the loop kept the link busy
    x, how = cluster_interference({"comm_compute_slowdown": 1.25})
    assert math.isclose(x, 0.25) and "not measured" in how
    # no slowdown (noise): 0
    assert cluster_interference({"comm_compute_slowdown": 0.9})[0] == 0.0


@pytest.mark.parametrize("x", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("phi", [0.5, 0.8, 1.0])
def test_parameter_inverts_the_rule(x, phi):
    # Work W done in time T with the link busy phi of T: W = T (1 - phi) + T phi / (1 + x).
    # The engine on a step that is all compute under a collective of phi of its length:
    # one op of 10 ms whose first part runs under an all-reduce.
    from dearsim.collect.interference import cluster_interference

    work = 10 * MS
    t = work / ((1 - phi) + phi / (1 + x))  # the measured time the rule gives
    got, _ = cluster_interference({"comm_compute_slowdown": t / work, "comm_busy_fraction": phi})
    assert math.isclose(got, x, rel_tol=1e-9)
    # the same time from the engine: layer 1 (b = 0) posts an AR of phi * t at the start of
    # layer 0's backward op of 10 ms; the op ends at t after its start
    nbytes = round(phi * t / 1e-12)
    tr = dearsim.Trace.from_layers([0.0, 0.0], [work, 0.0], [0, nbytes])
    r = sim(tr, dearsim.AlphaBeta(0.0, 1e-12), Cluster(2, interference=x), record_ops=True)
    b0 = next(o for o in ops_of(r) if (o.kind, o.layer, o.iteration) == (BWD, 0, 0))
    assert math.isclose(b0.end - b0.start, t, rel_tol=1e-9)


@pytest.mark.parametrize("terms", [
    {"comm_compute_slowdown": 20.0, "comm_busy_fraction": 0.9},  # more than x can explain
    {"comm_compute_slowdown": 1.2, "comm_busy_fraction": 0.0},
    {"comm_compute_slowdown": 1.2, "comm_busy_fraction": 1.5},
    {"comm_compute_slowdown": -1.0},
    {"comm_compute_slowdown": "fast"},
    {},
])
def test_parameter_from_bad_terms_is_one_clear_error(terms):
    from dearsim.collect.interference import cluster_interference

    with pytest.raises(DearsimError, match="comm_"):
        cluster_interference(terms)


def test_covered_length_of_spans():
    from dearsim.collect.interference import _covered

    assert _covered([], 0.0, 1.0) == 0.0
    assert _covered([(0.0, 2.0)], 0.5, 1.5) == 1.0
    assert math.isclose(_covered([(0.1, 0.3), (0.2, 0.4), (0.6, 0.7), (1.2, 2.0)], 0.0, 1.0), 0.4)


def test_validate_predicts_with_and_without_the_parameter(tmp_path):
    from dearsim.collect import validate

    result = {"world": 2, "rows": [
        {"schedule": "wfbp", "setting": "per-tensor", "options": {}, "measured_s": 6e-3},
        {"schedule": "ddp", "setting": "default", "options": {}, "measured_s": 5e-3},
    ]}
    terms = {"compute_slowdown": 1.0, "comm_compute_slowdown": 1.5, "comm_busy_fraction": 1.0,
             "ddp_overhead_s": 0.0, "optimizer_overhead_s": 0.0}
    rows = validate.predict(result, ONE_AR, NET, terms)
    # the hand-worked timeline above: 5 ms without interference, 5.5 with x = 0.5
    for r in rows:
        assert math.isclose(r["interference"], 0.5)
        assert math.isclose(r["predicted_ms"], 5.0) and math.isclose(r["predicted_cal_ms"], 5.0)
        assert math.isclose(r["predicted_x_ms"], 5.5)
        assert math.isclose(r["predicted_cal_x_ms"], 5.5)
        assert math.isclose(r["error_x_pct"], (5.5 / r["measured_ms"] - 1) * 100)
        # the no-overlap bound: 5 ms of compute + 1.5 ms of all-reduce, with or without terms
        assert math.isclose(r["predicted_serial_ms"], 6.5)
        assert math.isclose(r["predicted_serial_cal_ms"], 6.5)
    med, worst = validate.summary(rows, "error_x_pct")  # -8.33 % and +10 %
    assert math.isclose(med, (10 - (5.5 / 6 - 1) * 100) / 2) and math.isclose(worst, 10.0)
    path = tmp_path / "v.csv"
    validate.write_rows(rows, path, {"model": "m"})
    head = path.read_text().splitlines()[0].split(",")
    assert head == ["schedule", "setting", "ranks", "measured_ms", "predicted_ms", "error_pct",
                    "predicted_x_ms", "error_x_pct", "predicted_cal_ms", "error_cal_pct",
                    "predicted_cal_x_ms", "error_cal_x_pct", "predicted_xy_ms",
                    "error_xy_pct", "predicted_cal_xy_ms", "error_cal_xy_pct",
                    "predicted_serial_ms", "error_serial_pct", "predicted_serial_cal_ms",
                    "error_serial_cal_pct", "interference", "comm_interference", "model"]
    # without terms: the columns of before
    plain = validate.predict(result, ONE_AR, NET, None)
    validate.write_rows(plain, path, {})
    assert path.read_text().splitlines()[0] == (
        "schedule,setting,ranks,measured_ms,predicted_ms,error_pct,predicted_serial_ms,"
        "error_serial_pct")
