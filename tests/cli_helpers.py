"""Running the command line in-process, and the contract for bad input."""

from __future__ import annotations

import pytest

from dearsim.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``dearsim ARGV`` in this process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc: int, out: str, err: str) -> str:
    """The contract for bad input: non-zero exit, nothing on stdout, one line on stderr."""
    assert rc != 0
    assert "Traceback" not in err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dearsim")
    return lines[0]
