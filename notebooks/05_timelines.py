# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Timelines: what each schedule does, op by op
#
# The numbers of notebooks 1-3 come from a run that can be looked at op by op, two ways
# (`docs/timelines.md`):
#
# * a **Gantt picture** (`dearsim.gantt`): one iteration of several schedules on one time
#   axis, a compute row and a link row each;
# * a **trace file** (`dearsim.timeline`) in the PyTorch profiler's (Kineto's) Chrome-trace
#   format, which Perfetto, `chrome://tracing` and Holistic Trace Analysis open like a trace
#   of a real data-parallel job.
#
# Both need the ops of the run, which `simulate` records only when asked: `record_ops=True`.

# %%
# Setup: make `import dearsim` work from a checkout that was not pip-installed, and draw
# figures inline.
# %matplotlib inline
import sys
from pathlib import Path

try:
    import dearsim
except ImportError:  # a checkout without `pip install -e .`: find the repository root
    root = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "dearsim").is_dir())
    sys.path.insert(0, str(root))
    import dearsim

import json
import tempfile
from collections import Counter

import pandas as pd
from IPython.display import Image, display

from dearsim import shipped
from dearsim.gantt import plot_timeline, timeline_figure
from dearsim.timeline import to_chrome_trace, write_chrome_trace

OUT = Path(tempfile.mkdtemp(prefix="dearsim-nb05-"))
trace = dearsim.load_trace(shipped.find_trace("resnet50-b64"))
SCHEDULES = ("wfbp", "bytescheduler", "ddp", "dear")
results = [dearsim.simulate(trace, "10GbE", 16, s, iterations=5, record_ops=True)
           for s in SCHEDULES]
print(pd.DataFrame([
    {"schedule": r.scheduler, "iteration_ms": r.iteration_time_s * 1e3,
     "compute_ms": r.compute_s * 1e3, "link_busy_ms": r.comm_s * 1e3,
     "exposed_ms": r.exposed_comm_s * 1e3, "collectives": r.collectives}
    for r in results
]).to_string(index=False, float_format=lambda v: f"{v:.1f}"))

# %% [markdown]
# ## The Gantt picture
#
# One panel per schedule, aligned at the start of the first measured iteration's forward
# pass. Compute row: forward (blue), backward (orange) and the optimizer update (green).
# Link row: all-reduces (purple), or DeAR's reduce-scatters (red) and all-gathers (teal).
# Faded bars belong to the neighbouring iterations, and the dashed line is where the next
# iteration's forward pass starts: the distance from 0 to it is the iteration time.
#
# What to see: `wfbp` and `bytescheduler` send one all-reduce per tensor (161 of them) and
# pay 2(p-1) startup steps each, so the link is still busy long after the backward pass ends.
# `ddp` fuses the gradients into a few buckets that mostly run under the backward pass.
# `dear` splits each all-reduce in two: reduce-scatters during the backward pass, and the
# all-gathers under the *next* forward pass, each layer waiting only for its own group.

# %%
fig = timeline_figure(results, title="ResNet-50 on 10GbE, 16 workers")
display(fig)

# %% [markdown]
# `plot_timeline` writes the same picture as PNG and SVG files (the pictures of
# `docs/timelines.md` and the user guide were made this way, as is `dearsim plot timeline`).
# `iteration=` picks another iteration; any subset of schedules can be drawn.

# %%
png, svg = plot_timeline(results[2:], OUT / "ddp_dear.png")
print(png.name, svg.name)
display(Image(filename=str(png)))

# %% [markdown]
# ## The Kineto trace
#
# `to_chrome_trace(result, trace)` returns the JSON-ready dict; `write_chrome_trace` writes
# it (`.json`, or `.json.gz` compressed). It holds the measured iterations: compute ops on a
# `stream 7 (compute)` track, collectives, named as NCCL names its kernels, on a `stream 20
# (NCCL)` track, iteration markers, and flow arrows from the backward op that makes a
# collective's gradients ready to the collective. Open the file in https://ui.perfetto.dev.

# %%
dear = results[-1]
doc = to_chrome_trace(dear, trace)
events = doc["traceEvents"]
print(doc["traceName"])
kinds = Counter(
    (e["ph"], e.get("cat", ""), e["name"].split()[0] if e.get("cat") == "kernel" else e["name"])
    for e in events
)
counts = pd.DataFrame([{"ph": k[0], "cat": k[1], "name": k[2], "events": n}
                       for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])])
print(counts.to_string(index=False))
path = write_chrome_trace(dear, trace, OUT / "dear.json.gz")
print(f"wrote {path.name}: {path.stat().st_size / 1024:.0f} KiB")

# %% [markdown]
# The collectives carry the arguments PyTorch records (`Collective name`, `In msg nelems`,
# `Group size`, ...) and dearsim's own (`bytes`, `layers`, `iteration`, when it was posted).
# Summed per kind over the exported iterations, their durations are the link's busy time:

# %%
coll = pd.DataFrame([
    {"collective": e["args"]["Collective name"], "iteration": e["args"]["iteration"],
     "layers": tuple(e["args"]["layers"]), "MiB": e["args"]["bytes"] / 2**20,
     "ms": e["dur"] / 1e3}
    for e in events if e.get("cat") == "kernel" and e["name"].startswith("nccl")
])
print(coll.head(10).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
its = len(doc["dearsim"]["iterations"])
print(f"link busy per iteration from the trace: {coll['ms'].sum() / its:.2f} ms; "
      f"reported comm_s: {dear.comm_s * 1e3:.2f} ms")
print(json.dumps({k: doc["dearsim"][k] for k in ("scheduler", "workers", "iterations")}))
