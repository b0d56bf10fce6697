#!/usr/bin/env bash
# How steady collect interference's terms are, without and with --rounds: N back-to-back
# measurements per model, alternating --rounds 1 and --rounds R (same --iters), into
# OUTDIR/rounds-1/ and OUTDIR/rounds-R/; terms_table.py OUTDIR tabulates them.
#   bash examples/calibration/terms_steadiness.sh OUTDIR [N] [R] [ITERS]
set -euo pipefail
out=${1:?usage: terms_steadiness.sh OUTDIR [N] [R] [ITERS]}
n=${2:-5}
r=${3:-5}
iters=${4:-20}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/rounds-1" "$out/rounds-$r"
for k in $(seq 1 "$n"); do
    while read -r model batch name; do
        for rounds in 1 "$r"; do
            echo "== $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/') :: $name $k rounds $rounds" \
                | tee -a "$out/loop.log"
            dearsim collect interference --model "$model" --batch-size "$batch" --threads 1 \
                --iters "$iters" --rounds "$rounds" \
                --out "$out/rounds-$rounds/$name-b$batch-$k.yaml" >>"$out/loop.log" 2>&1
        done
    done <<LIST
mlp 32 mlp
$here/prefetch/convhead.py:build 16 convhead
LIST
done
