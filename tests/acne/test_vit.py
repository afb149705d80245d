"""Tests for medimg.acne.vit: the multi-scale patch embedding and its channel attention."""

from __future__ import annotations

import torch

from medimg.acne.vit import MultiScalePatchEmbedding


def test_patch_embedding_tokens_and_channel_attention():
    torch.manual_seed(0)
    embed = MultiScalePatchEmbedding(
        image_size=64, patch_sizes=(8, 16, 32), token_patch=16, embed_dim=12, se_reduction=2
    )
    x = torch.randn(2, 3, 64, 64)
    tokens = embed(x)
    assert tokens.shape == (2, 4 * 4, 12)
    tokens.sum().backward()
    for branch in embed.branches:  # every scale reaches the tokens
        assert branch.weight.grad is not None and branch.weight.grad.abs().sum() > 0
    assert embed.attention.fc1.weight.grad.abs().sum() > 0
