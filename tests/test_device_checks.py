"""``examples/device/checks.sh``, the prepared script for a lent GPU machine, run dry on this
CPU: a model that fails costs its step, not the run; the others' traces are written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def test_checks_script_dry_run_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "WHEELS": "none", "DEVICE": "cpu", "STEP_TIMEOUT": "120",
           "MODELS": "nosuchmodel:2 tiny-mlp:4",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "device" / "checks.sh"),
                           str(tmp_path / "out"), "traces"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "out" / "checks.log").read_text()
    assert "FAILED (exit 2): dearsim collect layers --model nosuchmodel" in log
    assert log.rstrip().endswith("done")
    trace = (tmp_path / "out" / "traces" / "tiny-mlp-b4-cpu.csvy").read_text()
    assert "method: measured" in trace and "hook_overhead" in trace
    machine = (tmp_path / "out" / "machine.txt").read_text()
    assert "cores:" in machine and "torch" in machine
