"""Helpers for the agent's own optimizers (kept out of the student's)."""

from typing import Any, List

import torch
from torch import Tensor, nn


def optimizer_state_tensors(optimizer: torch.optim.Optimizer, module: nn.Module) -> List[Tensor]:
    """The per-parameter state tensors of ``optimizer`` for ``module``'s parameters, in a fixed
    order (Adam moments; not the CPU step counters)."""
    out = []
    for param in module.parameters():
        for key, value in sorted(optimizer.state.get(param, {}).items()):
            if isinstance(value, Tensor) and key != 'step':
                out.append(value)
    return out


def optimizer_to(optimizer: torch.optim.Optimizer, device: Any) -> None:
    """Move ``optimizer``'s state tensors to ``device`` in place."""
    for state in optimizer.state.values():
        for key, value in state.items():
            # Adam keeps its step counter on the CPU unless capturable/fused.
            if isinstance(value, Tensor) and key != 'step':
                state[key] = value.to(device)
