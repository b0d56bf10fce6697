"""``dearsim validate``: train for real, simulate the same runs, report the error.

Under torchrun (gloo on CPUs, NCCL on GPUs) every rank builds the collected model (same
seed; each rank's batch scaled differently so the averaging matters) and trains it with

* ``ddp``: PyTorch ``DistributedDataParallel`` with ``bucket_cap_mb`` left at its default and
  at each given cap, ``torch.optim.SGD``;
* ``dear``: :class:`~dearsim.collect.dear_impl.DearTrainer` with DeAR's threshold grouping
  over the trace's layers (:func:`dearsim.schedules.dear.greedy_groups`), once per
  ``prefetch`` asked for (``next``, ``chain``);
* ``wfbp``: :class:`~dearsim.collect.dear_impl.WfbpTrainer`, one all-reduce per tensor.

Iteration time = median over the timed steps (after warm-up) of the interval between step
starts on rank 0. The parent process then simulates each run with :func:`dearsim.simulate`
from the collected trace and the calibrated network (``ddp`` with the same
``bucket_cap_mb``, ``dear`` with the same groups and the same ``prefetch``, ``wfbp``) and
writes ``schedule, setting, prefetch, ranks, measured_ms, predicted_ms, error_pct``
(``prefetch`` is there when DeAR ran, and empty but for its rows). With the terms of
``collect interference`` it adds five predictions, each with its error:

* ``predicted_x_ms``: the same trace on a ``Cluster(ranks, interference=x)``, ``x`` from
  :func:`~dearsim.collect.interference.cluster_interference` (the model's own parameter);
* ``predicted_cal_ms``: the trace with the terms applied (:func:`calibrated_trace`), no ``x``;
* ``predicted_cal_x_ms``: both;
* ``predicted_xy_ms`` and ``predicted_cal_xy_ms``: the trace, and the trace with the terms,
  on a cluster with both interferences, ``y`` (``comm_interference``, the collectives
  slowed by compute) from
  :func:`~dearsim.collect.interference.cluster_comm_interference`.

Correctness: before timing, two steps of DeAR (with each prefetch) and of WFBP are compared
with two steps of DDP from the same initial parameters (the second step's forward pass
applies the first step's update while the all-gathers run); the largest absolute parameter
difference is reported per implementation (``check``: ``dear-next``, ``dear-chain``,
``wfbp``).
"""

from __future__ import annotations

import copy
import csv
import math
import statistics
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..errors import DearsimError

DEFAULT_LR = 0.01


CHECK_STEPS = 2


def settings(bucket_caps: list[float], thresholds: list[float | None],
             prefetches: tuple[str, ...] | list[str] = ("next",)) -> list[dict[str, Any]]:
    """The runs: DDP at its default and each cap, DeAR at each threshold with each prefetch,
    WFBP."""
    out: list[dict[str, Any]] = [{"schedule": "ddp", "setting": "default", "options": {}}]
    for cap in bucket_caps:
        out.append({"schedule": "ddp", "setting": f"bucket_cap_mb={cap:g}",
                    "options": {"bucket_cap_mb": cap}})
    for th in thresholds:
        label = "threshold_mb=null" if th is None else f"threshold_mb={th:g}"
        for pf in prefetches:
            out.append({"schedule": "dear", "setting": label,
                        "options": {"threshold_mb": th, "prefetch": pf}})
    out.append({"schedule": "wfbp", "setting": "per-tensor", "options": {}})
    return out


# --------------------------------------------------------------------------- per rank


def _workload(args: dict[str, Any], rank: int) -> Any:
    import torch

    from .models import build

    w = build(args["model"], int(args["batch_size"]), args["device"], seed=int(args["seed"]))
    with torch.no_grad():  # each rank its own batch: the average must really average
        for t in (*w.args, *w.kwargs.values()):
            if hasattr(t, "is_floating_point") and t.is_floating_point():
                t.mul_(1.0 + 0.5 * rank)
    return w


def _groups(trace: Any, threshold: float | None) -> list[tuple[int, int]]:
    from ..schedules.dear import greedy_groups

    return [(b.first, b.last) for b in greedy_groups(trace, threshold)]


def _step_fn(kind: str, w: Any, lay: Any, opts: dict[str, Any], trace: Any, lr: float,
             device: str, log: Any = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(step(), finish(), settle(), info) for one setting on the workload ``w``: settle()
    before a collective of the caller's own between steps. ``log`` (a
    :class:`~dearsim.collect.dear_impl.CommLog`) times DeAR's and WFBP's collectives; DDP's
    are its own and are not timed."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .dear_impl import DearTrainer, WfbpTrainer

    info: dict[str, Any] = {}
    if kind == "ddp":
        kw: dict[str, Any] = {}
        if opts.get("bucket_cap_mb") is not None:
            kw["bucket_cap_mb"] = opts["bucket_cap_mb"]
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        model = DDP(w.model, device_ids=ids, **kw)
        opt = torch.optim.SGD(w.model.parameters(), lr=lr)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss = w.loss_fn(model(*w.args, **w.kwargs))
            loss.backward()
            opt.step()

        return step, lambda: None, lambda: None, info
    if kind == "dear":
        groups = _groups(trace, opts.get("threshold_mb"))
        info["groups"] = groups
        tr = DearTrainer(lay, groups, lr, prefetch=opts.get("prefetch", "next"), log=log)
    else:
        tr = WfbpTrainer(lay, lr, log=log)

    def step2() -> None:
        loss = w.loss_fn(w.run_forward())
        loss.backward()
        tr.end_backward()

    return step2, tr.finish, tr.settle, info


def run_rank(args: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    from ..trace import Trace
    from .dear_impl import CommLog
    from .layers import layering

    rank = dist.get_rank()
    device = args["device"]
    if device.startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
        args = {**args, "device": device}
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    lr = float(args.get("lr", DEFAULT_LR))
    base = _workload(args, rank)
    lay0 = layering(base)
    if lay0.names != list(args["trace_names"]):
        raise DearsimError(
            f"{args['trace_path']}: the trace's layers ({len(args['trace_names'])}) are not "
            f"those of --model {args['model']} ({len(lay0.names)}): collect the trace from "
            "the same model"
        )
    trace = Trace.from_layers([0.0] * len(lay0.names), [0.0] * len(lay0.names), lay0.sizes,
                              names=lay0.names, tensors=lay0.tensor_bytes)
    init = copy.deepcopy(base.model.state_dict())

    def fresh() -> tuple[Any, Any]:
        w = _workload(args, rank)
        w.model.load_state_dict(init)
        return w, layering(w)

    # ---- correctness: two steps of each implementation from the same parameters
    steps = int(args.get("check_steps", CHECK_STEPS))
    ref_w, ref_lay = fresh()
    step, finish, _, _ = _step_fn("ddp", ref_w, ref_lay, {}, trace, lr, device)
    for _ in range(steps):
        step()
    ref = [p.detach().clone() for p in ref_lay.all_params()]
    check: dict[str, float] = {}
    th = args["check_threshold_mb"]
    for name, kind, opts in (
        ("dear-next", "dear", {"threshold_mb": th, "prefetch": "next"}),
        ("dear-chain", "dear", {"threshold_mb": th, "prefetch": "chain"}),
        ("wfbp", "wfbp", {}),
    ):
        w, lay = fresh()
        step, finish, _, _ = _step_fn(kind, w, lay, opts, trace, lr, device)
        for _ in range(steps):
            step()
        finish()
        diff = max(float((p.detach() - q).abs().max()) for p, q in zip(lay.all_params(), ref))
        check[name] = diff
    dist.barrier()

    # ---- timing
    rows = []
    logs = []
    for s in args["settings"]:
        w, lay = fresh()
        log = CommLog()
        step, finish, settle, info = _step_fn(s["schedule"], w, lay, s["options"], trace, lr,
                                              device, log)
        for _ in range(int(args["warmup"])):
            step()
        settle()  # DeAR's chain helper may still be posting all-gathers: not beside a barrier
        sync()
        dist.barrier()
        starts = []
        log.on = bool(args.get("comm_log", False))
        for _ in range(int(args["iters"]) + 1):
            starts.append(time.perf_counter())
            step()
        sync()
        last_end = time.perf_counter()  # before finish() applies the pending updates
        finish()
        starts.append(time.perf_counter())
        log.on = False
        log.settle()
        deltas = [b - a for a, b in zip(starts, starts[1:])]
        t = torch.tensor(deltas, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the slowest rank's step
        d = t.tolist()[:-1] if len(deltas) > 2 else t.tolist()
        rows.append({**s, "measured_s": statistics.median(d), "steps": len(d), **info})
        logs.append({"starts": starts[:-1] + [last_end], "entries": [
            [op, n, a, None if math.isnan(b) else b] for op, n, a, b in log.entries]})
        dist.barrier()
    # every rank's collective log (comm_rows), empty unless asked for
    every: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(every, logs)
    for k, row in enumerate(rows):
        if row["schedule"] != "ddp":
            row["comm_log"] = [every[r][k] for r in range(len(every))]
    return {
        "rows": rows,
        "check": check,
        "check_steps": steps,
        "names": lay0.names,
        "tensors": lay0.tensor_bytes,
        "tensor_names": [[n for n, _ in ps] for ps in lay0.params],
        "world": dist.get_world_size(),
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- parent side


def with_tensors(trace: Any, result: dict[str, Any]) -> Any:
    """The collected trace with the per-tensor breakdown taken from the model (when the
    trace file carries none)."""
    from ..trace import Trace

    if trace.has_breakdown:
        return trace
    return Trace.from_layers(
        trace.fwd, trace.bwd, trace.size, trace.update, trace.names, name=trace.name,
        batch_size=trace.batch_size, meta=trace.meta, source=trace.source,
        tensors=result["tensors"], tensor_names=result["tensor_names"],
    )


def calibrated_trace(trace: Any, terms: dict[str, Any], schedule: str) -> Any:
    """The trace with the interference terms applied: compute scaled by the ranks' mutual
    slowdown; for ddp, DDP's own work spread over the backward in proportion to the bytes
    and the optimizer's overhead added to the update; for dear and wfbp, their trainer's
    own work (``dear_overhead_s``, ``wfbp_overhead_s``; 0 in files written before these
    were measured) spread over the backward in proportion to the bytes. An overhead
    measured below 0 (noise: the difference of two noisy medians) counts as 0."""
    from ..trace import Trace

    f = float(terms.get("compute_slowdown", 1.0))
    fwd = [x * f for x in trace.fwd]
    bwd = [x * f for x in trace.bwd]
    upd = [x * f for x in trace.update]
    if schedule in ("ddp", "dear", "wfbp"):
        extra = max(0.0, float(terms.get(f"{schedule}_overhead_s", 0.0)))
        total = sum(trace.size) or 1
        bwd = [b + extra * s / total for b, s in zip(bwd, trace.size)]
    if schedule == "ddp":
        opt = max(0.0, float(terms.get("optimizer_overhead_s", 0.0)))
        total_u = sum(trace.update)
        n = trace.num_layers
        upd = [u + opt * (trace.update[i] / total_u if total_u > 0 else 1 / n)
               for i, u in enumerate(upd)]
    return Trace.from_layers(
        fwd, bwd, trace.size, upd, trace.names, name=trace.name, batch_size=trace.batch_size,
        meta=trace.meta, tensors=trace.tensors, tensor_names=trace.tensor_names,
    )


# --------------------------------------------------------------------------- in situ

#: columns of the collectives file ``validate`` writes beside its CSV (:func:`comm_rows`)
COMM_COLUMNS = ("schedule", "setting", "prefetch", "step", "index", "op", "bytes", "rank",
                "posted_ms", "completed_ms")


def comm_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every collective DeAR and WFBP posted in their timed steps, per rank: when it was
    posted and when the rank saw it complete, in ms from the start of that step on that
    rank (:class:`~dearsim.collect.dear_impl.CommLog`; ``completed_ms`` empty when it was
    not seen). Steps are numbered from 0 (the first timed step); ``starts`` holds every
    step's start and the end of the last one, and what was posted after that end (the
    updates the trainer applies once the timing is over) is left out."""
    out = []
    for r in result["rows"]:
        for rank, log in enumerate(r.get("comm_log") or []):
            starts = log["starts"]
            step, index = 0, 0
            for op, nbytes, posted, done in log["entries"]:
                if posted >= starts[-1]:
                    break
                while posted >= starts[step + 1]:
                    step, index = step + 1, 0
                t0 = starts[step]
                pf = r["options"].get("prefetch", "") if r["schedule"] == "dear" else ""
                out.append({
                    "schedule": r["schedule"], "setting": r["setting"], "prefetch": pf,
                    "step": step, "index": index, "op": op, "bytes": nbytes, "rank": rank,
                    "posted_ms": (posted - t0) * 1e3,
                    "completed_ms": None if done is None else (done - t0) * 1e3,
                })
                index += 1
    return out


def write_comm_rows(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COMM_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r[c]) for c in COMM_COLUMNS])


#: the predictions of a row: (column stem, what it is); ``predicted_<stem>ms`` and
#: ``error_<stem>pct``
PREDICTIONS = (
    ("", "trace + network"),
    ("x_", "+ interference x"),
    ("cal_", "+ terms"),
    ("cal_x_", "+ terms + x"),
    ("xy_", "+ x + y"),
    ("cal_xy_", "+ terms + x + y"),
    ("serial_", "no overlap"),
    ("serial_cal_", "no overlap + terms"),
)


def predict(result: dict[str, Any], trace: Any, network: Any,
            terms: dict[str, Any] | None,
            stems: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Measured and predicted times of every run; with ``terms``, also the predictions with
    the interference parameter, with the terms applied to the trace, with both, and with
    both interferences (with and without the terms). ``stems`` (of :data:`PREDICTIONS`)
    keeps only those predictions, and simulates only what they need; default: all.

    Every row also gets the **no-overlap** bound (``predicted_serial_ms``, and
    ``predicted_serial_cal_ms`` with the terms): the same simulated run's compute time plus
    its link busy time per iteration, i.e. the iteration time if no collective ever ran
    beside compute. It is what a machine whose communication cannot progress while the
    ranks compute would give (the collectives' log shows this on small CPU boxes,
    docs/validation.md)."""
    from ..api import simulate
    from ..cluster import Cluster
    from .interference import cluster_comm_interference, cluster_interference

    ranks = int(result["world"])
    x = cluster_interference(terms)[0] if terms else 0.0
    y = cluster_comm_interference(terms)[0] if terms else 0.0
    out = []
    for r in result["rows"]:
        opts = dict(r["options"])
        row: dict[str, Any] = {
            "schedule": r["schedule"], "setting": r["setting"], "ranks": ranks,
            "measured_ms": r["measured_s"] * 1e3,
        }
        if r["schedule"] == "dear":
            pf = r["options"].get("prefetch", "next")
            opts = {"groups": [list(g) for g in r["groups"]], "prefetch": pf}
            row["prefetch"] = pf
        runs = [("", trace, Cluster(ranks))]
        if terms:
            ct = calibrated_trace(trace, terms, r["schedule"])
            slowed = Cluster(ranks, interference=x)
            both = Cluster(ranks, interference=x, comm_interference=y)
            runs += [("x_", trace, slowed), ("cal_", ct, Cluster(ranks)),
                     ("cal_x_", ct, slowed), ("xy_", trace, both), ("cal_xy_", ct, both)]
            row["interference"] = x
            row["comm_interference"] = y
        for stem, tr, cluster in runs:
            serial = f"serial_{stem}" if stem in ("", "cal_") else None
            if stems is not None and stem not in stems and serial not in stems:
                continue
            pred = simulate(tr, network, cluster, r["schedule"], opts, iterations=12,
                            warmup=2)
            times = [(stem, pred.iteration_time_s)]
            if serial is not None:
                times.append((serial, pred.compute_s + pred.comm_s))
            for st, t in times:
                if stems is not None and st not in stems:
                    continue
                row[f"predicted_{st}ms"] = t * 1e3
                row[f"error_{st}pct"] = (t * 1e3 / row["measured_ms"] - 1) * 100
        if r["schedule"] == "dear":
            row["setting"] += f" groups={len(r['groups'])}"
        out.append(row)
    return out


def write_rows(rows: list[dict[str, Any]], path: Path, extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["schedule", "setting"]
    if any("prefetch" in r for r in rows):  # DeAR rows (empty for the others)
        cols.append("prefetch")
    cols += ["ranks", "measured_ms"]
    for stem, _ in PREDICTIONS:
        if any(f"predicted_{stem}ms" in r for r in rows):
            cols += [f"predicted_{stem}ms", f"error_{stem}pct"]
    for key in ("interference", "comm_interference"):
        if any(key in r for r in rows):
            cols.append(key)
    cols += list(extra)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_fmt({**r, **extra}.get(c)) for c in cols])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)


def summary(rows: list[dict[str, Any]], key: str = "error_pct") -> tuple[float, float]:
    errs = [abs(r[key]) for r in rows if key in r]
    if not errs:
        raise DearsimError("no rows to summarise")
    return statistics.median(errs), max(errs)
