"""GPU models for trace synthesis (no PyTorch needed).

A GPU is a roofline: one kernel doing ``flops`` floating-point operations and moving ``bytes``
to or from device memory takes

    max(flops / (peak_flops * compute_eff), bytes / (mem_bw * mem_eff)) + launch_overhead_s

Peak numbers are the vendors' datasheet figures for plain fp32 (CUDA cores, no tensor cores:
the traces are fp32 and dearsim models the study's setting). The efficiencies are chosen a
priori, the same for every GPU, and are *not* fitted to any measurement:

* ``compute_eff = 0.7``: large cuBLAS/cuDNN fp32 GEMM and convolution kernels sustain roughly
  70-80% of the nominal peak (the nominal peak assumes every FMA unit busy every cycle at the
  datasheet boost clock); 0.7 leaves room for the smaller, less regular layers.
* ``mem_eff = 0.8``: streaming kernels (copy/scale/add, as in the STREAM and BabelStream
  benchmarks) reach about 80-90% of the DRAM peak; element-wise and normalisation kernels of
  a training step are shorter and less regular, so 0.8.
* ``launch_overhead_s = 4e-6``: a fixed cost per kernel (launch latency and the gap between
  back-to-back kernels on the stream), a few microseconds on every recent NVIDIA GPU.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import DearsimError

COMPUTE_EFF = 0.7
MEM_EFF = 0.8
LAUNCH_OVERHEAD_S = 4e-6


@dataclass(frozen=True)
class GPU:
    """A roofline model of one GPU. Rates are per second: FLOP/s and bytes/s."""

    name: str  # the preset key, e.g. "rtx2080ti"
    label: str  # the product, e.g. "NVIDIA GeForce RTX 2080 Ti"
    peak_flops: float  # fp32, FLOP/s (a fused multiply-add counts as 2)
    mem_bw: float  # device-memory bandwidth, bytes/s
    source: str  # where peak_flops and mem_bw come from
    compute_eff: float = COMPUTE_EFF
    mem_eff: float = MEM_EFF
    launch_overhead_s: float = LAUNCH_OVERHEAD_S
    short: str = ""  # short tag used in trace names, e.g. "2080ti"

    def __post_init__(self) -> None:
        for field in ("peak_flops", "mem_bw"):
            v = getattr(self, field)
            if not v > 0:
                raise DearsimError(f"GPU {self.name}: {field} must be > 0, got {v!r}")
        for field in ("compute_eff", "mem_eff"):
            v = getattr(self, field)
            if not 0 < v <= 1:
                raise DearsimError(f"GPU {self.name}: {field} must be in (0, 1], got {v!r}")
        if not self.launch_overhead_s >= 0:
            raise DearsimError(f"GPU {self.name}: launch_overhead_s must be >= 0")

    @property
    def flop_rate(self) -> float:
        """Sustained FLOP/s assumed for compute-bound kernels."""
        return self.peak_flops * self.compute_eff

    @property
    def byte_rate(self) -> float:
        """Sustained bytes/s assumed for memory-bound kernels."""
        return self.mem_bw * self.mem_eff

    def kernel_time(self, flops: float, nbytes: float) -> float:
        """Seconds for one kernel: the roofline bound plus the fixed launch overhead."""
        return max(flops / self.flop_rate, nbytes / self.byte_rate) + self.launch_overhead_s

    def with_efficiency(
        self,
        compute_eff: float | None = None,
        mem_eff: float | None = None,
        launch_overhead_s: float | None = None,
    ) -> GPU:
        """A copy with some efficiencies replaced (``None`` keeps the preset's)."""
        changes: dict[str, float] = {}
        if compute_eff is not None:
            changes["compute_eff"] = compute_eff
        if mem_eff is not None:
            changes["mem_eff"] = mem_eff
        if launch_overhead_s is not None:
            changes["launch_overhead_s"] = launch_overhead_s
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """The model's numbers, for a trace's provenance."""
        d = asdict(self)
        d.pop("short")
        return d


GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        # 4352 CUDA cores x 2 FLOP x 1545 MHz reference boost clock = 13.45 TFLOP/s; 352-bit
        # GDDR6 at 14 Gb/s = 616 GB/s. Source: NVIDIA Turing GPU Architecture whitepaper
        # (2018), table "GeForce RTX 2080 Ti Reference" (peak FP32 13.4 TFLOPS, 616 GB/s).
        # The GPU of the DeAR study.
        GPU(
            name="rtx2080ti",
            label="NVIDIA GeForce RTX 2080 Ti",
            peak_flops=13.45e12,
            mem_bw=616e9,
            source="NVIDIA Turing GPU Architecture whitepaper (2018), GeForce RTX 2080 Ti "
            "reference board: 4352 CUDA cores at 1545 MHz boost = 13.45 TFLOP/s fp32; "
            "352-bit GDDR6 at 14 Gb/s = 616 GB/s",
            short="2080ti",
        ),
        # Source: NVIDIA Tesla V100 datasheet: V100 SXM2, single precision 15.7 TFLOPS,
        # HBM2 900 GB/s.
        GPU(
            name="v100",
            label="NVIDIA Tesla V100 SXM2",
            peak_flops=15.7e12,
            mem_bw=900e9,
            source="NVIDIA Tesla V100 datasheet: V100 SXM2, single precision 15.7 TFLOPS, "
            "HBM2 900 GB/s",
            short="v100",
        ),
        # Source: NVIDIA A100 Tensor Core GPU datasheet: A100 40GB, FP32 (non-tensor-core)
        # 19.5 TFLOPS, HBM2 1,555 GB/s. (TF32 tensor cores, which PyTorch uses for cuDNN
        # convolutions by default on Ampere and later, are not modelled.)
        GPU(
            name="a100",
            label="NVIDIA A100 40GB",
            peak_flops=19.5e12,
            mem_bw=1555e9,
            source="NVIDIA A100 Tensor Core GPU datasheet: A100 40GB, FP32 19.5 TFLOPS "
            "(CUDA cores, not TF32 tensor cores), HBM2 1,555 GB/s",
            short="a100",
        ),
        # Source: NVIDIA H100 Tensor Core GPU datasheet: H100 SXM, FP32 67 TFLOPS,
        # HBM3 3.35 TB/s.
        GPU(
            name="h100",
            label="NVIDIA H100 SXM",
            peak_flops=67e12,
            mem_bw=3.35e12,
            source="NVIDIA H100 Tensor Core GPU datasheet: H100 SXM, FP32 67 TFLOPS "
            "(CUDA cores), HBM3 3.35 TB/s",
            short="h100",
        ),
    )
}

DEFAULT_GPU = "rtx2080ti"
_ALIASES = {"2080ti": "rtx2080ti", "geforcertx2080ti": "rtx2080ti", "teslav100": "v100",
            "v100sxm2": "v100", "a10040gb": "a100", "h100sxm": "h100"}


def get_gpu(name: str) -> GPU:
    """The preset named ``name`` (case, spaces, dashes and underscores are ignored)."""
    key = re.sub(r"[\s_\-]+", "", name.strip().lower())
    key = _ALIASES.get(key, key)
    try:
        return GPUS[key]
    except KeyError:
        raise DearsimError(
            f"unknown GPU {name!r} (known: {', '.join(GPUS)})"
        ) from None
