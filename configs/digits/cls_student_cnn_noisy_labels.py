# The noisy-label testbed: the digits student trained alone on the cluttered digits with 30 % of
# each class's training labels replaced by another class, uniformly (symmetric label noise,
# seeded: rlkd_mm.ClutteredDigitsDataset(label_noise=0.3)). Validation and test labels are clean.
_base_ = ['./cls_student_cnn.py']

train_dataloader = dict(dataset=dict(label_noise=0.3, noise_seed=0))
