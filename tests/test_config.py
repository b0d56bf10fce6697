"""Sweep configs: schema, expansion (grid and zip), and errors that name the YAML line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dearsim import DearsimError
from dearsim.config import RunSpec, expand, load_config

TRACE = "name,fwd_ms,bwd_ms,bytes\na,1,2,4000000\nb,1,2,0\nc,1,2,8000000\n"


@pytest.fixture
def write(tmp_path: Path):
    (tmp_path / "t.csv").write_text(TRACE)

    def _write(text: str) -> Path:
        p = tmp_path / "c.yaml"
        p.write_text(text)
        return p

    return _write


BASE = "traces: [t.csv]\nnetworks: [10GbE]\n"


def specs(path: Path) -> list[RunSpec]:
    return load_config(path).runs


def test_top_level_lists_form_a_product_with_schedules_fastest(write) -> None:
    runs = specs(write(BASE + "workers: [2, 4]\nschedules: [wfbp, dear]\n"))
    assert [(r.workers, r.schedule) for r in runs] == [
        (2, "wfbp"), (2, "dear"), (4, "wfbp"), (4, "dear"),
    ]
    assert runs[0].trace == "t" and runs[0].network["label"] == "10GbE"
    assert runs[0].iterations == 10 and runs[0].warmup == 2


def test_default_schedules_are_all_registered(write) -> None:
    runs = specs(write(BASE + "workers: 8\n"))
    assert [r.schedule for r in runs] == [
        "wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp",
    ]


def test_grid_is_a_cartesian_product(write) -> None:
    text = BASE + (
        "workers: 8\nschedules: [wfbp]\n"
        "sweep:\n  grid:\n    network.bandwidth_gbps: [10, 100]\n    iterations: [6, 8, 10]\n"
    )
    runs = specs(write(text))
    assert len(runs) == 6
    # 10 Gb/s -> 8e-10 s/B, 100 Gb/s -> 8e-11 s/B; alpha stays the preset's.
    betas = sorted({r.network["beta_s_per_byte"] for r in runs})
    assert betas == pytest.approx([8e-11, 8e-10])
    assert {r.network["alpha_s"] for r in runs} == {5.59e-5}
    assert sorted({r.iterations for r in runs}) == [6, 8, 10]


def test_zip_advances_together(write) -> None:
    text = BASE + (
        "workers: 1\nschedules: [wfbp]\n"
        "sweep:\n  zip:\n    workers: [8, 16, 32]\n    batch_size: [32, 16, 8]\n"
    )
    runs = specs(write(text))
    assert [(r.workers, r.batch_size) for r in runs] == [(8, 32), (16, 16), (32, 8)]


def test_grid_and_zip_combine(write) -> None:
    text = BASE + (
        "workers: 1\nschedules: [wfbp, ddp]\n"
        "sweep:\n  grid:\n    warmup: [1, 2]\n  zip:\n    workers: [2, 4]\n    batch_size: [8, 4]\n"
    )
    assert len(specs(write(text))) == 2 * 2 * 2


def test_option_axis_applies_to_schedules_that_have_it_and_dedupes_the_rest(write) -> None:
    text = BASE + (
        "workers: 8\nschedules: [wfbp, dear]\n"
        "sweep:\n  grid:\n    options.threshold_mb: [1, 25, null]\n"
    )
    runs = specs(write(text))
    # wfbp has no threshold_mb: it runs once, dear three times.
    assert [(r.schedule, r.options.get("threshold_mb", "-")) for r in runs] == [
        ("wfbp", "-"), ("dear", 1), ("dear", 25), ("dear", None),
    ]


def test_labelled_schedule_variants(write) -> None:
    text = BASE + (
        "workers: 8\nschedules:\n  - wfbp\n"
        "  - {name: dear, label: dear-notf, options: {threshold_mb: null}}\n"
    )
    runs = specs(write(text))
    assert [(r.schedule, r.scheduler, r.options) for r in runs] == [
        ("wfbp", "wfbp", {}), ("dear-notf", "dear", {"threshold_mb": None}),
    ]


def test_inline_networks_and_shipped_trace_names(write) -> None:
    text = (
        "traces: [vgg16-b32]\nworkers: 4\nschedules: [wfbp]\n"
        "networks:\n  - {name: slow, alpha_s: 1.0e-5, bandwidth_gbps: 1}\n"
        "  - {alpha_s: 0, beta_s_per_byte: 1.0e-9}\n"
    )
    runs = specs(write(text))
    assert runs[0].trace == "vgg16-b32" and runs[0].batch_size == 32
    assert runs[0].network["label"] == "slow"
    assert runs[0].network["beta_s_per_byte"] == pytest.approx(8e-9)
    assert runs[1].network["label"] == "inline"


def test_hashes_are_stable_and_tell_runs_apart(write) -> None:
    path = write(BASE + "workers: [2, 4]\nschedules: [wfbp, dear]\n")
    a = expand(load_config(path))
    b = expand(load_config(path))
    assert [r.run_hash for r in a] == [r.run_hash for r in b]
    assert len({r.run_hash for r in a}) == 4
    # Same point, different schedule: same group.
    assert a[0].group_hash == a[1].group_hash != a[2].group_hash


@pytest.mark.parametrize(
    "text, where, message",
    [
        (BASE + "workers: 8\ncolour: red\n", ":4: colour", "unknown key"),
        (BASE + "workers: 8\nseed: -1\n", ":4: seed", "greater than or equal to 0"),
        (
            BASE + "workers: 8\nsweep:\n  grid:\n    seed: [0, -1]\n",
            ":6: sweep.grid.seed[1]",
            "must be an integer >= 0",
        ),
        (
            BASE + "workers: 8\nsweep:\n  grid:\n    cluster.jitter: [0.1]\n",
            ":6: sweep.grid.cluster.jitter",
            "unknown sweep key",
        ),
        (BASE + "workers: 0\n", ":3: workers", "greater than 0"),
        (
            BASE + "workers: 8\nsweep:\n  grid:\n    workers: [8, 16, 0]\n",
            ":6: sweep.grid.workers[2]",
            "must be a positive integer",
        ),
        (
            BASE + "workers: 8\nsweep:\n  grid:\n    wrokers: [8]\n",
            ":6: sweep.grid.wrokers",
            "unknown sweep key",
        ),
        (
            BASE + "workers: [8, 16]\nsweep:\n  grid:\n    workers: [32]\n",
            ":6: sweep.grid.workers",
            "already a list at the top level",
        ),
        (
            BASE + "workers: 8\nsweep:\n  zip:\n    workers: [8, 16]\n    warmup: [1]\n",
            ":7: sweep.zip.warmup",
            "zip lists advance together",
        ),
        (
            BASE + "workers: 8\nsweep:\n  grid:\n    options.treshold_mb: [1]\n",
            ":6: sweep.grid.options.treshold_mb",
            "no schedule in this sweep has an option 'treshold_mb'",
        ),
        (
            BASE + "workers: 8\nschedules: [wfbp, dear]\nsweep:\n  grid:\n"
            "    options.threshold_mb: [25, -1]\n",
            ":7: sweep.grid.options.threshold_mb[1]",
            "greater than 0",
        ),
        (
            BASE + "workers: 8\nschedules: [wfpb]\n",
            ":4: schedules[0]",
            "unknown scheduler 'wfpb'",
        ),
        (
            BASE + "workers: 8\nschedules:\n  - {name: ddp, options: {bucket_cap: 5}}\n",
            ":5: schedules[0]",
            "unknown option 'bucket_cap' for scheduler 'ddp'",
        ),
        (
            "traces: [nope.csv]\nnetworks: [10GbE]\nworkers: 8\n",
            ":1: traces[0]",
            "no trace file 'nope.csv'",
        ),
        (
            "traces: [t.csv]\nnetworks: [11GbE]\nworkers: 8\n",
            ":2: networks[0]",
            "not a network preset",
        ),
        (
            "traces: [t.csv]\nnetworks: [10GbE-fit]\nworkers: 8\n"
            "sweep:\n  grid:\n    network.alpha_s: [0]\n",
            ":6: sweep.grid.network.alpha_s[0]",
            "is of kind fitted; alpha_s applies to alpha-beta networks",
        ),
        (
            "traces: [t.csv]\nnetworks:\n  - {alpha_s: 1.0e-5}\nworkers: 8\n",
            ":3: networks[0]",
            "exactly one of beta_s_per_byte and bandwidth_gbps",
        ),
        (
            BASE + "workers: 8\niterations: 3\n",
            ":4: iterations",
            "iterations must be >= warmup + 2 = 4",
        ),
        (BASE + "workers: 8\nsweep: [1, 2]\n", ":4: sweep", "valid dictionary"),
        (BASE + "workers: [8\n", ":4", "invalid YAML"),
    ],
)
def test_config_errors_name_file_line_and_path(write, text: str, where: str, message: str) -> None:
    path = write(text)
    with pytest.raises(DearsimError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert where in msg, msg
    assert message in msg, msg
    assert "\n" not in msg


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(DearsimError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_shipped_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert "quickstart.yaml" in names
    for path in root.glob("*.yaml"):
        assert expand(load_config(path)), path


def test_errors_inside_a_sweep_axis_entry_name_its_line(write) -> None:
    text = BASE + (
        "workers: 8\nsweep:\n  grid:\n    schedule:\n      - wfbp\n"
        "      - {name: dear, options: {threshold_mb: 25}, colour: red}\n"
    )
    with pytest.raises(DearsimError, match=r":8: sweep\.grid\.schedule\[1\]\.colour: unknown key"):
        load_config(write(text))


def test_the_run_hash_covers_content_not_paths(tmp_path: Path) -> None:
    body = "traces: [t.csv]\nnetworks: [10GbE]\nworkers: [2]\nschedules: [wfbp]\n"
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "t.csv").write_text(TRACE)
        (d / "c.yaml").write_text(body)
    ra, rb = load_config(a / "c.yaml").runs[0], load_config(b / "c.yaml").runs[0]
    assert ra.run_hash == rb.run_hash and ra == rb
    assert str(a) not in json.dumps(ra.identity()) and "t.csv" not in json.dumps(ra.identity())
    import hashlib

    assert ra.trace_sha256 == hashlib.sha256(TRACE.encode()).hexdigest()
    # Another content under the same name is another run.
    (b / "t.csv").write_text(TRACE.replace("4000000", "4000001"))
    assert load_config(b / "c.yaml").runs[0].run_hash != ra.run_hash


def test_run_specs_are_typed_and_frozen(write) -> None:
    import dataclasses

    run = load_config(write(BASE + "workers: 4\nschedules: [dear]\n")).runs[0]
    assert isinstance(run, RunSpec)
    assert {f.name for f in dataclasses.fields(run)} == {
        "index", "trace", "trace_sha256", "network", "workers", "schedule", "scheduler",
        "options", "batch_size", "iterations", "warmup", "plugins", "engine", "cluster",
        "search",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.workers = 8  # type: ignore[misc]
    assert run.network == {"kind": "alpha-beta", "label": "10GbE", "alpha_s": 5.59e-5,
                           "beta_s_per_byte": run.network["beta_s_per_byte"],
                           "gamma_s_per_byte": 0.0}


def test_load_config_expands_once(write, monkeypatch) -> None:
    import dearsim.config as config_mod

    loaded = load_config(write(BASE + "workers: [2, 4]\nschedules: [wfbp]\n"))
    assert len(loaded.runs) == 2
    monkeypatch.setattr(config_mod, "expand", lambda *a: pytest.fail("expanded again"))
    from dearsim.sweep import run_sweep

    assert run_sweep(loaded, loaded.path.parent / "out", jobs=1).ran == 2
