"""FSDP / ZeRO-3 (``fsdp``): hand-worked timelines (docs/model.md 4.5).

``p = 2``, ``alpha = 0``, ``beta = 1e-9``: an all-gather or reduce-scatter of 2e6 B takes
``2e6 * 1e-9 / 2 = 1 ms``. One unit per layer (``threshold_mb: null``); ``U_0`` is the root.
"""

from __future__ import annotations

import pytest

import dearsim
from dearsim import AlphaBeta, fast

NET = AlphaBeta(0.0, 1e-9)
MS = 1e-3


def run(layers: int, opts=None, workers=2, iterations=6):
    tr = dearsim.Trace.from_layers([MS] * layers, [MS] * layers, [2_000_000] * layers)
    return dearsim.simulate(tr, NET, workers, "fsdp", {"threshold_mb": None, **(opts or {})},
                            iterations=iterations, warmup=2, record_ops=True)


def timeline(r, it):
    return [(c.op.value, c.layers[0], c.tag, round(c.posted / MS, 9), round(c.start / MS, 9),
             round(c.end / MS, 9)) for c in r.raw.collectives if c.iteration == it]


def test_two_units():
    # Host at 0: AG_f(U0), AG_f(U1) (the root is not freed, so the limiter never waits) and
    # the backward AG of U1 (the root needs none). Link: 0-1, 1-2, 2-3. f0 1-2, f1 2-3,
    # b1 3-4 (RS U1 4-5), b0 4-5 (RS U0 5-6); barrier at 6: period 6 ms.
    r = run(2)
    assert r.iteration_time_s == pytest.approx(6 * MS)
    assert timeline(r, 0) == [
        ("all_gather", 0, 0, 0, 0, 1),
        ("all_gather", 1, 0, 0, 1, 2),
        ("all_gather", 1, 1, 0, 2, 3),
        ("reduce_scatter", 1, 0, 4, 4, 5),
        ("reduce_scatter", 0, 0, 5, 5, 6),
    ]
    # every unit's bytes: AG in forward, AG in backward (not the root), RS: 5 x 2e6 B
    assert r.comm_bytes == 10_000_000
    assert r.buckets == [(0, 0), (1, 1)]


def test_four_units_rate_limiter():
    # Iteration 0: frees queue fd1, fd2; AG_f(U3) waits for fd1 (f1 ends at 3): 3-4.
    # Backward: AG_b(U3) waits for fd2 (4): 4-5; prefetch AG_b(U2) at 4: 5-6; prefetch
    # AG_b(U1) waits for fd3 (5): 6-7; b3 5-6, RS3 7-8; b2 6-7, RS2 8-9; b1 7-8, RS1 9-10;
    # b0 8-9, RS0 10-11. Iteration 1 starts at 11 with four stale (done) events queued,
    # so its four forward AGs are posted at once: 11-15; f 12-16; AG_b(U3) waits for fd1'
    # (14): 15-16, AG_b(U2) for fd2' (15): 16-17, AG_b(U1) for fd3' (16): 17-18; b3 16-17,
    # b2 17-18, b1 18-19, b0 19-20; RS 18-22. Backward ends at 9, 20, 31, ...: 11 ms.
    r = run(4)
    assert r.iteration_time_s == pytest.approx(11 * MS)
    assert [x[3:] for x in timeline(r, 0)] == [
        (0, 0, 1), (0, 1, 2), (0, 2, 3), (3, 3, 4),
        (4, 4, 5), (4, 5, 6), (5, 6, 7),
        (6, 7, 8), (7, 8, 9), (8, 9, 10), (9, 10, 11),
    ]
    assert [x[3:] for x in timeline(r, 1)] == [
        (11, 11, 12), (11, 12, 13), (11, 13, 14), (11, 14, 15),
        (14, 15, 16), (15, 16, 17), (16, 17, 18),
        (17, 18, 19), (18, 19, 20), (19, 20, 21), (20, 21, 22),
    ]
    ends = [r.raw.bp_end[i] / MS for i in range(4)]
    assert ends == pytest.approx([9, 20, 31, 42])


def test_without_limiter_or_prefetch_everything_is_posted_early():
    # limit_all_gathers off: the host posts all 4 forward and 3 backward AGs at T.
    r = run(4, {"limit_all_gathers": False})
    posted = [x[3] for x in timeline(r, 0) if x[0] == "all_gather"]
    assert posted == [0] * 7


def test_one_unit_is_the_root():
    # one unit (4 layers, 8e6 B < 25 MiB): AG 4 ms at T, no backward AG, RS 4 ms
    tr = dearsim.Trace.from_layers([MS] * 4, [MS] * 4, [2_000_000] * 4)
    r = dearsim.simulate(tr, NET, 2, "fsdp", iterations=6)
    # AG 0-4, f 4-8, b 8-12, RS 12-16: period 16
    assert r.iteration_time_s == pytest.approx(16 * MS)
    assert r.collectives == 2


def test_moves_more_bytes_than_dear():
    tr = dearsim.Trace.from_layers([MS] * 4, [MS] * 4, [2_000_000] * 4)
    f = dearsim.simulate(tr, NET, 2, "fsdp", {"threshold_mb": None})
    d = dearsim.simulate(tr, NET, 2, "dear", {"threshold_mb": None})
    assert d.comm_bytes == 16_000_000  # RS + AG of every group: one all-reduce's bytes
    assert f.comm_bytes == 22_000_000  # plus the backward AG of every unit but the root


def test_heterogeneous_and_jittered_workers_run():
    tr = dearsim.Trace.from_layers([MS] * 5, [2 * MS] * 5, [2_000_000] * 5)
    cl = dearsim.Cluster.build(4, stragglers=1, straggler_slowdown=2.0, jitter_cv=0.1, seed=3)
    r = dearsim.simulate(tr, NET, cl, "fsdp", {"threshold_mb": None}, iterations=8)
    base = dearsim.simulate(tr, NET, 4, "fsdp", {"threshold_mb": None}, iterations=8)
    assert r.iteration_time_s > base.iteration_time_s
    assert len(r.worker_wait_s) == 4


def test_fast_evaluator_gives_the_same_timelines():
    # the examples above on the fast evaluator (tests/test_fast_fsdp.py checks it on random
    # workloads): the same iteration times and bytes
    for layers, opts, period in ((2, None, 6), (4, None, 11)):
        r = run(layers, opts)
        tr = dearsim.Trace.from_layers([MS] * layers, [MS] * layers, [2_000_000] * layers)
        f = fast.simulate(tr, NET, 2, "fsdp", {"threshold_mb": None, **(opts or {})},
                          iterations=6)
        assert f.iteration_time_s == pytest.approx(period * MS)
        assert f.iteration_time_s == pytest.approx(r.iteration_time_s, rel=1e-12)
        assert (f.comm_bytes, f.collectives, f.buckets) == (r.comm_bytes, r.collectives,
                                                            r.buckets)
