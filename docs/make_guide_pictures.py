"""Draw the per-schedule timeline pictures of docs/guide.md: one iteration of each schedule
on ResNet-50 (batch 64), 10GbE, 16 workers, as ``docs/guide_<schedule>.png``. Run from the
repository root: ``python docs/make_guide_pictures.py``."""

from __future__ import annotations

from pathlib import Path

import dearsim
from dearsim import shipped
from dearsim.gantt import plot_timeline

TRACE, NETWORK, WORKERS = "resnet50-b64", "10GbE", 16
#: (file name, schedule, options)
PICTURES = (
    ("wfbp", "wfbp", {}),
    ("ddp", "ddp", {}),
    ("horovod", "horovod", {}),
    ("mgwfbp", "mgwfbp", {}),
    ("bytescheduler", "bytescheduler", {}),
    ("dear", "dear", {}),
    ("dear_next", "dear", {"prefetch": "next"}),
)
DOCS = Path(__file__).resolve().parent


def main() -> list[Path]:
    path = shipped.find_trace(TRACE)
    assert path is not None, TRACE
    trace = dearsim.load_trace(path)
    out = []
    for stem, name, options in PICTURES:
        r = dearsim.simulate(trace, NETWORK, WORKERS, name, options, iterations=5,
                             record_ops=True)
        extra = ", ".join(f"{k}: {v}" for k, v in options.items())
        title = f"{name}{f' ({extra})' if extra else ''}: ResNet-50, {NETWORK}, {WORKERS} workers"
        png, svg = plot_timeline([r], DOCS / f"guide_{stem}.png", title=title, dpi=100)
        svg.unlink()
        out.append(png)
        print(png)
    return out


if __name__ == "__main__":
    main()
