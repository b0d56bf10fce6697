"""The repository is self-contained: no tracked file points at the private contract the
project was first written against, nor at its section numbers. The model lives in
``docs/model.md``.

The forbidden strings are built from pieces so that this file does not contain them.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_S = "SP" + "EC"
_R = "REFER" + "ENCE"
#: (what it is, a compiled pattern)
FORBIDDEN = [
    ("a path into the shared folder", re.compile(re.escape(".." + "/shared"))),
    ("the contract file", re.compile(re.escape("shared/" + _S))),
    ("the reference file", re.compile(re.escape(_R + ".md"))),
    ("the contract file", re.compile(re.escape(_S + ".md"))),
    (f"the word {_S!r}", re.compile(r"\b" + _S + r"\b")),
    ("a section mark", re.compile(chr(0xA7))),
]

SKIP_DIRS = {".git", ".venv", "out", "__pycache__"}


def tracked_files() -> list[Path]:
    """Files tracked by git, or, outside a git checkout, every file under the root except
    virtual environments, build metadata and outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        names = [n for n in out.decode("utf-8").split("\0") if n]
        if names:
            return [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        files += [Path(dirpath) / f for f in filenames]
    return files


def _text(path: Path) -> str | None:
    """The file as text, or None for a binary or unreadable file (images, parquet...)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def find_references(files: list[Path]) -> list[str]:
    hits = []
    for path in files:
        text = _text(path)
        if text is None:
            continue
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for lineno, line in enumerate(text.splitlines(), 1):
            found = list(dict.fromkeys(w for w, pattern in FORBIDDEN if pattern.search(line)))
            if found:
                hits.append(f"{rel}:{lineno}: {', '.join(found)}: {line.strip()[:120]}")
    return hits


def test_the_patterns_catch_what_they_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(
        "\n".join(
            [
                "see " + ".." + "/shared/notes",
                "the " + _S + " says",
                "in " + _R + ".md",
                "rule " + chr(0xA7) + "3",
                "fine: SPECIAL, spectrum, respect",
            ]
        ),
        encoding="utf-8",
    )
    hits = find_references([bad])
    assert [h.split(":")[1] for h in hits] == ["1", "2", "3", "4"]


def test_no_tracked_file_refers_to_the_private_contract() -> None:
    files = tracked_files()
    assert files, "found no files to check"
    hits = find_references(files)
    assert not hits, "references to the private contract (say it in docs/model.md):\n" + (
        "\n".join(hits)
    )
