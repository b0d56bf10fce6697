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


class ParamError(DearsimError):
    """A bad value for one parameter of a library function.

    The message names the parameter as the library spells it (``batch_size must be a positive
    integer``); ``param`` holds that name so the command line can say which flag it was
    (``--batch-size``) without the library knowing about flags."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.detail = message

    def for_flag(self, flag: str) -> str:
        """The message with the parameter replaced by the flag that set it."""
        return f"{flag}: {self.detail}"
