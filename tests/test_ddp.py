"""Hand-computed timelines of ``ddp``: buckets filled in reverse layer order; every bucket
closes when it reaches or passes its limit and the layer that crosses it stays in the bucket.
Later buckets' limit is ``bucket_cap_mb`` (25 MiB when unset); the first bucket's is
``first_bucket_mb`` if given, else the cap if ``bucket_cap_mb`` was given (PyTorch 2.x), else
1 MiB.

Unless a test says otherwise: p = 2, alpha = 0 and beta = 1e-3 / 2**20 s/B, so an
all-reduce of n bytes takes n / 2**20 ms (1 MiB -> 1 ms). Times in comments are ms.
"""

from __future__ import annotations

import pytest
from timeline_helpers import AR, MIB, MIB_NET, MS, approx, colls, run, what, when


def test_worked_example_a():
    # Example A (beta = 1e-9): 2e6 B >= 1 MiB closes the first bucket at layer 1; layer 0
    # alone makes the second. Buckets [1], [0]; BP ends at 4; AR 3-5 and 5-7 -> 7 ms.
    res = run([1, 1], [1, 1], [2_000_000, 2_000_000], "ddp")
    assert res.buckets == [(0, 0), (1, 1)]
    assert res.iteration_time_s == pytest.approx(7 * MS, rel=1e-9)
    first = colls(res, 0, 7)
    assert what(first) == [(AR, (1, 1), 2_000_000), (AR, (0, 0), 2_000_000)]
    assert when(first) == approx([3, 3, 5, 4, 5, 7])


def test_first_bucket_closes_at_one_mib_and_crossing_layer_stays():
    # Defaults (1 MiB first, 25 MiB cap). s = [10, 10, 10, 2] MiB, reverse walk:
    #   layer 3: 2 MiB >= 1 -> first bucket {3} closes;
    #   layer 2: 10, layer 1: 20 (< 25), layer 0: 30 >= 25 -> layer 0 crosses and stays:
    #   bucket {0, 1, 2}.
    # Timeline (f = b = 1): fwd 0-4; bwd3 4-5 -> AR(3) 2 MiB 5-7; bwd2 5-6, bwd1 6-7,
    # bwd0 7-8 -> AR(0..2) 30 MiB posted 8, runs 8-38. Barrier 38 -> period 38.
    s = [10 * MIB, 10 * MIB, 10 * MIB, 2 * MIB]
    res = run([1] * 4, [1] * 4, s, "ddp", network=MIB_NET)
    assert res.buckets == [(0, 2), (3, 3)]
    first = colls(res, 0, 38)
    assert what(first) == [(AR, (3, 3), 2 * MIB), (AR, (0, 2), 30 * MIB)]
    assert when(first) == approx([5, 5, 7, 8, 8, 38])
    assert res.iteration_time_s == pytest.approx(38 * MS, rel=1e-9)


def test_bucket_closes_when_it_exactly_reaches_the_limit():
    # first_bucket_mb 1, bucket_cap_mb 5. s = [2, 4, 3, 0.5, 0.5] MiB, reverse walk:
    #   layer 4: 0.5 (< 1), layer 3: 1.0 -> reaches 1 MiB exactly: bucket {3, 4};
    #   layer 2: 3 (< 5), layer 1: 7 >= 5 -> crossing layer 1 stays: bucket {1, 2};
    #   layer 0: 2 MiB, left over: bucket {0}.
    # Timeline (f = b = 1): fwd 0-5; bwd4 5-6, bwd3 6-7 -> AR(3,4) 1 MiB 7-8;
    # bwd2 7-8, bwd1 8-9 -> AR(1,2) 7 MiB 9-16; bwd0 9-10 -> AR(0) 2 MiB posted 10,
    # runs 16-18. Period 18.
    s = [2 * MIB, 4 * MIB, 3 * MIB, MIB // 2, MIB // 2]
    opts = {"first_bucket_mb": 1, "bucket_cap_mb": 5}
    res = run([1] * 5, [1] * 5, s, "ddp", opts, network=MIB_NET)
    assert res.buckets == [(0, 0), (1, 2), (3, 4)]
    first = colls(res, 0, 18)
    assert what(first) == [
        (AR, (3, 4), MIB),
        (AR, (1, 2), 7 * MIB),
        (AR, (0, 0), 2 * MIB),
    ]
    assert when(first) == approx([7, 7, 8, 9, 9, 16, 10, 16, 18])
    assert res.iteration_time_s == pytest.approx(18 * MS, rel=1e-9)


def test_an_explicit_cap_applies_to_the_first_bucket_too():
    # bucket_cap_mb 5 alone: as in PyTorch 2.x, the first bucket's limit is the cap too.
    # s = [2, 4, 3, 0.5, 0.5] MiB, reverse walk: layer 4: 0.5, layer 3: 1, layer 2: 4,
    # layer 1: 8 >= 5 -> bucket {1..4}; layer 0 left over: bucket {0}.
    # Timeline: fwd 0-5; bwd4..bwd1 5-9 -> AR(1..4) 8 MiB 9-17; bwd0 9-10 -> AR(0) 2 MiB
    # posted 10, runs 17-19. Period 19 (against 18 with a 1 MiB first bucket, above).
    s = [2 * MIB, 4 * MIB, 3 * MIB, MIB // 2, MIB // 2]
    res = run([1] * 5, [1] * 5, s, "ddp", {"bucket_cap_mb": 5}, network=MIB_NET)
    assert res.buckets == [(0, 0), (1, 4)]
    first = colls(res, 0, 19)
    assert what(first) == [(AR, (1, 4), 8 * MIB), (AR, (0, 0), 2 * MIB)]
    assert when(first) == approx([9, 9, 17, 10, 17, 19])
    assert res.iteration_time_s == pytest.approx(19 * MS, rel=1e-9)


def test_an_explicit_cap_equal_to_the_default_still_drops_the_small_first_bucket():
    # bucket_cap_mb 25 given explicitly (PyTorch's default value) is not the default: the
    # first bucket's limit is 25 MiB. s = [10, 10, 10, 2] MiB, reverse walk: 2, 12, 22,
    # 32 >= 25 -> one bucket {0..3}, posted when bwd0 ends at 8: AR 32 MiB 8-40. Period 40
    # (38 when the cap is left unset: test_first_bucket_closes_at_one_mib_...).
    s = [10 * MIB, 10 * MIB, 10 * MIB, 2 * MIB]
    res = run([1] * 4, [1] * 4, s, "ddp", {"bucket_cap_mb": 25}, network=MIB_NET)
    assert res.buckets == [(0, 3)]
    assert res.iteration_time_s == pytest.approx(40 * MS, rel=1e-9)
    unset = run([1] * 4, [1] * 4, s, "ddp", network=MIB_NET)
    assert unset.buckets == [(0, 2), (3, 3)]


def test_first_bucket_mb_option():
    # first_bucket_mb 3, default cap 25. s = [10, 10, 10, 2] MiB, reverse walk:
    #   layer 3: 2 (< 3), layer 2: 12 >= 3 -> bucket {2, 3};
    #   layer 1: 10, layer 0: 20 (< 25) -> left over: bucket {0, 1}.
    # Timeline: fwd 0-4; bwd3 4-5, bwd2 5-6 -> AR(2,3) 12 MiB 6-18; bwd1 6-7, bwd0 7-8 ->
    # AR(0,1) 20 MiB posted 8, runs 18-38. Period 38.
    s = [10 * MIB, 10 * MIB, 10 * MIB, 2 * MIB]
    res = run([1] * 4, [1] * 4, s, "ddp", {"first_bucket_mb": 3}, network=MIB_NET)
    assert res.buckets == [(0, 1), (2, 3)]
    first = colls(res, 0, 38)
    assert what(first) == [(AR, (2, 3), 12 * MIB), (AR, (0, 1), 20 * MIB)]
    assert when(first) == approx([6, 6, 18, 8, 18, 38])
    assert res.iteration_time_s == pytest.approx(38 * MS, rel=1e-9)


def test_bucket_spans_a_layer_without_parameters():
    # s = [0.5 MiB, 0, 0.5 MiB, 4 MiB]; the walk sees only layers with gradients:
    #   layer 3: 4 >= 1 -> bucket {3}; layer 2: 0.5, layer 0: 1.0 (< 25) -> left over {0, 2},
    #   reported as the range (0, 2) and ready when layer 0's backward ends.
    # Timeline: fwd 0-4; bwd3 4-5 -> AR(3) 4 MiB 5-9; bwd2 5-6, bwd1 6-7, bwd0 7-8 ->
    # AR(0,2) 1 MiB posted 8, runs 9-10. Period 10.
    s = [MIB // 2, 0, MIB // 2, 4 * MIB]
    res = run([1] * 4, [1] * 4, s, "ddp", network=MIB_NET)
    assert res.buckets == [(0, 2), (3, 3)]
    first = colls(res, 0, 10)
    assert what(first) == [(AR, (3, 3), 4 * MIB), (AR, (0, 2), MIB)]
    assert when(first) == approx([5, 5, 9, 8, 9, 10])
    assert res.iteration_time_s == pytest.approx(10 * MS, rel=1e-9)


def test_explicit_buckets_override_the_caps():
    # buckets [[0, 3]]: one 32 MiB bucket, ready when layer 0's backward ends at 8:
    # AR 8-40; period 40.
    s = [10 * MIB, 10 * MIB, 10 * MIB, 2 * MIB]
    res = run([1] * 4, [1] * 4, s, "ddp", {"buckets": [[0, 3]]}, network=MIB_NET)
    assert res.buckets == [(0, 3)]
    first = colls(res, 0, 40)
    assert what(first) == [(AR, (0, 3), 32 * MIB)]
    assert when(first) == approx([8, 8, 40])
    assert res.iteration_time_s == pytest.approx(40 * MS, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1: collectives cost nothing; period = f 1+2 + b 3+4 + u 0.5+0.25 = 10.75 ms.
    res = run([1, 2], [3, 4], [5_000_000, 3_000_000], "ddp", u=[0.5, 0.25], workers=1)
    assert res.iteration_time_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)
