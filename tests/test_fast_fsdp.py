"""FSDP (``fsdp``) on the fast evaluator against the SimPy engine: every backward-pass end,
every busy time (per worker class), every collective on the link (order, kind, bytes, layers,
tag, posted, start, end) and every reported metric (iteration time, compute, comm, exposed and
overlapped comm, bytes, collectives, units, p50/p99, per-worker waits) agree within 1e-9
relative, for every option value (units by threshold, ``null`` or explicit ``groups``;
``backward_prefetch``; ``limit_all_gathers``), on identical, heterogeneous, jittered and
stalled clusters, alpha-beta and hierarchical networks; plus two timelines worked by hand
(docs/model.md 4.5) on both evaluators.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    FEW,
    SETTINGS,
    alphas,
    betas,
    close,
    clusters,
    half_mib_limits,
    half_mib_sizes,
    networks,
    partitions,
    traces,
)

import dearsim
from dearsim import engine, fast, schedules
from dearsim.cluster import Cluster, Jitter, Stall
from dearsim.network import AlphaBeta, Hierarchical, Line, LinearCosts
from dearsim.result import measure

ITERS = 7
WARMUP = 2
MS = 1e-3
KW = dict(scheduler="fsdp", options={}, trace="t", network="n", batch_size=None)
FLOATS = ("iteration_time_s", "compute_s", "comm_s", "exposed_comm_s", "overlapped_comm_s",
          "iteration_p50_s", "iteration_p99_s")


def _near(a: float, b: float, scale: float) -> bool:
    """Equal within 1e-9 relative, differences of times within 1e-9 of the period."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * abs(scale) + 1e-15)


def compare(trace, costs, cluster, options, iterations=ITERS, same_order=True):
    """Run both evaluators; assert they agree on everything measured. ``same_order=False``
    (collectives that take no time): collectives that start at the same instant may be
    listed in another order within that instant; nothing else may differ."""
    sched = schedules.create("fsdp", options)
    want = engine.run(sched, trace, costs, cluster, iterations)
    got = fast.run(sched, trace, costs, cluster, iterations)
    where = f"fsdp {options} {cluster}"
    assert len(got.bp_end) == iterations
    for i, (a, b) in enumerate(zip(got.bp_end.tolist(), want.bp_end)):
        assert close(a, b), f"{where}: backward pass {i} ends at {a}, engine {b}"
    for i, (a, b) in enumerate(zip(got.busy.tolist(), want.busy)):
        assert close(a, b), f"{where}: busy {i}: {a} vs engine {b}"
    assert got.class_ranks == want.class_ranks
    for k, row in enumerate(want.class_busy):
        for i, b in enumerate(row):
            assert close(float(got.class_busy[i, k]), b), f"{where}: class {k} busy {i}"
    recs = got.to_raw().collectives
    assert len(recs) == len(want.collectives), f"{where}: collective count"

    def key(r):
        return (r.op, r.nbytes, r.iteration, r.layers, r.tag)

    if not same_order:
        # only the order within one instant is free: sort both by (start, identity)
        assert all(r.end == r.start for r in want.collectives)
        recs = sorted(recs, key=lambda r: (r.start, r.op.value, r.layers, r.tag, r.iteration))
        theirs = sorted(want.collectives,
                        key=lambda r: (r.start, r.op.value, r.layers, r.tag, r.iteration))
    else:
        theirs = want.collectives
    for k, (r, w) in enumerate(zip(recs, theirs)):
        assert key(r) == key(w), f"{where}: collective {k}: {r} vs engine {w}"
        for f in ("posted", "start", "end"):
            assert close(getattr(r, f), getattr(w, f)), f"{where}: collective {k} {f}: {r} vs {w}"
    m_want = measure(want, WARMUP, workers=cluster.workers, **KW)
    m_got = fast.measure(got, WARMUP, workers=cluster.workers, **KW)
    period = m_want.iteration_time_s
    for f in FLOATS:
        assert _near(getattr(m_got, f), getattr(m_want, f), period), f"{where}: {f}"
    for f in ("comm_bytes", "collectives", "buckets"):
        assert getattr(m_got, f) == getattr(m_want, f), f"{where}: {f}"
    assert len(m_got.worker_wait_s) == len(m_want.worker_wait_s) == cluster.workers
    for w, (a, b) in enumerate(zip(m_got.worker_wait_s, m_want.worker_wait_s)):
        assert _near(a, b, period), f"{where}: worker {w} waits {a}, engine {b}"
    return got, want


# --------------------------------------------------------------------------- strategies


@st.composite
def unit_options(draw, trace):
    """How the units are formed: the default, a threshold (or ``null``), explicit groups."""
    how = draw(st.sampled_from(("default", "threshold", "groups")))
    if how == "threshold":
        return {"threshold_mb": draw(st.one_of(
            st.none(), st.sampled_from((0.5, 1.0, 4.0, 10.0, 25.0, 64.0)), half_mib_limits()))}
    if how == "groups" and trace.grad_layers:
        return {"groups": draw(partitions(trace))}
    return {}


@st.composite
def varying_clusters(draw, p):
    """Jitter and/or stalls, sometimes on top of different speeds."""
    slow = None
    if draw(st.booleans()):
        slow = tuple(draw(st.lists(st.sampled_from((1.0, 1.5, 2.0)), min_size=p, max_size=p)))
    jitter = None
    if draw(st.booleans()):
        jitter = Jitter(draw(st.sampled_from((0.05, 0.2, 0.5))), draw(st.integers(0, 9)))
    stall = st.builds(Stall, st.integers(0, p - 1), st.integers(1, 3),
                      st.sampled_from((0.0, 1e-3, 7.5e-3)), st.integers(0, 3))
    stalls = tuple(draw(st.lists(stall, min_size=0 if jitter else 1, max_size=2)))
    return Cluster(p, slow, jitter, stalls)


@st.composite
def cluster_of(draw, p):
    """``p`` workers: identical, of different speeds, or jittered/stalled."""
    kind = draw(st.sampled_from(("identical", "speeds", "varying")))
    if kind == "identical":
        return Cluster(p)
    if kind == "speeds":
        return Cluster(p, tuple(draw(st.lists(st.sampled_from((1.0, 1.5, 2.0)), min_size=p,
                                              max_size=p))))
    return draw(varying_clusters(p))


@st.composite
def hierarchical(draw):
    """A two-level topology and a worker count that fills its nodes (at least 2)."""
    g = draw(st.sampled_from((1, 2, 4, 8)))
    nodes = draw(st.integers(1 if g > 1 else 2, 4))
    intra = AlphaBeta(draw(alphas()), draw(betas()))
    inter = AlphaBeta(draw(alphas()), draw(betas()))
    net = Hierarchical(g, intra, inter, draw(st.sampled_from(Hierarchical.ALGORITHMS)),
                       nics_per_node=draw(st.one_of(st.none(), st.integers(1, g))))
    return net, g * nodes


@st.composite
def setups(draw):
    """(costs, cluster): an alpha-beta(-gamma) ring or a hierarchical topology."""
    if draw(st.booleans()):
        net, p = draw(hierarchical())
    else:
        net, p = draw(networks()), draw(st.integers(2, 16))
    return net.costs(p), draw(cluster_of(p))


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("limit", [True, False], ids=["limit", "no-limit"])
@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "no-prefetch"])
@SETTINGS
@given(data=st.data())
def test_fast_equals_engine(prefetch, limit, data):
    trace = data.draw(traces())
    costs, cluster = data.draw(setups())
    opts = {**data.draw(unit_options(trace)), "backward_prefetch": prefetch,
            "limit_all_gathers": limit}
    compare(trace, costs, cluster, opts)


@SETTINGS
@given(data=st.data())
def test_many_identical_workers_and_default_options(data):
    trace = data.draw(traces(min_layers=3))
    net = data.draw(networks())
    p = data.draw(st.integers(2, 64))
    compare(trace, net.costs(p), Cluster(p), {})


@FEW
@given(data=st.data())
def test_units_on_a_half_mib_grid(data):
    """Unit totals exactly at the threshold ("stays below"), one unit per layer, ties."""
    trace = data.draw(traces(sizes=half_mib_sizes()))
    net = data.draw(networks(gamma=False))
    p = data.draw(st.integers(2, 8))
    opts = {"threshold_mb": data.draw(half_mib_limits()),
            "backward_prefetch": data.draw(st.booleans()),
            "limit_all_gathers": data.draw(st.booleans())}
    compare(trace, net.costs(p), data.draw(cluster_of(p)), opts, iterations=9)


TICK = 2.0**-12  # seconds: every time below is a small multiple, so sums are exact


@st.composite
def dyadic_cases(draw, zero_costs=False):
    """Times and collective costs on a dyadic grid: sums are exact, so a gradient becomes
    ready exactly when a collective ends, the host posts an all-gather at the very instant a
    reduce-scatter is posted, and so on."""
    n = draw(st.integers(1, 8))
    grid = st.integers(0, 4).map(lambda k: k * TICK)
    fwd = draw(st.lists(grid, min_size=n, max_size=n))
    bwd = draw(st.lists(grid, min_size=n, max_size=n))
    upd = None
    if draw(st.booleans()):
        upd = draw(st.lists(st.integers(0, 2).map(lambda k: k * TICK), min_size=n, max_size=n))
    size = draw(st.lists(st.integers(0, 4).map(lambda k: k << 20), min_size=n, max_size=n))
    trace = dearsim.Trace.from_layers(fwd, bwd, size, upd)
    if zero_costs:
        a, b = 0.0, 0.0
    else:
        a = draw(st.integers(0, 3)) * TICK
        b = draw(st.sampled_from((0.0, 2.0**-32, 2.0**-30) if a else (2.0**-32, 2.0**-30)))
    costs = LinearCosts(4, Line(2 * a, 2 * b), Line(a, b), Line(a, b))
    cluster = draw(st.one_of(
        st.just(Cluster(4)),
        st.lists(st.sampled_from((1.0, 2.0, 0.5)), min_size=4, max_size=4).map(
            lambda s: Cluster(4, tuple(s))),
        st.builds(lambda w, e, k: Cluster(4, stalls=(Stall(w, e, k * TICK),)),
                  st.integers(0, 3), st.integers(1, 3), st.integers(1, 4)),
    ))
    opts = {"threshold_mb": draw(st.sampled_from((None, 1.0, 2.5, 25.0))),
            "backward_prefetch": draw(st.booleans()),
            "limit_all_gathers": draw(st.booleans())}
    return trace, costs, cluster, opts


@SETTINGS
@given(case=dyadic_cases())
def test_exact_ties(case):
    """Where the engine's order depends on same-instant ties, the fast evaluator's is the
    same, to the last bit."""
    trace, costs, cluster, opts = case
    got, want = compare(trace, costs, cluster, opts)
    assert got.bp_end.tolist() == want.bp_end
    assert [(r.posted, r.start, r.end) for r in got.to_raw().collectives] == [
        (r.posted, r.start, r.end) for r in want.collectives]


@FEW
@given(case=dyadic_cases(zero_costs=True), one=st.booleans())
def test_collectives_that_take_no_time(case, one):
    """One worker, or a network that costs nothing: every collective starts and ends the
    instant it is fully posted. All times and metrics agree; collectives posted at the same
    instant may be listed in another order within it (docs/model.md 4.5)."""
    trace, costs, cluster, opts = case
    if one:
        costs, cluster = dearsim.AlphaBeta(1e-5, 1e-9).costs(1), Cluster(1)
    compare(trace, costs, cluster, opts, same_order=False)


def test_all_gathers_that_take_no_time_beside_reduce_scatters_that_do_are_refused():
    # alpha = beta = 0, gamma > 0: an all-gather takes no time, a reduce-scatter does, and
    # which goes first at one instant (the engine's event order) changes the times
    trace = dearsim.Trace.from_layers([MS, 0.0, MS], [MS, 0.0, MS], [2_000_000] * 3)
    net = AlphaBeta(0.0, 0.0, 1e-9)
    r = dearsim.simulate(trace, net, 4, "fsdp", {"threshold_mb": None})
    assert r.iteration_time_s > 0
    with pytest.raises(dearsim.DearsimError, match="all-gathers take no time"):
        fast.simulate(trace, net, 4, "fsdp", {"threshold_mb": None})
    # a network that costs nothing at all, or one worker, runs (tests above)
    fast.simulate(trace, AlphaBeta(0.0, 0.0), 4, "fsdp")


@FEW
@given(data=st.data())
def test_simulate_engine_fast_is_the_engines_result(data):
    """``dearsim.simulate(..., engine="fast")`` and ``dearsim.fast.simulate`` return the
    engine's Result (every key of ``to_dict``)."""
    trace = data.draw(traces(with_grads=True))
    net = data.draw(networks())
    cluster = data.draw(st.one_of(clusters(), varying_clusters(data.draw(st.integers(2, 6)))))
    opts = data.draw(unit_options(trace))
    a = dearsim.simulate(trace, net, cluster, "fsdp", opts, iterations=8, warmup=3)
    b = dearsim.simulate(trace, net, cluster, "fsdp", opts, iterations=8, warmup=3,
                         engine="fast")
    c = fast.simulate(trace, net, cluster, "fsdp", opts, iterations=8, warmup=3)
    assert b.raw is None and c.to_dict() == b.to_dict()
    for k, v in a.to_dict().items():
        if isinstance(v, float):
            assert _near(b.to_dict()[k], v, a.iteration_time_s), k
        elif k == "worker_wait_s":
            assert len(v) == len(b.to_dict()[k]) == cluster.workers
            for x, y in zip(b.to_dict()[k], v):
                assert _near(x, y, a.iteration_time_s), k
        else:
            assert b.to_dict()[k] == v, k
    assert len(b.worker_wait_s) == cluster.workers


# --------------------------------------------------------------------------- by hand

NET = AlphaBeta(0.0, 1e-9)  # p = 2: an all-gather or reduce-scatter of 2e6 B takes 1 ms


def _both(trace, cluster, opts, iterations=6):
    """The engine's and the fast evaluator's Result and collectives."""
    sched = schedules.create("fsdp", opts)
    costs = NET.costs(cluster.workers)
    runs = (engine.run(sched, trace, costs, cluster, iterations),
            fast.run(sched, trace, costs, cluster, iterations))
    res = (measure(runs[0], 2, workers=cluster.workers, **KW),
           fast.measure(runs[1], 2, workers=cluster.workers, **KW))
    recs = (runs[0].collectives, runs[1].to_raw().collectives)
    return list(zip(runs, res, recs))


def _timeline(recs, it):
    return [(c.op.value[0], c.layers[0], c.tag, round(c.posted / MS, 9), round(c.start / MS, 9),
             round(c.end / MS, 9)) for c in recs if c.iteration == it]


def test_hand_worked_reduce_scatter_before_all_gather_at_the_same_instant():
    # Four units of one 1 ms layer each, no prefetch, the limiter on; every collective 1 ms.
    # Host program: AG_f(U3) waits for fd1, AG_b(U3) for fd2, AG_b(U2) for fd3 and
    # AG_b(U1) for U3's gradient g3 (iteration 1 on: three stale events first, then the
    # same waits). Iteration 0: AG_f 0-1, 1-2, 2-3 (posted at 0); f0 1-2, f1 2-3, f2 3-4;
    # AG_f(U3) at fd1 = 3: 3-4; f3 4-5; AG_b(U3) at fd2 = 4: 4-5; AG_b(U2) at fd3 = 5: 5-6;
    # b3 5-6, so g3 = 6: RS(U3) and AG_b(U1) are both posted at 6, the reduce-scatter first
    # (6-7, then AG_b(U1) 7-8); b2 6-7, RS(U2) 8-9; b1 8-9, RS(U1) 9-10; b0 9-10,
    # RS(U0) 10-11. The barrier at 11 starts iteration 1, the same shifted by 11 ms.
    trace = dearsim.Trace.from_layers([MS] * 4, [MS] * 4, [2_000_000] * 4)
    opts = {"threshold_mb": None, "backward_prefetch": False}
    expect = [
        ("a", 0, 0, 0, 0, 1), ("a", 1, 0, 0, 1, 2), ("a", 2, 0, 0, 2, 3), ("a", 3, 0, 3, 3, 4),
        ("a", 3, 1, 4, 4, 5), ("a", 2, 1, 5, 5, 6), ("r", 3, 0, 6, 6, 7), ("a", 1, 1, 6, 7, 8),
        ("r", 2, 0, 7, 8, 9), ("r", 1, 0, 9, 9, 10), ("r", 0, 0, 10, 10, 11),
    ]
    for raw, res, recs in _both(trace, Cluster(2), opts):
        assert _timeline(recs, 0) == expect
        assert _timeline(recs, 3) == [(*x[:3], x[3] + 33, x[4] + 33, x[5] + 33) for x in expect]
        assert list(raw.bp_end) == pytest.approx([10 * MS + 11 * MS * i for i in range(6)])
        assert res.iteration_time_s == pytest.approx(11 * MS)
        assert res.comm_bytes == 11 * 2_000_000 and res.collectives == 11


def test_hand_worked_two_speeds():
    # Two 1 ms layers, one unit each (U0 the root), workers of speed 1 (A) and 2 (B): A's
    # ops take 1 ms, B's 2 ms. Both hosts post AG_f(U0), AG_f(U1), AG_b(U1) at 0 (never held
    # by the limiter): 0-1, 1-2, 2-3. A: f0 1-2, f1 2-3, b1 3-4 (g1 = 4), b0 4-5. B: f0 1-3,
    # f1 3-5, b1 5-7 (g1 = 7), b0 7-9. RS(U1): first posted at 4, fully at 7, 7-8; RS(U0):
    # 5 / 9, 9-10. Both classes start iteration 1 at the barrier, 10: period 10 ms. Busy:
    # A 4 ms, B 8 ms, so worker 0 waits 6 ms, worker 1 2 ms.
    trace = dearsim.Trace.from_layers([MS] * 2, [MS] * 2, [2_000_000] * 2)
    expect = [("a", 0, 0, 0, 0, 1), ("a", 1, 0, 0, 1, 2), ("a", 1, 1, 0, 2, 3),
              ("r", 1, 0, 4, 7, 8), ("r", 0, 0, 5, 9, 10)]
    for raw, res, recs in _both(trace, Cluster(2, (1.0, 2.0)), {"threshold_mb": None}):
        for it in range(6):
            assert _timeline(recs, it) == [
                (*x[:3], x[3] + 10 * it, x[4] + 10 * it, x[5] + 10 * it) for x in expect]
        assert res.iteration_time_s == pytest.approx(10 * MS)
        assert res.compute_s == pytest.approx(8 * MS)
        assert res.worker_wait_s == pytest.approx((6 * MS, 2 * MS))
