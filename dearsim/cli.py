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
    int | None, typer.Option("--batch-size", help="Per-worker batch size (overrides the trace's).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
PluginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        help="Load schedules from a module (dotted name) or a .py file first (repeatable).",
    ),
]


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
    loaded = load_trace(trace) if record else trace
    result = simulate(
        loaded,
        network,
        workers,
        scheduler,
        options,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
        record_ops=record,
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
    if json_:
        print(json.dumps(result.to_dict()))
    else:
        _console().print(_simulate_table(result))


def _gantt(
    trace: Path,
    network: str,
    workers: int,
    names: list[str],
    options: dict[str, dict[str, Any]],
    iterations: int,
    warmup: int,
    out: Path,
) -> None:
    """Simulate ``names`` with their ops recorded and draw one steady-state iteration each."""
    from .gantt import plot_timeline
    from .trace import load_trace

    tr = load_trace(trace)
    results = [
        simulate(tr, network, workers, n, options.get(n) or {}, iterations=iterations,
                 warmup=warmup, record_ops=True)
        for n in names
    ]
    paths = _writing(out, lambda: plot_timeline(results, out))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


def _writing(path: Path, write: Any) -> Any:
    """Run ``write()``; a file-system failure becomes one line naming ``path``."""
    try:
        return write()
    except OSError as exc:
        raise DearsimError(f"{path}: {exc.strerror or exc}") from None


def _console() -> Console:
    """A console for tables; wide enough for the comparison table when not on a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=132)


def _ms(x: float) -> str:
    return f"{x * 1e3:.3f}"


def _simulate_table(r: Result) -> Table:
    t = Table(title=f"{r.scheduler} on {r.trace}, {r.network}, {r.workers} workers")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("iteration time (ms)", _ms(r.iteration_time_s))
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
    comp = compare(
        trace,
        network,
        workers,
        names,
        options,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
    )
    if gantt is not None:
        _gantt(trace, network, workers, names, options, iterations, warmup, gantt)
    if json_:
        print(json.dumps(comp.rows()))
    else:
        first = comp.results[0]
        t = Table(
            title=f"{first.trace} on {load_network(network).name}, {workers} workers"
            f" (best first; speedup = T_{comp.baseline} / T)"
        )
        for col, just in (
            ("scheduler", "left"),
            ("iteration ms", "right"),
            ("samples/s", "right"),
            ("compute ms", "right"),
            ("comm busy ms", "right"),
            ("exposed ms", "right"),
            (f"vs {comp.baseline}", "right"),
            ("buckets", "right"),
        ):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in comp.ranked():
            sp = comp.speedup(r)
            tp = r.throughput
            t.add_row(
                r.scheduler,
                _ms(r.iteration_time_s),
                "-" if tp is None else f"{tp:,.1f}",
                _ms(r.compute_s),
                _ms(r.comm_s),
                _ms(r.exposed_comm_s),
                "-" if sp is None else f"{sp:.3f}x",
                str(len(r.buckets)),
            )
        _console().print(t)
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
    """Run a what-if sweep from a YAML config; write results, a summary and a plot."""
    import os

    from .config import load_config
    from .sweep import run_sweep

    loaded = load_config(config, plugins=plugin or [])
    folder = out if out is not None else Path("out") / loaded.name
    n_jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
    if jobs < 0:
        raise DearsimError(f"--jobs must be a positive integer, got {jobs}")
    console = _console()
    with _progress(console, f"sweep {loaded.name}") as report:
        outcome = run_sweep(
            loaded, folder, jobs=n_jobs, resume=resume, executor=executor, address=address,
            progress=report,
        )
    rate = outcome.ran / outcome.seconds if outcome.seconds > 0 else 0.0
    print(
        f"sweep {loaded.name}: {outcome.ran} runs in {outcome.seconds:.1f} s "
        f"({rate:.1f} runs/s), {outcome.skipped} already done, {outcome.failed} failed; "
        f"results in {outcome.out}",
        file=sys.stderr,
    )
    plot = loaded.config.plot
    _print_summary(console, outcome.rows, plot.baseline)
    ok = [r for r in outcome.rows if r["status"] == "ok"]
    if ok and any(r["schedule"] == plot.baseline for r in ok):
        import pandas as pd

        from .plots import speedup_curves

        try:
            paths = speedup_curves(
                pd.DataFrame(outcome.rows), outcome.out / "speedup", x=plot.x,
                baseline=plot.baseline, facet=plot.facet, row=plot.row,
            )
            print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
        except DearsimError as exc:
            print(f"dearsim: no plot: {exc}", file=sys.stderr)


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


def _print_summary(console: Console, rows: list[dict[str, Any]], baseline: str,
                   limit: int = 40) -> None:
    """One line per point (everything but the schedule), one column per schedule: the
    speedup over ``baseline`` where it ran, else the iteration time."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        console.print("no successful runs")
    else:
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
            ok = ok.assign(
                value=table.speedup(ok["group_hash"].map(base), ok["iteration_time_s"])
            )
            what = f"speedup over {baseline}"
        else:
            ok = ok.assign(value=ok["iteration_time_s"] * 1e3)
            what = "iteration time (ms)"
        pivot = ok.pivot_table(index=keys, columns="schedule", values="value", aggfunc="first",
                               sort=False)
        t = Table(title=f"{what}; rows: {', '.join(keys)}")
        for k in keys:
            t.add_column(k)
        for sched in pivot.columns:
            t.add_column(str(sched), justify="right")
        for idx, values in list(pivot.iterrows())[:limit]:
            idx = idx if isinstance(idx, tuple) else (idx,)
            cells = [("-" if pd.isna(v) else (f"{v:.3f}x" if has_base else f"{v:.2f}"))
                     for v in values]
            t.add_row(*[_fmt(i) for i in idx], *cells)
        console.print(t)
        if len(pivot) > limit:
            console.print(f"... {len(pivot) - limit} more rows in results.csv")
    failed = frame[frame["status"] != "ok"]
    for _, r in failed.head(5).iterrows():
        print(f"failed: {r['trace']} {r['network']} p={r['workers']} {r['schedule']}: "
              f"{r['error']}", file=sys.stderr)
    if len(failed) > 5:
        print(f"... and {len(failed) - 5} more failed runs (see results.csv)", file=sys.stderr)


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
    _gantt(trace, network, workers, names, options, iterations, warmup, out)


@app.command("schedulers")
def schedulers_cmd(plugin: PluginOpt = None) -> None:
    """List the schedules and their options (the --set keys) with defaults."""
    load_plugins(plugin or [])
    t = Table()
    t.add_column("scheduler")
    t.add_column("what")
    t.add_column("options (--set KEY=VALUE)")
    for name in schedules.names():
        cls = schedules.get(name)
        opts = ", ".join(
            f"{k}={'null' if f.default is None else f.default}"
            for k, f in cls.Options.model_fields.items()
        )
        t.add_row(name, cls.summary, opts)
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
PARAM_FLAGS = {"options": "set_"}


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


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on standard error, never a traceback."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command.main(args=args, prog_name="dearsim", standalone_mode=False)
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
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
