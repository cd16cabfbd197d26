import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # `tools` helpers importable in tests


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def repo_root():
    return ROOT


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Tests that call ``init_default_scope`` must not change the scope later tests see."""
    from mmengine.registry import DefaultScope

    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
