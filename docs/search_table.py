#!/usr/bin/env python
"""Regenerate the table of ``docs/search.md``: on the five study traces at 64 workers on four
network presets, each schedule's default vs searched iteration time, and whether tuned DeAR
beats the best tuned baseline.

    python docs/search_table.py > /tmp/table.md

Searched: ``ddp``, ``wfbp`` and ``mgwfbp`` get the optimal WFBP partition (all three run the
same buckets, so one column), ``horovod`` its Bayesian tuner over fusion threshold x cycle
time, ``dear`` a 64-point threshold scan and the group partition search, ``bytescheduler``
its Bayesian tuner (seeds 0). A difference under 0.1% is called a tie. All on the
fast evaluator, 10 iterations, 2 warm-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dearsim
from dearsim import search

ROOT = Path(__file__).resolve().parent.parent
TRACES = ("resnet50-b64", "densenet201-b32", "inception_v4-b64", "bert-base-b64-s64",
          "bert-large-b32-s64")
NETWORKS = ("10GbE", "100GbIB", "10GbE-fit", "100GbIB-fit")
WORKERS = 64


def main() -> int:
    print("| trace | network | wfbp | ddp | mgwfbp | WFBP optimal | horovod | horovod bayes "
          "| bytescheduler | bytescheduler bayes | dear | dear scan | dear partition "
          "| tuned DeAR vs best tuned baseline |")
    print("|---|---|" + "---:|" * 12 + "---|")
    for t in TRACES:
        trace = dearsim.load_trace(ROOT / "traces" / f"{t}.csvy")
        for net in NETWORKS:
            def run(s: str, m: str, **kw):
                return search.search(trace, net, WORKERS, s, m, **kw)

            opt = run("ddp", "optimal")
            mg = run("mgwfbp", "optimal")
            wf = run("wfbp", "optimal")
            hv = run("horovod", "bayes", seed=0)
            bs = run("bytescheduler", "bayes", seed=0)
            ds = run("dear", "scan")
            dp = search.partition(search.Setting(trace, dearsim.load_network(net).costs(WORKERS),
                                                 dearsim.Cluster(WORKERS), net), 400, ds)
            base = min(opt.iteration_time_s, hv.iteration_time_s, bs.iteration_time_s)
            dear = min(ds.iteration_time_s, dp.iteration_time_s)
            gain = base / dear - 1
            word = "tie" if abs(gain) < 1e-3 else "yes" if gain > 0 else "no"
            verdict = f"{word}, {gain:+.1%}"
            ms = [wf.default_time_s, opt.default_time_s, mg.default_time_s, opt.iteration_time_s,
                  hv.default_time_s, hv.iteration_time_s, bs.default_time_s, bs.iteration_time_s,
                  ds.default_time_s, ds.iteration_time_s, dp.iteration_time_s]
            print(f"| {t} | {net} | " + " | ".join(f"{x * 1e3:.1f}" for x in ms)
                  + f" | {verdict} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
