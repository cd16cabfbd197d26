# The fixed-temperature baseline of kd-rlkd_faster-rcnn-r101_faster-rcnn-r18_fpn_1x_coco.py: KD on
# the sampled RoIs' (C + 1)-way logits with T = 4 (DKD paper, R101 -> R18: KD 33.97 AP; not
# reproduced here), the same teacher, student, loss weight and schedule.
_base_ = ['./kd-rlkd_faster-rcnn-r101_faster-rcnn-r18_fpn_1x_coco.py']

model = dict(
    temperature=dict(
        _delete_=True, type='rlkd_mm.FixedTemperature', temperature=4.0, score_type='softmax'
    )
)
custom_hooks = []
