"""tools/analysis/temperature_headroom.py: the quiz split, the rows it trains, its report, and
probe mode, on a few digits iterations."""

import json
import os.path as osp

import pytest
from mmengine.config import Config
from test_train_test_tools import ROOT, run_tool

from tools.analysis.temperature_headroom import headroom_configs, parse_args, split_quiz

TINY = [
    'model.teacher_ckpt=None',
    'train_dataloader.dataset.indices=80',
    'train_dataloader.batch_size=16',
    'val_dataloader.dataset.indices=32',
    'test_dataloader.dataset.indices=32',
    'train_cfg.max_epochs=1',
]
CONFIG = osp.join(ROOT, 'configs/digits/cls_kd_fixed.py')


def _cfg(*options):
    args = parse_args([CONFIG, '--cfg-options', *TINY, *options])
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(args.cfg_options)
    return args, cfg


def test_quiz_split_is_held_out_of_every_row():
    args, cfg = _cfg()
    train, quiz = split_quiz(cfg, 0.1, seed=0)
    assert len(quiz) == 8 and len(train) == 72
    assert not set(train) & set(quiz) and set(train) | set(quiz) == set(range(80))
    assert split_quiz(cfg, 0.1, seed=0) == (train, quiz)  # carved once, by its seed
    rows = headroom_configs(cfg, args)
    assert set(rows) == {'a=0.5', 'a=0.707', 'a=1', 'a=1.41', 'a=2', 'oracle', 'null'}
    for row in rows.values():
        assert row.train_dataloader.dataset.indices == train
    hook = rows['oracle'].custom_hooks[-1]
    assert hook.type == 'rlkd_mm.HeadroomHook' and hook.quiz_dataset.indices == quiz
    assert hook.quiz_dataset.pipeline == cfg.test_dataloader.dataset.pipeline  # no augmentation
    assert rows['null'].model.temperature.null and not rows['oracle'].model.temperature.null
    assert rows['a=2'].model.temperature.multiplier == 2.0


def test_quiz_split_refuses_val_and_test():
    _, cfg = _cfg('train_dataloader.dataset.split=val')
    with pytest.raises(ValueError, match="training source, got split='val'"):
        split_quiz(cfg, 0.1, seed=0)


@pytest.mark.slow
def test_headroom_tool_trains_the_rows_and_writes_its_report(tmp_path):
    out = str(tmp_path / 'headroom.json')
    run_tool(
        'tools/analysis/temperature_headroom.py',
        CONFIG,
        '--seeds',
        '0',
        '--num-candidates',
        '3',
        '--quiz-batch-size',
        '8',
        '--refresh-interval',
        '2',
        '--work-dir',
        str(tmp_path / 'work'),
        '--out',
        out,
        '--cfg-options',
        *TINY,
        'default_hooks.logger.interval=1',
    )
    with open(out) as f:
        report = json.load(f)
    assert set(report['rows']) == {'a=0.5', 'a=1', 'a=2', 'oracle', 'null'}
    assert report['best_single'] in ('a=0.5', 'a=1', 'a=2')
    for row in report['rows'].values():
        assert 0 <= row['test']['mean'] <= 100 and row['test']['n'] == 1
    oracle = report['rows']['oracle']['test']['mean']
    best = report['rows'][report['best_single']]['test']['mean']
    assert report['oracle_minus_best_single']['mean'] == pytest.approx(oracle - best)
    assert report['headroom']['mean'] == min(
        report['oracle_minus_best_single']['mean'], report['oracle_minus_null']['mean']
    )
    assert report['chance_agreement'] == pytest.approx(1 / 3)
    # what the oracle did while training, from its logged statistics
    (logged,) = report['oracle_while_training']['oracle']
    assert 0 <= logged['oracle_grid_end_share'] <= 1
    assert 0 <= logged['oracle_half_agreement'] <= 1


@pytest.mark.slow
def test_probe_mode_scores_a_trained_checkpoint(tmp_path):
    work = str(tmp_path / 'fixed')
    run_tool('tools/train.py', CONFIG, '--work-dir', work, '--cfg-options', *TINY)
    out = str(tmp_path / 'probe.json')
    run_tool(
        'tools/analysis/temperature_headroom.py',
        CONFIG,
        '--probe',
        osp.join(work, 'epoch_1.pth'),
        '--probe-iters',
        '6',  # more than the 5 batches of an epoch: the probe goes on into the next
        '--quiz-batch-size',
        '8',
        '--out',
        out,
        '--cfg-options',
        *TINY,
    )
    with open(out) as f:
        report = json.load(f)
    assert len(report['global_candidates_spearman']) == 5  # the first 5 batches
    assert all(-1 <= r <= 1 for r in report['global_candidates_spearman'])
    assert 0 <= report['oracle']['oracle_half_agreement'] <= 1
    assert report['oracle']['oracle_gain'] >= 0  # the best candidate scores at least the base
    assert sum(report['pick_share'].values()) == pytest.approx(1.0)
    assert set(report['pick_spearman']) == {'teacher_gt_prob', 'student_gt_prob'}


@pytest.mark.slow
def test_headroom_tool_on_a_one_stage_detector(tmp_path):
    """The oracle scores positive priors at the GFL head's last class conv; the quiz split is
    carved from DigitsDet's training images and given the test pipeline (with annotations)."""
    from rlkd_mm.datasets.digits_det import make_digits_det
    from rlkd_mm.testing import use_digits_det

    data_root = str(tmp_path / 'digits_det') + '/'
    make_digits_det(data_root, num_train=20, num_val=4, num_test=4)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/digits/gfl_ld_fixed.py'))
    use_digits_det(cfg, data_root, in_process=True)
    cfg.model.teacher_ckpt = None
    cfg.train_cfg.max_epochs = 1
    # a model trained for a few iterations scores nothing above the usual threshold
    cfg.model.student = Config.fromfile(cfg.model.student).model
    cfg.model.student.test_cfg.score_thr = 0.0
    config = str(tmp_path / 'det.py')
    cfg.dump(config)
    args = parse_args([config, '--num-candidates', '2'])
    rows = headroom_configs(cfg, args)
    quiz = rows['oracle'].custom_hooks[-1].quiz_dataset
    train = rows['oracle'].train_dataloader.dataset.indices
    assert len(quiz.indices) == 2 and len(train) == 18 and not set(quiz.indices) & set(train)
    out = str(tmp_path / 'headroom.json')
    run_tool(
        'tools/analysis/temperature_headroom.py',
        config,
        '--seeds',
        '0',
        '--num-candidates',
        '2',
        '--quiz-batch-size',
        '2',
        '--refresh-interval',
        '1',
        '--work-dir',
        str(tmp_path / 'work'),
        '--out',
        out,
        '--cfg-options',
        'default_hooks.logger.interval=1',
    )
    with open(out) as f:
        report = json.load(f)
    assert report['metric'] == 'coco/bbox_mAP'
    assert set(report['rows']) == {'a=0.5', 'a=2', 'oracle', 'null'}
    (logged,) = report['oracle_while_training']['oracle']
    assert 0 <= logged['oracle_grid_end_share'] <= 1
    assert 0 <= logged['oracle_half_agreement'] <= 1
