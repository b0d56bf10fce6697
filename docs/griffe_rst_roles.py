"""A griffe extension for the API reference (mkdocs.yml loads it): dearsim's docstrings are
written with reST roles (``:func:`simulate```, ``:class:`~dearsim.trace.Trace```) and
literal-block markers (``Quick use::``), which Markdown would show as they are. This turns a
role into a code span (``~`` keeps the last dotted part, as Sphinx does) and a trailing
``::`` into ``:``, on the rendered copy only: the source is not touched."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const|type):`(~?)([^`]+)`")
LITERAL = re.compile(r"(?<=\S)::[ \t]*$", re.M)


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def convert(text: str) -> str:
    return LITERAL.sub(":", ROLE.sub(_role, text))


class RstRoles(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
