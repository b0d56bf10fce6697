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
# # 6. Stragglers, jitter and nodes of GPUs
#
# Real clusters are not a ring of identical GPUs: one worker is slower, every op varies a
# little from iteration to iteration, and GPUs sit in nodes with a fast link inside and a
# slower one between them (`docs/clusters.md`, `docs/model.md` 2.5-2.6). This notebook asks
# two questions on ResNet-50 with 64 workers:
#
# 1. How much of a straggler's extra compute does each schedule pay, and what does that do
#    to the p99 iteration time?
# 2. On the DeAR study's cluster (nodes of 4 GPUs on PCIe, 10GbE between nodes), how much do
#    hierarchical collectives help each schedule, compared with one flat ring?

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

from dearsim.config import load_config
from dearsim.plots import load_results, metric_figure
from dearsim.sweep import run_sweep

WORK = Path(tempfile.mkdtemp(prefix="dearsim-nb06-"))
pd.set_option("display.width", 120)
print("dearsim", dearsim.__version__, "- results go to", WORK)

# %% [markdown]
# ## One straggler among 64 jittered workers
#
# A `cluster:` block makes the last rank `straggler_slowdown` times slower and jitters every
# op of every worker (log-normal, mean 1, coefficient of variation 5%, seeded by `seed`).
# The straggler's slowdown is a sweep axis. With jitter the iteration times are random: 40
# measured iterations give a stable mean; for a p99, simulate at least 100 (model.md 6). The
# fast evaluator gives the engine's numbers (within 1e-9) for 64 worker classes in a
# fraction of the time.

# %%
config = WORK / "stragglers.yaml"
config.write_text("""
name: nb-stragglers
traces: resnet50-b64
networks: 10GbE
workers: 64
schedules: [wfbp, ddp, mgwfbp, dear, fsdp]
engine: fast
iterations: 42
warmup: 2
seed: 0
cluster: {stragglers: 1, jitter_cv: 0.05}
sweep:
  grid:
    cluster.straggler_slowdown: [1.0, 1.25, 1.5, 2.0]
""")
outcome = run_sweep(load_config(config), WORK / "stragglers", jobs=1)
frame = load_results(WORK / "stragglers")
print(f"{outcome.ran} runs, {outcome.failed} failed")
table = frame.pivot_table(index="schedule", columns="cluster.straggler_slowdown",
                          values="iteration_time_s", sort=False) * 1e3
table.round(1)

# %% [markdown]
# What each schedule pays of the straggler's extra compute (the trace's compute time times
# `slowdown - 1`), and the spread of the measured iterations at a 1.5x straggler:

# %%
compute_ms = dearsim.load_trace(dearsim.shipped.find_trace("resnet50-b64")).compute_time * 1e3
paid = (table[2.0] - table[1.0]) / (compute_ms * (2.0 - 1.0))
at = frame[frame["cluster.straggler_slowdown"] == 1.5].set_index("schedule")
summary = pd.DataFrame({
    "share of a 2x straggler's extra compute paid": paid.round(2),
    "mean ms (1.5x)": (at["iteration_time_s"] * 1e3).round(1),
    "p99 ms (1.5x)": (at["iteration_p99_s"] * 1e3).round(1),
    "straggler waits ms": (at["wait_min_s"] * 1e3).round(1),
    "fastest worker waits ms": (at["wait_max_s"] * 1e3).round(1),
})
summary

# %% [markdown]
# The schedules that hide their communication under the backward pass (DDP, DeAR) pay
# nearly all of the straggler's extra compute: every collective waits for the straggler's
# gradients. A link-bound schedule (per-tensor WFBP) pays less, because its communication
# was already the bottleneck. The same figure `dearsim sweep` draws for `plot.y:
# iteration_time_s`:

# %%
fig = metric_figure(frame, "iteration_time_s", x="cluster.straggler_slowdown",
                    facet=None, row=None)
fig

# %% [markdown]
# ## Flat ring or hierarchical collectives
#
# A shipped topology is a network: `dear-cluster-10GbE` has nodes of 4 GPUs on PCIe 3.0 and
# 10GbE between nodes (every number's source is in its file). `network.algorithm` switches
# between one flat ring through every GPU (each step waits for its slowest hop) and the
# hierarchical form (intra-node reduce-scatter, inter-node all-reduce of 1/4 of the data,
# intra-node all-gather).

# %%
config = WORK / "hierarchy.yaml"
config.write_text("""
name: nb-hierarchy
traces: resnet50-b64
networks: dear-cluster-10GbE
workers: [8, 16, 32, 64]
schedules: [wfbp, ddp, mgwfbp, dear, fsdp]
engine: fast
sweep:
  grid:
    network.algorithm: [ring, hierarchical]
""")
run_sweep(load_config(config), WORK / "hierarchy", jobs=1)
hier = load_results(WORK / "hierarchy")
times = hier.pivot_table(index=["workers", "schedule"], columns="network.algorithm",
                         values="iteration_time_s", sort=False) * 1e3
times["hierarchical speedup"] = times["ring"] / times["hierarchical"]
times.round(2).loc[64]

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, algo in zip(axes, ["ring", "hierarchical"]):
    part = hier[hier["network.algorithm"] == algo]
    for name, rows in part.groupby("schedule", sort=False):
        ax.plot(rows["workers"], rows["iteration_time_s"] * 1e3, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks([8, 16, 32, 64], ["8", "16", "32", "64"])
    ax.set_yscale("log")
    ax.set_title(f"dear-cluster-10GbE, {algo}")
    ax.set_xlabel("GPUs")
    ax.grid(True, alpha=0.3)
axes[0].set_ylabel("iteration time (ms)")
axes[1].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Over 10GbE the hierarchical form crosses the slow link in 2(N-1) ring steps instead of
# 2(p-1) (N nodes, p GPUs), so it saves the inter-node latency: the un-fused WFBP, with many
# small messages, gains most, and the fused schedules' lead over it shrinks. The shipped
# `configs/hierarchy.yaml` runs the same comparison on three topologies, and
# `configs/stragglers.yaml` the straggler study on two models and both networks.
