"""The terms of ``terms_steadiness.sh``'s measurements: per model and setting, the median and
the range of each term over the repeats.

    python examples/calibration/terms_table.py examples/calibration/terms-steadiness
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

import yaml

#: (key in the file, heading, scale, unit)
TERMS = (
    ("compute_slowdown", "ranks' mutual slowdown", 1.0, ""),
    ("cluster_interference", "x", 1.0, ""),
    ("cluster_comm_interference", "y", 1.0, ""),
    ("comm_busy_fraction", "busy fraction", 1.0, ""),
    ("dear_overhead_s", "DeAR trainer", 1e3, " ms"),
    ("wfbp_overhead_s", "WFBP trainer", 1e3, " ms"),
)


def load(d: Path) -> dict[tuple[str, str], list[dict[str, float]]]:
    """(model, setting folder) -> the repeats' terms."""
    out: dict[tuple[str, str], list[dict[str, float]]] = {}
    for sub in sorted(p for p in d.iterdir() if p.is_dir()):
        for f in sorted(sub.glob("*.yaml")):
            m = re.fullmatch(r"(.+)-(\d+)\.yaml", f.name)
            if m:
                doc = yaml.safe_load(f.read_text(encoding="utf-8"))["interference"]
                out.setdefault((m.group(1), sub.name), []).append(doc)
    return out


def table(d: Path) -> str:
    lines = ["| model | setting | repeats | "
             + " | ".join(f"{h}: median [min, max]" for _, h, _, _ in TERMS) + " |",
             "|---|---|---:|" + "---:|" * len(TERMS)]
    for (model, setting), reps in load(d).items():
        cells = []
        for key, _, scale, unit in TERMS:
            vals = [float(r.get(key, 0.0)) * scale for r in reps]
            cells.append(f"{statistics.median(vals):.2f} [{min(vals):.2f}, {max(vals):.2f}]"
                         f"{unit}")
        lines.append(f"| {model} | {setting} | {len(reps)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
