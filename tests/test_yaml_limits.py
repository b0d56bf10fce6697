"""Hostile YAML is refused quickly with bounded memory: alias bombs, deep nesting, huge
documents, everywhere dearsim reads YAML (configs, trace headers, network files, --set)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from dearsim import _yaml
from dearsim.errors import DearsimError

BOMB = textwrap.dedent(
    """\
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
    """
)


def test_alias_bomb_is_refused_quickly() -> None:
    t0 = time.perf_counter()
    with pytest.raises(DearsimError, match="expands to more than"):
        _yaml.load(BOMB, "bomb.yaml")
    assert time.perf_counter() - t0 < 2.0


def test_aliases_within_the_limit_still_work() -> None:
    data, _ = _yaml.load("net: &n {alpha_s: 1.0e-5}\nother: *n\n", "ok.yaml")
    assert data["other"] == {"alpha_s": 1.0e-5}


def test_deep_nesting_is_refused() -> None:
    deep = "[" * 200 + "]" * 200
    with pytest.raises(DearsimError, match="nested"):
        _yaml.load(deep, "deep.yaml")
    deeper = "[" * 50_000 + "]" * 50_000  # deeper than Python's recursion limit
    with pytest.raises(DearsimError, match="nested"):
        _yaml.load(deeper, "deeper.yaml")


def test_huge_document_is_refused_before_parsing(tmp_path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("x: " + "a" * (_yaml.MAX_BYTES + 10) + "\n")
    with pytest.raises(DearsimError, match="at most"):
        _yaml.read_text(path, "config")
    with pytest.raises(DearsimError, match="at most"):
        _yaml.load(path.read_text(), "huge.yaml")


def test_set_values_have_the_same_limits() -> None:
    assert _yaml.parse_scalar("[[0, 3], [4, 9]]") == [[0, 3], [4, 9]]
    assert _yaml.parse_scalar("null") is None
    assert _yaml.parse_scalar("abc: [") == "abc: ["  # not YAML: taken as text
    with pytest.raises(DearsimError, match="nested"):
        _yaml.parse_scalar("[" * 500 + "]" * 500)


@pytest.mark.skipif(sys.platform != "linux", reason="resource limits as on Linux")
def test_alias_bomb_under_a_memory_limit(tmp_path) -> None:
    # A real process with a 512 MiB address-space cap and a 20 s timeout: loading the bomb
    # must end with dearsim's one-line error, not a MemoryError or a hang.
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
        from dearsim import _yaml
        from dearsim.errors import DearsimError
        try:
            _yaml.load(open({str(bomb)!r}).read(), "bomb.yaml")
        except DearsimError as exc:
            print("refused:", exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "expands to more than" in proc.stdout
