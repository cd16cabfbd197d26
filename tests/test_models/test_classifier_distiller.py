import copy
import logging
import math
import os.path as osp

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from rlkd_mm.models import ClassifierDistiller
from rlkd_mm.registry import MODELS


def tiny_classifier(width=8, num_classes=10, mean=(0.0, 0.0, 0.0)):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=width, base_channels=width),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=num_classes,
            in_channels=width * 8,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        ),
        data_preprocessor=dict(mean=list(mean), std=[1.0, 1.0, 1.0]),
    )


def make_batch(n=6, num_classes=10, size=16, seed=0):
    from mmpretrain.structures import DataSample

    g = torch.Generator().manual_seed(seed)
    inputs = [torch.rand(3, size, size, generator=g) * 255 for _ in range(n)]
    labels = torch.randint(0, num_classes, (n,), generator=g)
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    return dict(inputs=inputs, data_samples=samples)


def build_distiller(**kwargs):
    init_default_scope('mmpretrain')
    cfg = dict(
        type='rlkd_mm.ClassifierDistiller',
        student=tiny_classifier(8),
        teacher=tiny_classifier(16),
        teacher_ckpt=None,
        temperature=dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
    )
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def save_teacher(tmp_path, width=16, num_classes=10):
    init_default_scope('mmpretrain')
    teacher = MODELS.build(tiny_classifier(width, num_classes))
    teacher.init_weights()
    path = osp.join(str(tmp_path), 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return teacher, path


def test_loss_keys_and_temperature_stats():
    model = build_distiller()
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    assert {'loss', 'loss_kd', 't_mean', 't_std', 't_min', 't_max'} <= set(losses)
    assert torch.isfinite(losses['loss_kd']) and losses['loss_kd'] > 0
    assert losses['t_mean'].item() == pytest.approx(4.0)
    assert losses['t_std'].item() == pytest.approx(0.0)


def test_gradients_reach_student_only():
    model = build_distiller()
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    (losses['loss'] + losses['loss_kd']).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())


def test_teacher_frozen_during_training():
    model = build_distiller()
    optim = build_optim_wrapper(
        model,
        dict(
            constructor='rlkd_mm.DistillerOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
        ),
    )
    optim_params = {id(p) for group in optim.optimizer.param_groups for p in group['params']}
    assert not optim_params & {id(p) for p in model.teacher.parameters()}
    assert {id(p) for p in model.student.parameters()} <= optim_params

    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    model.train()
    assert model.training and model.student.training and not model.teacher.training
    for i in range(3):
        model.train_step(make_batch(seed=i), optim)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key  # weights and BN buffers
    assert all(not p.requires_grad for p in model.teacher.parameters())
    changed = [
        k
        for k, v in model.student.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, student_before[k])
    ]
    assert changed, 'the student did not train'


def test_teacher_checkpoint_loaded_and_kept_by_init_weights(tmp_path):
    teacher, path = save_teacher(tmp_path)
    model = build_distiller(teacher_ckpt=path)  # build_distiller calls init_weights()
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key


def test_missing_teacher_checkpoint_names_path(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build_distiller(teacher_ckpt=path)


def test_teacher_preprocessing_mismatch_is_logged():
    import logging

    from mmengine.logging import MMLogger

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Collect()
    logger.addHandler(handler)
    try:
        build_distiller()
        assert not any('preprocesses them differently' in m for m in handler.messages)
        build_distiller(teacher=tiny_classifier(16, mean=(120.0, 120.0, 120.0)))
        hits = [m for m in handler.messages if 'preprocesses them differently' in m]
        assert len(hits) == 1 and "'mean': [120.0, 120.0, 120.0]" in hits[0]
    finally:
        logger.removeHandler(handler)


def test_class_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match='student has 10, teacher has 7'):
        build_distiller(teacher=tiny_classifier(16, num_classes=7))


def test_teacher_key_mismatch_lists_keys(tmp_path):
    _, path = save_teacher(tmp_path, width=16)
    state = torch.load(path)
    state['state_dict']['extra.weight'] = torch.zeros(1)
    del state['state_dict']['head.fc.bias']
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r'head\.fc\.bias.*extra\.weight'):
        build_distiller(teacher_ckpt=path)


class RecordingHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_non_finite_logits_skip_the_step_and_leave_the_agent_alone():
    from mmengine.logging import MMLogger

    from rlkd_mm.engine.optimizers.distiller_constructor import DistillerOptimWrapperConstructor

    model = build_distiller(temperature=dict(type='rlkd_mm.RLTemperature', agent=dict(seed=0)))
    policy = model.temperature
    policy.driven = policy.acting = True
    wrapper = DistillerOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=0.1), max_consecutive_nonfinite=2)
    )(model)
    assert type(wrapper).__name__ == 'NonFiniteSkipOptimWrapper'
    MessageHub.get_current_instance().update_info('iter', 17)
    data = make_batch()
    wrapper.zero_grad()
    model.train_step(copy.deepcopy(data), wrapper)  # a finite step first
    assert not wrapper.skipped_last and policy.pop_pending() is not None
    with torch.no_grad():
        model.student.head.fc.bias.fill_(float('nan'))  # injected NaN logits
    before = {k: v.detach().clone() for k, v in model.student.named_parameters()}
    logger = MMLogger.get_current_instance()
    handler = RecordingHandler()
    messages = handler.messages
    logger.addHandler(handler)
    try:
        with pytest.warns(UserWarning, match='non-finite instance states'):
            log_vars = model.train_step(copy.deepcopy(data), wrapper)
    finally:
        logger.removeHandler(handler)
    assert not math.isfinite(log_vars['loss'])
    assert wrapper.skipped_last and wrapper.num_nonfinite == 1
    assert any('non-finite student logits at training iteration 17' in m for m in messages)
    assert any('optimizer step is skipped' in m for m in messages)
    after = dict(model.student.named_parameters())
    for key, value in before.items():  # no step was taken (BN statistics do move: a forward)
        assert torch.allclose(value, after[key], rtol=0, atol=0, equal_nan=True), key
    assert all(p.grad is None or not p.grad.abs().sum() > 0 for p in model.student.parameters())
    assert policy.pop_pending() is None and policy.num_nonfinite_batches == 1
    hub = MessageHub.get_current_instance()
    assert hub.get_scalar('train/nonfinite_skips').current() == 1.0
    with pytest.raises(FloatingPointError, match='2 iterations in a row'):
        with pytest.warns(UserWarning):
            model.train_step(copy.deepcopy(data), wrapper)


def test_predict_and_tensor_are_the_students():
    model = build_distiller().eval()
    data = model.data_preprocessor(make_batch(), False)
    preds = model(**data, mode='predict')
    own = model.student(**data, mode='predict')
    for a, b in zip(preds, own):
        assert torch.equal(a.pred_score, b.pred_score)
    assert torch.equal(model(data['inputs'], mode='tensor'), model.student(data['inputs']))


def test_dkd_loss_gets_labels():
    model = build_distiller(
        kd_loss=dict(type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=8.0, loss_weight=1.0)
    )
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_kd']) and losses['loss_kd'] > 0


@MODELS.register_module(force=True)
class TupleTemperature(torch.nn.Module):
    """A policy of the old interface: returns a plain (T_s, T_t) tuple."""

    def forward(self, student_logits, teacher_logits, gt_labels=None):
        t = student_logits.new_full((student_logits.shape[0],), 2.0)
        return t, t


def test_policy_must_return_temperature_output():
    model = build_distiller(temperature=dict(type='rlkd_mm.TupleTemperature'))
    data = model.data_preprocessor(make_batch(), True)
    with pytest.raises(TypeError, match='TemperatureOutput.*got tuple'):
        model(**data, mode='loss')


@pytest.mark.parametrize(
    'kd_loss',
    [
        dict(type='rlkd_mm.InstanceKDLoss', loss_weight=0.5),
        dict(type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=2.0, loss_weight=0.5),
    ],
)
def test_kd_loss_is_the_sum_over_the_policys_terms(kd_loss):
    """DTKD's two terms: the distiller's loss_kd equals the KD loss of each term, summed."""
    temperature = dict(type='rlkd_mm.DTKDTemperature', base_temperature=3.0, alpha=2.0, beta=0.5)
    model = build_distiller(temperature=temperature, kd_loss=kd_loss)
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    with torch.no_grad():
        s = model.student(data['inputs'], mode='tensor')
        t = model.teacher(data['inputs'], mode='tensor')
    out = model.temperature(s, t)
    labels = torch.cat([sample.gt_label for sample in data['data_samples']])
    loss = MODELS.build(kd_loss)
    args = (labels,) if 'DKD' in kd_loss['type'] else ()
    expected = sum(
        loss(s, t, term.temperatures, *args, prefactor=term.prefactor) for term in out.terms()
    )
    assert len(list(out.terms())) == 2
    assert float(losses['loss_kd']) == pytest.approx(float(expected), rel=1e-5)


def test_ctkd_temperature_trains_with_student_optimizer():
    model = build_distiller(
        temperature=dict(type='rlkd_mm.CTKDTemperature', mode='global', ramp_iters=1)
    )
    optim = build_optim_wrapper(
        model,
        dict(
            constructor='rlkd_mm.DistillerOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.1),
        ),
    )
    optim_params = {id(p) for group in optim.optimizer.param_groups for p in group['params']}
    assert {id(p) for p in model.temperature.parameters()} <= optim_params


def test_extracted_student_matches_distiller(tmp_path):
    from tools.model_converters.extract_student import extract_student

    model = build_distiller().eval()
    src = str(tmp_path / 'distiller.pth')
    dst = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), src)
    extract_student(src, dst)

    from mmengine.runner import load_checkpoint

    init_default_scope('mmpretrain')
    student = MODELS.build(tiny_classifier(8)).eval()
    load_checkpoint(student, dst, strict=True)
    data = model.data_preprocessor(make_batch(n=8, seed=3), False)
    ours = torch.stack([d.pred_score for d in model(**data, mode='predict')])
    theirs = torch.stack([d.pred_score for d in student(**data, mode='predict')])
    assert torch.equal(ours, theirs)
    assert isinstance(model, ClassifierDistiller)


def test_unreadable_teacher_names_the_file(tmp_path):
    from rlkd_mm.utils import UnreadableCheckpointError

    _, path = save_teacher(tmp_path)
    with open(path, 'rb') as f:
        data = f.read()
    with open(tmp_path / 'teacher_cut.pth', 'wb') as f:
        f.write(data[: len(data) // 2])  # what a run killed while saving used to leave
    with pytest.raises(UnreadableCheckpointError, match='teacher checkpoint .*teacher_cut.pth'):
        build_distiller(teacher_ckpt=str(tmp_path / 'teacher_cut.pth'))
