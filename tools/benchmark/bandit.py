"""A contextual bandit driven through ``RLKDHook``: the best temperature of an instance is known.

    python tools/benchmark/bandit.py --reward instance batch --seeds 0 1

The command line of :mod:`rlkd_mm.testing.bandit` (its docstring describes the bandit); one
JSON line per run.
"""

import argparse
import json

from rlkd_mm.testing import T_STAR, run_bandit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--reward', nargs='+', default=['instance', 'influence', 'batch', 'counterfactual']
    )
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--iterations', type=int, default=600)
    parser.add_argument('--reward-interval', type=int, default=8)
    args = parser.parse_args()
    for reward in args.reward:
        for seed in args.seeds:
            model, hook = run_bandit(
                reward, seed, args.iterations, reward_interval=args.reward_interval
            )
            confident, unconfident = model.greedy_temperatures()
            row = dict(
                reward=reward,
                seed=seed,
                reward_interval=hook.reward_interval,
                agent_updates=model.temperature.agent.update_count,
                greedy_t=dict(confident=round(confident, 2), unconfident=round(unconfident, 2)),
                best_t=dict(confident=T_STAR[0], unconfident=T_STAR[1]),
            )
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
