# UCI digits (bundled with scikit-learn): 10 classes, 8x8 images upsampled to 32x32,
# stratified train / val / test split of 1078 / 359 / 360 images (split_seed=0).
dataset_type = 'rlkd_mm.DigitsDataset'
img_size = 32
data_preprocessor = dict(
    num_classes=10,
    # statistics of the train split at 32x32; the images are grey, repeated over 3 channels
    mean=[77.7, 77.7, 77.7],
    std=[82.4, 82.4, 82.4],
    to_rgb=False,
)

# No flip: digits are not mirror-invariant. The images are in memory, so no loading step.
train_pipeline = [
    dict(type='RandomCrop', crop_size=img_size, padding=2),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(type=dataset_type, split='train', img_size=img_size, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(
        type=dataset_type, split='val', img_size=img_size, pipeline=test_pipeline, test_mode=True
    ),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1,))

test_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(
        type=dataset_type, split='test', img_size=img_size, pipeline=test_pipeline, test_mode=True
    ),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = val_evaluator
