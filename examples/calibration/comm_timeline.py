"""The median step of a ``validate --comm-log`` run, collective by collective.

    python examples/calibration/comm_timeline.py OUT.comm.csv NETWORK.yaml

Per schedule and setting, for every collective index of a step (rank 0): the median over
the timed steps of when it was posted and when it completed (ms from the step's start), of
how long it took, and what the calibrated network says it takes alone.
"""

from __future__ import annotations

import sys

import pandas as pd

from dearsim import load_network
from dearsim.network import Op

OPS = {"allreduce": Op.ALLREDUCE, "reducescatter": Op.REDUCE_SCATTER,
       "allgather": Op.ALL_GATHER}


def timeline(comm_csv: str, network: str) -> str:
    d = pd.read_csv(comm_csv)
    costs = load_network(network).costs(int(d["rank"].max()) + 1)
    d = d[d["rank"] == 0].assign(took=lambda x: x.completed_ms - x.posted_ms)
    out = []
    for (sch, st, pf), g in d.groupby(["schedule", "setting", "prefetch"], sort=False,
                                      dropna=False):
        label = f"{sch} {st}" + ("" if pd.isna(pf) else f" ({pf})")
        out.append(f"**{label}**, median of {g.step.nunique()} steps:\n")
        out.append("| # | collective | bytes | posted ms | completed ms | took ms | "
                   "alone (fit) ms |")
        out.append("|---:|---|---:|---:|---:|---:|---:|")
        t = g.groupby("index").agg(op=("op", "first"), size=("bytes", "first"),
                                   posted=("posted_ms", "median"),
                                   done=("completed_ms", "median"), took=("took", "median"))
        for i, r in t.iterrows():
            alone = costs.time(OPS[r.op], r["size"]) * 1e3
            out.append(f"| {i} | {r.op} | {r['size']:,} | {r.posted:.2f} | {r.done:.2f} | "
                       f"{r.took:.2f} | {alone:.2f} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(timeline(sys.argv[1], sys.argv[2]))
