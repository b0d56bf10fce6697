"""Re-predict the measured rows of a ``dearsim validate`` CSV with the interference
parameter of other ``collect interference`` files (no training: the measured times stay).

    python examples/calibration/interference_sensitivity.py TRACE NETWORK VALIDATE_CSV \
        --bucket-caps 0.5,1 --thresholds 0.5,1,25 TERMS.yaml [TERMS.yaml ...]

For each file, and for the median ``x`` over all of them, prints ``x`` and the median and
worst |error| of the predictions with ``x`` (raw trace, and with the file's terms applied):
how much the with-interference error depends on which measurement of ``x`` one takes.
The rows must be those of ``validate.settings(bucket caps, thresholds)`` in that order (what
``dearsim validate`` writes).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import yaml

from dearsim import load_network, load_trace
from dearsim.collect import validate
from dearsim.collect.interference import cluster_interference
from dearsim.schedules.dear import greedy_groups


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("network")
    ap.add_argument("csv")
    ap.add_argument("terms", nargs="+")
    ap.add_argument("--bucket-caps", default="0.5,1")
    ap.add_argument("--thresholds", default="0.5,1,25")
    a = ap.parse_args()
    trace = load_trace(a.trace)
    net = load_network(a.network)
    caps = [float(c) for c in a.bucket_caps.split(",")]
    ths = [None if t == "null" else float(t) for t in a.thresholds.split(",")]
    measured = list(csv.DictReader(Path(a.csv).open(encoding="utf-8")))
    # the DeAR rows' prefetch rules, in the order validate runs them (older files: next)
    pfs = [pf for pf in ("next", "chain") if any(r.get("prefetch") == pf for r in measured)]
    sets = validate.settings(caps, ths, pfs or ["next"])
    assert [s["schedule"] for s in sets] == [r["schedule"] for r in measured], "other settings"
    rows = []
    for s, m in zip(sets, measured):
        row = {**s, "measured_s": float(m["measured_ms"]) / 1e3}
        if s["schedule"] == "dear":
            row["groups"] = [(g.first, g.last)
                             for g in greedy_groups(trace, s["options"]["threshold_mb"])]
        rows.append(row)
    result = {"world": int(measured[0]["ranks"]), "rows": rows}
    files = [(p, yaml.safe_load(Path(p).read_text(encoding="utf-8"))["interference"])
             for p in a.terms]
    xs = [cluster_interference(t)[0] for _, t in files]
    runs = [(Path(p).name, t, x) for (p, t), x in zip(files, xs)]
    # the median x (r = 1 + x with the link always busy gives exactly x), with the first
    # file's terms
    runs.append(("median x", {**files[0][1], "comm_compute_slowdown": 1.0 + statistics.median(xs),
                              "comm_busy_fraction": 1.0}, statistics.median(xs)))
    print(f"{'interference file':<40} {'x':>7} {'+ x: median':>12} {'worst':>7} "
          f"{'+ terms + x: median':>20} {'worst':>7}")
    for name, terms, x in runs:
        pred = validate.predict(result, trace, net, terms)
        m1, w1 = validate.summary(pred, "error_x_pct")
        m2, w2 = validate.summary(pred, "error_cal_x_pct")
        print(f"{name:<40} {x:>7.4f} {m1:>11.1f}% {w1:>6.1f}% {m2:>19.1f}% {w2:>6.1f}%")


if __name__ == "__main__":
    main()
