"""Who trains: the data-parallel workers and how fast each one computes."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DearsimError


@dataclass(frozen=True)
class Cluster:
    """``workers`` data-parallel workers. ``slowdown`` optionally gives each worker a
    compute-time multiplier (1.0 = as in the trace); ``None`` means identical workers."""

    workers: int
    slowdown: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise DearsimError(f"workers must be a positive integer, got {self.workers!r}")
        if self.slowdown is not None:
            if len(self.slowdown) != self.workers:
                raise DearsimError(
                    f"slowdown has {len(self.slowdown)} entries for {self.workers} workers"
                )
            for i, s in enumerate(self.slowdown):
                if not (s > 0 and s < float("inf")):
                    raise DearsimError(f"slowdown[{i}] must be a positive number, got {s!r}")

    def classes(self) -> list[tuple[float, int]]:
        """Groups of identical workers as ``(slowdown, count)``, in first-seen order."""
        if self.slowdown is None:
            return [(1.0, self.workers)]
        counts: dict[float, int] = {}
        for s in self.slowdown:
            counts[s] = counts.get(s, 0) + 1
        return list(counts.items())
