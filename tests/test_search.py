"""dearsim.search: the optimal WFBP partition equals brute force and beats every rule; the
DeAR partition search never loses to the best threshold; the Bayesian tuners are
deterministic for a seed; bad input gets one clear line."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from strategies import FEW, geq, networks, traces, worker_counts

import dearsim
from dearsim import fast, schedules, search
from dearsim.search import Setting, optimal_buckets

ITERS = 6


def period(trace, net, p, name, options):
    sched = schedules.create(name, options)
    return fast.evaluate(sched, trace, net.costs(p), dearsim.Cluster(p), ITERS, 2)


def all_partitions(grads):
    for mask in itertools.product((False, True), repeat=len(grads) - 1):
        runs = [[grads[0]]]
        for layer, cut in zip(grads[1:], mask):
            if cut:
                runs.append([layer])
            else:
                runs[-1].append(layer)
        yield [[r[0], r[-1]] for r in runs]


@FEW
@given(trace=traces(max_layers=8, with_grads=True), net=networks(), p=worker_counts())
def test_optimal_equals_brute_force(trace, net, p):
    ranges, _ = optimal_buckets(trace, net.costs(p), dearsim.Cluster(p))
    got = period(trace, net, p, "ddp", {"buckets": ranges})
    brute = min(
        period(trace, net, p, "ddp", {"buckets": b}) for b in all_partitions(trace.grad_layers)
    )
    assert geq(brute, got) and geq(got, brute), (got, brute)


@FEW
@given(trace=traces(max_layers=12, with_grads=True), net=networks(), p=worker_counts())
def test_optimal_never_worse_than_rules(trace, net, p):
    ranges, _ = optimal_buckets(trace, net.costs(p), dearsim.Cluster(p))
    got = period(trace, net, p, "ddp", {"buckets": ranges})
    others = [period(trace, net, p, "mgwfbp", {}), period(trace, net, p, "ddp", {}),
              period(trace, net, p, "wfbp", {})]
    others += [period(trace, net, p, "ddp", {"bucket_cap_mb": mb}) for mb in (0.5, 2, 8, 32, 256)]
    for t in others:
        assert geq(t, got)


def test_optimal_on_a_real_trace_beats_scan_and_mgwfbp():
    r = search.search("traces/resnet50-b64.csvy", "10GbE-fit", 64, "ddp", "optimal")
    assert r.iteration_time_s <= r.threshold_time_s * (1 + 1e-12)
    m = search.search("traces/resnet50-b64.csvy", "10GbE-fit", 64, "mgwfbp", "optimal")
    assert m.iteration_time_s <= m.default_time_s * (1 + 1e-12)
    # the reported buckets run as reported
    assert [tuple(b) for b in r.options["buckets"]] == r.ranges


@FEW
@given(trace=traces(max_layers=10, with_grads=True), net=networks(), p=worker_counts())
def test_partition_never_worse_than_best_threshold(trace, net, p):
    s = Setting(trace, net.costs(p), dearsim.Cluster(p), "n", ITERS, 2)
    r = search.partition(s, 60, search.scan(Setting(trace, net.costs(p), dearsim.Cluster(p), "n",
                                                    ITERS, 2), "dear", 8))
    assert r.iteration_time_s <= r.threshold_time_s
    # what it reports is what the groups give
    assert period(trace, net, p, "dear", r.options) == pytest.approx(r.iteration_time_s, rel=1e-12)


def test_scan_is_exhaustive_over_its_grid():
    trace = dearsim.load_trace("traces/resnet50-b64.csvy")
    r = search.search(trace, "10GbE", 16, "dear", "scan", budget=9)
    assert len(r.history) == 9
    assert r.iteration_time_s == min([t for _, t in r.history] + [r.default_time_s])
    assert r.history[0][0]["threshold_mb"] == pytest.approx(1.0)
    assert r.history[-1][0]["threshold_mb"] == pytest.approx(256.0)


def test_scan_keeps_the_default_when_no_grid_point_beats_it():
    # DDP's default (a 1 MiB first bucket, then 25 MiB) is on no grid of one cap: here it
    # beats all 64 grid points, and the scan reports it (options {}) rather than a worse one
    r = search.search("traces/resnet50-b64.csvy", "10GbE", 32, "ddp", "scan")
    assert r.default_time_s < min(t for _, t in r.history)
    assert r.options == {} and r.threshold_options == {}
    assert r.iteration_time_s == r.default_time_s and r.gain_over_default == 0.0
    assert r.evaluations == 65  # the default once, then the grid
    assert r.ranges == search.Setting(
        dearsim.load_trace("traces/resnet50-b64.csvy"), dearsim.load_network("10GbE").costs(32),
        dearsim.Cluster(32), "10GbE").ranges("ddp", {})


@pytest.mark.parametrize("reference", [True, False])
def test_references_change_nothing_but_the_report(reference):
    trace = dearsim.load_trace("traces/resnet50-b64.csvy")
    base = search.search(trace, "10GbE-fit", 16, "ddp", "optimal")
    r = search.search(trace, "10GbE-fit", 16, "ddp", "optimal", references=reference)
    assert (r.options, r.iteration_time_s, r.evaluations) == (
        base.options, base.iteration_time_s, base.evaluations)
    assert (r.threshold_time_s is not None) is reference


@pytest.mark.parametrize("name", ("dear", "bytescheduler"))
def test_bayes_is_deterministic_for_a_seed(name):
    trace = dearsim.Trace.from_layers(
        [1e-3] * 6, [2e-3] * 6, [3_000_000, 0, 20_000_000, 1_000_000, 8_000_000, 500_000]
    )
    a = search.search(trace, "10GbE", 8, name, "bayes", seed=3, iterations=5)
    b = search.search(trace, "10GbE", 8, name, "bayes", seed=3, iterations=5)
    assert a.history == b.history
    assert a.trials_to_best is not None and 1 <= a.trials_to_best <= len(a.history)
    assert a.gap_to_reference is not None
    # without the reference grid: the same trials, nothing to compare with
    c = search.search(trace, "10GbE", 8, name, "bayes", seed=3, iterations=5, references=False)
    assert c.history == a.history and c.evaluations == a.evaluations
    assert c.reference_time_s is None and c.gap_to_reference is None


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(scheduler="dear", method="optimal"), "method 'optimal' does not apply"),
        (dict(scheduler="wfbp", method="scan"), "does not apply to scheduler 'wfbp'"),
        (dict(scheduler="dear", method="scan", budget=0), "budget: must be a positive integer"),
        (dict(scheduler="nope", method="scan"), "unknown scheduler 'nope'"),
    ],
)
def test_bad_input_is_one_line(kw, message):
    trace = dearsim.Trace.from_layers([1e-3], [1e-3], [100])
    with pytest.raises(dearsim.DearsimError) as exc:
        search.search(trace, "10GbE", 4, **kw)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_yaml_snippet():
    r = search.search("traces/resnet50-b64.csvy", "10GbE", 16, "dear", "partition", budget=30)
    snip = r.yaml_snippet()
    assert snip.startswith("- {name: dear, label: dear-searched, options: {")
    import yaml

    entry = yaml.safe_load(snip)[0]
    assert entry["name"] == "dear" and entry["label"] == "dear-searched"
    assert [tuple(g) for g in entry["options"]["groups"]] == r.ranges
