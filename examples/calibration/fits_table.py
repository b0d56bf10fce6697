"""The fits of ``repeat_fits.sh``: per run, each collective's startup a (us) and cost per byte
b (ns/B) fitted to the per-size medians and to the means, then each column's spread
(max / min) and what a 4 KiB and a 1 MiB all-reduce cost under each run's fit.

    python examples/calibration/fits_table.py OUTDIR
    python examples/calibration/fits_table.py OUTDIR1 OUTDIR2 ...   # how steady each is
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


def steadiness(dirs: dict[str, Path]) -> str:
    """Per directory and statistic: the fits' R^2 (median and lowest over every collective
    and run) and the coefficient of variation (stdev / mean over the runs) of the
    all-reduce's startup and of each collective's predicted time at 1 MiB."""
    import re
    import statistics

    lines = ["| runs | stat | R^2 median | R^2 lowest | CV all-reduce a | CV all-reduce 1 MiB "
             "| CV reduce-scatter 1 MiB | CV all-gather 1 MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, out in dirs.items():
        for prefix, stat in STATS:
            files = sorted(out.glob(f"{prefix}[0-9]*.yaml"), key=lambda p: int(p.stem[1:]))
            docs = [yaml.safe_load(p.read_text()) for p in files]
            r2 = [float(re.search(r"R\^2 = ([0-9.]+)", t).group(1))
                  for d in docs for t in d["sources"].values()]
            cols = [[d["fits"][0]["allreduce"]["a_s"] for d in docs]]
            for op, _ in OPS:
                cols.append([d["fits"][0][op]["a_s"] + d["fits"][0][op]["b_s_per_byte"] * 2**20
                             for d in docs])
            cvs = [statistics.stdev(c) / statistics.mean(c) * 100 for c in cols]
            lines.append(f"| {label} ({len(docs)}) | {stat} | {statistics.median(r2):.3f} | "
                         f"{min(r2):.3f} | " + " | ".join(f"{c:.0f} %" for c in cvs) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2:  # several directories: how steady their fits are
        print(steadiness({Path(a).name: Path(a) for a in sys.argv[1:]}))
    else:
        print(table(Path(sys.argv[1])))
