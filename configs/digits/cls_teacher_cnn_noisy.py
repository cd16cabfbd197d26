# A teacher whose reliability varies by instance: cls_teacher_cnn.py trained on labels of which 40 %
# of the images of the classes 1, 3, 4, 7, 8 and 9 carry the other class of their pair (1 <-> 7,
# 3 <-> 8, 4 <-> 9; rlkd_mm.NoisyLabelDataset, seeded), so it is confidently right on some
# images and confidently wrong on others. The students keep the clean labels; nothing in their
# state says which images were relabelled for the teacher.
_base_ = ['./cls_teacher_cnn.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='rlkd_mm.NoisyLabelDataset',
        pairs=[(1, 7), (3, 8), (4, 9)],
        fraction=0.4,
        seed=0,
        dataset=dict(
            type='rlkd_mm.ClutteredDigitsDataset',
            split='train',
            img_size=32,
            copies=2,
            gen_seed=1,
            pipeline={{_base_.train_pipeline}},
        ),
    )
)
