"""Write ``comm_allreduce_synth.csv``: a small, *synthesised* stand-in for the timings the
collector measures, for ``04_calibration.py``. Not a measurement.

Each row is the median time of an all-reduce of ``bytes`` bytes among ``workers`` workers,
computed from the ring alpha-beta model of a 25 Gb/s network, ``T = 2(p-1) alpha +
2(p-1)/p n beta`` with ``alpha = 15 us`` per step and ``beta = 8e-9 / 25`` s per byte, times
log-normal noise (3% spread, seed 11). Run from anywhere: ``python
notebooks/data/make_comm_csv.py``; the output is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ALPHA_S = 15e-6
BETA_S_PER_BYTE = 8e-9 / 25
NOISE = 0.03
SEED = 11
WORKERS = (2, 4)
SIZES = [2**k for k in range(12, 29, 2)]  # 4 KiB .. 256 MiB

HEADER = f"""\
# SYNTHESISED, NOT MEASURED: all-reduce medians from the ring alpha-beta model
# T = 2(p-1)*alpha + 2(p-1)/p*n*beta with alpha = {ALPHA_S:g} s, beta = {BETA_S_PER_BYTE:g} s/B
# (25 Gb/s), times log-normal noise of {NOISE:.0%} (seed {SEED}). Made by make_comm_csv.py.
"""


def main() -> Path:
    rng = np.random.default_rng(SEED)
    lines = [HEADER + "op,workers,bytes,median_s"]
    for p in WORKERS:
        for n in SIZES:
            t = 2 * (p - 1) * ALPHA_S + 2 * (p - 1) / p * n * BETA_S_PER_BYTE
            t *= float(np.exp(rng.normal(0.0, NOISE)))
            lines.append(f"allreduce,{p},{n},{t:.6e}")
    out = Path(__file__).resolve().parent / "comm_allreduce_synth.csv"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(main())
