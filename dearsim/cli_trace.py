"""``dearsim trace``: make trace files from real model definitions and inspect trace files.

* ``dearsim trace synth`` builds a model (torchvision, timm's Inception-v4, BERT from its
  configuration, or the user's ``MODULE:FUNCTION``), counts each layer's FLOPs and bytes on
  PyTorch's meta device and writes a synthesised trace for a modelled GPU. It needs the
  ``synth`` extra (``pip install 'dearsim[synth]'``); without it, it says so in one line.
* ``dearsim trace show`` prints a summary of any trace file and needs no PyTorch.

Methods and their choices are described in ``docs/traces.md``.
"""

from __future__ import annotations

import datetime
import json
import math
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import DearsimError
from .trace import Trace, load_trace, save_trace

trace_app = typer.Typer(
    name="trace",
    help="Make trace files from model definitions (synth) and summarise trace files (show).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NEEDS_TORCH = "dearsim trace synth needs PyTorch: pip install 'dearsim[synth]'"
DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4, "tf32": 4,
    "float16": 2, "fp16": 2, "half": 2, "bfloat16": 2, "bf16": 2,
    "float64": 8, "fp64": 8, "double": 8,
}


# --------------------------------------------------------------------------- synth


def _created(value: str | None) -> str:
    if value is None:
        return datetime.date.today().isoformat()
    try:
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise DearsimError(f"--created must be a date YYYY-MM-DD, got {value!r}") from None


def synth_command(
    model: str,
    batch_size: int,
    gpu: str,
    *,
    seq_len: int | None = None,
    image_size: int | None = None,
    optimizer: str | None = None,
    compute_eff: float | None = None,
    mem_eff: float | None = None,
    launch_us: float | None = None,
    created: str,
) -> str:
    """The ``dearsim trace synth`` command line (without ``--out``) that makes a trace."""
    parts = ["dearsim", "trace", "synth", "--model", model, "--batch-size", str(batch_size),
             "--gpu", gpu]
    for flag, value in (("--seq-len", seq_len), ("--image-size", image_size),
                        ("--optimizer", optimizer), ("--compute-eff", compute_eff),
                        ("--mem-eff", mem_eff), ("--launch-us", launch_us)):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--created", created]
    return shlex.join(parts)


def synthesise_trace(
    model: str,
    batch_size: int,
    gpu: str = "rtx2080ti",
    *,
    seq_len: int | None = None,
    image_size: int | None = None,
    optimizer: str | None = None,
    compute_eff: float | None = None,
    mem_eff: float | None = None,
    launch_us: float | None = None,
    created: str | None = None,
) -> tuple[Trace, dict[str, Any]]:
    """Synthesise a trace and its header (what ``dearsim trace synth`` writes)."""
    from .synth.gpus import get_gpu

    if batch_size is None or batch_size < 1:
        raise DearsimError(f"--batch-size must be a positive integer, got {batch_size}")
    if launch_us is not None and not (math.isfinite(launch_us) and launch_us >= 0):
        raise DearsimError(f"--launch-us must be a number >= 0, got {launch_us}")
    for flag, v in (("--compute-eff", compute_eff), ("--mem-eff", mem_eff)):
        if v is not None and not (math.isfinite(v) and 0 < v <= 1):
            raise DearsimError(f"{flag} must be in (0, 1], got {v}")
    gpu_model = get_gpu(gpu).with_efficiency(
        compute_eff, mem_eff, None if launch_us is None else launch_us * 1e-6
    )
    day = _created(created)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise DearsimError(NEEDS_TORCH) from None
    from .synth import models, profile

    if optimizer is not None and optimizer not in profile.OPTIMIZERS:
        raise DearsimError(
            f"unknown optimizer {optimizer!r} (known: {', '.join(profile.OPTIMIZERS)})"
        )
    w = models.build(model, batch_size, seq_len=seq_len, image_size=image_size)
    cmd = synth_command(
        model, batch_size, gpu_model.name, seq_len=seq_len, image_size=image_size,
        optimizer=optimizer, compute_eff=compute_eff, mem_eff=mem_eff, launch_us=launch_us,
        created=day,
    )
    return profile.synthesise(w, gpu_model, optimizer=optimizer, created=day, command=cmd)


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
    trace, header = synthesise_trace(
        model, batch_size, gpu, seq_len=seq_len, image_size=image_size, optimizer=optimizer,
        compute_eff=compute_eff, mem_eff=mem_eff, launch_us=launch_us, created=created,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_trace(trace, out, header)
    except OSError as exc:
        raise DearsimError(f"--out {out}: {exc.strerror or exc}") from None
    params = header["provenance"]["totals"]["params"]
    print(
        f"wrote {out}: {trace.num_layers} layers, {params:,} parameters, forward "
        f"{_ms(sum(trace.fwd))} ms, backward {_ms(sum(trace.bwd))} ms, update "
        f"{_ms(sum(trace.update))} ms",
        file=sys.stderr,
    )


# --------------------------------------------------------------------------- show


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def summarise(trace: Trace, top: int = 5) -> dict[str, Any]:
    """The numbers ``dearsim trace show`` prints, as a JSON-ready dict."""
    meta = dict(trace.meta)
    dtype = meta.get("dtype")
    per = DTYPE_BYTES.get(str(dtype).lower()) if dtype else None
    bytes_total = trace.total_bytes
    fwd = math.fsum(trace.fwd)
    bwd = math.fsum(trace.bwd)
    upd = math.fsum(trace.update)
    order = sorted(range(trace.num_layers), key=lambda i: (-trace.size[i], i))[: max(top, 0)]
    largest = [
        {
            "index": i,
            "name": trace.names[i],
            "bytes": trace.size[i],
            "share": trace.size[i] / bytes_total if bytes_total else 0.0,
            "fwd_ms": trace.fwd[i] * 1e3,
            "bwd_ms": trace.bwd[i] * 1e3,
        }
        for i in order
        if trace.size[i] > 0
    ]
    return {
        "source": trace.source,
        "name": trace.name,
        "model": meta.get("model"),
        "batch_size": trace.batch_size,
        "dtype": dtype,
        "layers": trace.num_layers,
        "layers_with_gradients": len(trace.grad_layers),
        "bytes": bytes_total,
        "bytes_per_param": per,
        "params": bytes_total // per if per else None,
        "fwd_ms": fwd * 1e3,
        "bwd_ms": bwd * 1e3,
        "update_ms": upd * 1e3,
        "compute_ms": (fwd + bwd + upd) * 1e3,
        "largest": largest,
        "provenance": meta.get("provenance"),
        "notes": meta.get("notes"),
    }


def _wrap(label: str, value: Any, indent: int = 2, width: int = 100) -> list[str]:
    pad = " " * indent
    head = f"{pad}{label:<12}"
    text = str(value)
    lines = textwrap.wrap(text, width=width - len(head)) or [""]
    return [head + lines[0]] + [" " * len(head) + ln for ln in lines[1:]]


def format_summary(s: dict[str, Any]) -> str:
    out: list[str] = [str(s["source"] or s["name"])]
    out += _wrap("name", s["name"])
    if s["model"]:
        out += _wrap("model", s["model"])
    out += _wrap("batch size", s["batch_size"] if s["batch_size"] is not None else "-")
    out += _wrap("dtype", s["dtype"] or "- (not given; parameters assume 4 bytes each)")
    out += _wrap("layers", f"{s['layers']} ({s['layers_with_gradients']} with gradients)")
    if s["params"] is not None:
        params = f"{s['params']:,}"
    else:
        params = f"{s['bytes'] // 4:,} if 4 bytes each"
    out += _wrap("parameters", params)
    out += _wrap("gradients", f"{s['bytes']:,} bytes ({_mb(s['bytes'])})")
    out += _wrap("forward", f"{s['fwd_ms']:.3f} ms")
    out += _wrap("backward", f"{s['bwd_ms']:.3f} ms")
    out += _wrap("update", f"{s['update_ms']:.3f} ms")
    out += _wrap("compute", f"{s['compute_ms']:.3f} ms per iteration (forward + backward + update)")
    if s["largest"]:
        out.append("  largest layers (by gradient bytes):")
        w = max(len(r["name"]) for r in s["largest"])
        w = max(w, 5)
        out.append(f"    {'#':>5}  {'layer':<{w}}  {'bytes':>14}  {'share':>6}  "
                   f"{'fwd ms':>9}  {'bwd ms':>9}")
        for r in s["largest"]:
            out.append(
                f"    {r['index']:>5}  {r['name']:<{w}}  {r['bytes']:>14,}  "
                f"{r['share'] * 100:>5.1f}%  {r['fwd_ms']:>9.3f}  {r['bwd_ms']:>9.3f}"
            )
    prov = s["provenance"]
    if prov:
        out.append("  provenance:")
        for key, value in prov.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            out += _wrap(str(key), value, indent=4)
    else:
        out.append("  provenance: none recorded")
    if s["notes"]:
        out += _wrap("notes", s["notes"])
    return "\n".join(out)


@trace_app.command("show")
def show_cmd(
    path: Annotated[Path, typer.Argument(help="Trace file (dearsim CSVY or plain CSV).")],
    top: Annotated[int, typer.Option("--top", help="How many of the largest layers to list.")] = 5,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Summarise a trace: layers, parameters and bytes, time totals, largest layers, provenance."""
    if top < 0:
        raise DearsimError(f"--top must be >= 0, got {top}")
    s = summarise(load_trace(path), top)
    if json_:
        print(json.dumps(s))
    else:
        print(format_summary(s))
