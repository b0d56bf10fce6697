"""``dearsim trace``: make trace files from real model definitions and inspect trace files.

* ``dearsim trace synth`` builds a model (torchvision, timm's Inception-v4, BERT from its
  configuration, or the user's ``MODULE:FUNCTION``), counts each layer's FLOPs and bytes on
  PyTorch's meta device and writes a synthesised trace for a modelled GPU, with the per-tensor
  breakdown. It needs the ``synth`` extra (``pip install 'dearsim[synth]'``); without it, it
  says so in one line.
* ``dearsim trace show`` prints a summary of any trace file and needs no PyTorch.

Only the commands live here; the work is done by :mod:`dearsim.synth.api` and
:mod:`dearsim.summary`. Methods and their choices are described in ``docs/traces.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from .errors import DearsimError, ParamError
from .summary import format_summary, summarise
from .synth.api import FLAGS as SYNTH_FLAGS
from .synth.api import synthesise_trace
from .trace import load_trace, save_trace

trace_app = typer.Typer(
    name="trace",
    help="Make trace files from model definitions (synth) and summarise trace files (show).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SHOW_FLAGS = {"top": "--top"}

T = TypeVar("T")


def _with_flags(flags: Mapping[str, str], call: Callable[[], T]) -> T:
    """Run a library call; a :class:`ParamError` is re-raised naming the flag it came from."""
    try:
        return call()
    except ParamError as exc:
        flag = flags.get(exc.param, "--" + exc.param.replace("_", "-"))
        raise DearsimError(exc.for_flag(flag)) from None


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


@trace_app.command("synth")
def synth_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="resnet50, densenet201, inception_v4, bert-base, bert-large, any torchvision "
            "classification model, or MODULE:FUNCTION returning (model, example_input).",
        ),
    ],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Per-GPU batch size.")],
    out: Annotated[Path, typer.Option("--out", help="Trace file to write (.csvy).")],
    gpu: Annotated[
        str, typer.Option("--gpu", help="Modelled GPU: rtx2080ti (default), v100, a100, h100.")
    ] = "rtx2080ti",
    seq_len: Annotated[
        int | None, typer.Option("--seq-len", help="Sequence length (BERT; default 128).")
    ] = None,
    image_size: Annotated[
        int | None, typer.Option("--image-size", help="Image side for image models (default 224).")
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option("--optimizer", help="Update model: sgd (default), momentum or adam."),
    ] = None,
    compute_eff: Annotated[
        float | None, typer.Option("--compute-eff", help="Override the GPU's compute efficiency.")
    ] = None,
    mem_eff: Annotated[
        float | None, typer.Option("--mem-eff", help="Override the GPU's memory efficiency.")
    ] = None,
    launch_us: Annotated[
        float | None, typer.Option("--launch-us", help="Override the per-kernel overhead (us).")
    ] = None,
    created: Annotated[
        str | None,
        typer.Option("--created", help="Date recorded in the provenance (default: today)."),
    ] = None,
) -> None:
    """Synthesise a trace from a real model definition and a GPU roofline model."""
    trace, header = _with_flags(
        SYNTH_FLAGS,
        lambda: synthesise_trace(
            model, batch_size, gpu, seq_len=seq_len, image_size=image_size,
            optimizer=optimizer, compute_eff=compute_eff, mem_eff=mem_eff,
            launch_us=launch_us, created=created,
        ),
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_trace(trace, out, header)
    except OSError as exc:
        raise DearsimError(f"--out {out}: {exc.strerror or exc}") from None
    params = header["provenance"]["totals"]["params"]
    print(
        f"wrote {out}: {trace.num_layers} layers, {params:,} parameters in "
        f"{trace.num_tensors:,} tensors, forward "
        f"{_ms(sum(trace.fwd))} ms, backward {_ms(sum(trace.bwd))} ms, update "
        f"{_ms(sum(trace.update))} ms",
        file=sys.stderr,
    )


# --------------------------------------------------------------------------- show


@trace_app.command("show")
def show_cmd(
    path: Annotated[Path, typer.Argument(help="Trace file (dearsim CSVY or plain CSV).")],
    top: Annotated[int, typer.Option("--top", help="How many of the largest layers to list.")] = 5,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Summarise a trace: layers, tensors, parameters, bytes, times, largest layers, provenance."""
    trace = load_trace(path)
    s = _with_flags(SHOW_FLAGS, lambda: summarise(trace, top))
    if json_:
        print(json.dumps(s))
    else:
        print(format_summary(s))
