"""Trace synthesis: per-layer traces from real model definitions and a GPU roofline model.

``dearsim.synth.gpus`` (the GPU models) needs no PyTorch, nor does importing
``dearsim.synth.api`` (:func:`~dearsim.synth.api.synthesise_trace` imports it when called).
``dearsim.synth.models`` and ``dearsim.synth.profile`` import PyTorch (the ``synth`` extra:
``pip install 'dearsim[synth]'``); import them only when synthesising. See ``docs/traces.md``.
"""

from __future__ import annotations

from .gpus import GPU, GPUS, get_gpu

__all__ = ["GPU", "GPUS", "get_gpu"]
