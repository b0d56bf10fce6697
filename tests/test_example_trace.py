"""The shipped example trace: exact sizes, complete provenance, reproducible."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from dearsim import load_trace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "vgg16-b32.csvy"

# VGG-16 (configuration D, torchvision ``vgg16``): 138,357,544 parameters, the published count.
VGG16_PARAMS = 138_357_544


def test_vgg16_sizes_match_the_published_parameter_count() -> None:
    trace = load_trace(EXAMPLE)
    assert trace.total_bytes == 4 * VGG16_PARAMS
    assert len(trace.grad_layers) == 16  # 13 conv + 3 fc layers have parameters
    assert trace.size[0] == 4 * (3 * 64 * 9 + 64)  # conv1_1 weight + bias
    assert trace.size[-1] == 4 * (4096 * 1000 + 1000)  # fc8
    assert trace.batch_size == 32


def test_every_shipped_trace_says_where_its_numbers_come_from() -> None:
    for path in sorted((ROOT / "traces").glob("*.csvy")):
        meta = load_trace(path).meta
        prov = meta.get("provenance", {})
        assert prov.get("method") in {"measured", "synthesised"}, path
        for key in ("created", "device", "framework", "how"):
            assert prov.get(key), f"{path}: provenance.{key} missing"
        assert meta.get("model"), path


def test_generator_reproduces_the_shipped_file(tmp_path: Path, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("make_example", ROOT / "traces" / "make_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "argv", ["make_example.py"])
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "__file__", str(tmp_path / "make_example.py"))
    module.main()
    assert (tmp_path / "vgg16-b32.csvy").read_text() == EXAMPLE.read_text()
