"""Safe YAML loading that remembers where every value came from.

Only :class:`yaml.SafeLoader` is used: nothing in a YAML file can construct Python objects.
Besides the data, :func:`load` returns a :class:`Marks` table from a key path such as
``("sweep", "grid", "workers", 2)`` to the 1-based line the value starts on, so validation
errors can say ``config.yaml:14: sweep.grid.workers[2]: must be a positive integer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import DearsimError

Path = tuple[str | int, ...]


@dataclass
class Marks:
    """Line numbers (1-based) of the values of a YAML document, by key path."""

    source: str
    lines: dict[Path, int] = field(default_factory=dict)
    line_offset: int = 0

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p] + self.line_offset
            if not p:
                return None
            p = p[:-1]

    def locate(self, path: Sequence[str | int]) -> str:
        """``source:line: dotted.path`` for an error message."""
        line = self.line(path)
        loc = self.source if line is None else f"{self.source}:{line}"
        dotted = format_path(path)
        return f"{loc}: {dotted}" if dotted else loc


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(child, path + (i,), lines)


def load(text: str, source: str, line_offset: int = 0) -> tuple[Any, Marks]:
    """Parse one YAML document safely; return the data and its :class:`Marks`."""
    marks = Marks(source=source, line_offset=line_offset)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, marks
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 + line_offset) if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        loc = source if line is None else f"{source}:{line}"
        raise DearsimError(f"{loc}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise DearsimError(f"{source}: invalid YAML: {exc}") from None
    _walk(node, (), marks.lines)
    return data, marks


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``null``, ``25``, ``[[0, 3]]``, ``abc``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def validate(model: Any, data: Any, marks: Marks, prefix: Path = ()) -> Any:
    """Validate ``data`` with a pydantic ``model``; on failure raise a :class:`DearsimError`
    naming the file, line and dotted path of the first problem."""
    import pydantic

    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        path = prefix + tuple(err["loc"])
        msg = clean_message(err["msg"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise DearsimError(f"{marks.locate(path)}: {msg}") from None


def clean_message(msg: str) -> str:
    """A pydantic error message without its ``Value error, `` prefix."""
    return msg.removeprefix("Value error, ")
