"""The schedule registry: add a schedule by writing one class and decorating it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DearsimError

if TYPE_CHECKING:
    from .base import Schedule

S = TypeVar("S", bound="type[Schedule]")

_REGISTRY: dict[str, type[Schedule]] = {}


def register(cls: S) -> S:
    """Class decorator: make a schedule available under its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a schedule named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Registered schedule names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> type[Schedule]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DearsimError(
            f"unknown scheduler {name!r} (choose from {', '.join(_REGISTRY)})"
        ) from None


def create(name: str, options: dict[str, Any] | None = None) -> Schedule:
    """An instance of schedule ``name`` with validated ``options``."""
    return get(name)(options)
