"""tools/benchmark: the option sweep ranks settings on the validation split."""

import json
import os.path as osp
import statistics

import pytest
from test_tools.test_train_test_tools import run_tool, small_cls_config

from tools.benchmark.sweep import parse_grid


def sweep(config, work, values, *seeds, options=(), jobs=1):
    seed_args = ['--seeds', *seeds] if seeds else []
    seed_args += ['--jobs', str(jobs)]
    option_args = ['--cfg-options', *options] if options else []
    return run_tool(
        'tools/benchmark/sweep.py',
        config,
        '--grid',
        f'optim_wrapper.optimizer.lr={values}',
        '--metric',
        'accuracy/top1',
        '--scale',
        '1',
        *seed_args,
        *option_args,
        '--work-dir',
        str(work),
    )


def test_parse_grid():
    assert parse_grid(['a.b=1,2', 'c=x']) == [('a.b', ['1', '2']), ('c', ['x'])]
    for bad in ('a.b', '=1', 'a='):
        with pytest.raises(ValueError, match='key=v1,v2'):
            parse_grid([bad])


@pytest.mark.slow
def test_sweep_records_val_and_test_and_ranks_on_val(tmp_path):
    config = small_cls_config(tmp_path)
    work = tmp_path / 'sweep'
    out = sweep(config, work, '0.0,0.003', '0', jobs=2)  # both settings train at once
    with open(work / 'sweep.json') as f:
        results = json.load(f)['results']
    assert [r['options'] for r in results] == [
        ['optim_wrapper.optimizer.lr=0.0'],
        ['optim_wrapper.optimizer.lr=0.003'],
    ]
    for r in results:
        assert len(r['val']) == len(r['test']) == 1
        assert all(0.0 <= v <= 100.0 for v in r['val'] + r['test'])
    metrics_file = osp.join(work, 'optimizer.lr-0.0_seed0', 'final_metrics.json')
    with open(metrics_file) as f:
        metrics = json.load(f)
    assert metrics['val/accuracy/top1'] == results[0]['val'][0]
    assert metrics['accuracy/top1'] == results[0]['test'][0]
    best = max(results, key=lambda r: statistics.mean(r['val']))
    assert f'chosen on validation: {" ".join(best["options"])}' in out
    assert '[sweep 1/2, 1 left, ETA' in out and '[sweep 2/2, 0 left' in out
    table = (work / 'sweep.md').read_text()
    assert 'tools/benchmark/sweep.py' in table and table.count('| optim_wrapper.optimizer.lr=') == 2

    # another sweep (or a table) in a sibling work dir reuses the finished run of the same
    # setting and seed through the shared run index instead of training it again
    other = tmp_path / 'sweep_other'
    sweep(config, other, '0.003', '0')
    with open(other / 'sweep.json') as f:
        reused = json.load(f)['results'][0]
    assert reused['val'] == results[1]['val'] and reused['test'] == results[1]['test']
    assert not (other / 'optimizer.lr-0.003_seed0' / 'final_metrics.json').exists()

    # a second sweep in the same work dir ranks its setting together with the first two and
    # reuses the finished run instead of training it again
    mtime = osp.getmtime(metrics_file)
    out = sweep(config, work, '0.0,0.001')
    with open(work / 'sweep.json') as f:
        results = json.load(f)['results']
    assert sorted(r['options'][0] for r in results) == [
        'optim_wrapper.optimizer.lr=0.0',
        'optim_wrapper.optimizer.lr=0.001',
        'optim_wrapper.optimizer.lr=0.003',
    ]
    assert osp.getmtime(metrics_file) == mtime
    assert out.count('| optim_wrapper.optimizer.lr=') == 3

    # the same grid under another fixed option trains something else: the finished run of the
    # same work dir is not reused for it, but retrained
    sweep(config, work, '0.0', options=['train_cfg.max_epochs=2'])
    assert osp.getmtime(metrics_file) > mtime
    with open(metrics_file) as f:
        assert json.load(f)['run_digest'] != metrics['run_digest']


def test_progress_line_reads_mmengine_log(tmp_path, capsys):
    from rlkd_mm.apis.runs import report_progress

    log = tmp_path / 'run.log'
    log.write_text(
        'x - mmengine - INFO - Epoch(train)  [2][ 50/188]  lr: 1e-3  eta: 0:03:10  time: 0.2\n'
        'x - mmengine - INFO - Epoch(train)  [3][100/188]  lr: 1e-3  eta: 0:02:01  time: 0.2\n'
    )
    report_progress('gfl_seed0', str(log), 75.0)
    assert capsys.readouterr().out.strip() == (
        '[run] gfl_seed0: epoch 3, iteration 100/188, ETA 0:02:01 (75 s)'
    )
    report_progress('empty', str(tmp_path / 'absent.log'), 1.0)
    assert capsys.readouterr().out == ''


def test_run_digest_follows_the_distiller_files(tmp_path):
    """A retrained teacher (new checkpoint bytes) or an edited student / teacher config makes a
    distillation run new; restating a config value does not."""
    from rlkd_mm.apis.runs import run_digest

    student, teacher, ckpt = tmp_path / 's.py', tmp_path / 't.py', tmp_path / 't.pth'
    student.write_text('model = dict(type="A", width=8)\n')
    teacher.write_text('model = dict(type="A", width=16)\n')
    ckpt.write_bytes(b'first teacher')
    config = tmp_path / 'kd.py'
    config.write_text(
        f'model = dict(type="D", student="{student}", teacher="{teacher}", '
        f'teacher_ckpt="{ckpt}", temperature=dict(temperature=4.0))\n'
    )
    base = run_digest(str(config), 0)
    assert run_digest(str(config), 0, ['model.temperature.temperature=4.0']) == base
    assert run_digest(str(config), 1) != base
    ckpt.write_bytes(b'retrained teacher')
    retrained = run_digest(str(config), 0)
    assert retrained != base
    teacher.write_text('model = dict(type="A", width=32)\n')
    assert run_digest(str(config), 0) not in (base, retrained)


def test_run_many_runs_jobs_at_once_and_indexes_every_run(tmp_path, monkeypatch):
    """``run_many`` returns the metrics in the order of the specs, gives each of its parallel
    subprocesses ``cores // jobs`` threads, and every finished run lands in the shared run
    index (concurrent writers under the lock) so a rerun reuses all of them."""
    import os
    import stat

    from rlkd_mm.apis import runs

    # a stand-in interpreter: "<python> train.py CONFIG --work-dir DIR --seed S --final-metrics"
    # sleeps, then writes the metrics run_one reads back, recording its thread setting and the
    # overlap
    fake = tmp_path / 'fake_python'
    fake.write_text(
        '#!/bin/sh\n'
        f'echo start >> {tmp_path}/events\n'
        'sleep 1.5\n'
        f'echo end >> {tmp_path}/events\n'
        'echo "{\\"acc\\": $6, \\"omp\\": \\"$OMP_NUM_THREADS\\"}" > "$4/final_metrics.json"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(runs, '_python', lambda: str(fake))
    config = tmp_path / 'cfg.py'
    config.write_text('model = dict(type="A")\n')
    root = tmp_path / 'work_dirs' / 'table'
    specs = [dict(config=str(config), work_dir=str(root / f'r{s}'), seed=s) for s in range(4)]
    seen = []
    metrics = runs.run_many(specs, jobs=2, on_done=lambda i, m: seen.append(i))
    assert [m['acc'] for m in metrics] == [0, 1, 2, 3]
    assert sorted(seen) == [0, 1, 2, 3]
    expected_threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert {m['omp'] for m in metrics} == {expected_threads}
    assert not any(m['reused'] for m in metrics)
    # two runs overlapped: the second started before the first ended
    assert (tmp_path / 'events').read_text().split()[:2] == ['start', 'start']
    with open(runs.run_index_file(specs[0]['work_dir'])) as f:
        index = json.load(f)
    assert sorted(index.values()) == sorted(
        osp.abspath(osp.join(s['work_dir'], 'final_metrics.json')) for s in specs
    )
    again = runs.run_many(specs, jobs=2)
    assert all(m['reused'] for m in again) and [m['acc'] for m in again] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match='jobs must be >= 1'):
        runs.run_many(specs, jobs=0)


@pytest.mark.parametrize('task', ['cls', 'det'])
def test_overhead_times_every_reward_mode_and_interval_side_by_side(tmp_path, task):
    out = tmp_path / 'overhead.json'
    run_tool(
        'tools/benchmark/overhead.py',
        '--task',
        task,
        '--size',
        '64',
        '--batch-size',
        '2',
        '--warmup',
        '0',
        '--iters',
        '4',
        '--reward',
        'instance',
        'influence',
        '--reward-intervals',
        '1',
        '2',
        '--update-interval',
        '1',
        '--device',
        'cpu',
        '--out',
        str(out),
    )
    result = json.loads(out.read_text())
    rows = result['rows']
    assert [(r['reward'], r['reward_interval']) for r in rows] == [
        ('instance', 1),
        ('instance', 2),
        ('influence', 1),
        ('influence', 2),
    ]
    for row in rows:
        name = f'rlkd_{row["reward"]}_m{row["reward_interval"]}'
        assert len(result['median_s']) == 5 and result['mean_s'][name] > 0
        ratio = result['mean_s'][name] / result['mean_s']['fixed']
        assert row['ratio_mean'] == pytest.approx(ratio)
        # 4 acting iterations, every m-th stored, an update per stored transition
        assert row['agent_updates'] >= 1


def test_overhead_times_rlkd_on_a_base_with_the_counterfactual_reward(tmp_path):
    out = tmp_path / 'overhead.json'
    run_tool(
        'tools/benchmark/overhead.py',
        *('--task', 'cls', '--size', '32', '--batch-size', '2', '--warmup', '0', '--iters', '4'),
        *('--base', '--reward', 'counterfactual', '--reward-intervals', '1'),
        *('--update-interval', '1', '--device', 'cpu', '--out', str(out)),
    )
    (row,) = json.loads(out.read_text())['rows']
    assert row['base'] and row['reward'] == 'counterfactual' and row['ratio_mean'] > 0
    assert row['agent_updates'] >= 1  # the quiz gradient, the scores and the agent ran


def test_a_table_refuses_runs_of_different_teachers():
    from rlkd_mm.apis.runs import check_one_teacher

    a, b = 'a' * 64, 'b' * 64
    same = {'fixed': [dict(teacher_sha256=a)], 'alone': [dict(teacher_sha256='')]}
    assert check_one_teacher(same) == a
    mixed = {'fixed': [dict(teacher_sha256=a)], 'rlkd': [dict(teacher_sha256=b)] * 2}
    with pytest.raises(ValueError, match=r'different teachers \(aaaaaaaaaaaa: fixed; bbbb'):
        check_one_teacher(mixed)


def test_digits_table_dry_run_prints_the_cost(repo_root):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            'tools/benchmark/digits_table.py',
            '--task',
            'cls',
            '--dry-run',
            '--seeds',
            '0',
            '1',
            '--only',
            'KD, fixed T',
            'KD + random T',
            '--jobs',
            '2',
            '--seconds-per-run',
            '180',
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert '[dry run] 4 runs x 180 s / 2 job(s) = 0.1 h' in proc.stdout


def _innermost_dataset(dataset: dict) -> dict:
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def test_every_noisy_label_row_trains_on_the_noisy_labels(repo_root):
    """Each row of the noisy-label table resolves to a config whose training labels (and the
    counterfactual reward's quiz split) carry the 30 % noise; the rows on a fixed-T base keep
    its tuned KD weight."""
    from mmengine.config import Config, DictAction

    from tools.benchmark.digits_table import TASKS

    task = TASKS['cls_noisy_labels']
    fixed = Config.fromfile(osp.join(repo_root, task['baseline']))
    assert fixed.model.kd_loss.loss_weight == 12.0
    for name, config, options, *_ in task['rows']:
        cfg = Config.fromfile(osp.join(repo_root, config))
        parsed = {}
        for option in options:
            key, value = option.split('=', 1)
            parsed[key] = DictAction._parse_iterable(value)
        cfg.merge_from_dict(parsed)
        assert _innermost_dataset(cfg.train_dataloader.dataset).get('label_noise') == 0.3, name
        for hook in cfg.get('custom_hooks', []):
            reward = hook.get('reward')
            if isinstance(reward, dict) and 'quiz_dataset' in reward:
                assert _innermost_dataset(reward['quiz_dataset']).get('label_noise') == 0.3
        if 'fixed T' in name or 'rule' in name:
            assert cfg.model.kd_loss.loss_weight == 12.0, name
        assert _innermost_dataset(cfg.val_dataloader.dataset).get('label_noise', 0) == 0
