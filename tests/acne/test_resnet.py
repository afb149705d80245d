"""Tests for medimg.acne.resnet: the BasicBlock and its shortcuts."""

from __future__ import annotations

import torch

from medimg.acne.resnet import BasicBlock


def test_basic_block_shortcuts():
    same = BasicBlock(8, 8)
    down = BasicBlock(8, 16, stride=2)
    x = torch.randn(2, 8, 10, 10)
    assert same(x).shape == (2, 8, 10, 10)
    assert down(x).shape == (2, 16, 5, 5)
    # conv weights: 9*8*8 + 9*8*8 (no bias); BN: 2 * 2 * 8
    assert sum(p.numel() for p in same.parameters()) == 2 * 9 * 64 + 4 * 8
    # plus the 1x1 stride-2 shortcut conv (8*16) and its BN (2*16)
    assert sum(p.numel() for p in down.parameters()) == 9 * 8 * 16 + 9 * 16 * 16 + 4 * 16 + 8 * 16 + 2 * 16
