"""``dearsim collect interference``: what a standalone layer trace misses.

Run under torchrun with the validation's rank count, on the collected model. Per rank, the
compute step (forward + loss + backward, no communication) is timed

* ``alone``: rank 0 computes while the other ranks wait idle in a barrier;
* ``together``: every rank computes at once (ranks sharing cores, caches, memory bandwidth);
* ``with_comm``: every rank computes while a background thread on each rank runs all-reduces
  of ``--comm-bytes`` back to back on its own process group (the link busy all the time).

``compute_slowdown = together / alone`` (the ranks' mutual slowdown, present whenever they
all compute) and ``comm_compute_slowdown = with_comm / together`` (compute while the link is
busy). ``comm_busy_fraction`` is the share of the ``with_comm`` phase (rank 0's clock, from
the first timed step's start to the last one's end) covered by the background all-reduces:
the loop leaves small gaps between them. The background all-reduces are also timed with and
without the compute beside them (``comm_slowdown``). With ``--rounds R`` the four phases run
in R passes of about ``iters / R`` steps each, so that drift on a shared machine hits every
phase alike; each term is the median over all the passes' samples.

:func:`cluster_interference` turns ``comm_compute_slowdown`` and ``comm_busy_fraction`` into
the model's ``Cluster(interference=x)``, :func:`cluster_comm_interference` turns
``comm_slowdown`` into its ``Cluster(comm_interference=y)`` (``docs/model.md`` 2.6;
``docs/collect.md``).

Framework work, on rank 0 alone in a one-rank process group:

* ``ddp_overhead_s``: a DDP step's forward + backward minus the plain one (DDP's autograd
  hooks and the copies of gradients into its buckets; the one-rank all-reduce is a copy);
* ``optimizer_overhead_s``: ``torch.optim.SGD.step()`` minus the plain per-tensor
  ``p.add_(grad)`` loop that the trace's update times;
* ``dear_overhead_s`` and ``wfbp_overhead_s``: a step of ``validate``'s DeAR trainer
  (DeAR's default 25 MiB groups, ``prefetch="next"``) and of its WFBP trainer minus the
  plain forward + backward + update: their hooks, DeAR's copies of each group's gradients
  into a flat buffer, the one-rank collectives (copies) and the per-layer updates.

``dearsim validate --interference FILE`` applies these terms (docs/validation.md).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from typing import Any

from ..errors import DearsimError


def cluster_interference(terms: dict[str, Any]) -> tuple[float, str]:
    """The model's interference parameter ``x`` from the terms of ``collect interference``,
    and a line saying how it was obtained.

    Under the model's rule compute runs at rate ``1/(1+x)`` while the link is busy, so a
    step whose work takes ``W`` without communication and ``T`` beside a link busy for a
    fraction ``phi`` of ``T`` satisfies ``W = T (1 - phi) + T phi / (1 + x)``. With
    ``r = T / W`` (``comm_compute_slowdown``):
    ``x = (1 - 1/r) / (phi - 1 + 1/r)``, which is ``r - 1`` when the link is busy all the
    time (``phi = 1``). A file without ``comm_busy_fraction`` (written before it was
    measured) is taken as ``phi = 1``: the background loop posts its all-reduces back to
    back. ``r <= 1`` (compute no slower beside communication, within noise) gives 0."""
    try:
        r = float(terms["comm_compute_slowdown"])
    except (KeyError, TypeError, ValueError):
        raise DearsimError(
            "the interference terms have no number comm_compute_slowdown (write them with "
            "dearsim collect interference)"
        ) from None
    if not (0 < r < math.inf):
        raise DearsimError(f"comm_compute_slowdown must be a positive number, got {r!r}")
    raw = terms.get("comm_busy_fraction")
    if raw is None:
        phi, src = 1.0, "busy fraction not measured, taken as 1"
    else:
        phi = float(raw)
        if not (0 < phi <= 1):
            raise DearsimError(f"comm_busy_fraction must be in (0, 1], got {raw!r}")
        src = f"busy fraction {phi:.3f}"
    if r <= 1:
        return 0.0, f"compute beside collectives x{r:.3f} ({src}): no slowdown, x = 0"
    den = phi - 1 + 1 / r
    if den <= 0:
        raise DearsimError(
            f"comm_compute_slowdown {r:.3f} with the link busy {phi:.3f} of the time: no "
            "interference explains it (compute would have to stop while the link is busy)"
        )
    x = (1 - 1 / r) / den
    return x, f"compute beside collectives x{r:.3f} ({src}): x = {x:.4f}"


def cluster_comm_interference(terms: dict[str, Any]) -> tuple[float, str]:
    """The model's ``comm_interference`` ``y`` from the terms of ``collect interference``,
    and a line saying how it was obtained.

    Under the model's rule the collective in flight runs at rate ``1/(1+y)`` while a worker
    computes. The background all-reduces of the ``with_comm`` phase run beside compute that
    never stops (the ranks compute step after step), so their slowdown
    ``comm_slowdown = with compute / alone`` is ``1 + y``: ``y = comm_slowdown - 1``, and 0
    when it is at most 1 (no slower beside compute, within noise). A file without
    ``comm_slowdown`` gives 0."""
    raw = terms.get("comm_slowdown")
    if raw is None:
        return 0.0, "collectives beside compute not measured: y = 0"
    try:
        r = float(raw)
    except (TypeError, ValueError):
        raise DearsimError(f"comm_slowdown must be a positive number, got {raw!r}") from None
    if not (0 < r < math.inf):
        raise DearsimError(f"comm_slowdown must be a positive number, got {raw!r}")
    if r <= 1:
        return 0.0, f"collectives beside compute x{r:.3f}: no slowdown, y = 0"
    return r - 1, f"collectives beside compute x{r:.3f}: y = {r - 1:.4f}"


def _covered(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    """The length of ``[lo, hi]`` covered by the union of ``spans``."""
    total = 0.0
    end = lo
    for a, b in sorted(spans):
        a, b = max(a, end), min(b, hi)
        if b > a:
            total += b - a
            end = b
    return total


def _times(fn: Any, n: int, sync: Any) -> list[float]:
    ts = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return ts


def _median_time(fn: Any, n: int, sync: Any) -> float:
    return statistics.median(_times(fn, n, sync))


def _trainer_steps(args: dict[str, Any], device: str, group: Any, warmup: int, iters: int,
                   sync: Any) -> tuple[float, float, float]:
    """Median step times (s) of validate's DeAR trainer and WFBP trainer on a one-rank
    ``group``, and of the plain step (forward + backward + per-tensor update), each on its
    own copy of the model, timed alternately so that drift hits all three alike."""
    import torch

    from ..schedules.dear import greedy_groups
    from ..trace import Trace
    from .dear_impl import DearTrainer, WfbpTrainer
    from .layers import layering
    from .models import build

    def fresh() -> Any:
        w = build(args["model"], int(args["batch_size"]), device, seed=int(args["seed"]))
        return w, layering(w)

    wd, ld = fresh()
    n = len(ld.names)
    shape = Trace.from_layers([0.0] * n, [0.0] * n, ld.sizes, names=ld.names)
    groups = [(b.first, b.last) for b in greedy_groups(shape, 25.0)]
    dear = DearTrainer(ld, groups, 1e-6, prefetch="next", group=group)
    ww, lw = fresh()
    wfbp = WfbpTrainer(lw, 1e-6, group=group)
    wp, lp = fresh()
    pp = lp.all_params()

    def dear_step() -> None:
        wd.loss_fn(wd.run_forward()).backward()
        dear.end_backward()

    def wfbp_step() -> None:
        ww.loss_fn(ww.run_forward()).backward()
        wfbp.end_backward()

    def plain_step() -> None:
        for p in pp:
            p.grad = None
        wp.loss_fn(wp.run_forward()).backward()
        with torch.no_grad():
            for p in pp:
                p.add_(p.grad, alpha=-1e-6)

    for _ in range(warmup):
        dear_step()
        wfbp_step()
        plain_step()
    ts: tuple[list[float], list[float], list[float]] = ([], [], [])
    for _ in range(iters):
        for fn, out in zip((dear_step, wfbp_step, plain_step), ts):
            out.append(_median_time(fn, 1, sync))
    dear.finish()
    dear.remove()
    wfbp.remove()
    return statistics.median(ts[0]), statistics.median(ts[1]), statistics.median(ts[2])


def run_rank(args: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .layers import layering
    from .models import build

    rank = dist.get_rank()
    world = dist.get_world_size()
    device = args["device"]
    if device.startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    iters, warmup = int(args["iters"]), int(args["warmup"])
    w = build(args["model"], int(args["batch_size"]), device, seed=int(args["seed"]))
    lay = layering(w)
    params = lay.all_params()

    def compute() -> None:
        for p in params:
            p.grad = None
        w.loss_fn(w.run_forward()).backward()

    for _ in range(warmup):
        compute()
    comm_group = dist.new_group(backend=dist.get_backend())
    numel = max(world, int(args["comm_bytes"]) // 4)
    buf = torch.ones(numel + 1, device=device)
    stop = threading.Event()

    def comm_loop(record: list[float], limit: int | None,
                  spans: list[tuple[float, float]] | None = None) -> None:
        k = 0
        while True:
            buf[-1] = 1.0 if stop.is_set() else 0.0
            t0 = time.perf_counter()
            dist.all_reduce(buf, group=comm_group)
            sync()
            t1 = time.perf_counter()
            record.append(t1 - t0)
            if spans is not None:
                spans.append((t0, t1))
            k += 1
            if buf[-1].item() > 0 or (limit is not None and k >= limit):
                return

    # The phases, in ``rounds`` passes of about iters / rounds steps each (one pass: the
    # phases one after the other), so that drift hits every phase alike; each term is the
    # median over all its passes' samples.
    rounds = max(1, min(int(args.get("rounds", 1)), iters))
    alone_ts: list[float] = []
    together_ts: list[float] = []
    with_ts: list[float] = []
    comm_alone: list[float] = []
    comm_times: list[float] = []
    covered = spanned = 0.0
    for r in range(rounds):
        n = iters // rounds + (1 if r < iters % rounds else 0)
        # alone: rank 0 computes, the others wait in the barrier
        if rank == 0:
            alone_ts += _times(compute, n, sync)
        dist.barrier()
        together_ts += _times(compute, n, sync)
        dist.barrier()
        # the collectives alone (no compute beside them)
        comm_loop(comm_alone, max(5, n))
        dist.barrier()
        # compute beside the collectives, run back to back by a background thread
        spans: list[tuple[float, float]] = []
        stop.clear()
        th = threading.Thread(target=comm_loop, args=(comm_times, None, spans), daemon=True)
        th.start()
        time.sleep(0.01)
        w0 = time.perf_counter()
        with_ts += _times(compute, n, sync)
        w1 = time.perf_counter()
        stop.set()
        th.join(timeout=120)
        if th.is_alive():
            raise RuntimeError("the background all-reduce loop did not stop")
        dist.barrier()
        covered += _covered(spans, w0, w1)
        spanned += w1 - w0
    alone = statistics.median(alone_ts) if rank == 0 else 0.0
    together = statistics.median(together_ts)
    with_comm = statistics.median(with_ts)

    # framework work: rank 0 in a group of its own
    solo = [dist.new_group([r], backend=dist.get_backend()) for r in range(world)]
    ddp_over = opt_over = plain_bwd = ddp_bwd = upd_plain = upd_opt = 0.0
    dear_over = wfbp_over = dear_step = wfbp_step = plain_step = 0.0
    if rank == 0:
        w2 = build(args["model"], int(args["batch_size"]), device, seed=int(args["seed"]))
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        model = DDP(w2.model, device_ids=ids, process_group=solo[0])
        p2 = list(w2.model.parameters())

        def ddp_step() -> None:
            for p in p2:
                p.grad = None
            w2.loss_fn(model(*w2.args, **w2.kwargs)).backward()

        for _ in range(warmup):
            ddp_step()
            compute()
        ts_d, ts_p = [], []
        for _ in range(iters):  # alternate, so that drift hits both alike
            ts_d.append(_median_time(ddp_step, 1, sync))
            ts_p.append(_median_time(compute, 1, sync))
        ddp_bwd, plain_bwd = statistics.median(ts_d), statistics.median(ts_p)
        ddp_over = ddp_bwd - plain_bwd
        opt = torch.optim.SGD(p2, lr=1e-6)

        def plain_update() -> None:
            with torch.no_grad():
                for p in p2:
                    p.add_(p.grad, alpha=-1e-6)

        upd_plain = _median_time(plain_update, iters, sync)
        upd_opt = _median_time(opt.step, iters, sync)
        opt_over = upd_opt - upd_plain
        dear_step, wfbp_step, plain_step = _trainer_steps(args, device, solo[0], warmup,
                                                          iters, sync)
        dear_over, wfbp_over = dear_step - plain_step, wfbp_step - plain_step
    dist.barrier()
    ca = statistics.median(comm_alone)
    cw = statistics.median(comm_times) if comm_times else ca
    busy = covered / spanned if spanned > 0 else 1.0
    out = {
        "ranks": world,
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "compute_alone_s": alone,
        "compute_together_s": together,
        "compute_with_comm_s": with_comm,
        "compute_slowdown": together / alone if alone > 0 else 1.0,
        "comm_compute_slowdown": with_comm / together if together > 0 else 1.0,
        "comm_busy_fraction": min(1.0, max(busy, 1e-9)),
        "comm_bytes": numel * 4,
        "comm_alone_s": ca,
        "comm_with_compute_s": cw,
        "comm_slowdown": cw / ca if ca > 0 else 1.0,
        "comm_reps_with_compute": len(comm_times),
        "ddp_step_fwd_bwd_s": ddp_bwd,
        "plain_step_fwd_bwd_s": plain_bwd,
        "ddp_overhead_s": ddp_over,
        "plain_update_s": upd_plain,
        "optimizer_step_s": upd_opt,
        "optimizer_overhead_s": opt_over,
        "plain_step_s": plain_step,
        "dear_step_s": dear_step,
        "dear_overhead_s": dear_over,
        "wfbp_step_s": wfbp_step,
        "wfbp_overhead_s": wfbp_over,
    }
    try:
        out["cluster_interference"] = cluster_interference(out)[0]
    except DearsimError:  # a slowdown no x explains: left out, validate says why
        pass
    out["cluster_comm_interference"] = cluster_comm_interference(out)[0]
    return out
