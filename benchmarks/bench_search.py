#!/usr/bin/env python
"""Wall time of the searches (``dearsim.search``) on the fast evaluator.

    python benchmarks/bench_search.py [--repeat 5]

* ``optimal`` (the exact WFBP-family partition) on the synthetic 400-layer trace, 64
  workers, 10GbE (goal: under 1 s);
* a 256-point ``scan`` of DeAR's threshold on BERT-Large (``traces/bert-large-b32-s64.csvy``),
  64 workers, 10GbE (goal: under 1 s);
* ``partition`` (DeAR groups) and ``bayes`` on ResNet-50 for scale.

Medians of ``--repeat`` timed runs after one untimed run, as a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import synthetic_trace  # noqa: E402

import dearsim  # noqa: E402
from dearsim import search  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    synth = synthetic_trace(400, 0)
    bert = dearsim.load_trace(ROOT / "traces" / "bert-large-b32-s64.csvy")
    resnet = dearsim.load_trace(ROOT / "traces" / "resnet50-b64.csvy")
    cases = [
        ("optimal ddp, synthetic 400 layers", synth, "ddp", "optimal", None),
        ("scan dear 256 points, BERT-Large", bert, "dear", "scan", 256),
        ("scan ddp 256 points, BERT-Large", bert, "ddp", "scan", 256),
        ("partition dear (400 evaluations), ResNet-50", resnet, "dear", "partition", None),
        ("bayes dear (10 trials + reference scan), ResNet-50", resnet, "dear", "bayes", None),
    ]
    print("### Searches (`benchmarks/bench_search.py`)\n")
    print(f"64 workers, 10GbE, 10 iterations per evaluation; median of {args.repeat} runs.\n")
    print("| search | median s | evaluations | best iteration ms | gain over default |")
    print("|---|---:|---:|---:|---:|")
    for label, trace, sched, method, budget in cases:
        reps = 1 if method == "bayes" else args.repeat
        r = search.search(trace, "10GbE", 64, sched, method, budget=budget)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = search.search(trace, "10GbE", 64, sched, method, budget=budget)
            ts.append(time.perf_counter() - t0)
        print(f"| {label} | {statistics.median(ts):.3f} | {r.evaluations} "
              f"| {r.iteration_time_s * 1e3:.2f} | {r.gain_over_default:+.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
