"""What every schedule shares: its options model, the registry hook and bucket helpers.

A schedule is one class with a ``name``, an ``Options`` pydantic model (the ``--set`` keys it
accepts) and a :meth:`Schedule.start` that starts SimPy processes on a
:class:`~dearsim.engine.Simulation`. It knows nothing of files or the command line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .._yaml import clean_message
from ..engine import Range, Simulation, Worker
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
        for w in sim.workers:
            sim.process(self.worker(sim, w, plan))

    @abstractmethod
    def plan(self, sim: Simulation) -> Any:
        """Static decisions shared by all workers (buckets, groups, chunks)."""

    @abstractmethod
    def worker(self, sim: Simulation, w: Worker, plan: Any) -> Generator[Any, Any, None]:
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
    grads = [i for i in range(lo, hi + 1) if trace.size[i] > 0]
    return Bucket(grads[0], grads[-1], sum(trace.size[i] for i in grads))


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
    for run in runs:
        grads = [i for i in run if trace.size[i] > 0]
        if grads:
            out.append(make_bucket(trace, min(grads), max(grads)))
    return sorted(out, key=lambda b: b.first)
