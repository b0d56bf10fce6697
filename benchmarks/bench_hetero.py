#!/usr/bin/env python
"""Wall time of heterogeneous, jittered clusters on the fast evaluator.

Not a test. Run it with the project's Python::

    python benchmarks/bench_hetero.py                 # all three parts
    python benchmarks/bench_hetero.py --part main     # 1024 workers x ResNet-50 x 20 iterations

Parts:

* ``main``: 1024 workers whose speeds differ (slowdown 1.00, 1.05, ..., 1.35 cycling over the
  ranks, 8 distinct speeds) with log-normal jitter (cv 0.05, seed 0), ResNet-50
  (``traces/resnet50-b64.csvy``), 10GbE, 20 iterations, every schedule (``fsdp``
  included) on the fast evaluator. Goal: under 2 s a run.
* ``workers``: the same setting with ``dear`` and ``ddp`` for 8 to 65,536 workers.
* ``layers``: 1024 workers, synthetic traces of 100 to 1600 layers, ``dear``.

Each row is the median of ``--repeat`` timed runs of :func:`dearsim.fast.simulate` (trace and
network already in memory; the first run is not timed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import dearsim  # noqa: E402
from dearsim import fast  # noqa: E402
from dearsim.cluster import Cluster  # noqa: E402
from dearsim.network import load_network  # noqa: E402

FAST_SCHEDULES = ("wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp")


def cluster(p: int, cv: float = 0.05) -> Cluster:
    return Cluster.build(p, slowdown=[1.0 + 0.05 * (i % 8) for i in range(p)], jitter_cv=cv,
                         seed=0)


def timed(fn, repeat: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("main", "workers", "layers", "all"), default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args(argv)
    trace = dearsim.load_trace(ROOT / "traces" / "resnet50-b64.csvy")
    net = load_network("10GbE")
    n = args.iterations
    if args.part in ("main", "all"):
        cl = cluster(1024)
        print(f"## 1024 workers (8 speeds, jitter cv 0.05), {trace.name} ({trace.num_layers}"
              f" layers), 10GbE, {n} iterations\n")
        print("| scheduler | median s/run | iteration ms (mean) | p50 ms | p99 ms |"
              " wait min-max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in FAST_SCHEDULES:
            t, r = timed(lambda name=name: fast.simulate(trace, net, cl, name, iterations=n),
                         args.repeat)
            print(f"| {name} | {t:.3f} | {r.iteration_time_s * 1e3:.2f} |"
                  f" {r.iteration_p50_s * 1e3:.2f} | {r.iteration_p99_s * 1e3:.2f} |"
                  f" {r.wait_min_s * 1e3:.1f}-{r.wait_max_s * 1e3:.1f} |")
        print()
    if args.part in ("workers", "all"):
        print(f"## Workers: {trace.name}, 10GbE, jitter cv 0.05, {n} iterations\n")
        print("| workers | dear s/run | ddp s/run |")
        print("|---:|---:|---:|")
        for p in (8, 64, 512, 1024, 4096, 16384, 65536):
            cl = cluster(p)
            rep = args.repeat if p <= 4096 else 1
            td, _ = timed(lambda: fast.simulate(trace, net, cl, "dear", iterations=n), rep)
            tw, _ = timed(lambda: fast.simulate(trace, net, cl, "ddp", iterations=n), rep)
            print(f"| {p} | {td:.3f} | {tw:.3f} |")
        print()
    if args.part in ("layers", "all"):
        from bench_core import synthetic_trace

        print(f"## Layers: 1024 workers, jitter cv 0.05, 10GbE, dear, {n} iterations\n")
        print("| layers | dear s/run |")
        print("|---:|---:|")
        cl = cluster(1024)
        for layers in (100, 200, 400, 800, 1600):
            tr = synthetic_trace(layers, 0)
            t, _ = timed(lambda tr=tr: fast.simulate(tr, net, cl, "dear", iterations=n),
                         args.repeat)
            print(f"| {layers} | {t:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
