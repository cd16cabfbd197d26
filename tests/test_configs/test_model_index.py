"""The model index: every shipped config is listed in its family's ``metafile.yml``, every result
listed there is a number of that family's README, and ``mim search rlkd_mm`` finds them all in
the installed package (``rlkd_mm/.mim/model-index.yml``, made by ``setup.py``)."""

import glob
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = sorted(
    osp.basename(d)
    for d in glob.glob(osp.join(ROOT, 'configs', '*'))
    if osp.isdir(d) and osp.basename(d) != '_base_'
)


def _load(path):
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def _models():
    """(family, model entry) for every model of every metafile the index imports."""
    out = []
    for path in _load('model-index.yml')['Import']:
        family = path.split('/')[1]
        out += [(family, m) for m in _load(path)['Models']]
    return out


def _mim():
    """The `mim` entry point of the running interpreter's environment (e.g. `.venv/bin/mim`)."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    return mim if osp.isfile(mim) else shutil.which('mim')


def test_the_index_imports_one_metafile_per_family():
    imports = _load('model-index.yml')['Import']
    assert sorted(imports) == [f'configs/{f}/metafile.yml' for f in FAMILIES]


@pytest.mark.parametrize('family', FAMILIES)
def test_every_config_of_a_family_is_listed_once(family):
    meta = _load(f'configs/{family}/metafile.yml')
    configs = sorted(
        osp.relpath(p, ROOT).replace(osp.sep, '/')
        for p in glob.glob(osp.join(ROOT, 'configs', family, '*.py'))
    )
    listed = [m['Config'] for m in meta['Models']]
    assert sorted(listed) == configs
    collections = {c['Name'] for c in meta['Collections']}
    for m in meta['Models']:
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        assert m['In Collection'] in collections, m['Name']
    for c in meta['Collections']:
        assert osp.isfile(osp.join(ROOT, c['README'])), c['README']


def test_model_names_are_unique():
    names = [m['Name'] for _, m in _models()]
    assert len(names) == len(set(names))


def test_every_result_is_a_number_of_the_family_readme():
    # a listed result must be traceable to a table (and its command) in the family's README
    for family, m in _models():
        with open(osp.join(ROOT, 'configs', family, 'README.md'), encoding='utf-8') as f:
            readme = f.read()
        for result in m.get('Results') or []:
            for metric, value in result['Metrics'].items():
                assert re.search(rf'(?<![\d.]){value:.2f}(?!\d)', readme), (m['Name'], metric)


HINT = 'reinstall the package (tools/setup_env.sh) so that rlkd_mm/.mim/model-index.yml exists'


def _mim_search(*args):
    mim = _mim()
    assert mim, 'openmim is not installed (requirements/tests.txt)'
    proc = subprocess.run(
        [mim, 'search', 'rlkd_mm', *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, f'{proc.stdout}\n{proc.stderr}\n{HINT}'
    return proc.stdout


def test_mim_search_lists_every_config():
    out = _mim_search()
    found = set(re.findall(r'^config id: (\S+)$', out, flags=re.M))
    assert found == {m['Name'] for _, m in _models()}, HINT


def test_mim_search_shows_a_listed_result():
    out = _mim_search('--config', 'gfl_ld_rlkd')
    expected = next(m for _, m in _models() if m['Name'] == 'gfl_ld_rlkd')
    value = expected['Results'][0]['Metrics']['box AP']
    assert re.search(rf'^digitsdet/box_ap\s+{value}$', out, flags=re.M), out
