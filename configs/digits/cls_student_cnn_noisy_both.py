# The both-noisy testbed's student alone: cls_student_cnn.py with 15 % of each class's training
# labels replaced by another class, uniformly (seeded). Validation and test labels are clean.
_base_ = ['./cls_student_cnn.py']

train_dataloader = dict(dataset=dict(label_noise=0.15, noise_seed=0))
