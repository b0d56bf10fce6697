"""What-if sweep configs: a validated YAML schema and its expansion into runs.

A config names the workloads, networks, worker counts and schedules to combine, plus how
long to simulate; a ``sweep:`` block adds axes: ``grid`` (every combination) and ``zip``
(lists that advance together). :func:`load_config` validates a config and expands it, once,
into :class:`RunSpec` s: typed descriptions of one simulation each, with a stable hash of
what the run computes (the trace's content, the network's spec, the schedule and its
options, the run length, the dearsim version; never a path), so a sweep can be resumed from
any folder and its rows traced back to their inputs. Each trace is read and hashed once.
See ``docs/sweeps.md`` for the schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import _yaml, schedules, shipped
from . import plugins as plugins_mod
from ._types import NonNegFloat, NonNegInt, PosFloat, PosInt
from ._yaml import Marks, explain
from .errors import DearsimError, ParamError
from .network import AlphaBeta, load_network, network_from_spec, preset_names
from .table import BASELINE, BETA_AT_1GBPS, NETWORK_FIELDS

if TYPE_CHECKING:
    from .trace import Trace


class InlineNetwork(BaseModel):
    """An alpha-beta network given in the config itself."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    alpha_s: NonNegFloat
    beta_s_per_byte: NonNegFloat | None = None
    bandwidth_gbps: PosFloat | None = None
    gamma_s_per_byte: NonNegFloat = 0.0

    @model_validator(mode="after")
    def _one_rate(self) -> InlineNetwork:
        if (self.beta_s_per_byte is None) == (self.bandwidth_gbps is None):
            raise ValueError("give exactly one of beta_s_per_byte and bandwidth_gbps")
        return self

    def model(self) -> AlphaBeta:
        beta = (
            self.beta_s_per_byte
            if self.beta_s_per_byte is not None
            else BETA_AT_1GBPS / (self.bandwidth_gbps or 1.0)
        )
        return AlphaBeta(self.alpha_s, beta, self.gamma_s_per_byte, self.name or "inline")


class TraceEntry(BaseModel):
    """A trace file or shipped name under a label of its own (default: the file's stem)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    label: str | None = None


class SearchEntry(BaseModel):
    """A search that chooses a schedule's options for each run (``docs/search.md``): the
    run simulates the best options it finds for its trace, network and workers."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["scan", "bayes", "optimal", "partition"]
    #: grid points (scan), trials (bayes), evaluations (partition); default: the method's
    budget: PosInt | None = None
    #: the Bayesian tuner's seed (bayes only; default 0)
    seed: NonNegInt | None = None


class ScheduleEntry(BaseModel):
    """A schedule with options, under a label (default: its name); or with a ``search``
    that chooses its options for each run."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    search: SearchEntry | None = None


class StallEntry(BaseModel):
    """A worker that stops for ``duration_ms`` every ``every`` iterations (from ``offset``)."""

    model_config = ConfigDict(extra="forbid")
    worker: NonNegInt
    every: PosInt
    duration_ms: NonNegFloat
    offset: NonNegInt = 0


class ClusterBlock(BaseModel):
    """Who trains (``docs/clusters.md``): worker speeds, stragglers, jitter and stalls.
    Every key is sweepable as ``cluster.<key>``. The defaults are identical workers."""

    model_config = ConfigDict(extra="forbid")
    #: a compute-time multiplier per worker (as many as the run's workers); null: all 1
    slowdown: list[PosFloat] | None = None
    #: the last ``stragglers`` ranks compute ``straggler_slowdown`` times slower
    stragglers: NonNegInt = 0
    straggler_slowdown: PosFloat = 1.0
    #: log-normal per-op jitter (mean 1) with this coefficient of variation, seeded by ``seed``
    jitter_cv: NonNegFloat = 0.0
    stalls: list[StallEntry] = Field(default_factory=list)
    #: compute runs at rate 1/(1 + interference) while a collective is in flight (0: off;
    #: SimPy engine only; ``dearsim collect interference`` measures it)
    interference: NonNegFloat = 0.0
    #: the collective in flight runs at rate 1/(1 + comm_interference) while any worker
    #: computes (0: off; SimPy engine only; ``collect interference``'s ``comm_slowdown``)
    comm_interference: NonNegFloat = 0.0


#: The ``cluster:`` keys, in the order the results' columns list them.
CLUSTER_KEYS = tuple(ClusterBlock.model_fields)
#: Identical workers, as the block's values read (``model_dump``).
_CLUSTER_DEFAULTS = ClusterBlock().model_dump()


class SweepBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)


class PlotBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: str = "workers"
    #: the y axis: ``speedup`` over the baseline, ``throughput``, or a time metric
    #: (``iteration_time_s``, ``iteration_p50_s``, ``iteration_p99_s``, ``wait_mean_s``,
    #: ``wait_max_s``), drawn in ms
    y: Literal["speedup", "throughput", "iteration_time_s", "iteration_p50_s",
               "iteration_p99_s", "wait_mean_s", "wait_max_s"] = "speedup"
    baseline: str = BASELINE
    facet: str | None = "network"
    row: str | None = "trace"


TraceRef = str | TraceEntry
#: a preset or topology name or file, an inline alpha-beta network, or a network spec
#: mapping with its ``kind`` (e.g. ``hierarchical``; checked when runs are built)
NetworkRef = str | InlineNetwork | dict[str, Any]
ScheduleRef = str | ScheduleEntry


class Config(BaseModel):
    """A sweep config (YAML). Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    #: Plugin modules or ``.py`` files (relative to the config) that register schedules.
    plugins: list[str] | str = Field(default_factory=list)
    traces: list[TraceRef] | TraceRef
    networks: list[NetworkRef] | NetworkRef
    workers: list[PosInt] | PosInt
    #: Default: every registered schedule (plugins' included).
    schedules: list[ScheduleRef] | ScheduleRef | None = None
    batch_size: PosInt | None = None
    iterations: PosInt = 10
    warmup: NonNegInt = 2
    #: the evaluator: ``simpy`` (the reference engine) or ``fast`` (the SimPy-free one:
    #: the same numbers within 1e-9, several times faster; every schedule, but not
    #: ``cluster.interference`` or ``cluster.comm_interference``)
    engine: Literal["simpy", "fast"] = "simpy"
    #: worker speeds, stragglers, jitter, stalls (default: identical workers)
    cluster: ClusterBlock = Field(default_factory=ClusterBlock)
    #: the jitter's seed (used only when ``cluster.jitter_cv > 0``); sweep it for statistics
    seed: NonNegInt = 0
    sweep: SweepBlock = Field(default_factory=SweepBlock)
    plot: PlotBlock = Field(default_factory=PlotBlock)


#: Axes that the top level and ``sweep:`` can vary, with the top-level key that lists them.
BASE_AXES = {
    "trace": "traces", "network": "networks", "workers": "workers", "schedule": "schedules",
}
SCALAR_AXES = ("batch_size", "iterations", "warmup", "seed")
#: Settings of hierarchical networks that a sweep can vary as ``network.<key>``.
HIERARCHY_AXES = ("algorithm", "gpus_per_node", "nics_per_node")


@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep: typed, picklable, independent of the config file.

    ``network`` is the network's :meth:`~dearsim.network.NetworkModel.spec`; ``plugins``
    the plugins (module names or absolute file paths) a worker loads before running it."""

    index: int
    trace: str
    trace_sha256: str
    network: dict[str, Any]
    workers: int
    schedule: str
    scheduler: str
    options: dict[str, Any]
    batch_size: int | None
    iterations: int
    warmup: int
    plugins: tuple[str, ...] = ()
    engine: str = "simpy"
    #: the cluster's settings that differ from identical workers (``Cluster.build``'s
    #: keywords; ``seed`` only with jitter); empty for identical workers
    cluster: dict[str, Any] = field(default_factory=dict)
    #: A searched schedule's search (:func:`search_key`): the run simulates the options it
    #: finds; None for a schedule run with its own options.
    search: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """What the run computes and reports: everything its hash covers. Paths, the
        working directory and the plugins' locations are not in it."""
        from . import __version__

        return {
            "trace": self.trace,
            "trace_sha256": self.trace_sha256,
            "network": self.network,
            "workers": self.workers,
            "schedule": self.schedule,
            "scheduler": self.scheduler,
            "options": self.options,
            "batch_size": self.batch_size,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "dearsim_version": __version__,
            # the fast evaluator's numbers equal the engine's within 1e-9, not bit for bit:
            # its runs are other runs (and SimPy runs keep the hashes they always had)
            **({"engine": self.engine} if self.engine != "simpy" else {}),
            # identical workers keep the hashes they had before clusters were configurable
            **({"cluster": self.cluster} if self.cluster else {}),
            # only when set: runs without a search keep the hashes they always had
            **({"search": self.search} if self.search is not None else {}),
        }

    @cached_property
    def run_hash(self) -> str:
        return stable_hash(self.identity())

    @cached_property
    def group_hash(self) -> str:
        """Hash of everything but the schedule: runs to compare against each other."""
        rest = {
            k: v for k, v in self.identity().items()
            if k not in ("schedule", "scheduler", "options", "search")
        }
        return stable_hash(rest)

    def network_model(self) -> Any:
        return network_from_spec(self.network)

    def cluster_model(self) -> Any:
        """The run's :class:`~dearsim.cluster.Cluster`, or its worker count when the workers
        are identical."""
        if not self.cluster:
            return self.workers
        from .cluster import Cluster

        return Cluster.build(self.workers, **self.cluster)


def stable_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LoadedConfig:
    """A validated config, checked once: how many runs it has, their hashes, the traces they
    use. Runs are built on demand (:meth:`iter_runs`), in config order, so a sweep of a
    million runs never holds them all."""

    config: Config
    path: Path
    text: str
    marks: Marks
    #: The traces the runs use, loaded once, by content hash.
    traces: dict[str, Trace] = field(default_factory=dict)
    #: Plugins to load before running (command-line ones first), canonical references.
    plugins: tuple[str, ...] = ()
    #: How many runs (identical runs counted once).
    n_runs: int = 0
    #: Each run's hash as a 64-bit integer, by index (a numpy array: 8 bytes a run).
    hashes: Any = None
    #: The trace labels, by content hash.
    trace_labels: dict[str, str] = field(default_factory=dict)
    _plan: Any = None
    _runs: list[RunSpec] | None = None

    @property
    def name(self) -> str:
        return self.config.name or self.path.stem

    def iter_runs(self) -> Iterator[RunSpec]:
        """Every run, in config order, built as it is asked for."""
        if self._runs is not None:
            yield from self._runs
            return
        yield from self._plan.runs()

    @property
    def runs(self) -> list[RunSpec]:
        """Every run as a list (for small sweeps and tests; a sweep uses :meth:`iter_runs`)."""
        if self._runs is None:
            self._runs = list(self.iter_runs())
        return self._runs

    @property
    def sweep_hash(self) -> str:
        """A hash of every run's hash, in order: two configs with the same sweep hash run
        the same runs in the same order, wherever their files are."""
        return hashlib.sha256(self.hashes.tobytes()).hexdigest()[:16]


def load_config(path: str | Path, plugins: tuple[str, ...] | list[str] = ()) -> LoadedConfig:
    """Read, validate and expand a config. ``plugins`` (from the command line, relative to
    the working directory) are loaded before the config's own ``plugins:``. Every run is
    built and checked once here, before anything runs; only their hashes are kept."""
    from .paths import read_yaml_file

    p = Path(path)
    text = read_yaml_file(p, "config file")
    data, marks = _yaml.load(text, str(path))
    if not isinstance(data, dict):
        raise DearsimError(f"{path}: a config must be a YAML mapping")
    cfg = _yaml.validate(Config, data, marks)
    plugins_mod.load_plugins(plugins)
    refs = [plugins_mod.resolve(r) for r in plugins]
    is_list = isinstance(cfg.plugins, list)
    for i, ref in enumerate(_as_list(cfg.plugins)):
        where = marks.locate(("plugins", i) if is_list else ("plugins",))
        try:
            plugins_mod.load_plugin(ref, p.parent)
            key = plugins_mod.resolve(ref, p.parent)
        except DearsimError as exc:
            raise DearsimError(f"{where}: {exc}") from None
        if key not in refs:
            refs.append(key)
    loaded = LoadedConfig(cfg, p, text, marks, plugins=tuple(refs))
    _check_all(loaded)  # every value is checked before anything runs
    return loaded


def config_data(loaded: LoadedConfig) -> Any:
    """The config's YAML data (to say what differs between two configs)."""
    data, _ = _yaml.load(loaded.text, str(loaded.path))
    return data


# --------------------------------------------------------------------------- resolution


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


#: The largest trace file read (a trace of 100,000 tensors is a few MB).
MAX_TRACE_BYTES = 64 << 20


@dataclass(frozen=True)
class _TraceRef:
    label: str
    sha256: str
    batch_size: int | None


def read_trace(file: Path) -> tuple[Trace, str]:
    """A trace file, parsed, and the sha256 of its content; the file is read once."""
    from .paths import read_bytes
    from .trace import parse_trace

    src = str(file)
    data = read_bytes(file, "trace file", MAX_TRACE_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DearsimError(f"{src}: not a text file (expected UTF-8 CSV)") from None
    return parse_trace(text, src), hashlib.sha256(data).hexdigest()


class _Resolver:
    """Turns trace/network/schedule references into canonical descriptions."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.base = loaded.path.parent
        self._traces: dict[str, _TraceRef] = {}
        self._networks: dict[str, dict[str, Any]] = {}
        self.labels: dict[tuple[str, str], str] = {}
        self._work_ok: set[tuple[str, str, str, int]] = set()
        #: every trace used, by content hash
        self.traces: dict[str, Trace] = {}

    def fail(self, path: tuple[str | int, ...], msg: str) -> DearsimError:
        return DearsimError(f"{self.loaded.marks.locate(path)}: {msg}")

    def trace(self, ref: Any, path: tuple[str | int, ...]) -> _TraceRef:
        key = json.dumps(ref, sort_keys=True, default=str)
        if key in self._traces:
            return self._traces[key]
        if isinstance(ref, dict):
            ref = self.entry(TraceEntry, ref, path)
        entry = ref if isinstance(ref, TraceEntry) else TraceEntry(path=ref) if isinstance(
            ref, str) and ref else None
        if entry is None or not entry.path:
            raise self.fail(path, "a trace is a shipped trace name, a file path, or "
                                  "{path, label}")
        name = entry.path
        candidates = [self.base / name, Path(name)]
        file = next((c for c in candidates if c.is_file()), None) or shipped.find_trace(name)
        if file is None:
            names = ", ".join(shipped.trace_names()) or "none"
            raise self.fail(path, f"no trace file {name!r} and no shipped trace of that name "
                                  f"(shipped: {names})")
        try:
            trace, digest = read_trace(Path(file))
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        self.traces.setdefault(digest, trace)
        label = entry.label or self.labels.get((name, digest)) or Path(file).stem
        out = _TraceRef(label, digest, trace.batch_size)
        self._traces[key] = out
        return out

    def label_traces(self, refs: list[tuple[Any, tuple[str | int, ...]]]) -> None:
        """Give traces that share a file stem but differ in content distinct labels: the
        path as written in the config, without its suffix (never an absolute path, so two
        clones label alike). A label given in the config is kept; two traces under one label
        are an error."""
        seen: dict[str, set[str]] = {}
        given: dict[str, tuple[str, tuple[str | int, ...]]] = {}
        for ref, path in refs:
            t = self.trace(ref, path)
            if isinstance(ref, (dict, TraceEntry)) and (
                ref.get("label") if isinstance(ref, dict) else ref.label
            ):
                other = given.setdefault(t.label, (t.sha256, path))
                if other[0] != t.sha256:
                    raise self.fail(path, f"label {t.label!r} already names another trace "
                                          f"(at {self.loaded.marks.locate(other[1])})")
                continue
            seen.setdefault(t.label, set()).add(t.sha256)
        clash = {label for label, digests in seen.items() if len(digests) > 1}
        if not clash:
            return
        for ref, path in refs:
            name = ref if isinstance(ref, str) else None
            if name is None:
                continue
            key = json.dumps(ref, sort_keys=True, default=str)
            t = self._traces[key]
            if t.label in clash:
                label = str(Path(name).with_suffix("")) if Path(name).suffix else name
                self.labels[(name, t.sha256)] = label
                self._traces[key] = _TraceRef(label, t.sha256, t.batch_size)

    def check_work(self, sha: str, scheduler: str, options: dict[str, Any], iterations: int,
                   path: tuple[str | int, ...]) -> None:
        """Refuse a run that would post more collectives than the work limit (see
        :func:`dearsim.api.check_work`), before anything runs."""
        from .api import check_work

        key = (sha, scheduler, json.dumps(options, sort_keys=True, default=str), iterations)
        if key in self._work_ok:
            return
        try:
            check_work(self.traces[sha], schedules.create(scheduler, options), iterations)
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        if len(self._work_ok) > 10_000:
            self._work_ok.clear()
        self._work_ok.add(key)

    def network(self, ref: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        key = json.dumps(ref, sort_keys=True, default=str)
        if key not in self._networks:
            self._networks[key] = self._network(ref, path)
        return self._networks[key]

    def entry(self, model: Any, ref: dict[str, Any], path: tuple[str | int, ...]) -> Any:
        """Validate a mapping given inline (in a list or a sweep axis) against ``model``."""
        try:
            return model.model_validate(ref)
        except ValidationError as exc:
            raise DearsimError(explain(exc, ref, self.loaded.marks, path)) from None

    def _network(self, ref: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        if isinstance(ref, dict) and "kind" in ref:  # a network spec, e.g. hierarchical
            try:
                return network_from_spec(ref).spec()
            except DearsimError as exc:
                raise self.fail(path, str(exc)) from None
        if isinstance(ref, dict):
            ref = self.entry(InlineNetwork, ref, path)
        if isinstance(ref, InlineNetwork):
            return ref.model().spec()
        if not isinstance(ref, str):
            raise self.fail(path, "a network is a preset name, a YAML file or a mapping")
        is_preset = ref.lower() in {n.lower() for n in preset_names()}
        where: str | Path = ref
        if not is_preset and (self.base / ref).is_file():
            where = self.base / ref
        try:
            model = load_network(where)
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        # A file's runs are labelled by its file name, a preset's by the preset's name.
        return (model if is_preset else model.renamed(Path(ref).stem)).spec()

    def schedule(self, ref: Any, path: tuple[str | int, ...]) -> ScheduleEntry:
        if isinstance(ref, dict):
            ref = self.entry(ScheduleEntry, ref, path)
        if isinstance(ref, str):
            ref = ScheduleEntry(name=ref)
        if not isinstance(ref, ScheduleEntry):
            raise self.fail(path, "a schedule is a name, {name, label, options} or "
                                  "{name, label, search}")
        try:
            schedules.create(ref.name, ref.options)
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        if ref.search is not None:
            self.check_search(ref, path)
        return ref

    def check_search(self, ref: ScheduleEntry, path: tuple[str | int, ...]) -> None:
        """Refuse a search that cannot run: a method the schedule has not, a budget the
        method does not take or too large, a seed for a method that draws nothing, options
        beside it (the search chooses them), a missing scikit-optimize."""
        import importlib.util

        from .search import MAX_BUDGET, METHODS

        spec = ref.search
        assert spec is not None
        at = (*path, "search")
        valid = METHODS.get(ref.name, ())
        if spec.method not in valid:
            raise self.fail((*at, "method"),
                            f"method {spec.method!r} does not apply to schedule {ref.name!r}"
                            + (f" (it has: {', '.join(valid)})" if valid else
                               " (no search method applies to it)"))
        if spec.budget is not None and spec.method == "optimal":
            raise self.fail((*at, "budget"), "method 'optimal' is exact and takes no budget")
        if spec.budget is not None and spec.budget > MAX_BUDGET:
            raise self.fail((*at, "budget"), f"must be at most {MAX_BUDGET:,}")
        if spec.seed is not None and spec.method != "bayes":
            raise self.fail((*at, "seed"), f"method {spec.method!r} draws nothing at random; "
                                           "seed is for method 'bayes'")
        if spec.seed is not None and spec.seed >= 2**32:
            raise self.fail((*at, "seed"), "must be below 2**32")
        if ref.options:
            raise self.fail((*path, "options"), "a searched schedule takes no options: its "
                                                "search chooses them")
        if spec.method == "bayes" and importlib.util.find_spec("skopt") is None:
            raise self.fail((*at, "method"), "method 'bayes' needs scikit-optimize: pip "
                                             "install 'dearsim[search]'")


def search_key(entry: ScheduleEntry) -> dict[str, Any] | None:
    """A checked schedule entry's search as a run holds it (None without one): the method,
    the budget it spends and the seed, defaults filled in, so that ``{method: bayes}`` and
    ``{method: bayes, seed: 0, budget: 10}`` are one run."""
    if entry.search is None:
        return None
    from .search import effective_budget

    spec = entry.search
    return {
        "method": spec.method,
        "budget": effective_budget(entry.name, spec.method, spec.budget),
        "seed": (spec.seed or 0) if spec.method == "bayes" else None,
    }


# --------------------------------------------------------------------------- expansion


def _axis_key_ok(key: str) -> bool:
    if key in BASE_AXES or key in SCALAR_AXES:
        return True
    head, _, tail = key.partition(".")
    return ((head == "network" and (tail in NETWORK_FIELDS or tail in HIERARCHY_AXES))
            or (head == "options" and bool(tail)) or (head == "cluster" and tail in CLUSTER_KEYS))


def _top(cfg: Config, top: str) -> Any:
    value = getattr(cfg, top)
    if top == "schedules" and value is None:
        return schedules.names()
    return value


def expand(loaded: LoadedConfig) -> list[RunSpec]:
    """Every run of the config, in a fixed order, without duplicates (a list; a sweep
    iterates :meth:`LoadedConfig.iter_runs` instead)."""
    if loaded._plan is None:
        _check_all(loaded)
    return list(loaded.iter_runs())


def _check_all(loaded: LoadedConfig) -> None:
    """Build and check every run once; keep only their hashes (identical runs once), the
    traces they use and the plan to build them again in the same order."""
    import array

    import numpy as np

    plan = _Plan(loaded)
    raw = array.array("Q")
    for _pos, run in plan.build_all():
        raw.append(int(run.run_hash, 16))
    plan.check_takers()
    hashes = np.frombuffer(raw, dtype=np.uint64) if len(raw) else np.zeros(0, np.uint64)
    _, first = np.unique(hashes, return_index=True)
    if len(first) != len(hashes):  # identical runs: keep the first of each
        keep = np.zeros(len(hashes), dtype=bool)
        keep[first] = True
        plan.skip = set(np.flatnonzero(~keep).tolist())
        hashes = hashes[keep]
    loaded.hashes = np.array(hashes, dtype=np.uint64)
    loaded.n_runs = len(loaded.hashes)
    used = set(plan.res.traces) if loaded.n_runs else set()
    loaded.traces = {k: v for k, v in plan.res.traces.items() if k in used}
    loaded.trace_labels = {t.sha256: t.label for t in plan.res._traces.values()}
    loaded._plan = plan


class _Plan:
    """The axes of a config and how to walk them: the same runs, in the same order, each
    time :meth:`runs` is called."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        cfg = self.cfg = loaded.config
        res = self.res = _Resolver(loaded)
        self.skip: set[int] = set()
        sweep_keys = list(cfg.sweep.grid) + list(cfg.sweep.zip)
        for block in ("grid", "zip"):
            for key in getattr(cfg.sweep, block):
                path = ("sweep", block, key)
                if not _axis_key_ok(key):
                    raise res.fail(path, "unknown sweep key (sweepable: trace, network, "
                                         "workers, schedule, batch_size, iterations, warmup, "
                                         "seed, network.<alpha_s|beta_s_per_byte|"
                                         "gamma_s_per_byte|bandwidth_gbps|algorithm|"
                                         "gpus_per_node|nics_per_node>, "
                                         f"cluster.<{'|'.join(CLUSTER_KEYS)}>, "
                                         "options.<schedule option>)")
                if not getattr(cfg.sweep, block)[key]:
                    raise res.fail(path, "needs at least one value")
                top = BASE_AXES.get(key)
                given = top in cfg.model_fields_set
                if (top and given and isinstance(_top(cfg, top), list)
                        and len(_top(cfg, top)) > 1):
                    raise res.fail(path, f"{key} is already a list at the top level ({top}); "
                                         "give it in one place")
        if len(set(sweep_keys)) != len(sweep_keys):
            dup = next(k for k in sweep_keys if sweep_keys.count(k) > 1)
            raise res.fail(("sweep", "zip", dup), "is in both sweep.grid and sweep.zip")
        lengths = {k: len(v) for k, v in cfg.sweep.zip.items()}
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            bad = next(k for k in lengths if lengths[k] != lengths[first])
            raise res.fail(("sweep", "zip", bad), f"has {lengths[bad]} values but "
                                                 f"sweep.zip.{first} has {lengths[first]}; "
                                                 "zip lists advance together")

        # Each axis: a list of (key, value, yaml path) choices.
        axes: list[list[list[tuple[str, Any, tuple[str | int, ...]]]]] = []
        for axis, top in BASE_AXES.items():
            if axis in sweep_keys:
                continue
            given = _top(cfg, top)
            values = _as_list(given)
            is_list = isinstance(given, list)
            axes.append([[(axis, v, (top, i) if is_list else (top,))]
                         for i, v in enumerate(values)])
        for key, values in cfg.sweep.grid.items():
            axes.append([[(key, v, ("sweep", "grid", key, i))] for i, v in enumerate(values)])
        if cfg.sweep.zip:
            n = next(iter(lengths.values()))
            axes.append([
                [(k, vs[i], ("sweep", "zip", k, i)) for k, vs in cfg.sweep.zip.items()]
                for i in range(n)
            ])
        # Schedules vary fastest, so runs that are compared sit together.
        order = {"trace": 0, "network": 1, "workers": 3, "schedule": 4}
        axes.sort(key=lambda choices: order.get(choices[0][0][0], 2))
        self.axes = axes
        res.label_traces([(v, where) for choices in axes for choice in choices
                          for key, v, where in choice if key == "trace"])
        option_keys = {k.partition(".")[2] for k in sweep_keys if k.startswith("options.")}
        self.takers: dict[str, bool] = {k: False for k in option_keys}

    def build_all(self) -> Iterator[tuple[int, RunSpec]]:
        """(position, run) for every combination, duplicates included."""
        for pos, combo in enumerate(itertools.product(*self.axes)):
            point: dict[str, tuple[Any, tuple[str | int, ...]]] = {}
            for choice in combo:
                for key, value, where in choice:
                    point[key] = (value, where)
            yield pos, _build(self.res, self.cfg, point, self.takers, pos,
                              self.loaded.plugins)

    def check_takers(self) -> None:
        cfg = self.cfg
        for key, taken in self.takers.items():
            if not taken:
                block = "grid" if f"options.{key}" in cfg.sweep.grid else "zip"
                raise self.res.fail(("sweep", block, f"options.{key}"),
                                    f"no schedule in this sweep has an option {key!r}")

    def runs(self) -> Iterator[RunSpec]:
        index = 0
        for pos, run in self.build_all():
            if pos in self.skip:
                continue
            yield dataclasses.replace(run, index=index)
            index += 1


def _build(
    res: _Resolver,
    cfg: Config,
    point: dict[str, tuple[Any, tuple[str | int, ...]]],
    takers: dict[str, bool],
    index: int,
    plugins: tuple[str, ...],
) -> RunSpec:
    trace = res.trace(*point["trace"])
    net = dict(res.network(*point["network"]))
    workers, wpath = point["workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise res.fail(wpath, "must be a positive integer")
    sched = res.schedule(*point["schedule"])
    options = dict(sched.options)
    scalars: dict[str, Any] = {
        "batch_size": cfg.batch_size, "iterations": cfg.iterations, "warmup": cfg.warmup,
        "seed": cfg.seed,
    }
    cluster: dict[str, Any] = cfg.cluster.model_dump()
    cluster_paths: dict[str, tuple[str | int, ...]] = {}
    for key, (value, path) in point.items():
        if key in SCALAR_AXES:
            scalars[key] = _check_scalar(res, key, value, path)
        elif key.startswith("cluster."):
            field_ = key.partition(".")[2]
            cluster[field_] = value
            cluster_paths[field_] = path
        elif key.startswith("network.") and key.partition(".")[2] in HIERARCHY_AXES:
            field_ = key.partition(".")[2]
            if net["kind"] != "hierarchical":
                raise res.fail(path, f"network {net['label']!r} is of kind {net['kind']}; "
                                     f"{field_} applies to hierarchical networks")
            net[field_] = value
            try:
                network_from_spec(net)
            except DearsimError as exc:
                raise res.fail(path, str(exc)) from None
        elif key.startswith("network."):
            field_ = key.partition(".")[2]
            if net["kind"] != AlphaBeta.kind:
                raise res.fail(path, f"network {net['label']!r} is of kind {net['kind']}; "
                                     f"{field_} applies to alpha-beta networks")
            num = _check_number(res, value, path, positive=field_ == "bandwidth_gbps")
            if field_ == "bandwidth_gbps":
                net["beta_s_per_byte"] = BETA_AT_1GBPS / num
            else:
                net[field_] = num
        elif key.startswith("options."):
            opt = key.partition(".")[2]
            # a searched schedule's options are its search's: it runs once
            if sched.search is None and opt in schedules.get(sched.name).Options.model_fields:
                options[opt] = value
                takers[opt] = True
                try:
                    schedules.create(sched.name, options)
                except DearsimError as exc:
                    raise res.fail(path, str(exc)) from None
    if scalars["iterations"] < scalars["warmup"] + 2:
        raise res.fail(("iterations",), f"iterations must be >= warmup + 2 = "
                                        f"{scalars['warmup'] + 2}")
    batch = scalars["batch_size"] if scalars["batch_size"] is not None else trace.batch_size
    cluster_settings = _cluster(res, cluster, cluster_paths, workers, wpath, scalars["seed"])
    for key in ("interference", "comm_interference"):
        if cluster_settings.get(key) and search_key(sched) is not None:
            raise res.fail(point["schedule"][1], "a searched schedule searches on the fast "
                           f"evaluator, which does not model cluster.{key}")
        if cluster_settings.get(key) and cfg.engine == "fast":
            raise res.fail(cluster_paths.get(key, ("cluster", key)),
                           f"{key} needs engine: simpy (the fast evaluator does not model "
                           "it)")
    res.check_work(trace.sha256, sched.name, options, scalars["iterations"],
                   point["schedule"][1])
    return RunSpec(
        index=index,
        trace=trace.label,
        trace_sha256=trace.sha256,
        network=network_from_spec(net).spec(),  # canonical, and checked
        workers=workers,
        schedule=sched.label or sched.name,
        scheduler=sched.name,
        options=options,
        batch_size=batch,
        iterations=scalars["iterations"],
        warmup=scalars["warmup"],
        plugins=plugins,
        engine=cfg.engine,
        cluster=cluster_settings,
        search=search_key(sched),
    )


class _At:
    """Marks for a value validated as ``{key: value}`` that sits at ``where`` in the file
    (a sweep axis's value): ``key`` is replaced by ``where``."""

    def __init__(self, marks: Marks, where: tuple[str | int, ...]) -> None:
        self.marks, self.where = marks, where

    def locate(self, path: tuple[str | int, ...]) -> str:
        return self.marks.locate(self.where + tuple(path[1:]))


def _cluster(
    res: _Resolver, given: dict[str, Any], paths: dict[str, tuple[str | int, ...]],
    workers: int, wpath: tuple[str | int, ...], seed: int,
) -> dict[str, Any]:
    """A run's cluster settings, checked by building the cluster, without the defaults (so
    identical workers have none). A value from a sweep axis is validated here, with the
    axis's location in the error."""
    from .cluster import Cluster

    settings: dict[str, Any] = {}
    for key, value in given.items():
        if key in paths:  # a sweep axis's value (the block's own were checked on loading)
            try:
                value = ClusterBlock.model_validate({key: value}).model_dump()[key]
            except ValidationError as exc:
                at = _At(res.loaded.marks, paths[key])
                raise DearsimError(explain(exc, {key: value}, at)) from None
        if value != _CLUSTER_DEFAULTS[key]:
            settings[key] = value
    if not settings:
        return {}
    if settings.get("jitter_cv"):
        settings["seed"] = seed
    try:
        Cluster.build(workers, **settings)
    except ParamError as exc:  # point at the key that set the bad value
        where = paths.get(exc.param)
        if where is None:
            where = (("cluster", exc.param) if exc.param in res.loaded.config.cluster
                     .model_fields_set else wpath)
        raise res.fail(where, f"{exc.detail} (workers: {workers})") from None
    return settings


def _check_number(res: _Resolver, value: Any, path: tuple[str | int, ...], positive: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    ok = ok and value != float("inf") and (value > 0 if positive else value >= 0)
    if not ok:
        raise res.fail(path, f"must be a {'positive' if positive else 'non-negative'} number")
    return float(value)


def _check_scalar(res: _Resolver, key: str, value: Any, path: tuple[str | int, ...]) -> Any:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if key == "batch_size" and value is not None and not (is_int and value > 0):
        raise res.fail(path, "must be a positive integer or null")
    if key == "iterations" and not (is_int and value > 0):
        raise res.fail(path, "must be a positive integer")
    if key in ("warmup", "seed") and not (is_int and value >= 0):
        raise res.fail(path, "must be an integer >= 0")
    return value
