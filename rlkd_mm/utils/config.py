"""Resolving model configs given as dicts, local paths or ``pkg::path`` strings."""

import os.path as osp
from typing import List, Union

from mmengine.config import Config, ConfigDict

PACKAGE_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _config_roots(package: str) -> List[str]:
    """Folders where ``package``'s configs live: the installed ``.mim`` copy and, for rlkd_mm
    in a source checkout, the repository's ``configs``."""
    from mmengine.utils import get_installed_path

    roots = [osp.join(get_installed_path(package), '.mim', 'configs')]
    if package == 'rlkd_mm':
        roots.append(osp.join(osp.dirname(PACKAGE_ROOT), 'configs'))
    return roots


def resolve_config_path(path: str) -> str:
    """Turn ``'mmdet::gfl/x.py'``, an absolute path or a path relative to the current folder or
    to rlkd_mm's ``configs/`` into an existing file, or raise ``FileNotFoundError`` listing the
    places tried."""
    if '::' in path:
        package, rel = path.split('::', 1)
        candidates = [osp.join(root, rel) for root in _config_roots(package)]
    elif osp.isabs(path):
        candidates = [path]
    else:
        candidates = [osp.abspath(path)]
        candidates += [osp.join(root, path) for root in _config_roots('rlkd_mm')]
        # a path such as 'configs/digits/x.py' given from the repository root
        candidates.append(osp.join(osp.dirname(PACKAGE_ROOT), path))
    for candidate in candidates:
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'config {path!r} not found; tried: {", ".join(candidates)}')


def load_model_config(cfg: Union[str, dict, ConfigDict]) -> ConfigDict:
    """Return the ``model`` dict of a config file, or ``cfg`` itself when it is a dict."""
    if isinstance(cfg, (dict, ConfigDict)):
        return ConfigDict(cfg)
    if not isinstance(cfg, str):
        raise TypeError(f'a model config must be a dict or a path, got {type(cfg).__name__}')
    file_cfg = Config.fromfile(resolve_config_path(cfg))
    if 'model' not in file_cfg:
        raise KeyError(f'config {cfg!r} has no `model` entry')
    return file_cfg.model
