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
# # 1. Quick start: one workload, every schedule
#
# dearsim replays one data-parallel training iteration: each worker runs the forward and
# backward pass of a per-layer compute trace, and the gradients are all-reduced over one
# shared link whose cost is an alpha-beta model (`docs/model.md`). The schedules differ only
# in *when* and *in which groups* gradients are sent.
#
# This notebook loads a shipped trace, runs one schedule, compares all six, and then builds
# a workload and a network of its own from plain numbers. Everything runs in a second or two.

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

import tempfile

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, display

from dearsim import plots, shipped

OUT = Path(tempfile.mkdtemp(prefix="dearsim-nb01-"))  # pictures written by dearsim go here
pd.set_option("display.width", 120)
print("dearsim", dearsim.__version__)

# %% [markdown]
# ## A shipped trace
#
# The repository ships per-layer traces of the DeAR study's models (`docs/traces.md`):
# forward and backward time per layer in seconds, and the gradient bytes each layer produces.
# `shipped.find_trace` finds one by name, from a checkout or an installed wheel.

# %%
trace = dearsim.load_trace(shipped.find_trace("resnet50-b64"))
print(f"{trace.name}: {trace.num_layers} layers, {len(trace.grad_layers)} with gradients, "
      f"{trace.total_bytes / 2**20:.1f} MiB of gradients, "
      f"compute {trace.compute_time * 1e3:.1f} ms per iteration, batch {trace.batch_size}")
trace.to_frame().head(8)

# %% [markdown]
# ## One schedule
#
# `dearsim.simulate` runs ten iterations (two of warm-up) and reports the steady state:
# the iteration time, the compute-stream busy time, the link busy time and the exposed
# communication (iteration time minus compute). `buckets` are the gradient groups the
# schedule sent, as `(first_layer, last_layer)`.

# %%
r = dearsim.simulate(trace, "10GbE", workers=16, scheduler="dear")
print(f"iteration {r.iteration_time_s * 1e3:.1f} ms, compute {r.compute_s * 1e3:.1f} ms, "
      f"link busy {r.comm_s * 1e3:.1f} ms, exposed communication {r.exposed_comm_s * 1e3:.1f} ms")
print(f"{len(r.buckets)} groups, throughput {r.throughput:.0f} samples/s")

# %% [markdown]
# ## Every schedule on the same setting
#
# `dearsim.compare` runs every registered schedule with its defaults and ranks them. The
# speedup column is `T_wfbp / T`: 2.0 reads "twice as fast as wait-free backpropagation".

# %%
cmp = dearsim.compare(trace, "10GbE", workers=16)
table = cmp.to_frame()[["scheduler", "iteration_time_s", "exposed_comm_s", "collectives",
                        "speedup_over_wfbp"]]
print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))

# %% [markdown]
# The breakdown below puts each schedule's iteration on one bar: compute (blue) plus the
# communication it could not hide (orange), and under it the link's total busy time (grey).
# On 10 Gb Ethernet with 16 workers the all-reduce startup cost dominates the schedules that
# send one message per tensor (`wfbp`, `bytescheduler`), so the fusing schedules win.

# %%
png = plots.breakdown(cmp.results, OUT / "breakdown.png",
                      title="ResNet-50, 10GbE, 16 workers")
display(Image(filename=str(png)))

# %% [markdown]
# ## A workload and a network of your own
#
# A trace is three lists (seconds and bytes per layer); a network is a preset name, a YAML
# file, or a mapping with the alpha-beta numbers: `alpha_s` is the per-step latency of the
# ring, `beta_s_per_byte` the time per byte (8e-10 s/B is 10 Gb/s). Here: a toy model of
# eight layers, its gradients growing towards the output, on a 25 Gb/s network, from 2 to
# 32 workers.

# %%
toy = dearsim.Trace.from_layers(
    fwd=[2e-3] * 8,
    bwd=[4e-3] * 8,
    size=[1_000_000 * (k + 1) for k in range(8)],
    name="toy",
    batch_size=32,
)
net = {"name": "25GbE", "alpha_s": 2e-5, "beta_s_per_byte": 8e-9 / 25}
rows = []
for p in (2, 4, 8, 16, 32):
    for sched in ("wfbp", "ddp", "mgwfbp", "dear"):
        res = dearsim.simulate(toy, net, p, sched)
        rows.append({"workers": p, "schedule": sched, "iteration_ms": res.iteration_time_s * 1e3})
frame = pd.DataFrame(rows).pivot(index="workers", columns="schedule", values="iteration_ms")
print(frame.round(2).to_string())

# %% [markdown]
# Compute is 48 ms per iteration whatever the worker count (dotted line); the rest is
# communication the schedule could not hide. This link is fast enough that sending each
# layer's gradient as soon as it is ready (`wfbp`, and `mgwfbp`, which merges layers only
# when that hides startup costs) hides almost all of it. DDP's and DeAR's 25 MiB groups
# hold the gradients back until a group is full, so the last group's collective runs after
# the backward pass: fusion pays off when startup costs dominate, as on 10 Gb Ethernet above.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for sched in frame.columns:
    ax.plot(frame.index, frame[sched], marker="o", label=sched)
ax.axhline(toy.compute_time * 1e3, color="grey", linestyle=":", label="compute only")
ax.set_xscale("log", base=2)
ax.set_xticks(frame.index, [str(p) for p in frame.index])
ax.set_xlabel("workers")
ax.set_ylabel("iteration time (ms)")
ax.set_title("toy model on 25 Gb/s")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
