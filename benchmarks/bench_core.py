#!/usr/bin/env python
"""Wall-time benchmark of the simulator core: every schedule on a large synthetic trace.

Not a test (pytest collects only ``tests/``). Run it with the project's Python::

    python benchmarks/bench_core.py                    # defaults: 400 layers, 64 workers,
                                                       # 12 iterations, 15 repeats
    python benchmarks/bench_core.py --repeat 5 --out BENCHMARKS.md

What is timed: one call of :func:`dearsim.simulate` (engine run plus measurement) with the
trace and network model already in memory, i.e. the cost of simulating ``--iterations``
iterations of one schedule. Each (network, schedule) pair is run once untimed (to warm caches
and imports), then ``--repeat`` times, each run timed on its own with
:func:`time.perf_counter`; the table reports the median, the minimum and the 90th percentile
(nearest-rank) of those per-run times in milliseconds, and the simulated iteration time.

The synthetic trace (:func:`synthetic_trace`) is deterministic for a given ``--seed`` and
``--layers``; it is a ResNet/BERT-like mix drawn with ``numpy.random.default_rng(seed)``:

* each layer is, independently, a parameter-free layer (activation, pooling, dropout, reshape;
  probability 0.15, 0 bytes), a normalisation layer (0.15: LayerNorm/BatchNorm, 2*C fp32
  parameters with C from {64, 128, 256, 512, 768, 1024}), a convolution (0.60: k x k x Cin x
  Cout fp32 weights, k in {1, 3} equally likely, Cin and Cout from {64, 128, 256, 512} with
  probabilities 0.4/0.3/0.2/0.1, up to 9.4 MB) or a transformer linear layer (0.10: H x H
  (0.85) or H x 4H (0.15) fp32 weights plus bias, H from {512, 768}); layer 0 is a BERT-like
  embedding of 30522 x 768 fp32 (94 MB) when there are more than 10 layers;
* forward time ``fwd_ms``: parameter-free layers uniform in [0.05, 0.3] ms; others
  log-normal with median 0.3 ms x (bytes / 1 MB)^0.35, sigma 0.35, clipped to [0.05, 2.0] ms;
* backward time ``bwd_ms = fwd_ms x U(1.8, 2.2)`` (about twice the forward);
* update time ``update_ms``: an SGD-with-momentum step streaming 4x the gradient bytes at
  500 GB/s (``4 * bytes / 5e8`` ms); 0 for parameter-free layers.

With the defaults (400 layers, seed 0): 324 MB of gradients over 342 layers with parameters,
58 parameter-free layers (14.5%), fwd 0.05-1.3 ms (median 0.16 ms), 258 ms of compute per
iteration (the exact figures are printed in the report).
"""

from __future__ import annotations

import argparse
import math
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import dearsim
from dearsim import schedules
from dearsim.network import load_network
from dearsim.trace import Trace

MARK_START = "<!-- bench_core:start -->"
MARK_END = "<!-- bench_core:end -->"
DEFAULT_NETWORKS = ("10GbE", "100GbIB")


def synthetic_trace(layers: int = 400, seed: int = 0) -> Trace:
    """A deterministic ResNet/BERT-like trace (see the module docstring)."""
    if layers < 1:
        raise ValueError("layers must be >= 1")
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=layers, p=[0.15, 0.15, 0.60, 0.10])  # none, norm, conv, linear
    size = np.zeros(layers, dtype=np.int64)
    names: list[str] = []
    for i, kind in enumerate(kinds):
        if kind == 0:
            names.append(f"act{i}")
        elif kind == 1:
            c = rng.choice([64, 128, 256, 512, 768, 1024])
            size[i] = 4 * 2 * c
            names.append(f"norm{i}")
        elif kind == 2:
            k = rng.choice([1, 3])
            cin, cout = rng.choice([64, 128, 256, 512], size=2, p=[0.4, 0.3, 0.2, 0.1])
            size[i] = 4 * k * k * cin * cout
            names.append(f"conv{i}")
        else:
            h = rng.choice([512, 768])
            out = h * rng.choice([1, 4], p=[0.85, 0.15])
            size[i] = 4 * (h * out + out)
            names.append(f"linear{i}")
    if layers > 10:
        size[0] = 4 * 30522 * 768
        names[0] = "embedding0"
        kinds[0] = 3
    mb = size / 1e6
    fwd = np.where(
        size > 0,
        np.clip(0.3 * np.power(np.maximum(mb, 1e-6), 0.35) * rng.lognormal(0.0, 0.35, layers),
                0.05, 2.0),
        rng.uniform(0.05, 0.3, layers),
    )
    bwd = fwd * rng.uniform(1.8, 2.2, layers)
    update = 4 * size / 5e8  # ms
    return Trace.from_layers(
        fwd=(fwd * 1e-3).tolist(),
        bwd=(bwd * 1e-3).tolist(),
        size=size.tolist(),
        update=(update * 1e-3).tolist(),
        names=names,
        name=f"synthetic-{layers}-seed{seed}",
        batch_size=32,
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    s = sorted(values)
    k = max(1, math.ceil(q / 100 * len(s)))
    return s[k - 1]


def bench(
    trace: Trace, network: str, workers: int, iterations: int, repeat: int, names: list[str]
) -> list[dict[str, object]]:
    net = load_network(network)
    rows = []
    for name in names:
        result = dearsim.simulate(trace, net, workers, name, iterations=iterations)  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            dearsim.simulate(trace, net, workers, name, iterations=iterations)
            times.append((time.perf_counter() - t0) * 1e3)
        rows.append(
            {
                "network": net.name,
                "scheduler": name,
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "p90_ms": percentile(times, 90),
                "iteration_ms": result.iteration_time_s * 1e3,
                "comm_ms": result.comm_s * 1e3,
                "buckets": len(result.buckets),
                "collectives": result.collectives,
            }
        )
        print(
            f"  {net.name:>8} {name:<14} median {rows[-1]['median_ms']:8.2f} ms"
            f"  (simulated iteration {rows[-1]['iteration_ms']:.2f} ms)",
            file=sys.stderr,
        )
    return rows


def markdown(rows: list[dict[str, object]], trace: Trace, args: argparse.Namespace) -> str:
    grad = len(trace.grad_layers)
    lines = [
        MARK_START,
        "### Core benchmark (`benchmarks/bench_core.py`)",
        "",
        f"Trace `{trace.name}`: {trace.num_layers} layers ({grad} with gradients, "
        f"{trace.num_layers - grad} without), {trace.total_bytes / 1e6:.1f} MB of gradients, "
        f"{trace.compute_time * 1e3:.1f} ms of compute per iteration. "
        f"{args.workers} identical workers, {args.iterations} iterations per run, "
        f"{args.repeat} timed runs per row (after one untimed run). "
        f"Python {platform.python_version()}, dearsim {dearsim.__version__}, "
        f"{platform.machine()} {platform.system()}, {platform.processor() or 'unknown CPU'}.",
        "",
        "| network | scheduler | median ms/run | min ms/run | p90 ms/run "
        "| simulated iteration ms | link busy ms | buckets/groups | collectives/iter |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['scheduler']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} "
            f"| {r['p90_ms']:.2f} | {r['iteration_ms']:.2f} | {r['comm_ms']:.2f} "
            f"| {r['buckets']} | {r['collectives']} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines) + "\n"


def write_out(path: Path, text: str) -> str:
    """Replace the previous bench_core block of ``path`` if it has one, else append."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END) + r"\n?", re.S)
    if pattern.search(old):
        path.write_text(pattern.sub(lambda _m: text, old, count=1), encoding="utf-8")
        return "replaced"
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    path.write_text(old + sep + text, encoding="utf-8")
    return "appended"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15, help="timed runs per row (default 15)")
    ap.add_argument("--layers", type=int, default=400, help="layers in the trace (default 400)")
    ap.add_argument("--workers", type=int, default=64, help="workers (default 64)")
    ap.add_argument("--iterations", type=int, default=12, help="iterations per run (default 12)")
    ap.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    ap.add_argument("--networks", nargs="+", default=list(DEFAULT_NETWORKS),
                    help="network presets or files (default: 10GbE 100GbIB)")
    ap.add_argument("--schedulers", nargs="+", default=None,
                    help="schedules to run (default: all registered)")
    ap.add_argument("--out", type=Path, default=None,
                    help="also write the markdown table to this file: replaces its previous "
                    "bench_core block if it has one, otherwise appends")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.layers < 1 or args.workers < 1 or args.iterations < 4:
        ap.error("--repeat, --layers and --workers must be >= 1 and --iterations >= 4")
    names = args.schedulers or schedules.names()
    trace = synthetic_trace(args.layers, args.seed)
    print(
        f"trace {trace.name}: {trace.total_bytes / 1e6:.1f} MB, "
        f"{trace.compute_time * 1e3:.1f} ms compute",
        file=sys.stderr,
    )
    rows: list[dict[str, object]] = []
    for network in args.networks:
        rows += bench(trace, network, args.workers, args.iterations, args.repeat, names)
    text = markdown(rows, trace, args)
    print(text, end="")
    if args.out is not None:
        how = write_out(args.out, text)
        print(f"{how} the table in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
