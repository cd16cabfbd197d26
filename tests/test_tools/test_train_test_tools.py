"""End-to-end runs of tools/train.py and tools/test.py on tiny subsets of the embedded data."""

import glob
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from rlkd_mm.testing import save_random_teacher, small_config, use_digits_det

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(*args, timeout=900):
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def small_cls_config(tmp_path, epochs=1):
    cfg = small_config(
        osp.join(ROOT, 'configs/digits/cls_student_cnn.py'),
        train=64,
        val=32,
        test=32,
        max_epochs=epochs,
        val_interval=1,
    )
    path = str(tmp_path / 'cls.py')
    cfg.dump(path)
    return path


def small_det_config(tmp_path, data_root):
    cfg = small_config(
        osp.join(ROOT, 'configs/digits/det_student_gfl.py'), max_epochs=1, val_interval=1
    )
    use_digits_det(cfg, data_root, in_process=True)
    # a model trained for two iterations scores nothing above the usual threshold; keep every
    # box so that CocoMetric has results to evaluate
    cfg.model.test_cfg.score_thr = 0.0
    path = str(tmp_path / 'det.py')
    cfg.dump(path)
    return path


@pytest.mark.slow
def test_cls_train_test_resume(tmp_path):
    cfg = small_cls_config(tmp_path)
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', cfg, '--work-dir', work)
    ckpt = osp.join(work, 'epoch_1.pth')
    # the checkpoint (with mmengine's message hub) loads under torch's weights_only default
    state = torch.load(ckpt)
    assert state['meta']['epoch'] == 1 and 'message_hub' in state

    out = run_tool(
        'tools/test.py',
        cfg,
        ckpt,
        '--work-dir',
        str(tmp_path / 'test'),
        '--out',
        str(tmp_path / 'preds.pkl'),
    )
    assert 'accuracy/top1' in out
    assert osp.isfile(tmp_path / 'preds.pkl')

    out = run_tool(
        'tools/train.py',
        cfg,
        '--work-dir',
        work,
        '--resume',
        '--cfg-options',
        'train_cfg.max_epochs=2',
    )
    assert 'resumed epoch: 1' in out
    assert torch.load(osp.join(work, 'epoch_2.pth'))['meta']['epoch'] == 2


@pytest.mark.slow
def test_det_train_test(tmp_path):
    from rlkd_mm.datasets.digits_det import make_digits_det

    data_root = str(tmp_path / 'digits_det')
    make_digits_det(data_root, num_train=16, num_val=8, num_test=8)
    cfg = small_det_config(tmp_path, data_root + '/')
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', cfg, '--work-dir', work)
    out = run_tool(
        'tools/test.py',
        cfg,
        osp.join(work, 'epoch_1.pth'),
        '--work-dir',
        str(tmp_path / 'test'),
        '--show-dir',
        'vis',
    )
    assert 'coco/bbox_mAP' in out
    drawn = glob.glob(str(tmp_path / 'test' / '*' / 'vis' / '*'))
    assert len(drawn) == 8, drawn  # one picture per test image


@pytest.mark.slow
def test_final_metrics_evaluate_the_final_model(tmp_path):
    """``tools/train.py --final-metrics`` (what the benchmark tools train with, also as
    ``tools/benchmark/run_one.py``): the final model's val and test metrics as JSON, and
    ``final_model.pth`` in the layout of every checkpoint, with the RLKD agent's dump."""
    import json

    from tools.analysis.plot_temperatures import read_dump

    cfg = small_config(
        osp.join(ROOT, 'configs/digits/cls_kd_rlkd.py'), train=64, val=32, test=32, max_epochs=1
    )
    # a saved random teacher: nothing depends on a trained one being on disk
    cfg.model.teacher_ckpt = save_random_teacher(
        osp.join(ROOT, 'configs/digits/cls_teacher_cnn.py'),
        str(tmp_path / 'teacher.pth'),
        'mmpretrain',
    )
    path = str(tmp_path / 'rlkd.py')
    cfg.dump(path)
    works = [str(tmp_path / 'train'), str(tmp_path / 'run_one')]
    run_tool('tools/train.py', path, '--work-dir', works[0], '--seed', '1', '--final-metrics')
    run_tool('tools/benchmark/run_one.py', path, '--work-dir', works[1], '--seed', '1')
    records = []
    for work in works:
        with open(osp.join(work, 'final_metrics.json')) as f:
            records.append(json.load(f))
        assert not glob.glob(osp.join(work, 'epoch_*.pth'))  # no intermediate checkpoint
        ckpt = torch.load(osp.join(work, 'final_model.pth'), weights_only=True)
        assert ckpt['meta']['seed'] == 1 and 'rlkd_agent' in ckpt and 'optimizer' not in ckpt
        dump = read_dump(work)  # empty here: the agent acts after the warm-up
        assert dump['rows'].shape[1] == len(dump['columns'])
    assert records[0] == records[1]
    assert set(records[0]) == {'accuracy/top1', 'val/accuracy/top1', 'teacher_sha256'}
    assert len(records[0]['teacher_sha256']) == 64


def test_missing_data_names_the_path(tmp_path):
    from mmengine.registry import init_default_scope

    from rlkd_mm.registry import DATASETS

    cfg = Config.fromfile(osp.join(ROOT, 'configs/digits/det_student_gfl.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path / 'absent') + '/'
    init_default_scope('mmdet')
    with pytest.raises(FileNotFoundError, match='absent'):
        DATASETS.build(dataset_cfg)


def test_missing_checkpoint_in_test_tool(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            'tools/test.py',
            'configs/digits/cls_student_cnn.py',
            str(tmp_path / 'none.pth'),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert 'none.pth' in proc.stderr


@pytest.mark.slow
def test_mim_train_from_the_installed_package(tmp_path):
    """`mim train rlkd_mm configs/...` finds the config and tools through the package's .mim."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run(
        [
            mim,
            'train',
            'rlkd_mm',
            'configs/digits/cls_student_cnn.py',
            '--gpus',
            '0',
            '--work-dir',
            str(tmp_path / 'work'),
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'train_dataloader.dataset.indices=32',
            'val_dataloader.dataset.indices=16',
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


def small_rlkd_cls_config(tmp_path):
    """digits cls_kd_rlkd.py on 64 training images, batch 8, with a random saved teacher."""
    cfg = small_config(
        osp.join(ROOT, 'configs/digits/cls_kd_rlkd.py'),
        train=64,
        val=32,
        test=32,
        batch_size=8,
        max_epochs=2,
        val_interval=2,
    )
    cfg.model.teacher_ckpt = save_random_teacher(
        osp.join(ROOT, 'configs/digits/cls_teacher_cnn.py'),
        str(tmp_path / 'teacher.pth'),
        'mmpretrain',
    )
    cfg.default_hooks.logger.interval = 2  # 8 iterations per epoch: log lines in every epoch
    # the random teacher has no high-quality instance, so only after the exploration phase
    # does any instance explore (and leave its noise in the reward record)
    cfg.model.temperature.agent.explore_updates = 2
    cfg.custom_hooks = [
        dict(
            type='rlkd_mm.RLKDHook',
            reward='instance',
            reward_interval=1,
            update_interval=2,
            warmup_iters=2,
        ),
        dict(type='rlkd_mm.TeacherValHook'),
    ]
    path = str(tmp_path / 'cls_rlkd.py')
    cfg.dump(path)
    return path


def _policy_report(ckpt, *args):
    """The JSON report of tools/analysis/policy_report.py on ``ckpt``."""
    import json

    out = subprocess.run(
        [sys.executable, 'tools/analysis/policy_report.py', ckpt, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index('{') :])


@pytest.mark.slow
def test_rlkd_train_and_policy_report(tmp_path):

    cfg = small_rlkd_cls_config(tmp_path)
    work = str(tmp_path / 'work')
    out = run_tool('tools/train.py', cfg, '--work-dir', work)
    # the (random) teacher was evaluated once before training, beside the student's val metric
    assert out.count('TeacherValHook: teacher/accuracy/top1: ') == 1
    ckpt = osp.join(work, 'epoch_2.pth')
    state = torch.load(ckpt)
    agent_state = state['rlkd_agent']
    # 14 acting iterations, rewarded 1 in 1 except those acted just before an update
    assert agent_state['agent']['update_count'] >= 4
    assert agent_state['reward_record'].shape[1] == 4 and len(agent_state['reward_record']) > 0
    report = _policy_report(ckpt, '--split', 'val')
    assert report['num_instances'] == 32  # one deterministic T per validation image
    assert 1.0 <= report['t_min'] <= report['t_mean'] <= report['t_max'] <= 10.0
    assert report['flat'] == (report['t_std'] < 0.25)
    assert set(report['spearman']) >= {'teacher_gt_prob', 'student_ce', 'kl_teacher_student'}
    assert all(-1.0 <= v <= 1.0 for v in report['spearman'].values())
    assert sum(b['count'] for b in report['reward_signal']) <= len(agent_state['reward_record'])
    # the exploration noise of every explored rewarded instance is in the record
    explored = int(torch.isfinite(agent_state['reward_record'][:, 2]).sum())
    assert explored > 0 and report['action_signal']['all']['count'] == explored
    # the action signal logged over training, per epoch, from the run's scalars.json
    course = report['action_signal_by_epoch']
    assert course and {c['epoch'] for c in course} <= {1, 2}
    assert all(c['log_lines'] >= 1 and math.isfinite(c['mean']) for c in course)
    assert osp.isfile(report['png'])
    assert 'label_noise' not in report  # clean labels: no flags to group by

    # on a training split with label noise, the relabelled images are compared with the rest
    noisy_cfg = Config.fromfile(cfg)
    noisy_cfg.train_dataloader.dataset.label_noise = 0.5
    noisy_path = str(tmp_path / 'cls_rlkd_noisy.py')
    noisy_cfg.dump(noisy_path)
    noisy_report = _policy_report(
        ckpt, '--split', 'train', '--config', noisy_path, '--out', str(tmp_path / 'train.png')
    )
    groups = noisy_report['label_noise']['value']
    from rlkd_mm.datasets import ClutteredDigitsDataset

    data = ClutteredDigitsDataset(split='train', label_noise=0.5, indices=64)
    num_noisy = sum(data.get_data_info(i)['noisy_label'] for i in range(64))
    assert groups['noisy']['count'] == num_noisy and groups['clean']['count'] == 64 - num_noisy
    assert abs(groups['gap'] - (groups['noisy']['mean'] - groups['clean']['mean'])) < 1e-12

    # the temperature plot finds the per-instance dump in the run's checkpoint
    from tools.analysis.plot_temperatures import read_dump

    dump = read_dump(work)
    assert dump is not None and dump['rows'].shape[1] == len(dump['columns']) > 0
    assert len(dump['rows']) > 0
    out = run_tool(
        'tools/analysis/plot_temperatures.py', work, '--out', str(tmp_path / 'temps.png')
    )
    assert osp.isfile(tmp_path / 'temps.png')

    # tools/test.py: the teacher comes from the distiller checkpoint, its file is not needed
    os.remove(str(tmp_path / 'teacher.pth'))
    out = run_tool('tools/test.py', cfg, ckpt, '--work-dir', str(tmp_path / 'test'))
    assert 'accuracy/top1' in out
    # a student-only checkpoint under the distiller config is refused, naming both
    student_only = str(tmp_path / 'student_only.pth')
    run_tool('tools/model_converters/extract_student.py', ckpt, student_only)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', cfg, student_only],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert 'student_only.pth is a student-only checkpoint' in proc.stderr
    assert 'cls_student_cnn.py' in proc.stderr
    # a checkpoint that leaves weights of the model unset is an error, not a random model
    partial = dict(state)
    partial['state_dict'] = {
        k: v for k, v in state['state_dict'].items() if k != 'student.head.fc.weight'
    }
    torch.save(partial, str(tmp_path / 'partial.pth'))
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', cfg, str(tmp_path / 'partial.pth')],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and 'missing student.head.fc.weight' in proc.stderr
