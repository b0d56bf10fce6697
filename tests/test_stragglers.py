"""Heterogeneous workers, seeded jitter and stalls (docs/model.md 2.5 and 6): exact reduction
to identical workers, stragglers slow every schedule, reproducible jitter, and the SimPy
engine and the fast evaluator agree on all of it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import ALL_SCHEDULES, FEW, close, networks, options_for, traces

import dearsim
from dearsim import engine, fast, schedules
from dearsim.cluster import Cluster, Jitter, Stall
from dearsim.result import measure

KW = dict(options={}, trace="t", network="n", batch_size=None)
TRACE = dearsim.Trace.from_layers(
    [1e-3, 2e-3, 0.5e-3, 1e-3], [2e-3, 3e-3, 1e-3, 2e-3], [4_000_000, 0, 30_000_000, 1000],
    [1e-4, 0, 3e-4, 1e-5],
)
NET = dearsim.AlphaBeta(1e-5, 1e-9)
EVERY = ALL_SCHEDULES + ("fsdp",)


def both(name, trace, net, cluster, opts=None, iterations=9):
    sched = schedules.create(name, opts or {})
    costs = net.costs(cluster.workers)
    a = engine.run(sched, trace, costs, cluster, iterations)
    ra = measure(a, 2, scheduler=name, workers=cluster.workers, **KW)
    b = fast.run(sched, trace, costs, cluster, iterations)
    rb = fast.measure(b, 2, scheduler=name, workers=cluster.workers, **KW)
    return a, b, ra, rb


@pytest.mark.parametrize("name", EVERY)
def test_zero_jitter_and_equal_speeds_equal_identical_workers_exactly(name):
    plain = dearsim.simulate(TRACE, NET, 4, name)
    for cl in (Cluster(4, slowdown=(1.0,) * 4, jitter=Jitter(0.0, 7)),
               Cluster.build(4, jitter_cv=0.0, stragglers=2, straggler_slowdown=1.0),
               Cluster(4, stalls=(Stall(1, 3, 0.0),))):
        r = dearsim.simulate(TRACE, NET, cl, name)
        assert r.raw.bp_end == plain.raw.bp_end, cl
        assert r.to_dict() == plain.to_dict(), cl


@pytest.mark.parametrize("name", EVERY)
@pytest.mark.parametrize("factor", [1.5, 3.0])
@pytest.mark.parametrize("net", [dearsim.AlphaBeta(0.0, 1e-13), NET], ids=["fast-net", "slow-net"])
def test_one_straggler_slows_every_schedule(name, factor, net):
    plain = dearsim.simulate(TRACE, net, 4, name)
    cl = Cluster.build(4, stragglers=1, straggler_slowdown=factor)
    r = dearsim.simulate(TRACE, net, cl, name)
    compute = TRACE.compute_time  # forward, backward and update
    extra = (factor - 1) * compute
    # never faster, and never faster than the straggler can compute
    assert r.iteration_time_s >= plain.iteration_time_s - 1e-12
    assert r.iteration_time_s >= factor * compute - 1e-12
    if net.beta < 1e-12:
        # when communication hides nothing of the compute (a fast network), the straggler
        # adds at least its whole extra compute to every schedule
        assert r.iteration_time_s >= plain.iteration_time_s + extra - 1e-12
    # the straggler (rank 3) waits least, by exactly its extra compute
    assert r.worker_wait_s[3] == min(r.worker_wait_s)
    assert r.wait_max_s - r.wait_min_s == pytest.approx(extra, rel=1e-9)


def test_jitter_is_reproducible_bit_for_bit_and_seeds_differ():
    runs = [dearsim.simulate(TRACE, NET, Cluster.build(8, jitter_cv=0.2, seed=s), "dear",
                             iterations=12) for s in (1, 1, 2)]
    assert runs[0].raw.bp_end == runs[1].raw.bp_end
    assert runs[0].to_dict() == runs[1].to_dict()
    assert runs[0].raw.bp_end != runs[2].raw.bp_end


def test_jitter_draws_are_prefix_stable_and_lognormal():
    j = Jitter(0.3, 5)
    a = j.multipliers(4, 8, 10)
    b = j.multipliers(4, 3, 10)
    assert np.array_equal(a[:3], b)  # more workers do not change workers 0..2
    big = j.multipliers(0, 2000, 50)
    assert big.mean() == pytest.approx(1.0, abs=0.01)
    assert big.std() / big.mean() == pytest.approx(0.3, rel=0.03)
    assert np.all(Jitter(0.0, 1).multipliers(0, 3, 4) == 1.0)


def test_stall_adds_to_layer_0_forward_of_its_iterations():
    cl = Cluster(2, stalls=(Stall(1, 3, 0.05, offset=1),))
    for it in range(7):
        d = cl.op_times(TRACE, it)
        assert d[1, 0, 0] == pytest.approx(TRACE.fwd[0] + (0.05 if it in (1, 4) else 0.0))
        assert d[0, 0, 0] == TRACE.fwd[0]


def test_stall_lengthens_its_iterations_only():
    cl = Cluster(4, stalls=(Stall(2, 4, 0.05, offset=3),))
    plain = dearsim.simulate(TRACE, NET, 4, "ddp", iterations=12)
    r = dearsim.simulate(TRACE, NET, cl, "ddp", iterations=12)
    d_plain = np.diff(plain.raw.bp_end)
    d = np.diff(r.raw.bp_end)
    # the stall in iteration 3 and 7 delays their backward-pass ends by the stall
    assert d[2] == pytest.approx(d_plain[2] + 0.05)
    assert d[6] == pytest.approx(d_plain[6] + 0.05)
    assert r.iteration_p99_s > r.iteration_p50_s


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@FEW
@given(data=st.data())
def test_engine_and_fast_agree_with_jitter_stalls_and_speeds(name, data):
    trace = data.draw(traces())
    net = data.draw(networks())
    p = data.draw(st.integers(1, 5))
    slow = data.draw(st.lists(st.sampled_from((1.0, 1.25, 2.0)), min_size=p, max_size=p))
    cv = data.draw(st.sampled_from((0.0, 0.05, 0.3)))
    seed = data.draw(st.integers(0, 3))
    stalls = ()
    if data.draw(st.booleans()):
        stalls = (Stall(p - 1, data.draw(st.integers(1, 3)), 2e-3,
                        data.draw(st.integers(0, 2))),)
    cl = Cluster(p, tuple(slow), Jitter(cv, seed) if cv else None, stalls)
    opts = data.draw(options_for(name))
    a, b, ra, rb = both(name, trace, net, cl, opts)
    for x, y in zip(b.bp_end.tolist(), a.bp_end):
        assert close(x, y)
    for x, y in zip(b.busy.tolist(), a.busy):
        assert close(x, y)
    recs = b.to_raw().collectives
    assert [(r.op, r.nbytes, r.iteration, r.layers, r.tag) for r in recs] == [
        (w.op, w.nbytes, w.iteration, w.layers, w.tag) for w in a.collectives]
    for r, w in zip(recs, a.collectives):
        assert close(r.start, w.start) and close(r.end, w.end)
    for f in ("iteration_time_s", "compute_s", "comm_s", "iteration_p50_s", "iteration_p99_s"):
        assert close(getattr(rb, f), getattr(ra, f)), f
    assert len(ra.worker_wait_s) == p == len(rb.worker_wait_s)
    for x, y in zip(rb.worker_wait_s, ra.worker_wait_s):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def test_cluster_build_and_spec():
    cl = Cluster.build(6, stragglers=2, straggler_slowdown=1.5, jitter_cv=0.1, seed=9,
                       stalls=[{"worker": 0, "every": 10, "duration_ms": 20}])
    assert cl.slowdown == (1.0, 1.0, 1.0, 1.0, 1.5, 1.5)
    assert cl.jitter == Jitter(0.1, 9)
    assert cl.stalls == (Stall(0, 10, 0.02),)
    assert cl.spec()["jitter"] == {"cv": 0.1, "seed": 9, "distribution": "lognormal"}
    assert len(cl.groups()) == 6  # jitter: every worker a class
    assert Cluster(4, stalls=(Stall(1, 2, 0.01),)).classes() == [(1.0, 3), (1.0, 1)]
    with pytest.raises(dearsim.DearsimError, match="stragglers"):
        Cluster.build(2, stragglers=3, straggler_slowdown=2.0)
    with pytest.raises(dearsim.DearsimError, match="only 2 workers"):
        Cluster(2, stalls=(Stall(5, 2, 0.01),))
    with pytest.raises(dearsim.DearsimError, match="cv"):
        Jitter(-1.0)
    with pytest.raises(dearsim.DearsimError, match="unknown key"):
        Cluster.build(2, stalls=[{"worker": 0, "every": 1, "duration_ms": 1, "x": 1}])


def test_many_jittered_workers_on_the_fast_evaluator():
    cl = Cluster.build(256, slowdown=[1.0 + (i % 4) * 0.1 for i in range(256)], jitter_cv=0.1,
                       seed=0)
    r = fast.simulate(TRACE, NET, cl, "dear", iterations=20)
    assert len(r.worker_wait_s) == 256
    assert r.iteration_p99_s >= r.iteration_p50_s
