"""The README's `digits_table.py` commands select the rows they report.

Each `--only` argument must name a row of the command's task (or a config file of one): a
renamed row would otherwise make a documented command run nothing for that name, silently.
"""

import os.path as osp
import re
import shlex
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.benchmark.digits_table import TASKS  # noqa: E402


def _table_commands():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        # join continuation lines, then keep the digits_table invocations
        for line in block.replace('\\\n', ' ').splitlines():
            if 'tools/benchmark/digits_table.py' in line:
                commands.append(shlex.split(line.split('#')[0]))
    return commands


COMMANDS = _table_commands()


def _option(argv, name):
    """The values that follow ``name`` up to the next option."""
    if name not in argv:
        return []
    values = []
    for token in argv[argv.index(name) + 1 :]:
        if token.startswith('--'):
            break
        values.append(token)
    return values


def test_the_readme_has_table_commands_with_only():
    # the DigitsDet core, peers and earlier-setting tables select their rows by name
    assert sum(bool(_option(c, '--only')) for c in COMMANDS) >= 3, COMMANDS


@pytest.mark.parametrize('argv', COMMANDS, ids=lambda a: ' '.join(a)[:80])
def test_every_only_name_selects_a_row(argv):
    task = (_option(argv, '--task') or ['cls'])[0]
    assert task in TASKS, task
    rows = TASKS[task]['rows']
    names = {row[0] for row in rows}
    configs = {osp.basename(row[1]) for row in rows}
    for name in _option(argv, '--only'):
        assert name in names or name in configs, f'{name!r} is no row of the {task} table'
