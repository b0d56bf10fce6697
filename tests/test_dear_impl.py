"""The real DeAR implementation's all-gather prefetch rules, on 2 gloo ranks: with
``prefetch="next"`` group ``j+1``'s all-gather is posted when the forward pass opens group
``j``; with ``"chain"`` as soon as group ``j``'s all-gather is done, while the forward pass
is still busy. (That both give DDP's parameters is tested by ``dearsim validate``'s check in
test_collect_loop.py.) Skipped without PyTorch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]

RANK = """
import json, sys, time, datetime
import torch
import torch.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
torch.set_num_threads(1)
from dearsim.collect.dear_impl import DearTrainer
from dearsim.collect.layers import layering
from dearsim.collect.models import build

SLOW = 0.3  # group 0's forward pass: far longer than the all-gathers of a tiny model
out = {}
for prefetch in ("next", "chain"):
    w = build("tiny-mlp", 8, "cpu", seed=0)
    lay = layering(w)
    groups = [(i, i) for i in range(len(lay.names))]  # one group per layer: 3
    tr = DearTrainer(lay, groups, 0.01, prefetch=prefetch)
    log = []
    gather = tr._gather

    def logged(g, gather=gather, log=log):
        log.append(("post", g))
        return gather(g)

    tr._gather = logged

    def slow(_m, _a, _o, log=log):
        time.sleep(SLOW)
        log.append(("group 0 computed", 0))

    lay.modules[0].register_forward_hook(slow)
    for step in range(3):
        log.append(("step", step))
        w.loss_fn(w.run_forward()).backward()
        log.append(("barrier", step))
        tr.end_backward()
        if step == 1:  # before a collective of one's own: every all-gather is posted
            tr.settle()
            log.append(("settled", step))
            assert tr.idle.is_set()
            dist.barrier()
    tr.finish()
    out[prefetch] = log
if dist.get_rank() == 0:
    json.dump(out, open(sys.argv[1], "w"))
dist.barrier()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_chain_posts_ahead_of_the_forward_pass_and_next_does_not(tmp_path: Path) -> None:
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    result = tmp_path / "log.json"
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(result)],
            env={**os.environ, "PYTHONPATH": str(ROOT), "RANK": str(r), "WORLD_SIZE": "2",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "GLOO_SOCKET_IFNAME": "lo",
                 "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), outs
    logs = {k: [tuple(e) for e in v] for k, v in json.loads(result.read_text()).items()}

    def between(log: list[tuple[str, int]], a: tuple[str, int],
                b: tuple[str, int]) -> list[tuple[str, int]]:
        return log[log.index(a) + 1:log.index(b)]

    for prefetch, log in logs.items():
        # the first step gathers nothing; each barrier and the forward pass after it post
        # groups 0, 1, 2 once, in order (finish() opens the last step's)
        assert [e for e in between(log, ("step", 0), ("barrier", 0)) if e[0] == "post"] == []
        posts = [e for e in log if e[0] == "post"]
        assert posts == [("post", g) for g in (0, 1, 2)] * 3, (prefetch, log)
    # settle() returns once every all-gather of the step is posted
    settled = between(logs["chain"], ("barrier", 1), ("step", 2))
    assert settled == [("post", 0), ("post", 1), ("post", 2), ("settled", 1)], settled
    done = ("group 0 computed", 0)
    for step in (1, 2):
        # from the previous step's barrier (which posts group 0) to this step's
        nxt = between(logs["next"], ("barrier", step - 1), ("barrier", step))
        chain = between(logs["chain"], ("barrier", step - 1), ("barrier", step))
        if step == 2:
            chain = [e for e in chain if e != ("settled", 1)]
        # next: group 2's all-gather waits for group 1 to open, after group 0's compute
        assert nxt.index(("post", 1)) < nxt.index(done) < nxt.index(("post", 2)), nxt
        # chain: posted while group 0 still computes
        assert chain.index(("post", 2)) < chain.index(done), chain
