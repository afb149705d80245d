"""Dice loss of the paper (eq. 9): ``1 - 2 sum(p g) / (sum p^2 + sum g^2)``."""

from __future__ import annotations

import torch

_SMOOTH = 1.0  # keeps the loss defined (and 0) on blocks without any gland


def dice_loss(probability: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss over the whole batch.

    Parameters
    ----------
    probability : (B, 1, D, H, W) tensor of float in [0, 1]
    target : same shape, 0/1
    """
    p = probability.float().reshape(-1)
    g = target.float().reshape(-1)
    return 1.0 - (2.0 * (p * g).sum() + _SMOOTH) / ((p * p).sum() + (g * g).sum() + _SMOOTH)
