#!/usr/bin/env bash
# Predict the kept measurements of run_loop.sh directories again with both interferences
# (validate's predicted_xy_ms and predicted_cal_xy_ms columns; docs/model.md 2.6), without
# training: for each RUNDIR, every validate-NAME-K.result.json is predicted with the medians'
# fit into RUNDIR/two-way/ and with the means' fit into RUNDIR/two-way/mean/.
#
#   bash examples/calibration/two_way.sh examples/calibration/run5 examples/calibration/run6
#   python examples/calibration/summarize.py --two-way examples/calibration/run5/two-way
set -euo pipefail
for run in "$@"; do
    for res in "$run"/validate-*-[0-9]*.result.json; do
        base=$(basename "$res" .result.json)          # validate-NAME-bB-K
        work=${base#validate-}; work=${work%-*}        # NAME-bB
        for fit in "" "-mean"; do
            out="$run/two-way${fit:+/mean}/$base.csv"
            dearsim validate --trace "$run/$work-cpu.csvy" \
                --network "$run/gloo-loopback-2$fit.yaml" \
                --interference "$run/$work-interference.yaml" \
                --measured "$res" --out "$out" > /dev/null
            rm -f "${out%.csv}.result.json"            # the measurement stays in $res
        done
    done
done
