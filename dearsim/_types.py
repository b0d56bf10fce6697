"""Validated number types for configs, files and options.

Like pydantic's ``PositiveFloat`` and friends, but a YAML ``true``/``false`` is not taken as
1/0 and floats must be finite: a typo must never become a number silently.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


NonNegFloat = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, allow_inf_nan=False)]
PosFloat = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
NonNegInt = Annotated[int, BeforeValidator(_not_bool), Field(ge=0)]
PosInt = Annotated[int, BeforeValidator(_not_bool), Field(gt=0)]
