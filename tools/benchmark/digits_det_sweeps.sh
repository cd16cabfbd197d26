#!/usr/bin/env bash
# The equal tuning budget of the DigitsDet table: every temperature policy gets 2 settings on
# seeds 0 and 1, ranked on the validation mAP by tools/benchmark/sweep.py (each sweep writes
# work_dirs/sweep_eq_<config>/sweep.md). The KD / LD loss weights are shared by every policy
# (chosen for fixed T, configs/digits/README.md, "Choosing the detection KD weights"); the configs hold the chosen
# settings and the table (tools/benchmark/digits_table.py --task det) reuses these runs for its
# seeds 0 and 1. Two runs at a time, one thread each. Run in the activated .venv from the
# repository root.
set -euo pipefail
sweep() {
    local config=$1
    shift
    python tools/benchmark/sweep.py "configs/digits/$config.py" --seeds 0 1 --jobs 2 \
        --work-dir "work_dirs/sweep_eq_$config" "$@"
}
T=model.temperature
sweep gfl_ld_ctkd --grid $T.t_max=21.0,10.0
sweep gfl_ld_logitstd --grid $T.base_temperature=2.0,1.0
sweep gfl_ld_dtkd --grid $T.base_temperature=4.0,2.0
sweep gfl_ld_cist --grid $T.rho=2.0,1.0
sweep gfl_ld_fixed --grid $T.temperature=4.0,2.0
# RLKD: the temperature range and the initial / warm-up temperature
for range in "10.0 4.0" "5.0 2.0"; do
    set -- $range
    sweep gfl_ld_rlkd --grid $T.t_max=$1 $T.t_init=$2 $T.warmup_temperature=$2
done
