"""Print the README's table: `dearsim compare` on every shipped trace, 10GbE and 100GbIB,
64 workers. Run from the repository root: ``python docs/compare_shipped.py``."""

from __future__ import annotations

import dearsim
from dearsim import schedules, shipped

WORKERS = 64
NETWORKS = ("10GbE", "100GbIB")


def main() -> None:
    names = schedules.names()
    print(f"| trace | network | {' | '.join(names)} | best |")
    print("|---|---|" + "---:|" * len(names) + "---|")
    for trace in shipped.trace_names():
        path = shipped.find_trace(trace)
        for net in NETWORKS:
            cmp = dearsim.compare(path, net, WORKERS)
            by = {r.scheduler: r for r in cmp.results}
            cells = [f"{by[n].iteration_time_s * 1e3:.1f}" for n in names]
            best = cmp.ranked()[0]
            speedup = cmp.speedup(best)
            print(f"| {trace} | {net} | {' | '.join(cells)} | {best.scheduler} "
                  f"({speedup:.2f}x) |")


if __name__ == "__main__":
    main()
