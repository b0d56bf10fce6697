"""Workloads: per-layer compute traces (see ``docs/model.md``) and their file formats.

A :class:`Trace` lists layers ``0..L-1`` in forward order with forward time, backward time,
gradient size in bytes and an optional optimiser-update time, and optionally each layer's
gradient broken down into its parameter tensors. Times are seconds inside the library; files
name the unit of every column.

Two formats are read by :func:`load_trace`:

* **dearsim trace (CSVY)**: a YAML header between two ``---`` lines (format name, version,
  model, batch size, provenance), then a CSV table with the columns below. Written by
  :func:`save_trace`. Version 1 has the layer columns only; version 2 adds the per-tensor
  columns. :func:`format_trace` writes version 2 only for a trace with a breakdown, so a
  trace without one is still a version-1 file that older readers accept.
* **plain CSV** with the header ``name,fwd_ms,bwd_ms,bytes``, rows in forward order.

Optional columns in both: ``update_ms``; ``tensor_bytes`` (the layer's parameter tensors'
gradient bytes in registration order, separated by ``;``, summing to ``bytes``; empty: no
breakdown for that layer) and ``tensor_names`` (their names, same count, e.g.
``weight;bias``; needs ``tensor_bytes``). See ``docs/traces.md``.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from . import _yaml
from ._types import PosInt
from .errors import DearsimError

FORMAT_NAME = "dearsim-trace"
#: The newest CSVY version: 2 (per-tensor columns). Version 1 files are still read, and a
#: trace without a breakdown is still written as version 1.
FORMAT_VERSION = 2
FORMAT_VERSIONS = (1, 2)
REQUIRED_COLUMNS = ("name", "fwd_ms", "bwd_ms", "bytes")
TENSOR_COLUMNS = ("tensor_bytes", "tensor_names")
OPTIONAL_COLUMNS = ("update_ms", *TENSOR_COLUMNS)
#: Separator of the values inside ``tensor_bytes`` and ``tensor_names``.
TENSOR_SEP = ";"


@dataclass(frozen=True)
class Trace:
    """A data-parallel training workload, one entry per layer in forward order.

    ``fwd``, ``bwd`` and ``update`` are seconds; ``size`` is gradient bytes (0 for layers
    without parameters).
    """

    names: tuple[str, ...]
    fwd: tuple[float, ...]
    bwd: tuple[float, ...]
    size: tuple[int, ...]
    update: tuple[float, ...]
    name: str = "trace"
    batch_size: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    #: Per layer, the gradient bytes of its parameter tensors in the order the framework
    #: registers them (they sum to ``size[l]``; a layer without parameters has none). Without
    #: a breakdown each layer with a gradient is one tensor.
    tensors: tuple[tuple[int, ...], ...] = ()
    #: Per layer, the names of its tensors (``""`` where the trace names none).
    tensor_names: tuple[tuple[str, ...], ...] = ()
    #: Whether the trace gave a per-tensor breakdown (else ``tensors`` is one per layer).
    has_breakdown: bool = False

    def __post_init__(self) -> None:
        if not self.tensors:
            per_layer = tuple((s,) if s > 0 else () for s in self.size)
            object.__setattr__(self, "tensors", per_layer)
        if not self.tensor_names:
            object.__setattr__(
                self, "tensor_names", tuple(("",) * len(t) for t in self.tensors)
            )

    @classmethod
    def from_layers(
        cls,
        fwd: Sequence[float],
        bwd: Sequence[float],
        size: Sequence[int],
        update: Sequence[float] | None = None,
        names: Sequence[str] | None = None,
        *,
        name: str = "trace",
        batch_size: int | None = None,
        meta: Mapping[str, Any] | None = None,
        source: str | None = None,
        tensors: Sequence[Sequence[int] | None] | None = None,
        tensor_names: Sequence[Sequence[str] | None] | None = None,
    ) -> Trace:
        """Build a trace from per-layer values in seconds and bytes, validating them.

        ``tensors`` optionally breaks each layer's gradient into its parameter tensors (bytes,
        in registration order, summing to ``size[l]``; ``None`` or an empty list for a layer
        means "no breakdown": one tensor if it has a gradient). ``tensor_names`` names them."""
        n = len(fwd)
        if n == 0:
            raise DearsimError(f"{source or name}: a trace needs at least one layer")
        update = [0.0] * n if update is None else list(update)
        names = [f"layer{i}" for i in range(n)] if names is None else list(names)
        for label, seq in (("bwd", bwd), ("size", size), ("update", update), ("names", names)):
            if len(seq) != n:
                raise DearsimError(
                    f"{source or name}: '{label}' has {len(seq)} entries, 'fwd' has {n}"
                )
        for label, seq in (("fwd", fwd), ("bwd", bwd), ("update", update)):
            for i, v in enumerate(seq):
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise DearsimError(
                        f"{source or name}: layer {i}: '{label}' must be a finite number >= 0,"
                        f" got {v!r}"
                    )
        sizes: list[int] = []
        for i, v in enumerate(size):
            if not (isinstance(v, (int, float)) and float(v).is_integer() and v >= 0):
                raise DearsimError(
                    f"{source or name}: layer {i}: 'size' must be a whole number of bytes >= 0,"
                    f" got {v!r}"
                )
            sizes.append(int(v))
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise DearsimError(f"{source or name}: batch_size must be a positive integer")
        per_tensor, per_names = _check_tensors(
            sizes, tensors, tensor_names, [str(x) for x in names], source or name
        )
        return cls(
            names=tuple(str(x) for x in names),
            fwd=tuple(float(x) for x in fwd),
            bwd=tuple(float(x) for x in bwd),
            size=tuple(sizes),
            update=tuple(float(x) for x in update),
            name=name,
            batch_size=batch_size,
            meta=dict(meta or {}),
            source=source,
            tensors=per_tensor,
            tensor_names=per_names,
            has_breakdown=tensors is not None and any(t for t in tensors),
        )

    @functools.cached_property
    def num_tensors(self) -> int:
        """Gradient tensors in the whole model."""
        return sum(len(t) for t in self.tensors)

    @property
    def num_layers(self) -> int:
        return len(self.fwd)

    @functools.cached_property
    def compute_time(self) -> float:
        """Compute-stream time of one iteration: forward + backward + update (s)."""
        return math.fsum(self.fwd) + math.fsum(self.bwd) + math.fsum(self.update)

    @functools.cached_property
    def total_bytes(self) -> int:
        return sum(self.size)

    @functools.cached_property
    def size_prefix(self) -> tuple[int, ...]:
        """Running sums of the gradient bytes: layers ``lo..hi`` hold
        ``size_prefix[hi + 1] - size_prefix[lo]`` bytes (exact: integers)."""
        return tuple(itertools.accumulate(self.size, initial=0))

    @functools.cached_property
    def grad_layers(self) -> tuple[int, ...]:
        """Indices of the layers that have a gradient (``size > 0``), in forward order."""
        return tuple(i for i, s in enumerate(self.size) if s > 0)

    def to_frame(self) -> Any:
        """The layers as a :class:`pandas.DataFrame` (times in ms, as in the files).

        A trace with a per-tensor breakdown also has the columns ``tensor_bytes`` and
        ``tensor_names``, the ``;``-separated text the files hold, and ``tensors`` (how many
        tensors each layer has)."""
        import pandas as pd

        cols: dict[str, Any] = {
            "name": self.names,
            "fwd_ms": [x * 1e3 for x in self.fwd],
            "bwd_ms": [x * 1e3 for x in self.bwd],
            "bytes": self.size,
            "update_ms": [x * 1e3 for x in self.update],
        }
        if self.has_breakdown:
            cols["tensors"] = [len(t) for t in self.tensors]
            cols["tensor_bytes"] = [_join_bytes(t) for t in self.tensors]
            cols["tensor_names"] = [_join_names(n) for n in self.tensor_names]
        return pd.DataFrame(cols)


def _join_bytes(tensors: Sequence[int]) -> str:
    return TENSOR_SEP.join(str(b) for b in tensors)


def _join_names(names: Sequence[str]) -> str:
    """``weight;bias``; empty when the layer's tensors are unnamed."""
    return TENSOR_SEP.join(names) if any(names) else ""


def _check_tensors(
    sizes: list[int],
    tensors: Sequence[Sequence[int] | None] | None,
    tensor_names: Sequence[Sequence[str] | None] | None,
    names: list[str],
    where: str,
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[str, ...], ...]]:
    """Validate a per-tensor breakdown; fill layers without one with one tensor."""
    n = len(sizes)
    if tensors is not None and len(tensors) != n:
        raise DearsimError(f"{where}: 'tensors' has {len(tensors)} entries for {n} layers")
    if tensor_names is not None and len(tensor_names) != n:
        raise DearsimError(
            f"{where}: 'tensor_names' has {len(tensor_names)} entries for {n} layers"
        )
    out: list[tuple[int, ...]] = []
    out_names: list[tuple[str, ...]] = []
    for i, total in enumerate(sizes):
        given = tensors[i] if tensors is not None else None
        if given is None or len(given) == 0:
            layer_tensors: tuple[int, ...] = (total,) if total > 0 else ()
        else:
            vals = []
            for v in given:
                if isinstance(v, bool) or not (
                    isinstance(v, (int, float)) and float(v).is_integer() and v > 0
                ):
                    raise DearsimError(
                        f"{where}: layer {i} ({names[i]}): a tensor's bytes must be a whole"
                        f" number > 0, got {v!r}"
                    )
                vals.append(int(v))
            if sum(vals) != total:
                raise DearsimError(
                    f"{where}: layer {i} ({names[i]}): its tensors sum to {sum(vals)} bytes,"
                    f" but the layer has {total}"
                )
            layer_tensors = tuple(vals)
        nm = tensor_names[i] if tensor_names is not None else None
        if nm is None or len(nm) == 0:
            layer_names: tuple[str, ...] = ("",) * len(layer_tensors)
        else:
            if len(nm) != len(layer_tensors):
                raise DearsimError(
                    f"{where}: layer {i} ({names[i]}): {len(nm)} tensor names for"
                    f" {len(layer_tensors)} tensors"
                )
            layer_names = tuple(str(x) for x in nm)
        out.append(layer_tensors)
        out_names.append(layer_names)
    return tuple(out), tuple(out_names)


# --------------------------------------------------------------------------- file formats


class Provenance(BaseModel):
    """Where a trace's numbers come from. Free-form extra keys are kept."""

    model_config = ConfigDict(extra="allow")
    method: Literal["measured", "synthesised"]
    created: str | None = None
    device: str | None = None
    framework: str | None = None
    how: str | None = None


class TraceHeader(BaseModel):
    """The YAML header of a dearsim trace file."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["dearsim-trace"]
    version: Literal[1, 2]
    name: str | None = None
    model: str | None = None
    batch_size: PosInt | None = None
    dtype: str | None = None
    provenance: Provenance | None = None
    notes: str | None = None


def load_trace(path: str | Path) -> Trace:
    """Read a dearsim trace (CSVY) or a plain ``name,fwd_ms,bwd_ms,bytes`` CSV file."""
    from .paths import check_file

    # missing, a directory, or a FIFO/socket/device (reading one could block forever)
    p = check_file(path, "trace file")
    src = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DearsimError(f"{src}: not a text file (expected UTF-8 CSV)") from None
    except OSError as exc:
        raise DearsimError(f"{src}: cannot read trace: {exc.strerror}") from None
    return parse_trace(text, src)


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    """Parse trace text; see :func:`load_trace`."""
    lines = text.splitlines()
    header: TraceHeader | None = None
    first_csv_line = 0  # 0-based index of the CSV header line
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        except StopIteration:
            raise DearsimError(
                f"{source}:1: the YAML header opened by '---' is never closed by a '---' line"
            ) from None
        data, marks = _yaml.load("\n".join(lines[1:end]), source, line_offset=1)
        if not isinstance(data, dict):
            raise DearsimError(f"{source}:2: the trace header must be a YAML mapping")
        header = _yaml.validate(TraceHeader, data, marks)
        first_csv_line = end + 1
    table = _parse_table(
        lines, first_csv_line, source, tensor_columns=header is None or header.version >= 2
    )
    meta: dict[str, Any] = {}
    name = Path(source).stem
    batch = None
    if header is not None:
        meta = header.model_dump(exclude_none=True)
        name = header.name or name
        batch = header.batch_size
    return Trace.from_layers(
        table.fwd, table.bwd, table.size, table.update, table.names, name=name,
        batch_size=batch, meta=meta, source=source,
        tensors=table.tensors if table.has_tensor_bytes else None,
        tensor_names=table.tensor_names if table.has_tensor_bytes else None,
    )


@dataclass
class _Table:
    names: list[str] = field(default_factory=list)
    fwd: list[float] = field(default_factory=list)
    bwd: list[float] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    tensors: list[list[int] | None] = field(default_factory=list)
    tensor_names: list[list[str] | None] = field(default_factory=list)
    has_tensor_bytes: bool = False


def _parse_table(lines: list[str], start: int, source: str, *, tensor_columns: bool) -> _Table:
    """The CSV table from ``lines[start:]``; ``tensor_columns``: whether the per-tensor
    columns are allowed (plain CSV and CSVY version 2)."""
    import io

    reader = csv.reader(io.StringIO("\n".join(lines[start:])))
    records: list[tuple[int, list[str]]] = []  # (1-based line where the record starts, fields)
    first_line = start + 1
    for fields in reader:
        if fields and any(f.strip() for f in fields):
            records.append((first_line, fields))
        first_line = start + reader.line_num + 1
    if not records:
        raise DearsimError(f"{source}: no CSV header line (expected 'name,fwd_ms,bwd_ms,bytes')")
    header_line, header = records[0]
    columns = [c.strip() for c in header]
    allowed = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    for c in columns:
        if c not in allowed:
            raise DearsimError(
                f"{source}:{header_line}: unknown column '{c}' (columns are "
                f"{', '.join(REQUIRED_COLUMNS)} and optional {', '.join(OPTIONAL_COLUMNS)})"
            )
        if c in TENSOR_COLUMNS and not tensor_columns:
            raise DearsimError(
                f"{source}:{header_line}: column '{c}' needs 'version: 2' in the header"
                " (version 1 has no per-tensor columns)"
            )
    if len(set(columns)) != len(columns):
        raise DearsimError(f"{source}:{header_line}: a column is named twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DearsimError(
            f"{source}:{header_line}: missing column(s) {', '.join(missing)}"
            " (expected header 'name,fwd_ms,bwd_ms,bytes')"
        )
    if "tensor_names" in columns and "tensor_bytes" not in columns:
        raise DearsimError(
            f"{source}:{header_line}: column 'tensor_names' needs a 'tensor_bytes' column"
        )
    idx = {c: columns.index(c) for c in columns}
    t = _Table(has_tensor_bytes="tensor_bytes" in idx)
    for lineno, fields in records[1:]:
        if len(fields) != len(columns):
            raise DearsimError(
                f"{source}:{lineno}: expected {len(columns)} fields ({','.join(columns)}),"
                f" got {len(fields)}"
            )
        name = fields[idx["name"]].strip()
        if not name:
            raise DearsimError(f"{source}:{lineno}: field 'name' is empty")
        t.names.append(name)
        t.fwd.append(_time_field(fields[idx["fwd_ms"]], source, lineno, "fwd_ms"))
        t.bwd.append(_time_field(fields[idx["bwd_ms"]], source, lineno, "bwd_ms"))
        size = _bytes_field(fields[idx["bytes"]], source, lineno)
        t.size.append(size)
        t.update.append(
            _time_field(fields[idx["update_ms"]], source, lineno, "update_ms")
            if "update_ms" in idx
            else 0.0
        )
        tensors = (
            _tensor_bytes_field(fields[idx["tensor_bytes"]], size, source, lineno)
            if "tensor_bytes" in idx
            else None
        )
        t.tensors.append(tensors)
        t.tensor_names.append(
            _tensor_names_field(fields[idx["tensor_names"]], tensors, source, lineno)
            if "tensor_names" in idx
            else None
        )
    if not t.names:
        raise DearsimError(f"{source}:{header_line}: the trace has no layer rows")
    return t


def _tensor_bytes_field(text: str, size: int, source: str, line: int) -> list[int] | None:
    """``2359296;256`` -> [2359296, 256]; empty -> ``None`` (no breakdown for the layer)."""
    t = text.strip()
    if not t:
        return None
    where = f"{source}:{line}: field 'tensor_bytes'"
    out: list[int] = []
    for k, item in enumerate(t.split(TENSOR_SEP), 1):
        v = item.strip()
        if not v:
            raise DearsimError(f"{where}: tensor {k} is empty (in {t!r})")
        try:
            n = int(v)
        except ValueError:
            raise DearsimError(
                f"{where}: tensor {k} must be a whole number of bytes, got {v!r}"
            ) from None
        if n <= 0:
            raise DearsimError(f"{where}: tensor {k} must be > 0 bytes, got {v!r}")
        out.append(n)
    if sum(out) != size:
        raise DearsimError(f"{where}: tensors sum to {sum(out)} bytes but 'bytes' is {size}")
    return out


def _tensor_names_field(
    text: str, tensors: list[int] | None, source: str, line: int
) -> list[str] | None:
    """``weight;bias`` -> ["weight", "bias"]; empty -> ``None`` (unnamed tensors)."""
    t = text.strip()
    if not t:
        return None
    where = f"{source}:{line}: field 'tensor_names'"
    if tensors is None:
        raise DearsimError(f"{where}: names given but 'tensor_bytes' is empty")
    names = [n.strip() for n in t.split(TENSOR_SEP)]
    if len(names) != len(tensors):
        raise DearsimError(
            f"{where}: {len(names)} names for {len(tensors)} tensors in 'tensor_bytes'"
        )
    return names


def _time_field(text: str, source: str, line: int, column: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DearsimError(
            f"{source}:{line}: field '{column}' must be a number, got {text.strip()!r}"
        ) from None
    if not math.isfinite(v) or v < 0:
        raise DearsimError(
            f"{source}:{line}: field '{column}' must be a finite number >= 0, got {text.strip()!r}"
        )
    return v / 1e3


def _bytes_field(text: str, source: str, line: int) -> int:
    t = text.strip()
    try:
        v = int(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            f = math.nan
        if not (math.isfinite(f) and f.is_integer()):
            raise DearsimError(
                f"{source}:{line}: field 'bytes' must be a whole number of bytes, got {t!r}"
            ) from None
        v = int(f)
    if v < 0:
        raise DearsimError(f"{source}:{line}: field 'bytes' must be >= 0, got {t!r}")
    return v


def format_trace(trace: Trace, header: Mapping[str, Any] | None = None) -> str:
    """The dearsim trace (CSVY) text of ``trace``; ``header`` overrides its metadata.

    A trace with a per-tensor breakdown is written as version 2 with the ``tensor_bytes``
    column (and ``tensor_names`` if any tensor is named); one without, as version 1 with the
    layer columns only, so that readers of version 1 still read it."""
    import io

    import yaml

    breakdown = trace.has_breakdown
    named = breakdown and any(n for names in trace.tensor_names for n in names)
    if named:
        _check_writable_names(trace)
    version = FORMAT_VERSION if breakdown else 1
    meta: dict[str, Any] = {"format": FORMAT_NAME, "version": version}
    meta.update({k: v for k, v in trace.meta.items() if k not in ("format", "version")})
    meta.setdefault("name", trace.name)
    if trace.batch_size is not None:
        meta.setdefault("batch_size", trace.batch_size)
    if header:
        meta.update(header)
    if breakdown and meta["version"] == 1:
        raise DearsimError(
            "trace header: version 1 cannot hold this trace's per-tensor breakdown (write"
            " version 2)"
        )
    _yaml.validate(TraceHeader, meta, _yaml.Marks("trace header"))
    columns = list(REQUIRED_COLUMNS + ("update_ms",))
    if breakdown:
        columns.append("tensor_bytes")
    if named:
        columns.append("tensor_names")
    out = io.StringIO()
    out.write("---\n")
    out.write(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=96))
    out.write("---\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for i in range(trace.num_layers):
        row: list[Any] = [
            trace.names[i],
            repr(trace.fwd[i] * 1e3),
            repr(trace.bwd[i] * 1e3),
            trace.size[i],
            repr(trace.update[i] * 1e3),
        ]
        if breakdown:
            row.append(_join_bytes(trace.tensors[i]))
        if named:
            row.append(_join_names(trace.tensor_names[i]))
        w.writerow(row)
    return out.getvalue()


def _check_writable_names(trace: Trace) -> None:
    """Tensor names must survive the ``;``-separated column unchanged."""
    for i, names in enumerate(trace.tensor_names):
        for n in names:
            if TENSOR_SEP in n or n != n.strip() or "\n" in n or "\r" in n:
                raise DearsimError(
                    f"{trace.source or trace.name}: layer {i} ({trace.names[i]}): tensor name"
                    f" {n!r} cannot be written (no {TENSOR_SEP!r}, line breaks or surrounding"
                    " spaces)"
                )


def save_trace(trace: Trace, path: str | Path, header: Mapping[str, Any] | None = None) -> None:
    """Write ``trace`` as a dearsim trace file (CSVY)."""
    Path(path).write_text(format_trace(trace, header), encoding="utf-8")
