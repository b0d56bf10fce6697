"""The notebooks under ``notebooks/`` run from top to bottom and draw something.

Each jupytext percent script is converted to a notebook and executed with nbclient in a
fresh kernel whose working directory is a temporary folder (so nothing depends on being run
from the repository root), with this checkout first on ``PYTHONPATH``. A notebook fails on
any cell that raises, on a cell that runs longer than ``CELL_TIMEOUT_S``, and when it
produced no image: a notebook that silently plots nothing is broken too.

Skipped when jupytext, nbclient or ipykernel is missing (``pip install -e '.[notebooks]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 120

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def test_the_notebooks_are_there() -> None:
    names = [p.stem for p in NOTEBOOKS]
    for stem in ("01_quickstart", "02_speedup_curves", "03_fusion_search", "04_calibration",
                 "05_timelines", "06_clusters", "07_interference"):
        assert stem in names


def _images(nb) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = jupytext.read(path)
    assert any(c.cell_type == "markdown" for c in nb.cells), f"{path.name}: no text cells"
    # The kernel inherits this environment: it must import this checkout's dearsim, and
    # draw without a display.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}", pytrace=False)
    assert _images(nb) >= 1, f"{path.name}: ran, but drew no image"
    printed = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    ]
    assert printed, f"{path.name}: ran, but printed nothing"
