"""``dearsim trace synth``: real model definitions, per-operator counting, the GPU model.

Needs PyTorch (and torchvision, timm, transformers for their models); skipped without them.
Everything runs on the meta device, so no test allocates real tensors.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from cli_helpers import one_error_line, run

from dearsim import load_trace
from dearsim.errors import DearsimError, ParamError
from dearsim.synth import models
from dearsim.synth import profile as P
from dearsim.synth.api import synthesise_trace
from dearsim.synth.gpus import get_gpu
from dearsim.trace import format_trace

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).with_name("synth_models.py")


def spec(fn: str) -> str:
    return f"{HELPERS}:{fn}"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())  # shared parameters once






# --------------------------------------------------------------------------- builders


def test_torchvision_models_have_the_published_counts() -> None:
    pytest.importorskip("torchvision")
    assert n_params(models.build("resnet50", 2).model) == 25_557_032
    assert n_params(models.build("densenet201", 2).model) == 20_013_928


def test_inception_v4_has_about_42_7m_parameters() -> None:
    pytest.importorskip("timm")
    w = models.build("inception_v4", 2)
    assert n_params(w.model) == 42_679_816
    assert w.args[0].shape == (2, 3, 224, 224)


def test_bert_counts_with_the_pretraining_heads() -> None:
    """BertForPreTraining (pooler, NSP head, MLM head; decoder weight tied to the word
    embeddings), vocabulary 30522 padded to 30528: Base 110.1M, Large 336.2M."""
    pytest.importorskip("transformers")
    base = models.build("bert-base", 2, seq_len=64)
    large = models.build("bert-large", 2, seq_len=64)
    assert n_params(base.model) == 110_111_042
    assert n_params(large.model) == 336_232_258
    assert 335_000_000 <= n_params(large.model) <= 340_000_000
    emb = base.model.bert.embeddings.word_embeddings.weight
    assert base.model.cls.predictions.decoder.weight is emb
    assert emb.shape == (30528, 768)
    assert base.kwargs["input_ids"].shape == (2, 64)
    assert base.model.config._attn_implementation == "eager"


# --------------------------------------------------------------------------- layers


def test_layers_follow_forward_order_and_fold_parameter_free_work() -> None:
    prof = P.profile(models.build(spec("tiny_cnn"), 2))
    conv, fc = prof.layers
    # fc is registered before conv but runs after it.
    assert [conv.name, fc.name] == ["conv", "fc"]
    assert conv.params == 8 * 3 * 9 + 8 and fc.params == 128 * 10 + 10
    assert conv.param_bytes == 4 * conv.params
    # ReLU and max-pool are folded into conv in both passes: convolution, relu, max-pool
    # forward; max-pool backward, relu backward, convolution backward.
    assert len(conv.fwd_ops) == 3 and len(conv.bwd_ops) == 3
    # The conv layer's FLOPs are the convolution's: 2 x 8 x 27 MACs per output pixel.
    assert sum(f for f, _ in conv.fwd_ops) == 2 * 2 * 8 * 8 * 8 * 27
    assert prof.unmapped_bwd_ops == 0


def test_tied_weight_is_counted_once_with_the_first_layer() -> None:
    prof = P.profile(models.build(spec("tied_lm"), 2))
    by = {l.name: l for l in prof.layers}
    assert [l.name for l in prof.layers] == ["emb", "proj", "head", "unused"]
    assert by["emb"].params == 64 * 16  # the shared matrix, once
    assert by["head"].params == 64  # only its bias
    assert by["head"].fwd_ops and by["head"].bwd_ops  # its matmuls are timed where they run
    # The backward of emb includes accumulating the head's contribution into the shared grad.
    assert len(by["emb"].bwd_ops) == 2
    assert prof.unused_params == 16 * 3 + 3
    assert by["unused"].fwd_ops == [] and by["unused"].bwd_ops == []
    assert prof.totals()["params"] == 64 * 16 + 16 * 16 + 16 + 64 + 51


def test_fully_tied_module_is_not_a_layer() -> None:
    prof = P.profile(models.build(spec("tied_lm_no_head_bias"), 2))
    names = [l.name for l in prof.layers]
    assert names == ["emb", "proj", "unused"]
    proj = prof.layers[1]
    # proj's own matmul plus the head's (folded into the layer before it, not into emb).
    assert sum(f for f, _ in proj.fwd_ops) == 2 * 2 * 8 * 16 * (16 + 64)


def test_parameter_read_outside_its_module_still_counts() -> None:
    prof = P.profile(models.build(spec("functional"), 3))
    assert [l.name for l in prof.layers] == ["table", "out"]
    assert prof.layers[0].params == 32 * 8
    assert prof.layers[0].fwd_ops


def test_bert_layers_and_tied_decoder() -> None:
    pytest.importorskip("transformers")
    prof = P.profile(models.build("bert-base", 2, seq_len=8))
    names = [l.name for l in prof.layers]
    by = {l.name: l for l in prof.layers}
    assert names[0] == "bert.embeddings.word_embeddings"
    assert by[names[0]].params == 30528 * 768
    assert by["cls.predictions.decoder"].params == 30528
    assert names[-1] == "cls.seq_relationship"
    assert names.index("bert.pooler.dense") < names.index("cls.predictions.transform.dense")
    assert len(names) == 4 + 12 * 8 + 1 + 2 + 1 + 1
    assert prof.totals()["params"] == 110_111_042
    assert prof.unused_params == 0 and prof.unmapped_bwd_ops == 0


# --------------------------------------------------------------------------- tensors


def check_breakdown(w, prof) -> None:
    """Each layer's tensors are parameters its module registers, under their local names, in
    ``named_parameters(recurse=False)`` order, fp32 bytes each, summing to the layer's bytes;
    every trainable parameter of the model is in exactly one layer (tied ones once)."""
    seen: list[int] = []
    for l in prof.layers:
        assert sum(l.tensor_bytes) == l.param_bytes, l.name
        assert len(l.tensor_bytes) == len(l.tensor_names) == l.tensors
        own = dict(w.model.get_submodule(l.name).named_parameters(recurse=False))
        assert set(l.tensor_names) <= set(own), l.name
        assert l.tensor_names == [n for n in own if n in l.tensor_names]  # registration order
        for n, b in zip(l.tensor_names, l.tensor_bytes):
            assert b == 4 * own[n].numel()
            seen.append(id(own[n]))
    assert sorted(seen) == sorted(id(p) for p in w.model.parameters())  # each once
    total = sum(b for l in prof.layers for b in l.tensor_bytes)
    assert total == 4 * n_params(w.model)


def test_tensors_are_the_parameters_in_registration_order() -> None:
    prof = P.profile(models.build(spec("tiny_cnn"), 2))
    conv, fc = prof.layers
    assert list(zip(conv.tensor_names, conv.tensor_bytes)) == [
        ("weight", 4 * 8 * 3 * 9), ("bias", 4 * 8)
    ]
    assert list(zip(fc.tensor_names, fc.tensor_bytes)) == [("weight", 4 * 1280), ("bias", 40)]
    check_breakdown(models.build(spec("tiny_cnn"), 2), prof)


def test_tied_tensor_is_counted_once_with_its_first_owner() -> None:
    w = models.build(spec("tied_lm"), 2)
    prof = P.profile(w)
    by = {l.name: l for l in prof.layers}
    assert by["emb"].tensor_names == ["weight"] and by["emb"].tensor_bytes == [4 * 64 * 16]
    assert by["head"].tensor_names == ["bias"] and by["head"].tensor_bytes == [4 * 64]
    assert by["unused"].tensor_names == ["weight", "bias"]
    check_breakdown(w, prof)
    trace = P.to_trace(prof, get_gpu("v100"), "sgd", "t", 2)
    assert trace.has_breakdown and trace.num_tensors == 6
    assert trace.tensor_names == (("weight",), ("weight", "bias"), ("bias",), ("weight", "bias"))


def test_parameter_read_by_a_parent_keeps_its_owner_name() -> None:
    w = models.build(spec("functional"), 3)
    prof = P.profile(w)
    assert prof.layers[0].tensor_names == ["weight"]
    check_breakdown(w, prof)


@pytest.mark.parametrize(
    ("model", "kw", "package"),
    [("resnet18", {"image_size": 32}, "torchvision"),
     ("densenet121", {"image_size": 32}, "torchvision"),
     ("bert-base", {"seq_len": 8}, "transformers")],
)
def test_breakdown_of_real_models(model: str, kw: dict, package: str) -> None:
    pytest.importorskip(package)
    w = models.build(model, 2, **kw)
    prof = P.profile(w)
    check_breakdown(w, prof)
    if model == "bert-base":
        by = {l.name: l for l in prof.layers}
        assert by["bert.embeddings.word_embeddings"].tensor_names == ["weight"]
        assert by["cls.predictions.decoder"].tensor_names == ["bias"]  # weight is tied
        assert by["bert.embeddings.LayerNorm"].tensor_names == ["weight", "bias"]
        # embeddings 3 + LayerNorm 2; 12 x (q, k, v, out, 2 LayerNorms, FFN in and out: 16);
        # pooler 2; MLM transform 2 + LayerNorm 2 + decoder bias 1; NSP head 2
        assert sum(l.tensors for l in prof.layers) == 5 + 12 * 16 + 2 + 5 + 2 == 206


def test_synthesised_trace_carries_the_breakdown(capsys, tmp_path: Path) -> None:
    out = tmp_path / "t.csvy"
    rc, _, err = run(capsys, "trace", "synth", "--model", spec("tiny_cnn"), "--batch-size", "2",
                     "--created", "2026-01-02", "--out", out)
    assert rc == 0, err
    assert "1,514 parameters in 4 tensors" in err
    text = out.read_text(encoding="utf-8")
    assert "\nversion: 2\n" in text
    assert "name,fwd_ms,bwd_ms,bytes,update_ms,tensor_bytes,tensor_names\n" in text
    t = load_trace(out)
    assert t.has_breakdown and t.num_tensors == 4
    assert t.tensors == ((864, 32), (5120, 40))
    assert t.tensor_names == (("weight", "bias"), ("weight", "bias"))
    # the update model launches one kernel per tensor
    gpu = get_gpu("rtx2080ti")
    assert t.update[0] == pytest.approx(3 * 896 / gpu.byte_rate + 2 * gpu.launch_overhead_s)


# --------------------------------------------------------------------------- the GPU model


def test_times_are_the_roofline_sum_and_within_its_bounds() -> None:
    pytest.importorskip("torchvision")
    w = models.build("resnet18", 2, image_size=32)
    prof = P.profile(w)
    for gpu in (get_gpu("rtx2080ti"), get_gpu("h100")):
        trace = P.to_trace(prof, gpu, "sgd", "t", 2)
        tot = prof.totals()
        for which, times in (("fwd", trace.fwd), ("bwd", trace.bwd)):
            total = math.fsum(times)
            t_flop = tot[f"{which}_flop"] / gpu.flop_rate
            t_byte = tot[f"{which}_bytes"] / gpu.byte_rate
            t_launch = tot[f"{which}_kernels"] * gpu.launch_overhead_s
            assert total >= max(t_flop, t_byte) - 1e-12
            assert total <= t_flop + t_byte + t_launch + 1e-12
            ops = [op for l in prof.layers for op in getattr(l, f"{which}_ops")]
            assert total == pytest.approx(math.fsum(gpu.kernel_time(f, b) for f, b in ops))
        assert tot["bwd_flop"] > 1.5 * tot["fwd_flop"]  # weight and input gradients
    slow = P.to_trace(prof, get_gpu("rtx2080ti"), "sgd", "t", 2)
    fast = P.to_trace(prof, get_gpu("h100"), "sgd", "t", 2)
    assert all(f < s for f, s in zip(fast.bwd, slow.bwd))


def test_update_model_per_optimizer() -> None:
    prof = P.profile(models.build(spec("tiny_cnn"), 2))
    gpu = get_gpu("rtx2080ti")
    conv = prof.layers[0]
    for opt, k in (("sgd", 3), ("momentum", 5), ("adam", 7)):
        expect = k * conv.param_bytes / gpu.byte_rate + 2 * gpu.launch_overhead_s
        assert P.update_time(conv, gpu, opt) == pytest.approx(expect)


# --------------------------------------------------------------------------- synth


def test_synth_is_deterministic(capsys, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csvy", tmp_path / "sub" / "b.csvy"
    for out in (a, b):
        rc, _, err = run(capsys, "trace", "synth", "--model", spec("tiny_cnn"), "--batch-size",
                         "4", "--gpu", "v100", "--created", "2026-01-02", "--out", out)
        assert rc == 0, err
        assert f"wrote {out}: 2 layers, 1,514 parameters" in err
    assert a.read_bytes() == b.read_bytes()
    t = load_trace(a)
    prov = t.meta["provenance"]
    assert t.name == "tiny_cnn-b4-v100-synth" and t.batch_size == 4
    assert prov["method"] == "synthesised" and prov["created"] == "2026-01-02"
    assert prov["gpu_model"]["name"] == "v100"
    assert prov["command"] == (
        f"dearsim trace synth --model {spec('tiny_cnn')} --batch-size 4 --gpu v100 "
        "--created 2026-01-02"
    )
    assert t.total_bytes == 4 * 1514


def test_synth_of_a_torchvision_model_twice_is_identical() -> None:
    pytest.importorskip("torchvision")
    texts = {
        format_trace(*synthesise_trace("resnet18", 2, "rtx2080ti", image_size=64,
                                       created="2026-11-25"))
        for _ in range(2)
    }
    assert len(texts) == 1


def test_synth_default_date_is_today(capsys, tmp_path: Path) -> None:
    import datetime

    out = tmp_path / "t.csvy"
    rc, _, err = run(capsys, "trace", "synth", "--model", spec("tiny_cnn"), "--batch-size", "2",
                     "--out", out)
    assert rc == 0, err
    created = load_trace(out).meta["provenance"]["created"]
    assert created in {datetime.date.today().isoformat(),
                       (datetime.date.today() - datetime.timedelta(days=1)).isoformat()}


def test_user_module_by_import_name(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(HELPERS.parent))
    out = tmp_path / "t.csvy"
    rc, _, err = run(capsys, "trace", "synth", "--model", "synth_models:tied_lm",
                     "--batch-size", "2", "--seq-len", "4", "--optimizer", "adam", "--out", out)
    assert rc == 0, err
    t = load_trace(out)
    assert t.names == ("emb", "proj", "head", "unused")
    assert t.meta["provenance"]["unused_params"] == 51
    assert t.meta["provenance"]["optimizer"]["name"] == "adam"
    # A function without batch_size: its example batch must match --batch-size.
    rc, _, err = run(capsys, "trace", "synth", "--model", "synth_models:tiny_cnn_fixed_batch",
                     "--batch-size", "4", "--out", out)
    assert rc == 0, err


def test_shipped_resnet50_trace_regenerates_byte_for_byte() -> None:
    tv = pytest.importorskip("torchvision")
    shipped = ROOT / "traces" / "resnet50-b64.csvy"
    framework = load_trace(shipped).meta["provenance"]["framework"]
    have = f"torch {torch.__version__}, torchvision {tv.__version__} "
    if not framework.startswith(have):
        pytest.skip(f"shipped trace made with {framework!r}; this environment has {have!r}")
    sys.path.insert(0, str(ROOT / "traces"))
    try:
        import make_synth
    finally:
        sys.path.remove(str(ROOT / "traces"))
    text, _ = make_synth.render("resnet50", 64, None)
    assert text == shipped.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--model", "resnet5O", "--batch-size", "2"], r"unknown model 'resnet5o'.*did you mean"),
        (["--model", "resnet18", "--batch-size", "2", "--seq-len", "8"],
         r"--seq-len: applies to BERT models"),
        (["--model", "bert-base", "--batch-size", "2", "--seq-len", "600"], r"at most 512"),
        (["--model", "bert-base", "--batch-size", "2", "--image-size", "64"],
         r"--image-size: applies to image models"),
        (["--model", "resnet18", "--batch-size", "2", "--optimizer", "lamb"],
         r"--optimizer: unknown optimizer 'lamb'"),
        (["--model", "no_such_module_xyz:f", "--batch-size", "2"],
         r"cannot import no_such_module_xyz"),
        (["--model", "HELPERS:missing", "--batch-size", "2"], r"has no attribute 'missing'"),
        (["--model", "HELPERS:NOT_CALLABLE", "--batch-size", "2"], r"is not callable"),
        (["--model", "HELPERS:broken", "--batch-size", "2"], r"raised RuntimeError: boom"),
        (["--model", "HELPERS:not_a_model", "--batch-size", "2"], r"torch.nn.Module"),
        (["--model", "HELPERS:tiny_cnn", "--batch-size", "2", "--seq-len", "3"],
         r"--seq-len: given as 3, but .*takes no seq_len"),
        (["--model", "HELPERS:tiny_cnn_fixed_batch", "--batch-size", "2"],
         r"--batch-size: is 2, but .*tiny_cnn_fixed_batch takes no batch_size .*batch 4$"),
        (["--model", "HELPERS:data_dependent", "--batch-size", "2"],
         r"data_dependent: the training step failed on the meta device \(RuntimeError: .*item"),
        (["--model", "HELPERS:no_params", "--batch-size", "2"], r"no trainable parameters"),
        (["--model", ":f", "--batch-size", "2"], r"expected MODULE:FUNCTION"),
        (["--model", "nowhere/file.py:f", "--batch-size", "2"], r"not found"),
    ],
)
def test_bad_input_is_one_line(capsys, tmp_path: Path, argv: list[str], pattern: str) -> None:
    if any(a.startswith(("resnet", "bert")) for a in argv):
        pytest.importorskip("torchvision" if "resnet" in " ".join(argv) else "transformers")
    argv = [a.replace("HELPERS", str(HELPERS)) for a in argv]
    out = tmp_path / "t.csvy"
    line = one_error_line(*run(capsys, "trace", "synth", *argv, "--out", out))
    assert re.search(pattern, line), line
    assert not out.exists()


def test_builder_errors_name_the_parameter_not_the_flag() -> None:
    """The library says ``batch_size``; only the command line says ``--batch-size``."""
    for bad in (0, True):
        with pytest.raises(ParamError) as info:
            models.build("resnet50", bad)  # type: ignore[arg-type]
        assert info.value.param == "batch_size"
        assert str(info.value) == f"batch_size: must be a positive integer, got {bad!r}"
    with pytest.raises(ParamError) as info:
        models.build("resnet50", 2, seq_len=0)
    assert info.value.param == "seq_len" and "--" not in str(info.value)
    with pytest.raises(ParamError) as info:
        models.build(spec("tiny_cnn"), 2, seq_len=3)
    assert info.value.param == "seq_len" and "--" not in str(info.value)
    with pytest.raises(ParamError) as info:
        models.build(spec("missing"), 2)
    assert info.value.param == "model" and "has no attribute 'missing'" in str(info.value)
    assert issubclass(ParamError, DearsimError)
