"""Packaging for rlkd_mm.

Like mmdet, the package carries its ``configs/``, ``tools/`` and ``model-index.yml`` inside
``rlkd_mm/.mim`` so that ``mim train rlkd_mm configs/...`` works from an installed package and
``mim search rlkd_mm`` lists the configs (the index imports each family's ``metafile.yml``).
"""

import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_version():
    scope = {}
    with open(osp.join(HERE, 'rlkd_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    path = osp.join(HERE, 'requirements', name)
    with open(path) as f:
        lines = [ln.split('#')[0].strip() for ln in f]
    return [ln for ln in lines if ln]


def add_mim_extension():
    """Link (develop) or copy (build/install) the MIM_FILES into rlkd_mm/.mim."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'install', 'build')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'rlkd_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='rlkd_mm',
        version=read_version(),
        description='Instance-temperature knowledge distillation (RLKD) for mmdet and mmpretrain',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md'))
        else '',
        long_description_content_type='text/markdown',
        keywords='knowledge distillation, reinforcement learning, object detection, OpenMMLab',
        packages=find_packages(include=('rlkd_mm', 'rlkd_mm.*')),
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=read_requirements('runtime.txt'),
        extras_require={
            'mim': read_requirements('mminstall.txt'),
            'tests': read_requirements('tests.txt'),
            'all': read_requirements('mminstall.txt') + read_requirements('tests.txt'),
        },
        zip_safe=False,
    )
