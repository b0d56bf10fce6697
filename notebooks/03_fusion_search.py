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
# # 3. Searching the fusion of a schedule
#
# Every fusing schedule has a knob: DDP's bucket cap, Horovod's fusion threshold, DeAR's
# group threshold. Their defaults (25 MiB, 128 MiB, 25 MB) are guesses; the best value
# depends on the model, the network and the worker count. `dearsim.search` tunes them
# offline on the fast evaluator (`dearsim.fast`, which reproduces the SimPy engine's numbers
# without SimPy, thousands of runs a second), with four methods (`docs/search.md`):
#
# | method | schedules | what it searches |
# |---|---|---|
# | `scan` | ddp, horovod, dear | one threshold over a log grid 1-256 MiB |
# | `bayes` | dear, horovod, bytescheduler | the real systems' Bayesian tuners (scikit-optimize) |
# | `optimal` | wfbp, ddp, mgwfbp | the exactly optimal contiguous buckets (dynamic programming) |
# | `partition` | dear | non-uniform DeAR groups by local search from the best threshold |
#
# The workload here is ResNet-50 on 10 Gb Ethernet with 16 workers.

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

from dearsim import search, shipped

trace = dearsim.load_trace(shipped.find_trace("resnet50-b64"))
NETWORK, WORKERS = "10GbE", 16

# %% [markdown]
# ## A threshold scan
#
# `search.search(trace, network, workers, scheduler, "scan", budget=N)` tries `N`
# thresholds spaced evenly in log between 1 and 256 MiB and keeps the best (or the
# schedule's default, options `{}`, when no grid point beats it). The result carries every
# grid point it tried in `history`, so the whole curve can be drawn.

# %%
scans = {name: search.search(trace, NETWORK, WORKERS, name, "scan", budget=24)
         for name in ("ddp", "horovod", "dear")}
for name, res in scans.items():
    print(f"{name:8s} default {res.default_time_s * 1e3:7.1f} ms -> best {res.options} "
          f"{res.iteration_time_s * 1e3:7.1f} ms ({res.gain_over_default:+.1%})")

# %% [markdown]
# Each curve is the iteration time against the threshold. Small thresholds send many small
# messages and pay the per-message startup each time; large ones wait for many gradients and
# leave the last bucket's all-reduce exposed after the backward pass. The circle marks each
# schedule's default. Horovod barely moves: with its 1 ms cycle, few tensors are ready at
# each tick, so its buffers stay small whatever the threshold.

# %%
defaults = {"ddp": 25.0, "horovod": 128.0, "dear": 25.0}
fig, ax = plt.subplots(figsize=(7, 3.8))
for k, (name, res) in enumerate(scans.items()):
    key = search.THRESHOLD_OPTION[name]
    xs = [opts[key] for opts, _ in res.history]
    ys = [t * 1e3 for _, t in res.history]
    ax.plot(xs, ys, marker=".", color=f"C{k}", label=f"{name} ({key})")
    ax.plot([defaults[name]], [res.default_time_s * 1e3], "o", ms=9, mfc="none", color=f"C{k}")
ax.set_xscale("log", base=2)
ax.set_xticks([2**k for k in range(9)], [str(2**k) for k in range(9)])
ax.set_xlabel("threshold (MiB)")
ax.set_ylabel("iteration time (ms)")
ax.set_title(f"ResNet-50, {NETWORK}, {WORKERS} workers: one threshold, scanned")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Optimal buckets and DeAR partitions
#
# A threshold forces every bucket to the same size. `optimal` finds the best partition of the
# layers into contiguous buckets for the WFBP family exactly (a dynamic program over bucket
# boundaries, `docs/search.md` says why it is exact), and `partition` looks for non-uniform
# DeAR groups by moving group boundaries one at a time, starting from the best threshold
# (so it is never worse than the scan). `budget` caps the number of evaluations.

# %%
found = [
    search.search(trace, NETWORK, WORKERS, "wfbp", "optimal"),
    search.search(trace, NETWORK, WORKERS, "ddp", "optimal"),
    search.search(trace, NETWORK, WORKERS, "mgwfbp", "optimal"),
    search.search(trace, NETWORK, WORKERS, "dear", "partition", budget=150),
    *scans.values(),
]
table = pd.DataFrame([
    {
        "schedule": r.scheduler,
        "method": r.method,
        "default_ms": r.default_time_s * 1e3,
        "found_ms": r.iteration_time_s * 1e3,
        "gain": r.gain_over_default,
        "buckets": len(r.ranges),
        "evaluations": r.evaluations,
    }
    for r in found
]).sort_values("found_ms")
print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# `yaml_snippet()` gives the found options as a schedule entry for a sweep config, so a
# searched schedule can be compared with the defaults in `docs/sweeps.md`'s sweeps:

# %%
best_dear = found[3]
print(best_dear.ranges)
print(best_dear.yaml_snippet())

# %% [markdown]
# ## Bayesian tuning, as the real systems do it
#
# DeAR tunes its threshold online with Bayesian optimisation (10 trials); Horovod's autotuner
# and ByteScheduler do the same over two knobs. `method="bayes"` reproduces them with
# scikit-optimize (`pip install 'dearsim[search]'`); it is the slowest method, so the budget
# here is kept at 8 trials. The result reports the trial that found its best and how far it
# landed from a reference (for DeAR, the 64-point scan).

# %%
try:
    bay = search.search(trace, NETWORK, WORKERS, "dear", "bayes", budget=8, seed=0)
except dearsim.DearsimError as exc:  # scikit-optimize is not installed
    bay = None
    print(exc)
if bay is not None:
    print(f"bayes: {bay.options} -> {bay.iteration_time_s * 1e3:.1f} ms after "
          f"{bay.trials_to_best} of {len(bay.history)} trials; "
          f"{bay.gap_to_reference:+.2%} from the {bay.reference}")
    trials = pd.DataFrame([{"trial": i + 1, **o, "ms": t * 1e3}
                           for i, (o, t) in enumerate(bay.history)])
    print(trials.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

# %% [markdown]
# ## What the groups look like
#
# The bars below are the layers' gradient sizes in forward order, coloured by the DeAR
# group the partition search put them in: the groups need not be of equal size, and the
# search typically keeps the first group (whose reduce-scatter ends the backward pass and
# whose all-gather starts the next forward pass) small.

# %%
sizes = [trace.size[i] / 2**20 for i in range(trace.num_layers)]
fig, ax = plt.subplots(figsize=(8, 3))
top = max(sizes) * 1.15
for k, (lo, hi) in enumerate(best_dear.ranges):
    xs = list(range(lo, hi + 1))
    if k % 2:  # shade every other group
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.92", zorder=0)
    ax.bar(xs, [sizes[i] for i in xs], width=0.8, color=plt.cm.tab20(k % 20))
    ax.text((lo + hi) / 2, top * 0.97, str(k), ha="center", va="top", fontsize=7)
ax.set_ylim(0, top)
ax.set_xlim(-0.5, trace.num_layers - 0.5)
ax.set_xlabel("layer (forward order)")
ax.set_ylabel("gradient (MiB)")
ax.set_title(f"{len(best_dear.ranges)} DeAR groups found by the partition search "
             "(numbered at the top)")
plt.show()
