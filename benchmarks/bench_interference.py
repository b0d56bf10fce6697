#!/usr/bin/env python
"""What the interference parameters cost the SimPy engine.

Not a test. Run it with the project's Python::

    python benchmarks/bench_interference.py [--repeat 5] [--workers 64] [--iterations 12]

ResNet-50 (``traces/resnet50-b64.csvy``, 107 layers), 10GbE, identical workers, every
schedule, on :func:`dearsim.simulate` (the SimPy engine) four ways: no interference, compute
slowed by communication (``interference`` 0.2: the one-way path, ``engine._Stretch``),
communication slowed by compute (``comm_interference`` 0.5: the two-way path,
``engine._Fluid``), and both. Each cell is the median of ``--repeat`` timed runs (the first
run is not timed), then the ratio to the run without interference, and the simulated
iteration time of each variant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_hetero import FAST_SCHEDULES as SCHEDULES  # noqa: E402  (every schedule)
from bench_hetero import timed  # noqa: E402

import dearsim  # noqa: E402
from dearsim.cluster import Cluster  # noqa: E402
from dearsim.network import load_network  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=12)
    a = ap.parse_args(argv)
    trace = dearsim.load_trace(ROOT / "traces" / "resnet50-b64.csvy")
    net = load_network("10GbE")
    p, n = a.workers, a.iterations
    variants = (("none", Cluster(p)), ("x=0.2", Cluster(p, interference=0.2)),
                ("y=0.5", Cluster(p, comm_interference=0.5)),
                ("x=0.2, y=0.5", Cluster(p, interference=0.2, comm_interference=0.5)))
    print(f"## {trace.name} ({trace.num_layers} layers), 10GbE, {p} workers, {n} iterations,"
          f" median of {a.repeat}\n")
    print("| scheduler | " + " | ".join(f"{v} ms/run" for v, _ in variants[:1])
          + " | " + " | ".join(f"{v}: ms/run (ratio)" for v, _ in variants[1:])
          + " | iteration ms: " + " / ".join(v for v, _ in variants) + " |")
    print("|---|" + "---:|" * (len(variants) + 1))
    for name in SCHEDULES:
        cells, iters = [], []
        base = None
        for _, cl in variants:
            t, r = timed(lambda cl=cl, name=name: dearsim.simulate(trace, net, cl, name,
                                                                   iterations=n), a.repeat)
            iters.append(f"{r.iteration_time_s * 1e3:.1f}")
            if base is None:
                base = t
                cells.append(f"{t * 1e3:.1f}")
            else:
                cells.append(f"{t * 1e3:.1f} ({t / base:.2f}x)")
        print(f"| {name} | " + " | ".join(cells) + " | " + " / ".join(iters) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
