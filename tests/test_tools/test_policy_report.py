"""tools/analysis/policy_report.py: the statistics it prints."""

import pytest
import torch

from rlkd_mm.agent import STATE_DIM, STATE_NAMES
from tools.analysis.policy_report import report, reward_signal, spearman


def test_spearman_is_a_rank_correlation():
    x = torch.arange(20.0)
    assert spearman(x, x**3) == 1.0  # monotone, not linear
    assert spearman(x, -torch.exp(x / 5)) == -1.0
    # ranks with ties: x = [1, 1, 2, 3] ranks [1.5, 1.5, 3, 4], y ranks [1, 2, 3, 4]
    expected = 0.9486832980505138  # Pearson of those ranks, by hand: 4.5 / sqrt(4.5 * 5)
    assert abs(spearman(torch.tensor([1.0, 1.0, 2.0, 3.0]), torch.arange(4.0)) - expected) < 1e-12
    assert spearman(torch.ones(10), torch.arange(10.0)) == 0.0


def test_report_sees_a_state_dependent_policy_and_a_flat_one():
    gen = torch.Generator().manual_seed(1)
    states = torch.rand(200, STATE_DIM, generator=gen)
    conf = states[:, STATE_NAMES.index('teacher_gt_prob')]
    dependent = report(states, 2.0 + 6.0 * conf)
    assert dependent['spearman']['teacher_gt_prob'] == 1.0
    assert not dependent['flat'] and 'progress' not in dependent['spearman']
    flat = report(states, 4.0 + 0.01 * torch.randn(200, generator=gen))
    assert flat['flat'] and abs(flat['t_mean'] - 4.0) < 0.01


def test_reward_signal_groups_centred_rewards_by_temperature():
    rows = torch.tensor([[1.5, -1.0], [1.2, -3.0], [4.5, 2.0], [4.1, 4.0], [9.0, 0.0]])
    bins = reward_signal(rows)
    assert [b['t_bin'] for b in bins] == [[1.0, 2.0], [4.0, 5.0]]  # bins of 1 value are left out
    assert bins[0]['mean'] == -2.0 and bins[1]['mean'] == 3.0
    assert abs(bins[0]['stderr'] - (2.0**0.5) / 2**0.5) < 1e-12


def test_equal_bins_cover_the_policy_range():
    from tools.analysis.policy_report import equal_bins

    edges = equal_bins(1.0, 3.0, 4)
    assert edges[:4] == (1.0, 1.5, 2.0, 2.5) and 3.0 < edges[4] < 3.0 + 1e-5
    rows = torch.tensor([[1.0, 1.0], [1.2, 3.0], [2.9, -1.0], [3.0, -3.0], [2.0, 0.0]])
    bins = reward_signal(rows, edges)
    # T = 3.0 (the range's top) lands in the last bin; [1.5, 2) and [2, 2.5) hold < 2 rewards
    assert [b['t_bin'] for b in bins] == [[1.0, 1.5], [2.5, 3.0]]
    assert [b['mean'] for b in bins] == [2.0, -2.0] and [b['count'] for b in bins] == [2, 2]
    with pytest.raises(ValueError, match='--bins must be >= 1'):
        equal_bins(1.0, 3.0, 0)


def test_action_signal_separates_what_the_noise_earns_by_teacher_confidence():
    """Planted: for confident instances the reward rises with the noise (a higher T pays), for
    unsure ones it falls; the state-dependent level (unsure instances improve more whatever
    their T) must not leak into the signal, as it does into reward_signal's T bins."""
    from tools.analysis.policy_report import action_signal

    gen = torch.Generator().manual_seed(0)
    n = 3000
    confidence = torch.rand(n, generator=gen)
    noise = torch.randn(n, generator=gen)
    sure = confidence > 0.5
    level = torch.where(sure, 0.0, 5.0)  # unsure instances improve more, whatever their T
    reward = level + torch.where(sure, 0.2, -0.2) * noise + 0.1 * torch.randn(n, generator=gen)
    temperature = 4.0 + noise - 2.0 * (~sure).float()  # the policy gives unsure ones lower T
    rows = torch.stack([temperature, reward - reward.mean(), noise, confidence], dim=1)
    signal = action_signal(rows)
    low, mid, high = signal['by_teacher_gt_prob']
    assert [g['count'] for g in (low, mid, high)] == [1000, 1000, 1000]
    assert low['teacher_gt_prob'][1] <= mid['teacher_gt_prob'][0]
    assert low['mean'] < -0.15 and high['mean'] > 0.15  # E[z * r] = -0.2 / +0.2
    assert abs(low['mean'] + 0.2) < 4 * low['stderr'] + 0.02
    assert signal['all']['count'] == n
    # the T bins see the state's level instead: low T looks far better
    bins = reward_signal(rows)
    assert bins[0]['mean'] > 1.0 > -1.0 > bins[-1]['mean']
    # explored instances only (NaN noise = mean action); a two-column record has no signal
    rows[:1500, 2] = float('nan')
    assert action_signal(rows)['all']['count'] == 1500
    assert action_signal(rows[:, :2]) is None


def test_action_signal_by_epoch_averages_the_logged_values(tmp_path):
    import json

    from tools.analysis.policy_report import action_signal_by_epoch, find_scalars_log

    ckpt = tmp_path / 'final_model.pth'
    ckpt.write_bytes(b'')
    assert find_scalars_log(str(ckpt)) is None
    lines = [
        dict(epoch=1, iter=10, loss=1.0),  # before the agent acts: no signal logged
        dict(epoch=1, iter=20, rlkd_action_signal=0.3),
        dict(epoch=1, iter=30, rlkd_action_signal=0.1),
        dict(epoch=2, iter=40, rlkd_action_signal=-0.2),
        dict(mode='val', epoch=2, accuracy=0.5),  # val lines carry no signal
    ]
    for stamp in ('20260101_000000', '20260102_000000'):  # the newest run log is read
        log = tmp_path / stamp / 'vis_data' / 'scalars.json'
        log.parent.mkdir(parents=True)
        log.write_text('\n'.join(json.dumps(x) for x in lines) + '\n')
    found = find_scalars_log(str(ckpt))
    assert found == str(tmp_path / '20260102_000000' / 'vis_data' / 'scalars.json')
    course = action_signal_by_epoch(found)
    assert course == [
        dict(epoch=1, mean=pytest.approx(0.2), log_lines=2),
        dict(epoch=2, mean=pytest.approx(-0.2), log_lines=1),
    ]


def test_report_of_multipliers_on_a_base_names_the_base_columns():
    from rlkd_mm.temperature.rl import BASE_STATE_NAMES

    names = STATE_NAMES + BASE_STATE_NAMES
    gen = torch.Generator().manual_seed(2)
    states = torch.rand(300, len(names), generator=gen)
    kd = states[:, names.index('base_kd_loss')]
    spread = report(states, torch.exp(0.5 * (kd - 0.5)), names=names, multiplier=True)
    assert spread['multiplier'] and not spread['flat']
    assert spread['spearman']['base_kd_loss'] == 1.0
    assert abs(spread['log_a_std'] - 0.5 * float(kd.std(unbiased=False))) < 1e-6
    near_one = report(
        states, 1.0 + 0.01 * torch.rand(300, generator=gen), names=names, multiplier=True
    )
    assert near_one['flat']  # a 1 % spread is one global multiplier


def test_label_noise_report_compares_the_relabelled_images_with_the_others():
    from tools.analysis.policy_report import label_noise_report

    a = torch.tensor([2.0, 2.0, 1.0, 0.5, 1.0, 0.5])
    noisy = torch.tensor([True, True, False, False, False, False])
    out = label_noise_report(a, noisy, multiplier=True)
    assert out['value']['noisy']['mean'] == 2.0 and out['value']['clean']['mean'] == 0.75
    assert abs(out['value']['gap'] - 1.25) < 1e-12
    # log a: noisy log 2, clean the mean of 0, -log 2, 0, -log 2
    log2 = float(torch.tensor(2.0, dtype=torch.float64).log())
    assert abs(out['log_a']['gap'] - 1.5 * log2) < 1e-6
    assert out['value']['noisy']['count'] == 2 and out['value']['clean']['count'] == 4
    assert 'log_a' not in label_noise_report(a, noisy, multiplier=False)
    with pytest.raises(ValueError, match='at least 2 noisy and 2 clean'):
        label_noise_report(a, torch.tensor([True, False, False, False, False, False]), False)
