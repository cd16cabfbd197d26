"""Run helpers of the benchmark, analysis and demo scripts: one train + final-metrics run per
subprocess (:func:`run_one`, :func:`run_many`), reused by its :func:`run_digest` through the run
index, cached teachers (:func:`ensure_teacher`), the headroom quiz split (:func:`split_quiz`),
one teacher per table (:func:`check_one_teacher`) and mean ± std markdown tables.

These helpers need a source checkout (e.g. the editable install ``pip install -e .``):
:data:`ROOT` is the directory above the ``rlkd_mm`` package, and the runs train
``ROOT/tools/train.py`` with their working directory at ``ROOT``, so relative config and
checkpoint paths (``configs/...``, ``checkpoints/...``) are read from the checkout. A plain
(non-editable) install has no ``tools/`` or ``configs/`` next to the package.

At module level this imports the standard library only; mmengine and torch are imported by the
functions that use them.
"""

import copy
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Dict, List, Optional, Sequence

# the repository root of the source checkout: <ROOT>/rlkd_mm/apis/runs.py
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CACHE = os.environ.get('RLKD_MM_CACHE', osp.join(osp.expanduser('~'), '.cache', 'rlkd_mm'))


def _python() -> str:
    return sys.executable


def config_digest(config: str, extra: Sequence[str] = ()) -> str:
    """Hash of a config as mmengine resolves it (its bases included) plus ``extra`` strings."""
    from mmengine.config import Config

    text = Config.fromfile(config).pretty_text + '\n'.join(extra)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_digest(config: str, seed: int, cfg_options: Sequence[str] = ()) -> str:
    """Hash of what a run trains: the config with ``cfg_options`` merged in, and the seed.

    Equivalent settings hash alike (an option that restates the config's value changes
    nothing), so a finished run is reused exactly when it trained the same thing. A distiller's
    student / teacher given as config paths count by their resolved content, and its teacher
    checkpoint by the file's bytes: a retrained teacher makes every distillation run new."""
    import argparse

    from mmengine.config import Config, DictAction

    cfg = Config.fromfile(config)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *cfg_options]).cfg_options)
    parts = [cfg.pretty_text, f'seed={seed}']
    model = cfg.get('model', {})
    for key in ('student', 'teacher'):
        path = model.get(key)
        if isinstance(path, str) and osp.isfile(path):
            parts.append(f'{key}={config_digest(path)}')
    ckpt = model.get('teacher_ckpt')
    if isinstance(ckpt, str) and osp.isfile(osp.join(ROOT, ckpt)):
        with open(osp.join(ROOT, ckpt), 'rb') as f:
            parts.append(f'teacher_ckpt={hashlib.sha256(f.read()).hexdigest()[:12]}')
    return hashlib.sha256('\n'.join(parts).encode()).hexdigest()[:12]


def run_one(
    config: str,
    work_dir: str,
    seed: int,
    cfg_options: Sequence[str] = (),
    log_file: Optional[str] = None,
    reuse: bool = True,
    threads: Optional[int] = None,
) -> Dict[str, float]:
    """Train ``config`` with ``seed`` in a subprocess (``tools/train.py --final-metrics``), then
    evaluate the final model on the test split; returns the test metrics (read back from
    ``work_dir/final_metrics.json``).

    With ``reuse``, a finished run of the same :func:`run_digest` (same config, options and
    seed) is not trained again: the one in ``work_dir`` (e.g. of an interrupted table), or one
    recorded by another sweep or table in ``run_index.json`` two levels above ``work_dir``
    (``work_dirs/`` for ``work_dirs/<sweep or table>/<run>``), so a sweep's chosen setting is
    reused by the table's rows. Reused metrics carry ``reused=True``. A work dir that trained
    anything else is retrained. ``threads`` sets the subprocess's ``OMP_NUM_THREADS`` (default:
    inherited)."""
    done_file = osp.join(work_dir, 'final_metrics.json')
    digest = run_digest(config, seed, cfg_options)
    if reuse:
        for candidate in (done_file, _indexed_run(work_dir, digest)):
            if candidate and osp.isfile(candidate):
                with open(candidate) as f:
                    metrics = json.load(f)
                if metrics.get('run_digest') == digest:
                    metrics.setdefault('wall_s', float('nan'))
                    metrics['reused'] = True
                    return metrics
    os.makedirs(work_dir, exist_ok=True)
    cmd = [
        _python(),
        osp.join(ROOT, 'tools', 'train.py'),
        config,
        '--work-dir',
        work_dir,
        '--seed',
        str(seed),
        '--final-metrics',
    ]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    log_file = log_file or osp.join(work_dir, 'run.log')
    start = time.time()
    name = osp.basename(osp.normpath(work_dir))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        next_report = start + 30
        while proc.poll() is None:
            time.sleep(1.0)
            if time.time() >= next_report:  # every 30 s, however long a poll took
                next_report += 30
                report_progress(name, log_file, time.time() - start)
    if proc.returncode != 0:
        with open(log_file) as f:
            tail = f.read()[-4000:]
        raise RuntimeError(f'run failed ({" ".join(cmd)}); log {log_file}:\n{tail}')
    with open(done_file) as f:
        metrics = json.load(f)
    metrics['wall_s'] = time.time() - start
    metrics['run_digest'] = digest
    with open(done_file, 'w') as f:
        json.dump(metrics, f, indent=1, sort_keys=True)
    _index_run(work_dir, digest, done_file)
    metrics['reused'] = False
    return metrics


def check_one_teacher(runs: Dict[str, Sequence[Dict[str, float]]]) -> Optional[str]:
    """Refuse to put runs of different teachers in one table: ``runs`` maps a row name to its
    runs' metrics (``teacher_sha256`` as written by ``tools/train.py --final-metrics``; runs
    without a teacher, e.g. the student alone, are left out). Returns the one teacher's
    SHA-256 (None if no row has one).

    Raises:
        ValueError: naming the rows of each teacher found.
    """
    teachers: Dict[str, List[str]] = {}
    for name, metrics in runs.items():
        for m in metrics:
            sha = m.get('teacher_sha256') or ''
            if sha and sha != 'random':
                teachers.setdefault(sha, [])
                if name not in teachers[sha]:
                    teachers[sha].append(name)
    if len(teachers) > 1:
        listing = '; '.join(f'{sha[:12]}: {", ".join(names)}' for sha, names in teachers.items())
        raise ValueError(f'the runs of this table were made with different teachers ({listing})')
    return next(iter(teachers), None)


def _train_indices(cfg) -> List[int]:
    """Indices (into the training dataset without ``indices``) that the config trains on."""
    from mmengine.registry import DATASETS, init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmengine'))
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    indices = ds_cfg.pop('indices', None)
    ds_cfg.pop('pipeline', None)
    total = len(DATASETS.build(ds_cfg))
    if indices is None:
        return list(range(total))
    if isinstance(indices, int):
        return list(range(min(indices, total)))
    return [int(i) for i in indices]


def split_quiz(cfg, fraction: float, seed: int = 0):
    """``(train indices, quiz indices)``: a seeded ``fraction`` of the config's training
    instances held out as the quiz split, the rest kept for training (sorted)."""
    if not 0 < fraction < 1:
        raise ValueError(f'--quiz-fraction must be in (0, 1), got {fraction}')
    split = getattr(cfg.train_dataloader.dataset, 'split', 'train')
    if split in ('val', 'test'):
        raise ValueError(f'the quiz split must come from the training source, got split={split!r}')
    from rlkd_mm.datasets.quiz_split import quiz_split

    return quiz_split(_train_indices(cfg), fraction, seed)


def quiz_holdout_options(config: str, fraction: float, seed: int = 0) -> List[str]:
    """The cfg option that trains ``config`` without its quiz split (see :func:`split_quiz`):
    tables and sweeps pass it to every row, so that the headroom oracle's rows, which need the
    quiz split, and every other row train on the same images. A config whose training set is a
    ``rlkd_mm.QuizSplitDataset`` holds its quiz split out itself: no option (its fraction and
    seed must agree)."""
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    dataset = cfg.train_dataloader.dataset
    if dataset.get('type') in ('rlkd_mm.QuizSplitDataset', 'QuizSplitDataset'):
        own = (float(dataset.get('fraction', 0.1)), int(dataset.get('seed', 0)))
        if own != (float(fraction), int(seed)):
            raise ValueError(
                f'{config} holds out its own quiz split (fraction, seed) = {own}, not the '
                f"table's ({fraction}, {seed})"
            )
        return []
    train, _ = split_quiz(cfg, fraction, seed)
    return [f'train_dataloader.dataset.indices=[{",".join(map(str, train))}]']


def run_index_file(work_dir: str) -> str:
    """The run index shared by the runs whose work dirs lie two levels below the same folder."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(work_dir))), 'run_index.json')


def _read_run_index(work_dir: str) -> Dict[str, str]:
    try:
        with open(run_index_file(work_dir)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _indexed_run(work_dir: str, digest: str) -> Optional[str]:
    """The ``final_metrics.json`` of a finished run with this digest, if one is recorded."""
    return _read_run_index(work_dir).get(digest)


def _index_run(work_dir: str, digest: str, done_file: str) -> None:
    # read-modify-write under an exclusive lock: parallel runs (``run_many``) and concurrent
    # tables share the index (fcntl is POSIX-only: imported here, so that importing
    # ``rlkd_mm.apis`` works everywhere)
    import fcntl

    path = run_index_file(work_dir)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = _read_run_index(work_dir)
        index[digest] = osp.abspath(done_file)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(index, f, indent=1, sort_keys=True)
        os.replace(tmp, path)


def run_many(
    specs: Sequence[Dict],
    jobs: int = 1,
    on_done: Optional[Callable[[int, Dict[str, float]], None]] = None,
) -> List[Dict[str, float]]:
    """``run_one(**spec)`` for every spec, ``jobs`` at a time; returns the metrics in the order
    of ``specs``. With ``jobs > 1`` each subprocess gets ``OMP_NUM_THREADS = cores // jobs``
    (at least 1), so the runs share the cores instead of oversubscribing them; the results of a
    run do not depend on ``jobs`` beyond float summation order. ``on_done(i, metrics)`` is called
    as each run finishes (one at a time)."""
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    results: List[Optional[Dict[str, float]]] = [None] * len(specs)
    lock = threading.Lock()

    def finish(i, metrics):
        results[i] = metrics
        if on_done is not None:
            with lock:
                on_done(i, metrics)

    if jobs == 1:
        for i, spec in enumerate(specs):
            finish(i, run_one(**spec))
        return results
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(run_one, **dict(spec, threads=spec.get('threads', threads))): i
            for i, spec in enumerate(specs)
        }
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return results


_PROGRESS = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\].*?eta: (\S+)')


def report_progress(name: str, log_file: str, elapsed: float) -> None:
    """Print where a training subprocess is (epoch, iteration, mmengine's ETA) from its log."""
    try:
        with open(log_file, errors='replace') as f:
            matches = _PROGRESS.findall(f.read()[-20000:])
    except OSError:
        return
    where = 'starting'
    if matches:
        epoch, it, total, eta = matches[-1]
        where = f'epoch {epoch}, iteration {it}/{total}, ETA {eta}'
    print(f'[run] {name}: {where} ({elapsed:.0f} s)', flush=True)


def ensure_digits_det(data: str = 'data/digits_det') -> None:
    """Write the DigitsDet COCO set to ``data`` (relative to the repository) unless present."""
    if osp.isfile(osp.join(ROOT, data, 'annotations', 'instances_test.json')):
        return
    print(f'[data] writing {data}', flush=True)
    subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/make_digits_det.py'),
            '--out',
            osp.join(ROOT, data),
        ],
        check=True,
        cwd=ROOT,
    )


def ensure_teacher(
    config: str, ckpt_path: str, metric_key: str, cfg_options: Sequence[str] = ()
) -> Dict[str, float]:
    """Make ``ckpt_path`` hold a teacher trained with ``config`` (seed 0).

    Trained teachers are cached in ``$RLKD_MM_CACHE/teachers`` under the hash of the resolved
    config, so a second call (or another checkout) reuses them. Returns the teacher's test
    metrics and training time as recorded when it was trained.
    """
    digest = config_digest(config, cfg_options)
    name = osp.splitext(osp.basename(config))[0]
    cache_dir = osp.join(CACHE, 'teachers', f'{name}-{digest}')
    cached_ckpt = osp.join(cache_dir, 'teacher.pth')
    cached_metrics = osp.join(cache_dir, 'metrics.json')
    if not (osp.isfile(cached_ckpt) and osp.isfile(cached_metrics)):
        work_dir = osp.join(ROOT, 'work_dirs', 'teachers', name)
        print(f'[teacher] training {name} (cached afterwards in {cache_dir})', flush=True)
        metrics = run_one(config, work_dir, seed=0, cfg_options=cfg_options)
        os.makedirs(cache_dir, exist_ok=True)
        shutil.copyfile(osp.join(work_dir, 'final_model.pth'), cached_ckpt)
        with open(cached_metrics, 'w') as f:
            json.dump(metrics, f, indent=1, sort_keys=True)
    else:
        print(f'[teacher] reusing cached {name} from {cache_dir}', flush=True)
    os.makedirs(osp.dirname(osp.abspath(ckpt_path)), exist_ok=True)
    shutil.copyfile(cached_ckpt, ckpt_path)
    with open(cached_metrics) as f:
        metrics = json.load(f)
    if metric_key not in metrics:
        raise KeyError(f'cached teacher metrics lack {metric_key}: {sorted(metrics)}')
    return metrics


def mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)
