"""KDWarmupHook: the distillation terms ramp in linearly, outside the loss functions."""

from types import SimpleNamespace

import pytest
import torch
from test_models.test_classifier_distiller import build_distiller, make_batch

from rlkd_mm.engine import KDWarmupHook


def _runner(model, num_batches=17, iteration=0):
    return SimpleNamespace(model=model, train_dataloader=[None] * num_batches, iter=iteration)


@pytest.mark.parametrize('by_epoch, warmup, expected_iters', [(True, 2, 34), (False, 10, 10)])
def test_factor_is_linear_and_reaches_one(by_epoch, warmup, expected_iters):
    model = build_distiller()
    hook = KDWarmupHook(warmup=warmup, by_epoch=by_epoch)
    runner = _runner(model)
    hook.before_train(runner)
    assert hook.warmup_iters == expected_iters
    for it in (0, 1, expected_iters // 2, expected_iters - 1, expected_iters + 5):
        runner.iter = it
        hook.before_train_iter(runner, 0)
        assert model.kd_warmup_factor == pytest.approx(min(1.0, (it + 1) / expected_iters))
    hook.after_train(runner)
    assert model.kd_warmup_factor == 1.0


def test_distiller_scales_only_the_kd_term():
    model = build_distiller(
        kd_loss=dict(type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=8.0, loss_weight=1.0)
    )
    model.train()
    data = model.data_preprocessor(make_batch(), True)
    torch.manual_seed(0)
    full = model(**data, mode='loss')
    hook = KDWarmupHook(warmup=4, by_epoch=False)
    runner = _runner(model, iteration=0)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    torch.manual_seed(0)
    ramped = model(**data, mode='loss')
    assert float(ramped['loss_kd']) == pytest.approx(0.25 * float(full['loss_kd']), rel=1e-5)
    assert float(ramped['loss']) == pytest.approx(float(full['loss']), rel=1e-6)


def test_invalid_warmup_and_model():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='warmup'):
            KDWarmupHook(warmup=bad)
    with pytest.raises(TypeError, match='distiller'):
        KDWarmupHook(warmup=1).before_train(_runner(torch.nn.Linear(2, 2)))
