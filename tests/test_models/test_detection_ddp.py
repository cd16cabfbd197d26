"""SingleStageDetDistiller under 2-process gloo DDP on CPU, one rank without positives.

Every rank must make the same collective calls whatever its batch holds; a rank that skipped the
all-reduce of the positive count (because it had none) would pair its next collective with the
other rank's count and hang or mix values.
"""

import os

import pytest
import torch
import torch.distributed as dist
from gloo_helpers import gloo_group, spawn
from mmdet.utils import register_all_modules
from mmengine.registry import DefaultScope
from test_models.test_detection_distillers import build_single, make_batch

ITEMS = {0: (3, 2), 1: (0, 0)}  # rank 1's images have no ground truth, hence no positives


def _losses(rank):
    distiller = build_single('gfl', seed=0)
    data = make_batch(distiller, num_items=ITEMS[rank])
    losses = distiller.loss(data['inputs'], data['data_samples'])
    return {k: float(sum(v) if isinstance(v, list) else v) for k, v in losses.items()}


def _worker(rank, world_size, port, out_dir):
    with gloo_group(rank, world_size, port, timeout_s=60):
        register_all_modules(init_default_scope=False)
        with DefaultScope.overwrite_default_scope('mmdet'):
            losses = _losses(rank)
        # a collective after the forward: it pairs up only if both ranks made the same calls
        marker = torch.tensor([float(rank + 1)])
        dist.all_reduce(marker)
        losses['marker'] = float(marker)
        torch.save(losses, os.path.join(out_dir, f'rank{rank}.pt'))


@pytest.mark.slow
def test_rank_without_positives_keeps_collectives_paired(tmp_path):
    spawn(_worker, str(tmp_path))
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    assert r0['marker'] == r1['marker'] == 3.0
    assert r0['num_kd_instances'] > 0
    assert r1['num_kd_instances'] == 0 and r1['loss_kd'] == 0 and r1['loss_ld'] == 0
    # The class-score KD is normalised by the positives averaged over ranks, (P0 + 0) / 2, so
    # rank 0's value is twice its single-process value (normalised by P0).
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        single = _losses(0)
    assert single['num_kd_instances'] == r0['num_kd_instances']
    assert r0['loss_kd'] == pytest.approx(2 * single['loss_kd'], rel=1e-5)
    # LD is summed over the positives, not normalised: unchanged by the other rank
    assert r0['loss_ld'] == pytest.approx(single['loss_ld'], rel=1e-5)
