"""Schedules from outside dearsim: --plugin files and modules, sweep configs, entry points,
and one-line errors for every way a plugin can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_error_line, run

from dearsim import plugins, sweep
from dearsim.schedules import registry

ROOT = Path(__file__).resolve().parents[1]

#: The example of docs/extending.md, with the schedule's name and class as parameters.
PLUGIN = '''\
from dearsim.schedules import register
from dearsim.schedules.base import make_bucket
from dearsim.schedules.wfbp import WfbpFamily


@register
class {cls}(WfbpFamily):
    """Every gradient in one all-reduce, posted when the backward pass ends."""

    name = "{name}"
    summary = "one bucket with every gradient"

    def default_buckets(self, trace, costs):
        grads = trace.grad_layers
        return [make_bucket(trace, grads[0], grads[-1])]
'''

TRACE = "name,fwd_ms,bwd_ms,bytes\nl0,1,1,2000000\nl1,1,1,0\nl2,1,1,2000000\nl3,1,1,1000000\n"


@pytest.fixture(autouse=True)
def clean_registry():
    """Each test starts with the built-in schedules only and leaves them so."""
    before = registry.registered()
    loaded = dict(plugins._LOADED)
    modules = set(sys.modules)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    for name in set(sys.modules) - modules:
        if name.startswith(("dearsim_plugin_", "my_", "fake_")):
            del sys.modules[name]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "my_schedules.py").write_text(PLUGIN.format(cls="OneBucket", name="onebucket"))
    (tmp_path / "t.csv").write_text(TRACE)
    return tmp_path


def simulate_argv(folder: Path, *extra: object) -> list[object]:
    return ["simulate", "--trace", folder / "t.csv", "--network", "10GbE", "--workers", 4,
            "--scheduler", "onebucket", "--json", *extra]


def check_one_bucket(row: dict) -> None:
    # Layers 0, 2 and 3 have gradients: one all-reduce of all 5 MB over layers 0..3.
    assert row["buckets"] in ([[0, 3]], "[[0, 3]]")
    assert row["collectives"] == 1 and row["comm_bytes"] == 5_000_000


# --------------------------------------------------------------------------- the command line


def test_simulate_with_a_plugin_file(folder: Path, capsys) -> None:
    rc, out, err = run(capsys, *simulate_argv(folder, "--plugin", folder / "my_schedules.py"))
    assert rc == 0, err
    row = json.loads(out)
    assert row["scheduler"] == "onebucket"
    check_one_bucket(row)


def test_a_relative_plugin_file_is_taken_from_the_working_directory(
    folder: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(folder)
    rc, out, err = run(capsys, *simulate_argv(folder, "--plugin", "my_schedules.py"))
    assert rc == 0, err
    check_one_bucket(json.loads(out))


def test_simulate_schedulers_and_compare_with_a_plugin_module(
    folder: Path, capsys, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(folder))
    rc, out, err = run(capsys, *simulate_argv(folder, "--plugin", "my_schedules"))
    assert rc == 0, err
    check_one_bucket(json.loads(out))
    rc, out, err = run(capsys, "schedulers", "--plugin", "my_schedules")
    assert rc == 0, err
    assert "onebucket" in out and "one bucket with every gradient" in out
    rc, out, err = run(capsys, "compare", "--trace", folder / "t.csv", "--network", "10GbE",
                       "--workers", 4, "--json", "--plugin", "my_schedules")
    assert rc == 0, err
    rows = json.loads(out)
    assert len(rows) == 8 and "onebucket" in [r["scheduler"] for r in rows]


def test_loading_a_plugin_twice_is_a_no_op(folder: Path) -> None:
    path = str(folder / "my_schedules.py")
    assert plugins.load_plugin(path) == ["onebucket"]
    assert plugins.load_plugin(path) == ["onebucket"]
    assert plugins.module_name_for(path) == plugins.module_name_for(folder / "my_schedules.py")


# --------------------------------------------------------------------------- sweeps


SWEEP = (
    "plugins: [my_schedules.py]\ntraces: [t.csv]\nnetworks: [10GbE]\nworkers: [2, 4, 8]\n"
    "schedules: [wfbp, onebucket]\niterations: 6\n"
)


@pytest.mark.parametrize("start", [None, "spawn"])
def test_a_sweep_config_loads_its_plugins_in_the_pool_workers(
    folder: Path, capsys, monkeypatch, start: str | None
) -> None:
    # "spawn" workers share nothing with this process: the pool initializer loads the plugin.
    monkeypatch.setattr(sweep, "MP_START", start)
    (folder / "c.yaml").write_text(SWEEP)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the plugin path is relative to the config, not the cwd
    out = folder / "out"
    rc, _, err = run(capsys, "sweep", folder / "c.yaml", "--jobs", 2, "--out", out)
    assert rc == 0, err
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    ones = [r for r in rows if r["schedule"] == "onebucket"]
    assert sorted(r["workers"] for r in ones) == [2, 4, 8]
    for r in ones:
        check_one_bucket(r)


def test_a_dask_sweep_loads_the_plugins_on_its_workers(folder: Path) -> None:
    pytest.importorskip("distributed")
    from dearsim.config import load_config
    from dearsim.sweep import run_sweep

    (folder / "c.yaml").write_text(SWEEP)
    outcome = run_sweep(load_config(folder / "c.yaml"), folder / "out", jobs=1, executor="dask")
    assert outcome.failed == 0 and len(outcome.rows) == 6
    for r in outcome.rows:
        if r["schedule"] == "onebucket":
            check_one_bucket(r)


def test_command_line_plugins_reach_the_sweep(folder: Path, capsys) -> None:
    (folder / "c.yaml").write_text(SWEEP.replace("plugins: [my_schedules.py]\n", ""))
    rc, out, err = run(capsys, "sweep", folder / "c.yaml", "--jobs", 1, "--out", folder / "o")
    line = one_error_line(rc, out, err)
    assert "unknown scheduler 'onebucket'" in line and ":4: schedules[1]" in line
    rc, _, err = run(capsys, "sweep", folder / "c.yaml", "--jobs", 1, "--out", folder / "o",
                     "--plugin", folder / "my_schedules.py")
    assert rc == 0, err


def test_default_schedules_of_a_config_include_its_plugins(folder: Path) -> None:
    from dearsim.config import load_config

    (folder / "c.yaml").write_text(SWEEP.replace("schedules: [wfbp, onebucket]\n", ""))
    runs = load_config(folder / "c.yaml").runs
    assert [r.schedule for r in runs[:8]] == [
        "wfbp", "ddp", "horovod", "mgwfbp", "bytescheduler", "dear", "fsdp", "onebucket",
    ]
    assert runs[0].plugins == (str(folder / "my_schedules.py"),)


# --------------------------------------------------------------------------- entry points


def fake_distribution(site: Path, entry_points: str, modules: dict[str, str]) -> None:
    dist = site / "fake-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)


def dearsim_cli(site: Path, *argv: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "dearsim", *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_installed_entry_points_are_discovered(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(
        site,
        "[dearsim.schedules]\nonebucket = fake_schedules\ntwo = fake_class:TwoBucket\n",
        {
            "fake_schedules": PLUGIN.format(cls="OneBucket", name="onebucket"),
            # an entry point may name the class; registering it again is harmless
            "fake_class": PLUGIN.format(cls="TwoBucket", name="onebucket2"),
        },
    )
    proc = dearsim_cli(site, "schedulers")
    assert proc.returncode == 0, proc.stderr
    assert "onebucket " in proc.stdout and "onebucket2" in proc.stdout
    (tmp_path / "t.csv").write_text(TRACE)
    proc = dearsim_cli(site, "simulate", "--trace", tmp_path / "t.csv", "--network", "10GbE",
                       "--workers", "4", "--scheduler", "onebucket2", "--json")
    assert proc.returncode == 0, proc.stderr
    check_one_bucket(json.loads(proc.stdout))


def test_a_broken_entry_point_is_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "[dearsim.schedules]\nbroken = fake_broken\n",
                      {"fake_broken": "raise RuntimeError('no GPU here')\n"})
    proc = dearsim_cli(site, "schedulers")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "plugin entry point 'broken' of fake 0" in lines[0]
    assert "RuntimeError: no GPU here" in lines[0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("raises.py", "x = 1\nraise RuntimeError('boom\\nsecond line')\n",
         "raised while imported: RuntimeError: boom"),
        ("needs.py", "import not_a_dependency_xyz\n",
         "raised while imported: ModuleNotFoundError: No module named 'not_a_dependency_xyz'"),
        ("syntax.py", "def f(:\n", "raised while imported: SyntaxError"),
        ("exits.py", "import sys\nsys.exit(3)\n", "raised while imported: SystemExit"),
        ("dup.py", PLUGIN.format(cls="Wfbp2", name="wfbp"),
         "a schedule named 'wfbp' is already registered (dearsim.schedules.wfbp.Wfbp)"),
        ("empty.py", "X = 1\n", "registers no schedule"),
    ],
)
def test_a_bad_plugin_file_is_one_line_naming_it(
    tmp_path: Path, capsys, name: str, text: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    rc, out, err = run(capsys, "schedulers", "--plugin", path)
    line = one_error_line(rc, out, err)
    assert rc == 2
    assert f"plugin '{path}'" in line and needle in line, line


def test_missing_plugins_are_one_line(tmp_path: Path, capsys) -> None:
    for ref, needle in (
        ("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
        ("no_such_pkg_xyz.sub", "no module named 'no_such_pkg_xyz.sub'"),
        (str(tmp_path / "missing.py"), "no such file"),
    ):
        for cmd in ("schedulers", "simulate", "compare"):
            argv = [cmd, "--plugin", ref]
            if cmd != "schedulers":
                argv += ["--trace", "t.csv", "--network", "10GbE", "--workers", 2]
            if cmd == "simulate":
                argv += ["--scheduler", "wfbp"]
            rc, out, err = run(capsys, *argv)
            line = one_error_line(rc, out, err)
            assert rc == 2 and f"plugin '{ref}'" in line and needle in line, line


def test_a_plugin_error_in_a_config_names_its_line(folder: Path, capsys) -> None:
    (folder / "c.yaml").write_text(SWEEP.replace("my_schedules.py", "nope.py"))
    rc, out, err = run(capsys, "sweep", folder / "c.yaml", "--out", folder / "o")
    line = one_error_line(rc, out, err)
    assert rc == 2
    assert f"c.yaml:1: plugins[0]: plugin 'nope.py': no such file ({folder / 'nope.py'})" in line
