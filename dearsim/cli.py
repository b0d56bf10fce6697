"""The ``dearsim`` command line. ``docs/model.md`` fixes the spellings of ``simulate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.exceptions import TyperException

from . import __version__, schedules, table
from ._yaml import parse_scalar
from .api import DEFAULT_ITERATIONS, DEFAULT_WARMUP, compare, simulate
from .cli_trace import trace_app
from .errors import DearsimError, ParamError
from .network import load_network, preset_names
from .plugins import load_plugins
from .result import Result

app = typer.Typer(
    name="dearsim",
    help="Simulate communication schedules for data-parallel deep-learning training.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

TraceOpt = Annotated[Path, typer.Option("--trace", help="Trace file (dearsim CSVY or plain CSV).")]
NetworkOpt = Annotated[
    str, typer.Option("--network", help="Network preset (10GbE, 100GbIB, ...) or YAML file.")
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Number of workers p.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Schedule option KEY=VALUE (repeatable; VALUE may be null)."),
]
IterOpt = Annotated[int, typer.Option("--iterations", help="Iterations simulated.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Warm-up iterations not measured.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="Per-worker batch size used only to report throughput (samples/s); it does not "
        "change compute times, which the trace measured at its own batch size.",
    ),
]


def _batch_note(batch_size: int | None) -> None:
    if batch_size is not None:
        print(f"note: --batch-size {batch_size} only rescales throughput; compute times are "
              "the trace's, measured at its own batch size", file=sys.stderr)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
PluginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        help="Load schedules from a module (dotted name) or a .py file first (repeatable).",
    ),
]


SlowdownOpt = Annotated[
    str | None,
    typer.Option("--slowdown", help="Compute-time multiplier per worker, comma-separated "
                 "(one per worker; 1 = as in the trace)."),
]
StragglersOpt = Annotated[
    int, typer.Option("--stragglers", help="The last K ranks are stragglers.")
]
StragglerSlowdownOpt = Annotated[
    float,
    typer.Option("--straggler-slowdown", help="How many times slower the stragglers compute."),
]
JitterOpt = Annotated[
    float,
    typer.Option("--jitter-cv", help="Log-normal per-op compute jitter with this coefficient "
                 "of variation (0: none)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the jitter.")]
StallOpt = Annotated[
    list[str] | None,
    typer.Option("--stall", help="WORKER:EVERY:MS[:OFFSET]: the worker stops for MS "
                 "milliseconds every EVERY iterations (repeatable)."),
]
InterferenceOpt = Annotated[
    float,
    typer.Option("--interference", help="Compute runs at rate 1/(1+X) while a collective is in "
                 "flight (0: off; SimPy engine only)."),
]
CommInterferenceOpt = Annotated[
    float,
    typer.Option("--comm-interference", help="The collective in flight runs at rate 1/(1+Y) "
                 "while any worker computes (0: off; SimPy engine only)."),
]
AlgorithmOpt = Annotated[
    str | None,
    typer.Option("--algorithm", help="For a hierarchical network or topology: ring (one flat "
                 "ring) or hierarchical."),
]
EngineOpt = Annotated[
    str,
    typer.Option("--engine", help="simpy (the reference engine) or fast (the SimPy-free "
                 "evaluator; same numbers within 1e-9, faster on large clusters)."),
]


def cluster_from_options(
    workers: int, slowdown: str | None, stragglers: int, straggler_slowdown: float,
    jitter_cv: float, seed: int, stall: list[str] | None, interference: float = 0.0,
    comm_interference: float = 0.0,
) -> Any:
    """The worker count, or a :class:`~dearsim.cluster.Cluster` when an option asks for
    one; every mistake is one line naming the option."""
    from .cluster import Cluster, Stall

    if (slowdown is None and stragglers == 0 and straggler_slowdown == 1.0
            and jitter_cv == 0.0 and not stall and interference == 0.0
            and comm_interference == 0.0):
        return workers
    slow = None
    if slowdown is not None:
        try:
            slow = [float(x) for x in slowdown.split(",")]
        except ValueError:
            raise DearsimError(f"--slowdown expects numbers separated by commas, got "
                               f"{slowdown!r}") from None
        if len(slow) != workers:
            raise DearsimError(f"--slowdown has {len(slow)} values for --workers {workers}")
    stalls = []
    for item in stall or []:
        parts = item.split(":")
        try:
            if len(parts) not in (3, 4):
                raise ValueError
            w, every, ms = int(parts[0]), int(parts[1]), float(parts[2])
            offset = int(parts[3]) if len(parts) == 4 else 0
        except ValueError:
            raise DearsimError(f"--stall expects WORKER:EVERY:MS[:OFFSET], got {item!r}") from None
        try:
            stalls.append(Stall(w, every, ms / 1e3, offset))
        except DearsimError as exc:
            raise DearsimError(f"--stall {item}: {exc}") from None
    # a bad value is a ParamError naming Cluster.build's parameter: main() names its flag
    return Cluster.build(workers, slowdown=slow, stragglers=stragglers,
                         straggler_slowdown=straggler_slowdown, jitter_cv=jitter_cv,
                         seed=seed, stalls=stalls, interference=interference,
                         comm_interference=comm_interference)


def network_with_algorithm(network: str, algorithm: str | None) -> Any:
    """``--network`` as a model, with ``--algorithm`` applied (hierarchical networks only)."""
    if algorithm is None:
        return network
    from .network import Hierarchical

    model = load_network(network)
    if not isinstance(model, Hierarchical):
        raise DearsimError(f"--algorithm applies to hierarchical networks; {network} is "
                           f"{model.kind}")
    try:
        return model.with_algorithm(algorithm)  # the network checks the algorithm's name
    except DearsimError as exc:
        raise DearsimError(f"--algorithm: {exc}") from None


def parse_sets(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DearsimError(f"--set expects KEY=VALUE, got {item!r}")
        out.append((key.strip(), parse_scalar(value)))
    return out


@app.command("simulate")
def simulate_cmd(
    trace: TraceOpt,
    network: NetworkOpt,
    workers: WorkersOpt,
    scheduler: Annotated[
        str,
        typer.Option("--scheduler", help="A schedule name (dearsim schedulers lists them)."),
    ],
    set_: SetOpt = None,
    iterations: IterOpt = DEFAULT_ITERATIONS,
    warmup: WarmupOpt = DEFAULT_WARMUP,
    batch_size: BatchOpt = None,
    json_: JsonOpt = False,
    plugin: PluginOpt = None,
    slowdown: SlowdownOpt = None,
    stragglers: StragglersOpt = 0,
    straggler_slowdown: StragglerSlowdownOpt = 1.0,
    jitter_cv: JitterOpt = 0.0,
    seed: SeedOpt = 0,
    stall: StallOpt = None,
    interference: InterferenceOpt = 0.0,
    comm_interference: CommInterferenceOpt = 0.0,
    algorithm: AlgorithmOpt = None,
    engine: EngineOpt = "simpy",
    timeline: Annotated[
        Path | None,
        typer.Option(
            "--timeline",
            help="Also write the run as a Chrome/Kineto trace (.json or .json.gz) for Perfetto,"
            " chrome://tracing or HTA.",
        ),
    ] = None,
    rank_traces: Annotated[
        Path | None,
        typer.Option(
            "--rank-traces",
            help="Also write one Kineto trace per rank into this folder (what HTA reads).",
        ),
    ] = None,
) -> None:
    """Simulate one schedule and report its steady-state iteration."""
    from .trace import load_trace

    load_plugins(plugin or [])
    options = dict(parse_sets(set_))
    record = timeline is not None or rank_traces is not None
    cluster = cluster_from_options(workers, slowdown, stragglers, straggler_slowdown,
                                   jitter_cv, seed, stall, interference,
                                   comm_interference)
    net = network_with_algorithm(network, algorithm)
    loaded = load_trace(trace) if record else trace
    result = simulate(
        loaded,
        net,
        cluster,
        scheduler,
        options,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
        record_ops=record,
        engine=engine,
    )
    if record:  # files first: a path that cannot be written fails before any output
        from . import timeline as tl

        assert not isinstance(loaded, Path)
        if timeline is not None:
            out = _writing(timeline, lambda: tl.write_chrome_trace(result, loaded, timeline))
            print(f"wrote {out}", file=sys.stderr)
        if rank_traces is not None:
            paths = _writing(
                rank_traces, lambda: tl.write_rank_traces(result, loaded, rank_traces)
            )
            print(f"wrote {len(paths)} rank traces in {rank_traces}", file=sys.stderr)
    _batch_note(batch_size)
    if json_:
        print(json.dumps(result.to_dict()))
    else:
        _console().print(_simulate_table(result))


def _gantt(results: list[Result], out: Path) -> None:
    """Draw one steady-state iteration of each result (simulated with its ops recorded)."""
    from .gantt import plot_timeline

    paths = _writing(out, lambda: plot_timeline(results, out))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


def _writing(path: Path, write: Any) -> Any:
    """Run ``write()``; a file-system failure becomes one line naming ``path``."""
    try:
        return write()
    except OSError as exc:
        raise DearsimError(f"{path}: {exc.strerror or exc}") from None


def _console() -> Console:
    """A console for tables: the terminal's width, or 80 columns when not on a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=80)


def _ms(x: float) -> str:
    return f"{x * 1e3:.3f}"


def _simulate_table(r: Result) -> Table:
    t = Table(title=f"{r.scheduler} on {r.trace}, {r.network}, {r.workers} workers")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("iteration time (ms)", _ms(r.iteration_time_s))
    if r.iteration_p99_s - r.iteration_p50_s > 1e-12 * r.iteration_time_s or (
            r.wait_max_s - r.wait_min_s > 1e-12 * r.iteration_time_s):
        t.add_row("iteration time p50 / p99 (ms)",
                  f"{_ms(r.iteration_p50_s)} / {_ms(r.iteration_p99_s)}")
        t.add_row("waiting per worker min / mean / max (ms)",
                  f"{_ms(r.wait_min_s)} / {_ms(r.wait_mean_s)} / {_ms(r.wait_max_s)}")
    tp = r.throughput
    t.add_row("throughput (samples/s)", "-" if tp is None else f"{tp:,.1f}")
    t.add_row("compute (ms)", _ms(r.compute_s))
    t.add_row("communication, link busy (ms)", _ms(r.comm_s))
    t.add_row("exposed communication (ms)", _ms(r.exposed_comm_s))
    t.add_row("collectives per iteration", str(r.collectives))
    t.add_row("buckets/groups", f"{len(r.buckets)}: " + _ranges(r.buckets))
    return t


def _ranges(buckets: list[tuple[int, int]], limit: int = 8) -> str:
    parts = [f"[{a},{b}]" for a, b in buckets[:limit]]
    if len(buckets) > limit:
        parts.append(f"... ({len(buckets) - limit} more)")
    return " ".join(parts)


@app.command("compare")
def compare_cmd(
    trace: TraceOpt,
    network: NetworkOpt,
    workers: WorkersOpt,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="SCHEDULER.KEY=VALUE for one schedule, or KEY=VALUE for every schedule "
            "that has KEY (repeatable).",
        ),
    ] = None,
    iterations: IterOpt = DEFAULT_ITERATIONS,
    warmup: WarmupOpt = DEFAULT_WARMUP,
    batch_size: BatchOpt = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also write a bar chart (PNG, SVG or PDF).")
    ] = None,
    json_: JsonOpt = False,
    plugin: PluginOpt = None,
    slowdown: SlowdownOpt = None,
    stragglers: StragglersOpt = 0,
    straggler_slowdown: StragglerSlowdownOpt = 1.0,
    jitter_cv: JitterOpt = 0.0,
    seed: SeedOpt = 0,
    stall: StallOpt = None,
    interference: InterferenceOpt = 0.0,
    comm_interference: CommInterferenceOpt = 0.0,
    algorithm: AlgorithmOpt = None,
    engine: EngineOpt = "simpy",
    gantt: Annotated[
        Path | None,
        typer.Option(
            "--gantt", help="Also draw one iteration of every schedule on one time axis (PNG+SVG)."
        ),
    ] = None,
) -> None:
    """Run every schedule with its defaults and rank them, best first."""
    load_plugins(plugin or [])
    names = schedules.names()
    options: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in parse_sets(set_):
        sched, dot, opt = key.rpartition(".")
        if dot:
            if sched not in options:
                schedules.get(sched)
            options[sched][opt] = value
            continue
        takers = [n for n in names if opt in schedules.get(n).Options.model_fields]
        if not takers:
            raise DearsimError(f"unknown --set key {opt!r}: no scheduler has that option")
        for n in takers:
            options[n][opt] = value
    cluster = cluster_from_options(workers, slowdown, stragglers, straggler_slowdown,
                                   jitter_cv, seed, stall, interference,
                                   comm_interference)
    net = network_with_algorithm(network, algorithm)
    comp = compare(
        trace,
        net,
        cluster,
        names,
        options,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
        record_ops=gantt is not None,
        engine=engine,
    )
    if gantt is not None:
        _gantt(comp.results, gantt)
    _batch_note(batch_size)
    if json_:
        print(json.dumps(comp.rows()))
    else:
        first = comp.results[0]
        # Compute is the trace's, the same under every schedule: said once, in the title.
        same_compute = len({_ms(r.compute_s) for r in comp.results}) == 1
        headers = ["iteration ms", "samples/s", "compute ms", "comm busy ms", "exposed ms",
                   f"vs {comp.baseline}", "buckets"]
        rows = []
        for r in comp.ranked():
            sp = comp.speedup(r)
            tp = r.throughput
            rows.append(([r.scheduler], [
                _ms(r.iteration_time_s),
                "-" if tp is None else f"{tp:,.1f}",
                _ms(r.compute_s),
                _ms(r.comm_s),
                _ms(r.exposed_comm_s),
                "-" if sp is None else f"{sp:.3f}x",
                str(len(r.buckets)),
            ]))
        if same_compute:
            del headers[2]
            for _, cells in rows:
                del cells[2]
        print_fitted(
            _console(),
            f"{first.trace} on {load_network(net).name}, {workers} workers"
            + (f", compute {_ms(first.compute_s)} ms" if same_compute else "")
            + f" (best first; speedup = T_{comp.baseline} / T)",
            ["scheduler"], headers, rows,
        )
    if plot is not None:
        from .plots import breakdown

        try:
            out = breakdown(
                comp.results,
                plot,
                title=f"{first.trace if not json_ else comp.results[0].trace}, "
                f"{comp.results[0].network}, {workers} workers",
            )
        except ValueError as exc:  # unknown image format
            raise DearsimError(f"--plot {plot}: {exc}") from None
        except OSError as exc:
            raise DearsimError(f"--plot {plot}: {exc.strerror or exc}") from None
        print(f"wrote {out}", file=sys.stderr)


@app.command("sweep")
def sweep_cmd(
    config: Annotated[Path, typer.Argument(help="Sweep config (YAML).")],
    jobs: Annotated[
        int, typer.Option("--jobs", help="Parallel runs (default: the CPU count).")
    ] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Results folder (default: out/<config name>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a sweep: skip runs already in --out.")
    ] = False,
    executor: Annotated[
        str, typer.Option("--executor", help="local (process pool) or dask.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Dask scheduler, tcp://HOST:PORT.")
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Run a what-if sweep from a YAML config; write results, a summary and a plot.

    Exits 0 when every run succeeded, 1 when some failed (with a summary of the failures),
    2 for a mistake in the command or the config, 130/143 when interrupted by SIGINT/SIGTERM
    (every finished row is kept: rerun with --resume)."""
    import os

    from .config import load_config
    from .sweep import run_sweep

    if jobs < 0:
        raise DearsimError(f"--jobs must be a positive integer, got {jobs}")
    loaded = load_config(config, plugins=plugin or [])
    folder = out if out is not None else Path("out") / loaded.name
    n_jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    console = _console()
    with _progress(console, f"sweep {loaded.name}") as report:
        outcome = run_sweep(
            loaded, folder, jobs=n_jobs, resume=resume, executor=executor, address=address,
            progress=report,
        )
    if outcome.interrupted is not None:
        print(f"interrupted: {outcome.kept} of {outcome.total} runs kept; rerun with --resume",
              file=sys.stderr)
        raise typer.Exit(128 + int(outcome.interrupted))
    rate = outcome.ran / outcome.seconds if outcome.seconds > 0 else 0.0
    print(
        f"sweep {loaded.name}: {outcome.ran} runs in {outcome.seconds:.1f} s "
        f"({rate:.1f} runs/s), {outcome.skipped} already done, {outcome.failed} failed; "
        f"results in {outcome.out}",
        file=sys.stderr,
    )
    plot = loaded.config.plot
    frame = _summary_frame(outcome.out, plot.x, plot.y)
    _print_summary(console, frame, plot.baseline)
    ok = frame[frame["status"] == "ok"]
    from .plots import MAX_POINTS

    if len(ok) > MAX_POINTS:
        print(f"dearsim: no plot: {len(ok):,} runs are too many to draw legibly; plot a "
              "selection with dearsim plot", file=sys.stderr)
    elif len(ok) and (plot.y != "speedup" or (ok["schedule"] == plot.baseline).any()):
        from .plots import metric_curves

        try:
            paths = metric_curves(
                frame, outcome.out / plot.y.removesuffix("_s"), plot.y, x=plot.x,
                baseline=plot.baseline, facet=plot.facet, row=plot.row,
            )
            print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
        except DearsimError as exc:
            print(f"dearsim: no plot: {exc}", file=sys.stderr)
    if outcome.failed:
        _print_failures(outcome)
        raise typer.Exit(1)


def _summary_frame(out: Path, x: str, y: str = "speedup") -> Any:
    """The columns the summary and the plot need, read from results.parquet (strings shared,
    so a million rows stay small)."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(out / "results.parquet").names)
    wanted = ["status", "schedule", "group_hash", "iteration_time_s", *table.POINT_COLUMNS, x,
              "throughput_samples_per_s" if y == "throughput" else y]
    cols = [c for c in dict.fromkeys(wanted) if c in names]
    return pq.read_table(out / "results.parquet", columns=cols).to_pandas()


def _print_failures(outcome: Any, kinds: int = 5) -> None:
    """One line for the count, then the first error of each kind with how many runs had it."""
    print(f"dearsim: {outcome.failed} of {outcome.total} runs failed "
          f"({len(outcome.failures)} kind{'s' if len(outcome.failures) != 1 else ''} of "
          "error; every row is in results.csv):", file=sys.stderr)
    for first, count in outcome.failures[:kinds]:
        print(f"  {count} x {first}", file=sys.stderr)
    if len(outcome.failures) > kinds:
        print(f"  ... and {len(outcome.failures) - kinds} more kinds", file=sys.stderr)


class _progress:
    """A rich progress bar on a terminal; plain lines (at most every 2 s) otherwise."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.bar: Any = None
        self.task: Any = None
        self.t0 = 0.0
        self.last = 0.0
        self.start_done = 0

    def __enter__(self) -> Any:
        import time

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.t0 = self.last = time.perf_counter()
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=self.console, transient=True,
            )
            self.bar.__enter__()
        return self.report

    def report(self, done: int, total: int) -> None:
        import time

        now = time.perf_counter()
        if self.task is None:  # the first call: what is already done
            self.task = True
            self.start_done = done
            if self.bar is not None:
                self.task = self.bar.add_task(self.label, total=total, completed=done, rate="")
            else:
                print(f"{self.label}: {total - done} runs to do ({done} already done)",
                      file=sys.stderr, flush=True)
            return
        if self.bar is None and now - self.last < 2.0 and done < total:
            return
        elapsed = now - self.t0
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=done, rate=f"{rate:.1f} runs/s")
        else:
            left = f", {(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
            print(f"{self.label}: {done}/{total} runs ({rate:.1f} runs/s{left})",
                  file=sys.stderr, flush=True)
        self.last = now

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _print_summary(console: Console, frame: Any, baseline: str, limit: int = 40) -> None:
    """One line per point (everything but the schedule), one column per schedule: the
    speedup over ``baseline`` where it ran, else the iteration time. Fits the console's
    width: schedule columns that do not fit go to a second table."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if frame.empty or "status" not in frame.columns:
        console.print("no runs")
        return
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        console.print("no successful runs")
        return
    keys: list[str] = []
    for c in table.POINT_COLUMNS:
        if c not in ok.columns or ok[c].nunique(dropna=False) <= 1:
            continue
        if keys and (ok.groupby(keys, dropna=False)[c].nunique(dropna=False) <= 1).all():
            continue  # determined by the columns already shown (a network's parameters)
        keys.append(c)
    keys = keys or ["trace"]
    has_base = baseline in set(ok["schedule"])
    if has_base:
        base = ok[ok["schedule"] == baseline].set_index("group_hash")["iteration_time_s"]
        base = base[~base.index.duplicated()]
        ok = ok.assign(
            value=table.speedup(ok["group_hash"].map(base), ok["iteration_time_s"])
        )
        what = f"speedup over {baseline}"
    else:
        ok = ok.assign(value=ok["iteration_time_s"] * 1e3)
        what = "iteration time (ms)"
    pivot = ok.pivot_table(index=keys, columns="schedule", values="value", aggfunc="first",
                           sort=False)
    rows = []
    for idx, values in list(pivot.iterrows())[:limit]:
        idx = idx if isinstance(idx, tuple) else (idx,)
        cells = [("-" if pd.isna(v) else (f"{v:.3f}x" if has_base else f"{v:.2f}"))
                 for v in values]
        rows.append(([_fmt(i) for i in idx], cells))
    print_fitted(console, f"{what}; rows: {', '.join(keys)}", [_short_col(k) for k in keys],
                 [str(c) for c in pivot.columns], rows)
    if len(pivot) > limit:
        console.print(f"... {len(pivot) - limit} more rows in results.csv")


def _wrap(header: str, width: int) -> str:
    """A header in lines of at most ``width`` characters, broken at spaces."""
    lines: list[str] = []
    for word in header.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _short_col(name: str) -> str:
    return name.removeprefix("network.").removeprefix("cluster.")


def print_fitted(console: Console, title: str, keys: list[str], values: list[str],
                 rows: list[tuple[list[str], list[str]]]) -> None:
    """A table of key columns then value columns, in as many tables as it takes to fit the
    console's width without cutting a number: each table repeats the key columns and takes
    the value columns that fit. Headers wider than their values wrap at spaces."""
    from rich import box

    width = console.width

    def need(cells: list[str], header: str) -> int:
        return max([len(c) for c in cells] + [max(len(w) for w in header.split() or [""])])

    key_w = [need([r[0][i] for r in rows], k) for i, k in enumerate(keys)]
    val_w = [need([r[1][j] for r in rows], v) for j, v in enumerate(values)]
    groups: list[list[int]] = []
    used = sum(w + 3 for w in key_w) + 1
    current: list[int] = []
    for j, w in enumerate(val_w):
        if current and used + w + 3 > width:
            groups.append(current)
            current, used = [], sum(w2 + 3 for w2 in key_w) + 1
        current.append(j)
        used += w + 3
    groups.append(current)
    for g, cols in enumerate(groups):
        t = Table(title=title if g == 0 else None, box=box.SQUARE, title_justify="left")
        for k, w in zip(keys, key_w):
            t.add_column(_wrap(k, w), min_width=w, overflow="fold")
        for j in cols:
            t.add_column(_wrap(values[j], val_w[j]), justify="right", min_width=val_w[j],
                         overflow="fold")
        for key_cells, cells in rows:
            t.add_row(*key_cells, *[cells[j] for j in cols])
        console.print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


plot_app = typer.Typer(help="Plots of sweep results (PNG and SVG).", no_args_is_help=True)
app.add_typer(plot_app, name="plot")
app.add_typer(trace_app, name="trace")

ResultsArg = Annotated[
    Path, typer.Argument(help="A sweep's results folder or its results.parquet/.csv/.jsonl.")
]
XOpt = Annotated[str, typer.Option("--x", help="Column on the x axis.")]
FacetOpt = Annotated[
    str | None, typer.Option("--facet", help="Column that splits panels (columns).")
]
RowOpt = Annotated[str | None, typer.Option("--row", help="Column that splits panels (rows).")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Output path without suffix (writes .png and .svg).")
]


def _results_out(results: Path, out: Path | None, name: str) -> Path:
    if out is not None:
        return out
    return (results if results.is_dir() else results.parent) / name


@plot_app.command("speedup")
def plot_speedup_cmd(
    results: ResultsArg,
    x: XOpt = "workers",
    baseline: Annotated[
        str, typer.Option("--baseline", help="Schedule label of T_base.")
    ] = table.BASELINE,
    facet: FacetOpt = "network",
    row: RowOpt = "trace",
    out: OutOpt = None,
) -> None:
    """Speedup over a baseline schedule against a swept column."""
    from .plots import load_results, speedup_curves

    paths = speedup_curves(load_results(results), _results_out(results, out, "speedup"),
                           x=x, baseline=baseline, facet=facet, row=row)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


@plot_app.command("throughput")
def plot_throughput_cmd(
    results: ResultsArg, x: XOpt = "workers", facet: FacetOpt = "network", row: RowOpt = "trace",
    out: OutOpt = None,
) -> None:
    """Throughput (samples/s) against a swept column."""
    from .plots import load_results, throughput_curves

    paths = throughput_curves(load_results(results), _results_out(results, out, "throughput"),
                              x=x, facet=facet, row=row)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


@plot_app.command("time")
def plot_time_cmd(
    results: ResultsArg,
    y: Annotated[
        str,
        typer.Option("--y", help="iteration_time_s, iteration_p50_s, iteration_p99_s, "
                     "wait_mean_s or wait_max_s (drawn in ms)."),
    ] = "iteration_time_s",
    x: XOpt = "workers", facet: FacetOpt = "network", row: RowOpt = "trace",
    out: OutOpt = None,
) -> None:
    """Iteration time (mean, p50, p99) or workers' waiting time against a swept column."""
    from .plots import TIME_METRICS, load_results, metric_curves

    if y not in TIME_METRICS:
        raise DearsimError(f"--y {y}: choose one of {', '.join(TIME_METRICS)}")
    paths = metric_curves(load_results(results),
                          _results_out(results, out, y.removesuffix("_s")), y, x=x,
                          facet=facet, row=row)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


@plot_app.command("breakdown")
def plot_breakdown_cmd(
    results: ResultsArg,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="COLUMN=VALUE to select one point (repeatable)."),
    ] = None,
    out: OutOpt = None,
) -> None:
    """Iteration-time breakdown bars (compute / overlapped / exposed) for one point."""
    from .plots import breakdown_bars, load_results

    frame = load_results(results)
    for key, value in parse_sets(where):
        if key not in frame.columns:
            raise DearsimError(f"--where: no column {key!r} in the results")
        col = frame[key]
        frame = frame[col.astype(str) == str(value)]
    paths = breakdown_bars(frame, _results_out(results, out, "breakdown"))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


def _register_tools() -> None:
    """Commands that live in their own modules (torch is imported only when they run)."""
    from .cli_collect import calibrate_cmd, collect_app, validate_cmd
    from .cli_search import search_cmd

    app.command("search")(search_cmd)
    app.add_typer(collect_app, name="collect")
    app.command("calibrate")(calibrate_cmd)
    app.command("validate")(validate_cmd)


_register_tools()


@plot_app.command("timeline")
def plot_timeline_cmd(
    trace: TraceOpt,
    network: NetworkOpt,
    workers: WorkersOpt,
    scheduler: Annotated[
        list[str] | None,
        typer.Option(
            "--scheduler",
            help="A schedule to draw (repeatable; default wfbp, bytescheduler, ddp, dear).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="SCHEDULER.KEY=VALUE or KEY=VALUE (repeatable)."),
    ] = None,
    iterations: IterOpt = DEFAULT_ITERATIONS,
    warmup: WarmupOpt = DEFAULT_WARMUP,
    out: Annotated[
        Path, typer.Option("--out", help="Picture path (.png or .svg; both are written).")
    ] = Path("timeline.png"),
    plugin: PluginOpt = None,
) -> None:
    """One steady-state iteration of several schedules stacked on one time axis (Gantt)."""
    load_plugins(plugin or [])
    names = list(scheduler or ["wfbp", "bytescheduler", "ddp", "dear"])
    for n in names:
        schedules.get(n)
    options: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in parse_sets(set_):
        sched, dot, opt = key.rpartition(".")
        targets = [sched] if dot else [
            n for n in names if opt in schedules.get(n).Options.model_fields
        ]
        if dot and sched not in options:
            raise DearsimError(f"--set {key}: {sched!r} is not one of the drawn schedules")
        if not targets:
            raise DearsimError(f"unknown --set key {opt!r}: no drawn scheduler has that option")
        for n in targets:
            options[n][opt] = value
    comp = compare(trace, network, workers, names, options, iterations=iterations,
                   warmup=warmup, record_ops=True)
    _gantt(comp.results, out)


@app.command("schedulers")
def schedulers_cmd(plugin: PluginOpt = None) -> None:
    """List the schedules and their options (the --set keys) with defaults."""
    load_plugins(plugin or [])
    t = Table()
    t.add_column("scheduler", no_wrap=True)
    t.add_column("what; its options (--set KEY=VALUE) and their defaults")
    for name in schedules.names():
        cls = schedules.get(name)
        opts = ", ".join(
            f"{k}={'null' if f.default is None else f.default}"
            for k, f in cls.Options.model_fields.items()
        )
        t.add_row(name, cls.summary + ("\n  " + opts if opts else ""))
    _console().print(t)


@app.command("networks")
def networks_cmd() -> None:
    """List the network presets that ship with dearsim."""
    t = Table()
    t.add_column("preset")
    t.add_column("model")
    for name in preset_names():
        t.add_row(name, load_network(name).describe())
    _console().print(t)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(f"dearsim {__version__}")
        raise typer.Exit()


#: Library parameters whose command-line flag is not named after them.
PARAM_FLAGS = {"options": "set_", "stalls": "stall"}


def flag_for(command: Any, argv: list[str], param: str) -> str | None:
    """The flag of the command ``argv`` runs that sets the library parameter ``param``
    (``batch_size`` -> ``--batch-size``), or None if it has none."""
    cmd, args = command, list(argv)
    while getattr(cmd, "commands", None):  # a group: find its subcommand in argv
        sub = next((a for a in args if not a.startswith("-") and a in cmd.commands), None)
        if sub is None:
            return None
        args = args[args.index(sub) + 1 :]
        cmd = cmd.commands[sub]
    wanted = {param, param + "_", PARAM_FLAGS.get(param)}
    for p in getattr(cmd, "params", []):
        if getattr(p, "param_type_name", "") == "option" and p.name in wanted:
            return str(max(p.opts, key=len))
    return None


class Interrupted(BaseException):
    """SIGINT or SIGTERM while a command runs (a sweep handles them itself)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on standard error, never a traceback.

    Exit status: 0 success, 1 some sweep runs failed, 2 a user mistake, 130 interrupted by
    SIGINT (Ctrl-C), 143 by SIGTERM."""
    import signal
    import threading

    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, _interrupt)
    try:
        rv = command.main(args=args, prog_name="dearsim", standalone_mode=False)
    except Interrupted as exc:
        print("dearsim: interrupted", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("dearsim: interrupted", file=sys.stderr)
        return 130
    except ParamError as exc:
        flag = flag_for(command, args, exc.param)
        print(f"dearsim: error: {exc.for_flag(flag) if flag else exc}", file=sys.stderr)
        return 2
    except DearsimError as exc:
        print(f"dearsim: error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("dearsim: aborted", file=sys.stderr)
        return 130
    except TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            return 0
        msg = exc.format_message().replace("\n", " ")
        path = ctx.command_path if ctx is not None else "dearsim"
        print(f"{path}: error: {msg}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    # typer turns Ctrl-C and typer.Exit into a returned status when not standalone.
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
