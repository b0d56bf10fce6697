"""Model builders for trace synthesis: the real model definitions, random weights, no downloads.

Each builder returns a :class:`Workload`: the model (on the ``meta`` device by default, so no
memory is allocated and nothing is computed), one example batch and the loss whose backward
pass the trace times. Needs PyTorch and, per model, torchvision, timm or transformers (the
``synth`` extra).

Models by name:

* ``resnet50``, ``densenet201`` and every other torchvision classification model
  (``torchvision.models.get_model(name, weights=None)``), input ``batch x 3 x 224 x 224``
  (``image_size``), loss cross-entropy over 1000 classes;
* ``inception_v4``: timm's ``inception_v4`` (Szegedy et al. 2016; the same architecture and
  parameter count, 42,679,816, as the Cadene ``pretrainedmodels`` copy the DeAR study ran),
  input 224 x 224 as in the study's benchmark script;
* ``bert-base`` / ``bert-large``: transformers ``BertForPreTraining`` built from a
  ``BertConfig`` (vocabulary 30522 padded to 30528, a multiple of 8; 512 positions; 2 token
  types), eager attention, input ``batch x seq_len`` token ids, loss masked-LM cross-entropy
  over every position plus next-sentence cross-entropy (the DeAR study's
  ``BertPretrainingCriterion``);
* ``MODULE:FUNCTION``: a user function returning ``(model, example_input)`` or
  ``(model, example_input, loss_fn)``; see :func:`user_workload`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DearsimError, ParamError

INSTALL_HINT = "pip install 'dearsim[synth]'"
BERT_VOCAB = 30522  # the uncased BERT WordPiece vocabulary
DEFAULT_IMAGE_SIZE = 224
DEFAULT_SEQ_LEN = 128  # when seq_len is not given for a BERT model

# name -> (hidden size, layers, attention heads, FFN size, pretty name)
BERT_CONFIGS = {
    "bert-base": (768, 12, 12, 3072, "BERT-Base"),
    "bert-large": (1024, 24, 16, 4096, "BERT-Large"),
}
_ALIASES = {
    "bert_base": "bert-base",
    "bertbase": "bert-base",
    "bert_large": "bert-large",
    "bertlarge": "bert-large",
    "inception-v4": "inception_v4",
    "inceptionv4": "inception_v4",
}


def require(module: str) -> Any:
    """Import ``module`` or fail with one clear line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = "PyTorch" if module == "torch" else module
        if exc.name in (None, module) or module.startswith(f"{exc.name}."):
            raise DearsimError(f"dearsim trace synth needs {what}: {INSTALL_HINT}") from None
        raise DearsimError(f"cannot import {module}: {exc}") from None


@dataclass
class Workload:
    """A model, an example batch and a loss: one training step to profile."""

    key: str  # short name used in trace names, e.g. "resnet50"
    model: Any  # torch.nn.Module
    args: tuple[Any, ...]  # positional inputs of model(...)
    kwargs: dict[str, Any]  # keyword inputs of model(...)
    loss_fn: Callable[[Any], Any]  # model output -> scalar loss tensor
    description: str  # the trace header's ``model`` field
    batch_size: int | None
    default_optimizer: str = "sgd"
    info: dict[str, Any] = field(default_factory=dict)  # extra provenance
    packages: tuple[str, ...] = ()  # packages whose versions the provenance records

    def run_forward(self) -> Any:
        return self.model(*self.args, **self.kwargs)


def canonical_name(name: str) -> str:
    n = name.strip()
    low = n.lower()
    return _ALIASES.get(low, low)


def build(
    name: str,
    batch_size: int,
    *,
    seq_len: int | None = None,
    image_size: int | None = None,
    device: str = "meta",
) -> Workload:
    """Build the workload for ``name`` (see the module docstring).

    Bad arguments raise :class:`~dearsim.errors.ParamError` naming the parameter."""
    for param, value, optional in (
        ("batch_size", batch_size, False), ("seq_len", seq_len, True),
        ("image_size", image_size, True),
    ):
        if optional and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParamError(param, f"must be a positive integer, got {value!r}")
    require("torch")
    if ":" in name:
        return user_workload(name, batch_size, seq_len=seq_len, device=device)
    key = canonical_name(name)
    if key in BERT_CONFIGS:
        if image_size is not None:
            raise ParamError("image_size", f"applies to image models, not {name}")
        return bert(key, batch_size, seq_len or DEFAULT_SEQ_LEN, device=device)
    if seq_len is not None:
        raise ParamError(
            "seq_len", f"applies to BERT models and MODULE:FUNCTION models, not {name}"
        )
    if key == "inception_v4":
        return inception_v4(batch_size, image_size or DEFAULT_IMAGE_SIZE, device=device)
    return torchvision_model(key, batch_size, image_size or DEFAULT_IMAGE_SIZE, device=device)


# --------------------------------------------------------------------------- image models


def _classification_loss(torch: Any, batch_size: int, device: str) -> Callable[[Any], Any]:
    import torch.nn.functional as F

    target = torch.zeros(batch_size, dtype=torch.long, device=device)

    def loss_fn(out: Any) -> Any:
        # torchvision's inception_v3/googlenet return named tuples with auxiliary logits in
        # training mode: every (batch x classes) tensor gets its own cross-entropy.
        outs = [out] if isinstance(out, torch.Tensor) else [o for o in out if o is not None]
        total = None
        for o in outs:
            term = F.cross_entropy(o, target)
            total = term if total is None else total + term
        return total

    return loss_fn


def _images(torch: Any, batch_size: int, image_size: int, device: str) -> Any:
    return torch.empty(batch_size, 3, image_size, image_size, device=device)


def torchvision_model(
    name: str, batch_size: int, image_size: int, device: str = "meta"
) -> Workload:
    torch = require("torch")
    tv = require("torchvision")
    available = tv.models.list_models(module=tv.models)
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name, [*available, *BERT_CONFIGS, "inception_v4"], 3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DearsimError(
            f"unknown model {name!r}{hint}: give bert-base, bert-large, inception_v4, a "
            f"torchvision classification model (e.g. resnet50, densenet201, vgg16) or "
            f"MODULE:FUNCTION"
        )
    with torch.device(device), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. inception_v3's note on its default init
        model = tv.models.get_model(name, weights=None)
    model.train()
    return Workload(
        key=name,
        model=model,
        args=(_images(torch, batch_size, image_size, device),),
        kwargs={},
        loss_fn=_classification_loss(torch, batch_size, device),
        description=f"{name} (torchvision {tv.__version__} models.{name}, weights=None), "
        f"input {batch_size}x3x{image_size}x{image_size}, cross-entropy loss",
        batch_size=batch_size,
        info={"image_size": image_size, "source": f"torchvision.models.get_model({name!r})"},
        packages=("torchvision",),
    )


def inception_v4(batch_size: int, image_size: int, device: str = "meta") -> Workload:
    torch = require("torch")
    timm = require("timm")
    with torch.device(device):
        model = timm.create_model("inception_v4", pretrained=False)
    model.train()
    return Workload(
        key="inception_v4",
        model=model,
        args=(_images(torch, batch_size, image_size, device),),
        kwargs={},
        loss_fn=_classification_loss(torch, batch_size, device),
        description=f"Inception-v4 (timm {timm.__version__} inception_v4, pretrained=False), "
        f"input {batch_size}x3x{image_size}x{image_size}, cross-entropy loss",
        batch_size=batch_size,
        info={"image_size": image_size, "source": "timm.create_model('inception_v4')"},
        packages=("timm",),
    )


# --------------------------------------------------------------------------- BERT


def padded_vocab(vocab: int = BERT_VOCAB, multiple: int = 8) -> int:
    return vocab + (-vocab) % multiple


def bert(key: str, batch_size: int, seq_len: int, device: str = "meta") -> Workload:
    torch = require("torch")
    transformers = require("transformers")
    import torch.nn.functional as F

    hidden, layers, heads, ffn, pretty = BERT_CONFIGS[key]
    if seq_len > 512:
        raise ParamError("seq_len", f"must be at most 512 (BERT's position table), got {seq_len}")
    vocab = padded_vocab()
    config = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=512,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    with torch.device(device):
        model = transformers.BertForPreTraining(config)
    model.train()
    ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
    # An additive mask already in 4-D form (batch x 1 x 1 x seq), as BERT implementations of
    # the study's time built it; transformers passes 4-D masks through unchanged.
    mask = torch.zeros(batch_size, 1, 1, seq_len, device=device)
    mlm_labels = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
    nsp_labels = torch.zeros(batch_size, dtype=torch.long, device=device)

    def loss_fn(out: Any) -> Any:
        mlm = F.cross_entropy(out.prediction_logits.reshape(-1, vocab), mlm_labels.reshape(-1))
        nsp = F.cross_entropy(out.seq_relationship_logits.reshape(-1, 2), nsp_labels)
        return mlm + nsp

    heads_note = (
        "BertForPreTraining: encoder with embeddings and pooler, masked-LM head (transform "
        "dense + LayerNorm, decoder bias; decoder weight tied to the word embeddings and "
        "counted once) and next-sentence head"
    )
    return Workload(
        key=key,
        model=model,
        args=(),
        kwargs={"input_ids": ids, "token_type_ids": ids, "attention_mask": mask},
        loss_fn=loss_fn,
        description=f"{pretty} ({heads_note}; transformers {transformers.__version__}, "
        f"random weights), hidden {hidden}, {layers} layers, {heads} heads, FFN {ffn}, "
        f"vocabulary {BERT_VOCAB} padded to {vocab}, sequence length {seq_len}",
        batch_size=batch_size,
        info={
            "seq_len": seq_len,
            "vocab_size": vocab,
            "heads": heads_note,
            "attention": "eager (explicit matmul + softmax + dropout)",
            "source": "transformers.BertForPreTraining(BertConfig(...))",
        },
        packages=("transformers",),
    )


# --------------------------------------------------------------------------- user models


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _load_function(spec: str) -> Callable[..., Any]:
    mod_name, _, fn_name = spec.rpartition(":")
    if not mod_name or not fn_name:
        raise ParamError("model", f"{spec!r}: expected MODULE:FUNCTION")
    try:
        if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise ParamError("model", f"{spec!r}: file {mod_name} not found")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None:
                raise ParamError("model", f"{spec!r}: cannot import {mod_name}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")  # modules in the working directory, as `python -m`
            module = importlib.import_module(mod_name)
    except DearsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module
        raise ParamError(
            "model",
            f"{spec!r}: cannot import {mod_name}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise ParamError("model", f"{spec!r}: {mod_name} has no attribute {fn_name!r}")
    if not callable(fn):
        raise ParamError("model", f"{spec!r}: {mod_name}.{fn_name} is not callable")
    return fn


def _call_kwargs(fn: Callable[..., Any], **wanted: Any) -> dict[str, Any]:
    """The keyword arguments among ``wanted`` that ``fn`` accepts."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in wanted.items() if v is not None}
    return {k: v for k, v in wanted.items() if k in params and v is not None}


def user_workload(
    spec: str, batch_size: int, *, seq_len: int | None = None, device: str = "meta"
) -> Workload:
    """A workload from ``MODULE:FUNCTION`` (or ``path/to/file.py:FUNCTION``).

    The function is called with ``batch_size=`` (and ``seq_len=`` when given) if it accepts
    them, under ``torch.device("meta")`` so that tensors it creates without an explicit
    device cost nothing. It returns ``(model, example_input)`` or
    ``(model, example_input, loss_fn)``: ``example_input`` is a tensor, a tuple of positional
    inputs or a dict of keyword inputs; ``loss_fn(output)`` returns the scalar to
    differentiate (default: the output itself if it is a scalar, else the sum of the first
    tensor in the output). Model and inputs are moved to the meta device.
    """
    torch = require("torch")
    fn = _load_function(spec)
    kwargs = _call_kwargs(fn, batch_size=batch_size, seq_len=seq_len)
    try:
        with torch.device(device):
            result = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's code failed
        raise ParamError(
            "model",
            f"{spec!r}: the function raised {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise ParamError(
            "model",
            f"{spec!r}: the function must return (model, example_input) or "
            f"(model, example_input, loss_fn), got {type(result).__name__}"
        )
    model, example = result[0], result[1]
    loss_fn = result[2] if len(result) == 3 else None
    if not isinstance(model, torch.nn.Module):
        raise ParamError(
            "model",
            f"{spec!r}: the first returned value must be a torch.nn.Module, "
            f"got {type(model).__name__}"
        )
    if loss_fn is not None and not callable(loss_fn):
        raise ParamError("model", f"{spec!r}: the returned loss_fn is not callable")
    model = model.to(device)
    model.train()

    def move(x: Any) -> Any:
        return x.to(device) if isinstance(x, torch.Tensor) else x

    args: tuple[Any, ...]
    if isinstance(example, torch.Tensor):
        args, kw = (move(example),), {}
    elif isinstance(example, dict):
        args, kw = (), {k: move(v) for k, v in example.items()}
    elif isinstance(example, (tuple, list)):
        args, kw = tuple(move(v) for v in example), {}
    else:
        raise ParamError(
            "model",
            f"{spec!r}: example_input must be a tensor, a tuple of inputs or a dict "
            f"of keyword inputs, got {type(example).__name__}"
        )

    def default_loss(out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            return out if out.dim() == 0 else out.sum()
        flat, _ = torch.utils._pytree.tree_flatten(out)
        for t in flat:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                return t if t.dim() == 0 else t.sum()
        raise ParamError("model", f"{spec!r}: the model's output has no floating-point tensor")

    if seq_len is not None and "seq_len" not in kwargs:
        raise ParamError(
            "seq_len", f"given as {seq_len}, but {spec} takes no seq_len"
        )
    if "batch_size" not in kwargs:
        first = next((t for t in (*args, *kw.values()) if isinstance(t, torch.Tensor)), None)
        got = first.shape[0] if first is not None and first.dim() > 0 else None
        if got != batch_size:
            raise ParamError(
                "batch_size",
                f"is {batch_size}, but {spec} takes no batch_size and its example input has "
                f"batch {got}",
            )
    key = spec.rpartition(":")[2]
    return Workload(
        key=key,
        model=model,
        args=args,
        kwargs=kw,
        loss_fn=loss_fn or default_loss,
        description=f"{spec} ({type(model).__name__}, user-supplied)",
        batch_size=batch_size,
        info={"source": spec, "loss": "user loss_fn" if loss_fn else "sum of the output"},
    )
