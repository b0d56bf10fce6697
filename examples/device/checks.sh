#!/usr/bin/env bash
# The device checks of the collector (docs/validation.md, docs/collect.md) as one prepared
# script, for a lent GPU machine (one GPU, 16 cores; its python3 holds PyTorch):
#   bash examples/device/checks.sh OUTDIR PART[,PART...]
# PARTs:
#   traces  collect layers on the GPU for the five study models at the shipped traces'
#           batch sizes (BERT at sequence length 64): OUTDIR/traces/NAME-GPU.csvy, each with
#           its hooks' overhead against un-hooked steps in the provenance (about 1-2 min)
#   cpu4    the CPU validation loop on 4 gloo ranks (run_loop.sh OUTDIR/cpu4 4 1 10 5)
#   cpu8    the same on 8 ranks
# Every step runs under `timeout` (STEP_TIMEOUT seconds, default 150; the loops get
# LOOP_TIMEOUT, default 420) and a step that fails is logged and skipped, so one bad model
# costs its timeout, not the session. Before the first call, here: examples/device/
# fetch_wheels.sh; then on the device, from the repository root, carrying .whl:
#   bash examples/device/checks.sh "$OUT" traces,cpu4     # then, in a second call: cpu8
# Overrides for a dry run without a GPU, in a virtual environment that has dearsim's needs:
#   WHEELS=none DEVICE=cpu MODELS="tiny-mlp:8 small-cnn:4" bash examples/device/checks.sh ...
set -uo pipefail
out=${1:?usage: checks.sh OUTDIR PART[,PART...]}
parts=${2:-traces}
root=$(cd "$(dirname "$0")/../.." && pwd)
device=${DEVICE:-cuda}
step_timeout=${STEP_TIMEOUT:-150}
loop_timeout=${LOOP_TIMEOUT:-420}
mkdir -p "$out"
log="$out/checks.log"
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }

# Setup: the carried wheels (if any) and this checkout on the path, a `dearsim` command.
wheels=${WHEELS:-$root/.whl}
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
if ls "$wheels"/*.whl >/dev/null 2>&1; then
    if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$wheels"/*.whl >>"$log" 2>&1; then
        export PYTHONPATH=/tmp/site:$PYTHONPATH
    else
        say "wheel install FAILED (see $log); going on without them"
    fi
fi
if ! command -v dearsim >/dev/null 2>&1; then
    mkdir -p /tmp/dearsim-bin
    printf '#!/bin/sh\nexec python3 -m dearsim "$@"\n' > /tmp/dearsim-bin/dearsim
    chmod +x /tmp/dearsim-bin/dearsim
    export PATH=/tmp/dearsim-bin:$PATH
fi
export PYTHONUNBUFFERED=1
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "cores: $(nproc)"
    (nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none")
    python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
    echo "dearsim checkout: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt" | tee -a "$log"
gpu=$(python3 -c 'import torch; n = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"; print(n.replace("NVIDIA ", "").split()[0].lower())' 2>/dev/null || echo cpu)

run() {  # run LIMIT CMD...: one step, logged; a failure is reported, not fatal
    local limit=$1; shift
    say "$* (timeout ${limit}s)"
    timeout "$limit" "$@" >>"$log" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || say "FAILED (exit $rc): $*"
}

if [[ ",$parts," == *",traces,"* ]]; then
    mkdir -p "$out/traces"
    models=${MODELS:-"resnet50:64 densenet201:32 inception_v4:64 bert-base:64:64 bert-large:32:64"}
    for spec in $models; do
        IFS=: read -r model batch seq <<<"$spec"
        name=$model-b$batch${seq:+-s$seq}-$gpu
        run "$step_timeout" dearsim collect layers --model "$model" --batch-size "$batch" \
            ${seq:+--seq-len "$seq"} --device "$device" --iters 20 --warmup 10 \
            --out "$out/traces/$name.csvy"
    done
fi
for n in 4 8; do
    if [[ ",$parts," == *",cpu$n,"* ]]; then
        run "$loop_timeout" bash "$root/examples/calibration/run_loop.sh" "$out/cpu$n" "$n" 1 10 5
    fi
done
say "done"
