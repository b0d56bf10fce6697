"""Regenerate the README's result tables from fresh runs, in place.

Run from the repository root after anything that changes results (a rule, a trace, a
preset)::

    python docs/readme_tables.py           # rewrite the tables in README.md
    python docs/readme_tables.py --check   # exit 1 if README.md is not up to date

Two tables live between marker comments in README.md:

* ``quickstart``: the summary table that ``dearsim sweep configs/quickstart.yaml`` prints
  (the command is run in a fresh temporary results folder, exactly as a user runs it);
* ``shipped``: ``dearsim.compare`` on every shipped trace at 64 workers on the line-rate
  presets, iteration time in ms per schedule, with the best schedule and its speedup over
  ``wfbp`` (``T_wfbp / T``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WORKERS = 64
NETWORKS = ("10GbE", "100GbIB")


def quickstart_table() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, COLUMNS="132", TERM="dumb")
        proc = subprocess.run(
            [sys.executable, "-m", "dearsim", "sweep", "configs/quickstart.yaml",
             "--out", str(Path(tmp) / "quickstart")],
            cwd=ROOT, capture_output=True, text=True, env=env, check=True,
        )
    return "```\n" + proc.stdout.rstrip() + "\n```"


def shipped_table() -> str:
    import dearsim
    from dearsim import schedules, shipped

    names = schedules.names()
    lines = [f"| trace | network | {' | '.join(names)} | best |",
             "|---|---|" + "---:|" * len(names) + "---|"]
    for trace in shipped.trace_names():
        path = shipped.find_trace(trace)
        for net in NETWORKS:
            cmp = dearsim.compare(path, net, WORKERS)
            by = {r.scheduler: r for r in cmp.results}
            cells = [f"{by[n].iteration_time_s * 1e3:.1f}" for n in names]
            best = cmp.ranked()[0]
            lines.append(f"| {trace} | {net} | {' | '.join(cells)} | {best.scheduler} "
                         f"({cmp.speedup(best):.2f}x) |")
    return "\n".join(lines)


def replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:start/end --> markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = README.read_text(encoding="utf-8")
    new = replace(text, "quickstart", quickstart_table())
    new = replace(new, "shipped", shipped_table())
    if "--check" in argv:
        if new != text:
            print("README.md tables are out of date: run python docs/readme_tables.py")
            return 1
        print("README.md tables are up to date")
        return 0
    README.write_text(new, encoding="utf-8")
    print("rewrote the quickstart and shipped tables in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
