"""The schedule registry: add a schedule by writing one class and decorating it.

Schedules from outside dearsim register the same way, from a plugin module
(:mod:`dearsim.plugins`). Installed plugins (the ``dearsim.schedules`` entry points) are
loaded the first time the registry is listed or asked for a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DearsimError

if TYPE_CHECKING:
    from .base import Schedule

S = TypeVar("S", bound="type[Schedule]")

_REGISTRY: dict[str, type[Schedule]] = {}


def register(cls: S) -> S:
    """Class decorator: make a schedule available under its ``name``."""
    from ..plugins import DuplicateSchedule

    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise DearsimError(f"schedule class {cls.__qualname__} has no name")
    have = _REGISTRY.get(name)
    if have is not None and have is not cls:
        raise DuplicateSchedule(
            f"a schedule named {name!r} is already registered "
            f"({have.__module__}.{have.__qualname__})"
        )
    _REGISTRY[name] = cls
    return cls


def _entry_points() -> None:
    from ..plugins import load_entry_points

    load_entry_points()


def registered() -> dict[str, type[Schedule]]:
    """The registry as it is now (without loading entry points)."""
    return dict(_REGISTRY)


def names() -> list[str]:
    """Registered schedule names, in registration order (installed plugins last)."""
    _entry_points()
    return list(_REGISTRY)


def get(name: str) -> type[Schedule]:
    _entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DearsimError(
            f"unknown scheduler {name!r} (choose from {', '.join(_REGISTRY)})"
        ) from None


def create(name: str, options: dict[str, Any] | None = None) -> Schedule:
    """An instance of schedule ``name`` with validated ``options``."""
    return get(name)(options)
