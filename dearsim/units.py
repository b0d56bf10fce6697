"""Units used across dearsim. Inside the library times are seconds and sizes bytes; files
and options name their unit (``fwd_ms``, ``bucket_cap_mb``), converted with these."""

from __future__ import annotations

#: Bytes in a MiB. Every ``*_mb`` option of a schedule is in MiB, as PyTorch's
#: ``bucket_cap_mb`` and Horovod's fusion threshold are.
MIB = 1 << 20
#: Seconds in a millisecond.
MS = 1e-3
#: Seconds per byte at 1 Gb/s.
BETA_AT_1GBPS = 8e-9
