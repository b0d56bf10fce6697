"""Hand-computed timelines of ``horovod``: a background cycle ticks at absolute
times k * cycle_time_ms; at a tick every gradient ready at or before it and not yet sent is
packed, in ready order, into fusion buffers of at most fusion_threshold_mb MiB (a single larger
gradient goes alone), posted in that order; then the WFBP barrier.

The tick tests rely on exact ties, so they use exact binary arithmetic: times in seconds that
are multiples of 1/8, cycle 1000 ms (1.0 s), p = 2, alpha = 0, beta = 2**-20 s/B (an
all-reduce of 2**20 B takes 1 s). Comments give times in seconds there, in ms elsewhere.
"""

from __future__ import annotations

import pytest
from timeline_helpers import (
    AR,
    BIN_NET,
    MIB,
    MIB_NET,
    MS,
    approx,
    bp_ends,
    colls,
    op_times,
    run,
    what,
    when,
)


def test_worked_example_a_cycle_10ms():
    # Example A, cycle 10 ms: gradients ready at 3 and 4 (BP ends at 4); both are fused at
    # the tick at 10: one 4e6 B all-reduce 10-14. Iteration 1: fwd 14-16, bwd 16-18,
    # tick at 20: AR 20-24; fwd 24-26, bwd 26-28. Period 10.
    res = run([1, 1], [1, 1], [2_000_000, 2_000_000], "horovod", {"cycle_time_ms": 10})
    assert res.iteration_time_s == pytest.approx(10 * MS, rel=1e-9)
    first = colls(res, 0, 30)
    assert what(first) == [(AR, (0, 1), 4_000_000), (AR, (0, 1), 4_000_000)]
    assert when(first) == approx([10, 10, 14, 20, 20, 24])
    assert op_times(res, 13, 15) == approx([14, 15])  # iteration 1's fwd0 after the barrier
    assert bp_ends(res)[:3] == approx([4, 18, 28])


def test_gradient_ready_exactly_at_a_tick_is_included():
    # Seconds. f = [0.25, 0.25, 0.5] (forward 0-1), b = 0.5 each:
    #   bwd2 1.0-1.5 (ready 1.5), bwd1 1.5-2.0 (ready 2.0, exactly the tick), bwd0 2.0-2.5.
    # Tick 1.0: nothing ready. Tick 2.0: layers 2 and 1 (ready at or before it), fused in
    # ready order: 2**18 + 2**18 = 2**19 B -> 0.5 s: 2.0-2.5.
    # Layer 0, ready at 2.5, waits for the next tick: 3.0, 2**20 B -> 3.0-4.0.
    # Barrier at 4.0; iteration 1 is iteration 0 shifted by 4.0 s -> period 4.0.
    res = run(
        [0.25, 0.25, 0.5],
        [0.5, 0.5, 0.5],
        [2**20, 2**18, 2**18],
        "horovod",
        {"cycle_time_ms": 1000},
        network=BIN_NET,
        unit=1.0,
    )
    first = colls(res, 0, 8, unit=1.0)
    assert what(first) == [
        (AR, (1, 2), 2**19),
        (AR, (0, 0), 2**20),
        (AR, (1, 2), 2**19),
        (AR, (0, 0), 2**20),
    ]
    assert when(first, unit=1.0) == approx(
        [2.0, 2.0, 2.5, 3.0, 3.0, 4.0, 6.0, 6.0, 6.5, 7.0, 7.0, 8.0]
    )
    assert res.iteration_time_s == pytest.approx(4.0, rel=1e-9)


def test_lone_gradient_ready_exactly_at_a_tick_goes_at_that_tick():
    # Seconds, cycle 1000 ms. f = b = [0.5, 0.5], s = [2**20, 0] (layer 1 has no gradient):
    # forward 0-1, bwd1 1.0-1.5, bwd0 1.5-2.0 -> layer 0's gradient is ready at 2.0, exactly
    # the tick at 2.0, with nothing else waiting: it goes at that tick, 2**20 B 2.0-3.0
    # (not at the tick at 3.0). Barrier 3.0; iteration 1: forward 3-4, bwd 4-5, ready at
    # the tick at 5.0: 5.0-6.0. Period 3.0.
    res = run(
        [0.5, 0.5],
        [0.5, 0.5],
        [2**20, 0],
        "horovod",
        {"cycle_time_ms": 1000},
        network=BIN_NET,
        unit=1.0,
    )
    first = colls(res, 0, 6, unit=1.0)
    assert what(first) == [(AR, (0, 0), 2**20)] * 2
    assert when(first, unit=1.0) == approx([2.0, 2.0, 3.0, 5.0, 5.0, 6.0])
    assert res.iteration_time_s == pytest.approx(3.0, rel=1e-9)


def test_fusion_threshold_splits_buffers_and_large_gradient_goes_alone():
    # Seconds, fusion_threshold_mb 1 (2**20 B). f = [0.25, 0.25, 0.25, 0.375] (0-1.125),
    # b = 0.125 each: ready 3 at 1.25, 2 at 1.375, 1 at 1.5, 0 at 1.625; all wait for the
    # tick at 2.0. Packed in ready order 3, 2, 1, 0 with s = [0.25, 3, 0.5, 0.5] MiB:
    #   buffer 1: layer 3 (0.5) + layer 2 (0.5) = 1 MiB <= 1 MiB -> fused (at most the cap);
    #   buffer 2: layer 1 (3 MiB > cap) alone;
    #   buffer 3: layer 0 (0.25; 3 + 0.25 would pass the cap).
    # Posted in that order at 2.0: 2**20 B 2.0-3.0, 3 * 2**20 B 3.0-6.0, 2**18 B 6.0-6.25.
    # Barrier 6.25; iteration 1: fwd 6.25-7.375, bwd 7.375-7.875, tick 8.0 -> same buffers
    # 8-9, 9-12, 12-12.25; period 6.0. BP ends 1.625, 7.875.
    res = run(
        [0.25, 0.25, 0.25, 0.375],
        [0.125] * 4,
        [MIB // 4, 3 * MIB, MIB // 2, MIB // 2],
        "horovod",
        {"cycle_time_ms": 1000, "fusion_threshold_mb": 1},
        network=BIN_NET,
        unit=1.0,
    )
    first = colls(res, 0, 6.25, unit=1.0)
    assert what(first) == [
        (AR, (2, 3), MIB),
        (AR, (1, 1), 3 * MIB),
        (AR, (0, 0), MIB // 4),
    ]
    assert when(first, unit=1.0) == approx([2.0, 2.0, 3.0, 2.0, 3.0, 6.0, 2.0, 6.0, 6.25])
    second = colls(res, 6.25, 12.25, unit=1.0)
    assert [r.start for r in second] == approx([8.0, 9.0, 12.0])
    assert bp_ends(res, unit=1.0)[:2] == approx([1.625, 7.875])
    assert res.iteration_time_s == pytest.approx(6.0, rel=1e-9)
    assert res.comm_s == pytest.approx(4.25, rel=1e-9)
    assert res.buckets == [(0, 0), (1, 1), (2, 3)]


def test_default_threshold_fuses_everything_ready_at_one_tick():
    # Default 128 MiB threshold, cycle 1000 ms, seconds. Same trace as above: all four
    # gradients (0.25 + 3 + 0.5 + 0.5 = 4.25 MiB) are ready before the tick at 2.0 and fit
    # one buffer: 4.25 * 2**20 B -> 4.25 s: 2.0-6.25. Barrier 6.25; iteration 1 fwd
    # 6.25-7.375, bwd -7.875, tick 8.0: 8.0-12.25. Period 6.0.
    res = run(
        [0.25, 0.25, 0.25, 0.375],
        [0.125] * 4,
        [MIB // 4, 3 * MIB, MIB // 2, MIB // 2],
        "horovod",
        {"cycle_time_ms": 1000},
        network=BIN_NET,
        unit=1.0,
    )
    first = colls(res, 0, 12.25, unit=1.0)
    assert what(first) == [(AR, (0, 3), 17 * MIB // 4)] * 2
    assert when(first, unit=1.0) == approx([2.0, 2.0, 6.25, 8.0, 8.0, 12.25])
    assert res.iteration_time_s == pytest.approx(6.0, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1, seconds, cycle 500 ms (ticks every 0.5 s). f = b = 0.5: grad 1 ready at 1.5,
    # grad 0 at 2.0, both exactly at ticks, and the all-reduces cost nothing: the barrier
    # is at 2.0 and the period is the compute, 2.0 s.
    res = run(
        [0.5, 0.5],
        [0.5, 0.5],
        [8, 8],
        "horovod",
        {"cycle_time_ms": 500},
        network=BIN_NET,
        unit=1.0,
        workers=1,
    )
    assert res.iteration_time_s == pytest.approx(2.0, rel=1e-9)
    assert res.compute_s == pytest.approx(2.0, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)


def test_fusion_packs_tensors_not_layers():
    # MiB network (an all-reduce of n MiB takes n ms), f = b = 1, cycle 10 ms, threshold
    # 3 MiB. Tensors: layer 0 [1, 1] MiB, layer 1 [1, 1] MiB, all ready by the tick at 10
    # (BP ends at 4). Ready order: layer 1's two, then layer 0's two. Packing: 1 + 1 + 1 = 3
    # fits exactly -> buffer (0..1) 3 MiB; the last tensor (layer 0's second) alone, 1 MiB.
    # Link: 10-13, 13-14; barrier 14. Without a breakdown the layers (2 MiB each) cannot
    # share a 3 MiB buffer: (1,1) 2 MiB and (0,0) 2 MiB.
    s = [2 * MIB, 2 * MIB]
    tensors = [[MIB, MIB], [MIB, MIB]]
    opts = {"cycle_time_ms": 10, "fusion_threshold_mb": 3}
    res = run([1, 1], [1, 1], s, "horovod", opts, network=MIB_NET, tensors=tensors)
    first = colls(res, 0, 14)
    assert what(first) == [(AR, (0, 1), 3 * MIB), (AR, (0, 0), MIB)]
    assert when(first) == approx([10, 10, 13, 10, 13, 14])
    # steady state: BP ends at 18, tick 20: 20-24; fwd 24-26, bwd 26-28 -> period 10
    assert res.iteration_time_s == pytest.approx(10 * MS, rel=1e-9)
    whole = run([1, 1], [1, 1], s, "horovod", opts, network=MIB_NET)
    assert what(colls(whole, 0, 14)) == [(AR, (1, 1), 2 * MIB), (AR, (0, 0), 2 * MIB)]
