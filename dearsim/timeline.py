"""Export a simulated run as a Chrome trace in the PyTorch profiler's (Kineto's) conventions.

The JSON that :func:`to_chrome_trace` builds opens in Perfetto (https://ui.perfetto.dev),
``chrome://tracing`` and TensorBoard's profiler plugin, and a folder written by
:func:`write_rank_traces` loads in Holistic Trace Analysis (HTA) like the per-rank traces of a
real data-parallel job. ``docs/timelines.md`` describes the layout; in short:

* one process per worker class (identical workers are one class), or one per rank with
  ``per_rank=True`` (the ranks of a class are identical);
* in each process, a compute stream (``tid`` 7, like CUDA stream 7), a communication stream
  (``tid`` 20, like the NCCL stream) and an ``iterations`` track;
* compute ops are kernels named ``fwd <layer>``, ``bwd <layer>``, ``update <layer>``;
  collectives are kernels named as NCCL names them (``ncclDevKernel_AllReduce_Sum_f32_RING_LL``
  ...) with Kineto's collective arguments (``Collective name``, ``In msg nelems``, ...);
* flow arrows from the backward op that makes a collective's gradients ready to the
  collective, and from a reduce-scatter to the all-gather of the same group;
* ``ts``/``dur`` are microseconds of simulated time since the run began, to the nanosecond.

By default the export holds the measured iterations (``warmup`` to ``N-2``, the ones the
reported times average over): every op and collective that *belongs* to them, whole. With
``clip=True`` it is instead the measured time window, from the end of backward pass
``warmup`` to the end of the last one: exactly ``N-1-warmup`` iteration periods, events cut at
its edges. That window is what HTA's temporal breakdown needs to reproduce dearsim's exposed
communication (see ``docs/timelines.md``).
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cluster import Cluster
from .engine import BWD, FWD, CollectiveRecord, OpRecord, RawRun
from .errors import DearsimError
from .network import Op
from .result import Result
from .trace import Trace

#: The ``tid`` of the compute stream and of the communication stream in every process (the
#: stream numbers a PyTorch job's default stream and NCCL stream often get in Kineto traces).
COMPUTE_STREAM = 7
COMM_STREAM = 20
#: The ``tid`` of the track that marks iterations.
ITERATION_TID = 1

#: Kernel names of the collectives, as NCCL names its device kernels (fp32 ring algorithm).
NCCL_KERNELS = {
    Op.ALLREDUCE: "ncclDevKernel_AllReduce_Sum_f32_RING_LL",
    Op.REDUCE_SCATTER: "ncclDevKernel_ReduceScatter_Sum_f32_RING_LL",
    Op.ALL_GATHER: "ncclDevKernel_AllGather_RING_LL",
}

#: Bytes per element: dearsim's gradients are fp32.
FP32_BYTES = 4

# HTA calls a kernel whose name contains "Memcpy" or "Sync" a memory/sync kernel, not
# computation; a layer name must not turn a compute op into one.
_HTA_RESERVED = re.compile(r"Memcpy|Memset|Sync")


def _safe_name(name: str) -> str:
    return _HTA_RESERVED.sub(lambda m: m.group(0).lower(), name)


@dataclass(frozen=True)
class _Proc:
    """One exported process: a worker class, or one rank of it."""

    pid: int
    cls: int
    name: str
    label: str


@dataclass
class _Slice:
    tid: int
    name: str
    cat: str
    start: int  # ns
    end: int  # ns
    args: dict[str, Any]
    key: Any = None  # what flows refer to


def _ns(t: float) -> int:
    return round(t * 1e9)


def _us(ns: int) -> float:
    return ns / 1000


def _check(result: Result, trace: Trace) -> RawRun:
    if not isinstance(trace, Trace):
        raise DearsimError(
            f"trace must be a dearsim.Trace (load it with dearsim.load_trace), got {trace!r}"
        )
    raw = result.raw
    if raw is None or not raw.ops:
        raise DearsimError(
            "the result has no recorded ops: run simulate(..., record_ops=True) to export a"
            " timeline"
        )
    layers = len(trace.names)
    top = max(op.layer for op in raw.ops)
    if result.trace != trace.name or top >= layers:
        raise DearsimError(
            f"the result was simulated on trace {result.trace!r}, not on {trace.name!r}"
            f" ({layers} layers): pass the trace the result came from"
        )
    return raw


def _class_count(raw: RawRun) -> int:
    return max(op.worker for op in raw.ops) + 1


def _rank_classes(result: Result, raw: RawRun, cluster: Cluster | None) -> list[int] | None:
    """The worker class of every rank, or None where the classes are not known."""
    n_classes = _class_count(raw)
    if cluster is None:
        return [0] * result.workers if n_classes == 1 else None
    classes = cluster.classes()
    if cluster.workers != result.workers or len(classes) != n_classes:
        raise DearsimError(
            f"cluster has {cluster.workers} workers in {len(classes)} classes, but the result"
            f" was simulated with {result.workers} workers in {n_classes} classes"
        )
    # The cluster's own grouping (speed, stalls, jitter), in the engine's class order.
    out = [0] * cluster.workers
    for c, (_slow, members) in enumerate(cluster.groups()):
        for r in members:
            out[r] = c
    return out


def _ranks_text(ranks: list[int]) -> str:
    if not ranks:
        return "no ranks"
    if ranks == list(range(ranks[0], ranks[-1] + 1)):
        return f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}"
    shown = ", ".join(str(r) for r in ranks[:8])
    return f"ranks {shown}{', ...' if len(ranks) > 8 else ''}"


def _processes(
    result: Result,
    raw: RawRun,
    per_rank: bool,
    ranks: Sequence[int] | None,
    cluster: Cluster | None,
) -> list[_Proc]:
    n_classes = _class_count(raw)
    rank_cls = _rank_classes(result, raw, cluster)
    if not per_rank:
        if ranks is not None:
            raise DearsimError("ranks selects ranks of a per-rank export: pass per_rank=True")
        procs = []
        for c in range(n_classes):
            members = [r for r, k in enumerate(rank_cls or []) if k == c]
            if rank_cls is None:
                who = " (ranks not known: pass cluster=)"
            else:
                count = f" ({len(members)} identical workers)" if len(members) > 1 else ""
                who = f": {_ranks_text(members)}{count}"
            procs.append(_Proc(c, c, f"worker class {c}{who}", f"worker class {c}"))
        return procs
    if rank_cls is None:
        raise DearsimError(
            f"the result has {n_classes} worker classes: pass cluster= (the Cluster it was"
            " simulated with) to say which rank is in which class"
        )
    chosen = list(range(result.workers)) if ranks is None else list(ranks)
    if not chosen:
        raise DearsimError("ranks is empty: select at least one rank")
    for r in chosen:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < result.workers:
            raise DearsimError(f"rank {r!r} is not one of the ranks 0..{result.workers - 1}")
    if len(set(chosen)) != len(chosen):
        raise DearsimError(f"ranks lists a rank twice: {chosen}")
    return [
        _Proc(r, rank_cls[r], f"rank {r} (worker class {rank_cls[r]})", f"GPU {r}") for r in chosen
    ]


def _selection(
    result: Result, raw: RawRun, iterations: Iterable[int] | None, clip: bool
) -> tuple[set[int] | None, tuple[float, float] | None]:
    n = raw.iterations
    if clip:
        if iterations is not None:
            raise DearsimError("give either iterations or clip=True, not both")
        return None, (raw.bp_end[result.warmup], raw.bp_end[n - 1])
    if iterations is None:
        return set(range(result.warmup, n - 1)), None
    chosen = set()
    for i in iterations:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise DearsimError(f"iteration {i!r} is not one of the simulated 0..{n - 1}")
        chosen.add(i)
    if not chosen:
        raise DearsimError("iterations is empty: select at least one iteration")
    return chosen, None


def _nelems(op: Op, nbytes: int, group: int) -> tuple[int, int]:
    """``(In msg nelems, Out msg nelems)`` as PyTorch records them for each collective: an
    all-reduce reads and writes the whole tensor; a reduce-scatter reads the whole tensor
    and writes one rank's share; an all-gather reads one share and writes the whole."""
    n = nbytes // FP32_BYTES
    share = n // group if group > 0 else n
    if op is Op.REDUCE_SCATTER:
        return n, share
    if op is Op.ALL_GATHER:
        return share, n
    return n, n


def to_chrome_trace(
    result: Result,
    trace: Trace,
    *,
    per_rank: bool = False,
    ranks: Sequence[int] | None = None,
    iterations: Iterable[int] | None = None,
    clip: bool = False,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """The run as a Chrome trace (a JSON-ready dict) in Kineto's conventions.

    ``result`` must come from ``simulate(..., record_ops=True)`` on ``trace``. One process per
    worker class, or per rank with ``per_rank=True`` (``ranks`` picks some; a result with
    several worker classes needs the ``cluster`` it was simulated with to know which rank is
    in which class). ``iterations`` picks the iterations whose ops and collectives are
    exported (default: the measured ones, ``warmup`` to ``N-2``); ``clip=True`` exports the
    measured time window instead (see the module's docstring)."""
    raw = _check(result, trace)
    procs = _processes(result, raw, per_rank, ranks, cluster)
    return _Export(result, trace, raw, iterations, clip).document(procs, per_rank)


class _Export:
    """Builds the events of each worker class once; a process (a class, or a rank of it) is
    a copy of its class's events under its own ``pid``."""

    def __init__(
        self,
        result: Result,
        trace: Trace,
        raw: RawRun,
        iterations: Iterable[int] | None,
        clip: bool,
    ) -> None:
        self.result = result
        self.names = trace.names
        self.raw = raw
        self.chosen, self.window = _selection(result, raw, iterations, clip)
        self.lo_ns, self.hi_ns = (
            (None, None) if self.window is None else (_ns(self.window[0]), _ns(self.window[1]))
        )
        n_classes = _class_count(raw)
        self.ops_by_class: dict[int, list[OpRecord]] = {c: [] for c in range(n_classes)}
        for op in raw.ops:
            if self._keep(op.iteration, op.start, op.end):
                self.ops_by_class[op.worker].append(op)
        self.colls = [c for c in raw.collectives if self._keep(c.iteration, c.start, c.end)]
        # What makes data ready: (class, layer, iteration) -> bwd op; (layers, iteration) -> RS.
        self.bwd_op: dict[tuple[int, int, int], OpRecord] = {}
        for op in raw.ops:
            if op.kind is BWD:
                self.bwd_op[(op.worker, op.layer, op.iteration)] = op
        self.scatter: dict[tuple[tuple[int, int], int], CollectiveRecord] = {}
        for rec in raw.collectives:
            if rec.op is Op.REDUCE_SCATTER:
                self.scatter[(rec.layers, rec.iteration)] = rec
        self._bodies: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}

    def _keep(self, iteration: int, start: float, end: float) -> bool:
        if self.window is None:
            assert self.chosen is not None
            return iteration in self.chosen
        lo, hi = self.window
        return (end > lo and start < hi) or (start == end and lo <= start < hi)

    def _span(self, start: float, end: float) -> tuple[int, int, bool] | None:
        """An event's start and end in ns, cut to the window; None if nothing is left."""
        s, e = _ns(start), _ns(end)
        if self.lo_ns is None or self.hi_ns is None:
            return s, e, False
        cs, ce = max(s, self.lo_ns), min(e, self.hi_ns)
        cut = (cs, ce) != (s, e)
        if ce < cs or (cut and ce == cs):
            return None
        return cs, ce, cut

    def body(self, cls: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ``X`` events and the flow events of worker class ``cls`` (``pid`` 0,
        correlation and flow ids from 1)."""
        if cls not in self._bodies:
            self._bodies[cls] = self._build(cls)
        return self._bodies[cls]

    def _build(self, cls: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        names = self.names
        p = self.result.workers
        compute: list[_Slice] = []
        for op in self.ops_by_class[cls]:
            span = self._span(op.start, op.end)
            if span is None:
                continue
            s, e, cut = span
            args: dict[str, Any] = {
                "device": 0,
                "stream": COMPUTE_STREAM,
                "layer": op.layer,
                "layer name": names[op.layer],
                "op": op.kind.value,
                "iteration": op.iteration,
            }
            if cut:
                args["clipped"] = True
            name = f"{op.kind.value} {_safe_name(names[op.layer])}"
            key = (op.kind, op.layer, op.iteration)
            compute.append(_Slice(COMPUTE_STREAM, name, "kernel", s, e, args, key))
        link: list[_Slice] = []
        sources: list[tuple[CollectiveRecord, Any, _Slice]] = []
        group_ranks = str(list(range(p)))
        for rec in self.colls:
            span = self._span(rec.start, rec.end)
            if span is None:
                continue
            s, e, cut = span
            n_in, n_out = _nelems(rec.op, rec.nbytes, p)
            first, last = rec.layers
            args = {
                "device": 0,
                "stream": COMM_STREAM,
                "Collective name": rec.op.value,
                "In msg nelems": n_in,
                "Out msg nelems": n_out,
                "Group size": p,
                "dtype": "Float",
                "In split size": "[]",
                "Out split size": "[]",
                "Process Group Name": "0",
                "Process Group Description": "default_pg",
                "Process Group Ranks": group_ranks,
                "bytes": rec.nbytes,
                "layers": [first, last],
                "layer names": (
                    names[first] if first == last else f"{names[first]} .. {names[last]}"
                ),
                "iteration": rec.iteration,
                "tag": rec.tag,
                "posted (us)": _us(_ns(rec.posted)),
                "queued (us)": _us(_ns(rec.start) - _ns(rec.posted)),
            }
            ready = _ready(rec, cls, self.bwd_op, self.scatter)
            if ready is not None:
                args["data ready (us)"] = _us(_ns(ready[1]))
            if cut:
                args["clipped"] = True
            key = (rec.op, rec.layers, rec.iteration, rec.tag)
            link.append(_Slice(COMM_STREAM, NCCL_KERNELS[rec.op], "kernel", s, e, args, key))
            if ready is not None:
                sources.append((rec, ready[0], link[-1]))
        corr = 0
        for track in (compute, link):
            _order_track(track)
            for sl in track:
                corr += 1
                sl.args["correlation"] = corr
                sl.args["External id"] = corr
        # Flows: gradient ready (bwd op) -> collective; reduce-scatter -> all-gather.
        by_key = {sl.key: sl for sl in compute + link}
        flows: list[dict[str, Any]] = []
        for rec, src_key, dst in sources:
            src = by_key.get(src_key)
            if src is None or src.start > dst.start:
                continue
            fid = len(flows) // 2 + 1
            name = "shard reduced" if rec.op is Op.ALL_GATHER else "gradient ready"
            base = {"id": fid, "pid": 0, "cat": "dearsim_flow", "name": name}
            flows.append({"ph": "s", **base, "tid": src.tid, "ts": _us(src.start)})
            flows.append({"ph": "f", **base, "tid": dst.tid, "ts": _us(dst.start), "bp": "e"})
        events = [
            {
                "ph": "X",
                "cat": sl.cat,
                "name": sl.name,
                "pid": 0,
                "tid": sl.tid,
                "ts": _us(sl.start),
                "dur": _us(sl.end - sl.start),
                "args": sl.args,
            }
            for track in (compute, link)
            for sl in track
        ]
        for it, s, e in _iteration_marks(
            self.raw, cls, self.chosen, self.window, self.lo_ns, self.hi_ns
        ):
            events.append(
                {
                    "ph": "X",
                    "cat": "user_annotation",
                    "name": f"iteration {it}",
                    "pid": 0,
                    "tid": ITERATION_TID,
                    "ts": _us(s),
                    "dur": _us(e - s),
                    "args": {"iteration": it},
                }
            )
        return events, flows

    def document(self, procs: list[_Proc], per_rank: bool) -> dict[str, Any]:
        """The trace of the processes ``procs``."""
        result = self.result
        p = result.workers
        events: list[dict[str, Any]] = []
        flows: list[dict[str, Any]] = []
        corr_base = 0
        flow_base = 0
        for proc in procs:
            pid = proc.pid
            body, body_flows = self.body(proc.cls)
            for ev in body:
                args = ev["args"]
                if "correlation" in args:
                    corr = args["correlation"] + corr_base
                    args = {**args, "device": pid, "correlation": corr, "External id": corr}
                events.append({**ev, "pid": pid, "args": args})
            for fl in body_flows:
                flows.append({**fl, "pid": pid, "id": fl["id"] + flow_base})
            corr_base += sum(1 for ev in body if "correlation" in ev["args"])
            flow_base += len(body_flows) // 2
        meta: list[dict[str, Any]] = []
        for proc in procs:
            meta += _metadata(proc)
        first_rank = procs[0].pid if per_rank else 0
        selection: dict[str, Any] = (
            {"window_s": list(self.window)}
            if self.window is not None
            else {"iterations": sorted(self.chosen or ())}
        )
        return {
            # distributedInfo first: HTA finds a file's rank with a regex on the first "rank".
            "distributedInfo": {"backend": "nccl", "rank": first_rank, "world_size": p},
            "schemaVersion": 1,
            "deviceProperties": [
                {"id": proc.pid, "name": f"dearsim simulated worker ({proc.label})"}
                for proc in procs
            ],
            "displayTimeUnit": "ms",
            "traceName": f"dearsim {result.scheduler} {result.trace} {result.network} p={p}",
            "dearsim": {**result.to_dict(), **selection, "per_rank": per_rank},
            "traceEvents": meta + events + flows,
        }


def _metadata(proc: _Proc) -> list[dict[str, Any]]:
    """``M`` events naming and ordering a process and its three tracks."""
    pid = proc.pid
    meta: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": proc.name}},
        {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": proc.label}},
        {
            "ph": "M",
            "name": "process_sort_index",
            "pid": pid,
            "tid": 0,
            "args": {"sort_index": pid},
        },
    ]
    for tid, tname in (
        (ITERATION_TID, "iterations"),
        (COMPUTE_STREAM, f"stream {COMPUTE_STREAM} (compute)"),
        (COMM_STREAM, f"stream {COMM_STREAM} (NCCL)"),
    ):
        meta.append(
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": tname}}
        )
        meta.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    return meta


def _order_track(track: list[_Slice]) -> None:
    """Sort a track by start and make it free of overlaps: adjacent events may overlap by the
    rounding of their times (a nanosecond at most); more is a bug."""
    track.sort(key=lambda sl: (sl.start, sl.end))
    prev_end: int | None = None
    for sl in track:
        if prev_end is not None and sl.start < prev_end:
            if prev_end - sl.start > 1:
                raise RuntimeError(
                    f"events overlap on a track: {sl.name} starts {prev_end - sl.start} ns"
                    " before the previous one ends"
                )
            sl.start = min(prev_end, sl.end)
        prev_end = sl.end if prev_end is None else max(prev_end, sl.end)


def _ready(
    rec: CollectiveRecord,
    cls: int,
    bwd_op: dict[tuple[int, int, int], OpRecord],
    scatter: dict[tuple[tuple[int, int], int], CollectiveRecord],
) -> tuple[Any, float] | None:
    """What makes a collective's data ready and when, for one worker class: the backward op
    of its lowest layer (the last of its layers to finish backward) for an all-reduce or a
    reduce-scatter; the reduce-scatter of the same group for an all-gather."""
    if rec.op is Op.ALL_GATHER:
        rs = scatter.get((rec.layers, rec.iteration))
        if rs is None:
            return None
        return (Op.REDUCE_SCATTER, rs.layers, rs.iteration, rs.tag), rs.end
    first, last = rec.layers
    ops = [bwd_op.get((cls, layer, rec.iteration)) for layer in range(first, last + 1)]
    found = [op for op in ops if op is not None]
    if not found:
        return None
    op = max(found, key=lambda o: o.end)
    return (BWD, op.layer, op.iteration), op.end


def _iteration_marks(
    raw: RawRun,
    cls: int,
    chosen: set[int] | None,
    window: tuple[float, float] | None,
    lo_ns: int | None,
    hi_ns: int | None,
) -> list[tuple[int, int, int]]:
    """``(iteration, start, end)`` in ns: from an iteration's first forward op to the next
    iteration's (the last one ends with its last op), on one worker class's stream."""
    first_fwd: dict[int, float] = {}
    last_end: dict[int, float] = {}
    for op in raw.ops:
        if op.worker != cls:
            continue
        if op.kind is FWD:
            first_fwd[op.iteration] = min(first_fwd.get(op.iteration, math.inf), op.start)
        last_end[op.iteration] = max(last_end.get(op.iteration, -math.inf), op.end)
    marks = []
    for it in sorted(first_fwd):
        start = first_fwd[it]
        end = first_fwd.get(it + 1, last_end[it])
        s, e = _ns(start), _ns(end)
        if window is None:
            if chosen is not None and it not in chosen:
                continue
        else:
            assert lo_ns is not None and hi_ns is not None
            s, e = max(s, lo_ns), min(e, hi_ns)
            if e <= s:
                continue
        marks.append((it, s, e))
    return marks


def _dump(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _check_suffix(path: Path) -> None:
    if not (path.name.endswith(".json") or path.name.endswith(".json.gz")):
        raise DearsimError(f"{path}: a trace file must end in .json or .json.gz")


def write_chrome_trace(
    result: Result,
    trace: Trace,
    path: str | Path,
    **options: Any,
) -> Path:
    """Write :func:`to_chrome_trace` to ``path`` (``.json``, or ``.json.gz`` to compress);
    ``options`` are its keyword arguments."""
    out = Path(path)
    _check_suffix(out)
    return _dump(to_chrome_trace(result, trace, **options), out)


def write_rank_traces(
    result: Result,
    trace: Trace,
    folder: str | Path,
    *,
    ranks: Sequence[int] | None = None,
    clip: bool = True,
    iterations: Iterable[int] | None = None,
    cluster: Cluster | None = None,
    compress: bool = False,
) -> list[Path]:
    """Write one trace per rank into ``folder`` (``rank<r>.pt.trace.json``, or ``.json.gz``
    with ``compress``), each with its own ``distributedInfo.rank``, as Holistic Trace
    Analysis reads a job: ``TraceAnalysis(trace_dir=folder)``.

    ``ranks`` picks some ranks (default all). By default each file holds the measured time
    window (``clip=True``), so HTA's temporal breakdown matches the reported times; pass
    ``clip=False`` for whole iterations instead (giving ``iterations`` implies it). The folder
    must not hold other trace files: HTA would read them as ranks of the same job."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise DearsimError(f"{out}: not a folder")
    if iterations is not None:
        clip = False
    raw = _check(result, trace)
    procs = _processes(result, raw, True, ranks, cluster)
    suffix = ".pt.trace.json.gz" if compress else ".pt.trace.json"
    names = {f"rank{proc.pid}{suffix}" for proc in procs}
    if out.is_dir():
        stray = sorted(
            f.name
            for f in out.iterdir()
            if (f.name.endswith(".json") or f.name.endswith(".json.gz")) and f.name not in names
        )
        if stray:
            raise DearsimError(
                f"{out}: already holds other trace files ({', '.join(stray[:3])}"
                f"{', ...' if len(stray) > 3 else ''}); HTA would read them as ranks of this"
                " job: choose an empty folder"
            )
    export = _Export(result, trace, raw, iterations, clip)
    paths = []
    for proc in procs:
        doc = export.document([proc], per_rank=True)
        paths.append(_dump(doc, out / f"rank{proc.pid}{suffix}"))
    return paths
