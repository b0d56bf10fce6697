"""The summary of a trace that ``dearsim trace show`` prints: layers, tensors, parameters and
bytes, time totals, the largest layers and the provenance. Needs no PyTorch."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from .errors import ParamError
from .trace import Trace

#: Bytes per element of the dtypes a trace header may name (to count parameters).
DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4, "tf32": 4,
    "float16": 2, "fp16": 2, "half": 2, "bfloat16": 2, "bf16": 2,
    "float64": 8, "fp64": 8, "double": 8,
}


def summarise(trace: Trace, top: int = 5) -> dict[str, Any]:
    """The numbers ``dearsim trace show`` prints, as a JSON-ready dict; ``top`` largest
    layers (by gradient bytes) are listed."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ParamError("top", f"must be >= 0, got {top!r}")
    meta = dict(trace.meta)
    dtype = meta.get("dtype")
    per = DTYPE_BYTES.get(str(dtype).lower()) if dtype else None
    bytes_total = trace.total_bytes
    fwd = math.fsum(trace.fwd)
    bwd = math.fsum(trace.bwd)
    upd = math.fsum(trace.update)
    order = sorted(range(trace.num_layers), key=lambda i: (-trace.size[i], i))[:top]
    largest = [
        {
            "index": i,
            "name": trace.names[i],
            "bytes": trace.size[i],
            "share": trace.size[i] / bytes_total if bytes_total else 0.0,
            "fwd_ms": trace.fwd[i] * 1e3,
            "bwd_ms": trace.bwd[i] * 1e3,
            "tensors": len(trace.tensors[i]),
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
        "tensors": trace.num_tensors,
        "has_breakdown": trace.has_breakdown,
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


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _wrap(label: str, value: Any, indent: int = 2, width: int = 100) -> list[str]:
    pad = " " * indent
    head = f"{pad}{label:<12}"
    text = str(value)
    lines = textwrap.wrap(text, width=width - len(head)) or [""]
    return [head + lines[0]] + [" " * len(head) + ln for ln in lines[1:]]


def format_summary(s: dict[str, Any]) -> str:
    """The text ``dearsim trace show`` prints for a :func:`summarise` dict."""
    out: list[str] = [str(s["source"] or s["name"])]
    out += _wrap("name", s["name"])
    if s["model"]:
        out += _wrap("model", s["model"])
    out += _wrap("batch size", s["batch_size"] if s["batch_size"] is not None else "-")
    out += _wrap("dtype", s["dtype"] or "- (not given; parameters assume 4 bytes each)")
    out += _wrap("layers", f"{s['layers']} ({s['layers_with_gradients']} with gradients)")
    if s["has_breakdown"]:
        tensors = f"{s['tensors']:,} (per-tensor breakdown given)"
    else:
        tensors = f"{s['tensors']:,} (no per-tensor breakdown: one per layer with gradients)"
    out += _wrap("tensors", tensors)
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
                   f"{'fwd ms':>9}  {'bwd ms':>9}  {'tensors':>7}")
        for r in s["largest"]:
            out.append(
                f"    {r['index']:>5}  {r['name']:<{w}}  {r['bytes']:>14,}  "
                f"{r['share'] * 100:>5.1f}%  {r['fwd_ms']:>9.3f}  {r['bwd_ms']:>9.3f}  "
                f"{r['tensors']:>7}"
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
