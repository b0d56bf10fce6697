"""The engine on its own: worker classes, the shared link, and its guards."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from dearsim import AlphaBeta, Cluster, DearsimError, Trace
from dearsim.engine import Simulation, run
from dearsim.network import Op

NET = AlphaBeta(0.0, 1e-9)  # with p = 2: all-reduce of n bytes takes n * 1e-9 s


class Scripted:
    """A minimal schedule: each worker class runs ``body(sim, w)``."""

    name = "scripted"

    def __init__(self, body: Any) -> None:
        self.body = body

    def start(self, sim: Simulation) -> None:
        for w in sim.classes:
            sim.process(self.body(sim, w))


def one_layer() -> Trace:
    return Trace.from_layers([1e-3], [1e-3], [2_000_000])


def test_identical_workers_are_one_class_and_distinct_ones_are_grouped() -> None:
    assert Cluster(64).classes() == [(1.0, 64)]
    assert Cluster(4, slowdown=(1.0, 2.0, 1.0, 2.0)).classes() == [(1.0, 2), (2.0, 2)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"workers": 0}, "positive integer"),
        ({"workers": 2, "slowdown": (1.0,)}, "1 entries for 2 workers"),
        ({"workers": 2, "slowdown": (1.0, 0.0)}, r"slowdown\[1\]"),
    ],
)
def test_cluster_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DearsimError, match=match):
        Cluster(**kwargs)


def test_collective_starts_when_the_last_class_posts_and_link_is_free() -> None:
    # Class 0 (slowdown 1) posts at its backward end, t = 2 ms; class 1 (slowdown 3) at 6 ms.
    # The all-reduce (2 ms) runs 6-8 for both.
    ends: dict[int, float] = {}

    def body(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        yield w.forward(0, 0)
        yield w.backward(0, 0)
        rec = yield w.post(Op.ALLREDUCE, 2_000_000, 0, (0, 0))
        ends[w.index] = sim.env.now
        assert (rec.posted, rec.start, rec.end) == pytest.approx((2e-3, 6e-3, 8e-3))

    raw = run(Scripted(body), one_layer(), NET.costs(2), Cluster(2, (1.0, 3.0)), 1)
    assert ends == {0: pytest.approx(8e-3), 1: pytest.approx(8e-3)}
    assert len(raw.collectives) == 1
    assert raw.bp_end == [pytest.approx(6e-3)]  # the later class's backward end
    assert raw.busy == [pytest.approx(6e-3)]  # the busiest class's compute


def test_link_is_a_fifo_in_posting_order() -> None:
    # Three all-reduces posted at t = 0 in order 3 MB, 1 MB, 2 MB run 0-3, 3-4, 4-6.
    def body(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        evs = [w.post(Op.ALLREDUCE, n, 0, (0, 0), tag=k) for k, n in enumerate([3e6, 1e6, 2e6])]
        for ev in evs:
            yield ev
        yield w.forward(0, 0)
        yield w.backward(0, 0)

    raw = run(Scripted(body), one_layer(), NET.costs(2), Cluster(2), 1)
    spans = [(r.start, r.end) for r in raw.collectives]
    assert spans == [pytest.approx(s) for s in [(0, 3e-3), (3e-3, 4e-3), (4e-3, 6e-3)]]


def test_compute_stream_runs_one_op_at_a_time() -> None:
    def body(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        w.forward(0, 0)
        yield w.backward(0, 0)  # started while the forward op is still running

    with pytest.raises(RuntimeError, match="compute stream was busy"):
        run(Scripted(body), one_layer(), NET.costs(2), Cluster(2), 1)


def test_a_stalled_schedule_is_reported_not_measured() -> None:
    # Only class 0 posts: the collective never becomes fully posted, class 0 waits forever.
    def body(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        yield w.forward(0, 0)
        if w.index == 0:
            yield w.post(Op.ALLREDUCE, 1_000_000, 0, (0, 0))
        yield w.backward(0, 0)

    with pytest.raises(RuntimeError, match="stalled"):
        run(Scripted(body), one_layer(), NET.costs(2), Cluster(2, (1.0, 2.0)), 1)


def test_zero_byte_messages_are_never_sent() -> None:
    def body(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        yield w.post(Op.ALLREDUCE, 0, 0, (0, 0))

    with pytest.raises(ValueError, match="0 bytes"):
        run(Scripted(body), one_layer(), NET.costs(2), Cluster(2), 1)


def test_run_of_ops_equals_one_event_per_op() -> None:
    # The same ops issued as one stretch or one by one give the same records and busy time.
    trace = Trace.from_layers([1e-3, 2e-3, 3e-3], [1e-3, 1e-3, 1e-3], [1, 1, 1], [5e-4, 0, 0])

    def stretch(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        yield w.run([("update", 0, 0), ("fwd", 0, 0), ("fwd", 1, 0), ("fwd", 2, 0)])
        yield w.run([("bwd", 2, 0), ("bwd", 1, 0), ("bwd", 0, 0)])

    def single(sim: Simulation, w: Any) -> Generator[Any, Any, None]:
        yield w.update(0, 0)
        for layer in range(3):
            yield w.forward(layer, 0)
        for layer in (2, 1, 0):
            yield w.backward(layer, 0)

    a = run(Scripted(stretch), trace, NET.costs(2), Cluster(2), 1, record_ops=True)
    b = run(Scripted(single), trace, NET.costs(2), Cluster(2), 1, record_ops=True)
    assert [(o.kind, o.layer) for o in a.ops] == [(o.kind, o.layer) for o in b.ops]
    for x, y in zip(a.ops, b.ops):
        assert (x.start, x.end) == pytest.approx((y.start, y.end), rel=1e-12)
    assert a.bp_end == pytest.approx(b.bp_end) == [9.5e-3]
    assert a.busy == pytest.approx(b.busy) == [9.5e-3]
