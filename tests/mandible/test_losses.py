"""Tests for medimg.mandible.losses: focal loss (paper eq. 5-6) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from medimg.common.errors import InputError
from medimg.mandible.losses import focal_loss

LOGITS = np.array([2.0, -1.0, 0.5, -3.0])
TARGET = np.array([1.0, 0.0, 0.0, 1.0])


def _numpy_focal(logits, target, gamma, alpha=None):
    p = 1.0 / (1.0 + np.exp(-logits))
    pt = np.where(target == 1, p, 1 - p)
    weight = 1.0 if alpha is None else np.where(target == 1, alpha, 1 - alpha)
    return float(np.mean(-weight * (1 - pt) ** gamma * np.log(pt)))


def _tensors():
    return torch.tensor(LOGITS, dtype=torch.float32).reshape(1, 1, 2, 2), torch.tensor(TARGET, dtype=torch.float32).reshape(1, 1, 2, 2)


def test_four_pixels_against_numpy():
    logits, target = _tensors()
    loss = focal_loss(logits, target)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(_numpy_focal(LOGITS, TARGET, 2.0), rel=1e-6)
    # by hand: p_t = (0.8808, 0.7311, 0.3775, 0.0474); terms (1 - p_t)^2 * -log p_t =
    # 0.0018 + 0.0227 + 0.3774 + 2.7663 = 3.1682, mean 0.7920
    assert loss.item() == pytest.approx(0.7920, abs=1e-4)


def test_alpha_weights_classes():
    logits, target = _tensors()
    loss = focal_loss(logits, target, alpha=0.25)
    assert loss.item() == pytest.approx(_numpy_focal(LOGITS, TARGET, 2.0, alpha=0.25), rel=1e-6)


def test_gamma_zero_is_bce():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8) * 3
    target = (torch.rand(2, 1, 8, 8) > 0.7).float()
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), F.binary_cross_entropy_with_logits(logits, target))


def test_easy_pixels_are_down_weighted():
    logits, target = _tensors()
    assert focal_loss(logits, target).item() < focal_loss(logits, target, gamma=0.0).item()


def test_stable_at_extreme_logits():
    logits = torch.tensor([100.0, -100.0], requires_grad=True)
    target = torch.tensor([1.0, 1.0])
    loss = focal_loss(logits, target)
    # right and sure: 0; wrong and sure: -(1 - e^-100)^2 log(e^-100) = 100
    assert loss.item() == pytest.approx(50.0, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0].item() == 0.0


def test_bool_target_accepted():
    logits, target = _tensors()
    assert focal_loss(logits, target.bool()).item() == pytest.approx(focal_loss(logits, target).item())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"gamma": -1.0}, "gamma as a finite number >= 0"), ({"alpha": 1.5}, "alpha in [0, 1] or None")],
)
def test_bad_options(kwargs, fragment):
    logits, target = _tensors()
    with pytest.raises(InputError) as info:
        focal_loss(logits, target, **kwargs)
    assert fragment in str(info.value)


def test_shape_mismatch():
    with pytest.raises(InputError) as info:
        focal_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4))
    assert str(info.value) == "expected target of the same shape as logits, got (1, 4, 4) vs (1, 1, 4, 4)"
