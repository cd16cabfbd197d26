#!/usr/bin/env bash
# The equal tuning budget of the both-noisy testbed (15 % of the student's training labels
# replaced by another class, and the teacher of the noisy-teacher testbed): every row trains
# without the headroom quiz split (--quiz-fraction 0.1) on seeds 0 and 1 and is ranked on the
# validation split by tools/benchmark/sweep.py, the KD weight among the knobs. The privileged
# per-group temperature (rlkd_mm.ClassTemperature, which reads the label) measures the headroom of
# a per-group choice by construction. Run in the activated .venv from the repository root.
set -euo pipefail
JOBS=${JOBS:-2}
sweep() {
    python tools/benchmark/sweep.py "$1" --metric accuracy/top1 --scale 1 --seeds 0 1 \
        --quiz-fraction 0.1 --jobs "$JOBS" --work-dir "work_dirs/$2" "${@:3}"
}
T=model.temperature
W=model.kd_loss.loss_weight
sweep configs/digits/cls_student_cnn_noisy_both.py sweep_student_noisy_both \
    --grid train_dataloader.dataset.label_noise=0.15
sweep configs/digits/cls_kd_fixed_noisy_both.py sweep_fixed_noisy_both \
    --grid $T.temperature=0.25,0.5,1.0 $W=3.0,12.0
# the privileged per-group temperature (reads the given label) at fixed T's chosen setting: T for
# the pair classes 1, 3, 4, 7, 8, 9 (where the teacher is unsure), 0.25 for the others
sweep configs/digits/cls_kd_fixed_noisy_both.py sweep_class_noisy_both \
    --grid $T.temperature=0.125,0.5,1.0 \
    --cfg-options $T.type=rlkd_mm.ClassTemperature "$T.classes=[1,3,4,7,8,9]" $T.default=0.25
# the state rule T = 0.25 f^k, f the teacher's margin or its probability of the given label
NOISY_BOTH=(train_dataloader.dataset.label_noise=0.15
    model.teacher=configs/digits/cls_teacher_cnn_noisy.py
    model.teacher_ckpt=checkpoints/digits/cls_teacher_cnn_noisy.pth)
sweep configs/digits/cls_kd_rule.py sweep_rule_noisy_both \
    --grid $T.feature=teacher_margin,teacher_gt_prob $T.power=-1.0,1.0 \
    --cfg-options "${NOISY_BOTH[@]}" $T.temperature=0.25 $T.t_min=0.0625 $T.t_max=2.0
