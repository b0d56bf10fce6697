"""PyTorch DistributedDataParallel's gradient buckets (SPEC 3.1, ``ddp``).

DDP fills buckets with parameters in reverse layer order (the order gradients become ready).
The first bucket closes as soon as its size reaches or passes ``first_bucket_mb`` (1 MiB by
default), every later one as soon as it reaches or passes ``bucket_cap_mb`` (25 MiB); the
layer that crosses the limit stays in that bucket. Buckets are all-reduced strictly in bucket
order, which in a sequential backward pass is the order they become ready.

(Real DDP also rebuilds its buckets once from the gradient order observed in the first
iteration; with a sequential backward that order is the reverse layer order used here.)
"""

from __future__ import annotations

from .._types import PosFloat
from ..network import LinearCosts
from ..trace import Trace
from .base import Bucket, buckets_from_runs
from .registry import register
from .wfbp import WfbpFamily, WfbpOptions

MIB = 1 << 20


class DdpOptions(WfbpOptions):
    bucket_cap_mb: PosFloat = 25.0
    first_bucket_mb: PosFloat = 1.0


@register
class Ddp(WfbpFamily):
    """PyTorch DDP: size-capped buckets in reverse layer order, a small first bucket."""

    name = "ddp"
    summary = "PyTorch DDP buckets (first 1 MiB, then 25 MiB caps)"
    Options = DdpOptions

    def default_buckets(self, trace: Trace, costs: LinearCosts) -> list[Bucket]:
        limit = self.options.first_bucket_mb * MIB
        runs: list[list[int]] = []
        current: list[int] = []
        filled = 0
        for layer in reversed(trace.grad_layers):
            current.append(layer)
            filled += trace.size[layer]
            if filled >= limit:
                runs.append(current)
                current, filled = [], 0
                limit = self.options.bucket_cap_mb * MIB
        if current:
            runs.append(current)
        return buckets_from_runs(trace, runs)
