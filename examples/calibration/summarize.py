"""Markdown tables of a ``run_loop.sh`` directory: measured vs predicted, over repeats.

    python examples/calibration/summarize.py examples/calibration/run3
    python examples/calibration/summarize.py --two-way examples/calibration/run7/two-way

For every workload (``validate-NAME-K.csv``, K = 1..REPEATS) and setting: the median of the
repeats' measured times and their spread (max / min - 1), and each prediction's error
against that median (``error = predicted / measured - 1``). Then the median and worst
|error| of each prediction over all rows and per workload, and the noise floor: how far
the repeats of one setting are from each other. docs/validation.md prints these tables;
``tests/test_validation_docs.py`` checks that it still does.
"""

from __future__ import annotations

import csv
import re
import statistics
import sys
from pathlib import Path

#: (column stem, heading) of the predictions shown
SHOWN = (
    ("", "trace + network"),
    ("cal_x_", "+ terms + x"),
    ("serial_", "no overlap"),
    ("serial_cal_", "no overlap + terms"),
)
#: the predictions with both interferences (``two_way.sh``), for ``--two-way``
TWO_WAY = (
    ("cal_x_", "+ terms + x"),
    ("xy_", "+ x + y"),
    ("cal_xy_", "+ terms + x + y"),
    ("serial_cal_", "no overlap + terms"),
)
ORDER = ("mlp-b32", "small-cnn-b16", "mlp-b256", "convhead-b16")


def load(d: Path) -> dict[str, list[list[dict[str, str]]]]:
    """workload -> repeats -> rows."""
    runs: dict[str, dict[int, list[dict[str, str]]]] = {}
    for p in d.glob("validate-*.csv"):
        m = re.fullmatch(r"validate-(.+)-(\d+)\.csv", p.name)
        if not m:
            continue
        with p.open(encoding="utf-8") as f:
            runs.setdefault(m.group(1), {})[int(m.group(2))] = list(csv.DictReader(f))
    order = [w for w in ORDER if w in runs] + sorted(set(runs) - set(ORDER))
    return {w: [runs[w][k] for k in sorted(runs[w])] for w in order}


def rows(d: Path, shown: tuple[tuple[str, str], ...] = SHOWN) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for work, reps in load(d).items():
        for i, first in enumerate(reps[0]):
            same = [r[i] for r in reps]
            assert all(r["setting"] == first["setting"] for r in same), (work, i)
            meas = [float(r["measured_ms"]) for r in same]
            med = statistics.median(meas)
            row: dict[str, object] = {
                "workload": work.replace("-b", " b"), "schedule": first["schedule"],
                "setting": first["setting"], "prefetch": first.get("prefetch", ""),
                "measured": med, "spread": max(meas) / min(meas) - 1, "repeats": len(meas),
            }
            for stem, _ in shown:
                pred = float(first[f"predicted_{stem}ms"])  # the same in every repeat
                row[f"p_{stem}"] = pred
                row[f"e_{stem}"] = (pred / med - 1) * 100
            out.append(row)
    return out


def tables(d: Path, shown: tuple[tuple[str, str], ...] = SHOWN) -> str:
    rs = rows(d, shown)
    lines = [
        "| workload | schedule | setting | prefetch | measured ms (median) | spread | "
        + " | ".join(f"{h} ms | error" for _, h in shown) + " |",
        "|---|---|---|---|---:|---:|" + "---:|---:|" * len(shown),
    ]
    for r in rs:
        cells = "".join(f" {r[f'p_{s}']:.2f} | {r[f'e_{s}']:+.1f} % |" for s, _ in shown)
        lines.append(f"| {r['workload']} | {r['schedule']} | {r['setting']} | {r['prefetch']} | "
                     f"{r['measured']:.2f} | {100 * r['spread']:.0f} % |{cells}")
    lines += ["", "| rows | median spread of repeats | "
              + " | ".join(f"{h}: median / worst abs. error" for _, h in shown) + " |",
              "|---|---:|" + "---:|" * len(shown)]
    groups = [("all " + str(len(rs)), rs)] + [
        (w, [r for r in rs if r["workload"] == w]) for w in dict.fromkeys(r["workload"] for r in rs)
    ]
    for name, g in groups:
        spread = statistics.median(float(r["spread"]) for r in g) * 100
        cells = []
        for s, _ in shown:
            errs = [abs(float(r[f"e_{s}"])) for r in g]
            cells.append(f"{statistics.median(errs):.1f} / {max(errs):.1f} %")
        lines.append(f"| {name} | {spread:.0f} % | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    args = sys.argv[1:]
    two_way = "--two-way" in args
    args = [a for a in args if a != "--two-way"]
    sys.stdout.write(tables(Path(args[0] if args else "."), TWO_WAY if two_way else SHOWN))
