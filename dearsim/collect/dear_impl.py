"""Real data-parallel training loops that dearsim's schedules model: DeAR and WFBP.

:class:`DearTrainer` decouples each fusion group's all-reduce (Zhang et al., ICDCS 2023):

* backward: a ``post_accumulate_grad`` hook per parameter counts the group's ready
  gradients; when the group's last one is ready its gradients are copied into one flat
  buffer (zero-padded to a multiple of the world size) and a **reduce-scatter** is launched
  asynchronously (``reduce_scatter_single`` / ``reduce_scatter_tensor``);
* after the backward pass every reduce-scatter is waited for and the **all-gather** of
  group 0 is launched (the barrier);
* forward of the next step: a forward pre-hook on each layer module. The first hook of group
  ``j`` *opens* it: waits for its all-gather, launches group ``j+1``'s (``prefetch="next"``,
  exactly one ahead), and each layer then applies plain SGD to its own parameters
  (``p -= lr/world x summed gradient``) just before its forward runs.

``prefetch="chain"`` (posting ``j+1`` from the completion of ``j``) is not implemented: on a
CPU the host waits for every op anyway, which is what ``next`` models.

:class:`WfbpTrainer` launches one asynchronous all-reduce per gradient tensor from its
gradient hook, waits for all of them after backward and applies plain SGD.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from .layers import Layering

_RS = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
_AG = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


class DearTrainer:
    def __init__(self, lay: Layering, groups: list[tuple[int, int]], lr: float) -> None:
        self.lay = lay
        self.lr = lr
        self.world = dist.get_world_size()
        self.groups = [list(range(a, b + 1)) for a, b in groups]
        self.group_of = {i: g for g, layers in enumerate(self.groups) for i in layers}
        self.gparams: list[list[Any]] = [
            [p for i in layers for _, p in lay.params[i]] for layers in self.groups
        ]
        self.numel = [sum(p.numel() for p in ps) for ps in self.gparams]
        self.padded = [n + (-n) % self.world for n in self.numel]
        self.pending: list[int] = []
        self.rs: dict[int, tuple[Any, Any]] = {}  # group -> (work, shard)
        self.ag: dict[int, tuple[Any, Any]] = {}  # group -> (work, full buffer)
        self.opened: set[int] = set()
        self.grads: dict[int, Any] = {}  # layer -> list of gradient views to apply
        self.handles: list[Any] = []
        for g, ps in enumerate(self.gparams):
            for p in ps:
                self.handles.append(p.register_post_accumulate_grad_hook(
                    lambda _p, g=g: self._grad_ready(g)))
        for i, m in enumerate(lay.modules):
            if m is not None and i in self.group_of:
                self.handles.append(m.register_forward_pre_hook(
                    lambda _m, _a, i=i: self._pre_forward(i)))
        self._reset()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def _reset(self) -> None:
        self.pending = [len(ps) for ps in self.gparams]

    # ---- backward
    def _grad_ready(self, g: int) -> None:
        self.pending[g] -= 1
        if self.pending[g]:
            return
        ps = self.gparams[g]
        buf = torch.zeros(self.padded[g], dtype=ps[0].dtype, device=ps[0].device)
        off = 0
        for p in ps:
            k = p.numel()
            buf[off:off + k].copy_(p.grad.reshape(-1))
            off += k
        shard = torch.empty(self.padded[g] // self.world, dtype=buf.dtype, device=buf.device)
        self.rs[g] = (_RS(shard, buf, async_op=True), shard)

    def end_backward(self) -> None:
        """The barrier: wait for every reduce-scatter, then launch group 0's all-gather."""
        for g in sorted(self.rs):
            self.rs[g][0].wait()
        for ps in self.gparams:
            for p in ps:
                p.grad = None
        self._reset()
        self.opened = set()
        if self.rs:
            self._gather(0)

    def _gather(self, g: int) -> None:
        work, shard = self.rs.pop(g)
        full = torch.empty(self.padded[g], dtype=shard.dtype, device=shard.device)
        self.ag[g] = (_AG(full, shard, async_op=True), full)

    # ---- forward
    def _open(self, g: int) -> None:
        self.opened.add(g)
        if g not in self.ag:
            return  # the first step: nothing to gather
        work, full = self.ag.pop(g)
        work.wait()
        if g + 1 < len(self.groups) and g + 1 in self.rs:
            self._gather(g + 1)
        off = 0
        for i in self.groups[g]:
            views = []
            for _, p in self.lay.params[i]:
                k = p.numel()
                views.append((p, full[off:off + k].view_as(p)))
                off += k
            self.grads[i] = views

    def _apply(self, i: int) -> None:
        views = self.grads.pop(i, None)
        if views:
            with torch.no_grad():
                for p, grad in views:
                    p.add_(grad, alpha=-self.lr / self.world)

    def _pre_forward(self, i: int) -> None:
        g = self.group_of[i]
        for h in range(g + 1):
            if h not in self.opened:
                self._open(h)
        self._apply(i)

    def finish(self) -> None:
        """Apply every pending update now (after the last step, or to compare parameters)."""
        for g in range(len(self.groups)):
            if g not in self.opened:
                self._open(g)
        for i in list(self.grads):
            self._apply(i)


class WfbpTrainer:
    def __init__(self, lay: Layering, lr: float) -> None:
        self.lay = lay
        self.lr = lr
        self.world = dist.get_world_size()
        self.params = lay.all_params()
        self.works: list[Any] = []
        self.handles = [p.register_post_accumulate_grad_hook(self._ready) for p in self.params]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def _ready(self, p: Any) -> None:
        self.works.append(dist.all_reduce(p.grad, async_op=True))

    def end_backward(self) -> None:
        for w in self.works:
            w.wait()
        self.works = []
        with torch.no_grad():
            for p in self.params:
                p.add_(p.grad, alpha=-self.lr / self.world)
                p.grad = None

    def finish(self) -> None:
        pass
