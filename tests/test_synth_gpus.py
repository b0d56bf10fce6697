"""GPU roofline presets for trace synthesis (no PyTorch needed)."""

from __future__ import annotations

import pytest

from dearsim.errors import DearsimError
from dearsim.synth.gpus import DEFAULT_GPU, GPU, GPUS, get_gpu


def test_presets_carry_the_datasheet_numbers() -> None:
    assert DEFAULT_GPU == "rtx2080ti"
    expect = {
        "rtx2080ti": (13.45e12, 616e9),
        "v100": (15.7e12, 900e9),
        "a100": (19.5e12, 1555e9),
        "h100": (67e12, 3.35e12),
    }
    assert set(GPUS) == set(expect)
    for name, (flops, bw) in expect.items():
        g = GPUS[name]
        assert (g.peak_flops, g.mem_bw) == (flops, bw)
        assert g.source and g.label
        assert 0 < g.compute_eff <= 1 and 0 < g.mem_eff <= 1 and g.launch_overhead_s >= 0
    # 4352 CUDA cores x 2 FLOP x 1.545 GHz
    assert GPUS["rtx2080ti"].peak_flops == pytest.approx(4352 * 2 * 1.545e9, rel=1e-3)


def test_names_are_forgiving_and_unknown_ones_are_errors() -> None:
    for spelling in ("rtx2080ti", "RTX-2080-Ti", "2080ti", "rtx_2080_ti"):
        assert get_gpu(spelling).name == "rtx2080ti"
    assert get_gpu("H100").name == "h100"
    with pytest.raises(DearsimError, match="unknown GPU 'p100'.*rtx2080ti"):
        get_gpu("p100")


def test_kernel_time_is_the_roofline_plus_launch() -> None:
    g = GPU("x", "X", peak_flops=10e12, mem_bw=1e12, source="-", compute_eff=0.5, mem_eff=0.5,
            launch_overhead_s=1e-6)
    assert g.kernel_time(5e9, 0) == pytest.approx(1e-3 + 1e-6)  # 5 GFLOP at 5 TFLOP/s
    assert g.kernel_time(0, 1e9) == pytest.approx(2e-3 + 1e-6)  # 1 GB at 0.5 TB/s
    assert g.kernel_time(5e9, 1e9) == pytest.approx(2e-3 + 1e-6)  # the slower bound wins
    h = g.with_efficiency(compute_eff=1.0)
    assert h.compute_eff == 1.0 and h.mem_eff == 0.5 and g.compute_eff == 0.5
    with pytest.raises(DearsimError, match="compute_eff"):
        g.with_efficiency(compute_eff=0)
    with pytest.raises(DearsimError, match="mem_bw"):
        GPU("y", "Y", peak_flops=1.0, mem_bw=0.0, source="-")
