#!/usr/bin/env bash
# The DigitsDet controls' tuning: the random and the rule temperature get 2 settings each with
# seed 0, ranked on the validation mAP by tools/benchmark/sweep.py (each sweep writes
# work_dirs/sweep_eq_<config>/sweep.md). Their class-score KD weights keep the classification
# ratios to fixed T (random 1 / 3, rule 1). Two runs at a time, one thread each. Run in the
# activated .venv from the repository root.
set -euo pipefail
sweep() {
    local config=$1
    shift
    python tools/benchmark/sweep.py "configs/digits/$config.py" --seeds 0 --jobs 2 \
        --work-dir "work_dirs/sweep_eq_$config" "$@"
}
T=model.temperature
sweep gfl_ld_random --grid $T.t_max=5.0,3.0
sweep gfl_ld_rule --grid $T.power=1.0,-1.0
