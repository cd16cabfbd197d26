#!/usr/bin/env bash
# The equal tuning budget of the digits classification headroom table: every row trains without
# the headroom quiz split (--quiz-fraction 0.1, the split of tools/analysis/temperature_headroom.py)
# and every policy gets at most 6 settings on seeds 0 and 1, the KD weight among the knobs,
# ranked on the validation split by tools/benchmark/sweep.py (each sweep writes
# work_dirs/sweep_<config>_quiz0.1/sweep.md). The rule's T0 and weight are the fixed-T choice
# (k = 0 is fixed T itself). Run in the activated .venv from the repository root.
set -euo pipefail
JOBS=${JOBS:-2}
sweep() {
    python tools/benchmark/sweep.py "$1" --metric accuracy/top1 --scale 1 --seeds 0 1 \
        --quiz-fraction 0.1 --jobs "$JOBS" "${@:2}"
}
T=model.temperature
W=model.kd_loss.loss_weight
sweep configs/digits/cls_kd_fixed.py --grid $T.temperature=0.5,1.0,2.0 $W=1.0,3.0
sweep configs/digits/cls_kd_logitstd.py --grid $T.base_temperature=1.0,2.0 $W=1.0,3.0,9.0
sweep configs/digits/cls_kd_random.py --grid $T.t_min=0.5,1.0 $T.t_max=3.0 $W=1.0,3.0
sweep configs/digits/cls_kd_rule.py --grid $T.power=-1.0,-0.5,0.5,1.0
