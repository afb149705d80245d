"""Label-distribution-learning losses for joint acne counting and grading (SPEC section 2).

Three KL divergences, each ``KL(target || predicted)`` summed over the bins of one sample and
averaged over the batch (``torch.nn.functional.kl_div(log_pred, target, reduction="batchmean")``):

* ``L_cou``     -- count distribution: ``softmax(count_logits)`` (65 bins) vs ``count_targets``;
* ``L_cls``     -- grade distribution: ``softmax(grade_logits)`` (4 grades) vs ``grade_targets``;
* ``L_cou2cls`` -- the grade distribution implied by the counts,
  ``softmax(count_logits) @ cou2cls`` (each grade sums the probability of its count bins), vs
  ``grade_targets``; its log is taken after clamping at 1e-12 (a grade whose bins all have
  vanishing probability would otherwise give ``-inf``).

Weighting (``alpha`` = the report's ``a``, its ``--lam`` option, 0.6):

* ``weighting="report"`` (default) -- the report's final formula
  ``Loss = alpha / 2 * (L_cou2cls + L_cou) + (1 - alpha) * L_cls``;
* ``weighting="ldl"`` -- the LDL reference code (Wu et al., ICCV 2019, ``train.py``):
  ``loss = (loss_cls + loss_cls_cou) * 0.5 * lam + loss_cou * (1.0 - lam)``, i.e.
  ``alpha / 2 * (L_cls + L_cou2cls) + (1 - alpha) * L_cou`` -- the two grade terms share
  ``alpha`` and the count term gets ``1 - alpha``, the other way round from the report.

Scale: the LDL code uses ``nn.KLDivLoss()`` with its default ``reduction="mean"``, which
divides the summed KL by ``batch * bins``, and multiplies back by the number of bins
(``* 4.0`` for the grade terms, ``* 65.0`` for the count term). That is exactly the per-sample
sum averaged over the batch, i.e. ``batchmean``, so no extra factors appear here and both
weightings give the same numbers as the reference for the same inputs. (The report itself
does not print these factors; they come from the LDL code it builds on.) The reference also
takes ``torch.log`` of softmax outputs; ``log_softmax`` is used here for the direct heads, which
is the same value without the underflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medimg.common.errors import InputError, expected

__all__ = ["DEFAULT_ALPHA", "LOG_FLOOR", "WEIGHTINGS", "ldl_loss"]

DEFAULT_ALPHA = 0.6
LOG_FLOOR = 1e-12
WEIGHTINGS = ("report", "ldl")


def _check_pair(logits: object, targets: object, what: str) -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise InputError(expected(f"{what} logits and targets as tensors", f"{type(logits).__name__} and {type(targets).__name__}"))
    if logits.dim() != 2 or logits.shape != targets.shape:
        raise InputError(
            expected(f"{what} logits and targets of the same (B, K) shape", f"{tuple(logits.shape)} and {tuple(targets.shape)}")
        )


def ldl_loss(
    count_logits: torch.Tensor,
    grade_logits: torch.Tensor,
    count_targets: torch.Tensor,
    grade_targets: torch.Tensor,
    *,
    cou2cls: torch.Tensor,
    alpha: float = DEFAULT_ALPHA,
    weighting: str = "report",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Joint LDL loss of one batch (see the module docstring for the formulas).

    Parameters
    ----------
    count_logits : (B, 65) tensor of float
        Count-head logits (bin i <-> lesion count i + 1).
    grade_logits : (B, 4) tensor of float
        Grade-head logits.
    count_targets : (B, 65) tensor of float
        Target count distributions (rows sum to 1; the report's ``genLD``).
    grade_targets : (B, 4) tensor of float
        Target grade distributions (rows sum to 1).
    cou2cls : (65, 4) tensor of float
        Membership matrix: ``cou2cls[i, g] = 1`` when count bin ``i`` belongs to grade ``g``.
    alpha : float in [0, 1]
        The report's ``a`` (0.6).
    weighting : ``"report"`` or ``"ldl"``
        Which formula combines the three terms.

    Returns
    -------
    loss : scalar tensor (differentiable)
    parts : dict ``{"cls": float, "cou": float, "cou2cls": float}``, the three unweighted KLs.
    """
    _check_pair(count_logits, count_targets, "count")
    _check_pair(grade_logits, grade_targets, "grade")
    if count_logits.shape[0] != grade_logits.shape[0]:
        raise InputError(
            expected("the same batch size for counts and grades", f"{count_logits.shape[0]} and {grade_logits.shape[0]}")
        )
    if not isinstance(cou2cls, torch.Tensor) or cou2cls.shape != (count_logits.shape[1], grade_logits.shape[1]):
        got = tuple(cou2cls.shape) if isinstance(cou2cls, torch.Tensor) else type(cou2cls).__name__
        raise InputError(expected(f"cou2cls of shape {(count_logits.shape[1], grade_logits.shape[1])}", got))
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise InputError(expected("alpha in [0, 1]", repr(alpha)))
    if weighting not in WEIGHTINGS:
        raise InputError(expected(f"weighting one of {', '.join(WEIGHTINGS)}", repr(weighting)))

    count_targets = count_targets.to(count_logits.dtype)
    grade_targets = grade_targets.to(grade_logits.dtype)
    log_count = F.log_softmax(count_logits, dim=1)
    log_grade = F.log_softmax(grade_logits, dim=1)
    count_grade = log_count.exp() @ cou2cls.to(device=count_logits.device, dtype=count_logits.dtype)
    log_count_grade = torch.log(count_grade.clamp_min(LOG_FLOOR))

    loss_cou = F.kl_div(log_count, count_targets, reduction="batchmean")
    loss_cls = F.kl_div(log_grade, grade_targets, reduction="batchmean")
    loss_cou2cls = F.kl_div(log_count_grade, grade_targets, reduction="batchmean")

    if weighting == "report":
        loss = alpha / 2 * (loss_cou2cls + loss_cou) + (1 - alpha) * loss_cls
    else:
        loss = alpha / 2 * (loss_cls + loss_cou2cls) + (1 - alpha) * loss_cou
    parts = {
        "cls": float(loss_cls.detach()),
        "cou": float(loss_cou.detach()),
        "cou2cls": float(loss_cou2cls.detach()),
    }
    return loss, parts
