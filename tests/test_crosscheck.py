"""The SimPy simulator against the independent plain-Python oracle (tests/oracle.py) on random
workloads: every backward-pass end and every collective on the link (order, kind, bytes,
layers, start and end) must agree, for the statically grouped schedules ``wfbp`` (per
tensor), ``ddp``, ``mgwfbp`` (with the buckets the schedule chose) and ``dear`` (default
threshold, random thresholds, without threshold and with random explicit groups, both
prefetch rules)."""

from __future__ import annotations

import math

import oracle
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    FEW,
    SETTINGS,
    close,
    clusters,
    half_mib_limits,
    half_mib_sizes,
    networks,
    options_for,
    partitions,
    traces,
    worker_counts,
)

import dearsim

ITERS = 8
WARMUP = 2
ANY_COSTS = dearsim.AlphaBeta(1e-5, 1e-9).costs(4)  # ddp buckets do not depend on costs


def check_against_oracle(trace, net, workers, name, options, slowdown=None):
    cluster = dearsim.Cluster(workers, slowdown) if slowdown else workers
    r = dearsim.simulate(trace, net, cluster, name, options, iterations=ITERS, warmup=WARMUP)
    sched = dearsim.schedules.create(name, options)
    costs = oracle.ring_costs(workers, net.alpha, net.beta, net.gamma)
    layers = (trace.fwd, trace.bwd, trace.size, trace.update)
    speeds = slowdown or (1.0,)
    if name == "dear":
        groups = [g.layers for g in sched.groups(trace)]
        prefetch = sched.options.prefetch
        bp_end, log = oracle.dear_timeline(*layers, groups, costs, ITERS, speeds, prefetch)
    elif name == "wfbp" and not options.get("buckets"):
        messages = oracle.tensor_messages(trace.tensors)
        bp_end, log = oracle.wfbp_timeline(*layers, None, costs, ITERS, speeds, messages)
    else:
        buckets = [b.layers for b in sched.buckets(trace, net.costs(workers))]
        bp_end, log = oracle.wfbp_timeline(*layers, buckets, costs, ITERS, speeds)

    assert len(r.raw.bp_end) == len(bp_end)
    for i, (got, want) in enumerate(zip(r.raw.bp_end, bp_end)):
        assert close(got, want), f"backward pass {i} ends at {got}, oracle {want}"
    assert len(r.raw.collectives) == len(log)
    for k, (rec, (op, nbytes, it, rng, start, end)) in enumerate(zip(r.raw.collectives, log)):
        assert (rec.op.value, rec.nbytes, rec.iteration, rec.layers) == (op, nbytes, it, rng), (
            f"collective {k}: {rec} vs oracle {(op, nbytes, it, rng)}"
        )
        assert close(rec.start, start) and close(rec.end, end), (k, rec, start, end)
    assert close(r.iteration_time_s, oracle.period(bp_end, WARMUP))
    measured = range(WARMUP, ITERS - 1)
    busy = math.fsum(e - s for _, _, it, _, s, e in log if it in measured) / len(measured)
    assert close(r.comm_s, busy)


@pytest.mark.parametrize("name", ["wfbp", "ddp", "mgwfbp", "dear"])
@SETTINGS
@given(trace=traces(), net=networks(), p=worker_counts(1, 64), data=st.data())
def test_simulator_matches_oracle(name, trace, net, p, data):
    # Random options: ddp caps, dear thresholds (None = "DeAR w/o TF"), or the defaults.
    check_against_oracle(trace, net, p, name, data.draw(options_for(name), label="options"))


@pytest.mark.parametrize("prefetch", ["chain", "next"])
@SETTINGS
@given(trace=traces(), net=networks(), p=worker_counts(2, 64))
def test_dear_without_threshold_matches_oracle(prefetch, trace, net, p):
    check_against_oracle(trace, net, p, "dear", {"threshold_mb": None, "prefetch": prefetch})


@pytest.mark.parametrize(("name", "key"), [("wfbp", "buckets"), ("dear", "groups")])
@SETTINGS
@given(trace=traces(), net=networks(), p=worker_counts(2, 64), data=st.data())
def test_explicit_groupings_match_oracle(name, key, trace, net, p, data):
    ranges = data.draw(partitions(trace), label=key)
    check_against_oracle(trace, net, p, name, {key: ranges})


@pytest.mark.parametrize("name", ["wfbp", "ddp", "mgwfbp", "dear"])
@FEW
@given(trace=traces(positive_times=True), net=networks(), cluster=clusters(), data=st.data())
def test_heterogeneous_workers_match_oracle(name, trace, net, cluster, data):
    # Positive compute times: no two workers post at the same instant, so the order in which
    # collectives become fully posted is unambiguous.
    opts = data.draw(options_for(name), label="options")
    check_against_oracle(trace, net, cluster.workers, name, opts, cluster.slowdown)


# --------------------------------------------------------------------------- grouping rules


@SETTINGS
@given(trace=traces(), data=st.data())
def test_ddp_buckets_match_oracle(trace, data):
    opts = data.draw(options_for("ddp"), label="options")
    check_ddp_buckets(trace, opts)


@SETTINGS
@given(trace=traces(sizes=half_mib_sizes()), first=half_mib_limits(), cap=half_mib_limits())
def test_ddp_buckets_match_oracle_at_exact_caps(trace, first, cap):
    # Sizes and caps on one 0.5 MiB grid: buckets often reach a cap exactly ("reaches or
    # passes" closes the bucket).
    check_ddp_buckets(trace, {"first_bucket_mb": first, "bucket_cap_mb": cap})


def check_ddp_buckets(trace, opts):
    got = [b.layers for b in dearsim.schedules.create("ddp", opts).buckets(trace, ANY_COSTS)]
    want = oracle.ddp_buckets(trace.size, opts.get("first_bucket_mb"), opts.get("bucket_cap_mb"))
    assert got == want


@SETTINGS
@given(trace=traces(), data=st.data())
def test_dear_groups_match_oracle(trace, data):
    opts = data.draw(options_for("dear"), label="options")
    got = [g.layers for g in dearsim.schedules.create("dear", opts).groups(trace)]
    assert got == oracle.dear_groups(trace.size, opts.get("threshold_mb", 25.0))


@SETTINGS
@given(trace=traces(sizes=half_mib_sizes()), threshold=half_mib_limits())
def test_dear_groups_match_oracle_at_exact_threshold(trace, threshold):
    # A group whose total would equal the threshold exactly is closed ("stays below").
    opts = {"threshold_mb": threshold}
    got = [g.layers for g in dearsim.schedules.create("dear", opts).groups(trace)]
    assert got == oracle.dear_groups(trace.size, threshold)


@FEW
@given(trace=traces(), net=networks(), p=worker_counts(1, 64))
def test_wfbp_has_one_bucket_per_gradient_layer(trace, net, p):
    got = [b.layers for b in dearsim.schedules.create("wfbp").buckets(trace, net.costs(p))]
    assert got == [(i, i) for i in trace.grad_layers]
    # ...and, run, one all-reduce per gradient tensor of an iteration
    r = dearsim.simulate(trace, net, max(p, 2), "wfbp", iterations=4, warmup=1)
    assert r.collectives == trace.num_tensors
