#!/usr/bin/env python
"""The sweep machinery at scale: wall time, runs/s and the parent's peak memory.

    python benchmarks/bench_sweep_scale.py                     # 1k and 100k runs, local and dask
    python benchmarks/bench_sweep_scale.py --sizes 1k --executors local

Each measurement runs ``dearsim sweep configs/scale-<size>.yaml --jobs N --out TMP`` through
:func:`dearsim.cli.main` in a fresh Python process (config checking, every run, the streamed
tables, the summary and the plot attempt included) and reports, from that process:

* wall time (:func:`time.perf_counter` around ``main``) and runs per second;
* the parent's peak resident memory, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the
  worker processes are not counted: they are separate processes, the process pool's or the
  dask LocalCluster's).

The configs are a two-layer trace with three iterations per run, so the parent's own work
dominates. Prints a markdown table (paste it into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from dearsim.cli import main
cfg, out, jobs, executor = sys.argv[1:5]
t0 = time.perf_counter()
rc = main(["sweep", cfg, "--out", out, "--jobs", jobs, "--executor", executor])
wall = time.perf_counter() - t0
rows = sum(1 for _ in open(Path(out) / "results.jsonl", "rb"))
print(json.dumps({"rc": rc, "wall_s": wall, "rows": rows,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(size: str, executor: str, jobs: int) -> dict[str, float]:
    cfg = ROOT / "configs" / f"scale-{size}.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(cfg), str(Path(tmp) / "out"), str(jobs), executor],
            env=env, capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"{size}/{executor} failed:\n{proc.stderr[-2000:]}")
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    if data["rc"] != 0:
        raise SystemExit(f"{size}/{executor}: dearsim exited {data['rc']}:\n{proc.stderr[-2000:]}")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1k,100k")
    ap.add_argument("--executors", default="local,dask")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    results = []
    for executor in args.executors.split(","):
        for size in args.sizes.split(","):
            data = measure(size, executor, args.jobs)
            results.append((executor, size, data))
            print(f"{executor} {size}: {json.dumps(data)}", file=sys.stderr, flush=True)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; `--jobs {args.jobs}`.\n")
    print("| executor | config | runs | wall (s) | runs/s | parent peak RSS (MiB) | vs 1k |")
    print("|---|---|---:|---:|---:|---:|---:|")
    base: dict[str, float] = {}
    for executor, size, data in results:
        rss = data["peak_rss_mib"]
        base.setdefault(executor, rss)
        print(f"| {executor} | `configs/scale-{size}.yaml` | {int(data['rows']):,} | "
              f"{data['wall_s']:.1f} | {data['rows'] / data['wall_s']:.0f} | {rss:.0f} | "
              f"{rss / base[executor]:.2f}x |")


if __name__ == "__main__":
    main()
