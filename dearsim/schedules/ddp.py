"""PyTorch DistributedDataParallel's gradient buckets (``ddp``).

DDP fills buckets with parameters in reverse layer order (the order gradients become ready).
Every bucket closes as soon as its size reaches or passes its limit; the layer that crosses
the limit stays in that bucket. The limit of every bucket but the first is ``bucket_cap_mb``
(25 MiB when left unset). The first bucket's limit follows PyTorch 2.x: DDP keeps a small
1 MiB first bucket only while ``bucket_cap_mb`` is left at its default; once a user passes
``bucket_cap_mb`` the first bucket takes that cap too (unless ``first_bucket_mb`` is also
given). Buckets are all-reduced strictly in bucket order, which in a sequential backward pass
is the order they become ready.

Real DDP also rebuilds its buckets once from the gradient order observed in the first
iteration; with a sequential backward that order is the reverse layer order used here. Real
DDP buckets *parameters*, so a layer's weight and bias can land in two buckets; dearsim keeps
layers whole (``docs/model.md`` says how little that moves).
"""

from __future__ import annotations

from pydantic import Field

from .._types import PosFloat
from ..network import LinearCosts
from ..trace import Trace
from ..units import MIB
from .base import Bucket, buckets_from_runs
from .registry import register
from .wfbp import WfbpFamily, WfbpOptions

#: PyTorch's defaults: ``bucket_cap_mb`` and the first bucket's limit
#: (``torch.distributed._DEFAULT_FIRST_BUCKET_BYTES``).
DEFAULT_CAP_MB = 25.0
DEFAULT_FIRST_MB = 1.0


class DdpOptions(WfbpOptions):
    bucket_cap_mb: PosFloat | None = Field(
        None, description="bucket cap (MiB); null: 25, with a 1 MiB first bucket"
    )
    first_bucket_mb: PosFloat | None = Field(
        None, description="first bucket's limit (MiB); null: 1, or the cap if one is given"
    )


def first_and_cap(options: DdpOptions) -> tuple[float, float]:
    """The first bucket's limit and every later bucket's cap, in MiB."""
    cap = DEFAULT_CAP_MB if options.bucket_cap_mb is None else options.bucket_cap_mb
    if options.first_bucket_mb is not None:
        first = options.first_bucket_mb
    elif options.bucket_cap_mb is not None:
        first = options.bucket_cap_mb
    else:
        first = DEFAULT_FIRST_MB
    return first, cap


@register
class Ddp(WfbpFamily):
    """PyTorch DDP: size-capped buckets in reverse layer order, a small first bucket."""

    name = "ddp"
    summary = "PyTorch DDP buckets (first 1 MiB, then 25 MiB caps)"
    Options = DdpOptions

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        first, cap = first_and_cap(self.options)
        limit = first * MIB
        runs: list[list[int]] = []
        current: list[int] = []
        filled = 0
        for layer in reversed(trace.grad_layers):
            current.append(layer)
            filled += trace.size[layer]
            if filled >= limit:
                runs.append(current)
                current, filled = [], 0
                limit = cap * MIB
        if current:
            runs.append(current)
        return buckets_from_runs(trace, runs)
