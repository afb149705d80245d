"""Binary focal loss of the paper (eq. 5-6, after Lin et al. 2017), computed from logits.

``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` on mandible pixels (target 1)
and ``1 - p`` on background, ``p = sigmoid(logit)``. The paper uses ``gamma = 2`` and no alpha.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from medimg.common.errors import InputError, expected

__all__ = ["focal_loss"]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = None) -> torch.Tensor:
    """Mean binary focal loss over every pixel of the batch.

    Parameters
    ----------
    logits : (B, 1, H, W) tensor of float (pre-sigmoid scores; any shape works)
    target : same shape as ``logits``, float or bool/integer, 1 = mandible, 0 = background
        (soft targets in [0, 1] are allowed: ``log p_t`` is then minus the BCE)
    gamma : focusing parameter >= 0; ``gamma = 0`` and no alpha is plain BCE
    alpha : weight of the positive class in [0, 1] (``alpha_t = alpha`` for target 1,
        ``1 - alpha`` for target 0), or None for no class weighting (the paper)

    Returns
    -------
    loss : 0-d tensor of float

    ``log p_t`` is taken as ``-BCE-with-logits`` (log-sum-exp form, stable for any logit) and
    ``1 - p_t`` as ``-expm1(log p_t)``, which keeps precision on confident pixels.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise InputError(expected("logits and target as tensors", f"{type(logits).__name__} and {type(target).__name__}"))
    if logits.shape != target.shape:
        raise InputError(expected("target of the same shape as logits", f"{tuple(target.shape)} vs {tuple(logits.shape)}"))
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (gamma >= 0 and math.isfinite(gamma)):
        raise InputError(expected("gamma as a finite number >= 0", repr(gamma)))
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1):
        raise InputError(expected("alpha in [0, 1] or None", repr(alpha)))
    target = target.to(logits.dtype)
    log_pt = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss = -log_pt if gamma == 0 else -torch.pow(-torch.expm1(log_pt), gamma) * log_pt
    if alpha is not None:
        loss = (alpha * target + (1.0 - alpha) * (1.0 - target)) * loss
    return loss.mean()
