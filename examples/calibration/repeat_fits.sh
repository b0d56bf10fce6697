#!/usr/bin/env bash
# Back-to-back calibrations, each fitted to the per-size medians and to the means:
#   bash examples/calibration/repeat_fits.sh OUTDIR [RUNS] [REPS] [NPROC]
# run k: dearsim collect comm -> OUTDIR/cK.csv; dearsim calibrate --stat median -> mK.yaml,
# --stat mean -> aK.yaml. `python examples/calibration/fits_table.py OUTDIR` prints the table.
set -euo pipefail
out=${1:?usage: repeat_fits.sh OUTDIR [RUNS] [REPS] [NPROC]}
runs=${2:-5}
reps=${3:-30}
nproc=${4:-2}
mkdir -p "$out"
log="$out/fits.log"
for k in $(seq 1 "$runs"); do
    echo "== $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/') :: run $k" | tee -a "$log"
    dearsim collect comm --nproc "$nproc" --sizes 4KiB,16KiB,64KiB,256KiB,1MiB,4MiB \
        --reps "$reps" --out "$out/c$k.csv" >>"$log" 2>&1
    dearsim calibrate "$out/c$k.csv" --stat median --out "$out/m$k.yaml" >>"$log" 2>&1
    dearsim calibrate "$out/c$k.csv" --stat mean --out "$out/a$k.yaml" >>"$log" 2>&1
done
echo "== $(date -u +%H:%M:%S) done" | tee -a "$log"
