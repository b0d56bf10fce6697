"""Safe YAML loading that remembers where every value came from.

Only :class:`yaml.SafeLoader` is used: nothing in a YAML file can construct Python objects.
Hostile documents are refused before they cost time or memory: a document larger than
:data:`MAX_BYTES`, nested deeper than :data:`MAX_DEPTH`, or whose aliases expand to more than
:data:`MAX_VALUES` values (a "billion laughs" alias bomb) is an error naming the limit.
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

class LimitError(DearsimError):
    """A document refused for its size, depth or expansion (not for its syntax)."""


#: The largest YAML document read (configs, trace headers and network files are small).
MAX_BYTES = 4 << 20
#: The deepest nesting of mappings and sequences accepted.
MAX_DEPTH = 64
#: The most values a document may hold once its aliases are expanded.
MAX_VALUES = 200_000


def read_text(path: Any, what: str) -> str:
    """The text of a YAML (or CSVY) file, refusing one larger than :data:`MAX_BYTES` before
    reading it. ``what`` names the file's role in messages (``config``, ``network file``)."""
    import os

    size = os.stat(path).st_size
    if size > MAX_BYTES:
        raise LimitError(
            f"{path}: the {what} is {size:,} bytes; dearsim reads at most {MAX_BYTES:,}"
        )
    with open(path, encoding="utf-8-sig") as f:
        return f.read(MAX_BYTES + 1)


def _check_shape(node: yaml.Node, source: str, line_offset: int) -> None:
    """Refuse a node graph nested too deep or expanding to too many values, walking it once
    with an explicit stack (aliases are shared nodes: an alias bomb is a small graph that
    expands to billions of values; the walk stops at the limit)."""
    count = 0
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        line = current.start_mark.line + 1 + line_offset
        if count > MAX_VALUES:
            raise LimitError(
                f"{source}:{line}: the document expands to more than {MAX_VALUES:,} values"
                " (aliases repeated inside aliases?); dearsim refuses it"
            )
        if isinstance(current, yaml.MappingNode | yaml.SequenceNode):
            if depth > MAX_DEPTH:
                raise LimitError(
                    f"{source}:{line}: nested deeper than {MAX_DEPTH} levels; dearsim refuses it"
                )
            if isinstance(current, yaml.MappingNode):
                for key_node, value_node in current.value:
                    stack.append((key_node, depth + 1))
                    stack.append((value_node, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in current.value)


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
    if len(text) > MAX_BYTES:
        raise LimitError(
            f"{source}: the YAML document is {len(text):,} characters; dearsim reads at most"
            f" {MAX_BYTES:,}"
        )
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, marks
            _check_shape(node, source, line_offset)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise LimitError(
            f"{source}: nested too deeply to parse (dearsim accepts {MAX_DEPTH} levels)"
        ) from None
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
    """Parse a ``--set`` value the way YAML would (``null``, ``25``, ``[[0, 3]]``, ``abc``),
    with the same limits as a file."""
    try:
        data, _ = load(text, "--set value")
        return data
    except LimitError:
        raise
    except DearsimError:
        return text


def validate(model: Any, data: Any, marks: Marks, prefix: Path = ()) -> Any:
    """Validate ``data`` with a pydantic ``model``; on failure raise a :class:`DearsimError`
    naming the file, line and dotted path of the most relevant problem."""
    import pydantic

    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise DearsimError(explain(exc, data, marks, prefix)) from None


def explain(exc: Any, data: Any, marks: Marks, prefix: Path = ()) -> str:
    """``file:line: path: message`` for a pydantic ValidationError.

    Pydantic reports one error per member of a union (``list[int] | int`` fails as "not a
    list" *and* as "not greater than 0"); the one worth showing is the member whose type
    matched. Its location also names union members (``list[...]``, ``str``): only the parts
    that index into the data are kept."""
    errors = exc.errors()

    def data_path(loc: tuple[Any, ...]) -> Path:
        cur, out = data, []
        for part in loc:
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
                out.append(part)
            elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
                cur = cur[part]
                out.append(part)
        return tuple(out)

    def rank(err: dict[str, Any]) -> tuple[int, int]:
        mismatch = err["type"].endswith("_type") or err["type"] in ("model_attributes_type",)
        return (0 if mismatch else 1, len(data_path(err["loc"])))

    err = max(errors, key=rank)
    path = prefix + data_path(err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{marks.locate(path)}: unknown key"
    if err["type"] == "missing":
        return f"{marks.locate(path + (err['loc'][-1],))}: required, but missing"
    return f"{marks.locate(path)}: {clean_message(err['msg'])}"


def clean_message(msg: str) -> str:
    """A pydantic error message without its ``Value error, `` prefix."""
    return msg.removeprefix("Value error, ")
