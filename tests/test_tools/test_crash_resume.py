"""No lost run: atomic checkpoints, resume past a damaged checkpoint, exact resume with random
augmentation (digits RLKD, RandomCrop in the main process), clear errors on unreadable files."""

import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train_test_tools import ROOT, run_tool, small_rlkd_cls_config

from rlkd_mm.utils import (
    AtomicLocalBackend,
    UnreadableCheckpointError,
    check_checkpoint_readable,
    latest_readable_checkpoint,
)


def _truncate(src, dst, fraction=0.5):
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[: int(len(data) * fraction)])


def test_atomic_backend_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', target)
    # a write that dies half-way (here: fsync raises) leaves the old file and no temporary
    monkeypatch.setattr(os, 'fsync', lambda fd: (_ for _ in ()).throw(OSError('killed')))
    with pytest.raises(OSError, match='killed'):
        backend.put(b'new content', target)
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']
    monkeypatch.undo()
    backend.put_text('text', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'last_checkpoint').read_text() == 'text'


def test_readability_check_names_the_file(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1000))), good)
    check_checkpoint_readable(str(good))
    _truncate(good, tmp_path / 'cut.pth')
    with pytest.raises(UnreadableCheckpointError, match='cut.pth.*truncated'):
        check_checkpoint_readable(str(tmp_path / 'cut.pth'))
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    with pytest.raises(UnreadableCheckpointError, match='text.pth'):
        check_checkpoint_readable(str(tmp_path / 'text.pth'))
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        check_checkpoint_readable(str(tmp_path / 'absent.pth'))


def test_latest_readable_checkpoint_skips_damaged_ones(tmp_path):
    for epoch in (1, 2):
        torch.save(dict(epoch=epoch), tmp_path / f'epoch_{epoch}.pth')
    _truncate(tmp_path / 'epoch_2.pth', tmp_path / 'epoch_3.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    warnings = []
    assert latest_readable_checkpoint(str(tmp_path), warnings.append) == str(
        tmp_path / 'epoch_2.pth'
    )
    assert len(warnings) == 1 and 'epoch_3.pth' in warnings[0]
    for epoch in (1, 2):
        _truncate(tmp_path / 'epoch_3.pth', tmp_path / f'epoch_{epoch}.pth')
    with pytest.raises(UnreadableCheckpointError, match='no readable checkpoint'):
        latest_readable_checkpoint(str(tmp_path))
    assert latest_readable_checkpoint(str(tmp_path / 'empty')) is None


def _final_state(work):
    ckpt = torch.load(osp.join(work, 'epoch_3.pth'))
    student = {k: v for k, v in ckpt['state_dict'].items() if k.startswith('student.')}
    agent = ckpt['rlkd_agent']['agent']
    return student, agent


def _assert_same_run(a, b):
    (student_a, agent_a), (student_b, agent_b) = a, b
    assert student_a.keys() == student_b.keys()
    for key in student_a:
        assert torch.equal(student_a[key], student_b[key]), key
    assert agent_a['update_count'] == agent_b['update_count'] > 0
    for key in agent_a['net']:
        assert torch.equal(agent_a['net'][key], agent_b['net'][key]), key
    assert torch.equal(agent_a['action_generator'], agent_b['action_generator'])


def _config(tmp_path):
    cfg = small_rlkd_cls_config(tmp_path)
    # keep every epoch's checkpoint, so that a damaged latest one leaves an older one
    keep_all = 'default_hooks.checkpoint.max_keep_ckpts=-1'
    return cfg, ['--cfg-options', 'train_cfg.max_epochs=3', keep_all]


def _kill_after_first_checkpoint(cfg, opts, work):
    """Start the run and SIGKILL it once its first checkpoint is complete."""
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', work, *opts],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not osp.isfile(osp.join(work, 'last_checkpoint')) and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before its first checkpoint'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


@pytest.mark.slow
def test_resume_with_augmentation_equals_uninterrupted_run(tmp_path):
    # The same schedule in both runs (the agent's state includes the training progress).
    cfg, opts = _config(tmp_path)
    full = str(tmp_path / 'full')
    run_tool('tools/train.py', cfg, '--work-dir', full, *opts)
    split = str(tmp_path / 'split')
    _kill_after_first_checkpoint(cfg, opts, split)
    state = torch.load(osp.join(split, 'epoch_1.pth'))
    assert len(state['random_states']) == 1 and 'numpy' in state['random_states'][0]
    for name in ('epoch_2.pth', 'epoch_3.pth'):  # resume from epoch 1 whatever was reached
        if osp.exists(osp.join(split, name)):
            os.remove(osp.join(split, name))
    with open(osp.join(split, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(split, 'epoch_1.pth'))
    out = run_tool('tools/train.py', cfg, '--work-dir', split, '--resume', *opts)
    assert 'resumed epoch: 1' in out
    _assert_same_run(_final_state(full), _final_state(split))


@pytest.mark.slow
def test_killed_run_resumes_past_a_damaged_checkpoint_and_ends_as_uninterrupted(tmp_path):
    cfg, opts = _config(tmp_path)
    full = str(tmp_path / 'full')
    run_tool('tools/train.py', cfg, '--work-dir', full, *opts)

    crash = str(tmp_path / 'crash')
    _kill_after_first_checkpoint(cfg, opts, crash)
    first = osp.join(crash, 'epoch_1.pth')
    # A kill while the next checkpoint is written (the timing cannot be hit reliably here):
    # before atomic saving this left a truncated file under the checkpoint's name and
    # last_checkpoint still pointed at the previous one; the worst case is a truncated latest.
    for name in ('epoch_2.pth', 'epoch_3.pth'):
        if osp.exists(osp.join(crash, name)):
            os.remove(osp.join(crash, name))
    _truncate(first, osp.join(crash, 'epoch_2.pth'))
    with open(osp.join(crash, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(crash, 'epoch_2.pth'))

    out = run_tool('tools/train.py', cfg, '--work-dir', crash, '--resume', *opts)
    assert 'epoch_2.pth is unreadable' in out and 'resumed epoch: 1' in out
    _assert_same_run(_final_state(full), _final_state(crash))

    # an explicit unreadable checkpoint stops with a message naming it
    broken = osp.join(crash, 'broken.pth')
    _truncate(first, broken)
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', crash, '--resume', broken],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and 'broken.pth is unreadable' in proc.stderr
