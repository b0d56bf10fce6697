#!/usr/bin/env bash
# The whole validation loop of docs/validation.md in one script:
#   bash examples/calibration/run_loop.sh OUTDIR [NPROC] [REPEATS] [ROUNDS] [IROUNDS]
# collect comm -> calibrate -> (collect layers, collect interference, validate x REPEATS) per
# workload; the validate runs of a workload go to validate-NAME-bB-K.csv, K = 1..REPEATS.
# The network is fitted to the per-size medians (gloo-loopback-N.yaml, what validate uses)
# and to the means (gloo-loopback-N-mean.yaml); after each validate run its kept measurement
# is predicted again (validate --measured) with the means' fit, into OUTDIR/mean/: the same
# measurements under both fits.
# ROUNDS (default 1) is collect comm's --rounds: the sizes interleaved in that many passes;
# IROUNDS (default 1) is collect interference's --rounds: its phases in that many passes.
# Every file lands in OUTDIR; `uptime` is logged before and after each step (load matters).
set -euo pipefail
out=${1:?usage: run_loop.sh OUTDIR [NPROC] [REPEATS] [ROUNDS] [IROUNDS]}
nproc=${2:-2}
repeats=${3:-3}
rounds=${4:-1}
irounds=${5:-1}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
log="$out/loop.log"
step() { echo "== $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/') :: $*" | tee -a "$log"; "$@" >>"$log" 2>&1; }
step dearsim collect comm --nproc "$nproc" --sizes 4KiB,16KiB,64KiB,256KiB,1MiB,4MiB --reps 30 \
    --rounds "$rounds" --out "$out/comm-gloo-$nproc.csv"
step dearsim calibrate "$out/comm-gloo-$nproc.csv" --out "$out/gloo-loopback-$nproc.yaml" \
    --plot "$out/gloo-loopback-$nproc.png"
step dearsim calibrate "$out/comm-gloo-$nproc.csv" --stat mean \
    --out "$out/gloo-loopback-$nproc-mean.yaml"
while read -r model batch name; do
    step dearsim collect layers --model "$model" --batch-size "$batch" --threads 1 --iters 30 \
        --out "$out/$name-b$batch-cpu.csvy"
    step dearsim collect interference --model "$model" --batch-size "$batch" --threads 1 \
        --iters 20 --rounds "$irounds" --out "$out/$name-b$batch-interference.yaml"
    for k in $(seq 1 "$repeats"); do
        step dearsim validate --trace "$out/$name-b$batch-cpu.csvy" \
            --network "$out/gloo-loopback-$nproc.yaml" --model "$model" --nproc "$nproc" \
            --threads 1 --iters 30 --warmup 5 --bucket-caps 0.5,1 --thresholds 0.5,1,25 \
            --interference "$out/$name-b$batch-interference.yaml" \
            --out "$out/validate-$name-b$batch-$k.csv"
        step dearsim validate --trace "$out/$name-b$batch-cpu.csvy" \
            --network "$out/gloo-loopback-$nproc-mean.yaml" \
            --interference "$out/$name-b$batch-interference.yaml" \
            --measured "$out/validate-$name-b$batch-$k.result.json" \
            --out "$out/mean/validate-$name-b$batch-$k.csv"
    done
done <<LIST
mlp 32 mlp
small-cnn 16 small-cnn
mlp 256 mlp
$here/prefetch/convhead.py:build 16 convhead
LIST
echo "== $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/') :: done" | tee -a "$log"
