"""Models for ``dearsim collect``: built-in tiny models (PyTorch only), torchvision models
and ``MODULE:FUNCTION`` workloads, built on a real device with real (random) data.

Built-in models, for CI and laptops:

* ``mlp``: 4 linear layers 256-512-512-512-10 with ReLU, input ``batch x 256``,
  cross-entropy over 10 classes (about 0.66 M parameters);
* ``tiny-mlp``: 3 linear layers 64-128-128-10 (about 26 k parameters), for fast tests;
* ``small-cnn``: conv 3->16, BN, ReLU, conv 16->32, BN, ReLU, max-pool, conv 32->64, ReLU,
  global average pool, linear 64->10; input ``batch x 3 x 32 x 32``.

Other names go to :func:`dearsim.synth.models.build` (torchvision classification models,
BERT, Inception-v4 and ``MODULE:FUNCTION``, with the same conventions), built on the device
instead of the meta device; inputs that the builder left uninitialised are filled with
standard normal values (uninitialised memory can hold denormals that slow a CPU down).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import DearsimError, ParamError
from ..synth.models import Workload
from . import INSTALL_HINT

BUILTIN = ("mlp", "tiny-mlp", "small-cnn")


def require_torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise DearsimError(f"dearsim collect needs PyTorch: {INSTALL_HINT}") from None


def check_device(device: str) -> str:
    """``cpu`` or ``cuda[:N]``, available here; else one clear line."""
    torch = require_torch()
    d = device.strip().lower()
    if d == "cpu":
        return d
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DearsimError(
                f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda or 'none'}); use --device cpu"
            )
        if ":" in d:
            idx = d.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise DearsimError(
                    f"--device {device}: no such GPU ({torch.cuda.device_count()} visible)"
                )
        return d
    raise DearsimError(f"--device must be cpu or cuda[:N], got {device!r}")


def _builtin(name: str, batch_size: int, device: str) -> Workload:
    torch = require_torch()
    nn = torch.nn
    import torch.nn.functional as F

    if name == "mlp":
        dims = [256, 512, 512, 512, 10]
    elif name == "tiny-mlp":
        dims = [64, 128, 128, 10]
    else:
        dims = []
    with torch.device(device):
        if dims:
            mods: list[Any] = []
            for i in range(len(dims) - 1):
                mods.append(nn.Linear(dims[i], dims[i + 1]))
                if i < len(dims) - 2:
                    mods.append(nn.ReLU())
            model = nn.Sequential(*mods)
            x = torch.randn(batch_size, dims[0])
            what = f"{name}: linear {'-'.join(map(str, dims))} with ReLU"
        else:
            model = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
            )
            x = torch.randn(batch_size, 3, 32, 32)
            what = "small-cnn: 3 convolutions (16, 32, 64 channels), 2 BN, linear 64->10"
        target = torch.randint(0, 10, (batch_size,))
    model.train()
    return Workload(
        key=name,
        model=model,
        args=(x,),
        kwargs={},
        loss_fn=lambda out: F.cross_entropy(out, target),
        description=f"{what}, input {'x'.join(map(str, x.shape))}, cross-entropy loss "
        "(dearsim built-in)",
        batch_size=batch_size,
        info={"source": f"dearsim.collect.models ({name})"},
    )


def build(name: str, batch_size: int, device: str = "cpu", seed: int = 0,
          seq_len: int | None = None) -> Workload:
    """The workload ``name`` on ``device`` with random weights and data (seeded);
    ``seq_len``: the sequence length of a BERT model (default 128)."""
    torch = require_torch()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DearsimError(f"--batch-size must be a positive integer, got {batch_size!r}")
    if seq_len is not None and (isinstance(seq_len, bool) or not isinstance(seq_len, int)
                                or seq_len < 1):
        raise DearsimError(f"--seq-len must be a positive integer, got {seq_len!r}")
    torch.manual_seed(seed)
    key = name.strip().lower()
    if key in BUILTIN:
        if seq_len is not None:
            raise DearsimError(f"--seq-len applies to BERT models, not {name}")
        return _builtin(key, batch_size, device)
    if ":" not in name:
        try:
            importlib.import_module("torchvision")
        except ImportError:
            raise DearsimError(
                f"unknown model {name!r}: give {', '.join(BUILTIN)} or MODULE:FUNCTION "
                "(torchvision, BERT and Inception-v4 models need pip install 'dearsim[synth]')"
            ) from None
    from ..synth import models as synth_models

    try:
        w = synth_models.build(name, batch_size, seq_len=seq_len, device=device)
    except ParamError as exc:
        if exc.param != "seq_len":
            raise
        raise DearsimError(exc.for_flag("--seq-len")) from None
    if ":" not in name:  # the synth builders leave image inputs uninitialised
        with torch.no_grad():
            for t in w.args:  # image batches (BERT's keyword inputs are ids and masks)
                if isinstance(t, torch.Tensor) and t.is_floating_point():
                    t.normal_()
    return w
