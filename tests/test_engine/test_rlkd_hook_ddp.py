"""RLKDHook under 2-process gloo DDP on CPU: agents stay bitwise identical across ranks."""

import os

import pytest
import torch
from gloo_helpers import gloo_group, spawn
from torch.nn.parallel import DistributedDataParallel

from rlkd_mm.engine import RLKDHook
from rlkd_mm.testing import FakeRunner, LinearDistiller

IN_DIM, NUM_CLASSES, BATCH, ITERS = 6, 4, 8, 12


def _perturb_after_update(agent):
    """Make this rank's update differ slightly, as nondeterministic CUDA kernels can."""
    update = agent.update

    def perturbed(*args, **kwargs):
        stats = update(*args, **kwargs)
        with torch.no_grad():
            for param in agent.parameters():
                param.add_(1e-4)
            agent.norm.mean.add_(1e-4)
            agent.calibration_learned.fill_(1.0 - float(agent.calibration_learned))
            for state in agent.optimizer.state.values():
                state['exp_avg'].add_(1e-4)
        return stats

    agent.update = perturbed


def _spy_rewards(agent, record):
    """Record what each rank stores and what every update learns from."""
    store, update = agent.store, agent.update

    def spy_store(step, batch_reward, *args, **kwargs):
        rewards = kwargs.get('instance_rewards')
        record['local'].append(
            (kwargs.get('iteration'), batch_reward, step.num, None if rewards is None else rewards)
        )
        return store(step, batch_reward, *args, **kwargs)

    def spy_update(transitions=None):
        items = list(transitions) if transitions is not None else agent.buffer.transitions()
        record['merged'].append(
            [
                (t.iteration, t.batch_reward, t.step.num, t.instance_rewards is not None)
                for t in items
            ]
        )
        return update(transitions)

    agent.store, agent.update = spy_store, spy_update


def _worker(rank, world_size, port, out_dir, perturb_rank=None, reward='batch'):
    with gloo_group(rank, world_size, port):
        torch.manual_seed(rank)
        # Different agent seeds per rank on purpose: the hook must broadcast rank 0's agent.
        model = LinearDistiller(agent=dict(seed=rank, minibatch_size=8, explore_updates=1))
        if rank == perturb_rank:
            _perturb_after_update(model.temperature.agent)
        record = dict(local=[], merged=[])
        _spy_rewards(model.temperature.agent, record)
        ddp = DistributedDataParallel(model)
        runner = FakeRunner(ddp, ITERS)
        hook = RLKDHook(reward=reward, reward_interval=1, update_interval=3, warmup_iters=1)
        hook.before_train(runner)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        temps = []
        for i in range(ITERS):
            gen = torch.Generator().manual_seed(1000 * rank + i)  # different data per rank
            x = torch.randn(BATCH, IN_DIM, generator=gen)
            y = torch.randint(0, NUM_CLASSES, (BATCH,), generator=gen)
            runner.iter = i
            hook.before_train_iter(runner, i)
            loss, temp = ddp(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            hook.after_train_iter(runner, i)
            temps.append(temp.detach())
        agent = model.temperature.agent
        flat = torch.cat(
            [t.detach().flatten().double() for t in agent.tensors_to_sync(include_optimizer=True)]
        )
        torch.save(
            dict(
                flat=flat,
                updates=agent.update_count,
                temps=torch.stack(temps),
                minibatch_state=agent.minibatch_generator.get_state(),
                in_ddp=sum(p.numel() for p in ddp.parameters()),
                local=record['local'],
                merged=record['merged'],
                scale_count=float(agent.reward_scale.count),
            ),
            os.path.join(out_dir, f'rank{rank}.pt'),
        )


@pytest.mark.slow
def test_agents_identical_across_ranks(tmp_path):
    spawn(_worker, str(tmp_path))
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    # stored from iteration 1 on; updates at 4, 8 (the step acted before each is dropped)
    assert r0['updates'] == r1['updates'] == 2
    assert torch.equal(r0['flat'], r1['flat'])
    assert torch.equal(r0['minibatch_state'], r1['minibatch_state'])
    # The ranks saw different data and drew different noise, so they acted differently.
    assert not torch.equal(r0['temps'][1:], r1['temps'][1:])
    # The DDP wrapper holds the distiller's own parameters (student, frozen teacher), no agent ones.
    assert r0['in_ddp'] == 2 * (IN_DIM * NUM_CLASSES + NUM_CLASSES)


@pytest.mark.slow
def test_update_drift_on_one_rank_is_overwritten_by_rank_0(tmp_path):
    # Rank 1's updates come out slightly different (parameters, normalisation, calibration
    # choice, optimizer moments); the broadcast after each update must undo it.
    spawn(_worker, str(tmp_path), 1)
    r0 = torch.load(tmp_path / 'rank0.pt', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pt', weights_only=True)
    assert r0['updates'] == r1['updates'] == 2
    assert torch.equal(r0['flat'], r1['flat'])


def _load(tmp_path):
    return [torch.load(tmp_path / f'rank{r}.pt', weights_only=False) for r in (0, 1)]


@pytest.mark.slow
def test_batch_reward_is_stored_once_per_iteration(tmp_path):
    spawn(_worker, str(tmp_path), None, 'batch')
    r0, r1 = _load(tmp_path)
    # Both ranks stored the same global batch reward for the same iterations.
    assert [(i, r) for i, r, _, _ in r0['local']] == [(i, r) for i, r, _, _ in r1['local']]
    merged = [item for update in r0['merged'] for item in update]
    last = max(m[0] for m in merged)  # later iterations wait for the next update
    local_n = {}
    for rec in (r0, r1):
        for iteration, _, num, _ in rec['local']:
            if iteration <= last:
                local_n[iteration] = local_n.get(iteration, 0) + num
    assert merged == [item for update in r1['merged'] for item in update]
    # One transition per iteration, holding both ranks' instances and the global reward once.
    assert [i for i, _, _, _ in merged] == sorted(local_n)
    assert sum(r for _, r, _, _ in merged) == pytest.approx(
        sum(r for i, r, _, _ in r0['local'] if i in local_n)
    )
    assert all(num == local_n[i] for i, _, num, _ in merged)
    assert r0['scale_count'] == r1['scale_count'] == sum(n for _, _, n, _ in merged)
    assert torch.equal(r0['flat'], r1['flat'])


@pytest.mark.slow
def test_instance_rewards_stay_local_and_agents_agree(tmp_path):
    spawn(_worker, str(tmp_path), None, 'instance')
    r0, r1 = _load(tmp_path)
    assert r0['updates'] == r1['updates'] == 2
    merged = [item for update in r0['merged'] for item in update]
    last = max(m[0] for m in merged)
    learned = [rec for r in (r0, r1) for rec in r['local'] if rec[0] <= last]
    # Every rank's transition is kept with its own per-instance rewards.
    assert len(merged) == len(learned) == 12  # 6 iterations (1-3, 5-7) x 2 ranks
    stored_sum = sum(float(r.sum()) for _, _, _, r in learned)
    assert sum(r for i, r, _, _ in merged) == pytest.approx(stored_sum, abs=1e-5)
    assert all(flag for *_, flag in merged)
    assert r0['scale_count'] == r1['scale_count'] == sum(n for _, _, n, _ in merged)
    assert torch.equal(r0['flat'], r1['flat'])
