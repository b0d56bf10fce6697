"""The shipped synthesised traces and ``dearsim trace show``: no PyTorch needed.

The five traces of the DeAR study's models must carry the published parameter counts (their
bytes are exact), say how they were made, and have forward/backward totals inside the bounds
their own GPU model implies. ``dearsim trace show`` summarises any trace without importing
torch; ``dearsim trace synth`` without torch fails with one line.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from dearsim import load_trace
from dearsim.synth.gpus import GPUS

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "traces"

# file -> (batch size, sequence length, exact parameter count, published count, tolerance)
SHIPPED: dict[str, tuple[int, int | None, int, int, int]] = {
    # The quick start's example: torchvision vgg16 (configuration D), 138,357,544 published.
    "vgg16-b32.csvy": (32, None, 138_357_544, 138_357_544, 0),
    # torchvision resnet50 / densenet201: the published counts, exactly.
    "resnet50-b64.csvy": (64, None, 25_557_032, 25_557_032, 0),
    "densenet201-b32.csvy": (32, None, 20_013_928, 20_013_928, 0),
    # Inception-v4 (Szegedy et al. 2016): "about 42.7M" (timm / Cadene: 42,679,816).
    "inception_v4-b64.csvy": (64, None, 42_679_816, 42_700_000, 100_000),
    # BERT-Base "110M": BertForPreTraining with pooler, NSP and MLM heads (decoder weight tied,
    # counted once), vocabulary 30522 padded to 30528.
    "bert-base-b64-s64.csvy": (64, 64, 110_111_042, 110_000_000, 1_000_000),
    # BERT-Large "340M" (335-340M depending on heads): same heads and vocabulary.
    "bert-large-b32-s64.csvy": (32, 64, 336_232_258, 337_500_000, 2_500_000),
}






# --------------------------------------------------------------------------- shipped traces


@pytest.mark.parametrize("fname", sorted(SHIPPED))
def test_shipped_trace_has_the_published_parameter_count(fname: str) -> None:
    batch, seq, exact, published, tol = SHIPPED[fname]
    trace = load_trace(TRACES / fname)
    assert trace.meta["dtype"] == "float32"
    assert trace.total_bytes % 4 == 0
    params = trace.total_bytes // 4
    assert params == exact
    assert abs(params - published) <= tol
    assert trace.batch_size == batch
    prov = trace.meta["provenance"]
    assert prov["totals"]["params"] == params
    if seq is not None:
        assert prov["workload"]["seq_len"] == seq
    # Layers are the modules that own parameters: none of these has a 0-byte layer.
    assert all(s > 0 for s in trace.size)
    assert len(set(trace.names)) == trace.num_layers


def test_shipped_layer_structure() -> None:
    r50 = load_trace(TRACES / "resnet50-b64.csvy")
    assert r50.num_layers == 53 + 53 + 1  # convolutions, batch norms, fc
    assert r50.names[0] == "conv1" and r50.names[-1] == "fc"
    assert r50.size[0] == 4 * 64 * 3 * 7 * 7
    assert r50.size[-1] == 4 * (2048 * 1000 + 1000)
    bert = load_trace(TRACES / "bert-base-b64-s64.csvy")
    sizes = dict(zip(bert.names, bert.size))
    # The tied decoder/word-embedding weight is counted once, with the embedding (first in
    # forward order, gradient ready last); the decoder layer keeps only its bias.
    assert bert.names[0] == "bert.embeddings.word_embeddings"
    assert sizes["bert.embeddings.word_embeddings"] == 4 * 30528 * 768
    assert sizes["cls.predictions.decoder"] == 4 * 30528
    assert bert.meta["provenance"]["workload"]["vocab_size"] == 30528
    large = load_trace(TRACES / "bert-large-b32-s64.csvy")
    assert sum(".attention.self.query" in n for n in large.names) == 24


# file -> parameter tensors (len(list(model.parameters())): a tied weight once)
TENSORS = {
    "vgg16-b32.csvy": 32,  # 13 convolutions + 3 linear layers, weight and bias each
    "resnet50-b64.csvy": 161,  # 53 convolutions (no bias), 53 batch norms x 2, fc x 2
    "densenet201-b32.csvy": 604,  # 200 convolutions, 201 batch norms x 2, classifier x 2
    "inception_v4-b64.csvy": 449,  # 149 convolutions, 149 batch norms x 2, classifier x 2
    "bert-base-b64-s64.csvy": 206,  # see tests/test_synth.py
    "bert-large-b32-s64.csvy": 398,
}


@pytest.mark.parametrize("fname", sorted(SHIPPED))
def test_shipped_trace_has_the_per_tensor_breakdown(fname: str) -> None:
    trace = load_trace(TRACES / fname)
    assert trace.meta["version"] == 2 and trace.has_breakdown
    assert trace.num_tensors == TENSORS[fname]
    for i, (tensors, names) in enumerate(zip(trace.tensors, trace.tensor_names)):
        assert sum(tensors) == trace.size[i] and all(b % 4 == 0 for b in tensors)
        assert len(names) == len(tensors) and len(set(names)) == len(names)
        assert set(names) <= {"weight", "bias"}, (trace.names[i], names)
        # a layer's weight comes before its bias, as modules register them
        assert list(names) == sorted(names, key=["weight", "bias"].index)
    assert sum(b for t in trace.tensors for b in t) // 4 == SHIPPED[fname][2]


def test_shipped_tensors_of_known_layers() -> None:
    r50 = load_trace(TRACES / "resnet50-b64.csvy")
    by = dict(zip(r50.names, zip(r50.tensors, r50.tensor_names)))
    assert by["conv1"] == ((4 * 64 * 3 * 7 * 7,), ("weight",))  # no bias
    assert by["bn1"] == ((256, 256), ("weight", "bias"))
    assert by["fc"] == ((4 * 2048 * 1000, 4000), ("weight", "bias"))
    bert = load_trace(TRACES / "bert-base-b64-s64.csvy")
    by = dict(zip(bert.names, zip(bert.tensors, bert.tensor_names)))
    assert by["bert.embeddings.word_embeddings"] == ((4 * 30528 * 768,), ("weight",))
    assert by["cls.predictions.decoder"] == ((4 * 30528,), ("bias",))  # weight tied
    assert by["bert.encoder.layer.0.attention.self.query"] == (
        (4 * 768 * 768, 4 * 768), ("weight", "bias")
    )


@pytest.mark.parametrize("fname", sorted(SHIPPED))
def test_shipped_trace_says_how_it_was_made(fname: str) -> None:
    meta = load_trace(TRACES / fname).meta
    prov = meta["provenance"]
    assert prov["method"] == "synthesised"
    assert prov["created"] == "2026-11-25"
    assert "RTX 2080 Ti" in prov["device"] and "not measured" in prov["device"]
    assert prov["framework"].startswith("torch ")
    assert "not measured" in prov["how"]
    gpu = prov["gpu_model"]
    preset = GPUS["rtx2080ti"]
    assert gpu["peak_flops"] == preset.peak_flops == 13.45e12
    assert gpu["mem_bw"] == preset.mem_bw == 616e9
    for key in ("compute_eff", "mem_eff", "launch_overhead_s", "source"):
        assert key in gpu
    assert prov["optimizer"]["name"] == "sgd"
    assert prov["command"].startswith("dearsim trace synth --model ")
    assert "--created 2026-11-25" in prov["command"]
    for key in ("counting", "layers"):
        assert prov[key]


@pytest.mark.parametrize("fname", sorted(SHIPPED))
def test_shipped_times_lie_within_the_roofline_bounds(fname: str) -> None:
    """Per operator, max(F/Fr, B/Br) + o is at least each term and at most their sum + o, so
    each pass's total lies between the larger of the two sums and both sums plus overheads."""
    trace = load_trace(TRACES / fname)
    prov = trace.meta["provenance"]
    g, tot = prov["gpu_model"], prov["totals"]
    flop_rate = g["peak_flops"] * g["compute_eff"]
    byte_rate = g["mem_bw"] * g["mem_eff"]
    for which, times in (("fwd", trace.fwd), ("bwd", trace.bwd)):
        total = math.fsum(times)
        t_flop = tot[f"{which}_flop"] / flop_rate
        t_byte = tot[f"{which}_bytes"] / byte_rate
        t_launch = tot[f"{which}_kernels"] * g["launch_overhead_s"]
        assert total >= max(t_flop, t_byte) * (1 - 1e-9), which
        assert total <= (t_flop + t_byte + t_launch) * (1 + 1e-9), which
        assert total >= t_launch * (1 - 1e-9)
    # Update: plain SGD streams 3 x 4 bytes per parameter, plus one launch per tensor.
    upd = math.fsum(trace.update)
    streamed = 3 * trace.total_bytes / byte_rate
    assert upd == pytest.approx(streamed + trace.num_tensors * g["launch_overhead_s"], rel=1e-9)
    for i in range(trace.num_layers):
        expect = 3 * trace.size[i] / byte_rate + len(trace.tensors[i]) * g["launch_overhead_s"]
        assert trace.update[i] == pytest.approx(expect, rel=1e-9)


def test_shipped_resnet50_compute_is_plausible_for_a_2080ti() -> None:
    """docs/traces.md compares with public numbers; this only guards against a regression by
    an order of magnitude (about 220-260 ms per batch of 64 is the public range)."""
    t = load_trace(TRACES / "resnet50-b64.csvy")
    assert 0.15 < t.compute_time < 0.35
    assert 1.5 < sum(t.bwd) / sum(t.fwd) < 2.5


# --------------------------------------------------------------------------- show


def test_show_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "trace", "show", TRACES / "resnet50-b64.csvy")
    assert rc == 0, err
    assert "resnet50-b64-2080ti-synth" in out
    assert "107 (107 with gradients)" in out
    assert "25,557,032" in out
    assert "102,228,128 bytes" in out
    t = load_trace(TRACES / "resnet50-b64.csvy")
    assert f"{sum(t.fwd) * 1e3:.3f} ms" in out
    assert f"{sum(t.bwd) * 1e3:.3f} ms" in out
    assert "largest layers" in out and "layer4.0.conv2" in out
    assert "tensors     161 (per-tensor breakdown given)" in out
    assert "provenance:" in out and "synthesised" in out and "RTX 2080 Ti" in out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "trace", "show", TRACES / "bert-base-b64-s64.csvy", "--json",
                       "--top", "3")
    assert rc == 0, err
    s = json.loads(out)
    assert s["params"] == 110_111_042
    assert s["layers"] == 105
    assert s["tensors"] == 206 and s["has_breakdown"] is True
    assert s["largest"][0]["tensors"] == 1  # the word embeddings: one tensor
    assert len(s["largest"]) == 3
    assert s["largest"][0]["name"] == "bert.embeddings.word_embeddings"
    assert s["provenance"]["method"] == "synthesised"
    assert s["compute_ms"] == pytest.approx(s["fwd_ms"] + s["bwd_ms"] + s["update_ms"])


def test_show_works_on_a_plain_csv_and_the_example(capsys, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("name,fwd_ms,bwd_ms,bytes\nconv,1,2,400\nrelu,0.5,0.5,0\nfc,1,2,4000\n")
    rc, out, err = run(capsys, "trace", "show", p)
    assert rc == 0, err
    assert "3 (2 with gradients)" in out
    assert "tensors     2 (no per-tensor breakdown: one per layer with gradients)" in out
    assert "1,100 if 4 bytes each" in out
    assert "provenance: none recorded" in out
    rc, out, err = run(capsys, "trace", "show", TRACES / "vgg16-b32.csvy", "--top", "0")
    assert rc == 0, err
    assert "138,357,544" in out and "largest layers" not in out


def test_show_counts_the_tensors_of_a_plain_csv(capsys, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("name,fwd_ms,bwd_ms,bytes,tensor_bytes,tensor_names\n"
                 "conv,1,2,400,300;100,weight;bias\nrelu,0.5,0.5,0,,\nfc,1,2,4000,,\n")
    rc, out, err = run(capsys, "trace", "show", p, "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert (s["tensors"], s["has_breakdown"]) == (3, True)
    assert [r["tensors"] for r in s["largest"]] == [1, 2]


def test_summary_library_names_parameters() -> None:
    from dearsim.errors import ParamError
    from dearsim.summary import summarise

    with pytest.raises(ParamError) as info:
        summarise(load_trace(TRACES / "vgg16-b32.csvy"), top=-1)
    assert info.value.param == "top" and str(info.value) == "top: must be >= 0, got -1"


def test_show_errors_are_one_line(capsys, tmp_path: Path) -> None:
    line = one_error_line(*run(capsys, "trace", "show", tmp_path / "missing.csvy"))
    assert "missing.csvy" in line and "not found" in line
    line = one_error_line(*run(capsys, "trace", "show", TRACES / "resnet50-b64.csvy",
                               "--top", "-1"))
    assert line == "dearsim: error: --top: must be >= 0, got -1"


def test_show_never_imports_torch(tmp_path: Path) -> None:
    """``show`` works where PyTorch is not installed (torch blocked in a fresh interpreter)."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import typer, dearsim.cli\n"
        "from dearsim.cli_trace import trace_app\n"
        "typer.main.get_command(trace_app).main(\n"
        f"    ['show', {str(TRACES / 'resnet50-b64.csvy')!r}], standalone_mode=False)\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert r.returncode == 0, r.stderr
    assert "25,557,032" in r.stdout


def test_synth_without_torch_is_one_clear_line(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    out_file = tmp_path / "x.csvy"
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50",
                               "--batch-size", "2", "--out", out_file))
    assert line == "dearsim: error: dearsim trace synth needs PyTorch: pip install 'dearsim[synth]'"
    assert not out_file.exists()


def test_synth_checks_the_gpu_before_needing_torch(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50", "--batch-size",
                               "2", "--gpu", "tpu9", "--out", tmp_path / "x.csvy"))
    assert line.startswith("dearsim: error: --gpu: unknown GPU 'tpu9'") and "rtx2080ti" in line
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50", "--batch-size",
                               "0", "--out", tmp_path / "x.csvy"))
    assert line == "dearsim: error: --batch-size: must be a positive integer, got 0"
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50", "--batch-size",
                               "2", "--created", "yesterday", "--out", tmp_path / "x.csvy"))
    assert line == "dearsim: error: --created: must be a date YYYY-MM-DD, got 'yesterday'"
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50", "--batch-size",
                               "2", "--mem-eff", "1.5", "--out", tmp_path / "x.csvy"))
    assert line == "dearsim: error: --mem-eff: must be in (0, 1], got 1.5"
    line = one_error_line(*run(capsys, "trace", "synth", "--model", "resnet50", "--batch-size",
                               "2", "--launch-us", "-1", "--out", tmp_path / "x.csvy"))
    assert line == "dearsim: error: --launch-us: must be a number >= 0, got -1.0"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"batch_size": 0}, "batch_size"), ({"gpu": "tpu9"}, "gpu"),
     ({"compute_eff": 0.0}, "compute_eff"), ({"mem_eff": 2.0}, "mem_eff"),
     ({"launch_us": -1.0}, "launch_us"), ({"created": "soon"}, "created")],
)
def test_synth_library_names_parameters_not_flags(kwargs: dict, param: str) -> None:
    """No torch needed: arguments are checked before the model is built."""
    from dearsim.errors import ParamError
    from dearsim.synth.api import synthesise_trace

    args = {"model": "resnet50", "batch_size": 2, **kwargs}
    with pytest.raises(ParamError) as info:
        synthesise_trace(**args)
    assert info.value.param == param
    assert str(info.value).startswith(f"{param}: ") and "--" not in str(info.value)


def test_importing_the_library_never_imports_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import dearsim, dearsim.synth, dearsim.synth.api, dearsim.summary, dearsim.cli_trace\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       check=False)
    assert r.returncode == 0, r.stderr


def test_every_shipped_trace_is_checked_here() -> None:
    # A new file in traces/ must join SHIPPED, so its counts and provenance are tested.
    assert {p.name for p in TRACES.glob("*.csv*")} == set(SHIPPED)
