"""How the error of the two-way model depends on ``y`` (``comm_interference``): the kept
measurements of a ``run_loop.sh`` directory predicted again (no training) with the terms,
the measured ``x`` and each ``y`` given, instead of the ``y`` that ``collect interference``
measured.

    python examples/calibration/comm_sensitivity.py examples/calibration/run7 [--mean] \
        [--ys 0,0.25,0.5,1,2,4,8,16]

For every ``y``: the median and worst |error| of ``predicted_cal_xy_ms`` (terms + x + y)
over the directory's rows, each row's error taken against the median of its repeats'
measured times (as ``summarize.py`` does). The last line gives the no-overlap bound with
the terms on the same rows. ``--mean`` uses the means' network fit.
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import yaml

from dearsim import load_network, load_trace
from dearsim.cli_collect import read_measured
from dearsim.collect import validate


def table(run: Path, mean: bool, ys: list[float]) -> str:
    """The markdown table for ``run`` (a ``run_loop.sh`` directory)."""
    net = load_network(str(run / f"gloo-loopback-2{'-mean' if mean else ''}.yaml"))
    works: dict[str, list[Path]] = {}
    for p in sorted(run.glob("validate-*-[0-9]*.result.json")):
        m = re.fullmatch(r"validate-(.+)-(\d+)\.result\.json", p.name)
        if m:
            works.setdefault(m.group(1), []).append(p)
    errs: dict[float, list[float]] = {y: [] for y in ys}
    serial: list[float] = []
    for work, paths in works.items():
        results = [read_measured(p)[2] for p in paths]
        trace = load_trace(run / f"{work}-cpu.csvy")
        terms = yaml.safe_load((run / f"{work}-interference.yaml").read_text())["interference"]
        med = [statistics.median(r["rows"][i]["measured_s"] for r in results) * 1e3
               for i in range(len(results[0]["rows"]))]
        for y in ys:
            rows = validate.predict(results[0], trace, net, {**terms, "comm_slowdown": 1 + y},
                                    stems={"cal_xy_"})
            errs[y] += [abs(r["predicted_cal_xy_ms"] / m - 1) * 100 for r, m in zip(rows, med)]
        rows = validate.predict(results[0], trace, net, terms, stems={"serial_cal_"})
        serial += [abs(r["predicted_serial_cal_ms"] / m - 1) * 100 for r, m in zip(rows, med)]
    lines = [f"| y | terms + x + y: median / worst abs. error ({len(serial)} rows) |",
             "|---:|---:|"]
    for y in ys:
        lines.append(f"| {y:g} | {statistics.median(errs[y]):.1f} / {max(errs[y]):.1f} % |")
    lines.append(f"| no overlap + terms | {statistics.median(serial):.1f} / "
                 f"{max(serial):.1f} % |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--mean", action="store_true")
    ap.add_argument("--ys", default="0,0.25,0.5,1,2,4,8,16")
    a = ap.parse_args()
    print(table(Path(a.run), a.mean, [float(y) for y in a.ys.split(",")]), end="")


if __name__ == "__main__":
    main()
