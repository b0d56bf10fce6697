"""Draw the pictures of docs/clusters.md: the plots that ``dearsim sweep`` writes for the
shipped configs ``configs/stragglers.yaml`` and ``configs/hierarchy.yaml``, copied to
``docs/clusters_stragglers.png`` and ``docs/clusters_hierarchy.png``. Run from the
repository root: ``python docs/make_cluster_plots.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
#: (config, the plot the sweep writes, the picture in docs/)
PICTURES = (
    ("stragglers", "iteration_time.png", "clusters_stragglers.png"),
    ("hierarchy", "iteration_time.png", "clusters_hierarchy.png"),
)


def main() -> list[Path]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for config, plot, picture in PICTURES:
            folder = Path(tmp) / config
            subprocess.run(
                [sys.executable, "-m", "dearsim", "sweep", str(ROOT / "configs" / f"{config}.yaml"),
                 "--out", str(folder), "--jobs", "2"],
                check=True, stdout=subprocess.DEVNULL,
            )
            shutil.copyfile(folder / plot, DOCS / picture)
            out.append(DOCS / picture)
    return out


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path}")
