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
# # 7. Compute and communication slowing each other down
#
# A schedule that overlaps communication with compute assumes the two do not get in each
# other's way. They do: on GPUs the communication kernels take SMs and memory bandwidth from
# the compute kernels, on CPUs the collective's threads take the cores. dearsim models both
# directions (`docs/model.md` 2.6), off by default:
#
# * `interference` x: while a collective is in flight, compute runs at rate `1/(1+x)`;
# * `comm_interference` y: while any worker computes, the collective in flight runs at rate
#   `1/(1+y)`.
#
# This notebook works one small case by hand, then asks how much of DeAR's lead over DDP
# survives contention, on ResNet-50 with 64 workers over 10GbE.

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

import matplotlib.pyplot as plt
import pandas as pd

from dearsim import Cluster
from dearsim.shipped import find_trace

pd.set_option("display.width", 120)
print("dearsim", dearsim.__version__)

# %% [markdown]
# ## One all-reduce under one backward op
#
# Two layers: forward 1 ms each, backward 2 ms (layer 0) and 1 ms (layer 1); layer 1's
# 1.5 MB gradient takes 1.5 ms to all-reduce on a network of 1 ns per byte with 2 workers.
# Per-tensor WFBP posts it when layer 1's backward ends, at 3 ms, and it runs beside
# layer 0's backward (3 to 5 ms). With `y = 1` it does only half a millisecond of work per
# millisecond while layer 0 computes: 1 ms of its 1.5 ms by 5 ms, the rest alone, so it
# ends at 5.5 ms and so does the iteration. With `x = y = 1` both run at half speed from 3 ms:
# the all-reduce ends at 6 ms, the backward op at 6.5 ms.

# %%
ms = 1e-3
trace = dearsim.Trace.from_layers([1 * ms, 1 * ms], [2 * ms, 1 * ms], [0, 1_500_000])
net = dearsim.AlphaBeta(0.0, 1e-9)
rows = []
for x, y in [(0, 0), (1, 0), (0, 1), (1, 1)]:
    r = dearsim.simulate(trace, net, Cluster(2, interference=x, comm_interference=y), "wfbp",
                         iterations=6, warmup=2, record_ops=True)
    ar = r.raw.collectives[0]
    b0 = next(o for o in r.raw.ops if (o.kind.value, o.layer, o.iteration) == ("bwd", 0, 0))
    rows.append({"x": x, "y": y, "all-reduce ms": f"{ar.start / ms:.2f}-{ar.end / ms:.2f}",
                 "layer 0 backward ms": f"{b0.start / ms:.2f}-{b0.end / ms:.2f}",
                 "iteration ms": round(r.iteration_time_s / ms, 3)})
pd.DataFrame(rows)

# %% [markdown]
# ## DeAR against DDP under contention
#
# `x = 0.19` is the mean compute slowdown under overlapped communication measured on
# A100/H100/MI250 GPUs (arXiv 2507.03114), 0.4 about its maximum; `y` of 0.5 and 1 bracket
# what `dearsim collect interference` measured for collectives beside compute on a CPU host.
# Both parameters need the SimPy engine.

# %%
resnet = dearsim.load_trace(find_trace("resnet50-b64"))
grid = [(x, y) for x in (0.0, 0.19, 0.4) for y in (0.0, 0.5, 1.0)]
rows = []
for x, y in grid:
    cluster = Cluster(64, interference=x, comm_interference=y)
    for name in ("ddp", "dear", "fsdp"):
        r = dearsim.simulate(resnet, "10GbE", cluster, name, iterations=8, warmup=2)
        rows.append({"x": x, "y": y, "schedule": name, "ms": r.iteration_time_s * 1e3})
frame = pd.DataFrame(rows)
times = frame.pivot_table(index=["x", "y"], columns="schedule", values="ms", sort=False)
times["DeAR's lead over DDP"] = times["ddp"] / times["dear"] - 1
times.round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
for ax, x in zip(axes, (0.0, 0.19, 0.4)):
    part = frame[frame["x"] == x]
    for name, rows_ in part.groupby("schedule", sort=False):
        ax.plot(rows_["y"], rows_["ms"], marker="o", label=name)
    ax.set_title(f"ResNet-50, 64 workers, 10GbE, x = {x:g}")
    ax.set_xlabel("comm_interference y")
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel("iteration time (ms)")
axes[-1].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The two directions hurt different schedules. Slowing compute under communication (`x`)
# costs DeAR more than DDP: DeAR also overlaps its all-gathers with the forward pass, so more
# of its compute runs beside the link. Slowing communication under compute (`y`) costs DDP
# more, and DeAR, a little behind DDP here without contention, moves ahead. Which one a
# cluster has, and how much, is a measurement (`dearsim collect interference`,
# `docs/collect.md`); the shipped `configs/interference.yaml` runs the same grid on two
# models with the plot `dearsim sweep` draws.
