"""What-if sweep configs: a validated YAML schema and its expansion into runs.

A config names the workloads, networks, worker counts and schedules to combine, plus how
long to simulate; a ``sweep:`` block adds axes: ``grid`` (every combination) and ``zip``
(lists that advance together). Each combination becomes a :class:`RunSpec`, a plain,
JSON-ready description of one simulation with a stable hash, so a sweep can be resumed and
its rows traced back to their inputs. See ``docs/sweeps.md`` for the schema.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import _yaml, schedules, shipped
from ._types import NonNegFloat, NonNegInt, PosFloat, PosInt
from ._yaml import Marks, explain
from .errors import DearsimError
from .network import AlphaBeta, Fitted, NetworkModel, load_network, preset_names

#: Seconds per byte at 1 Gb/s.
BETA_AT_1GBPS = 8e-9


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


class ScheduleEntry(BaseModel):
    """A schedule with options, under a label (default: its name)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class SweepBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)


class PlotBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: str = "workers"
    baseline: str = "wfbp"
    facet: str | None = "network"
    row: str | None = "trace"


TraceRef = str
NetworkRef = str | InlineNetwork
ScheduleRef = str | ScheduleEntry


def _all_schedules() -> list[ScheduleRef]:
    return list(schedules.names())


class Config(BaseModel):
    """A sweep config (YAML). Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    traces: list[TraceRef] | TraceRef
    networks: list[NetworkRef] | NetworkRef
    workers: list[PosInt] | PosInt
    schedules: list[ScheduleRef] | ScheduleRef = Field(default_factory=lambda: _all_schedules())
    batch_size: PosInt | None = None
    iterations: PosInt = 10
    warmup: NonNegInt = 2
    seed: int = 0
    sweep: SweepBlock = Field(default_factory=SweepBlock)
    plot: PlotBlock = Field(default_factory=PlotBlock)


#: Axes that the top level and ``sweep:`` can vary, with the top-level key that lists them.
BASE_AXES = {
    "trace": "traces", "network": "networks", "workers": "workers", "schedule": "schedules",
}
SCALAR_AXES = ("batch_size", "iterations", "warmup", "seed")
NETWORK_FIELDS = ("alpha_s", "beta_s_per_byte", "gamma_s_per_byte", "bandwidth_gbps")


@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep: JSON-ready, hashable, independent of the config file."""

    index: int
    spec: dict[str, Any]

    @property
    def run_hash(self) -> str:
        return stable_hash(self.spec)

    @property
    def group_hash(self) -> str:
        """Hash of everything but the schedule: runs to compare against each other."""
        rest = {k: v for k, v in self.spec.items() if k not in ("schedule", "scheduler", "options")}
        return stable_hash(rest)


def stable_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LoadedConfig:
    """A validated config with where it came from."""

    config: Config
    path: Path
    text: str
    marks: Marks

    @property
    def name(self) -> str:
        return self.config.name or self.path.stem


def load_config(path: str | Path) -> LoadedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DearsimError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DearsimError(f"{path}: cannot read config: {exc}") from None
    data, marks = _yaml.load(text, str(path))
    if not isinstance(data, dict):
        raise DearsimError(f"{path}: a config must be a YAML mapping")
    cfg = _yaml.validate(Config, data, marks)
    loaded = LoadedConfig(cfg, p, text, marks)
    expand(loaded)  # every value is checked before anything runs
    return loaded


# --------------------------------------------------------------------------- resolution


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Resolver:
    """Turns trace/network/schedule references into canonical, JSON-ready specs."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.base = loaded.path.parent
        self._traces: dict[str, dict[str, Any]] = {}
        self._networks: dict[str, dict[str, Any]] = {}

    def fail(self, path: tuple[str | int, ...], msg: str) -> DearsimError:
        return DearsimError(f"{self.loaded.marks.locate(path)}: {msg}")

    def trace(self, ref: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref:
            raise self.fail(path, "a trace is a shipped trace name or a file path")
        if ref in self._traces:
            return self._traces[ref]
        candidates = [self.base / ref, Path(ref)]
        file = next((c for c in candidates if c.is_file()), None) or shipped.find_trace(ref)
        if file is None:
            names = ", ".join(shipped.trace_names()) or "none"
            raise self.fail(path, f"no trace file {ref!r} and no shipped trace of that name "
                                  f"(shipped: {names})")
        from .trace import load_trace

        trace = load_trace(file)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        out = {"label": Path(file).stem, "file": str(file), "sha256": digest,
               "batch_size": trace.batch_size}
        self._traces[ref] = out
        return out

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
        if isinstance(ref, dict):
            ref = self.entry(InlineNetwork, ref, path)
        if isinstance(ref, InlineNetwork):
            return network_spec(ref.model(), ref.name or "inline")
        if not isinstance(ref, str):
            raise self.fail(path, "a network is a preset name, a YAML file or a mapping")
        is_preset = ref.lower() in {n.lower() for n in preset_names()}
        spec: str | Path = ref
        if not is_preset and (self.base / ref).is_file():
            spec = self.base / ref
        try:
            model = load_network(spec)
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        return network_spec(model, model.name if is_preset else Path(ref).stem)

    def schedule(self, ref: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
        if isinstance(ref, dict):
            ref = self.entry(ScheduleEntry, ref, path)
        if isinstance(ref, str):
            ref = ScheduleEntry(name=ref)
        if not isinstance(ref, ScheduleEntry):
            raise self.fail(path, "a schedule is a name or {name, label, options}")
        try:
            schedules.create(ref.name, ref.options)
        except DearsimError as exc:
            raise self.fail(path, str(exc)) from None
        return {"label": ref.label or ref.name, "scheduler": ref.name, "options": dict(ref.options)}


def network_spec(model: NetworkModel, label: str) -> dict[str, Any]:
    """A canonical description of a network model (enough to rebuild it)."""
    if isinstance(model, AlphaBeta):
        return {"label": label, "kind": "alpha-beta", "alpha_s": model.alpha,
                "beta_s_per_byte": model.beta, "gamma_s_per_byte": model.gamma}
    if isinstance(model, Fitted):
        fits = {
            str(p): {
                "allreduce": [f.allreduce.a, f.allreduce.b],
                "reduce_scatter": None if f.reduce_scatter is None
                else [f.reduce_scatter.a, f.reduce_scatter.b],
                "all_gather": None if f.all_gather is None else [f.all_gather.a, f.all_gather.b],
            }
            for p, f in sorted(model.fits.items())
        }
        return {"label": label, "kind": "fitted", "name": model.name, "fits": fits}
    raise TypeError(f"cannot describe network model {model!r}")


def network_from_spec(spec: Mapping[str, Any]) -> NetworkModel:
    """Rebuild the model :func:`network_spec` described."""
    from .network import Fit, Line

    if spec["kind"] == "alpha-beta":
        return AlphaBeta(spec["alpha_s"], spec["beta_s_per_byte"], spec["gamma_s_per_byte"],
                         spec["label"])
    fits = {
        int(p): Fit(
            Line(*f["allreduce"]),
            Line(*f["reduce_scatter"]) if f["reduce_scatter"] else None,
            Line(*f["all_gather"]) if f["all_gather"] else None,
        )
        for p, f in spec["fits"].items()
    }
    return Fitted(fits, spec["name"])


# --------------------------------------------------------------------------- expansion


def _axis_key_ok(key: str) -> bool:
    if key in BASE_AXES or key in SCALAR_AXES:
        return True
    head, _, tail = key.partition(".")
    return (head == "network" and tail in NETWORK_FIELDS) or (head == "options" and bool(tail))


def expand(loaded: LoadedConfig) -> list[RunSpec]:
    """Every run of the config, in a fixed order, without duplicates."""
    cfg = loaded.config
    res = _Resolver(loaded)
    sweep_keys = list(cfg.sweep.grid) + list(cfg.sweep.zip)
    for block in ("grid", "zip"):
        for key in getattr(cfg.sweep, block):
            path = ("sweep", block, key)
            if not _axis_key_ok(key):
                raise res.fail(path, "unknown sweep key (sweepable: trace, network, workers, "
                                     "schedule, batch_size, iterations, warmup, seed, "
                                     "network.<alpha_s|beta_s_per_byte|gamma_s_per_byte|"
                                     "bandwidth_gbps>, options.<schedule option>)")
            if not getattr(cfg.sweep, block)[key]:
                raise res.fail(path, "needs at least one value")
            top = BASE_AXES.get(key)
            given = top in cfg.model_fields_set
            if top and given and isinstance(getattr(cfg, top), list) and len(getattr(cfg, top)) > 1:
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
        values = _as_list(getattr(cfg, top))
        is_list = isinstance(getattr(cfg, top), list)
        axes.append([[(axis, v, (top, i) if is_list else (top,))] for i, v in enumerate(values)])
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

    option_keys = {k.partition(".")[2] for k in sweep_keys if k.startswith("options.")}
    takers: dict[str, bool] = {k: False for k in option_keys}
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for combo in itertools.product(*axes):
        point: dict[str, tuple[Any, tuple[str | int, ...]]] = {}
        for choice in combo:
            for key, value, where in choice:
                point[key] = (value, where)
        spec = _build(res, cfg, point, takers)
        run = RunSpec(len(runs), spec)
        if run.run_hash not in seen:
            seen.add(run.run_hash)
            runs.append(run)
    for key, taken in takers.items():
        if not taken:
            block = "grid" if f"options.{key}" in cfg.sweep.grid else "zip"
            raise res.fail(("sweep", block, f"options.{key}"),
                           f"no schedule in this sweep has an option {key!r}")
    return runs


def _build(
    res: _Resolver,
    cfg: Config,
    point: dict[str, tuple[Any, tuple[str | int, ...]]],
    takers: dict[str, bool],
) -> dict[str, Any]:
    trace = res.trace(*point["trace"])
    net = dict(res.network(*point["network"]))
    workers, wpath = point["workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise res.fail(wpath, "must be a positive integer")
    sched = res.schedule(*point["schedule"])
    options = dict(sched["options"])
    scalars: dict[str, Any] = {
        "batch_size": cfg.batch_size, "iterations": cfg.iterations,
        "warmup": cfg.warmup, "seed": cfg.seed,
    }
    for key, (value, path) in point.items():
        if key in SCALAR_AXES:
            checked = _check_scalar(res, key, value, path)
            scalars[key] = checked
        elif key.startswith("network."):
            field = key.partition(".")[2]
            if net["kind"] != "alpha-beta":
                raise res.fail(path, f"network {net['label']!r} is a fitted table; "
                                     f"{field} applies to alpha-beta networks")
            num = _check_number(res, value, path, positive=field == "bandwidth_gbps")
            if field == "bandwidth_gbps":
                net["beta_s_per_byte"] = BETA_AT_1GBPS / num
            else:
                net[field] = num
        elif key.startswith("options."):
            opt = key.partition(".")[2]
            if opt in schedules.get(sched["scheduler"]).Options.model_fields:
                options[opt] = value
                takers[opt] = True
                try:
                    schedules.create(sched["scheduler"], options)
                except DearsimError as exc:
                    raise res.fail(path, str(exc)) from None
    if scalars["iterations"] < scalars["warmup"] + 2:
        raise res.fail(("iterations",), f"iterations must be >= warmup + 2 = "
                                        f"{scalars['warmup'] + 2}")
    batch = scalars["batch_size"] if scalars["batch_size"] is not None else trace["batch_size"]
    return {
        "trace": trace["label"], "trace_file": trace["file"], "trace_sha256": trace["sha256"],
        "network": net, "workers": workers,
        "schedule": sched["label"], "scheduler": sched["scheduler"], "options": options,
        "batch_size": batch, "iterations": scalars["iterations"], "warmup": scalars["warmup"],
        "seed": scalars["seed"],
    }


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
    if key == "warmup" and not (is_int and value >= 0):
        raise res.fail(path, "must be an integer >= 0")
    if key == "seed" and not is_int:
        raise res.fail(path, "must be an integer")
    return value


