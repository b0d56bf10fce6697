"""Small helpers for the hand-computed timeline tests (tests/test_<schedule>.py).

Every expected number in those tests is worked out by hand from the rules in docs/model.md
and written as a comment beside the assertion; these helpers only run a simulation and pull
the compute ops and collectives out of it in the test's time unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import dearsim
from dearsim.network import Op

MS = 1e-3
MIB = 1 << 20

AR = Op.ALLREDUCE
RS = Op.REDUCE_SCATTER
AG = Op.ALL_GATHER

#: The worked examples' network (docs/model.md): with p = 2 an all-reduce of n bytes takes
#: n * 1e-9 s and a reduce-scatter or all-gather n * 0.5e-9 s.
EXAMPLE_NET = dearsim.AlphaBeta(alpha=0.0, beta=1e-9)

#: With p = 2 an all-reduce of n bytes takes n / 2**20 ms (1 MiB -> 1 ms).
MIB_NET = dearsim.AlphaBeta(alpha=0.0, beta=1e-3 / MIB)

#: Exact binary arithmetic (for tests that rely on ties): p = 2, an all-reduce of n bytes
#: takes n * 2**-20 s (2**20 bytes -> 1 s); use unit=1.0 (seconds) with it.
BIN_NET = dearsim.AlphaBeta(alpha=0.0, beta=2.0**-20)

EPS = 1e-6  # in test units; far below any duration used, far above float noise


def approx(values: Any) -> Any:
    return pytest.approx(values, rel=1e-9, abs=1e-9)


def run(
    f: Sequence[float],
    b: Sequence[float],
    s: Sequence[int],
    scheduler: str,
    options: dict[str, Any] | None = None,
    *,
    u: Sequence[float] | None = None,
    workers: int | dearsim.Cluster = 2,
    network: Any = EXAMPLE_NET,
    unit: float = MS,
    iterations: int = 6,
    warmup: int = 2,
    tensors: Sequence[Sequence[int]] | None = None,
) -> dearsim.Result:
    """Simulate a trace given in ``unit`` (ms by default) with ops recorded; ``tensors``
    optionally breaks each layer's gradient into tensors (bytes)."""
    trace = dearsim.Trace.from_layers(
        [x * unit for x in f],
        [x * unit for x in b],
        list(s),
        None if u is None else [x * unit for x in u],
        tensors=tensors,
    )
    return dearsim.simulate(
        trace,
        network,
        workers,
        scheduler,
        options,
        iterations=iterations,
        warmup=warmup,
        record_ops=True,
    )


def in_units(x: float, unit: float = MS) -> float:
    return x / unit


def ops(
    res: dearsim.Result, t0: float, t1: float, *, unit: float = MS, worker: int = 0
) -> list[tuple[str, int]]:
    """(kind, layer) of the worker's compute ops that start in [t0, t1), in start order."""
    return [(o.kind, o.layer) for o in _ops(res, t0, t1, unit, worker)]


def op_times(
    res: dearsim.Result, t0: float, t1: float, *, unit: float = MS, worker: int = 0
) -> list[float]:
    """start, end, start, end, ... of the same ops as :func:`ops`, in ``unit``."""
    return [t / unit for o in _ops(res, t0, t1, unit, worker) for t in (o.start, o.end)]


def _ops(res: dearsim.Result, t0: float, t1: float, unit: float, worker: int) -> list[Any]:
    assert res.raw is not None
    sel = [
        o
        for o in res.raw.ops
        if o.worker == worker and t0 - EPS <= o.start / unit < t1 - EPS
    ]
    return sorted(sel, key=lambda o: o.start)


def colls(
    res: dearsim.Result, t0: float, t1: float, *, unit: float = MS, op: Op | None = None
) -> list[Any]:
    """Collective records that start on the link in [t0, t1), in start order."""
    assert res.raw is not None
    sel = [
        r
        for r in res.raw.collectives
        if t0 - EPS <= r.start / unit < t1 - EPS and (op is None or r.op == op)
    ]
    return sorted(sel, key=lambda r: r.start)


def what(records: Sequence[Any]) -> list[tuple[Op, tuple[int, int], int]]:
    """(op, layers, nbytes) of each record."""
    return [(r.op, tuple(r.layers), r.nbytes) for r in records]


def when(records: Sequence[Any], unit: float = MS) -> list[float]:
    """posted, start, end, posted, start, end, ... of each record, in ``unit``."""
    return [t / unit for r in records for t in (r.posted, r.start, r.end)]


def bp_ends(res: dearsim.Result, unit: float = MS) -> list[float]:
    assert res.raw is not None
    return [t / unit for t in res.raw.bp_end]
