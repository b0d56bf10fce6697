"""Hand-computed timelines of ``mgwfbp``: buckets from the MG-WFBP merge rule,
worked through by hand with the published pseudo-code, then the WFBP-family loop.

p = 2, beta = 1e-9 s/B and a nonzero alpha: an all-reduce of n bytes takes
AR(n) = 2(p-1)alpha + 2(p-1)/p n beta = 2 alpha + n * 1e-9 s, and the startup term is
a = 2 alpha. Times in comments are ms; b = f = 1 ms per layer throughout.
"""

from __future__ import annotations

import pytest
from timeline_helpers import AR, MS, approx, colls, run, what, when

import dearsim


def net(alpha_ms: float) -> dearsim.AlphaBeta:
    return dearsim.AlphaBeta(alpha=alpha_ms * MS, beta=1e-9)


@pytest.mark.parametrize(
    ("alpha_ms", "buckets", "records", "times", "period"),
    [
        # alpha 0.6 -> a = 1.2, tc = [2.2, 2.2]. taob = [1, 0]; taoc[1] = taob[1] + b[1] = 1.
        # l = 1: ready = taob[0] + b[0] = 2. 2 < taoc[1] + tc[1] = 3.2: yes;
        #   taoc[1] = 1 > 2: no; ready - taoc[1] = 1 < a = 1.2: yes -> MERGE.
        # One bucket (0, 1) of 2e6 B, AR = 1.2 + 2 = 3.2 ms. Timeline: fwd 0-2, bwd1 2-3,
        # bwd0 3-4 -> AR posted 4, runs 4-7.2; period 7.2 (unmerged would be 7.4).
        pytest.param(
            0.6, [(0, 1)], [(AR, (0, 1), 2_000_000)], [4, 4, 7.2], 7.2, id="merges"
        ),
        # alpha 0.4 -> a = 0.8, tc = [1.8, 1.8]; taoc[1] = 1.
        # l = 1: ready = 2 < 1 + 1.8 = 2.8: yes; 1 > 2: no; 2 - 1 = 1 < 0.8: no -> CLOSE.
        # Buckets (1,1), (0,0): AR(1) posted 3, 3-4.8; AR(0) posted 4, 4.8-6.6; period 6.6
        # (merged would be 4 + 0.8 + 2 = 6.8).
        pytest.param(
            0.4,
            [(0, 0), (1, 1)],
            [(AR, (1, 1), 1_000_000), (AR, (0, 0), 1_000_000)],
            [3, 3, 4.8, 4, 4.8, 6.6],
            6.6,
            id="does-not-merge",
        ),
    ],
)
def test_startup_term_decides_the_merge(alpha_ms, buckets, records, times, period):
    res = run([1, 1], [1, 1], [1_000_000, 1_000_000], "mgwfbp", network=net(alpha_ms))
    assert res.buckets == buckets
    first = colls(res, 0, period)
    assert what(first) == records
    assert when(first) == approx(times)
    assert res.iteration_time_s == pytest.approx(period * MS, rel=1e-9)


def test_three_layers_one_merge_behind_a_busy_link():
    # alpha 0.25 -> a = 0.5; s = [1e6, 1e6, 4e6] -> tc = [1.5, 1.5, 4.5].
    # taob = [2, 1, 0]; taoc[2] = 0 + 1 = 1; taoc[1] = max(1 + 4.5, 1 + 1) = 5.5;
    # taoc[0] = max(5.5 + 1.5, 2 + 1) = 7.
    # l = 2: ready = taob[1] + b[1] = 2. 2 < 1 + 4.5: yes; 1 > 2: no; 2 - 1 = 1 < 0.5: no
    #   -> close {2}; layer 1 opens a bucket.
    # l = 1: ready = taob[0] + b[0] = 3. 3 < 5.5 + 1.5 = 7: yes; taoc[1] = 5.5 > 3: yes
    #   -> merge: bucket {0, 1} of 2e6 B, AR = 0.5 + 2 = 2.5.
    # Timeline: fwd 0-3; bwd2 3-4 -> AR(2) 4-8.5; bwd1 4-5, bwd0 5-6 -> AR(0,1) posted 6,
    # waits for the link: 8.5-11. Period 11 (wfbp: 4-8.5, 8.5-10, 10-11.5 -> 11.5).
    res = run([1, 1, 1], [1, 1, 1], [1_000_000, 1_000_000, 4_000_000], "mgwfbp", network=net(0.25))
    assert res.buckets == [(0, 1), (2, 2)]
    first = colls(res, 0, 11)
    assert what(first) == [(AR, (2, 2), 4_000_000), (AR, (0, 1), 2_000_000)]
    assert when(first) == approx([4, 4, 8.5, 6, 8.5, 11])
    assert res.iteration_time_s == pytest.approx(11 * MS, rel=1e-9)
    wfbp = run([1, 1, 1], [1, 1, 1], [1_000_000, 1_000_000, 4_000_000], "wfbp", network=net(0.25))
    assert wfbp.iteration_time_s == pytest.approx(11.5 * MS, rel=1e-9)


@pytest.mark.parametrize(
    ("alpha_ms", "buckets", "times", "period"),
    [
        # alpha 0.6 -> a = 1.2; s = [1e6, 0, 1e6] -> tc = [2.2, 0, 2.2]; taob = [2, 1, 0].
        # taoc[2] = 1. l = 2: ready = 1 + 1 = 2 < 1 + 2.2: yes; 1 > 2: no; 2 - 1 = 1 < 1.2:
        #   yes -> merge: p[1] = 1e6, p[2] = 0, tc[1] = 2.2, tc[2] = 0;
        #   taoc[1] = max(taoc[2] + 0, taob[1] + b[1]) = max(1, 2) = 2.
        # l = 1: ready = 2 + 1 = 3 < 2 + 2.2: yes; 2 > 3: no; 3 - 2 = 1 < 1.2: yes -> merge.
        # One bucket over layers 0..2 holding 2e6 B (reported (0, 2)); AR = 3.2:
        # fwd 0-3, bwd 3-6, AR 6-9.2. Period 9.2.
        pytest.param(0.6, [(0, 2)], [6, 6, 9.2], 9.2, id="merges-across"),
        # alpha 0.4 -> a = 0.8; tc = [1.8, 0, 1.8]; taoc[2] = 1; taoc[1] = max(2.8, 2) = 2.8.
        # l = 2: ready 2 < 2.8: yes; 1 > 2: no; 1 < 0.8: no -> close {2}; 1 opens.
        # l = 1: ready 3 < taoc[1] + tc[1] = 2.8 + 0: no -> close {1} (no gradient: not a
        # bucket); 0 opens. Buckets (0,0), (2,2): AR(2) posted 4, 4-5.8; AR(0) posted 6,
        # 6-7.8. Period 7.8.
        pytest.param(0.4, [(0, 0), (2, 2)], [4, 4, 5.8, 6, 6, 7.8], 7.8, id="no-merge"),
    ],
)
def test_layer_without_parameters(alpha_ms, buckets, times, period):
    res = run([1, 1, 1], [1, 1, 1], [1_000_000, 0, 1_000_000], "mgwfbp", network=net(alpha_ms))
    assert res.buckets == buckets
    assert when(colls(res, 0, period)) == approx(times)
    assert res.iteration_time_s == pytest.approx(period * MS, rel=1e-9)


def test_explicit_buckets_override_the_merge_rule():
    # The "merges" case (alpha 0.6) with buckets [[0,0],[1,1]]: AR = 2.2 each.
    # AR(1) posted 3: 3-5.2; AR(0) posted 4: 5.2-7.4. Period 7.4.
    res = run(
        [1, 1], [1, 1], [1_000_000, 1_000_000], "mgwfbp", {"buckets": [[0, 0], [1, 1]]},
        network=net(0.6),
    )
    assert res.buckets == [(0, 0), (1, 1)]
    assert when(colls(res, 0, 7.4)) == approx([3, 3, 5.2, 4, 5.2, 7.4])
    assert res.iteration_time_s == pytest.approx(7.4 * MS, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1: collectives cost nothing; period = f 1+2 + b 3+4 + u 0.5+0.25 = 10.75 ms.
    res = run(
        [1, 2], [3, 4], [5_000_000, 3_000_000], "mgwfbp", u=[0.5, 0.25], workers=1,
        network=net(0.6),
    )
    assert res.iteration_time_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)
