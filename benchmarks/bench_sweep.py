#!/usr/bin/env python
"""Wall time of a whole sweep, end to end, as a user runs it.

    python benchmarks/bench_sweep.py                        # configs/paper.yaml, 2 jobs, 3 repeats
    python benchmarks/bench_sweep.py --config configs/scale.yaml --jobs 2 --repeat 3

Each repeat runs ``dearsim sweep CONFIG --jobs N --out TMP`` in a fresh process (imports,
config validation, the process pool, every run, the tables and the plot included) and times
it with :func:`time.perf_counter`. Reported: the median, min and max wall time, and runs per
second at the median.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "paper.yaml"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times = []
    runs = failed = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            cmd = [sys.executable, "-m", "dearsim", "sweep", args.config, "--jobs",
                   str(args.jobs), "--out", str(out)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
            rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
            runs = len(rows)
            failed = sum(r["status"] != "ok" for r in rows)
    med = statistics.median(times)
    config = Path(args.config).resolve()
    shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    print(f"config: {shown}")
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"runs: {runs} ({failed} failed), jobs: {args.jobs}, repeats: {args.repeat}")
    print(f"wall time: median {med:.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
          f"{runs / med:.1f} runs/s at the median")


if __name__ == "__main__":
    main()
