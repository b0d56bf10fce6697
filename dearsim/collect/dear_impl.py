"""Real data-parallel training loops that dearsim's schedules model: DeAR and WFBP.

:class:`DearTrainer` decouples each fusion group's all-reduce (Zhang et al., ICDCS 2023):

* backward: a ``post_accumulate_grad`` hook per parameter counts the group's ready
  gradients; when the group's last one is ready its gradients are copied into one flat
  buffer (zero-padded to a multiple of the world size) and a **reduce-scatter** is launched
  asynchronously (``reduce_scatter_single`` / ``reduce_scatter_tensor``);
* after the backward pass every reduce-scatter is waited for and the **all-gather** of
  group 0 is launched (the barrier);
* forward of the next step: a forward pre-hook on each layer module. The first hook of group
  ``j`` *opens* it: waits for its all-gather, and each layer then applies plain SGD to its
  own parameters (``p -= lr/world x summed gradient``) just before its forward runs.

When the all-gathers after group 0's are posted is ``prefetch`` (the model's option):

* ``"next"``: group ``j``'s opening posts group ``j+1``'s all-gather, so exactly one is in
  flight ahead of the forward pass;
* ``"chain"``: group ``j+1``'s all-gather is posted as soon as group ``j``'s completes,
  whatever the forward pass is doing, so they run back to back from the barrier on. With
  NCCL, all of them are posted at the barrier, in group order: the process group runs its
  collectives one after another on its stream, which is what dear_pytorch's GPU code does
  (its host runs ahead and enqueues them back to back). Elsewhere (gloo, CPUs) a helper
  thread (one per trainer, started once and handed each step's chain through a queue, so
  that no step waits for a thread to start) waits for all-gather ``j`` and posts ``j+1``.
  With one group there is nothing to chain: ``chain`` runs as ``next``. Collectives must be
  issued in the same order on every rank and never from two threads at once: the main
  thread issues none while the helper posts (the forward pass posts nothing), and the
  helper has posted every all-gather by the time the last group opens, where it is waited
  for, before the next backward's reduce-scatters (a gradient hook also waits for it,
  should a group not open).
  Between :meth:`DearTrainer.end_backward` and the next forward pass the helper may be
  posting: a caller that issues a collective of its own there (a barrier between warm-up
  and timing, say) calls :meth:`DearTrainer.settle` first.

:class:`WfbpTrainer` launches one asynchronous all-reduce per gradient tensor from its
gradient hook, waits for all of them after backward and applies plain SGD.

Both trainers can time their collectives as they run (:class:`CommLog`), which is how
``dearsim validate`` measures what communication costs *during* training.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import torch
import torch.distributed as dist

from ..errors import DearsimError
from .layers import Layering

PREFETCH = ("next", "chain")

_RS = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
_AG = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


class CommLog:
    """In-situ timing of a trainer's collectives while :attr:`on`: per collective, in posting
    order, ``[op, bytes, posted, completed]`` on this process's ``time.perf_counter`` clock.
    ``completed`` comes from a callback on the work's future (on gloo: the moment its worker
    thread finishes it); works without a future (gloo's reduce-scatter) are waited for, in
    posting order, by one waiter thread, which reads the clock when the wait returns (later
    by that thread's wake-up). ``nan`` until seen. A completion is only seen once the callback
    (or the waiter) holds the GIL, so a time can be late by as much as the main thread keeps
    it. ``dearsim validate`` writes these logs as its ``.comm.csv``."""

    def __init__(self) -> None:
        self.on = False
        self.entries: list[list[Any]] = []
        self._waits: queue.SimpleQueue[Any] | None = None

    def add(self, op: str, nbytes: int, work: Any) -> Any:
        if not self.on:
            return work
        rec: list[Any] = [op, int(nbytes), time.perf_counter(), math.nan]
        self.entries.append(rec)
        try:
            fut = work.get_future()
        except RuntimeError:  # "getFuture not implemented"
            if self._waits is None:
                self._waits = queue.SimpleQueue()
                threading.Thread(target=self._waiter, args=(self._waits,), daemon=True,
                                 name="comm-log").start()
            self._waits.put((work, rec))
            return work
        fut.add_done_callback(lambda _f, rec=rec: rec.__setitem__(3, time.perf_counter()))
        return work

    @staticmethod
    def _waiter(waits: queue.SimpleQueue[Any]) -> None:
        while True:
            work, rec = waits.get()
            try:
                work.wait()
            except Exception:  # noqa: BLE001 - the trainer's own wait reports it
                continue
            rec[3] = time.perf_counter()

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait (up to ``timeout_s``) until every logged completion has been seen."""
        deadline = time.perf_counter() + timeout_s
        while any(math.isnan(e[3]) for e in self.entries) and time.perf_counter() < deadline:
            time.sleep(0.001)


class DearTrainer:
    def __init__(self, lay: Layering, groups: list[tuple[int, int]], lr: float,
                 prefetch: str = "next", log: CommLog | None = None,
                 group: Any = None) -> None:
        if prefetch not in PREFETCH:
            raise DearsimError(f"prefetch must be one of {', '.join(PREFETCH)}, got {prefetch!r}")
        self.lay = lay
        self.lr = lr
        self.prefetch = prefetch
        self.log = log or CommLog()
        self.group = group  # the process group of its collectives (None: the default one)
        self.world = dist.get_world_size(group)
        # NCCL queues its collectives on one stream: posting them all is the chain
        self.post_all = dist.get_backend(group) == "nccl"
        self.gathering = False  # all-gathers to open in this forward pass (not the first)
        self.posted: list[threading.Event] = []  # chain with a helper thread: j is posted
        self.helper: threading.Thread | None = None  # started at the first chain
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.idle = threading.Event()  # the helper posts nothing now
        self.idle.set()
        self.helper_error: BaseException | None = None
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
        self._stop_helper()
        for h in self.handles:
            h.remove()

    def _reset(self) -> None:
        self.pending = [len(ps) for ps in self.gparams]

    # ---- backward
    def _grad_ready(self, g: int) -> None:
        if not self.idle.is_set():  # before any reduce-scatter of this backward
            self._join()
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
        nbytes = buf.numel() * buf.element_size()
        work = _RS(shard, buf, group=self.group, async_op=True)
        self.rs[g] = (self.log.add("reducescatter", nbytes, work), shard)

    def end_backward(self) -> None:
        """The barrier: wait for every reduce-scatter, then launch group 0's all-gather."""
        for g in sorted(self.rs):
            self.rs[g][0].wait()
        for ps in self.gparams:
            for p in ps:
                p.grad = None
        self._reset()
        self.opened = set()
        self.gathering = bool(self.rs)
        if not self.rs:
            return
        work = self._gather(0)
        if self.prefetch == "chain" and len(self.groups) > 1:
            if self.post_all:
                for g in range(1, len(self.groups)):
                    self._gather(g)
            else:
                self._chain(work)

    def _gather(self, g: int) -> Any:
        _, shard = self.rs.pop(g)
        full = torch.empty(self.padded[g], dtype=shard.dtype, device=shard.device)
        work = self.log.add("allgather", full.numel() * full.element_size(),
                            _AG(full, shard, group=self.group, async_op=True))
        self.ag[g] = (work, full)
        return work

    # ---- prefetch="chain" with a helper thread
    def _chain(self, first: Any) -> None:
        """Hand this step's chain to the helper thread: all-gather 0 is ``first``."""
        self.posted = [threading.Event() for _ in self.groups]
        self.posted[0].set()
        self.idle.clear()
        if self.helper is None:
            self.helper = threading.Thread(target=self._helper, name="dear-chain", daemon=True)
            self.helper.start()
        self.jobs.put((first, self.posted))

    def _helper(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            work, posted = job
            try:
                for g in range(1, len(posted)):
                    work.wait()
                    work = self._gather(g)
                    posted[g].set()
            except BaseException as exc:  # noqa: BLE001 - raised in the main thread
                self.helper_error = exc
            finally:
                for ev in posted:
                    ev.set()
                self.idle.set()

    def _stop_helper(self) -> None:
        self._join()
        if self.helper is not None:
            self.jobs.put(None)
            self.helper.join()
            self.helper = None

    def settle(self) -> None:
        """Wait until every all-gather of this step is posted (the helper thread of
        ``prefetch="chain"`` is idle): call it before issuing a collective of one's own
        between :meth:`end_backward` and the next forward pass."""
        self._join()

    def _join(self) -> None:
        self.idle.wait()
        if self.helper_error is not None:
            exc, self.helper_error = self.helper_error, None
            raise exc

    # ---- forward
    def _open(self, g: int) -> None:
        self.opened.add(g)
        if not self.gathering:
            return  # the first step: nothing to gather
        if self.posted:
            self.posted[g].wait()
            if self.helper_error is not None:
                self._join()
        work, full = self.ag.pop(g)
        work.wait()
        last = g + 1 == len(self.groups)
        if self.prefetch == "next" and not last:
            self._gather(g + 1)
        if last:
            self.gathering = False
            self.posted = []
            self._join()  # every all-gather is posted: no collective from the helper now
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
        self._stop_helper()  # a later step starts it again


class WfbpTrainer:
    def __init__(self, lay: Layering, lr: float, log: CommLog | None = None,
                 group: Any = None) -> None:
        self.lay = lay
        self.log = log or CommLog()
        self.group = group
        self.lr = lr
        self.world = dist.get_world_size(group)
        self.params = lay.all_params()
        self.works: list[Any] = []
        self.handles = [p.register_post_accumulate_grad_hook(self._ready) for p in self.params]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def _ready(self, p: Any) -> None:
        g = p.grad
        self.works.append(self.log.add("allreduce", g.numel() * g.element_size(),
                                       dist.all_reduce(g, group=self.group, async_op=True)))

    def end_backward(self) -> None:
        for w in self.works:
            w.wait()
        self.works = []
        with torch.no_grad():
            for p in self.params:
                p.add_(p.grad, alpha=-self.lr / self.world)
                p.grad = None

    def settle(self) -> None:
        """Nothing to wait for: every all-reduce was waited for in :meth:`end_backward`."""

    def finish(self) -> None:
        pass
