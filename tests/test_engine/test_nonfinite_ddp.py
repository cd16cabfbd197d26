"""NonFiniteSkipOptimWrapper under 2-process gloo DDP: a NaN loss on one rank skips both."""

import os

import pytest
import torch
from gloo_helpers import gloo_group, spawn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rlkd_mm.engine.optimizers import NonFiniteSkipOptimWrapper


def _worker(rank, world_size, port, out_dir):
    with gloo_group(rank, world_size, port, timeout_s=60):
        torch.manual_seed(0)
        model = DistributedDataParallel(nn.Linear(3, 1))
        wrapper = NonFiniteSkipOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1), max_consecutive_nonfinite=5
        )
        skipped, weights = [], []
        for step in range(3):
            x = torch.ones(4, 3)
            loss = model(x).pow(2).mean()
            if step == 1 and rank == 1:
                loss = loss * float('nan')  # only rank 1 sees a non-finite loss
            wrapper.update_params(loss)
            skipped.append(wrapper.skipped_last)
            weights.append(model.module.weight.detach().clone())
        torch.save(dict(skipped=skipped, weights=weights), os.path.join(out_dir, f'r{rank}.pt'))


@pytest.mark.slow
def test_ranks_agree_to_skip_a_non_finite_step(tmp_path):
    spawn(_worker, str(tmp_path))
    r0 = torch.load(tmp_path / 'r0.pt', weights_only=True)
    r1 = torch.load(tmp_path / 'r1.pt', weights_only=True)
    assert r0['skipped'] == r1['skipped'] == [False, True, False]
    for w0, w1 in zip(r0['weights'], r1['weights']):
        assert torch.equal(w0, w1) and torch.isfinite(w0).all()
    assert torch.equal(r0['weights'][0], r0['weights'][1])  # the skipped step changed nothing
    assert not torch.equal(r0['weights'][1], r0['weights'][2])
