"""The documented `digits_table.py` commands select the rows they report.

The commands live next to their tables in the config READMEs (``configs/*/README.md``) and in
``docs/``. Each `--only` argument must name a row of the command's task (or a config file of one):
a renamed row would otherwise make a documented command run nothing for that name, silently.
"""

import glob
import os.path as osp
import re
import shlex

import pytest

from tools.benchmark.digits_table import build_parser, select_rows

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

DOC_FILES = sorted(
    [osp.join(ROOT, 'README.md')]
    + glob.glob(osp.join(ROOT, 'configs', '*', 'README.md'))
    + glob.glob(osp.join(ROOT, 'docs', '*.md'))
)


def _read_docs():
    text = []
    for path in DOC_FILES:
        with open(path, encoding='utf-8') as f:
            text.append(f.read())
    return '\n'.join(text)


def _table_commands():
    """The documented digits_table.py invocations, as the tool's own parser reads them."""
    text = _read_docs()
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        # join continuation lines, then keep the digits_table invocations
        for line in block.replace('\\\n', ' ').splitlines():
            if 'tools/benchmark/digits_table.py' in line:
                argv = shlex.split(line.split('#')[0])
                commands.append(argv[argv.index('tools/benchmark/digits_table.py') + 1 :])
    return commands


COMMANDS = _table_commands()


def test_the_digits_readme_has_the_table_commands():
    with open(osp.join(ROOT, 'configs', 'digits', 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert 'tools/benchmark/digits_table.py --task det' in text
    assert 'tools/benchmark/digits_table.py --task cls' in text


def test_the_docs_have_table_commands_with_only():
    # the DigitsDet core, peers and earlier-setting tables select their rows by name
    assert sum(build_parser().parse_args(c).only is not None for c in COMMANDS) >= 3, COMMANDS


@pytest.mark.parametrize('argv', COMMANDS, ids=lambda a: ' '.join(a)[:80])
def test_every_only_name_selects_a_row(argv):
    args = build_parser().parse_args(argv)  # an unknown option or task fails here
    for name in args.only or []:
        assert select_rows(args.task, [name]), f'{name!r} is no row of the {args.task} table'
