# The fixed-temperature baseline of ld-rlkd_gfl-r101_gfl-r18_fpn_1x_coco.py: mmdet's LD with
# T = 10 on every positive prior (mmdet reports 36.5 AP for GFL R101 -> R18 1x; not reproduced
# here), the same teacher, student, loss weights and schedule.
_base_ = ['./ld-rlkd_gfl-r101_gfl-r18_fpn_1x_coco.py']

model = dict(
    temperature=dict(
        _delete_=True, type='rlkd_mm.FixedTemperature', temperature=10.0, score_type='sigmoid'
    )
)
custom_hooks = []
