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
# # 4. Calibrating a network model from timings
#
# The network presets are alpha-beta models at line rate, or the fits the MG-WFBP and DeAR
# authors hard-coded (`docs/model.md`). For your own cluster, time the collectives at a few
# message sizes and worker counts, fit a line `T(n) = a + b n` per collective and worker
# count, and give dearsim the table of fits. This notebook does that by hand, with numpy.
#
# **The data here are synthesised, not measured.** `data/comm_allreduce_synth.csv` holds
# all-reduce medians at 2 and 4 workers computed from a ring alpha-beta model of a 25 Gb/s
# network (`alpha` = 15 us per step, `beta` = 8e-9 / 25 s per byte) times 3% log-normal
# noise; `data/make_comm_csv.py` made it. It has the columns of the timings the collector
# writes: `op`, `workers`, `bytes`, `median_s`. The `dearsim calibrate` command does the
# same fit from the collector's CSV and writes the network file for you; this notebook shows
# what it computes.

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
import numpy as np
import pandas as pd
import yaml

from dearsim import shipped

# The example data: next to this notebook (run from notebooks/ or the repository root) or in
# the checkout dearsim was imported from.
CANDIDATES = [
    Path.cwd() / "data",
    Path.cwd() / "notebooks" / "data",
    Path(dearsim.__file__).resolve().parent.parent / "notebooks" / "data",
]
DATA = next(d for d in CANDIDATES if (d / "comm_allreduce_synth.csv").is_file())
timings = pd.read_csv(DATA / "comm_allreduce_synth.csv", comment="#")
print(timings.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# ## Fitting `T = a + b n`
#
# One least-squares line per (op, workers). Plain least squares on the times would let the
# largest messages decide everything (their times are a thousand times larger), so each row
# is weighted by `1 / T`: the fit minimises the *relative* error, and the small messages pin
# the startup `a` while the large ones pin the per-byte cost `b`. A negative `a` (possible
# with noise when the startup is tiny) is clipped to 0, since a network file wants `a >= 0`.

# %%
def fit_line(nbytes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """Weighted least squares for seconds = a + b * nbytes, weights 1 / seconds."""
    w = 1.0 / seconds
    design = np.stack([np.ones_like(nbytes), nbytes], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(design, seconds * w, rcond=None)
    return max(float(a), 0.0), float(b)


fits = []
for (op, p), g in timings.groupby(["op", "workers"]):
    a, b = fit_line(g["bytes"].to_numpy(float), g["median_s"].to_numpy(float))
    pred = a + b * g["bytes"].to_numpy(float)
    err = np.abs(pred / g["median_s"].to_numpy(float) - 1)
    fits.append({"op": op, "workers": int(p), "a_s": a, "b_s_per_byte": b,
                 "GB_per_s": 1e-9 / b, "max_rel_err": err.max()})
fit_table = pd.DataFrame(fits)
print(fit_table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# The model the data were made from says `a = 2(p-1) alpha` (30 us at 2 workers, 90 us at
# 4) and `b = 2(p-1)/p beta` (3.2e-10 and 4.8e-10 s/B): the fits should land within a few
# percent of those.

# %%
alpha, beta = 15e-6, 8e-9 / 25
truth = {p: (2 * (p - 1) * alpha, 2 * (p - 1) / p * beta) for p in (2, 4)}
for row in fits:
    a0, b0 = truth[row["workers"]]
    print(f"{row['workers']} workers: a {row['a_s'] * 1e6:6.1f} us (model {a0 * 1e6:5.1f}), "
          f"b {row['b_s_per_byte']:.3e} s/B (model {b0:.3e}, {row['b_s_per_byte'] / b0 - 1:+.1%})")

# %% [markdown]
# ## Measured against fitted
#
# Left: the timings (dots) and the fitted lines, on log axes, so that the startup regime
# (flat, small messages) and the bandwidth regime (slope 1, large messages) both show.
# Right: the relative error of the fit at each point; noise of 3% gives residuals of that
# order, with no trend across sizes if a line is the right model.

# %%
fig, (ax, axr) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
grid = np.geomspace(timings["bytes"].min(), timings["bytes"].max(), 100)
for k, row in enumerate(fits):
    g = timings[(timings["op"] == row["op"]) & (timings["workers"] == row["workers"])]
    n, t = g["bytes"].to_numpy(float), g["median_s"].to_numpy(float)
    fitted = row["a_s"] + row["b_s_per_byte"] * n
    label = f"{row['op']}, {row['workers']} workers"
    ax.loglog(n, t * 1e3, "o", color=f"C{k}", label=f"{label}: measured")
    ax.loglog(grid, (row["a_s"] + row["b_s_per_byte"] * grid) * 1e3, "-", color=f"C{k}",
              alpha=0.7, label=f"{label}: fit")
    axr.semilogx(n, (t / fitted - 1) * 100, "o-", color=f"C{k}", label=label)
ax.set_xlabel("message size (bytes)")
ax.set_ylabel("time (ms)")
ax.set_title("all-reduce: measured and fitted")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7)
axr.axhline(0, color="black", linewidth=0.8)
axr.set_xlabel("message size (bytes)")
axr.set_ylabel("measured / fitted - 1 (%)")
axr.set_title("residuals")
axr.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## A fitted network for dearsim
#
# A fitted network is a table of lines per worker count (the `fits` form of a network file,
# `docs/model.md`). Without their own lines, reduce-scatter and all-gather each cost half the
# all-reduce. The numbers are rounded to four significant digits, as in the presets.
# `dearsim.load_network` takes the mapping directly; written as YAML it is a
# network file that `--network lab.yaml` and sweep configs accept too.

# %%
spec = {
    "name": "lab-25G-fit",
    "description": "all-reduce fits from notebooks/data/comm_allreduce_synth.csv (synthesised)",
    "fits": [
        {"workers": row["workers"],
         "allreduce": {"a_s": float(f"{row['a_s']:.4g}"),
                       "b_s_per_byte": float(f"{row['b_s_per_byte']:.4g}")}}
        for row in fits if row["op"] == "allreduce"
    ],
}
network = dearsim.load_network(spec)
print(network.describe())
print(yaml.safe_dump(spec, sort_keys=False))

# %% [markdown]
# ## Simulating with it
#
# The fitted network answers only for the worker counts it was fitted at (fits do not
# extrapolate; any other count is an error naming the table). Below, VGG-16 (large
# gradients, so the network matters) at 2 and 4 workers, under the fitted network and under
# the alpha-beta model the timings were synthesised from: the two agree to within the noise.

# %%
trace = dearsim.load_trace(shipped.find_trace("vgg16-b32"))
source_model = {"name": "lab-25G-model", "alpha_s": alpha, "beta_s_per_byte": beta}
rows = []
for p in (2, 4):
    for sched in ("wfbp", "ddp", "dear"):
        fitted_r = dearsim.simulate(trace, network, p, sched)
        model_r = dearsim.simulate(trace, source_model, p, sched)
        rows.append({
            "workers": p, "schedule": sched,
            "fitted_ms": fitted_r.iteration_time_s * 1e3,
            "model_ms": model_r.iteration_time_s * 1e3,
            "difference": fitted_r.iteration_time_s / model_r.iteration_time_s - 1,
        })
print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
try:
    dearsim.simulate(trace, network, 8, "dear")
except dearsim.DearsimError as exc:
    print("8 workers:", exc)
