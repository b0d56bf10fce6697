"""The fits of ``repeat_fits.sh``: per run, each collective's startup a (us) and cost per byte
b (ns/B) fitted to the per-size medians and to the means, then each column's spread
(max / min) and what a 4 KiB and a 1 MiB all-reduce cost under each run's fit.

    python examples/calibration/fits_table.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

OPS = (("allreduce", "all-reduce"), ("reduce_scatter", "reduce-scatter"),
       ("all_gather", "all-gather"))
STATS = (("m", "median"), ("a", "mean"))


def fits(out: Path, prefix: str) -> list[dict]:
    files = sorted(out.glob(f"{prefix}[0-9]*.yaml"), key=lambda p: int(p.stem[1:]))
    return [yaml.safe_load(p.read_text())["fits"][0] for p in files]


def table(out: Path) -> str:
    lines = []
    head = "| stat | run | " + " | ".join(f"{w} a (us) | b (ns/B)" for _, w in OPS)
    head += " | AR 4 KiB (ms) | AR 1 MiB (ms) |"
    lines += [head, "|---|---:|" + "---:|" * (2 * len(OPS) + 2)]
    spreads = []
    for prefix, stat in STATS:
        fs = fits(out, prefix)
        cols: list[list[float]] = []
        for k, f in enumerate(fs, start=1):
            row = []
            for op, _ in OPS:
                row += [f[op]["a_s"] * 1e6, f[op]["b_s_per_byte"] * 1e9]
            ar = f["allreduce"]
            row += [(ar["a_s"] + ar["b_s_per_byte"] * 4096) * 1e3,
                    (ar["a_s"] + ar["b_s_per_byte"] * (1 << 20)) * 1e3]
            cols.append(row)
            cells = [f"{v:.0f}" if i % 2 == 0 and i < 6 else
                     (f"{v:.3f}" if i < 6 else f"{v:.2f}") for i, v in enumerate(row)]
            lines.append(f"| {stat} | {k} | " + " | ".join(cells) + " |")
        spread = [max(c) / min(c) if min(c) > 0 else float("inf") for c in zip(*cols)]
        spreads.append((stat, spread))
    for stat, spread in spreads:
        lines.append(f"| {stat} | max/min | " + " | ".join(f"{s:.2f}x" for s in spread) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
