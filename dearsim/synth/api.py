"""Synthesising a trace from a model name: what ``dearsim trace synth`` and
``traces/make_synth.py`` call.

Importing this module does not import PyTorch; :func:`synthesise_trace` imports it when it
runs and fails with one line when it is missing. Bad arguments raise
:class:`~dearsim.errors.ParamError` naming the parameter (``batch_size``), which the command
line turns into its flag (``--batch-size``).
"""

from __future__ import annotations

import datetime
import math
import shlex
from typing import Any

from ..errors import DearsimError, ParamError
from ..trace import Trace
from .gpus import DEFAULT_GPU, get_gpu

NEEDS_TORCH = "dearsim trace synth needs PyTorch: pip install 'dearsim[synth]'"

#: The ``dearsim trace synth`` flag of each parameter of :func:`synthesise_trace`, for the
#: command recorded in a trace's provenance.
FLAGS = {
    "model": "--model",
    "batch_size": "--batch-size",
    "gpu": "--gpu",
    "seq_len": "--seq-len",
    "image_size": "--image-size",
    "optimizer": "--optimizer",
    "compute_eff": "--compute-eff",
    "mem_eff": "--mem-eff",
    "launch_us": "--launch-us",
    "created": "--created",
}


def created_date(value: str | None) -> str:
    """``value`` as an ISO date (``YYYY-MM-DD``); today's date for ``None``."""
    if value is None:
        return datetime.date.today().isoformat()
    try:
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except (ValueError, AttributeError):
        raise ParamError("created", f"must be a date YYYY-MM-DD, got {value!r}") from None


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
    parts = ["dearsim", "trace", "synth", FLAGS["model"], model, FLAGS["batch_size"],
             str(batch_size), FLAGS["gpu"], gpu]
    for param, value in (("seq_len", seq_len), ("image_size", image_size),
                         ("optimizer", optimizer), ("compute_eff", compute_eff),
                         ("mem_eff", mem_eff), ("launch_us", launch_us)):
        if value is not None:
            parts += [FLAGS[param], str(value)]
    parts += [FLAGS["created"], created]
    return shlex.join(parts)


def synthesise_trace(
    model: str,
    batch_size: int,
    gpu: str = DEFAULT_GPU,
    *,
    seq_len: int | None = None,
    image_size: int | None = None,
    optimizer: str | None = None,
    compute_eff: float | None = None,
    mem_eff: float | None = None,
    launch_us: float | None = None,
    created: str | None = None,
) -> tuple[Trace, dict[str, Any]]:
    """Synthesise a trace and its header (what ``dearsim trace synth`` writes).

    ``model`` is a model name or ``MODULE:FUNCTION`` (:mod:`dearsim.synth.models`),
    ``gpu`` a preset of :mod:`dearsim.synth.gpus`; ``compute_eff``, ``mem_eff`` and
    ``launch_us`` (microseconds) override the GPU's; ``created`` (``YYYY-MM-DD``, default
    today) is the date recorded in the provenance. The trace has the per-tensor breakdown.
    Write it with ``dearsim.trace.save_trace(trace, path, header)``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParamError("batch_size", f"must be a positive integer, got {batch_size!r}")
    if launch_us is not None and not (math.isfinite(launch_us) and launch_us >= 0):
        raise ParamError("launch_us", f"must be a number >= 0, got {launch_us}")
    for param, v in (("compute_eff", compute_eff), ("mem_eff", mem_eff)):
        if v is not None and not (math.isfinite(v) and 0 < v <= 1):
            raise ParamError(param, f"must be in (0, 1], got {v}")
    try:
        preset = get_gpu(gpu)
    except DearsimError as exc:
        raise ParamError("gpu", str(exc)) from None
    gpu_model = preset.with_efficiency(
        compute_eff, mem_eff, None if launch_us is None else launch_us * 1e-6
    )
    day = created_date(created)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise DearsimError(NEEDS_TORCH) from None
    from . import models, profile

    if optimizer is not None and optimizer not in profile.OPTIMIZERS:
        raise ParamError(
            "optimizer",
            f"unknown optimizer {optimizer!r} (known: {', '.join(profile.OPTIMIZERS)})",
        )
    w = models.build(model, batch_size, seq_len=seq_len, image_size=image_size)
    cmd = synth_command(
        model, batch_size, gpu_model.name, seq_len=seq_len, image_size=image_size,
        optimizer=optimizer, compute_eff=compute_eff, mem_eff=mem_eff, launch_us=launch_us,
        created=day,
    )
    return profile.synthesise(w, gpu_model, optimizer=optimizer, created=day, command=cmd)
