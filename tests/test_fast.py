"""The fast evaluator (dearsim.fast) against the SimPy engine on random workloads: every
backward-pass end, every busy time, every collective on the link (order, kind, bytes, layers,
tag, posted, start, end) and every reported metric must agree within 1e-9 relative, for every
schedule and option (explicit buckets and groups, per-tensor traces, DeAR chain and next,
heterogeneous worker classes)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    ALL_SCHEDULES,
    FEW,
    SETTINGS,
    close,
    clusters,
    half_mib_sizes,
    networks,
    options_for,
    partitions,
    traces,
    worker_counts,
)

import dearsim
from dearsim import engine, fast, schedules
from dearsim.result import measure

ITERS = 7
WARMUP = 2
METRICS = ("iteration_time_s", "compute_s", "comm_s", "exposed_comm_s")


def compare(trace, net, cluster, name, options, iterations=ITERS):
    """Run both evaluators; assert they agree on everything measured."""
    sched = schedules.create(name, options)
    costs = net.costs(cluster.workers)
    want = engine.run(sched, trace, costs, cluster, iterations)
    got = fast.run(sched, trace, costs, cluster, iterations)
    where = f"{name} {options}"
    assert len(got.bp_end) == iterations
    for i, (a, b) in enumerate(zip(got.bp_end.tolist(), want.bp_end)):
        assert close(a, b), f"{where}: backward pass {i} ends at {a}, engine {b}"
    for i, (a, b) in enumerate(zip(got.busy.tolist(), want.busy)):
        assert close(a, b), f"{where}: busy {i}: {a} vs engine {b}"
    recs = got.to_raw().collectives
    assert len(recs) == len(want.collectives), f"{where}: collective count"
    for k, (r, w) in enumerate(zip(recs, want.collectives)):
        assert (r.op, r.nbytes, r.iteration, r.layers, r.tag) == (
            w.op,
            w.nbytes,
            w.iteration,
            w.layers,
            w.tag,
        ), f"{where}: collective {k}: {r} vs engine {w}"
        for f in ("posted", "start", "end"):
            assert close(getattr(r, f), getattr(w, f)), f"{where}: collective {k} {f}: {r} vs {w}"
    kw = dict(scheduler=name, options={}, trace="t", network="n", workers=cluster.workers,
              batch_size=None)
    m_want = measure(want, WARMUP, **kw)
    m_got = fast.measure(got, WARMUP, **kw)
    for f in METRICS:
        assert close(getattr(m_got, f), getattr(m_want, f)), f"{where}: {f}"
    for f in ("comm_bytes", "collectives", "buckets"):
        assert getattr(m_got, f) == getattr(m_want, f), f"{where}: {f}"
    # and result.measure on the fast run's RawRun is the same Result
    m_raw = measure(got.to_raw(), WARMUP, **kw)
    for f in METRICS:
        assert close(getattr(m_raw, f), getattr(m_want, f))
    return got


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@SETTINGS
@given(data=st.data())
def test_identical_workers(name, data):
    trace = data.draw(traces())
    net = data.draw(networks())
    p = data.draw(worker_counts())
    opts = data.draw(options_for(name))
    compare(trace, net, dearsim.Cluster(p), name, opts)


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@SETTINGS
@given(data=st.data())
def test_heterogeneous_classes(name, data):
    trace = data.draw(traces())
    net = data.draw(networks())
    cluster = data.draw(clusters())
    opts = data.draw(options_for(name))
    compare(trace, net, cluster, name, opts)


@pytest.mark.parametrize("name", ("wfbp", "ddp", "horovod", "mgwfbp", "dear"))
@FEW
@given(data=st.data())
def test_explicit_buckets_and_groups(name, data):
    trace = data.draw(traces(with_grads=True))
    net = data.draw(networks())
    cluster = data.draw(st.one_of(worker_counts().map(dearsim.Cluster), clusters()))
    ranges = data.draw(partitions(trace))
    opts = {"groups": ranges} if name == "dear" else {"buckets": ranges}
    if name == "dear":
        opts["prefetch"] = data.draw(st.sampled_from(("chain", "next")))
    if name == "horovod":
        opts["cycle_time_ms"] = data.draw(st.sampled_from((0.25, 1.0, 5.0)))
    compare(trace, net, cluster, name, opts)


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@FEW
@given(data=st.data())
def test_ties_on_a_grid(name, data):
    """Round sizes and times: gradients ready exactly at ticks, totals exactly at caps."""
    trace = data.draw(traces(sizes=half_mib_sizes()))
    net = data.draw(networks(gamma=False))
    cluster = data.draw(st.one_of(worker_counts().map(dearsim.Cluster), clusters()))
    opts = data.draw(options_for(name))
    compare(trace, net, cluster, name, opts, iterations=9)


@FEW
@given(data=st.data())
def test_bytescheduler_tight_credit(data):
    """A credit below one chunk: every chunk waits for the previous one (the event loop)."""
    trace = data.draw(traces(with_grads=True))
    net = data.draw(networks())
    cluster = data.draw(st.one_of(worker_counts().map(dearsim.Cluster), clusters()))
    opts = {
        "partition_bytes": data.draw(st.sampled_from((500_000, 2_000_000, 8_000_000))),
        "credit_bytes": data.draw(st.sampled_from((1, 1_000_000, 3_000_000, 10_000_000))),
    }
    compare(trace, net, cluster, "bytescheduler", opts)


@FEW
@given(data=st.data())
def test_horovod_small_threshold_splits_ticks(data):
    trace = data.draw(traces(with_grads=True))
    net = data.draw(networks())
    cluster = data.draw(st.one_of(worker_counts().map(dearsim.Cluster), clusters()))
    opts = {
        "cycle_time_ms": data.draw(st.sampled_from((0.1, 1.0, 10.0, 50.0))),
        "fusion_threshold_mb": data.draw(st.sampled_from((0.5, 2.0, 8.0))),
    }
    compare(trace, net, cluster, "horovod", opts)


def test_one_worker_and_no_gradients():
    trace = dearsim.Trace.from_layers([1e-3, 2e-3], [2e-3, 1e-3], [0, 0], [0.0, 0.0])
    net = dearsim.AlphaBeta(1e-5, 1e-9)
    for name in ALL_SCHEDULES:
        compare(trace, net, dearsim.Cluster(3), name, {})
    trace = dearsim.Trace.from_layers([1e-3, 2e-3], [2e-3, 1e-3], [10, 5_000_000])
    for name in ALL_SCHEDULES:
        compare(trace, net, dearsim.Cluster(1), name, {})


def test_simulate_matches_api():
    trace = dearsim.Trace.from_layers(
        [1e-3, 2e-3, 0.5e-3, 1e-3], [2e-3, 3e-3, 1e-3, 2e-3], [4_000_000, 0, 30_000_000, 1000],
        [1e-4, 0, 3e-4, 1e-5], batch_size=8,
    )
    for name in ALL_SCHEDULES:
        a = dearsim.simulate(trace, "10GbE", 16, name, iterations=9, warmup=3)
        b = fast.simulate(trace, "10GbE", 16, name, iterations=9, warmup=3)
        da, db = a.to_dict(), b.to_dict()
        for k, v in da.items():
            if isinstance(v, float):
                assert math.isclose(v, db[k], rel_tol=1e-9, abs_tol=1e-15), (name, k)
            elif k == "worker_wait_s":
                assert len(v) == len(db[k]) == 16, name
                for x, y in zip(v, db[k]):
                    assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-15), (name, k)
            else:
                assert v == db[k], (name, k)


def test_periodic_shortcut_is_used():
    """Identical workers: the WFBP family and DeAR compute two or three iterations."""
    trace = dearsim.Trace.from_layers([1e-3] * 5, [2e-3] * 5, [1_000_000] * 5)
    costs = dearsim.AlphaBeta(1e-5, 1e-9).costs(8)
    for name in ("ddp", "dear", "wfbp"):
        r = fast.run(schedules.create(name), trace, costs, dearsim.Cluster(8), 50)
        assert r.computed <= 3, name


def test_simulate_rejects_bad_input():
    trace = dearsim.Trace.from_layers([1e-3], [1e-3], [100])
    with pytest.raises(dearsim.DearsimError, match="iterations"):
        fast.simulate(trace, "10GbE", 4, "dear", iterations=2)
    with pytest.raises(dearsim.DearsimError, match="unknown scheduler"):
        fast.simulate(trace, "10GbE", 4, "nope")


# --------------------------------------------------------------------------- exact ties

TICK = 2.0**-12  # seconds: every time below is a small multiple, so sums are exact


@st.composite
def dyadic_cases(draw, name):
    """Times and collective costs on a dyadic grid: sums are exact, so gradients become
    ready exactly when collectives end, ticks fall exactly on ready times, and so on."""
    from dearsim.network import Line, LinearCosts

    n = draw(st.integers(1, 8))
    grid = st.integers(0, 6).map(lambda k: k * TICK)
    fwd = draw(st.lists(grid, min_size=n, max_size=n))
    bwd = draw(st.lists(grid, min_size=n, max_size=n))
    upd = draw(st.lists(st.integers(0, 2).map(lambda k: k * TICK), min_size=n, max_size=n))
    size = draw(st.lists(st.integers(0, 6).map(lambda k: k << 20), min_size=n, max_size=n))
    tensors = None
    if draw(st.booleans()):
        tensors = [[s // 2, s - s // 2] if s else [] for s in size]
    trace = dearsim.Trace.from_layers(fwd, bwd, size, upd, tensors=tensors)
    a = draw(st.integers(0, 3)) * TICK
    b = draw(st.sampled_from((0.0, 2.0**-32, 2.0**-30)))
    costs = LinearCosts(4, Line(a, b), Line(a / 2, b / 2), Line(a / 2, b / 2))
    cluster = draw(st.one_of(st.just(dearsim.Cluster(4)),
                             st.lists(st.sampled_from((1.0, 2.0, 0.5)), min_size=4,
                                      max_size=4).map(lambda s: dearsim.Cluster(4, tuple(s)))))
    opts = draw(options_for(name))
    if name == "horovod":
        opts = {"cycle_time_ms": draw(st.sampled_from((1000 * TICK, 4000 * TICK))),
                "fusion_threshold_mb": draw(st.sampled_from((1.0, 3.0, 128.0)))}
    if name == "bytescheduler" and draw(st.booleans()):
        opts = {"partition_bytes": 1 << 20,
                "credit_bytes": draw(st.sampled_from((1, 1 << 20, 2 << 20, 3 << 20)))}
    return trace, costs, cluster, opts


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@SETTINGS
@given(data=st.data())
def test_exact_ties(name, data):
    trace, costs, cluster, opts = data.draw(dyadic_cases(name))
    sched = schedules.create(name, opts)
    want = engine.run(sched, trace, costs, cluster, ITERS)
    got = fast.run(sched, trace, costs, cluster, ITERS)
    assert got.bp_end.tolist() == pytest.approx(want.bp_end, rel=1e-12, abs=1e-15)
    recs = got.to_raw().collectives
    assert [(r.op, r.nbytes, r.iteration, r.layers, r.tag) for r in recs] == [
        (w.op, w.nbytes, w.iteration, w.layers, w.tag) for w in want.collectives
    ]
    for r, w in zip(recs, want.collectives):
        assert (r.posted, r.start, r.end) == pytest.approx((w.posted, w.start, w.end), abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_seq_sums_adds_each_segment_in_order_like_the_engine(data) -> None:
    """Both of seq_sums' paths (few classes: one accumulate; many: position by position)
    give, bit for bit, the sum a Python loop makes from 0.0 in the segment's order."""
    import numpy as np

    c = data.draw(st.sampled_from([1, 2, 300]))
    n = data.draw(st.integers(1, 40))
    d = np.array(data.draw(st.lists(st.lists(
        st.floats(1e-7, 1e-2, allow_nan=False), min_size=n, max_size=n), min_size=c,
        max_size=c)))
    order = data.draw(st.permutations(range(n)))
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=n - 1)) if n > 1 else [])
    bounds = [0, *cuts, n]
    segments = [order[a:b] for a, b in zip(bounds, bounds[1:])] + [[]]
    got = fast.seq_sums(d, segments)
    for w in range(c):
        for j, seg in enumerate(segments):
            total = 0.0
            for i in seg:
                total += float(d[w, i])
            assert got[w, j] == total
