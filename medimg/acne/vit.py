"""The transformer backbone of the acne networks: the report's ViT with its multi-branch patch
embedding (SPEC section 2; seed 001).

* :class:`MultiScalePatchEmbedding` -- one strided conv per patch size in ``patch_sizes``
  (default 8, 16, 32), each giving ``embed_dim / len(patch_sizes)`` channels, brought to the
  token grid of ``token_patch`` (16 -> 14 x 14 tokens at 224) by average pooling (finer
  branches) or nearest upsampling (coarser ones), concatenated, reweighted by
  :class:`SqueezeExcitation` channel attention (the report's "channel attention on the patch
  embedding": it lets the network weigh the scales per image), then mixed by a 1x1 conv.
* :class:`TransformerBlock` -- pre-norm block of ``nn.MultiheadAttention`` + GELU MLP.
* :class:`ViTEncoder` -- class token, learned positional embedding, ``depth`` blocks, final
  LayerNorm; the class token is the feature. The positional embedding fixes one token grid, so
  the input must be exactly ``(B, 3, image_size, image_size)``.

State-dict keys (stable; weights files depend on them)::

    patch_embed.{branches.<i>,attention.{fc1,fc2},proj}.*, cls_token, pos_embedding,
    blocks.<i>.{norm1,attn,norm2,mlp.{0,3}}.*, norm.*
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medimg.acne.option_checks import fraction, positive_float, positive_int, positive_ints
from medimg.common.errors import ModelError, expected

__all__ = ["MultiScalePatchEmbedding", "SqueezeExcitation", "TransformerBlock", "ViTEncoder"]


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool -> Linear(C, C/r) -> ReLU -> Linear(C/r, C) ->
    sigmoid, used to scale each channel of ``(B, C, H, W)``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * weights[:, :, None, None]


class MultiScalePatchEmbedding(nn.Module):
    """Patch embedding with one conv branch per patch size, fused by channel attention.

    Branch ``p`` is ``Conv2d(3, embed_dim / n, kernel p, stride p)``; its ``(image_size / p)^2``
    map is average-pooled (p < token_patch) or nearest-upsampled (p > token_patch) to the
    ``(image_size / token_patch)^2`` token grid. The branch maps are concatenated to
    ``embed_dim`` channels, reweighted by :class:`SqueezeExcitation` and mixed by a 1x1 conv.

    ``forward(x: (B, 3, image_size, image_size))`` -> tokens ``(B, grid^2, embed_dim)``.
    """

    def __init__(
        self,
        *,
        image_size: int,
        patch_sizes: Sequence[int],
        token_patch: int,
        embed_dim: int,
        se_reduction: int,
    ) -> None:
        super().__init__()
        for p in (*patch_sizes, token_patch):
            if image_size % p:
                raise ModelError(expected(f"patch sizes dividing image_size {image_size}", p))
        for p in patch_sizes:
            if token_patch % p and p % token_patch:
                raise ModelError(
                    expected(f"each patch size to divide or be a multiple of token_patch {token_patch}", p)
                )
        if embed_dim % len(patch_sizes):
            raise ModelError(
                expected(
                    f"embed_dim divisible by the number of patch branches ({len(patch_sizes)})", embed_dim
                )
            )
        branch_dim = embed_dim // len(patch_sizes)
        self.patch_sizes = tuple(patch_sizes)
        self.token_patch = token_patch
        self.grid = image_size // token_patch
        self.branches = nn.ModuleList(
            nn.Conv2d(3, branch_dim, p, stride=p) for p in self.patch_sizes
        )
        self.attention = SqueezeExcitation(embed_dim, se_reduction)
        self.proj = nn.Conv2d(embed_dim, embed_dim, 1)

    def _to_grid(self, x: torch.Tensor, patch: int) -> torch.Tensor:
        if patch < self.token_patch:
            return F.avg_pool2d(x, self.token_patch // patch)
        if patch > self.token_patch:
            return F.interpolate(x, scale_factor=patch // self.token_patch, mode="nearest")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [self._to_grid(branch(x), p) for branch, p in zip(self.branches, self.patch_sizes)]
        x = self.proj(self.attention(torch.cat(maps, dim=1)))
        return x.flatten(2).transpose(1, 2)


class TransformerBlock(nn.Module):
    """Pre-norm transformer encoder block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """Vision transformer trunk: multi-scale patch embedding, class token, learned positional
    embedding, ``depth`` pre-norm blocks, final LayerNorm.

    ``forward(x: (B, 3, image_size, image_size))`` -> the class token ``(B, embed_dim)``.
    """

    def __init__(
        self,
        *,
        image_size: int,
        embed_dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        patch_sizes: Sequence[int],
        token_patch: int,
        se_reduction: int,
        dropout: float,
    ) -> None:
        super().__init__()
        image_size = positive_int(image_size, "image_size")
        embed_dim = positive_int(embed_dim, "embed_dim")
        depth = positive_int(depth, "depth")
        heads = positive_int(heads, "heads")
        mlp_ratio = positive_float(mlp_ratio, "mlp_ratio")
        patch_sizes = positive_ints(patch_sizes, "patch_sizes")
        token_patch = positive_int(token_patch, "token_patch")
        se_reduction = positive_int(se_reduction, "se_reduction")
        dropout = fraction(dropout, "dropout")
        if embed_dim % heads:
            raise ModelError(expected(f"embed_dim divisible by heads ({heads})", embed_dim))
        self.image_size = image_size
        self.patch_embed = MultiScalePatchEmbedding(
            image_size=image_size,
            patch_sizes=patch_sizes,
            token_patch=token_patch,
            embed_dim=embed_dim,
            se_reduction=se_reduction,
        )
        n_tokens = self.patch_embed.grid**2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, n_tokens, embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.out_features = embed_dim
        self._init_weights()

    def _init_weights(self) -> None:
        # ViT convention: small truncated-normal embeddings and linear weights, zero biases.
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = self.dropout(torch.cat([cls, tokens], dim=1) + self.pos_embedding)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]
