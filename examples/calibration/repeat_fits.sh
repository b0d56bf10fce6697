#!/usr/bin/env bash
# Back-to-back calibrations, each fitted to the per-size medians and to the means:
#   bash examples/calibration/repeat_fits.sh OUTDIR [RUNS] [REPS] [NPROC] [ROUNDS] [FIRST]
# run k (k = FIRST .. FIRST+RUNS-1): dearsim collect comm --rounds ROUNDS -> OUTDIR/cK.csv;
# dearsim calibrate --stat median -> mK.yaml, --stat mean -> aK.yaml.
# `python examples/calibration/fits_table.py OUTDIR` prints the table.
set -euo pipefail
out=${1:?usage: repeat_fits.sh OUTDIR [RUNS] [REPS] [NPROC] [ROUNDS] [FIRST]}
runs=${2:-5}
reps=${3:-30}
nproc=${4:-2}
rounds=${5:-1}
first=${6:-1}
mkdir -p "$out"
log="$out/fits.log"
for k in $(seq "$first" $((first + runs - 1))); do
    echo "== $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/') :: run $k (rounds $rounds)" \
        | tee -a "$log"
    dearsim collect comm --nproc "$nproc" --sizes 4KiB,16KiB,64KiB,256KiB,1MiB,4MiB \
        --reps "$reps" --rounds "$rounds" --out "$out/c$k.csv" >>"$log" 2>&1
    dearsim calibrate "$out/c$k.csv" --stat median --out "$out/m$k.yaml" >>"$log" 2>&1
    dearsim calibrate "$out/c$k.csv" --stat mean --out "$out/a$k.yaml" >>"$log" 2>&1
done
echo "== $(date -u +%H:%M:%S) done" | tee -a "$log"
