"""Regenerate the shipped traces: the DeAR study's five models and the VGG-16 example
(RTX 2080 Ti, fp32).

Each file is what ``dearsim trace synth`` writes for the command recorded in its
``provenance.command`` (a version-2 trace with the per-tensor columns ``tensor_bytes`` and
``tensor_names``); this script makes the same traces with the library
(:func:`dearsim.synth.api.synthesise_trace`, not the command line) with a fixed creation
date, so the files are byte-for-byte reproducible for the same versions of torch, torchvision,
timm and transformers (recorded in ``provenance.framework``). Needs the ``synth`` extra:

    pip install -e '.[synth]'
    python traces/make_synth.py            # rewrite the six files
    python traces/make_synth.py --check    # exit 1 if any file would change

The equivalent command lines are::

    dearsim trace synth --model vgg16 --batch-size 32 --gpu rtx2080ti --created 2026-11-25 --out traces/vgg16-b32.csvy
    dearsim trace synth --model resnet50 --batch-size 64 --gpu rtx2080ti --created 2026-11-25 --out traces/resnet50-b64.csvy
    dearsim trace synth --model densenet201 --batch-size 32 --gpu rtx2080ti --created 2026-11-25 --out traces/densenet201-b32.csvy
    dearsim trace synth --model inception_v4 --batch-size 64 --gpu rtx2080ti --created 2026-11-25 --out traces/inception_v4-b64.csvy
    dearsim trace synth --model bert-base --batch-size 64 --seq-len 64 --gpu rtx2080ti --created 2026-11-25 --out traces/bert-base-b64-s64.csvy
    dearsim trace synth --model bert-large --batch-size 32 --seq-len 64 --gpu rtx2080ti --created 2026-11-25 --out traces/bert-large-b32-s64.csvy
"""

from __future__ import annotations

import sys
from pathlib import Path

from dearsim.synth.api import synthesise_trace
from dearsim.trace import format_trace

CREATED = "2026-11-25"
GPU = "rtx2080ti"
# (file, model, batch size, sequence length): the models and per-GPU batch sizes of the study.
TRACES = [
    ("vgg16-b32.csvy", "vgg16", 32, None),  # the quick start's example (not in the study)
    ("resnet50-b64.csvy", "resnet50", 64, None),
    ("densenet201-b32.csvy", "densenet201", 32, None),
    ("inception_v4-b64.csvy", "inception_v4", 64, None),
    ("bert-base-b64-s64.csvy", "bert-base", 64, 64),
    ("bert-large-b32-s64.csvy", "bert-large", 32, 64),
]


def render(model: str, batch: int, seq_len: int | None) -> tuple[str, str]:
    """(file text, one-line summary) of one trace."""
    trace, header = synthesise_trace(model, batch, GPU, seq_len=seq_len, created=CREATED)
    params = header["provenance"]["totals"]["params"]
    summary = (f"{trace.num_layers} layers, {trace.num_tensors} tensors, {params:,} parameters, "
               f"fwd {sum(trace.fwd) * 1e3:.1f} + bwd {sum(trace.bwd) * 1e3:.1f} "
               f"+ update {sum(trace.update) * 1e3:.1f} ms")
    return format_trace(trace, header), summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    here = Path(__file__).resolve().parent
    changed = []
    for fname, model, batch, seq_len in TRACES:
        text, summary = render(model, batch, seq_len)
        path = here / fname
        if check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{'ok     ' if same else 'CHANGED'} {path.name}: {summary}")
            if not same:
                changed.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.name}: {summary}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
