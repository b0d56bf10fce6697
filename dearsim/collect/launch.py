"""Running a ``dearsim.collect.worker`` task on several ranks with ``torchrun``.

The parent process (the command line) starts ``torchrun --nproc-per-node N`` on this host,
rendezvous on 127.0.0.1 and a free port; each rank runs :mod:`dearsim.collect.worker`, which
reads its arguments from a JSON file and writes its result (rank 0) or its error (any rank)
next to it. The parent turns a failed rank's error into one line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DearsimError

ENV_LAUNCHER = "DEARSIM_TORCHRUN"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launcher_command(launcher: str | None) -> list[str]:
    """The torchrun command: ``launcher`` (a command line), else ``$DEARSIM_TORCHRUN``, else
    ``torchrun`` on PATH or next to this Python, else ``python -m torch.distributed.run``."""
    given = launcher if launcher is not None else os.environ.get(ENV_LAUNCHER)
    if given is not None:
        parts = shlex.split(given)
        if not parts:
            raise DearsimError("--launcher is empty: give a torchrun command")
        exe = shutil.which(parts[0])
        if exe is None:
            raise DearsimError(
                f"--launcher: torchrun not found: {parts[0]!r} is not an executable "
                "(install PyTorch, which provides torchrun, or give its path)"
            )
        return [exe, *parts[1:]]
    exe = shutil.which("torchrun") or _beside_python("torchrun")
    if exe:
        return [exe]
    try:
        import importlib.util

        if importlib.util.find_spec("torch.distributed.run") is not None:
            return [sys.executable, "-m", "torch.distributed.run"]
    except (ImportError, ValueError):
        pass
    raise DearsimError(
        "torchrun not found (not on PATH, and torch.distributed.run is not importable): "
        "pip install 'dearsim[collect]' or pass --launcher"
    )


def _beside_python(name: str) -> str | None:
    p = Path(sys.executable).with_name(name)
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


def stop(proc: subprocess.Popen[str], tmp: Path, grace_s: float = 10.0) -> None:
    """Stop torchrun and its ranks. SIGTERM to torchrun's group first: torchrun passes it
    on to every rank (each in a session of its own, so a signal to torchrun's group alone
    would leave them running) and exits once they are gone. What is left after ``grace_s``
    (or a second signal) is killed: torchrun's group, and any rank still alive, found by the
    pid it wrote at start (``pid.RANK``)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except BaseException:  # noqa: BLE001 - gone already, timed out, or interrupted again
        pass
    forced = proc.poll() is None
    if forced:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for f in tmp.glob("pid.*"):
        try:
            pid = int(f.read_text(encoding="utf-8").strip())
            if _is_rank(pid, forced):
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    try:
        proc.communicate(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass


def _is_rank(pid: int, otherwise: bool) -> bool:
    """Whether ``pid`` is still one of our ranks (not a reused pid); where ``/proc`` cannot
    tell, ``otherwise``."""
    try:
        return b"dearsim.collect.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False if Path("/proc/self").exists() else otherwise
    except OSError:
        return otherwise


def run_task(
    task: str,
    args: dict[str, Any],
    nproc: int,
    *,
    launcher: str | None = None,
    threads: int | None = None,
    timeout_s: float = 600.0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run ``task`` on ``nproc`` ranks; rank 0's JSON result."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise DearsimError(f"--nproc must be a positive integer, got {nproc!r}")
    cmd0 = launcher_command(launcher)
    with tempfile.TemporaryDirectory(prefix="dearsim-collect-") as tmp:
        argfile = Path(tmp) / "args.json"
        argfile.write_text(json.dumps(args), encoding="utf-8")
        cmd = [
            *cmd0, "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
            "-m", "dearsim.collect.worker", task, str(argfile),
        ]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
        env["PYTHONWARNINGS"] = "ignore"
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        try:
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise DearsimError(
                f"cannot start torchrun ({cmd0[0]}): {exc.strerror or exc}"
            ) from None
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except BaseException as exc:
            # A timeout, Ctrl-C or SIGTERM: torchrun runs in its own session (so a terminal's
            # Ctrl-C does not reach it) and starts every rank in a session of its own: take
            # them all down before going on.
            stop(proc, Path(tmp))
            if isinstance(exc, subprocess.TimeoutExpired):
                raise DearsimError(
                    f"{task} on {nproc} ranks did not finish within {timeout_s:g} s (killed)"
                ) from None
            raise
        if verbose:
            print(output, file=sys.stderr)
        errors = sorted(Path(tmp).glob("error.*"))
        if errors:
            raise DearsimError(errors[0].read_text(encoding="utf-8").strip().splitlines()[0])
        result = Path(tmp) / "result.json"
        if proc.returncode != 0 or not result.exists():
            tail = [ln for ln in output.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            raise DearsimError(
                f"{task} under torchrun failed (exit {proc.returncode}): {tail[0].strip()}"
            )
        return json.loads(result.read_text(encoding="utf-8"))
