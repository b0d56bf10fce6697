"""Hypothesis strategies for random small workloads, networks and clusters, and the shared
settings and float tolerances of the property and cross-check tests.

Traces: 1-12 layers, times 0-5 ms, gradients 0-50 MB with some layers (sometimes all) without
parameters, optional update times. Networks: ring alpha-beta(-gamma) with latencies and
bandwidths around real interconnects (1 Gb/s .. 200 Gb/s).
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import dearsim

MAX_MS = 5.0
MAX_BYTES = 50_000_000

# Deterministic in CI: no example database, derandomized search, no deadline (the first call
# of a run imports and warms things up).
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(SETTINGS, max_examples=30)


# --------------------------------------------------------------------------- tolerances

REL = 1e-9
ABS = 1e-15


def close(a: float, b: float) -> bool:
    """Equal up to float summation error (rel 1e-9 plus a tiny absolute slack)."""
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def geq(a: float, b: float) -> bool:
    """``a >= b`` up to float summation error."""
    return a >= b - (REL * max(abs(a), abs(b)) + ABS)


# --------------------------------------------------------------------------- traces

def times_s(max_ms: float = MAX_MS, positive: bool = False) -> st.SearchStrategy[float]:
    """A compute time in seconds, 0-5 ms: exact zeros, round values and arbitrary floats."""
    lo = 1e-6 if positive else 0.0
    arbitrary = st.floats(lo * 1e3, max_ms, allow_nan=False, allow_subnormal=False)
    rounded = st.integers(1 if positive else 0, int(max_ms * 10)).map(lambda k: k / 10)
    ms = st.one_of(rounded, arbitrary) if positive else st.one_of(st.just(0.0), rounded, arbitrary)
    return ms.map(lambda x: x / 1e3)


def sizes_bytes(max_bytes: int = MAX_BYTES) -> st.SearchStrategy[int]:
    """A gradient size in bytes: often 0 (a layer without parameters), else up to 50 MB,
    with extra weight near MiB boundaries (bucket caps and DeAR's threshold are in MiB)."""
    mib = 1 << 20
    return st.one_of(
        st.just(0),
        st.integers(1, max_bytes),
        st.integers(1, 48).map(lambda k: k * mib),
        st.integers(1, 4096),
    )


def half_mib_sizes() -> st.SearchStrategy[int]:
    """Gradient sizes on a 0.5 MiB grid (0 .. 16 MiB): group totals often land exactly on a
    bucket cap or threshold, which exercises the "reaches or passes" / "stays below" ties."""
    return st.integers(0, 32).map(lambda k: k * (1 << 19))


def half_mib_limits() -> st.SearchStrategy[float]:
    """A bucket cap or threshold in MiB on the same 0.5 MiB grid (0.5 .. 16 MiB)."""
    return st.integers(1, 32).map(lambda k: k / 2)


@st.composite
def traces(
    draw: st.DrawFn,
    min_layers: int = 1,
    max_layers: int = 12,
    positive_times: bool = False,
    with_grads: bool = False,
    sizes: st.SearchStrategy[int] | None = None,
) -> dearsim.Trace:
    """A random trace. ``with_grads`` forces at least one layer with a gradient;
    ``positive_times`` makes every compute time > 0 (no same-instant ties); ``sizes``
    replaces the gradient-size strategy."""
    n = draw(st.integers(min_layers, max_layers))
    t = times_s(positive=positive_times)
    fwd = draw(st.lists(t, min_size=n, max_size=n))
    bwd = draw(st.lists(t, min_size=n, max_size=n))
    size = draw(st.lists(sizes if sizes is not None else sizes_bytes(), min_size=n, max_size=n))
    if with_grads and not any(size):
        size[draw(st.integers(0, n - 1))] = draw(st.integers(1, MAX_BYTES))
    update = None
    if draw(st.booleans()):
        u = times_s(max_ms=1.0, positive=positive_times)
        update = draw(st.lists(u, min_size=n, max_size=n))
    tensors = draw(breakdowns(size)) if draw(st.booleans()) else None
    return dearsim.Trace.from_layers(fwd, bwd, size, update, tensors=tensors)


@st.composite
def breakdowns(draw: st.DrawFn, size: list[int]) -> list[list[int]]:
    """A per-tensor breakdown of each layer's gradient: 1-3 tensors of positive bytes."""
    out: list[list[int]] = []
    for total in size:
        k = draw(st.integers(1, min(3, total))) if total > 0 else 0
        if k <= 1:
            out.append([total] if total else [])
            continue
        cuts = sorted(draw(st.sets(st.integers(1, total - 1), min_size=k - 1, max_size=k - 1)))
        bounds = [0, *cuts, total]
        out.append([b - a for a, b in zip(bounds, bounds[1:])])
    return out


@st.composite
def partitions(draw: st.DrawFn, trace: dearsim.Trace) -> list[list[int]]:
    """A random partition of the trace's gradient layers into runs of consecutive gradient
    layers, as inclusive ``[first, last]`` ranges in forward order (explicit buckets/groups)."""
    grads = list(trace.grad_layers)
    if not grads:
        return []
    cuts = draw(st.lists(st.booleans(), min_size=len(grads) - 1, max_size=len(grads) - 1))
    runs = [[grads[0]]]
    for layer, cut in zip(grads[1:], cuts):
        if cut:
            runs.append([layer])
        else:
            runs[-1].append(layer)
    return [[r[0], r[-1]] for r in runs]


# --------------------------------------------------------------------------- networks

def alphas() -> st.SearchStrategy[float]:
    """Per-step latency, 0 .. 100 us."""
    return st.one_of(st.just(0.0), st.floats(1e-7, 1e-4, allow_subnormal=False))


def betas() -> st.SearchStrategy[float]:
    """Per-byte time: 200 Gb/s (4e-11 s/B) .. 1 Gb/s (8e-9 s/B)."""
    return st.floats(4e-11, 8e-9, allow_subnormal=False)


def gammas() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(1e-12, 1e-9, allow_subnormal=False))


@st.composite
def networks(draw: st.DrawFn, gamma: bool = True) -> dearsim.AlphaBeta:
    return dearsim.AlphaBeta(draw(alphas()), draw(betas()), draw(gammas()) if gamma else 0.0)


def worker_counts(min_workers: int = 2, max_workers: int = 64) -> st.SearchStrategy[int]:
    return st.integers(min_workers, max_workers)


def factors() -> st.SearchStrategy[float]:
    """A multiplier >= 1 (to make a network slower)."""
    return st.one_of(st.just(1.0), st.floats(1.0, 4.0, allow_subnormal=False), st.just(2.0))


@st.composite
def clusters(draw: st.DrawFn, max_workers: int = 8) -> dearsim.Cluster:
    """A heterogeneous cluster: each worker's compute-time multiplier is 1, 1.5 or 2."""
    p = draw(st.integers(2, max_workers))
    slow = draw(st.lists(st.sampled_from((1.0, 1.5, 2.0)), min_size=p, max_size=p))
    return dearsim.Cluster(workers=p, slowdown=tuple(slow))


# --------------------------------------------------------------------------- schedules

ALL_SCHEDULES = ("wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear")


@st.composite
def options_for(draw: st.DrawFn, name: str) -> dict:
    """Random but valid options for a schedule (sometimes its defaults)."""
    if draw(st.booleans()):
        return {}
    mb = st.sampled_from((0.5, 1.0, 4.0, 10.0, 25.0, 64.0))
    if name == "ddp":  # each key given or left unset (its unset default differs)
        keys = draw(st.sets(st.sampled_from(("bucket_cap_mb", "first_bucket_mb")), min_size=1))
        return {k: draw(mb) for k in sorted(keys)}
    if name == "dear":
        opts = {"threshold_mb": draw(st.one_of(st.none(), mb))}
        if draw(st.booleans()):
            opts["prefetch"] = draw(st.sampled_from(("chain", "next")))
        return opts
    if name == "horovod":
        return {
            "cycle_time_ms": draw(st.sampled_from((0.25, 1.0, 2.5, 5.0))),
            "fusion_threshold_mb": draw(mb),
        }
    if name == "bytescheduler":
        return {
            "partition_bytes": draw(st.sampled_from((1_000_000, 4_000_000, 16_000_000))),
            "credit_bytes": draw(st.sampled_from((1, 4_000_000, 16_000_000, 64_000_000))),
        }
    return {}
