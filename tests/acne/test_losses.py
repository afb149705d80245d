"""Tests for medimg.acne.losses.ldl_loss against hand and NumPy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medimg.common.errors import InputError
from medimg.acne.losses import LOG_FLOOR, ldl_loss

# Hayashi membership, built by hand: bins 0-4 (counts 1-5) -> 0, 5-19 -> 1, 20-49 -> 2, 50-64 -> 3.
HAYASHI_EDGES = (0, 5, 20, 50, 65)


def hayashi_cou2cls() -> np.ndarray:
    matrix = np.zeros((65, 4), np.float32)
    for grade in range(4):
        matrix[HAYASHI_EDGES[grade] : HAYASHI_EDGES[grade + 1], grade] = 1.0
    return matrix


def gaussian(center: int, n: int, sigma: float = 3.0) -> np.ndarray:
    d = np.exp(-((np.arange(n) - center) ** 2) / (2 * sigma**2))
    return d / d.sum()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl_batchmean(target: np.ndarray, predicted: np.ndarray) -> float:
    terms = np.where(target > 0, target * (np.log(np.where(target > 0, target, 1)) - np.log(predicted)), 0.0)
    return float(terms.sum(axis=1).mean())


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def test_uniform_predictions_against_one_hot_targets_hand_computed():
    # Two samples, all logits zero: counts uniform 1/65, grades uniform 1/4.
    count_targets = np.zeros((2, 65))
    count_targets[0, 2] = count_targets[1, 30] = 1.0  # counts 3 (grade 0) and 31 (grade 2)
    grade_targets = np.zeros((2, 4))
    grade_targets[0, 0] = grade_targets[1, 2] = 1.0
    loss, parts = ldl_loss(
        torch.zeros(2, 65, dtype=torch.float64),
        torch.zeros(2, 4, dtype=torch.float64),
        _t(count_targets),
        _t(grade_targets),
        cou2cls=_t(hayashi_cou2cls()),
        alpha=0.6,
    )
    # KL(one-hot || uniform K) = log K for every sample.
    assert parts["cou"] == pytest.approx(math.log(65))
    assert parts["cls"] == pytest.approx(math.log(4))
    # uniform counts give grade probabilities 5/65, 15/65, 30/65, 15/65
    assert parts["cou2cls"] == pytest.approx((math.log(65 / 5) + math.log(65 / 30)) / 2)
    expected_total = 0.3 * (parts["cou2cls"] + parts["cou"]) + 0.4 * parts["cls"]
    assert float(loss) == pytest.approx(expected_total)
    assert set(parts) == {"cls", "cou", "cou2cls"}
    assert all(isinstance(v, float) for v in parts.values())


def test_two_sample_toy_matches_numpy():
    rng = np.random.default_rng(7)
    count_logits = rng.normal(size=(2, 65))
    grade_logits = rng.normal(size=(2, 4))
    cou2cls = hayashi_cou2cls()
    count_targets = np.stack([gaussian(4, 65), gaussian(40, 65)])
    grade_targets = count_targets @ cou2cls  # as the LDL code derives its grade targets

    p_count, p_grade = softmax(count_logits), softmax(grade_logits)
    cou = kl_batchmean(count_targets, p_count)
    cls = kl_batchmean(grade_targets, p_grade)
    cou2cls_kl = kl_batchmean(grade_targets, p_count @ cou2cls)

    for alpha in (0.0, 0.6, 1.0):
        loss, parts = ldl_loss(
            _t(count_logits), _t(grade_logits), _t(count_targets), _t(grade_targets), cou2cls=_t(cou2cls), alpha=alpha
        )
        assert parts == pytest.approx({"cls": cls, "cou": cou, "cou2cls": cou2cls_kl}, rel=1e-9)
        assert float(loss) == pytest.approx(alpha / 2 * (cou2cls_kl + cou) + (1 - alpha) * cls, rel=1e-9)
        ldl, _ = ldl_loss(
            _t(count_logits),
            _t(grade_logits),
            _t(count_targets),
            _t(grade_targets),
            cou2cls=_t(cou2cls),
            alpha=alpha,
            weighting="ldl",
        )
        assert float(ldl) == pytest.approx(alpha / 2 * (cls + cou2cls_kl) + (1 - alpha) * cou, rel=1e-9)
    # alpha = 0 keeps only the grade head's term
    loss0, _ = ldl_loss(
        _t(count_logits), _t(grade_logits), _t(count_targets), _t(grade_targets), cou2cls=_t(cou2cls), alpha=0.0
    )
    assert float(loss0) == pytest.approx(cls)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_ldl_weighting_equals_the_reference_code():
    # Reference: KLDivLoss(mean) * n_bins on torch.log(softmax), then
    # (loss_cls + loss_cls_cou) * 0.5 * lam + loss_cou * (1 - lam).
    torch.manual_seed(0)
    count_logits, grade_logits = torch.randn(3, 65), torch.randn(3, 4)
    cou2cls = torch.from_numpy(hayashi_cou2cls())
    ld = torch.from_numpy(np.stack([gaussian(c, 65) for c in (0, 17, 58)])).float()
    ld_4 = ld @ cou2cls
    kl = torch.nn.KLDivLoss()
    cou = torch.softmax(count_logits, 1)
    ref_cls = kl(torch.log(torch.softmax(grade_logits, 1)), ld_4) * 4.0
    ref_cou = kl(torch.log(cou), ld) * 65.0
    ref_cls_cou = kl(torch.log(cou @ cou2cls), ld_4) * 4.0
    reference = (ref_cls + ref_cls_cou) * 0.5 * 0.6 + ref_cou * (1.0 - 0.6)
    ours, parts = ldl_loss(count_logits, grade_logits, ld, ld_4, cou2cls=cou2cls, weighting="ldl")
    assert float(ours) == pytest.approx(float(reference), rel=1e-5)
    assert parts["cou"] == pytest.approx(float(ref_cou), rel=1e-5)


def test_zero_when_predictions_equal_targets():
    cou2cls = hayashi_cou2cls()
    count_targets = np.stack([gaussian(10, 65), gaussian(52, 65)])
    grade_targets = count_targets @ cou2cls
    loss, parts = ldl_loss(
        _t(np.log(count_targets)),
        _t(np.log(grade_targets)),
        _t(count_targets),
        _t(grade_targets),
        cou2cls=_t(cou2cls),
    )
    assert parts["cls"] == pytest.approx(0.0, abs=1e-12)
    assert parts["cou"] == pytest.approx(0.0, abs=1e-12)
    assert parts["cou2cls"] == pytest.approx(0.0, abs=1e-12)
    assert float(loss) == pytest.approx(0.0, abs=1e-12)


def test_cou2cls_log_is_clamped():
    # All count mass on bin 0 (grade 0); the target puts everything on grade 3, whose predicted
    # probability underflows to exactly 0: the KL is -log(1e-12) instead of inf.
    count_logits = torch.full((1, 65), -1e4)
    count_logits[0, 0] = 0.0
    grade_targets = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    count_targets = torch.zeros(1, 65)
    count_targets[0, 60] = 1.0
    loss, parts = ldl_loss(
        count_logits, torch.zeros(1, 4), count_targets, grade_targets, cou2cls=torch.from_numpy(hayashi_cou2cls())
    )
    assert parts["cou2cls"] == pytest.approx(-math.log(LOG_FLOOR), rel=1e-6)
    assert parts["cls"] == pytest.approx(math.log(4), rel=1e-6)
    assert math.isfinite(float(loss))


def test_gradients_reach_both_heads():
    count_logits = torch.zeros(2, 65, requires_grad=True)
    grade_logits = torch.zeros(2, 4, requires_grad=True)
    targets = torch.from_numpy(np.stack([gaussian(3, 65), gaussian(25, 65)])).float()
    cou2cls = torch.from_numpy(hayashi_cou2cls())
    loss, _ = ldl_loss(count_logits, grade_logits, targets, targets @ cou2cls, cou2cls=cou2cls)
    loss.backward()
    assert count_logits.grad.abs().sum() > 0 and grade_logits.grad.abs().sum() > 0
    # gradient of KL(t || softmax(z)) w.r.t. z is (softmax(z) - t) / B, scaled by the weights
    assert torch.allclose(grade_logits.grad, 0.4 * (torch.full((2, 4), 0.25) - targets @ cou2cls) / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, r"alpha in \[0, 1\]"),
        ({"weighting": "paper"}, "weighting one of report, ldl"),
        ({"cou2cls": torch.zeros(64, 4)}, r"cou2cls of shape \(65, 4\), got \(64, 4\)"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(cou2cls=torch.zeros(65, 4))
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        ldl_loss(torch.zeros(2, 65), torch.zeros(2, 4), torch.zeros(2, 65), torch.zeros(2, 4), **args)


def test_shape_mismatch():
    with pytest.raises(InputError, match="same \\(B, K\\) shape"):
        ldl_loss(torch.zeros(2, 65), torch.zeros(2, 4), torch.zeros(2, 64), torch.zeros(2, 4), cou2cls=torch.zeros(65, 4))
    with pytest.raises(InputError, match="same batch size"):
        ldl_loss(torch.zeros(2, 65), torch.zeros(3, 4), torch.zeros(2, 65), torch.zeros(3, 4), cou2cls=torch.zeros(65, 4))
