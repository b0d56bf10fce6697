"""What the sweep tests share: a small trace and a config written beside it."""

from __future__ import annotations

from pathlib import Path

# Five layers, 1-3 MB gradients, so runs are fast but not trivial.
TRACE = "name,fwd_ms,bwd_ms,bytes\n" + "".join(
    f"l{i},{1 + i % 3},{2 + i % 2},{(i % 3 + 1) * 1_000_000}\n" for i in range(5)
)


def with_trace(folder: Path) -> Path:
    """``folder`` with the trace written to ``t.csv`` in it."""
    (folder / "t.csv").write_text(TRACE)
    return folder


def config(folder: Path, body: str, name: str = "c.yaml") -> Path:
    """A config in ``folder`` over the trace ``t.csv`` and ``body``."""
    path = folder / name
    path.write_text("traces: [t.csv]\n" + body)
    return path
