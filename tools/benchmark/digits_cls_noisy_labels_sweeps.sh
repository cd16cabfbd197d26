#!/usr/bin/env bash
# The equal tuning budget of the noisy-label testbed (30 % of the student's training labels
# replaced by another class, configs/digits/cls_student_cnn_noisy_labels.py): every row trains
# without the headroom quiz split (--quiz-fraction 0.1) on seeds 0 and 1 and is ranked on the
# validation split by tools/benchmark/sweep.py, the KD weight among the knobs. Each testbed keeps
# its own sweep folders (--work-dir), so its settings are not ranked with the clean testbed's.
# The rule was swept around fixed T's first setting (weight 3) and again around the tuned one
# (weight 12), in that order. Run in the activated .venv from the repository root.
set -euo pipefail
JOBS=${JOBS:-2}
sweep() {
    python tools/benchmark/sweep.py "$1" --metric accuracy/top1 --scale 1 --seeds 0 1 \
        --quiz-fraction 0.1 --jobs "$JOBS" --work-dir "work_dirs/$2" "${@:3}"
}
T=model.temperature
W=model.kd_loss.loss_weight
N=train_dataloader.dataset.label_noise=0.3
sweep configs/digits/cls_kd_fixed_noisy_labels.py sweep_fixed_noisy_labels \
    --grid $T.temperature=0.5,1.0,1.41 $W=3.0,12.0
# the rule around weight 3: unclamped above (t_max 8), then clamped to [0.25, 1]
sweep configs/digits/cls_kd_rule.py sweep_rule_noisy_labels \
    --grid $T.power=-1.0,-0.5,-0.25 --cfg-options $N
for setting in "0.5 -1.0" "0.5 -2.0" "0.25 -2.0"; do
    set -- $setting
    sweep configs/digits/cls_kd_rule.py sweep_rule_noisy_labels_capped \
        --grid $T.temperature=$1 $T.power=$2 --cfg-options $N $T.t_max=1.0 $T.t_min=0.25
done
# the rule around the tuned weight 12
sweep configs/digits/cls_kd_rule.py sweep_rule_noisy_labels_w12 \
    --grid $T.power=-1.0,-2.0 --cfg-options $N $W=12.0 $T.t_max=1.0 $T.t_min=0.25
sweep configs/digits/cls_kd_rule.py sweep_rule_noisy_labels_w12 --grid $T.temperature=0.25 \
    --cfg-options $N $W=12.0 $T.t_max=0.5 $T.t_min=0.25 $T.power=-2.0
sweep configs/digits/cls_kd_logitstd.py sweep_ls_noisy_labels --grid $W=9.0,36.0 --cfg-options $N
sweep configs/digits/cls_kd_random.py sweep_random_noisy_labels --grid $W=1.0,4.0 --cfg-options $N
