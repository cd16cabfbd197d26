# Digits classification teacher: the student's architecture at twice its width (16-32-64
# channels, 175k parameters). It learns from the same labelled training digits as the students,
# rendered twice with other random distortions (gen_seed=1, copies=2; 30 epochs), so it has not
# memorised the very images the students train on and its confidence on them varies from image
# to image (tools/analysis/teacher_confidence.py). A 4x capacity gap on purpose: in single-seed
# design runs a quarter-width ResNet-18 teacher (0.7M parameters) made fixed-T KD *lower* the 44k
# student by about 10 points, the teacher-student gap effect of the KD literature.
_base_ = ['./cls_student_cnn.py']

model = dict(
    backbone=dict(stem_channels=16, base_channels=16), head=dict(in_channels=64))
train_dataloader = dict(dataset=dict(gen_seed=1, copies=2))
