# A privileged control on the noisy-teacher testbed: one temperature for the images of the
# classes whose labels were partly swapped for the teacher (1, 3, 4, 7, 8, 9) and another for the
# rest (rlkd_mm.ClassTemperature reads the label). It measures the headroom of a per-group
# temperature by construction; the two temperatures (0.125 for the group, 0.25 for the rest)
# were chosen on the validation split among 0.25 / 0.5, 0.25 / 1 and 0.125 / 0.25, seeds 0 and 1
# (configs/digits/README.md#the-noisy-teacher-testbed). KD weight 3 as fixed T's.
_base_ = ['./cls_kd_fixed_noisy_teacher.py']

model = dict(
    temperature=dict(
        _delete_=True,
        type='rlkd_mm.ClassTemperature',
        classes=[1, 3, 4, 7, 8, 9],
        temperature=0.125,
        default=0.25,
    )
)
