"""``dearsim search``: tune a schedule's fusion on the fast evaluator (see
:mod:`dearsim.search`). The command function is registered by :mod:`dearsim.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .errors import DearsimError, ParamError
from .search import METHODS, search

_FLAGS = {"budget": "--budget", "seed": "--seed", "iterations": "--iterations"}


def search_cmd(
    trace: Annotated[Path, typer.Option("--trace", help="Trace file (dearsim CSVY or plain CSV).")],
    network: Annotated[
        str, typer.Option("--network", help="Network preset (10GbE, 100GbIB, ...) or YAML file.")
    ],
    workers: Annotated[int, typer.Option("--workers", help="Number of workers p.")],
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="A schedule name (dearsim schedulers lists them).")
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="scan (ddp, horovod, dear), bayes (dear, horovod, bytescheduler), "
            "optimal (wfbp, ddp, mgwfbp), partition (dear).",
        ),
    ],
    budget: Annotated[
        int | None,
        typer.Option("--budget", help="Grid points, trials or evaluations (method's default)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Bayesian tuner.")] = 0,
    iterations: Annotated[int, typer.Option("--iterations", help="Iterations simulated.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search a schedule's buckets or groups; print the best and a sweep-config entry."""
    if workers < 1:
        raise DearsimError(f"--workers must be a positive integer, got {workers}")
    try:
        r = search(trace, network, workers, scheduler, method, budget=budget, seed=seed,
                   iterations=iterations)
    except ParamError as exc:
        flag = _FLAGS.get(exc.param)
        raise DearsimError(exc.for_flag(flag) if flag else str(exc)) from None
    if as_json:
        typer.echo(json.dumps(r.to_dict()))
        return
    ms = 1e3
    lines = [
        f"{r.scheduler} / {r.method}: {r.evaluations} evaluations",
        f"best iteration   {r.iteration_time_s * ms:.3f} ms",
        f"default          {r.default_time_s * ms:.3f} ms  (gain {r.gain_over_default:+.1%})",
    ]
    if r.threshold_time_s is not None:
        lines.append(
            f"best threshold   {r.threshold_time_s * ms:.3f} ms  {r.threshold_options}"
            f"  (gain {r.gain_over_threshold:+.1%})"
        )
    if r.reference_time_s is not None:
        lines.append(
            f"reference        {r.reference_time_s * ms:.3f} ms  ({r.reference}); "
            f"gap {r.gap_to_reference:+.2%}, best found at trial {r.trials_to_best}"
        )
    lines.append(f"options          {r.options}")
    lines.append("ranges           " + " ".join(f"[{a}, {b}]" for a, b in r.ranges))
    lines.append("sweep config:")
    lines.append("  " + r.yaml_snippet())
    typer.echo("\n".join(lines))


__all__ = ["METHODS", "search_cmd"]
