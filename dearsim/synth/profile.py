"""Per-layer FLOPs, bytes and modelled times of one training step, counted on the meta device.

:func:`profile` runs a :class:`~dearsim.synth.models.Workload`'s forward pass, loss and
backward pass once with every tensor on PyTorch's ``meta`` device (shapes only: nothing is
allocated or computed) and intercepts every ATen operator with a ``TorchDispatchMode``:

* **FLOPs** of an operator come from PyTorch's own FLOP counter
  (``torch.utils.flop_counter.flop_registry``: matrix products and convolutions, forward and
  backward, a multiply-add counted as 2); other operators count 0 FLOPs.
* **Bytes** of an operator are the sizes of its tensor inputs and outputs (each tensor once
  per operator; a broadcast tensor counts its distinct elements; gather-like operators,
  ``embedding``, ``index_select``, ``gather`` and ``nll_loss``, count only the elements they
  pick from their source). View and metadata-only operators (``view``, ``t``, ``expand``,
  ``detach``, ``empty``...) move nothing and launch nothing, so they are left out.
* Every operator is charged to a **layer**, the module that directly owns parameters
  (weights and bias together), see :func:`profile`.
* A layer's gradient is broken down into its **parameter tensors** (``weight``, ``bias``, ...)
  in the order the model registers them; the trace's ``tensor_bytes``/``tensor_names``.

:func:`synthesise` turns the counts into a :class:`~dearsim.trace.Trace` with a GPU roofline
(:mod:`dearsim.synth.gpus`): an operator takes ``max(flops / (peak * compute_eff),
bytes / (bandwidth * mem_eff)) + launch_overhead``, and a layer's forward (backward) time is
the sum over the operators charged to it in the forward (backward) pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

from ..errors import DearsimError, ParamError
from ..trace import Trace
from .gpus import GPU
from .models import Workload

aten = torch.ops.aten

# Operators that allocate or relabel memory without reading or writing it (besides views).
_NO_TRAFFIC = {
    aten._unsafe_view,
    aten._reshape_alias,
    aten.alias,
    aten.empty,
    aten.empty_like,
    aten.empty_strided,
    aten.new_empty,
    aten.new_empty_strided,
    aten.lift_fresh,
    aten.resize_,
    aten.set_,
    aten.sym_size,
    aten.sym_stride,
    aten.sym_numel,
    aten.sym_storage_offset,
    aten.is_same_size,
}

# Optimiser update: bytes moved per parameter, in units of the parameter's element size.
# sgd: read w, g; write w (3). momentum: read w, g, m; write w, m (5).
# adam: read w, g, m, v; write w, m, v (7).
OPTIMIZERS: dict[str, tuple[int, str]] = {
    "sgd": (
        3,
        (
            "plain SGD (torch.optim.SGD without momentum, as in the DeAR study's benchmark "
            "scripts): read weight and gradient, write weight"
        ),
    ),
    "momentum": (
        5,
        "SGD with momentum: read weight, gradient and momentum, write weight and momentum",
    ),
    "adam": (
        7,
        "Adam/AdamW: read weight, gradient and both moments, write weight and both moments",
    ),
}

LAYERING = (
    "A layer is a module that directly owns parameters (weights and bias together), in order "
    "of first forward use. A parameter shared by several modules (BERT's tied decoder/"
    "word-embedding weight) belongs once to the layer that uses it first in the forward pass, "
    "whose gradient is complete last. Work outside any layer (activations, pooling, residual "
    "adds, attention matmuls, the loss) is folded into the layer that ran just before it in "
    "the forward pass, in both passes: its forward runs after that layer's forward, and its "
    "backward runs just before that layer's backward, so every gradient becomes ready when it "
    "really would. Backward operators are attributed through the autograd node that runs them."
)
COUNTING = (
    "One forward, loss and backward pass on PyTorch's meta device (shapes only), every ATen "
    "operator intercepted with a TorchDispatchMode. FLOPs from torch.utils.flop_counter (matrix "
    "products and convolutions, multiply-add = 2); bytes = sizes of the operator's tensor "
    "inputs and outputs (gathers: embedding, index_select, gather and nll_loss count only the "
    "elements they pick); view and metadata-only operators excluded. Operator time = "
    "max(flops / (peak x compute_eff), bytes / (bandwidth x mem_eff)) + launch overhead; a "
    "layer's time is the sum over its operators."
)


@dataclass
class LayerCounts:
    """What one layer does in one training step."""

    name: str
    params: int = 0  # parameters whose gradient this layer owns
    tensors: int = 0  # parameter tensors (an optimiser update kernel each)
    param_bytes: int = 0
    #: Per parameter tensor, in registration order: gradient bytes and name (the name local to
    #: the layer's module, ``weight``; the model-wide name for a tensor another module owns).
    tensor_bytes: list[int] = field(default_factory=list)
    tensor_names: list[str] = field(default_factory=list)
    fwd_ops: list[tuple[int, int]] = field(default_factory=list)  # (flops, bytes) per operator
    bwd_ops: list[tuple[int, int]] = field(default_factory=list)

    def pass_time(self, gpu: GPU, which: str) -> float:
        ops = self.fwd_ops if which == "fwd" else self.bwd_ops
        return math.fsum(gpu.kernel_time(f, b) for f, b in ops)


@dataclass
class Profile:
    layers: list[LayerCounts]
    unused_params: int = 0  # parameters with requires_grad that the forward never touched
    unmapped_bwd_ops: int = 0  # backward operators run outside a known autograd node

    def totals(self) -> dict[str, int]:
        out = {"params": sum(l.params for l in self.layers)}
        for which in ("fwd", "bwd"):
            ops = [op for l in self.layers for op in getattr(l, f"{which}_ops")]
            out[f"{which}_flop"] = sum(f for f, _ in ops)
            out[f"{which}_bytes"] = sum(b for _, b in ops)
            out[f"{which}_kernels"] = len(ops)
        return out


# --------------------------------------------------------------------------- counting


def _tensor_bytes(t: torch.Tensor) -> int:
    """Distinct bytes of ``t``: broadcast (stride-0) dimensions count once."""
    n = 1
    for size, stride in zip(t.shape, t.stride()):
        if stride != 0:
            n *= size
    if t.numel() == 0:
        n = 0
    return n * t.element_size()


def _gathered_bytes(func: Any, args: Any, out: Any) -> tuple[torch.Tensor, int] | None:
    """For gather-like operators, (source tensor, bytes actually read from it): they read the
    rows they pick, not the whole source (an embedding lookup reads ``batch x seq`` rows of the
    table; the loss reads one log-probability per target)."""
    packet = func._overloadpacket
    if packet in (aten.embedding, aten.index_select, aten.gather) and isinstance(out, torch.Tensor):
        src = args[0]
        return src, out.numel() * src.element_size()
    if packet is aten.nll_loss_forward:
        src, target = args[0], args[1]
        return src, target.numel() * src.element_size()
    return None


def _op_cost(func: Any, args: Any, kwargs: Mapping[str, Any], out: Any) -> tuple[int, int] | None:
    """(flops, bytes) of one operator, or ``None`` if it moves no data."""
    if func.is_view or func._overloadpacket in _NO_TRAFFIC:
        return None
    gathered = _gathered_bytes(func, args, out)
    seen: set[int] = set()
    nbytes = 0
    for t in tree_flatten((args, kwargs, out))[0]:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            if gathered is not None and t is gathered[0]:
                nbytes += min(gathered[1], _tensor_bytes(t))
            else:
                nbytes += _tensor_bytes(t)
    flops = 0
    counter = flop_registry.get(func._overloadpacket)
    if counter is not None:
        flops = int(counter(*args, **kwargs, out_val=out))
    if flops == 0 and nbytes == 0:
        return None
    return flops, nbytes


class _Dispatch(TorchDispatchMode):
    def __init__(self, on_op: Any) -> None:
        super().__init__()
        self.on_op = on_op

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.on_op(func, args, kwargs, out)
        return out


class _Functions(TorchFunctionMode):
    """Sees each torch function's outputs, to map new autograd nodes to the running layer."""

    def __init__(self, on_outputs: Any) -> None:
        super().__init__()
        self.on_outputs = on_outputs

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        self.on_outputs(out)
        return out


class _ModuleStack:
    """The modules whose forward is running, innermost last (global forward hooks)."""

    def __init__(self) -> None:
        self.stack: list[torch.nn.Module] = []
        self._handles: list[Any] = []

    def __enter__(self) -> Self:
        from torch.nn.modules import module as M

        self._handles = [
            M.register_module_forward_pre_hook(lambda m, a: self.stack.append(m)),
            M.register_module_forward_hook(lambda m, a, o: self._pop(m), always_call=True),
        ]
        return self

    def _pop(self, m: torch.nn.Module) -> None:
        if self.stack and self.stack[-1] is m:
            self.stack.pop()

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self.stack.clear()


def _owners(model: torch.nn.Module) -> tuple[dict[int, str], dict[int, str], dict[int, Any]]:
    """(module id -> name for modules owning trainable parameters directly,
    param id -> name of its first owner in registration order, param id -> param).

    ``params`` is in registration order: ``model.parameters()`` order, a tied parameter
    once, where its first owner registers it."""
    candidates: dict[int, str] = {}
    owner: dict[int, str] = {}
    params: dict[int, Any] = {}
    for name, m in model.named_modules():
        own = [p for p in m._parameters.values() if p is not None and p.requires_grad]
        if not own:
            continue
        label = name or type(m).__name__
        candidates[id(m)] = label
        for p in own:
            if id(p) not in owner:
                owner[id(p)] = label
                params[id(p)] = p
    return candidates, owner, params


def _param_names(model: torch.nn.Module) -> dict[int, str]:
    """param id -> model-wide name (``layer1.0.conv1.weight``) at its first registration."""
    out: dict[int, str] = {}
    for name, p in model.named_parameters():  # a shared parameter once, where first seen
        out[id(p)] = name
    return out


def _meta_failure(w: Workload, exc: Exception) -> DearsimError:
    first = (str(exc).strip().splitlines() or [""])[0]
    return DearsimError(
        f"{w.key}: the training step failed on the meta device ({type(exc).__name__}: {first});"
        " the model must run on shapes alone (no .item(), no data-dependent control flow)"
    )


def _discover(
    w: Workload,
) -> tuple[list[str], dict[int, str], dict[int, Any], int, set[int]]:
    """Pass 1 (forward only): which module each parameter's layer is, and the layer order.

    Returns (layer names in forward order, param id -> layer name, param id -> param,
    number of unused trainable parameters, ids of parameters first used outside any module
    that owns parameters).
    """
    model = w.model
    candidates, owner, params = _owners(model)
    if not params:
        raise DearsimError(f"{w.key}: the model has no trainable parameters")
    reg_index = {name: i for i, name in enumerate(candidates.values())}
    first_op: dict[str, int] = {}
    first_use: dict[int, tuple[int, str]] = {}  # param id -> (op index, candidate)
    cand_at_use: dict[int, str | None] = {}  # param id -> innermost candidate at first use
    counter = [0]

    with _ModuleStack() as ms:

        def innermost() -> str | None:
            for m in reversed(ms.stack):
                name = candidates.get(id(m))
                if name is not None:
                    return name
            return None

        def on_op(func: Any, args: Any, kwargs: Any, out: Any) -> None:
            i = counter[0]
            counter[0] += 1
            cand = innermost()
            if cand is not None and not func.is_view:
                first_op.setdefault(cand, i)
            for t in tree_flatten((args, kwargs))[0]:
                if isinstance(t, torch.Tensor) and id(t) in params and id(t) not in first_use:
                    first_use[id(t)] = (i, cand or owner[id(t)])
                    cand_at_use[id(t)] = cand

        try:
            with torch.no_grad(), _Dispatch(on_op):
                w.loss_fn(w.run_forward())
        except DearsimError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's code failed
            raise _meta_failure(w, exc) from None

    assign: dict[int, str] = {}
    for pid in params:
        assign[pid] = first_use[pid][1] if pid in first_use else owner[pid]
    key: dict[str, float] = {}
    for pid, layer in assign.items():
        k = first_use[pid][0] if pid in first_use else math.inf
        key[layer] = min(key.get(layer, math.inf), k, first_op.get(layer, math.inf))
    order = sorted(key, key=lambda n: (key[n], reg_index.get(n, len(reg_index))))
    unused = sum(params[pid].numel() for pid in params if pid not in first_use)
    # Parameters first used outside every module that owns parameters (e.g. a parent calling
    # F.embedding(x, self.table.weight)): later uses outside any layer go to their layer.
    free = {pid for pid, (_, cand) in first_use.items() if cand_at_use[pid] is None}
    return order, assign, params, unused, free


def _add_tensors(
    layers: dict[str, LayerCounts],
    assign: dict[int, str],
    params: dict[int, Any],
    module_of_layer: dict[str, Any],
    full_names: dict[int, str],
) -> None:
    """Give each layer its parameter tensors: those its module registers, in its
    ``named_parameters(recurse=False)`` order, under their local names (``weight``); then
    any it was given that another module registers (first used here), under their model-wide
    names. ``assign`` is in the model's registration order."""
    for name, lc in layers.items():
        mine = [pid for pid in assign if assign[pid] == name]
        local = {id(p): n for n, p in module_of_layer[name].named_parameters(recurse=False)}
        pos = {n: i for i, n in enumerate(local.values())}
        own = sorted((pid for pid in mine if pid in local), key=lambda pid: pos[local[pid]])
        foreign = [pid for pid in mine if pid not in local]
        for pid in own + foreign:
            p = params[pid]
            nbytes = p.numel() * p.element_size()  # the gradient has the parameter's dtype
            lc.params += p.numel()
            lc.tensors += 1
            lc.param_bytes += nbytes
            lc.tensor_bytes.append(nbytes)
            lc.tensor_names.append(local.get(pid) or full_names[pid])


def profile(w: Workload) -> Profile:
    """Count every operator of one training step of ``w`` and charge it to a layer.

    Layers are the modules that directly own trainable parameters, in order of first forward
    use; a parameter owned by several modules (tied weights) belongs to the layer that uses it
    first. Pass 1 (forward only) finds the layers; pass 2 (forward, loss, backward) counts:

    * forward: an operator is charged to the innermost layer module running it; outside any
      layer, to the layer of a parameter it reads if that parameter's first use was outside
      every parameter-owning module, else to the layer charged last (the layer that ran just
      before; work before the first layer goes to the first layer);
    * backward: an operator is charged to the layer whose forward created the autograd node
      running it (gradient accumulation into a parameter: the parameter's layer); operators
      outside any node go to the layer charged last in the backward pass.
    """
    order, assign, params, unused, free = _discover(w)
    layers = {name: LayerCounts(name) for name in order}
    layer_of_module: dict[int, str] = {}
    module_of_layer: dict[str, torch.nn.Module] = {}
    for mname, m in w.model.named_modules():
        label = mname or type(m).__name__
        if label in layers and id(m) not in layer_of_module:
            layer_of_module[id(m)] = label
            module_of_layer.setdefault(label, m)
    _add_tensors(layers, assign, params, module_of_layer, _param_names(w.model))

    first = order[0]
    state: dict[str, Any] = {
        "phase": "fwd", "fwd": None, "bwd": order[-1], "last": first, "unmapped": 0
    }
    node_layer: dict[int, str] = {}
    keep: list[Any] = []  # keep mapped nodes alive so their sequence numbers stay unique

    with _ModuleStack() as ms:

        def fwd_target(args: Any, kwargs: Any) -> str:
            for m in reversed(ms.stack):
                name = layer_of_module.get(id(m))
                if name is not None:
                    return name
            for t in tree_flatten((args, kwargs))[0]:
                if isinstance(t, torch.Tensor) and id(t) in free:
                    return assign[id(t)]
            return state["fwd"] or first

        def bwd_target() -> str:
            node = torch._C._current_autograd_node()
            if node is not None:
                if type(node).__name__ == "AccumulateGrad":
                    name = assign.get(id(node.variable))
                    if name is not None:
                        return name
                name = node_layer.get(node._sequence_nr())
                if name is not None:
                    return name
                state["unmapped"] += 1
            return state["bwd"]

        def on_op(func: Any, args: Any, kwargs: Any, out: Any) -> None:
            if state["phase"] == "fwd":
                target = fwd_target(args, kwargs)
                state["fwd"] = target
            else:
                target = bwd_target()
                state["bwd"] = target
            state["last"] = target
            cost = _op_cost(func, args, kwargs, out)
            if cost is not None:
                lc = layers[target]
                (lc.fwd_ops if state["phase"] == "fwd" else lc.bwd_ops).append(cost)

        def on_outputs(out: Any) -> None:
            if state["phase"] != "fwd":
                return
            todo = [
                t.grad_fn
                for t in tree_flatten(out)[0]
                if isinstance(t, torch.Tensor) and t.grad_fn is not None
            ]
            while todo:
                node = todo.pop()
                if node is None or type(node).__name__ == "AccumulateGrad":
                    continue
                seq = node._sequence_nr()
                if seq in node_layer:
                    continue
                node_layer[seq] = state["last"]
                keep.append(node)
                todo.extend(n for n, _ in node.next_functions)

        try:
            with _Functions(on_outputs), _Dispatch(on_op):
                out = w.run_forward()
                loss = w.loss_fn(out)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise DearsimError(f"{w.key}: the loss must be a scalar tensor")
                if not loss.requires_grad:
                    raise DearsimError(
                        f"{w.key}: the loss does not depend on any trainable parameter"
                    )
                # The backward pass starts where the forward pass (and the loss) ended.
                state["phase"] = "bwd"
                state["bwd"] = state["fwd"] or order[-1]
                loss.backward()
        except DearsimError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's code failed
            raise _meta_failure(w, exc) from None
    for p in params.values():
        p.grad = None
    return Profile(
        [layers[n] for n in order], unused_params=unused, unmapped_bwd_ops=state["unmapped"]
    )


# --------------------------------------------------------------------------- traces


def update_time(layer: LayerCounts, gpu: GPU, optimizer: str) -> float:
    """Optimiser step for one layer: bytes per parameter at the sustained bandwidth, plus one
    kernel launch per parameter tensor."""
    per_elem = OPTIMIZERS[optimizer][0]
    return layer.param_bytes * per_elem / gpu.byte_rate + layer.tensors * gpu.launch_overhead_s


def _check_optimizer(optimizer: str) -> None:
    if optimizer not in OPTIMIZERS:
        raise ParamError(
            "optimizer", f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZERS)})"
        )


def to_trace(prof: Profile, gpu: GPU, optimizer: str, name: str, batch_size: int | None) -> Trace:
    """The trace of a profile: per-layer times on ``gpu`` and the per-tensor breakdown."""
    _check_optimizer(optimizer)
    ls = prof.layers
    return Trace.from_layers(
        fwd=[l.pass_time(gpu, "fwd") for l in ls],
        bwd=[l.pass_time(gpu, "bwd") for l in ls],
        size=[l.param_bytes for l in ls],
        update=[update_time(l, gpu, optimizer) for l in ls],
        names=[l.name for l in ls],
        name=name,
        batch_size=batch_size,
        tensors=[l.tensor_bytes for l in ls],
        tensor_names=[l.tensor_names for l in ls],
    )


def _versions(w: Workload) -> dict[str, str]:
    import importlib

    out = {"torch": torch.__version__}
    for pkg in w.packages:
        out[pkg] = str(getattr(importlib.import_module(pkg), "__version__", "unknown"))
    return out


def synthesise(
    w: Workload,
    gpu: GPU,
    *,
    optimizer: str | None = None,
    created: str,
    command: str | None = None,
) -> tuple[Trace, dict[str, Any]]:
    """Profile ``w`` and model it on ``gpu``: the trace and its header (see :func:`save`)."""
    optimizer = optimizer or w.default_optimizer
    _check_optimizer(optimizer)
    prof = profile(w)
    parts = [w.key, f"b{w.batch_size}"] if w.batch_size else [w.key]
    if "seq_len" in w.info:
        parts.append(f"s{w.info['seq_len']}")
    name = "-".join(parts + [gpu.short or gpu.name, "synth"])
    trace = to_trace(prof, gpu, optimizer, name, w.batch_size)
    totals = prof.totals()
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in w.model.parameters()})
    how = (
        "Synthesised, not measured. Gradient bytes are exact: the parameters of the real model "
        f"definition ({totals['params']:,} trainable parameters, one layer per module that owns "
        "parameters). Forward/backward times: per-operator FLOPs and bytes counted with PyTorch "
        "on the meta device, each operator timed with a roofline model of the GPU "
        f"({gpu.label}: {gpu.peak_flops / 1e12:g} TFLOP/s fp32 x {gpu.compute_eff:g}, "
        f"{gpu.mem_bw / 1e9:g} GB/s x {gpu.mem_eff:g}, {gpu.launch_overhead_s * 1e6:g} us per "
        f"operator) and summed per layer. Update: {optimizer} "
        f"({OPTIMIZERS[optimizer][0]} parameter-sized reads and writes per parameter at the "
        "sustained bandwidth). "
        "Details: counting, layers, gpu_model below and docs/traces.md."
    )
    provenance: dict[str, Any] = {
        "method": "synthesised",
        "created": created,
        "device": f"{gpu.label} (modelled, not measured)",
        "framework": ", ".join(f"{k} {v}" for k, v in _versions(w).items())
        + " (counted on the meta device; no GPU used)",
        "how": how,
        "gpu_model": gpu.describe(),
        "counting": COUNTING,
        "layers": LAYERING,
        "optimizer": {"name": optimizer, "bytes_per_param_element": OPTIMIZERS[optimizer][0],
                      "what": OPTIMIZERS[optimizer][1]},
        "workload": dict(w.info),
        "totals": totals,
    }
    if prof.unused_params:
        provenance["unused_params"] = prof.unused_params
    if command:
        provenance["command"] = command
    header: dict[str, Any] = {
        "name": name,
        "model": w.description,
        "batch_size": w.batch_size,
        "dtype": dtypes[0] if len(dtypes) == 1 else ",".join(dtypes),
        "provenance": provenance,
        "notes": (
            f"{trace.num_layers} layers, one per module that owns parameters; parameter-free "
            "work folded into the layer before it (docs/traces.md). Times come from a roofline "
            "model, not from a GPU: use them to compare schedules, not as a measurement."
        ),
    }
    if w.batch_size is None:
        del header["batch_size"]
    return trace, header
