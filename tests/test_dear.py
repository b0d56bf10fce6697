"""Hand-computed timelines of ``dear``: reduce-scatter of a fusion group posted when all its
gradients are ready; the all-gather of G_0 only after the backward has ended and every
reduce-scatter finished; G_j opens when AG(G_j) has finished and the previous layer's forward
has ended; u[l] runs just before layer l's forward. ``prefetch: chain`` (default) posts
AG(G_{j+1}) the instant AG(G_j) finishes; ``prefetch: next`` posts it when G_j opens.

p = 2, alpha = 0, beta = 1e-9 s/B: a reduce-scatter or all-gather of n bytes takes
n * 0.5e-9 s (2e6 B -> 1 ms). Times in comments are ms.
"""

from __future__ import annotations

import pytest
from timeline_helpers import (
    AG,
    MIB,
    MS,
    RS,
    approx,
    bp_ends,
    colls,
    op_times,
    ops,
    run,
    what,
    when,
)

EX_A = ([1, 1], [1, 1], [2_000_000, 2_000_000])
EX_B = ([1, 1, 1], [1, 1, 1], [1_000_000, 1_000_000, 4_000_000])
NO_TF = {"threshold_mb": None}
NO_TF_NEXT = {"threshold_mb": None, "prefetch": "next"}


@pytest.mark.parametrize(
    ("example", "options", "expected_ms"),
    [
        # Example A, threshold null: RS 3-4 and 4-5; barrier; AG(G0) 5-6;
        # AG(G1) 6-7 under f0 -> 6 (both prefetch rules post AG(G1) at 6).
        pytest.param(EX_A, NO_TF, 6.0, id="A-no-fusion"),
        pytest.param(EX_A, NO_TF_NEXT, 6.0, id="A-no-fusion-next"),
        # Example A, default 25 MiB: one 4 MB group; RS 4-6, AG 6-8, nothing to hide under
        # -> 8.
        pytest.param(EX_A, None, 8.0, id="A-default"),
        # Example B, threshold null, next: AG(G1) 0-0.5 and AG(G2) 1-3 (relative to the
        # forward start) overlap f0, f1; f2 waits to 3 -> 8.5.
        pytest.param(EX_B, NO_TF_NEXT, 8.5, id="B-no-fusion-next"),
        # Example B, threshold null, chain: AG(G1) 0-0.5, AG(G2) 0.5-2.5 right after it;
        # f2 at 2 waits to 2.5 -> 8.
        pytest.param(EX_B, NO_TF, 8.0, id="B-no-fusion-chain"),
    ],
)
def test_worked_examples(example, options, expected_ms):
    f, b, s = example
    res = run(f, b, s, "dear", options)
    assert res.iteration_time_s == pytest.approx(expected_ms * MS, rel=1e-9)


def test_example_a_no_fusion_timeline():
    # Iteration 0 (nothing to gather): fwd0 0-1, fwd1 1-2; bwd1 2-3 -> RS(G1) 3-4;
    # bwd0 3-4 -> RS(G0) posted 4, 4-5. Barrier: BP ended at 4, last RS ends 5 ->
    # AG(G0) posted 5, 5-6. G0 opens at 6: AG(G1) posted 6, 6-7; fwd0 6-7.
    # G1 opens at max(AG(G1) end 7, fwd0 end 7) = 7: fwd1 7-8; bwd1 8-9, bwd0 9-10.
    res = run(*EX_A, "dear", NO_TF)
    assert res.buckets == [(0, 0), (1, 1)]
    first = colls(res, 0, 7)
    assert what(first) == [
        (RS, (1, 1), 2_000_000),
        (RS, (0, 0), 2_000_000),
        (AG, (0, 0), 2_000_000),
        (AG, (1, 1), 2_000_000),
    ]
    assert when(first) == approx([3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7])
    assert ops(res, 0, 10) == [
        ("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0),
        ("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0),
    ]  # fmt: skip
    assert op_times(res, 0, 10) == approx([0, 1, 1, 2, 2, 3, 3, 4, 6, 7, 7, 8, 8, 9, 9, 10])
    assert bp_ends(res)[:3] == approx([4, 10, 16])
    # Per iteration: compute 4, link busy 4 x 1 ms = 4; exposed 6 - 4 = 2.
    assert res.compute_s == pytest.approx(4 * MS, rel=1e-9)
    assert res.comm_s == pytest.approx(4 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(2 * MS, rel=1e-9)


def test_example_a_default_single_group():
    # 2e6 + 2e6 = 4e6 B < 25 MiB: one group (0, 1). RS posted when layer 0's gradient is
    # ready (4): 2 ms, 4-6. AG(G0) 6-8. fwd 8-10, bwd 10-12.
    res = run(*EX_A, "dear")
    assert res.buckets == [(0, 1)]
    first = colls(res, 0, 8)
    assert what(first) == [(RS, (0, 1), 4_000_000), (AG, (0, 1), 4_000_000)]
    assert when(first) == approx([4, 4, 6, 6, 6, 8])
    assert op_times(res, 4, 10) == approx([8, 9, 9, 10])
    assert bp_ends(res)[:2] == approx([4, 12])


def test_example_b_one_ahead_all_gather_and_reduce_scatter_barrier():
    # prefetch: next. RS/AG: G0, G1 0.5 ms; G2 2 ms.
    # Iteration 0: fwd 0-3; bwd2 3-4 -> RS(G2) 4-6; bwd1 4-5 -> RS(G1) posted 5, 6-6.5;
    # bwd0 5-6 -> RS(G0) posted 6, 6.5-7. BP ends at 6 but RS(G0) ends at 7: AG(G0) is
    # posted at 7 (not 6): 7-7.5.
    # G0 opens at 7.5 -> AG(G1) posted 7.5: 7.5-8; fwd0 7.5-8.5.
    # G1 opens at max(8, 8.5) = 8.5 -> AG(G2) posted 8.5 (not 8, when the link went idle,
    # nor 7.5): 8.5-10.5; fwd1 8.5-9.5. G2 opens at 10.5: fwd2 10.5-11.5; bwd 11.5-14.5.
    res = run(*EX_B, "dear", NO_TF_NEXT)
    assert res.buckets == [(0, 0), (1, 1), (2, 2)]
    rs = colls(res, 0, 7, op=RS)
    assert what(rs) == [
        (RS, (2, 2), 4_000_000),
        (RS, (1, 1), 1_000_000),
        (RS, (0, 0), 1_000_000),
    ]
    assert when(rs) == approx([4, 4, 6, 5, 6, 6.5, 6, 6.5, 7])
    ag = colls(res, 0, 10.5, op=AG)
    assert what(ag) == [
        (AG, (0, 0), 1_000_000),
        (AG, (1, 1), 1_000_000),
        (AG, (2, 2), 4_000_000),
    ]
    assert when(ag) == approx([7, 7, 7.5, 7.5, 7.5, 8, 8.5, 8.5, 10.5])
    # no all-gather in iteration 0's forward: the first one is posted after BP end (6)
    assert min(r.posted for r in res.raw.collectives if r.op == AG) / MS == approx(7)
    assert ops(res, 6, 14.5) == [
        ("fwd", 0), ("fwd", 1), ("fwd", 2), ("bwd", 2), ("bwd", 1), ("bwd", 0),
    ]  # fmt: skip
    assert op_times(res, 6, 14.5) == approx(
        [7.5, 8.5, 8.5, 9.5, 10.5, 11.5, 11.5, 12.5, 12.5, 13.5, 13.5, 14.5]
    )
    # Iteration 1: RS(G2) 12.5-14.5, RS(G1) 14.5-15, RS(G0) 15-15.5; AG(G0) 15.5-16,
    # AG(G1) 16-16.5, fwd0 16-17, AG(G2) 17-19, fwd1 17-18, fwd2 19-20, bwd 20-23.
    assert bp_ends(res)[:3] == approx([6, 14.5, 23])


def test_example_b_chained_all_gathers():
    # prefetch: chain (the default). RS/AG: G0, G1 0.5 ms; G2 2 ms.
    # Iteration 0 as with next: fwd 0-3; RS(G2) 4-6, RS(G1) 6-6.5, RS(G0) 6.5-7; AG(G0)
    # posted at 7: 7-7.5. Chain: AG(G1) posted 7.5 when AG(G0) ends: 7.5-8; AG(G2) posted 8:
    # 8-10 (with next it was posted at 8.5, when G1 opened).
    # G0 opens 7.5: fwd0 7.5-8.5. G1 opens max(8, 8.5) = 8.5: fwd1 8.5-9.5. G2 opens at
    # max(10, 9.5) = 10: fwd2 10-11; bwd 11-14.
    # Iteration 1: RS(G2) 12-14, RS(G1) 14-14.5, RS(G0) 14.5-15; AG 15-15.5, 15.5-16,
    # 16-18; fwd0 15.5-16.5, fwd1 16.5-17.5, fwd2 18-19; bwd 19-22. Period 8.
    res = run(*EX_B, "dear", NO_TF)
    ag = colls(res, 0, 10, op=AG)
    assert what(ag) == [
        (AG, (0, 0), 1_000_000),
        (AG, (1, 1), 1_000_000),
        (AG, (2, 2), 4_000_000),
    ]
    assert when(ag) == approx([7, 7, 7.5, 7.5, 7.5, 8, 8, 8, 10])
    assert op_times(res, 6, 14) == approx(
        [7.5, 8.5, 8.5, 9.5, 10, 11, 11, 12, 12, 13, 13, 14]
    )
    assert bp_ends(res)[:3] == approx([6, 14, 22])
    assert res.iteration_time_s == pytest.approx(8 * MS, rel=1e-9)


def test_chain_posts_all_gathers_before_the_compute_reaches_their_group():
    # Chain and next differ when the forward pass runs behind the link: f = [4, 1, 1],
    # b = [1, 1, 1], s = [1e6, 1e6, 4e6], no fusion (RS/AG 0.5, 0.5, 2 ms).
    # Iteration 0: fwd 0-6; bwd2 6-7 -> RS(G2) 7-9; bwd1 7-8 -> RS(G1) 9-9.5; bwd0 8-9 ->
    # RS(G0) 9.5-10. AG(G0) 10-10.5. G0 opens 10.5: fwd0 10.5-14.5.
    #   chain: AG(G1) 10.5-11, AG(G2) 11-13: all done under fwd0; fwd1 14.5-15.5,
    #          fwd2 15.5-16.5; bwd 16.5-19.5 -> period 19.5 - 9 = 10.5.
    #   next:  AG(G1) posted at 10.5 (G0 opens): 10.5-11; AG(G2) posted when G1 opens at
    #          14.5: 14.5-16.5; fwd1 14.5-15.5; fwd2 waits to 16.5: 16.5-17.5; bwd 17.5-20.5
    #          -> 11.5.
    f, b, s = [4, 1, 1], [1, 1, 1], [1_000_000, 1_000_000, 4_000_000]
    chain = run(f, b, s, "dear", NO_TF)
    nxt = run(f, b, s, "dear", NO_TF_NEXT)
    assert bp_ends(chain)[:2] == approx([9, 19.5])
    assert bp_ends(nxt)[:2] == approx([9, 20.5])
    assert when(colls(chain, 10, 14, op=AG)) == approx([10, 10, 10.5, 10.5, 10.5, 11, 11, 11, 13])
    assert when(colls(nxt, 10, 17, op=AG)) == approx(
        [10, 10, 10.5, 10.5, 10.5, 11, 14.5, 14.5, 16.5]
    )


def test_prefetch_rejects_other_values():
    import dearsim

    with pytest.raises(dearsim.DearsimError, match="prefetch"):
        run(*EX_A, "dear", {"prefetch": "eager"})


def test_layers_without_parameters_run_with_the_group_before_them():
    # s = [0, 1e6, 0, 8e6], no fusion: G0 = {1} (layer 0, before the first layer with
    # parameters, also runs with G0; layer 2 runs with G0, its nearest gradient layer
    # before it is 1), G1 = {3}. RS/AG: G0 0.5 ms, G1 4 ms.
    # Iteration 0: fwd 0-4; bwd3 4-5 -> RS(G1) 5-9; bwd2 5-6; bwd1 6-7 -> RS(G0) posted 7,
    # runs 9-9.5; bwd0 7-8. AG(G0) posted 9.5: 9.5-10.
    # G0 opens at 10: AG(G1) posted 10: 10-14; fwd0 10-11, fwd1 11-12, fwd2 12-13.
    # G1 opens at max(14, 13) = 14: fwd3 14-15; bwd 15-19.
    # (If layer 2 ran with G1 it would wait for AG(G1): fwd2 14-15, fwd3 15-16; if layer 0
    # did not wait for AG(G0) it would start before 10.)
    res = run([1] * 4, [1] * 4, [0, 1_000_000, 0, 8_000_000], "dear", NO_TF)
    assert res.buckets == [(1, 1), (3, 3)]
    ag = colls(res, 0, 14, op=AG)
    assert what(ag) == [(AG, (1, 1), 1_000_000), (AG, (3, 3), 8_000_000)]
    assert when(ag) == approx([9.5, 9.5, 10, 10, 10, 14])
    assert ops(res, 8, 15) == [("fwd", 0), ("fwd", 1), ("fwd", 2), ("fwd", 3)]
    assert op_times(res, 8, 15) == approx([10, 11, 11, 12, 12, 13, 14, 15])
    # Iteration 1: bwd3 15-16 -> RS(G1) 16-20; bwd1 17-18 -> RS(G0) 20-20.5; AG(G0)
    # 20.5-21; fwd0..2 21-24 under AG(G1) 21-25; fwd3 25-26; bwd 26-30.
    assert bp_ends(res)[:3] == approx([8, 19, 30])
    assert res.iteration_time_s == pytest.approx(11 * MS, rel=1e-9)


def test_update_runs_just_before_each_layers_forward():
    # Example A, no fusion, u = [0.5, 0.25]. Iteration 0 as before: RS 3-4, 4-5; AG(G0)
    # 5-6. G0 opens at 6: AG(G1) 6-7; u0 6-6.5, f0 6.5-7.5. G1 opens at max(7, 7.5) = 7.5:
    # u1 7.5-7.75, f1 7.75-8.75; bwd1 8.75-9.75, bwd0 9.75-10.75. Period 6.75.
    f, b, s = EX_A
    res = run(f, b, s, "dear", NO_TF, u=[0.5, 0.25])
    assert ops(res, 4, 10.75) == [
        ("update", 0), ("fwd", 0), ("update", 1), ("fwd", 1), ("bwd", 1), ("bwd", 0),
    ]  # fmt: skip
    assert op_times(res, 4, 10.75) == approx(
        [6, 6.5, 6.5, 7.5, 7.5, 7.75, 7.75, 8.75, 8.75, 9.75, 9.75, 10.75]
    )
    ag = colls(res, 4, 7, op=AG)
    assert when(ag) == approx([5, 5, 6, 6, 6, 7])
    assert bp_ends(res)[:2] == approx([4, 10.75])
    assert res.iteration_time_s == pytest.approx(6.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(4.75 * MS, rel=1e-9)


def test_threshold_grouping_stays_below_the_threshold():
    # threshold_mb 2; s = [1, 1, 0.5, 3] MiB, forward walk:
    #   layer 0 -> G0 (empty), total 1; layer 1: 1 + 1 = 2, not below 2 -> new G1, total 1;
    #   layer 2: 1 + 0.5 = 1.5 < 2 -> joins G1; layer 3: 1.5 + 3 >= 2 -> G2 (alone, above
    #   the threshold by itself).
    # Backward (f = b = 1, RS of n bytes n * 0.5e-9 s): fwd 0-4; bwd3 4-5 -> RS(G2) 3 MiB
    # posted 5; bwd2 5-6; bwd1 6-7 -> RS(G1) 1.5 MiB posted 7; bwd0 7-8 -> RS(G0) posted 8.
    res = run([1] * 4, [1] * 4, [MIB, MIB, MIB // 2, 3 * MIB], "dear", {"threshold_mb": 2})
    assert res.buckets == [(0, 0), (1, 2), (3, 3)]
    rs = [r for r in res.raw.collectives if r.op == RS and r.iteration == 0]
    assert what(rs) == [
        (RS, (3, 3), 3 * MIB),
        (RS, (1, 2), 3 * MIB // 2),
        (RS, (0, 0), MIB),
    ]
    assert [r.posted / MS for r in rs] == approx([5, 7, 8])


def test_explicit_groups():
    # Example B with groups [[0,1],[2,2]]: G0 = {0,1} 2e6 B (RS/AG 1 ms), G1 = {2} 4e6 B
    # (2 ms). fwd 0-3; bwd2 3-4 -> RS(G1) 4-6; bwd1 4-5; bwd0 5-6 -> RS(G0) posted 6, 6-7.
    # AG(G0) 7-8. G0 opens at 8: AG(G1) 8-10; fwd0 8-9, fwd1 9-10. G1 opens at 10:
    # fwd2 10-11; bwd 11-14. Period 14 - 6 = 8.
    f, b, s = EX_B
    res = run(f, b, s, "dear", {"groups": [[0, 1], [2, 2]]})
    assert res.buckets == [(0, 1), (2, 2)]
    first = colls(res, 0, 10)
    assert what(first) == [
        (RS, (2, 2), 4_000_000),
        (RS, (0, 1), 2_000_000),
        (AG, (0, 1), 2_000_000),
        (AG, (2, 2), 4_000_000),
    ]
    assert when(first) == approx([4, 4, 6, 6, 6, 7, 7, 7, 8, 8, 8, 10])
    assert op_times(res, 6, 11) == approx([8, 9, 9, 10, 10, 11])
    assert res.iteration_time_s == pytest.approx(8 * MS, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1: collectives cost nothing; period = f 1+2 + b 3+4 + u 0.5+0.25 = 10.75 ms.
    res = run([1, 2], [3, 4], [5_000_000, 3_000_000], "dear", NO_TF, u=[0.5, 0.25], workers=1)
    assert res.iteration_time_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)
