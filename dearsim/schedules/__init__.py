"""Communication schedules, one module each, behind a registry.

To add a schedule, write one class deriving from :class:`~dearsim.schedules.base.Schedule`
(or :class:`~dearsim.schedules.wfbp.WfbpFamily` for a new bucketing rule), give it a ``name``
and an ``Options`` model, and decorate it with :func:`register`.
"""

from __future__ import annotations

# Imported for registration, in the order the schedules are listed: keep this order.
# isort: off
from . import wfbp, ddp, horovod, mgwfbp, bytescheduler, dear, fsdp  # noqa: F401
# isort: on
from .base import Bucket, Schedule, ScheduleOptions
from .registry import create, get, names, register

__all__ = ["Bucket", "Schedule", "ScheduleOptions", "create", "get", "names", "register"]
