"""User-facing errors.

Every mistake a user can make (a missing file, a malformed row, an unknown option) raises a
:class:`DearsimError` whose message names the file, line or field. The command line prints that
message as one line on standard error and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations


class DearsimError(Exception):
    """A problem with the user's input, reported as one clear line."""


def where(source: str | None, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix such as ``traces/x.csv:12: field 'bwd_ms'``."""
    parts: list[str] = []
    loc = source or "<input>"
    if line is not None:
        loc += f":{line}"
    parts.append(loc)
    if field:
        parts.append(field)
    return ": ".join(parts)
