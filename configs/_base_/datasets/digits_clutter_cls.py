# Cluttered digits (rlkd_mm.ClutteredDigitsDataset): the UCI digits of the stratified
# train / val / test split (1078 / 359 / 360 source digits) rendered at 32x32 with a random
# per-image difficulty (affine warp, stroke fragments of other digits, contrast loss, noise), so
# the teacher is sure of some images and unsure of others. Val and test render each source digit
# 3 times (1077 / 1080 images) to make the metric less noisy; train renders each once, so
# distillation sees exactly the labelled images the student alone sees.
_base_ = ['./digits_cls.py']
dataset_type = 'rlkd_mm.ClutteredDigitsDataset'
data_preprocessor = dict(
    # statistics of the train split; the images are grey, repeated over 3 channels
    mean=[69.2, 69.2, 69.2],
    std=[70.4, 70.4, 70.4],
)
train_dataloader = dict(dataset=dict(type=dataset_type, copies=1))
val_dataloader = dict(dataset=dict(type=dataset_type, copies=3))
test_dataloader = dict(dataset=dict(type=dataset_type, copies=3))
