"""The ``dearsim`` command line. SPEC section 5 fixes the spellings of ``simulate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException
from rich.console import Console
from rich.table import Table

from . import __version__, schedules
from ._yaml import parse_scalar
from .api import DEFAULT_ITERATIONS, DEFAULT_WARMUP, compare, simulate
from .errors import DearsimError
from .network import load_network, preset_names
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


def parse_sets(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DearsimError(f"--set expects KEY=VALUE, got {item!r}")
        out.append((key.strip(), parse_scalar(value)))
    return out


def _check_workers(workers: int) -> None:
    if workers < 1:
        raise DearsimError(f"--workers must be a positive integer, got {workers}")


@app.command("simulate")
def simulate_cmd(
    trace: TraceOpt,
    network: NetworkOpt,
    workers: WorkersOpt,
    scheduler: Annotated[
        str, typer.Option("--scheduler", help=f"One of: {', '.join(schedules.names())}.")
    ],
    set_: SetOpt = None,
    iterations: IterOpt = DEFAULT_ITERATIONS,
    warmup: WarmupOpt = DEFAULT_WARMUP,
    batch_size: BatchOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Simulate one schedule and report its steady-state iteration."""
    _check_workers(workers)
    schedules.get(scheduler)
    options = dict(parse_sets(set_))
    result = simulate(
        trace,
        network,
        workers,
        scheduler,
        options,
        iterations=iterations,
        warmup=warmup,
        batch_size=batch_size,
    )
    if json_:
        print(json.dumps(result.to_dict()))
        return
    _console().print(_simulate_table(result))


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
) -> None:
    """Run every schedule with its defaults and rank them, best first."""
    _check_workers(workers)
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


@app.command("schedulers")
def schedulers_cmd() -> None:
    """List the schedules and their options (the --set keys) with defaults."""
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line on standard error, never a traceback."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="dearsim", standalone_mode=False)
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
        cmd = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        print(f"dearsim{cmd}: error: {msg}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
