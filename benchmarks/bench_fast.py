#!/usr/bin/env python
"""Wall time of the fast evaluator (``dearsim.fast``) against the SimPy engine.

    python benchmarks/bench_fast.py [--repeat 15]

Two tables (markdown on stdout):

1. every schedule (``fsdp`` included) on the synthetic 400-layer trace of ``bench_core.py``
   (seed 0), 64 identical workers, 12 iterations: median ms per call of ``dearsim.simulate``
   (engine) and of ``dearsim.fast.simulate`` (the same call: schedule creation, its plan,
   the run, the metrics) and of ``dearsim.fast.run`` alone with the schedule built once (what
   a search pays per evaluation), and the ratios;
2. 1024 workers of 1024 different speeds (slowdowns 1.0 .. 2.0) on ResNet-50
   (``traces/resnet50-b64.csvy``), 5 iterations, 10GbE: the fast evaluator per schedule.

Each call is run once untimed, then ``--repeat`` times, timed one by one with
``time.perf_counter``; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's dearsim
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import synthetic_trace  # noqa: E402

import dearsim  # noqa: E402
from dearsim import fast, schedules  # noqa: E402
from dearsim.network import load_network  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int) -> float:
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--part", choices=["all", "speeds", "plan"], default="all",
                    help="all tables, only the 64-speeds one, or only the plan costs")
    args = ap.parse_args(argv)
    trace = synthetic_trace(400, 0)
    if args.part == "speeds":
        speeds(trace, args.repeat)
        return 0
    if args.part == "plan":
        plan_costs(trace, args.repeat)
        return 0
    print("### Fast evaluator vs engine (`benchmarks/bench_fast.py`)\n")
    print(f"Trace `{trace.name}`, 64 identical workers, 12 iterations, median of "
          f"{args.repeat} runs.\n")
    print("| network | scheduler | engine ms | fast.simulate ms | ratio | fast.run ms | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for network in ("10GbE", "100GbIB"):
        net = load_network(network)
        costs, cluster = net.costs(64), dearsim.Cluster(64)
        for name in schedules.names():
            sched = schedules.create(name)
            te = timed(lambda: dearsim.simulate(trace, net, 64, name, iterations=12), args.repeat)
            tf = timed(lambda: fast.simulate(trace, net, 64, name, iterations=12), args.repeat)
            tr = timed(lambda: fast.run(sched, trace, costs, cluster, 12), args.repeat)
            print(f"| {network} | {name} | {te:.2f} | {tf:.3f} | {te / tf:.0f}x | {tr:.3f} "
                  f"| {te / tr:.0f}x |", flush=True)
    speeds(trace, args.repeat)
    resnet = dearsim.load_trace(ROOT / "traces" / "resnet50-b64.csvy")
    slow = tuple(1.0 + k / 1023 for k in range(1024))
    cluster = dearsim.Cluster(1024, slow)
    costs = load_network("10GbE").costs(1024)
    print("\n1024 workers of 1024 different speeds, ResNet-50, 5 iterations, 10GbE "
          "(fast evaluator; the engine runs 1024 processes).\n")
    print("| scheduler | fast.run ms (median of 3) |")
    print("|---|---:|")
    for name in schedules.names():
        sched = schedules.create(name)
        t = timed(lambda: fast.run(sched, resnet, costs, cluster, 5), 3)
        print(f"| {name} | {t:.1f} |", flush=True)
    return 0


def plan_costs(trace, repeat: int) -> None:
    """What part of one identical-workers run is the schedule's plan (its buckets, groups,
    units or chunks: the schedule module's own code, which the engine and the fast
    evaluator both call), against the 50x budget (the engine's time / 50)."""
    from dearsim.schedules.bytescheduler import ByteScheduler, layer_chunks
    from dearsim.schedules.dear import Dear
    from dearsim.schedules.fsdp import Fsdp

    net = load_network("10GbE")
    costs, cluster = net.costs(64), dearsim.Cluster(64)
    print(f"\nPlan cost, `{trace.name}`, 64 identical workers, 10GbE, 12 iterations; medians of "
          f"{repeat} calls (engine: of {max(3, repeat // 5)}).\n")
    print("| scheduler | plan us | fast.run us | engine us | engine / 50 us | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in schedules.names():
        sched = schedules.create(name)
        if isinstance(sched, Dear):
            def plan(s=sched): return s.groups(trace)
        elif isinstance(sched, Fsdp):
            def plan(s=sched): return s.units(trace)
        elif isinstance(sched, ByteScheduler):
            part = sched.options.partition_bytes
            def plan(p=part): return [layer_chunks(t, p) for t in trace.tensors]
        else:
            def plan(s=sched): return s.buckets(trace, costs)
        tp = timed(plan, repeat) * 1e3
        tr = timed(lambda: fast.run(sched, trace, costs, cluster, 12), repeat) * 1e3
        te = timed(lambda: dearsim.simulate(trace, net, 64, name, iterations=12),
                   max(3, repeat // 5)) * 1e3
        print(f"| {name} | {tp:.0f} | {tr:.0f} | {te:.0f} | {te / 50:.0f} | {te / tr:.1f}x |",
              flush=True)


def speeds(trace, repeat: int) -> None:
    """The same trace on 64 workers of 64 different speeds (slowdown 1.00, 1.01, ..., 1.63):
    the engine runs one process per worker class, the fast evaluator one numpy computation
    across them."""
    net = load_network("10GbE")
    cluster = dearsim.Cluster(64, tuple(1.0 + k / 100 for k in range(64)))
    costs = net.costs(64)
    print(f"\n64 workers of 64 different speeds, `{trace.name}`, 10GbE, 12 iterations; engine "
          f"median of {max(3, repeat // 5)}, fast.run median of {repeat}.\n")
    print("| scheduler | engine ms | fast.run ms | ratio |")
    print("|---|---:|---:|---:|")
    for name in schedules.names():
        sched = schedules.create(name)
        te = timed(lambda: dearsim.simulate(trace, net, cluster, name, iterations=12),
                   max(3, repeat // 5))
        tr = timed(lambda: fast.run(sched, trace, costs, cluster, 12), repeat)
        print(f"| {name} | {te:.1f} | {tr:.2f} | {te / tr:.0f}x |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
