"""Finding the traces that ship with dearsim by name (``resnet50-b64`` for
``traces/resnet50-b64.csvy``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SUFFIXES = (".csvy", ".csv")


def trace_dirs() -> list[Path]:
    """Folders searched for shipped traces: the repository's ``traces/`` (a checkout or an
    editable install) and the copy packaged in a wheel (``dearsim/_traces``)."""
    dirs = []
    checkout = Path(__file__).resolve().parent.parent / "traces"
    if checkout.is_dir():
        dirs.append(checkout)
    packaged = resources.files("dearsim") / "_traces"
    if packaged.is_dir():
        dirs.append(Path(str(packaged)))
    return dirs


def trace_names() -> list[str]:
    names = set()
    for d in trace_dirs():
        for p in d.iterdir():
            if p.suffix in SUFFIXES:
                names.add(p.stem)
    return sorted(names)


def find_trace(name: str) -> Path | None:
    """The file of shipped trace ``name``, or None."""
    for d in trace_dirs():
        for suffix in SUFFIXES:
            p = d / f"{name}{suffix}"
            if p.is_file():
                return p
    return None
