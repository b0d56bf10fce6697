"""Draw the timeline pictures of docs/timelines.md and the README: one iteration of wfbp,
bytescheduler, ddp and dear at 64 workers on 10GbE for each study trace, as
``docs/timeline_<trace>_10GbE.png`` (and ``.svg``). Run from the repository root:
``python docs/make_timelines.py [--svg]``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import dearsim
from dearsim import shipped
from dearsim.gantt import plot_timeline

WORKERS = 64
NETWORK = "10GbE"
SCHEDULES = ("wfbp", "bytescheduler", "ddp", "dear")
TRACES = (
    "resnet50-b64",
    "densenet201-b32",
    "inception_v4-b64",
    "bert-base-b64-s64",
    "bert-large-b32-s64",
)
DOCS = Path(__file__).resolve().parent


def main(svg: bool = False) -> None:
    for name in TRACES:
        path = shipped.find_trace(name)
        assert path is not None, name
        trace = dearsim.load_trace(path)
        results = [dearsim.simulate(trace, NETWORK, WORKERS, s, record_ops=True) for s in SCHEDULES]
        model = re.sub(r"-b\d+.*$", "", name)  # resnet50-b64 -> resnet50
        stem = DOCS / f"timeline_{model}_{NETWORK}"
        png, svg_path = plot_timeline(results, stem.with_suffix(".png"))
        if not svg:
            svg_path.unlink()
        print(png)


if __name__ == "__main__":
    main(svg="--svg" in sys.argv[1:])
