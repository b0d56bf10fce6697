"""``dearsim collect`` (layers, comm, interference) and the ``calibrate`` and ``validate``
commands: measure a model and a network, fit the network, check the simulator's predictions.

``collect_app`` is a typer sub-app; :func:`calibrate_cmd` and :func:`validate_cmd` are plain
typer command functions; :mod:`dearsim.cli` registers all three (and its ``main`` keeps the
command line's contract: a user mistake is one line on standard error, never a traceback).

PyTorch is imported only inside the commands that need it (not by ``calibrate``).
Methods: ``docs/collect.md``; measured errors: ``docs/validation.md``.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import DearsimError

collect_app = typer.Typer(
    name="collect",
    help="Measure a model per layer (layers), collectives (comm) and interference on this host.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _created(value: str | None) -> str:
    if value is None:
        return datetime.date.today().isoformat()
    try:
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise DearsimError(f"--created must be a date YYYY-MM-DD, got {value!r}") from None


def _command_line(*parts: Any) -> str:
    return shlex.join(["dearsim", *[str(p) for p in parts if p is not None]])


def _threads(threads: int | None, device: str) -> None:
    if threads is None:
        return
    if threads < 1:
        raise DearsimError(f"--threads must be a positive integer, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _positive(flag: str, v: int) -> None:
    if isinstance(v, bool) or v < 1:
        raise DearsimError(f"{flag} must be a positive integer, got {v}")


def _write(out: Path, write: Any) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        raise DearsimError(f"{out}: cannot write: {exc.strerror or exc}") from None


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="mlp, tiny-mlp, small-cnn, a torchvision model or MODULE:FUNCTION."
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Per-rank batch size.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="PyTorch CPU threads per process.")
]
NprocOpt = Annotated[int, typer.Option("--nproc", help="Ranks (processes) on this host.")]
LauncherOpt = Annotated[
    str | None,
    typer.Option("--launcher", help="torchrun command (default: torchrun, else python -m "
                 "torch.distributed.run; env DEARSIM_TORCHRUN)."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds before the run is killed.")]


# --------------------------------------------------------------------------- layers


def collect_layers(
    model: str, batch_size: int, device: str = "cpu", *, iters: int = 20, warmup: int = 5,
    threads: int | None = None, created: str | None = None, seed: int = 0,
    hook_correction: bool = True, seq_len: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build and time ``model``: the measured trace and its header (library entry point)."""
    from .collect.models import build, check_device

    dev = check_device(device)
    _positive("--batch-size", batch_size)
    _threads(threads, dev)
    w = build(model, batch_size, dev, seed=seed, seq_len=seq_len)
    from .collect.layers import collect

    cmd = _command_line("collect", "layers", "--model", model, "--batch-size", batch_size,
                        *(["--seq-len", seq_len] if seq_len else []),
                        "--device", device, "--iters", iters, "--warmup", warmup,
                        *(["--threads", threads] if threads else []))
    return collect(w, dev, iters=iters, warmup=warmup, command=cmd,
                   created=_created(created), hook_correction=hook_correction)


@collect_app.command("layers")
def layers_cmd(
    model: ModelOpt,
    batch_size: BatchOpt,
    out: Annotated[Path, typer.Option("--out", help="Trace file to write (.csvy).")],
    device: DeviceOpt = "cpu",
    iters: Annotated[int, typer.Option("--iters", help="Timed steps (medians).")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up steps.")] = 5,
    threads: ThreadsOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of weights and data.")] = 0,
    no_hook_correction: Annotated[
        bool, typer.Option("--no-hook-correction", help="Keep the hooked times as measured.")
    ] = False,
    created: Annotated[str | None, typer.Option("--created", help="Date (YYYY-MM-DD).")] = None,
    seq_len: Annotated[
        int | None, typer.Option("--seq-len", help="Sequence length of a BERT model "
                                 "(default 128).")
    ] = None,
) -> None:
    """Time a model's training step per layer and write a measured trace."""
    from .trace import save_trace

    trace, header = collect_layers(model, batch_size, device, iters=iters, warmup=warmup,
                                   threads=threads, created=created, seed=seed,
                                   hook_correction=not no_hook_correction, seq_len=seq_len)
    _write(out, lambda: save_trace(trace, out, header))
    ho = header["provenance"]["hook_overhead"]
    _err(
        f"wrote {out}: {trace.num_layers} layers, {trace.num_tensors} tensors, "
        f"{trace.total_bytes:,} gradient bytes; forward {sum(trace.fwd) * 1e3:.3f} ms, backward "
        f"{sum(trace.bwd) * 1e3:.3f} ms, update {sum(trace.update) * 1e3:.3f} ms; hooks cost "
        f"{ho['overhead_ms']:.3f} ms per step ({ho['overhead_pct']}%)"
    )


# --------------------------------------------------------------------------- comm


def collect_comm(
    ops: str, sizes: str, nproc: int, device: str = "cpu", *, reps: int = 20, warmup: int = 5,
    launcher: str | None = None, timeout: float = 600.0, max_seconds_per_size: float = 5.0,
    out: Path | None = None, resume: bool = False, progress: Any = None, rounds: int = 1,
) -> list[dict[str, Any]]:
    """Time collectives on ``nproc`` ranks: the CSV rows (library entry point).

    With ``out`` every row is kept in that file as it is measured (through the side file
    ``out.partial``; :mod:`dearsim.collect.comm`), also when the run stops early, and the
    rows returned are the file's; ``resume`` measures only the (op, size) rows not already
    there. ``progress`` (a :class:`dearsim.collect.comm.Progress`) is filled in as the run
    goes, for the caller to report on after an interrupt. ``rounds`` > 1 interleaves the
    sizes (:mod:`dearsim.collect.comm`)."""
    from .collect import comm, launch
    from .collect.models import check_device

    op_list = comm.parse_ops(ops)
    size_list = comm.parse_sizes(sizes)
    _positive("--nproc", nproc)
    _positive("--reps", reps)
    _positive("--rounds", rounds)
    if rounds > reps:
        raise DearsimError(f"--rounds {rounds}: at most --reps ({reps}), one timed run per "
                           "size and pass at least")
    if warmup < 0:
        raise DearsimError(f"--warmup must be >= 0, got {warmup}")
    dev = check_device(device)
    if nproc < 2:
        raise DearsimError("--nproc must be at least 2: a collective needs two ranks")
    if dev.startswith("cuda"):
        import torch

        if torch.cuda.device_count() < nproc:
            raise DearsimError(f"--nproc {nproc}: only {torch.cuda.device_count()} GPU(s) here")
    if resume and out is None:
        raise DearsimError("--resume needs --out, the file to add to")
    todo = comm.plan(op_list, size_list, nproc)
    prog = progress if progress is not None else comm.Progress()
    args: dict[str, Any] = {"ops": op_list, "sizes": size_list, "reps": reps,
                            "warmup": warmup, "device": dev,
                            "max_seconds_per_size": max_seconds_per_size, "rounds": rounds}
    if out is None:
        prog.planned = len(todo)
        res = launch.run_task("comm", {**args, "plan": todo}, nproc, launcher=launcher,
                              timeout_s=timeout)
        prog.measured = len(res["rows"])
        return list(res["rows"])
    store = comm.CommFile(out, "nccl" if dev.startswith("cuda") else "gloo", nproc)
    kept = store.open(resume)
    done = {(r["op"], r["bytes"]) for r in kept}
    todo = [t for t in todo if t not in done]
    prog.planned, prog.kept_before = len(todo), len(kept)
    try:
        if todo:
            launch.run_task("comm", {**args, "plan": todo, "partial": str(store.partial)},
                            nproc, launcher=launcher, timeout_s=timeout)
    except BaseException as exc:
        rows = store.close()
        prog.in_file = len(rows)
        prog.measured = len(rows) - len(kept)
        if isinstance(exc, DearsimError) and rows:
            raise DearsimError(
                f"{exc} ({prog.measured} of {len(todo)} rows measured and kept in {out}: "
                "rerun with --resume to measure the others)"
            ) from None
        raise
    rows = store.close()
    prog.in_file = len(rows)
    prog.measured = len(rows) - len(kept)
    return rows


@collect_app.command("comm")
def comm_cmd(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    ops: Annotated[
        str, typer.Option("--ops", help="Comma list: allreduce,reducescatter,allgather.")
    ] = "allreduce,reducescatter,allgather",
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma list of sizes (4KiB,1MiB,...).")
    ] = "4KiB,16KiB,64KiB,256KiB,1MiB,4MiB",
    nproc: NprocOpt = 2,
    device: DeviceOpt = "cpu",
    reps: Annotated[int, typer.Option("--reps", help="Timed repetitions per size.")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs per size.")] = 5,
    rounds: Annotated[
        int, typer.Option("--rounds", help="Interleave the sizes: this many passes over all "
                          "of them, about --reps/ROUNDS timed runs each (1: one size after "
                          "the other).")
    ] = 1,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep the rows already in --out; measure the rest.")
    ] = False,
    launcher: LauncherOpt = None,
    timeout: TimeoutOpt = 600.0,
) -> None:
    """Time collectives under torchrun (gloo on CPU, NCCL on GPU) and write a CSV.

    Each row is kept as soon as it is measured: an interrupted run (Ctrl-C: exit 130,
    SIGTERM: 143) or a failed one leaves every finished row in --out; rerun the same
    command with --resume to measure only the missing ones."""
    import signal

    from .collect import comm

    prog = comm.Progress()
    try:
        rows = collect_comm(ops, sizes, nproc, device, reps=reps, warmup=warmup,
                            launcher=launcher, timeout=timeout, out=out, resume=resume,
                            progress=prog, rounds=rounds)
    except BaseException as exc:
        signum = getattr(exc, "signum", None)
        if signum is None and isinstance(exc, KeyboardInterrupt):
            signum = int(signal.SIGINT)
        if signum is None:
            raise
        where = f"{out}" if prog.in_file else f"{out} (not written: no row finished)"
        _err(
            f"interrupted: {prog.measured} of {prog.planned} rows measured and kept, "
            f"{prog.in_file} rows in {where}; rerun with --resume to measure the other "
            f"{prog.planned - prog.measured}"
        )
        raise typer.Exit(128 + int(signum)) from None
    for note in comm.notes(rows):
        _err(note)
    backend = rows[0]["backend"] if rows else ("nccl" if device.startswith("cuda") else "gloo")
    what = (f"{prog.measured} measured, {prog.kept_before} kept from before" if resume
            else f"{prog.measured} measured")
    _err(f"wrote {out}: {len(rows)} rows ({what}; {backend}, {nproc} ranks)")


# --------------------------------------------------------------------------- interference


def collect_interference(
    model: str, batch_size: int, nproc: int = 2, device: str = "cpu", *, iters: int = 10,
    warmup: int = 3, threads: int | None = None, comm_bytes: int = 1 << 20,
    launcher: str | None = None, timeout: float = 600.0, seed: int = 0, rounds: int = 1,
) -> dict[str, Any]:
    """Measure the interference and framework terms (library entry point). ``rounds`` > 1
    runs the phases in that many interleaved passes."""
    from .collect import launch
    from .collect.models import check_device

    dev = check_device(device)
    _positive("--nproc", nproc)
    _positive("--batch-size", batch_size)
    _positive("--iters", iters)
    _positive("--rounds", rounds)
    if rounds > iters:
        raise DearsimError(f"--rounds {rounds}: at most --iters ({iters}), one timed step per "
                           "phase and pass")
    if nproc < 2:
        raise DearsimError("--nproc must be at least 2")
    if threads is not None and threads < 1:
        raise DearsimError(f"--threads must be a positive integer, got {threads}")
    from .collect.models import build

    build(model, batch_size, "meta")  # a bad name fails here, in one line
    return launch.run_task(
        "interference",
        {"model": model, "batch_size": batch_size, "device": dev, "iters": iters,
         "warmup": warmup, "threads": threads, "comm_bytes": comm_bytes, "seed": seed,
         "rounds": rounds},
        nproc, launcher=launcher, threads=threads, timeout_s=timeout,
    )


@collect_app.command("interference")
def interference_cmd(
    model: ModelOpt,
    batch_size: BatchOpt,
    out: Annotated[Path, typer.Option("--out", help="YAML file with the terms.")],
    nproc: NprocOpt = 2,
    device: DeviceOpt = "cpu",
    iters: Annotated[int, typer.Option("--iters", help="Timed steps per phase.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed steps.")] = 3,
    threads: ThreadsOpt = None,
    comm_bytes: Annotated[
        str, typer.Option("--comm-bytes", help="Size of the background all-reduce.")
    ] = "1MiB",
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="Also record the terms in this trace's provenance."),
    ] = None,
    launcher: LauncherOpt = None,
    timeout: TimeoutOpt = 600.0,
    rounds: Annotated[
        int, typer.Option("--rounds", help="Run the phases in this many interleaved passes "
                          "(about ITERS / ROUNDS steps each).")
    ] = 1,
) -> None:
    """Compute slowdown with concurrent ranks and collectives; DDP's, the optimizer's and
    the DeAR and WFBP trainers' overheads."""
    import yaml

    from .collect.comm import parse_size

    res = collect_interference(model, batch_size, nproc, device, iters=iters, warmup=warmup,
                               threads=threads,
                               comm_bytes=parse_size(comm_bytes, "--comm-bytes"),
                               launcher=launcher, timeout=timeout, rounds=rounds)
    doc = {
        "format": "dearsim-interference",
        "version": 1,
        "model": model,
        "batch_size": batch_size,
        "device": device,
        "created": datetime.date.today().isoformat(),
        "command": _command_line("collect", "interference", "--model", model, "--batch-size",
                                 batch_size, "--nproc", nproc, "--device", device,
                                 "--iters", iters, "--warmup", warmup,
                                 "--comm-bytes", comm_bytes,
                                 *(["--threads", threads] if threads else []),
                                 *(["--rounds", rounds] if rounds > 1 else [])),
        "interference": {k: (round(v, 9) if isinstance(v, float) else v) for k, v in res.items()},
        "notes": "compute_slowdown = every rank computing / rank 0 alone; "
        "comm_compute_slowdown = computing beside back-to-back all-reduces / without; "
        "comm_busy_fraction = share of that time the all-reduces covered; "
        "cluster_interference = the model's Cluster(interference=x) from those two; "
        "cluster_comm_interference = its Cluster(comm_interference=y) from comm_slowdown; "
        "ddp_overhead_s, optimizer_overhead_s, dear_overhead_s and wfbp_overhead_s: "
        "framework work per step not in a layer trace (docs/collect.md).",
    }
    _write(out, lambda: out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8"))
    if trace is not None:
        from .trace import load_trace, save_trace

        tr = load_trace(trace)
        prov = dict(tr.meta.get("provenance") or {"method": "measured"})
        prov["interference"] = doc["interference"]
        _write(trace, lambda: save_trace(tr, trace, {"provenance": prov}))
    i = doc["interference"]
    from .collect.interference import cluster_comm_interference, cluster_interference

    try:
        how = cluster_interference(i)[1]
    except DearsimError as exc:
        how = f"no interference parameter: {exc}"
    how += f"; {cluster_comm_interference(i)[1]}"
    _err(
        f"wrote {out}: compute slowdown {i['compute_slowdown']:.3f} with {nproc} ranks, "
        f"x{i['comm_compute_slowdown']:.3f} more beside collectives; DDP overhead "
        f"{i['ddp_overhead_s'] * 1e3:.3f} ms, optimizer overhead "
        f"{i['optimizer_overhead_s'] * 1e3:.3f} ms, DeAR trainer overhead "
        f"{i['dear_overhead_s'] * 1e3:.3f} ms, WFBP trainer overhead "
        f"{i['wfbp_overhead_s'] * 1e3:.3f} ms per step; interference: {how}"
    )


# --------------------------------------------------------------------------- calibrate


def calibrate_cmd(
    comm_csv: Annotated[Path, typer.Argument(help="CSV written by dearsim collect comm.")],
    out: Annotated[Path, typer.Option("--out", help="Network YAML file to write.")],
    plot: Annotated[
        Path | None, typer.Option("--plot", help="PNG of measured vs fitted times.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Network name.")] = None,
    stat: Annotated[
        str, typer.Option("--stat", help="Per-size statistic to fit: median (default) or mean "
                          "(the mean of the timed runs: what a training step adds up).")
    ] = "median",
) -> None:
    """Fit T = a + b n per collective and worker count; write a fitted network file."""
    from .collect.calibrate import STATS, calibrate, write_network
    from .collect.calibrate import plot as plot_fits

    if stat not in STATS:
        raise DearsimError(f"--stat: {stat!r} is not one of {', '.join(STATS)}")
    net, fits = calibrate(comm_csv, name=name, stat=stat)
    _write(out, lambda: write_network(net, out))
    if plot is not None:
        _write(plot, lambda: plot_fits(fits, plot, net["name"]))
    for f in fits:
        _err(
            f"{f.op:>13} {f.workers} workers: a = {f.a * 1e6:.2f} us, b = {f.b * 1e9:.4f} ns/B "
            f"({1 / f.b / 1e9 if f.b > 0 else float('inf'):.3f} GB/s), R^2 = {f.r2:.4f}, worst "
            f"residual {f.worst_pct:.1f}%" + (" [EMULATED]" if f.emulated else "")
        )
    _err(f"wrote {out}" + (f" and {plot}" if plot else ""))


# --------------------------------------------------------------------------- validate


def _floats(text: str, flag: str, allow_null: bool = False) -> list[Any]:
    out: list[Any] = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        if allow_null and p.lower() in ("null", "none"):
            out.append(None)
            continue
        try:
            v = float(p)
        except ValueError:
            raise DearsimError(f"{flag}: {p!r} is not a number") from None
        if not v > 0:
            raise DearsimError(f"{flag}: {p!r} must be > 0")
        out.append(v)
    return out


def _prefetches(text: str) -> list[str]:
    from .collect.dear_impl import PREFETCH

    out: list[str] = []
    for part in text.split(","):
        p = part.strip().lower()
        if not p:
            continue
        if p not in PREFETCH:
            raise DearsimError(f"--prefetch: {part.strip()!r} is not one of next, chain")
        if p not in out:
            out.append(p)
    if not out:
        raise DearsimError("--prefetch: give next, chain or both")
    return out


def _terms_of(path: Path) -> dict[str, Any]:
    """The terms of a ``collect interference`` file; one that gives no interference
    parameter fails here, in one line."""
    from ._yaml import load as yaml_load
    from .collect.interference import cluster_comm_interference, cluster_interference

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read: {exc.strerror or exc}") from None
    doc, _ = yaml_load(text, str(path))
    terms = doc.get("interference") if isinstance(doc, dict) else None
    if not isinstance(terms, dict) or "compute_slowdown" not in terms:
        raise DearsimError(
            f"{path}: no 'interference' mapping with compute_slowdown (write it "
            "with dearsim collect interference)"
        )
    try:
        cluster_interference(terms)
        cluster_comm_interference(terms)
    except DearsimError as exc:
        raise DearsimError(f"{path}: {exc}") from None
    return terms


def run_validate(
    trace_path: Path, network: str, model: str, batch_size: int | None = None, *,
    nproc: int = 2, device: str = "cpu", bucket_caps: str = "1,5", thresholds: str = "1,25",
    prefetch: str = "next,chain", iters: int = 20, warmup: int = 5, threads: int | None = None,
    interference: Path | None = None, launcher: str | None = None, timeout: float = 600.0,
    seed: int = 0, comm_log: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train for real, simulate, compare: (rows, worker result). Library entry point."""
    from . import load_network
    from .collect import launch, validate
    from .collect.models import check_device
    from .trace import load_trace

    trace = load_trace(trace_path)
    net = load_network(network)
    net.costs(nproc)  # a fitted table without this worker count fails here, in one line
    dev = check_device(device)
    _positive("--nproc", nproc)
    _positive("--iters", iters)
    if nproc < 2:
        raise DearsimError("--nproc must be at least 2")
    batch = batch_size or trace.batch_size
    if batch is None:
        raise DearsimError(f"{trace_path}: the trace gives no batch size: pass --batch-size")
    terms = _terms_of(interference) if interference is not None else None
    from .collect.models import build

    build(model, batch, "meta")  # a bad name fails here, in one line
    caps = _floats(bucket_caps, "--bucket-caps")
    ths = _floats(thresholds, "--thresholds", allow_null=True)
    sets = validate.settings(caps, ths, _prefetches(prefetch))
    res = launch.run_task(
        "validate",
        {"model": model, "batch_size": batch, "device": dev, "iters": iters,
         "warmup": warmup, "threads": threads, "seed": seed, "settings": sets,
         "trace_path": str(trace_path), "trace_names": list(trace.names),
         "check_threshold_mb": None, "comm_log": comm_log},
        nproc, launcher=launcher, threads=threads, timeout_s=timeout,
    )
    tr = validate.with_tensors(trace, res)
    rows = validate.predict(res, tr, net, terms)
    return rows, res


def read_measured(path: Path) -> tuple[str, str, dict[str, Any]]:
    """(model, device, the workers' result) of an ``OUT.result.json``; one line if it is
    not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DearsimError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DearsimError(f"{path}: not a validate result (not JSON: {exc})") from None
    res = doc.get("result") if isinstance(doc, dict) else None
    if (not isinstance(res, dict) or not isinstance(res.get("rows"), list)
            or "world" not in res or not isinstance(doc.get("model"), str)):
        raise DearsimError(f"{path}: not a validate result (written by dearsim validate as "
                           "OUT.result.json)")
    return doc["model"], str(doc.get("device", "cpu")), res


def repredict(res: dict[str, Any], trace_path: Path, network: str,
              interference: Path | None) -> list[dict[str, Any]]:
    """The rows of ``validate`` for a run measured before (its workers' result), predicted
    from this trace, network and (optionally) interference terms. Library entry point."""
    from . import load_network
    from .collect import validate
    from .trace import load_trace

    trace = load_trace(trace_path)
    net = load_network(network)
    net.costs(int(res["world"]))  # a fitted table without this worker count fails here
    terms = _terms_of(interference) if interference is not None else None
    try:
        tr = validate.with_tensors(trace, res)
        return validate.predict(res, tr, net, terms)
    except (KeyError, TypeError, ValueError) as exc:
        raise DearsimError(f"the measured result does not match {trace_path}: {exc!r}"
                           ) from None


def result_path(out: Path) -> Path:
    """Where ``validate --out OUT`` keeps the measurement itself (the workers' JSON result:
    every setting's options, groups and measured step times, the model's tensors), so that
    the run can be predicted again, against another network or other terms, without
    training again (:func:`dearsim.collect.validate.repredict`)."""
    return out.with_name(out.stem + ".result.json")


def comm_path(out: Path) -> Path:
    """Where ``validate --out OUT`` writes DeAR's and WFBP's collectives as timed during
    training (:func:`dearsim.collect.validate.comm_rows`): ``OUT`` with ``.comm.csv`` for its
    suffix."""
    return out.with_name(out.stem + ".comm.csv")


def validate_cmd(
    trace: Annotated[Path, typer.Option("--trace", help="Trace from dearsim collect layers.")],
    network: Annotated[str, typer.Option("--network", help="Network YAML from dearsim calibrate.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of measured vs predicted times.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="mlp, tiny-mlp, small-cnn, a torchvision model or "
                     "MODULE:FUNCTION (not with --measured: the file names it)."),
    ] = None,
    measured: Annotated[
        Path | None,
        typer.Option("--measured", help="Predict again the runs measured into this "
                     "OUT.result.json by an earlier validate (no training: another "
                     "--network or --interference against the same measurements)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Per-rank batch (default: the trace's).")
    ] = None,
    nproc: NprocOpt = 2,
    device: DeviceOpt = "cpu",
    bucket_caps: Annotated[
        str, typer.Option("--bucket-caps", help="DDP bucket_cap_mb values besides the default.")
    ] = "1,5",
    thresholds: Annotated[
        str, typer.Option("--thresholds", help="DeAR threshold_mb values (null: per layer).")
    ] = "1,25",
    prefetch: Annotated[
        str, typer.Option("--prefetch", help="DeAR all-gather prefetch rules to run: next, "
                          "chain or both (comma list).")
    ] = "next,chain",
    iters: Annotated[int, typer.Option("--iters", help="Timed steps per setting.")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed steps per setting.")] = 5,
    threads: ThreadsOpt = None,
    interference: Annotated[
        Path | None,
        typer.Option("--interference", help="YAML from dearsim collect interference."),
    ] = None,
    launcher: LauncherOpt = None,
    timeout: TimeoutOpt = 600.0,
    comm_log: Annotated[
        bool, typer.Option("--comm-log/--no-comm-log",
                           help="Time DeAR's and WFBP's collectives into OUT.comm.csv "
                           "(a diagnostic: its callbacks slow those runs down).")
    ] = False,
) -> None:
    """Train with DDP, DeAR (prefetch next and chain) and WFBP for real; compare with
    dearsim's predictions."""
    from .collect import validate

    if measured is not None:
        if model is not None:
            raise DearsimError("--model: not with --measured (the measured file names it)")
        model, device, res = read_measured(measured)
        rows = repredict(res, trace, network, interference)
    elif model is None:
        raise DearsimError("--model is required (or --measured, to predict a measured run "
                           "again)")
    else:
        rows, res = run_validate(
            trace, network, model, batch_size, nproc=nproc, device=device,
            bucket_caps=bucket_caps, thresholds=thresholds, prefetch=prefetch, iters=iters,
            warmup=warmup, threads=threads, interference=interference, launcher=launcher,
            timeout=timeout, comm_log=comm_log,
        )
    extra = {"model": model, "device": device, "threads": res["threads"]}
    _write(out, lambda: validate.write_rows(rows, out, extra))
    kept = result_path(out)
    if measured is None or kept.resolve() != measured.resolve():
        _write(kept, lambda: kept.write_text(
            json.dumps({"model": model, "device": device, "result": res}), encoding="utf-8"))
    comm = comm_path(out)
    comm_rows = validate.comm_rows(res)
    if comm_rows:
        _write(comm, lambda: validate.write_comm_rows(comm_rows, comm))
    preds = [(stem, what) for stem, what in validate.PREDICTIONS
             if any(f"predicted_{stem}ms" in r for r in rows)]
    if len(preds) > 1 and interference is not None:
        from .collect.interference import cluster_comm_interference, cluster_interference

        terms = _terms_of(interference)
        print(f"interference from {interference}: {cluster_interference(terms)[1]}; "
              f"{cluster_comm_interference(terms)[1]}")
    head = (f"{'schedule':<6} {'setting':<28} {'prefetch':<8} {'ranks':>5} {'measured':>10}"
            + "".join(f" {what:>16} {'error':>7}" for _, what in preds))
    print(head)
    for r in rows:
        line = (f"{r['schedule']:<6} {r['setting']:<28} {r.get('prefetch', ''):<8} "
                f"{r['ranks']:>5} {r['measured_ms']:>8.3f}ms")
        for stem, _ in preds:
            line += f" {r[f'predicted_{stem}ms']:>14.3f}ms {r[f'error_{stem}pct']:>+6.1f}%"
        print(line)
    parts = []
    for stem, what in preds:
        med, worst = validate.summary(rows, f"error_{stem}pct")
        parts.append(f"{what}: median {med:.1f}%, worst {worst:.1f}%")
    print("|error| " + "; ".join(parts))
    chk = res["check"]
    print(f"correctness after {res.get('check_steps', 1)} steps, max |param - DDP's|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in chk.items()))
    _err(f"wrote {out}, {kept.name}" + (f" and {comm.name}" if comm_rows else ""))
