"""tools/dist_train.sh and tools/dist_test.sh with two real processes (gloo on CPU)."""

import os
import os.path as osp
import re
import subprocess

import pytest
from gloo_helpers import free_port
from test_train_test_tools import ROOT, small_rlkd_cls_config

from rlkd_mm.testing import save_random_teacher, small_config, use_digits_det


def _dist(script, *args, timeout=900):
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _checksums(out):
    """{rank: (checksum, updates)} from the lines RLKDHook prints after training."""
    pattern = r'RLKDHook rank (\d): agent checksum (\S+) after (\d+) updates'
    return {rank: (value, int(n)) for rank, value, n in re.findall(pattern, out)}


@pytest.mark.slow
def test_dist_train_cls_rlkd_two_processes_equal_agents(tmp_path):
    cfg = small_rlkd_cls_config(tmp_path)
    work = str(tmp_path / 'work')
    out = _dist('dist_train.sh', cfg, '2', '--work-dir', work)
    sums = _checksums(out)
    assert set(sums) == {'0', '1'} and sums['0'] == sums['1'], out[-3000:]
    assert sums['0'][1] >= 2  # the agent was updated
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    out = _dist('dist_test.sh', cfg, osp.join(work, 'epoch_2.pth'), '2', '--work-dir', work)
    assert 'accuracy/top1' in out


@pytest.mark.slow
def test_dist_train_digitsdet_rlkd_two_processes(tmp_path):
    from rlkd_mm.datasets.digits_det import make_digits_det

    data_root = str(tmp_path / 'digits_det') + '/'
    make_digits_det(data_root, num_train=16, num_val=8, num_test=8)
    cfg = small_config(
        osp.join(ROOT, 'configs/digits/gfl_ld_rlkd.py'), max_epochs=2, val_interval=2
    )
    use_digits_det(cfg, data_root, in_process=True)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].batch_size = 2
    cfg.model.teacher_ckpt = save_random_teacher(
        osp.join(ROOT, 'configs/digits/det_teacher_gfl.py'), str(tmp_path / 'teacher.pth'), 'mmdet'
    )
    cfg.custom_hooks = [
        dict(type='rlkd_mm.RLKDHook', reward='instance', reward_interval=1, update_interval=1)
    ]
    path = str(tmp_path / 'det_rlkd.py')
    cfg.dump(path)
    out = _dist('dist_train.sh', path, '2', '--work-dir', str(tmp_path / 'work'))
    sums = _checksums(out)
    assert set(sums) == {'0', '1'} and sums['0'] == sums['1'], out[-3000:]
