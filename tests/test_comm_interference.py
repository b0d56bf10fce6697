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
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    ALL_SCHEDULES,
    FEW,
    close,
    clusters,
    geq,
    networks,
    options_for,
    partitions,
    traces,
    worker_counts,
)

import dearsim
from dearsim import engine, fast, schedules
from dearsim.cluster import Cluster
from dearsim.engine import BWD, FWD
from dearsim.errors import DearsimError, ParamError

EVERY = ALL_SCHEDULES + ("fsdp",)
MS = 1e-3
ITERS, WARMUP = 8, 2
NET = dearsim.AlphaBeta(0.0, 1e-9)  # p = 2: an all-reduce of n bytes takes n ns


def sim(trace, net, workers, name="wfbp", options=None, **kw):
    kw.setdefault("iterations", ITERS)
    kw.setdefault("warmup", WARMUP)
    return dearsim.simulate(trace, net, workers, name, dict(options or {}), **kw)


def ops_of(result, worker=0):
    return [o for o in result.raw.ops if o.worker == worker]


def ms(*times):
    """Times in ms, rounded to 1e-9 ms: sums of 1e-3 s are not exact in binary."""
    out = tuple(round(t / MS, 9) for t in times)
    return out[0] if len(out) == 1 else out


def span(op):
    return (op.kind, op.layer, *ms(op.start, op.end))


# --------------------------------------------------------------------------- by hand

# f = [1, 1], b = [2, 1] ms, layer 1 has 1.5e6 B: its all-reduce takes 1.5 ms alone.
ONE_AR = dearsim.Trace.from_layers([1 * MS, 1 * MS], [2 * MS, 1 * MS], [0, 1_500_000])


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


def fluid_two_way(trace, messages, cost, slowdown, x, y, iterations):
    """The WFBP family on workers of any speeds with both interferences, as a fluid
    simulation written from the rule: time moves from event to event (an op ending, a
    collective ending); in between every running op does 1/(1+x) s of work a second while a
    collective is in flight (1 otherwise), and the collective in flight 1/(1+y) while any
    worker computes (1 otherwise). A message goes on the link (a FIFO) when the last worker
    posts it; at one instant ops end before collectives; a worker's next iteration starts
    when its backward pass has ended and every all-reduce of the iteration has finished.
    ``messages``: ``(ready layer, bytes)`` in posting order. Returns each worker's
    backward-pass ends, ``[worker][iteration]``."""
    kx, ky = 1 + x, 1 + y
    n = trace.num_layers
    classes = range(len(slowdown))

    def program(c):
        for it in range(iterations):
            if it > 0:
                for u in trace.update:
                    yield ("op", u * slowdown[c], None)
            for f in trace.fwd:
                yield ("op", f * slowdown[c], None)
            for layer in range(n - 1, -1, -1):
                yield ("op", trace.bwd[layer] * slowdown[c], (it, layer))
                for m, (ready, _) in enumerate(messages):
                    if ready == layer:
                        yield ("post", it * len(messages) + m, None)
            yield ("barrier", it, None)

    progs = [program(c) for c in classes]
    left: list = [None for _ in classes]
    running: list = [None for _ in classes]
    waiting: list = [None for _ in classes]
    posted: dict = {}
    ended: set = set()
    link: deque = deque()  # [message, work left]; the head is in flight
    t = 0.0
    bp = [[0.0] * iterations for _ in classes]
    finished = [False for _ in classes]

    def advance(c):
        while True:
            if waiting[c] is not None:
                it = waiting[c]
                if not all(m in ended for m in range(it * len(messages),
                                                     (it + 1) * len(messages))):
                    return
                waiting[c] = None
            step = next(progs[c], None)
            if step is None:
                finished[c] = True
                return
            kind, value, tag = step
            if kind == "op":
                running[c], left[c] = tag, value
                if value > 0:
                    return
                end_op(c)
            elif kind == "post":
                posted[value] = posted.get(value, 0) + 1
                if posted[value] == len(slowdown):
                    link.append([value, cost(messages[value % len(messages)][1])])
            else:
                waiting[c] = value

    def end_op(c):
        tag = running[c]
        if tag is not None and tag[1] == 0:
            bp[c][tag[0]] = t
        running[c] = left[c] = None

    for c in classes:
        advance(c)
    while not all(finished):
        active = [c for c in classes if left[c] is not None]
        fc = kx if link else 1.0
        fl = ky if active else 1.0
        if not active and not link:  # everyone waits at a barrier that has opened
            for c in classes:
                advance(c)
            continue
        ends = {c: t + left[c] * fc for c in active}
        link_end = t + link[0][1] * fl if link else math.inf
        horizon = min([link_end, *ends.values()])
        for c in active:
            left[c] = 0.0 if ends[c] == horizon else left[c] - (horizon - t) / fc
        if link:
            link[0][1] = 0.0 if link_end == horizon else link[0][1] - (horizon - t) / fl
        t = horizon
        for c in classes:  # ops end first, and whoever can go on posts
            if left[c] == 0.0:
                end_op(c)
        for c in classes:
            if left[c] is None and not finished[c] and waiting[c] is None:
                advance(c)
        if link and link[0][1] == 0.0:  # then the collective ends
            ended.add(link.popleft()[0])
        for c in classes:
            if left[c] is None and not finished[c]:
                advance(c)
    return bp


@FEW
@given(trace=traces(with_grads=True, positive_times=True), net=networks(),
       cluster=clusters(max_workers=4), x=st.floats(0.0, 3.0), y=st.floats(0.01, 4.0),
       data=st.data())
def test_wfbp_family_against_a_fluid_simulation(trace, net, cluster, x, y, data):
    p = cluster.workers

    def cost(nbytes):  # the ring all-reduce of docs/model.md 2.1, written out
        q = (p - 1) / p
        return 2 * (p - 1) * net.alpha + 2 * q * nbytes * net.beta + q * nbytes * net.gamma

    if data.draw(st.booleans(), label="per tensor"):
        name, opts = "wfbp", {}
        messages = [(layer, nb) for layer in range(trace.num_layers - 1, -1, -1)
                    for nb in trace.tensors[layer]]
    else:
        buckets = data.draw(partitions(trace), label="buckets")
        name, opts = "ddp", {"buckets": buckets}
        messages = []
        for lo, hi in sorted(buckets, key=lambda b: -b[0]):
            grads = [i for i in range(lo, hi + 1) if trace.size[i] > 0]
            messages.append((grads[0], sum(trace.size[i] for i in grads)))
    cl = Cluster(p, cluster.slowdown, interference=x, comm_interference=y)
    r = sim(trace, net, cl, name, opts, record_ops=True)
    want = fluid_two_way(trace, messages, cost, cluster.slowdown, x, y, ITERS)
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
