"""What every schedule shares: the base class and its options, and the helpers schedules
have in common (buckets of layers, gradient tensors, the backward pass cut at the gradients a
schedule reacts to, the forward pass with its updates, a rendezvous of worker classes).

A schedule is one class with a ``name``, an ``Options`` pydantic model (the ``--set`` keys it
accepts) and a :meth:`Schedule.start` that starts processes on a
:class:`~dearsim.engine.Simulation`, using only the engine's API. It knows nothing of files or
the command line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .._yaml import clean_message
from ..engine import BWD, FWD, UPDATE, ComputeOp, Range, Signal, Simulation, WorkerClass
from ..errors import DearsimError
from ..trace import Trace


class ScheduleOptions(BaseModel):
    """Options of a schedule; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(ABC):
    """Base class of every schedule."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Options: ClassVar[type[ScheduleOptions]] = ScheduleOptions

    def __init__(self, options: ScheduleOptions | dict[str, Any] | None = None, **kw: Any):
        data: dict[str, Any] = {}
        if isinstance(options, ScheduleOptions):
            data = options.model_dump()
        elif options is not None:
            data = dict(options)
        data.update(kw)
        self.options = parse_options(self.Options, data, self.name)

    def start(self, sim: Simulation) -> None:
        """Start one training-loop process per worker class."""
        plan = self.plan(sim)
        for w in sim.classes:
            sim.process(self.worker(sim, w, plan))

    @abstractmethod
    def plan(self, sim: Simulation) -> Any:
        """Static decisions shared by all workers (buckets, groups, chunks)."""

    @abstractmethod
    def worker(self, sim: Simulation, w: WorkerClass, plan: Any) -> Generator[Signal, Any, None]:
        """The training loop of one worker class, all iterations."""

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump().items())
        return f"{type(self).__name__}({opts})"


def parse_options(model: type[ScheduleOptions], data: dict[str, Any], name: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            valid = ", ".join(model.model_fields) or "none"
            raise DearsimError(
                f"unknown option {key!r} for scheduler {name!r} (valid: {valid})"
            ) from None
        msg = clean_message(err["msg"])
        raise DearsimError(f"scheduler {name!r}: option {key!r}: {msg}") from None


# --------------------------------------------------------------------------- buckets


@dataclass(frozen=True)
class Bucket:
    """A run of consecutive layers whose gradients travel together.

    ``first`` and ``last`` are the lowest and highest layers with a gradient; the bucket is
    ready when layer ``first``'s backward op ends."""

    first: int
    last: int
    nbytes: int

    @property
    def layers(self) -> Range:
        return (self.first, self.last)


def make_bucket(trace: Trace, lo: int, hi: int) -> Bucket:
    """The bucket of the gradient layers in ``lo..hi`` (inclusive); they must exist."""
    grads = trace.grad_layers
    a, b = bisect_left(grads, lo), bisect_right(grads, hi) - 1
    if a > b:
        raise ValueError(f"layers {lo}..{hi} hold no gradient")
    pre = trace.size_prefix
    return Bucket(grads[a], grads[b], pre[hi + 1] - pre[lo])


def explicit_buckets(trace: Trace, ranges: Sequence[Sequence[int]], what: str) -> list[Bucket]:
    """Validate user-given layer ranges: in bounds, disjoint, each holding a gradient, and
    together covering every layer with a gradient. Returned in forward order."""
    n = trace.num_layers
    spans: list[tuple[int, int]] = []
    for k, r in enumerate(ranges):
        if len(r) != 2:
            raise DearsimError(f"{what}[{k}]: a range is [first_layer, last_layer]")
        lo, hi = int(r[0]), int(r[1])
        if not (0 <= lo <= hi < n):
            raise DearsimError(
                f"{what}[{k}]: [{lo}, {hi}] is not a layer range of a {n}-layer trace"
            )
        spans.append((lo, hi))
    spans.sort()
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        if b0 <= a1:
            raise DearsimError(f"{what}: ranges [{a0}, {a1}] and [{b0}, {b1}] overlap")
    covered = set()
    out: list[Bucket] = []
    for lo, hi in spans:
        grads = [i for i in range(lo, hi + 1) if trace.size[i] > 0]
        if not grads:
            raise DearsimError(f"{what}: range [{lo}, {hi}] holds no layer with a gradient")
        covered.update(grads)
        out.append(make_bucket(trace, lo, hi))
    missing = [i for i in trace.grad_layers if i not in covered]
    if missing:
        raise DearsimError(
            f"{what}: layer {missing[0]} has a gradient but is in no range"
            + (f" ({len(missing)} such layers)" if len(missing) > 1 else "")
        )
    return out


def buckets_from_runs(trace: Trace, runs: Sequence[Sequence[int]]) -> list[Bucket]:
    """Buckets from groups of layer indices (each a run of consecutive layers); groups
    without a gradient are dropped. Returned in forward order."""
    out = []
    grads = trace.grad_layers
    for run in runs:
        if not run:
            continue
        lo, hi = min(run), max(run)
        if bisect_left(grads, lo) < bisect_right(grads, hi):  # the run holds a gradient
            out.append(make_bucket(trace, lo, hi))
    return sorted(out, key=lambda b: b.first)


# --------------------------------------------------------------------------- tensors


@dataclass(frozen=True)
class GradTensor:
    """One gradient tensor: the ``index``-th tensor of ``layer``, ``nbytes`` bytes. ``gid``
    numbers every tensor of the model in (layer, index) order."""

    layer: int
    index: int
    nbytes: int
    gid: int


def grad_tensors(trace: Trace) -> list[list[GradTensor]]:
    """Per layer, its gradient tensors in the trace's order (one per layer with a gradient
    when the trace has no per-tensor breakdown)."""
    out: list[list[GradTensor]] = []
    gid = 0
    for layer, sizes in enumerate(trace.tensors):
        row = []
        for k, nbytes in enumerate(sizes):
            row.append(GradTensor(layer, k, nbytes, gid))
            gid += 1
        out.append(row)
    return out


# --------------------------------------------------------------------------- compute stretches


def backward_segments(n_layers: int, stops: Iterable[int]) -> list[list[int]]:
    """The backward pass (layers ``L-1..0``) cut after each layer in ``stops`` and after
    layer 0: the stretches of backward ops with nothing to react to inside them."""
    stop = frozenset(stops)
    segments: list[list[int]] = []
    current: list[int] = []
    for layer in range(n_layers - 1, -1, -1):
        current.append(layer)
        if layer in stop or layer == 0:
            segments.append(current)
            current = []
    return segments


def backward_ops(segment: Sequence[int], it: int) -> list[ComputeOp]:
    """The backward ops of one segment of iteration ``it``."""
    return [(BWD, layer, it) for layer in segment]


def forward_ops(
    trace: Trace, layers: Iterable[int], it: int, *, with_updates: bool = True
) -> list[ComputeOp]:
    """The forward ops of ``layers`` in iteration ``it``. ``with_updates``: each layer's
    update for the previous iteration's gradients runs just before its forward op (how
    schedules without a global barrier apply updates, layer by layer)."""
    if not with_updates or it == 0:
        return [(FWD, layer, it) for layer in layers]
    ops: list[ComputeOp] = []
    update = trace.update
    for layer in layers:
        if update[layer] > 0:
            ops.append((UPDATE, layer, it - 1))
        ops.append((FWD, layer, it))
    return ops


def layers_with_updates(trace: Trace) -> list[int]:
    """The layers whose update takes time, in forward order."""
    return [layer for layer in range(trace.num_layers) if trace.update[layer] > 0]


def update_ops(layers: Sequence[int], it: int) -> list[ComputeOp]:
    """The whole update of iteration ``it``'s gradients (``layers`` from
    :func:`layers_with_updates`), in forward layer order: schedules with a global barrier run
    it after the barrier."""
    return [(UPDATE, layer, it) for layer in layers]


# --------------------------------------------------------------------------- coordination


class Rendezvous:
    """Counts arrivals of the worker classes: :meth:`arrive` is true for the arrival that
    completes a key (every class has arrived), the moment a coordinator may act on it."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self._count: dict[Hashable, int] = {}

    def arrive(self, key: Hashable) -> bool:
        if self.classes == 1:
            return True
        count = self._count.get(key, 0) + 1
        if count < self.classes:
            self._count[key] = count
            return False
        self._count.pop(key, None)
        return True
