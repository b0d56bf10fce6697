"""Network cost models (``docs/model.md``): ring alpha-beta(-gamma) and fitted per-worker tables.

Every model answers one question: for ``p`` workers, how long does a collective of ``n``
bytes take? Both forms reduce to a line ``T(n) = a + b*n`` per collective kind and worker
count, which :meth:`NetworkModel.costs` returns as a :class:`LinearCosts` for the engine.

``p = 1`` costs nothing, and a message of 0 bytes is never sent (costs nothing).

Every model also describes itself: :meth:`NetworkModel.spec` is a canonical, JSON-ready
mapping with a ``kind`` and a ``label`` (the model's name) and the numbers that define it, and
:func:`network_from_spec` rebuilds the model from it. Sweep configs, run hashes and result
rows all use that one description. A new kind of model (calibrated, hierarchical, ...) is a
class with ``kind``, ``spec()`` and a ``from_spec`` classmethod, added with
:func:`register_kind`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import _yaml
from ._types import NonNegFloat, PosInt
from .errors import DearsimError, ParamError


class Op(str, Enum):
    """Collective operations."""

    ALLREDUCE = "allreduce"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_GATHER = "all_gather"


@dataclass(frozen=True)
class Line:
    """``T(n) = a + b*n`` seconds for a message of ``n > 0`` bytes."""

    a: float
    b: float

    def __call__(self, nbytes: float) -> float:
        return self.a + self.b * nbytes if nbytes > 0 else 0.0


@dataclass(frozen=True)
class LinearCosts:
    """The cost of each collective for one worker count ``p``."""

    workers: int
    allreduce: Line
    reduce_scatter: Line
    all_gather: Line

    def time(self, op: Op, nbytes: float) -> float:
        if self.workers <= 1 or nbytes <= 0:
            return 0.0
        if op is Op.ALLREDUCE:
            return self.allreduce(nbytes)
        if op is Op.REDUCE_SCATTER:
            return self.reduce_scatter(nbytes)
        return self.all_gather(nbytes)

    @property
    def startup(self) -> float:
        """The all-reduce's startup term ``a`` (MG-WFBP's merge rule uses it)."""
        return 0.0 if self.workers <= 1 else self.allreduce.a


ZERO = Line(0.0, 0.0)


class NetworkModel(ABC):
    """A cost model for collectives among ``p`` workers."""

    name: str = "network"
    #: The ``kind`` of its :meth:`spec` (see :func:`register_kind`).
    kind: ClassVar[str] = "network"

    @abstractmethod
    def costs(self, workers: int) -> LinearCosts:
        """The per-collective cost lines for ``workers`` workers."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A canonical, JSON-ready description: ``{"kind": ..., "label": name, ...}`` with
        everything :func:`network_from_spec` needs to rebuild the model (provenance notes such
        as ``sources`` are left out: they do not change a cost)."""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> NetworkModel:
        """The model a :meth:`spec` of this kind describes."""
        raise NotImplementedError

    def renamed(self, name: str) -> NetworkModel:
        """The same model under another name (its ``label`` in a spec)."""
        return replace(self, name=name)  # type: ignore[type-var]

    def allreduce(self, nbytes: float, workers: int) -> float:
        return self.costs(workers).time(Op.ALLREDUCE, nbytes)

    def reduce_scatter(self, nbytes: float, workers: int) -> float:
        return self.costs(workers).time(Op.REDUCE_SCATTER, nbytes)

    def all_gather(self, nbytes: float, workers: int) -> float:
        return self.costs(workers).time(Op.ALL_GATHER, nbytes)

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class AlphaBeta(NetworkModel):
    """Ring collectives with per-step latency ``alpha`` (s), per-byte time ``beta`` (s/B) and
    per-byte reduction time ``gamma`` (s/B):

    * all-reduce ``2(p-1)alpha + 2(p-1)/p n beta + (p-1)/p n gamma``
    * reduce-scatter ``(p-1)alpha + (p-1)/p n beta + (p-1)/p n gamma``
    * all-gather ``(p-1)alpha + (p-1)/p n beta``
    """

    alpha: float
    beta: float
    gamma: float = 0.0
    name: str = "alpha-beta"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for label, v in (("alpha", self.alpha), ("beta", self.beta), ("gamma", self.gamma)):
            if not (v >= 0 and v < float("inf")):
                raise DearsimError(f"network {self.name}: {label} must be a finite number >= 0")

    def costs(self, workers: int) -> LinearCosts:
        p = _check_workers(workers)
        if p == 1:
            return LinearCosts(1, ZERO, ZERO, ZERO)
        k = (p - 1) / p
        return LinearCosts(
            workers=p,
            allreduce=Line(2 * (p - 1) * self.alpha, 2 * k * self.beta + k * self.gamma),
            reduce_scatter=Line((p - 1) * self.alpha, k * self.beta + k * self.gamma),
            all_gather=Line((p - 1) * self.alpha, k * self.beta),
        )

    kind: ClassVar[str] = "alpha-beta"

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.name,
            "alpha_s": float(self.alpha),
            "beta_s_per_byte": float(self.beta),
            "gamma_s_per_byte": float(self.gamma),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> AlphaBeta:
        return cls(
            _number(spec, "alpha_s"),
            _number(spec, "beta_s_per_byte"),
            _number(spec, "gamma_s_per_byte", 0.0),
            str(spec.get("label", "alpha-beta")),
        )

    def describe(self) -> str:
        return (
            f"{self.name} (alpha {self.alpha:.3g} s, beta {self.beta:.3g} s/B"
            + (f", gamma {self.gamma:.3g} s/B" if self.gamma else "")
            + ")"
        )


@dataclass(frozen=True)
class Fit:
    """Fitted lines for one worker count. Without their own fits, reduce-scatter and
    all-gather each cost half the all-reduce: ``a/2 + b/2 n``."""

    allreduce: Line
    reduce_scatter: Line | None = None
    all_gather: Line | None = None


@dataclass(frozen=True)
class Fitted(NetworkModel):
    """A table of fits ``T(n) = a + b n`` per worker count (the form MG-WFBP and DeAR use).

    A worker count that is not in the table is an error: fits do not extrapolate.
    """

    fits: Mapping[int, Fit]
    name: str = "fitted"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: where the table was read from (a file path or ``preset NAME``), for messages
    origin: str | None = field(default=None, compare=False)

    def costs(self, workers: int) -> LinearCosts:
        p = _check_workers(workers)
        if p == 1:
            return LinearCosts(1, ZERO, ZERO, ZERO)
        fit = self.fits.get(p)
        if fit is None:
            have = ", ".join(str(k) for k in sorted(self.fits))
            where = f"network {self.name}" + (f" ({self.origin})" if self.origin else "")
            raise DearsimError(f"{where}: no fit for {p} workers (the table has {have})")
        half = Line(fit.allreduce.a / 2, fit.allreduce.b / 2)
        return LinearCosts(
            workers=p,
            allreduce=fit.allreduce,
            reduce_scatter=fit.reduce_scatter or half,
            all_gather=fit.all_gather or half,
        )

    kind: ClassVar[str] = "fitted"

    def spec(self) -> dict[str, Any]:
        def line(x: Line | None) -> list[float] | None:
            return None if x is None else [float(x.a), float(x.b)]

        return {
            "kind": self.kind,
            "label": self.name,
            "fits": {
                str(p): {
                    "allreduce": line(f.allreduce),
                    "reduce_scatter": line(f.reduce_scatter),
                    "all_gather": line(f.all_gather),
                }
                for p, f in sorted(self.fits.items())
            },
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Fitted:
        table = spec.get("fits")
        if not isinstance(table, Mapping) or not table:
            raise DearsimError("network spec: a fitted network needs a non-empty 'fits' mapping")

        def line(value: Any, what: str) -> Line | None:
            if value is None:
                return None
            ok = isinstance(value, (list, tuple)) and len(value) == 2
            if not ok or not all(_finite(v) and v >= 0 for v in value):
                raise DearsimError(f"network spec: fits.{what} must be [a_s, b_s_per_byte] >= 0")
            return Line(float(value[0]), float(value[1]))

        fits: dict[int, Fit] = {}
        for p, f in table.items():
            if not str(p).isdigit() or int(p) < 1 or not isinstance(f, Mapping):
                raise DearsimError(f"network spec: fits key {p!r} is not a worker count")
            allreduce = line(f.get("allreduce"), f"{p}.allreduce")
            if allreduce is None:
                raise DearsimError(f"network spec: fits.{p} needs an allreduce line")
            fits[int(p)] = Fit(
                allreduce,
                line(f.get("reduce_scatter"), f"{p}.reduce_scatter"),
                line(f.get("all_gather"), f"{p}.all_gather"),
            )
        return cls(fits, str(spec.get("label", "fitted")))

    def describe(self) -> str:
        return f"{self.name} (fitted, workers {', '.join(str(k) for k in sorted(self.fits))})"


@dataclass(frozen=True)
class Hierarchical(NetworkModel):
    """Nodes of ``gpus_per_node`` GPUs: collectives inside a node cost what the ``intra``
    model says for ``g`` workers, collectives between nodes what the ``inter`` model says for
    ``N`` nodes (``docs/model.md``, "Hierarchical topology").

    ``algorithm``:

    * ``ring``: one flat ring through all ``p = N g`` GPUs; every step waits for the slowest
      hop on the ring, so each term of each collective's line is the larger of the two
      levels' lines for ``p`` workers (only the intra-node level when ``N = 1``, only the
      inter-node level when ``g = 1``);
    * ``hierarchical``: all-reduce = intra-node reduce-scatter of ``n`` bytes, inter-node
      all-reduce of ``n / g`` bytes (the ``g`` GPUs of a node each run one, in parallel, on
      their own NIC share), intra-node all-gather of ``n`` bytes (NCCL's and Horovod's
      hierarchical all-reduce); reduce-scatter = intra-node reduce-scatter, then inter-node
      reduce-scatter of ``n / g``; all-gather = inter-node all-gather of ``n / g``, then
      intra-node all-gather.

    ``nodes`` may be left out: a run of ``p`` workers then uses ``p / g`` nodes (``p`` must
    be a multiple of ``g``, or at most ``g``: one node, partly used). Given, ``p`` must be
    ``nodes * gpus_per_node``.
    """

    gpus_per_node: int
    intra: NetworkModel
    inter: NetworkModel
    algorithm: str = "hierarchical"
    nodes: int | None = None
    #: network interfaces per node (``None``: one per GPU); the inter-node model's beta is
    #: one interface's
    nics_per_node: int | None = None
    name: str = "hierarchical"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    kind: ClassVar[str] = "hierarchical"
    ALGORITHMS: ClassVar[tuple[str, ...]] = ("ring", "hierarchical")

    def __post_init__(self) -> None:
        g = self.gpus_per_node
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise DearsimError(f"network {self.name}: gpus_per_node must be a positive integer,"
                               f" got {g!r}")
        if self.nodes is not None and (
            isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1
        ):
            raise DearsimError(f"network {self.name}: nodes must be a positive integer, got "
                               f"{self.nodes!r}")
        k = self.nics_per_node
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise DearsimError(f"network {self.name}: nics_per_node must be a positive integer,"
                               f" got {k!r}")
        if self.algorithm not in self.ALGORITHMS:
            raise DearsimError(f"network {self.name}: algorithm must be ring or hierarchical, "
                               f"got {self.algorithm!r}")
        for level in ("intra", "inter"):
            if not isinstance(getattr(self, level), NetworkModel):
                raise DearsimError(f"network {self.name}: {level} must be a network model")

    def layout(self, workers: int) -> tuple[int, int]:
        """``(nodes, gpus per node)`` of a run of ``workers`` workers."""
        p = _check_workers(workers)
        g = self.gpus_per_node
        if self.nodes is not None:
            if p != self.nodes * g:
                raise DearsimError(
                    f"network {self.name}: {self.nodes} nodes x {g} GPUs is {self.nodes * g}"
                    f" workers, not {p}"
                )
            return self.nodes, g
        if p <= g:
            return 1, p
        if p % g:
            raise DearsimError(
                f"network {self.name}: {p} workers do not fill nodes of {g} GPUs"
            )
        return p // g, g

    def costs(self, workers: int) -> LinearCosts:
        nodes, g = self.layout(workers)
        p = nodes * g
        if p == 1:
            return LinearCosts(1, ZERO, ZERO, ZERO)
        if nodes == 1:
            return self.intra.costs(g)
        if g == 1:
            return self.inter.costs(nodes)
        if self.algorithm == "ring":
            a, b = self.intra.costs(p), self.inter.costs(p)

            def slow(x: Line, y: Line) -> Line:
                return Line(max(x.a, y.a), max(x.b, y.b))

            return LinearCosts(p, slow(a.allreduce, b.allreduce),
                               slow(a.reduce_scatter, b.reduce_scatter),
                               slow(a.all_gather, b.all_gather))
        i, e = self.intra.costs(g), self.inter.costs(nodes)
        rs_i, ag_i = i.reduce_scatter, i.all_gather
        # g inter-node collectives of n/g bytes run at once, sharing the node's k interfaces:
        # each byte term is (n/g) * b * (g/k) = n * b / k.
        k = min(g, self.nics_per_node or g)
        return LinearCosts(
            p,
            allreduce=Line(rs_i.a + e.allreduce.a + ag_i.a,
                           rs_i.b + e.allreduce.b / k + ag_i.b),
            reduce_scatter=Line(rs_i.a + e.reduce_scatter.a, rs_i.b + e.reduce_scatter.b / k),
            all_gather=Line(e.all_gather.a + ag_i.a, e.all_gather.b / k + ag_i.b),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.name,
            "gpus_per_node": self.gpus_per_node,
            "nodes": self.nodes,
            "algorithm": self.algorithm,
            "nics_per_node": self.nics_per_node,
            "intra": self.intra.spec(),
            "inter": self.inter.spec(),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Hierarchical:
        for key in ("gpus_per_node", "intra", "inter"):
            if key not in spec:
                raise DearsimError(f"network spec: a hierarchical network needs {key!r}")
        return cls(
            spec["gpus_per_node"],
            load_network(spec["intra"]),
            load_network(spec["inter"]),
            str(spec.get("algorithm", "hierarchical")),
            spec.get("nodes"),
            spec.get("nics_per_node"),
            str(spec.get("label", "hierarchical")),
            dict(spec.get("sources") or {}),
        )

    def with_algorithm(self, algorithm: str) -> Hierarchical:
        """The same topology with the other all-reduce algorithm."""
        return replace(self, algorithm=algorithm)

    def describe(self) -> str:
        n = f"{self.nodes} x " if self.nodes else ""
        return (f"{self.name} ({n}{self.gpus_per_node} GPUs per node, {self.algorithm}; "
                f"intra {self.intra.describe()}, inter {self.inter.describe()})")


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParamError("workers", f"must be a positive integer, got {workers!r}")
    return workers


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(spec: Mapping[str, Any], key: str, default: float | None = None) -> float:
    v = spec.get(key, default)
    if not _finite(v) or v < 0:
        raise DearsimError(f"network spec: {key} must be a finite number >= 0, got {v!r}")
    return float(v)


# --------------------------------------------------------------------------- specs

_KINDS: dict[str, Callable[[Mapping[str, Any]], NetworkModel]] = {}


def register_kind(kind: str, from_spec: Callable[[Mapping[str, Any]], NetworkModel]) -> None:
    """Make :func:`network_from_spec` rebuild specs of ``kind`` with ``from_spec``."""
    _KINDS[kind] = from_spec


register_kind(AlphaBeta.kind, AlphaBeta.from_spec)
register_kind(Fitted.kind, Fitted.from_spec)
register_kind(Hierarchical.kind, Hierarchical.from_spec)


def network_kinds() -> list[str]:
    return list(_KINDS)


def network_from_spec(spec: Mapping[str, Any]) -> NetworkModel:
    """Rebuild the model that :meth:`NetworkModel.spec` described."""
    if not isinstance(spec, Mapping):
        raise DearsimError(f"network spec: expected a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    build = _KINDS.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise DearsimError(
            f"network spec: unknown kind {kind!r} (kinds: {', '.join(_KINDS)})"
        )
    return build(spec)


# --------------------------------------------------------------------------- YAML files


class _LineModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a_s: NonNegFloat
    b_s_per_byte: NonNegFloat

    def line(self) -> Line:
        return Line(self.a_s, self.b_s_per_byte)


class _FitModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workers: PosInt
    allreduce: _LineModel
    reduce_scatter: _LineModel | None = None
    all_gather: _LineModel | None = None


class NetworkFile(BaseModel):
    """A network YAML file: either ``alpha_s`` + ``beta_s_per_byte`` (+ ``gamma_s_per_byte``)
    or a ``fits`` table. ``sources`` maps a field name to where its number comes from."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    alpha_s: NonNegFloat | None = None
    beta_s_per_byte: NonNegFloat | None = None
    gamma_s_per_byte: NonNegFloat = 0.0
    fits: list[_FitModel] | None = Field(default=None, min_length=1)
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> NetworkFile:
        ab = self.alpha_s is not None or self.beta_s_per_byte is not None
        if ab and self.fits is not None:
            raise ValueError("give either alpha_s/beta_s_per_byte or fits, not both")
        if not ab and self.fits is None:
            raise ValueError("needs alpha_s and beta_s_per_byte (or a fits table)")
        if ab and (self.alpha_s is None or self.beta_s_per_byte is None):
            missing = "alpha_s" if self.alpha_s is None else "beta_s_per_byte"
            raise ValueError(f"missing {missing}")
        if self.fits is not None:
            counts = [f.workers for f in self.fits]
            if len(set(counts)) != len(counts):
                raise ValueError("a worker count appears twice in fits")
        return self

    def model(self, default_name: str, origin: str | None = None) -> NetworkModel:
        name = self.name or default_name
        if self.fits is not None:
            return Fitted(
                fits={
                    f.workers: Fit(
                        f.allreduce.line(),
                        f.reduce_scatter.line() if f.reduce_scatter else None,
                        f.all_gather.line() if f.all_gather else None,
                    )
                    for f in self.fits
                },
                name=name,
                sources=self.sources,
                origin=origin,
            )
        assert self.alpha_s is not None and self.beta_s_per_byte is not None
        return AlphaBeta(
            self.alpha_s, self.beta_s_per_byte, self.gamma_s_per_byte, name, self.sources
        )


def parse_network(text: str, source: str, default_name: str = "network") -> NetworkModel:
    data, marks = _yaml.load(text, source)
    if not isinstance(data, dict):
        raise DearsimError(f"{source}: a network file must be a YAML mapping")
    return _yaml.validate(NetworkFile, data, marks).model(default_name, source)


def preset_names() -> list[str]:
    """Names of the network presets shipped with dearsim."""
    folder = resources.files("dearsim") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> NetworkModel:
    for preset in preset_names():
        if preset.lower() == name.lower():
            path = resources.files("dearsim") / "presets" / f"{preset}.yaml"
            return parse_network(path.read_text(encoding="utf-8"), f"preset {preset}", preset)
    raise DearsimError(f"unknown network preset {name!r} (presets: {', '.join(preset_names())})")


def load_network(spec: str | Path | NetworkModel | Mapping[str, Any]) -> NetworkModel:
    """A network model from a preset name, a shipped topology name (:func:`load_topology`),
    a YAML file path, a mapping (a network file's keys, or a :meth:`NetworkModel.spec` with
    its ``kind``) or a model."""
    if isinstance(spec, NetworkModel):
        return spec
    if isinstance(spec, Mapping):
        if "kind" in spec:
            return network_from_spec(spec)
        data = dict(spec)
        marks = _yaml.Marks("network")
        return _yaml.validate(NetworkFile, data, marks).model("network")
    text = str(spec)
    if text.lower() in {n.lower() for n in preset_names()}:
        return load_preset(text)
    if text.lower() in {n.lower() for n in topology_names()}:
        return load_topology(text)
    path = Path(text)
    if not path.exists():
        raise DearsimError(
            f"{text}: not a network preset ({', '.join(preset_names())}), not a topology "
            f"({', '.join(topology_names())}) and no such file"
        )
    from .paths import read_yaml_file

    body = read_yaml_file(path, "network file")  # a regular file, size-limited
    return parse_network(body, text, path.stem)


# --------------------------------------------------------------------------- topologies


def topology_names() -> list[str]:
    """Names of the shipped cluster topologies (hierarchical networks)."""
    folder = resources.files("dearsim") / "presets" / "topologies"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_topology(name: str, algorithm: str | None = None) -> Hierarchical:
    """A shipped topology (``dear-cluster-10GbE``, ``dear-cluster-100GbIB``,
    ``h100-nvlink-400GbIB``), optionally with another ``algorithm`` (``ring`` or
    ``hierarchical``). The files are network specs (``kind: hierarchical``) with the source
    of every number under ``sources``."""
    for topo in topology_names():
        if topo.lower() == name.lower():
            path = resources.files("dearsim") / "presets" / "topologies" / f"{topo}.yaml"
            data, _marks = _yaml.load(path.read_text(encoding="utf-8"), f"topology {topo}")
            model = network_from_spec(data)
            assert isinstance(model, Hierarchical)
            return model if algorithm is None else model.with_algorithm(algorithm)
    raise DearsimError(
        f"unknown topology {name!r} (topologies: {', '.join(topology_names())})"
    )
