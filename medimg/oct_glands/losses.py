"""Dice loss of the paper (eq. 9): ``1 - 2 sum(p g) / (sum p^2 + sum g^2)``, with ``p = sigmoid(logits)``.

The gland networks return logits (every medimg network does), so the loss applies the sigmoid
itself; probabilities are never passed in.
"""

from __future__ import annotations

import torch

_SMOOTH = 1.0  # keeps the loss defined (and 0) on blocks without any gland


def dice_loss_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss over the whole batch, of the sigmoid of ``logits``.

    Parameters
    ----------
    logits : (B, 1, D, H, W) tensor of float, the network's pre-sigmoid output
    target : same shape, 0/1 (any dtype)

    Returns
    -------
    loss : () float32 tensor in [0, 1]
    """
    p = torch.sigmoid(logits.float()).reshape(-1)
    g = target.float().reshape(-1)
    return 1.0 - (2.0 * (p * g).sum() + _SMOOTH) / ((p * p).sum() + (g * g).sum() + _SMOOTH)
