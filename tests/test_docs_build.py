"""The documentation site builds with ``mkdocs build --strict``: no broken link or anchor
between the pages, no page missing from the nav, no docstring the API reference cannot
render. Skipped when mkdocs, its Material theme or mkdocstrings is missing
(``pip install -e '.[docs]'``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings")
pytest.importorskip("mkdocstrings_handlers.python")


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = dict(os.environ)
    # the API reference imports nothing, but reads this checkout's sources (paths: [.])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["NO_MKDOCS_2_WARNING"] = "1"  # a banner of the Material theme, not about our pages
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    site = tmp_path / "site"
    for page in ("index.html", "guide/index.html", "model/index.html", "api/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "dearsim.api.simulate" in api  # the API reference was generated, not left empty
    assert ":func:" not in api and ":class:" not in api  # reST roles were turned into code
