"""The per-rank entry point that :mod:`dearsim.collect.launch` starts under torchrun:
``python -m dearsim.collect.worker TASK ARGS.json``."""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    task, argfile = argv[0], Path(argv[1])
    rank = int(os.environ.get("RANK", "0"))
    warnings.filterwarnings("ignore")
    try:  # for the parent to kill this rank if torchrun cannot (launch.stop)
        argfile.with_name(f"pid.{rank}").write_text(str(os.getpid()), encoding="utf-8")
    except OSError:
        pass
    try:
        import torch
        import torch.distributed as dist

        from ..errors import DearsimError

        args = json.loads(argfile.read_text(encoding="utf-8"))
        if args.get("threads"):
            torch.set_num_threads(int(args["threads"]))
        device = args.get("device", "cpu")
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        import datetime

        dist.init_process_group(
            backend, timeout=datetime.timedelta(seconds=float(args.get("pg_timeout_s", 120)))
        )
        try:
            if task == "comm":
                from .comm import run_rank
            elif task == "validate":
                from .validate import run_rank
            elif task == "interference":
                from .interference import run_rank
            else:
                raise DearsimError(f"unknown worker task {task!r}")
            result = run_rank(args)
            if rank == 0:
                tmp = argfile.with_name("result.json.tmp")
                tmp.write_text(json.dumps(result), encoding="utf-8")
                tmp.replace(argfile.with_name("result.json"))
            dist.barrier()
        except BaseException:
            dist.destroy_process_group()
            raise
        # Done: leave without tearing the process group down. Destroying it while DDP
        # reducers and gloo threads of the runs are still alive can abort the process
        # ("terminate called without an active exception") after the work is done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        from ..errors import DearsimError

        if isinstance(exc, DearsimError):
            msg = str(exc)
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            msg = f"rank {rank}: {type(exc).__name__}: {first}"
            traceback.print_exc()
        argfile.with_name(f"error.{rank}").write_text(msg + "\n", encoding="utf-8")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
