"""``dearsim collect layers``: time a model's training step layer by layer.

Layers are defined as in :mod:`dearsim.synth.profile` (a module that directly owns trainable
parameters is a layer; layers in order of first forward use; a tied parameter belongs to
the layer that uses it first; parameter-free work is folded into the layer that ran just
before it). One training step is timed with

* a forward pre-hook on every layer module: layer ``i``'s forward time runs from its first
  pre-hook in the step (the step's start for layer 0) to the next layer's first pre-hook
  (the loss's end for the last layer), so activations, pooling and the loss count with the
  layer before them;
* ``Tensor.register_post_accumulate_grad_hook`` on every parameter: a layer's gradient is
  ready when the last of its tensors is; layer ``i``'s backward time runs from the previous
  gradient-ready instant in backward order (the start of ``backward()`` for the last layer)
  to its own; what ``backward()`` does after the first layer's gradient counts with layer 0;
* the update: plain SGD (``p.add_(p.grad, alpha=-lr)``) per layer, timed on its own.

Timestamps are CUDA events on a GPU (``elapsed_time`` on the GPU's timeline) and
``time.perf_counter`` on a CPU. After warm-up, per-layer medians over the timed steps. The
hooks' own cost is measured by alternating hooked and un-hooked steps; the per-layer
forward and backward times are scaled by ``unhooked / hooked`` so that they add up to the
un-hooked step (the factor and the raw overhead are recorded in the provenance).
"""

from __future__ import annotations

import datetime
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import DearsimError
from ..synth.models import Workload
from ..synth.profile import LAYERING, _discover
from ..trace import Trace

DEFAULT_LR = 1e-6  # tiny: the update's cost does not depend on it and the model stays put


@dataclass
class Layering:
    names: list[str]
    modules: list[Any]  # the layer's module (None if its parameters are used elsewhere)
    #: per layer: (qualified name, parameter) in registration order
    params: list[list[tuple[str, Any]]]

    @property
    def tensor_bytes(self) -> list[list[int]]:
        return [[p.numel() * p.element_size() for _, p in ps] for ps in self.params]

    @property
    def sizes(self) -> list[int]:
        return [sum(t) for t in self.tensor_bytes]

    def all_params(self) -> list[Any]:
        return [p for ps in self.params for _, p in ps]


def layering(w: Workload) -> Layering:
    """The model's layers, as :mod:`dearsim.synth.profile` defines them."""
    try:
        order, assign, params, _unused, _free = _discover(w)
    except DearsimError as exc:
        raise DearsimError(str(exc).replace("on the meta device", "")) from None
    label_module: dict[str, Any] = {}
    for mname, m in w.model.named_modules():
        label_module.setdefault(mname or type(m).__name__, m)
    pname: dict[int, str] = {}
    for n, p in w.model.named_parameters():
        pname.setdefault(id(p), n)
    per_layer: dict[str, list[tuple[str, Any]]] = {n: [] for n in order}
    for n, p in w.model.named_parameters():  # registration order, shared parameters once
        if id(p) in assign and all(q is not p for _, q in per_layer[assign[id(p)]]):
            per_layer[assign[id(p)]].append((n, p))
    return Layering(
        names=list(order),
        modules=[label_module.get(n) for n in order],
        params=[per_layer[n] for n in order],
    )


# --------------------------------------------------------------------------- clocks


class CpuClock:
    name = "time.perf_counter (host wall clock)"

    def mark(self) -> Any:
        return time.perf_counter()

    def since(self, t0: Any, t: Any) -> float:
        return t - t0

    def sync(self) -> None:
        pass


class CudaClock:
    name = "CUDA events (torch.cuda.Event.elapsed_time on the GPU's timeline)"

    def mark(self) -> Any:
        e = torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def since(self, t0: Any, t: Any) -> float:
        return t0.elapsed_time(t) / 1e3

    def sync(self) -> None:
        torch.cuda.synchronize()


def clock_for(device: str) -> CpuClock | CudaClock:
    return CudaClock() if device.startswith("cuda") else CpuClock()


# --------------------------------------------------------------------------- timing


class StepTimer:
    """Times one training step of ``w`` per layer (see the module docstring)."""

    def __init__(self, w: Workload, lay: Layering, device: str) -> None:
        self.w = w
        self.lay = lay
        self.clock = clock_for(device)
        self.marks: dict[int, Any] = {}
        self.ready: dict[int, Any] = {}  # tensor index -> mark
        self.handles: list[Any] = []
        self.tensor_layer: list[int] = []
        self.params = []
        for i, ps in enumerate(lay.params):
            for _, p in ps:
                self.params.append(p)
                self.tensor_layer.append(i)

    def _install(self) -> None:
        for i, m in enumerate(self.lay.modules):
            if m is None:
                continue

            def pre(_m: Any, _a: Any, i: int = i) -> None:
                if i not in self.marks:
                    self.marks[i] = self.clock.mark()

            self.handles.append(m.register_forward_pre_hook(pre))
        for k, p in enumerate(self.params):

            def post(_p: Any, k: int = k) -> None:
                self.ready[k] = self.clock.mark()

            self.handles.append(p.register_post_accumulate_grad_hook(post))

    def _remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def _zero(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self, hooked: bool) -> tuple[float, list[float], list[float]] | float:
        """One forward + loss + backward. Hooked: (total, fwd per layer, bwd per layer)."""
        self._zero()
        self.marks, self.ready = {}, {}
        if hooked:
            self._install()
        try:
            c = self.clock
            c.sync()
            t0 = c.mark()
            loss = self.w.loss_fn(self.w.run_forward())
            t_loss = c.mark()
            loss.backward()
            t_end = c.mark()
            c.sync()
        finally:
            self._remove()
        total = c.since(t0, t_end)
        if not hooked:
            return total
        n = len(self.lay.names)
        bounds = [0.0]
        for i in range(1, n):
            t = c.since(t0, self.marks[i]) if i in self.marks else bounds[-1]
            bounds.append(max(bounds[-1], t))
        loss_at = max(bounds[-1], c.since(t0, t_loss))
        bounds.append(loss_at)
        fwd = [bounds[i + 1] - bounds[i] for i in range(n)]
        ready_layer: dict[int, float] = {}
        for k, mark in self.ready.items():
            i = self.tensor_layer[k]
            ready_layer[i] = max(ready_layer.get(i, 0.0), c.since(t0, mark))
        bwd = [0.0] * n
        prev = loss_at
        for i in reversed(range(n)):
            r = max(prev, ready_layer.get(i, prev))
            bwd[i] = r - prev
            prev = r
        bwd[0] += max(0.0, c.since(t0, t_end) - prev)
        return total, fwd, bwd

    def update(self, lr: float = DEFAULT_LR) -> list[float]:
        """Plain SGD per layer, timed per layer (needs gradients from a step)."""
        c = self.clock
        out = []
        with torch.no_grad():
            c.sync()
            for ps in self.lay.params:
                t0 = c.mark()
                for _, p in ps:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
                t1 = c.mark()
                c.sync()
                out.append(c.since(t0, t1))
        return out


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return 0.0
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        return f"{torch.cuda.get_device_name(idx)} ({device})"
    proc = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    proc = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {proc}, {torch.get_num_threads()} PyTorch thread(s)"


def framework_label() -> str:
    cuda = torch.version.cuda
    return f"torch {torch.__version__}" + (f" (CUDA {cuda})" if cuda else " (CPU build)")


def collect(
    w: Workload,
    device: str,
    *,
    iters: int = 20,
    warmup: int = 5,
    command: str | None = None,
    created: str | None = None,
    hook_correction: bool = True,
) -> tuple[Trace, dict[str, Any]]:
    """Time ``w`` per layer on ``device``: the measured trace and its header."""
    if iters < 1:
        raise DearsimError(f"--iters must be a positive integer, got {iters}")
    if warmup < 0:
        raise DearsimError(f"--warmup must be >= 0, got {warmup}")
    lay = layering(w)
    timer = StepTimer(w, lay, device)
    n = len(lay.names)
    for _ in range(warmup):
        timer.step(True)
        timer.update()
        timer.step(False)
    fwd_s: list[list[float]] = [[] for _ in range(n)]
    bwd_s: list[list[float]] = [[] for _ in range(n)]
    upd_s: list[list[float]] = [[] for _ in range(n)]
    hooked: list[float] = []
    plain: list[float] = []
    for it in range(iters):
        # alternate the order so that neither kind always follows the update
        for kind in ((True, False) if it % 2 == 0 else (False, True)):
            if kind:
                total, f, b = timer.step(True)  # type: ignore[misc]
                hooked.append(total)
                for i in range(n):
                    fwd_s[i].append(f[i])
                    bwd_s[i].append(b[i])
                for i, u in enumerate(timer.update()):
                    upd_s[i].append(u)
            else:
                plain.append(timer.step(False))  # type: ignore[arg-type]
    for p in lay.all_params():
        p.grad = None
    fwd = [_median(x) for x in fwd_s]
    bwd = [_median(x) for x in bwd_s]
    upd = [_median(x) for x in upd_s]
    h_med, p_med = _median(hooked), _median(plain)
    raw_sum = sum(fwd) + sum(bwd)
    factor = p_med / raw_sum if hook_correction and raw_sum > 0 else 1.0
    if hook_correction:
        fwd = [x * factor for x in fwd]
        bwd = [x * factor for x in bwd]
    sizes = lay.sizes
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in lay.all_params()})
    params = sum(p.numel() for p in lay.all_params())
    short = "gpu" if device.startswith("cuda") else "cpu"
    name = f"{w.key}-b{w.batch_size}-{short}-measured"
    trace = Trace.from_layers(
        fwd, bwd, sizes, upd, lay.names, name=name, batch_size=w.batch_size,
        tensors=lay.tensor_bytes, tensor_names=[[n for n, _ in ps] for ps in lay.params],
    )
    overhead = {
        "hooked_step_ms": round(h_med * 1e3, 6),
        "unhooked_step_ms": round(p_med * 1e3, 6),
        "overhead_ms": round((h_med - p_med) * 1e3, 6),
        "overhead_pct": round((h_med / p_med - 1) * 100, 3) if p_med > 0 else None,
        "hooked_p10_p90_ms": [round(_quantile(hooked, q) * 1e3, 6) for q in (0.1, 0.9)],
        "unhooked_p10_p90_ms": [round(_quantile(plain, q) * 1e3, 6) for q in (0.1, 0.9)],
        "correction_factor": round(factor, 6),
        "what": "forward+loss+backward step with and without the timing hooks (medians of "
        "alternating steps); per-layer fwd/bwd times are scaled by correction_factor = "
        "un-hooked step / sum of per-layer medians" if hook_correction else
        "forward+loss+backward step with and without the timing hooks; no correction applied",
    }
    provenance: dict[str, Any] = {
        "method": "measured",
        "created": created or datetime.date.today().isoformat(),
        "device": device_label(device),
        "framework": framework_label(),
        "how": (
            f"Measured: {warmup} warm-up steps, then medians over {iters} timed steps of "
            f"forward + loss + backward ({clock_for(device).name}). Forward time per layer from "
            "module forward pre-hooks, backward time per layer from per-tensor gradient-ready "
            "hooks (Tensor.register_post_accumulate_grad_hook), update = plain SGD "
            "p.add_(grad) per layer timed on its own. Gradient bytes exact (numel x element "
            f"size, {params:,} parameters in {sum(len(t) for t in lay.params)} tensors). "
            "docs/collect.md."
        ),
        "layers": LAYERING,
        "timer": clock_for(device).name,
        "iters": iters,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
        "hook_overhead": overhead,
        "workload": dict(w.info),
        "totals": {"params": params, "tensors": sum(len(t) for t in lay.params),
                   "bytes": sum(sizes)},
    }
    if command:
        provenance["command"] = command
    header: dict[str, Any] = {
        "name": name,
        "model": w.description,
        "batch_size": w.batch_size,
        "dtype": dtypes[0] if len(dtypes) == 1 else ",".join(dtypes),
        "provenance": provenance,
        "notes": (
            f"{n} layers, one per module that owns parameters; parameter-free work folded "
            "into the layer before it. Measured on this device; framework work outside the "
            "layers (DDP bucket copies, optimizer overhead) is not in it: see "
            "dearsim collect interference."
        ),
    }
    return trace, header
