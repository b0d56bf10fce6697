"""Schedules from outside dearsim: plugin modules, files and installed entry points.

A plugin is a Python module that defines schedules and registers them with
:func:`dearsim.schedules.register`. dearsim finds plugins three ways (``docs/extending.md``):

* ``--plugin MODULE_OR_FILE`` on the command line, or ``plugins: [...]`` in a sweep config: a
  dotted module name (imported with :mod:`importlib`) or a path to a ``.py`` file (loaded
  under a stable module name derived from its absolute path);
* installed packages with an entry point in the group ``dearsim.schedules``: each names a
  module or a schedule class; they are loaded the first time the registry is listed or asked
  for a name, once.

Loading the same plugin again does nothing. Every failure is one :class:`PluginError` line
that names the plugin: no such module, no such file, the plugin raising while imported, a
schedule name that is taken, or a plugin that registers no schedule.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import DearsimError

#: The entry-point group installed packages put their schedules in.
ENTRY_POINT_GROUP = "dearsim.schedules"


class PluginError(DearsimError):
    """A plugin that could not be loaded, in one line naming it."""


class DuplicateSchedule(DearsimError, ValueError):
    """A schedule name that is already registered to another class."""


#: Plugins loaded in this process: their canonical reference -> the schedules they provide.
_LOADED: dict[str, list[str]] = {}
_ENTRY_POINTS_LOADED = False


def is_file_ref(ref: str) -> bool:
    """Whether ``ref`` names a ``.py`` file rather than a dotted module name."""
    return ref.endswith(".py") or "/" in ref or os.sep in ref


def resolve(ref: str, base: str | Path | None = None) -> str:
    """The canonical form of a plugin reference: a module name as given, or a file's
    absolute path (a relative one is taken from ``base``, default the working directory)."""
    ref = ref.strip()
    if not ref:
        raise PluginError("plugin: an empty name is neither a module nor a file")
    if not is_file_ref(ref):
        return ref
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return str(Path(os.path.abspath(path)))


def module_name_for(path: str | Path) -> str:
    """The stable module name a plugin file is loaded under: the same file gets the same
    name in every process (so process-pool and dask workers agree)."""
    p = Path(os.path.abspath(path))
    digest = hashlib.sha256(str(p).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in p.stem)
    return f"dearsim_plugin_{stem}_{digest}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _provided(before: set[str], module: ModuleType | None) -> list[str]:
    """Schedules registered since ``before``, or defined in ``module`` (when it was imported
    before and its schedules are already in the registry)."""
    from .schedules import registry

    names = [n for n in registry.registered() if n not in before]
    if module is not None:
        prefix = module.__name__
        for name, cls in registry.registered().items():
            mod = getattr(cls, "__module__", "")
            if (mod == prefix or mod.startswith(prefix + ".")) and name not in names:
                names.append(name)
    return names


def load_plugin(ref: str, base: str | Path | None = None) -> list[str]:
    """Load one plugin (a module name or a ``.py`` file); return the schedules it provides."""
    key = resolve(ref, base)
    if key in _LOADED:
        return _LOADED[key]
    from .schedules import registry

    label = f"plugin {ref!r}"
    before = set(registry.registered())
    if is_file_ref(key):
        module = _load_file(key, label)
    else:
        module = _import(key, label)
    names = _provided(before, module)
    if not names:
        raise PluginError(
            f"{label} registers no schedule (decorate a Schedule class with "
            "@dearsim.schedules.register)"
        )
    _LOADED[key] = names
    return names


def _import(name: str, label: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except DuplicateSchedule as exc:
        raise PluginError(f"{label}: {exc}") from None
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise PluginError(f"{label}: no module named {name!r} (is it on sys.path?)") from None
        raise PluginError(f"{label} raised while imported: {_first_line(exc)}") from None
    except Exception as exc:  # whatever the plugin's own code raises
        raise PluginError(f"{label} raised while imported: {_first_line(exc)}") from None


def _load_file(path: str, label: str) -> ModuleType:
    p = Path(path)
    if not p.is_file():
        raise PluginError(f"{label}: no such file ({path})")
    if p.suffix != ".py":
        raise PluginError(f"{label}: a plugin file must be a .py file")
    name = module_name_for(p)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise PluginError(f"{label}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: pydantic and dataclasses look it up
    try:
        spec.loader.exec_module(module)
    except DuplicateSchedule as exc:
        del sys.modules[name]
        raise PluginError(f"{label}: {exc}") from None
    except BaseException as exc:  # SystemExit too: a plugin must not end the process
        del sys.modules[name]
        if not isinstance(exc, (Exception, SystemExit)):
            raise
        raise PluginError(f"{label} raised while imported: {_first_line(exc)}") from None
    return module


def load_plugins(refs: Iterable[str], base: str | Path | None = None) -> list[str]:
    """Load several plugins in order; return every schedule they provide."""
    out: list[str] = []
    for ref in refs:
        out += [n for n in load_plugin(ref, base) if n not in out]
    return out


def loaded() -> dict[str, list[str]]:
    """Plugins loaded in this process and their schedules."""
    return dict(_LOADED)


# --------------------------------------------------------------------------- entry points


def load_entry_points() -> None:
    """Load the ``dearsim.schedules`` entry points of installed packages, once per process.

    The registry calls this the first time it is listed or asked for a name."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True  # first: a plugin that lists the registry must not recurse
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _load_entry_point(ep)


def _load_entry_point(ep: Any) -> None:
    from .schedules import registry
    from .schedules.base import Schedule

    dist = getattr(ep, "dist", None)
    owner = f" of {dist.name} {dist.version}" if dist is not None else ""
    label = f"plugin entry point {ep.name!r}{owner} ({ep.value})"
    key = f"entry-point:{ep.value}"
    if key in _LOADED:
        return
    before = set(registry.registered())
    try:
        obj = ep.load()
    except DuplicateSchedule as exc:
        raise PluginError(f"{label}: {exc}") from None
    except Exception as exc:
        raise PluginError(f"{label} raised while imported: {_first_line(exc)}") from None
    module: ModuleType | None = obj if isinstance(obj, ModuleType) else None
    if module is None:
        if not (isinstance(obj, type) and issubclass(obj, Schedule)):
            raise PluginError(f"{label}: names neither a module nor a Schedule class")
        try:
            registry.register(obj)
        except DuplicateSchedule as exc:
            raise PluginError(f"{label}: {exc}") from None
    names = _provided(before, module)
    if module is None:
        names = names or [obj.name]
    if not names:
        raise PluginError(f"{label} registers no schedule")
    _LOADED[key] = names
