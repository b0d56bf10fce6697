"""Hand-computed timelines of ``wfbp``: one all-reduce per gradient tensor (per layer with a
gradient when the trace has no breakdown), posted when ready; a global barrier (backward
ended, every all-reduce finished, sum(u) run) before the next forward.

Unless a test says otherwise: p = 2, alpha = 0, beta = 1e-9 s/B, so an all-reduce of n bytes
takes n * 1e-9 s (2e6 B -> 2 ms). Times in comments are ms.
"""

from __future__ import annotations

import pytest
from timeline_helpers import AR, MS, approx, bp_ends, colls, op_times, ops, run, what, when

import dearsim

EX_A = ([1, 1], [1, 1], [2_000_000, 2_000_000])
EX_B = ([1, 1, 1], [1, 1, 1], [1_000_000, 1_000_000, 4_000_000])


@pytest.mark.parametrize(
    ("example", "expected_ms"),
    [
        # Example A: BP ends at 4; all-reduces 3-5 and 5-7; forward waits for both -> 7.
        pytest.param(EX_A, 7.0, id="A"),
        # Example B: fwd 0-3; bwd2 3-4 -> AR2 4-8; bwd1 4-5 -> AR1 8-9; bwd0 5-6 -> AR0
        # 9-10; barrier at 10 -> 10.
        pytest.param(EX_B, 10.0, id="B"),
    ],
)
def test_worked_examples(example, expected_ms):
    f, b, s = example
    res = run(f, b, s, "wfbp")
    assert res.iteration_time_s == pytest.approx(expected_ms * MS, rel=1e-9)


def test_example_a_timeline():
    # Iteration 0: fwd0 0-1, fwd1 1-2, bwd1 2-3 (grad 1 ready at 3), bwd0 3-4 (ready at 4).
    # AR(1) posted 3, runs 3-5; AR(0) posted 4, link busy until 5, runs 5-7.
    # Barrier at 7: iteration 1 fwd0 7-8, fwd1 8-9, bwd1 9-10, bwd0 10-11;
    # AR(1) 10-12, AR(0) posted 11 runs 12-14; iteration 2 starts at 14.
    res = run(*EX_A, "wfbp")
    first = colls(res, 0, 7)
    assert what(first) == [(AR, (1, 1), 2_000_000), (AR, (0, 0), 2_000_000)]
    assert when(first) == approx([3, 3, 5, 4, 5, 7])
    assert ops(res, 0, 14) == [
        ("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0),
        ("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0),
    ]  # fmt: skip
    assert op_times(res, 0, 14) == approx([0, 1, 1, 2, 2, 3, 3, 4, 7, 8, 8, 9, 9, 10, 10, 11])
    second = colls(res, 7, 14)
    assert when(second) == approx([10, 10, 12, 11, 12, 14])
    assert bp_ends(res)[:3] == approx([4, 11, 18])
    # compute per iteration 4 ms, link busy 4 ms, exposed = 7 - 4 = 3 ms.
    assert res.compute_s == pytest.approx(4 * MS, rel=1e-9)
    assert res.comm_s == pytest.approx(4 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(3 * MS, rel=1e-9)
    assert res.buckets == [(0, 0), (1, 1)]


def test_example_b_link_is_a_fifo():
    # fwd 0-3; bwd2 3-4 -> AR(2) of 4e6 B posted 4, runs 4-8; bwd1 4-5 -> AR(1) posted 5,
    # waits for the link: 8-9; bwd0 5-6 -> AR(0) posted 6: 9-10. Next forward at 10.
    res = run(*EX_B, "wfbp")
    first = colls(res, 0, 10)
    assert what(first) == [
        (AR, (2, 2), 4_000_000),
        (AR, (1, 1), 1_000_000),
        (AR, (0, 0), 1_000_000),
    ]
    assert when(first) == approx([4, 4, 8, 5, 8, 9, 6, 9, 10])
    assert op_times(res, 10, 11) == approx([10, 11])  # iteration 1's fwd0


def test_update_runs_after_the_barrier():
    # Example A with u = [0.5, 0.25]. Iteration 0 as in example A: barrier (last AR ends)
    # at 7; then the whole update sum(u) = 0.75 runs on the compute stream: 7-7.75; the
    # next forward starts at 7.75: fwd0 7.75-8.75, fwd1 -9.75, bwd1 -10.75, bwd0 -11.75.
    # Period 7 + 0.75 = 7.75; compute per iteration 4 + 0.75 = 4.75.
    f, b, s = EX_A
    res = run(f, b, s, "wfbp", u=[0.5, 0.25])
    assert res.iteration_time_s == pytest.approx(7.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(4.75 * MS, rel=1e-9)
    window = ops(res, 4, 7.75)  # between BP end and the next forward
    assert sorted(window) == [("update", 0), ("update", 1)]
    times = op_times(res, 4, 7.75)
    assert min(times) == approx(7.0)  # no update before the barrier at 7
    assert max(times) == approx(7.75)
    assert ops(res, 7.75, 7.8) == [("fwd", 0)]
    assert op_times(res, 7.75, 7.8) == approx([7.75, 8.75])
    assert bp_ends(res)[:2] == approx([4, 11.75])


def test_layer_without_parameters_sends_nothing():
    # s = [2e6, 0, 2e6]: fwd 0-3; bwd2 3-4 -> AR(2) 4-6; bwd1 4-5 (no gradient, nothing
    # posted); bwd0 5-6 -> AR(0) posted 6, runs 6-8. Barrier 8 -> period 8.
    res = run([1, 1, 1], [1, 1, 1], [2_000_000, 0, 2_000_000], "wfbp")
    assert res.buckets == [(0, 0), (2, 2)]
    first = colls(res, 0, 8)
    assert what(first) == [(AR, (2, 2), 2_000_000), (AR, (0, 0), 2_000_000)]
    assert when(first) == approx([4, 4, 6, 6, 6, 8])
    assert res.iteration_time_s == pytest.approx(8 * MS, rel=1e-9)
    assert res.collectives == 2
    assert res.comm_bytes == 4_000_000


def test_explicit_buckets():
    # Example B with buckets [[0,0],[1,2]]: bucket (1,2) of 5e6 B is ready when its lowest
    # layer's backward ends: bwd2 3-4, bwd1 4-5 -> posted 5, runs 5-10; bucket (0,0) ready
    # at 6, runs 10-11. Barrier 11 -> period 11 (the default one-per-layer gives 10).
    f, b, s = EX_B
    res = run(f, b, s, "wfbp", {"buckets": [[0, 0], [1, 2]]})
    assert res.buckets == [(0, 0), (1, 2)]
    first = colls(res, 0, 11)
    assert what(first) == [(AR, (1, 2), 5_000_000), (AR, (0, 0), 1_000_000)]
    assert when(first) == approx([5, 5, 10, 6, 10, 11])
    assert res.iteration_time_s == pytest.approx(11 * MS, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1: collectives cost nothing, so the period is the compute per iteration:
    # f 1+2, b 3+4, u 0.5+0.25 -> 10.75 ms; exposed communication 0.
    res = run([1, 2], [3, 4], [5_000_000, 3_000_000], "wfbp", u=[0.5, 0.25], workers=1)
    assert res.iteration_time_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)
    assert res.comm_s == pytest.approx(0.0, abs=1e-12)


def test_heterogeneous_workers_wait_for_the_slowest_post():
    # Worker 0 as traced, worker 1 twice as slow; example A.
    # Worker 0: fwd 0-2, bwd1 2-3, bwd0 3-4. Worker 1: fwd 0-4, bwd1 4-6, bwd0 6-8.
    # An all-reduce starts only when both have posted it: AR(1) 6-8, AR(0) 8-10.
    # Both start iteration 1 at 10; worker 1's BP then ends at 18: period 10; the busier
    # stream computes 8 ms per iteration.
    res = run(*EX_A, "wfbp", workers=dearsim.Cluster(workers=2, slowdown=(1.0, 2.0)))
    first = colls(res, 0, 10)
    assert what(first) == [(AR, (1, 1), 2_000_000), (AR, (0, 0), 2_000_000)]
    assert [r.start / MS for r in first] == approx([6, 8])
    assert [r.end / MS for r in first] == approx([8, 10])
    assert op_times(res, 9.5, 10.5, worker=0) == approx([10, 11])
    assert op_times(res, 9.5, 10.5, worker=1) == approx([10, 12])
    assert bp_ends(res)[:2] == approx([8, 18])
    assert res.iteration_time_s == pytest.approx(10 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(8 * MS, rel=1e-9)


def test_one_all_reduce_per_tensor():
    # Tensors: layer 0 [1.5e6, 0.5e6], layer 1 [2e6, 1e6]; alpha = 0.25 ms so every message
    # pays 2(p-1) alpha = 0.5 ms of startup; an all-reduce of n bytes takes 0.5 + n * 1e-6 ms.
    # fwd 0-2; bwd1 2-3 -> layer 1's tensors in order: 2e6 3-5.5, 1e6 5.5-7; bwd0 3-4 ->
    # layer 0's: 1.5e6 7-9, 0.5e6 9-10. Barrier 10 -> period 10 (one message per layer:
    # 3e6 3-6.5, 2e6 6.5-9 -> 9: per-tensor messages pay two more startups).
    net = dearsim.AlphaBeta(alpha=0.25e-3, beta=1e-9)
    tensors = [[1_500_000, 500_000], [2_000_000, 1_000_000]]
    s = [2_000_000, 3_000_000]
    res = run([1, 1], [1, 1], s, "wfbp", network=net, tensors=tensors)
    first = colls(res, 0, 10)
    assert what(first) == [
        (AR, (1, 1), 2_000_000),
        (AR, (1, 1), 1_000_000),
        (AR, (0, 0), 1_500_000),
        (AR, (0, 0), 500_000),
    ]
    assert [r.tag for r in first] == [0, 1, 0, 1]
    assert when(first) == approx([3, 3, 5.5, 3, 5.5, 7, 4, 7, 9, 4, 9, 10])
    assert res.iteration_time_s == pytest.approx(10 * MS, rel=1e-9)
    assert res.collectives == 4
    assert res.buckets == [(0, 0), (1, 1)]
    per_layer = run([1, 1], [1, 1], s, "wfbp", network=net)
    assert per_layer.iteration_time_s == pytest.approx(9 * MS, rel=1e-9)
    assert per_layer.collectives == 2
