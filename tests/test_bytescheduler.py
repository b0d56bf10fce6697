"""Hand-computed timelines of ``bytescheduler``: gradients cut into
ceil(s / partition_bytes) chunks (remainder last), a priority queue (lower layer, then lower
chunk first), a credit that may go negative, no global barrier: layer l's next forward waits
only for layer l's own chunks, with u[l] run just before it.

p = 2, alpha = 0, beta = 1e-9 s/B: an all-reduce of n bytes takes n * 1e-9 s
(1e6 B -> 1 ms). Times in comments are ms.
"""

from __future__ import annotations

import pytest
from timeline_helpers import (
    AR,
    MIB,
    MIB_NET,
    MS,
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


@pytest.mark.parametrize(
    ("example", "options", "expected_ms"),
    [
        # Example A, defaults: BP ends at 4; AR 3-5 and 5-7; fwd0 waits for layer 0 -> 7.
        pytest.param(EX_A, None, 7.0, id="A-defaults"),
        # Example B, credit 64e6: all posted at once, FIFO: layer 2 4-8, layer 1 8-9,
        # layer 0 9-10; the forward of layer 0 waits to 10 -> 10.
        pytest.param(EX_B, {"partition_bytes": 16_000_000, "credit_bytes": 64_000_000}, 10.0,
                     id="B-credit-64e6"),
        # Example B, credit 1: layer 2 posted at 4 (credit goes negative); at 8 layer 0 goes
        # first 8-9, then layer 1 9-10 under f0 -> 9.
        pytest.param(EX_B, {"partition_bytes": 16_000_000, "credit_bytes": 1}, 9.0,
                     id="B-credit-1"),
    ],
)  # fmt: skip
def test_worked_examples(example, options, expected_ms):
    f, b, s = example
    res = run(f, b, s, "bytescheduler", options)
    assert res.iteration_time_s == pytest.approx(expected_ms * MS, rel=1e-9)


def test_example_a_forward_waits_for_its_own_layer():
    # fwd 0-2; bwd1 2-3 -> chunk of layer 1 posted 3, 3-5; bwd0 3-4 -> layer 0 posted 4,
    # link busy: 5-7. Iteration 1: fwd0 waits for layer 0 (7): 7-8; layer 1 finished at 5:
    # fwd1 8-9; bwd1 9-10, bwd0 10-11. BP ends 4, 11.
    res = run(*EX_A, "bytescheduler")
    first = colls(res, 0, 7)
    assert what(first) == [(AR, (1, 1), 2_000_000), (AR, (0, 0), 2_000_000)]
    assert when(first) == approx([3, 3, 5, 4, 5, 7])
    assert ops(res, 4, 11) == [("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0)]
    assert op_times(res, 4, 11) == approx([7, 8, 8, 9, 9, 10, 10, 11])
    assert bp_ends(res)[:2] == approx([4, 11])


def test_credit_goes_negative_and_priority_picks_lower_layer():
    # Example B, credit 1 byte.
    # fwd 0-3; bwd2 3-4: layer 2's 4e6 chunk queued at 4, credit 1 > 0 -> posted at 4,
    # credit 1 - 4e6 < 0; runs 4-8. bwd1 4-5 and bwd0 5-6 queue layers 1 and 0 (credit
    # negative: nothing posted). At 8 layer 2 finishes: credit back to 1 -> highest
    # priority, layer 0, posted at 8: 8-9; at 9 credit back to 1 -> layer 1: 9-10.
    # Iteration 1: fwd0 waits only for layer 0 (9): 9-10; fwd1 waits for layer 1 (10):
    # 10-11; fwd2 11-12 (layer 2 done at 8); bwd 12-15. BP ends 6, 15 -> period 9.
    res = run(*EX_B, "bytescheduler", {"credit_bytes": 1})
    first = colls(res, 0, 10)
    assert what(first) == [
        (AR, (2, 2), 4_000_000),
        (AR, (0, 0), 1_000_000),
        (AR, (1, 1), 1_000_000),
    ]
    assert when(first) == approx([4, 4, 8, 8, 8, 9, 9, 9, 10])
    assert ops(res, 6, 12) == [("fwd", 0), ("fwd", 1), ("fwd", 2)]
    assert op_times(res, 6, 12) == approx([9, 10, 10, 11, 11, 12])
    assert bp_ends(res)[:3] == approx([6, 15, 24])


def test_example_b_all_posted_at_once_runs_fifo():
    # Credit 64e6: each chunk is posted the instant it is queued and the link runs them
    # in posting order: layer 2 posted 4, 4-8; layer 1 posted 5, 8-9; layer 0 posted 6,
    # 9-10. Iteration 1: fwd0 10-11, fwd1 11-12, fwd2 12-13, bwd 13-16.
    res = run(*EX_B, "bytescheduler")
    first = colls(res, 0, 10)
    assert what(first) == [
        (AR, (2, 2), 4_000_000),
        (AR, (1, 1), 1_000_000),
        (AR, (0, 0), 1_000_000),
    ]
    assert when(first) == approx([4, 4, 8, 5, 8, 9, 6, 9, 10])
    assert op_times(res, 6, 13) == approx([10, 11, 11, 12, 12, 13])
    assert bp_ends(res)[:2] == approx([6, 16])


def test_partitioning_remainder_last_and_priority_of_chunks():
    # partition 1e6, credit 1 (one chunk in flight at a time). f = [1, 1], b = [0.5, 1].
    # Layer 1: s = 2.5e6 -> ceil(2.5) = 3 chunks [1e6, 1e6, 0.5e6] (remainder last);
    # layer 0: s = 2e6 -> exactly 2 chunks [1e6, 1e6].
    # fwd 0-2; bwd1 2-3 -> layer 1's chunks queued at 3; chunk (1,0) posted (credit < 0):
    # 3-4. bwd0 3-3.5 -> layer 0's chunks queued at 3.5. At 4 credit back: highest priority
    # is layer 0: (0,0) 4-5, (0,1) 5-6, then (1,1) 6-7, (1,2) 0.5e6 7-7.5.
    # Iteration 1: fwd0 when layer 0 is done (6): 6-7; fwd1 when layer 1 is done (7.5):
    # 7.5-8.5; bwd1 8.5-9.5, bwd0 9.5-10. BP ends 3.5, 10 -> period 6.5.
    res = run(
        [1, 1],
        [0.5, 1],
        [2_000_000, 2_500_000],
        "bytescheduler",
        {"partition_bytes": 1_000_000, "credit_bytes": 1},
    )
    first = colls(res, 0, 7.5)
    assert what(first) == [
        (AR, (1, 1), 1_000_000),
        (AR, (0, 0), 1_000_000),
        (AR, (0, 0), 1_000_000),
        (AR, (1, 1), 1_000_000),
        (AR, (1, 1), 500_000),
    ]
    assert when(first) == approx([3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7.5])
    assert ops(res, 3.5, 10) == [("fwd", 0), ("fwd", 1), ("bwd", 1), ("bwd", 0)]
    assert op_times(res, 3.5, 10) == approx([6, 7, 7.5, 8.5, 8.5, 9.5, 9.5, 10])
    assert bp_ends(res)[:2] == approx([3.5, 10])
    assert res.iteration_time_s == pytest.approx(6.5 * MS, rel=1e-9)
    # 5 chunks per iteration, 4.5e6 bytes.
    assert res.collectives == 5
    assert res.comm_bytes == 4_500_000


def test_chunks_of_one_layer_go_in_chunk_order_under_full_credit():
    # Default credit, partition 1e6. Layer 1 (1e6): one chunk, layer 0 (2.5e6): chunks
    # [1e6, 1e6, 0.5e6]. fwd 0-2; bwd1 2-3 -> (1,0) 3-4; bwd0 3-4 -> layer 0's three
    # chunks posted at 4 in chunk order: 4-5, 5-6, 6-6.5. fwd0 of iteration 1 at 6.5.
    res = run([1, 1], [1, 1], [2_500_000, 1_000_000], "bytescheduler",
              {"partition_bytes": 1_000_000})  # fmt: skip
    first = colls(res, 0, 6.5)
    assert what(first) == [
        (AR, (1, 1), 1_000_000),
        (AR, (0, 0), 1_000_000),
        (AR, (0, 0), 1_000_000),
        (AR, (0, 0), 500_000),
    ]
    assert [r.start / MS for r in first] == approx([3, 4, 5, 6])
    assert [r.end / MS for r in first] == approx([4, 5, 6, 6.5])
    assert op_times(res, 4, 7) == approx([6.5, 7.5])
    assert res.iteration_time_s == pytest.approx(6.5 * MS, rel=1e-9)


def test_update_runs_just_before_each_forward():
    # Example A with u = [0.5, 0.25]. Iteration 0: AR(1) 3-5, AR(0) 5-7.
    # Iteration 1: layer 0 done at 7 -> u0 7-7.5, f0 7.5-8.5; layer 1 done at 5 -> u1
    # 8.5-8.75, f1 8.75-9.75; bwd1 9.75-10.75, bwd0 10.75-11.75.
    # Iteration 1's AR(1) 10.75-12.75, AR(0) posted 11.75, 12.75-14.75; iteration 2:
    # u0 14.75-15.25, f0 -16.25, u1 -16.5, f1 -17.5, bwd -19.5. Period 7.75.
    f, b, s = EX_A
    res = run(f, b, s, "bytescheduler", u=[0.5, 0.25])
    assert ops(res, 4, 11.75) == [
        ("update", 0), ("fwd", 0), ("update", 1), ("fwd", 1), ("bwd", 1), ("bwd", 0),
    ]  # fmt: skip
    assert op_times(res, 4, 11.75) == approx(
        [7, 7.5, 7.5, 8.5, 8.5, 8.75, 8.75, 9.75, 9.75, 10.75, 10.75, 11.75]
    )
    assert bp_ends(res)[:3] == approx([4, 11.75, 19.5])
    assert res.iteration_time_s == pytest.approx(7.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(4.75 * MS, rel=1e-9)


def test_one_worker_iteration_is_compute():
    # p = 1: collectives cost nothing; period = f 1+2 + b 3+4 + u 0.5+0.25 = 10.75 ms.
    res = run([1, 2], [3, 4], [5_000_000, 3_000_000], "bytescheduler", u=[0.5, 0.25], workers=1)
    assert res.iteration_time_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.compute_s == pytest.approx(10.75 * MS, rel=1e-9)
    assert res.exposed_comm_s == pytest.approx(0.0, abs=1e-12)


def test_tensors_are_partitioned_one_by_one():
    # MiB network, f = b = 1, one layer of 4 MiB as tensors [3, 1] MiB, partition 2 MiB:
    # tensor 0 -> chunks 2 and 1 MiB, tensor 1 -> 1 MiB (without the breakdown: 2 + 2).
    # bwd0 1-2 -> all three posted at 2 (credit 64e6): 2-4, 4-5, 5-6; the next forward of
    # layer 0 waits to 6: f 6-7, b 7-8 -> period 6.
    opts = {"partition_bytes": 2 * MIB}
    res = run([1], [1], [4 * MIB], "bytescheduler", opts, network=MIB_NET,
              tensors=[[3 * MIB, MIB]])
    first = colls(res, 0, 6)
    assert what(first) == [(AR, (0, 0), 2 * MIB), (AR, (0, 0), MIB), (AR, (0, 0), MIB)]
    assert [r.tag for r in first] == [0, 1, 2]
    assert when(first) == approx([2, 2, 4, 2, 4, 5, 2, 5, 6])
    assert res.iteration_time_s == pytest.approx(6 * MS, rel=1e-9)
    whole = run([1], [1], [4 * MIB], "bytescheduler", opts, network=MIB_NET)
    assert what(colls(whole, 0, 6)) == [(AR, (0, 0), 2 * MIB), (AR, (0, 0), 2 * MIB)]


def test_priority_is_layer_then_tensor_then_chunk():
    # credit 1 byte: one chunk in flight at a time, so the queue order shows. MiB network,
    # f = b = 1; layer 0 tensors [1, 1] MiB, layer 1 one tensor of 2 MiB; partition 16e6.
    # fwd 0-2; bwd1 2-3 -> layer 1's chunk posted at 3 (credit -> negative): 3-5; bwd0 3-4
    # -> layer 0's chunks (tensor 0, tensor 1) queued (not posted: no credit). At 5 the
    # credit is back: tensor 0 posted and run 5-6, then tensor 1 posted at 6, run 6-7.
    # f0 waits to 7: 7-8; f1 8-9; b 9-11 -> period 7.
    res = run([1, 1], [1, 1], [2 * MIB, 2 * MIB], "bytescheduler", {"credit_bytes": 1},
              network=MIB_NET, tensors=[[MIB, MIB], [2 * MIB]])
    first = colls(res, 0, 7)
    assert what(first) == [(AR, (1, 1), 2 * MIB), (AR, (0, 0), MIB), (AR, (0, 0), MIB)]
    assert [r.tag for r in first] == [0, 0, 1]
    assert when(first) == approx([3, 3, 5, 5, 5, 6, 6, 6, 7])
    assert bp_ends(res)[:2] == approx([4, 11])
    assert res.iteration_time_s == pytest.approx(7 * MS, rel=1e-9)
