"""Acne networks: ResNet, multi-scale ViT and their fusion, each with a count and a grade head
(SPEC section 2; seed 001).

Every network maps a normalised photo ``(B, 3, 224, 224)`` to two sets of LOGITS::

    count_logits (B, 65)   bin i <-> lesion count i + 1 (counts 1..65)
    grade_logits (B, 4)    mild, moderate, severe, very severe

Softmax is left to the loss (:func:`medimg.acne.losses.ldl_loss`) and to the pipeline.

Graph, shared by all three (``model.encoder -> model.neck -> model.count_head / grade_head``):

* ``resnet`` -- the seed code's ``BasicBlock`` (conv3x3-BN-ReLU-conv3x3-BN + identity or a
  1x1-conv/BN shortcut) in ResNet stages: stem conv 7x7/2 -> BN -> ReLU -> maxpool 3/2, then one
  stage per entry of ``widths`` (``blocks[i]`` blocks; stride 1 for the first stage, 2 after),
  global average pooling. ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is ResNet-18.
* ``vit`` -- the report's ViT (class token, learned positional embedding, pre-norm transformer
  blocks of ``nn.MultiheadAttention`` + GELU MLP, final LayerNorm, class token as the feature)
  with the report's multi-branch patch embedding: one strided conv per patch size in
  ``patch_sizes`` (default 8, 16, 32), each giving ``embed_dim / len(patch_sizes)`` channels,
  brought to the token grid of ``token_patch`` (16 -> 14 x 14 tokens at 224) by average pooling
  (finer branches) or nearest upsampling (coarser ones), concatenated, reweighted by
  squeeze-and-excitation channel attention (the report's "channel attention on the patch
  embedding": it lets the network weigh the scales per image), then mixed by a 1x1 conv.
* ``fusion`` -- both encoders side by side (``encoder.cnn``, ``encoder.transformer``); the neck
  concatenates their pooled features and LayerNorms the result (the CNN's post-ReLU averages and
  the ViT's normed class token live on different scales); the heads read the fused vector.
  The report names the fusion without describing it further, so this is the simplest faithful
  reading: late fusion of the two global descriptors.

Heads are single ``nn.Linear`` layers (as in the LDL reference, ResNet-50 + two FCs), preceded
by optional dropout.

Input size: ``resnet`` is fully convolutional up to its global pooling and accepts any square or
rectangular input of at least 32 x 32. ``vit`` and ``fusion`` have a learned positional
embedding for one token grid, so they require exactly ``(B, 3, image_size, image_size)``;
anything else raises :class:`ModelError` (the pipeline always resizes to 224).

Presets (``build_model(name, preset=...)``; explicit keywords override the preset):

* ``"small"`` (default): ResNet widths 16/32/64/128 with one block each, ViT embed 96, depth 2,
  4 heads, MLP ratio 4, patches 8/16/32. The fusion has ~0.69 M parameters (~2.8 MB float32),
  small enough to ship and to train on a CPU.
* ``"paper"``: ResNet-18 (widths 64..512, blocks 2, 2, 2, 2) and a ViT-Base-size transformer
  (embed 768, depth 12, 12 heads, MLP ratio 4) with the same three-branch patch embedding;
  the fusion has ~98 M parameters.

State-dict keys (stable; weights files depend on them)::

    encoder.stem.{0,1}.*, encoder.stages.<i>.<j>.{conv1,bn1,conv2,bn2,downsample.{0,1}}.*  (resnet)
    encoder.patch_embed.{branches.<i>,attention.{fc1,fc2},proj}.*, encoder.cls_token,
    encoder.pos_embedding, encoder.blocks.<i>.{norm1,attn,norm2,mlp.{0,3}}.*, encoder.norm.*  (vit)
    encoder.cnn.<resnet keys>, encoder.transformer.<vit keys>, neck.norm.*                   (fusion)
    count_head.{weight,bias}, grade_head.{weight,bias}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medimg.common.errors import ModelError, expected

__all__ = [
    "MODEL_NAMES",
    "N_COUNT_BINS",
    "N_GRADES",
    "PRESETS",
    "AcneNet",
    "BasicBlock",
    "ConcatNeck",
    "FusionEncoder",
    "MultiScalePatchEmbedding",
    "ResNetEncoder",
    "SqueezeExcitation",
    "TransformerBlock",
    "ViTEncoder",
    "build_model",
    "model_config",
    "preset_config",
]

MODEL_NAMES = ("resnet", "vit", "fusion")
N_COUNT_BINS = 65  # same as medimg.acne.labels.N_COUNT_BINS (counts 1..65)
N_GRADES = 4  # same as medimg.acne.labels.N_GRADES

_RESNET_KEYS = ("widths", "blocks", "dropout")
_VIT_KEYS = (
    "image_size",
    "embed_dim",
    "depth",
    "heads",
    "mlp_ratio",
    "patch_sizes",
    "token_patch",
    "se_reduction",
    "dropout",
)
_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "resnet": _RESNET_KEYS,
    "vit": _VIT_KEYS,
    "fusion": tuple(dict.fromkeys(_RESNET_KEYS + _VIT_KEYS)),
}

_SMALL_RESNET = {"widths": (16, 32, 64, 128), "blocks": (1, 1, 1, 1)}
_PAPER_RESNET = {"widths": (64, 128, 256, 512), "blocks": (2, 2, 2, 2)}
_SMALL_VIT = {
    "image_size": 224,
    "embed_dim": 96,
    "depth": 2,
    "heads": 4,
    "mlp_ratio": 4.0,
    "patch_sizes": (8, 16, 32),
    "token_patch": 16,
    "se_reduction": 4,
}
_PAPER_VIT = {
    "image_size": 224,
    "embed_dim": 768,
    "depth": 12,
    "heads": 12,
    "mlp_ratio": 4.0,
    "patch_sizes": (8, 16, 32),
    "token_patch": 16,
    "se_reduction": 16,
}

#: preset -> model name -> full constructor kwargs.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "small": {
        "resnet": {**_SMALL_RESNET, "dropout": 0.0},
        "vit": {**_SMALL_VIT, "dropout": 0.0},
        "fusion": {**_SMALL_RESNET, **_SMALL_VIT, "dropout": 0.0},
    },
    "paper": {
        "resnet": {**_PAPER_RESNET, "dropout": 0.0},
        "vit": {**_PAPER_VIT, "dropout": 0.0},
        "fusion": {**_PAPER_RESNET, **_PAPER_VIT, "dropout": 0.0},
    },
}


# ---------------------------------------------------------------------------------------------
# option checks: every bad value becomes a ModelError that says what was expected


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(expected(f"{what} as a positive integer", repr(value)))
    return value


def _positive_ints(value: object, what: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ModelError(expected(f"{what} as a non-empty sequence of positive integers", repr(value)))
    return tuple(_positive_int(v, f"every entry of {what}") for v in value)


def _fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ModelError(expected(f"{what} in [0, 1)", repr(value)))
    return float(value)


def _positive_float(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ModelError(expected(f"{what} as a positive number", repr(value)))
    return float(value)


def _check_resnet(widths: object, blocks: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    widths = _positive_ints(widths, "widths")
    blocks = _positive_ints(blocks, "blocks")
    if len(widths) != len(blocks):
        raise ModelError(
            expected("one block count per width", f"{len(widths)} widths and {len(blocks)} block counts")
        )
    return widths, blocks


# ---------------------------------------------------------------------------------------------
# ResNet


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows), as in the seed code."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """The seed code's ResNet BasicBlock: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the input
    (through a 1x1 conv + BN ``downsample`` when the stride or width changes), then ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNetEncoder(nn.Module):
    """ImageNet-style ResNet trunk of BasicBlocks with global average pooling.

    ``forward(x: (B, 3, H, W))`` -> ``(B, widths[-1])``; H, W >= 32.
    """

    def __init__(self, widths: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        widths, blocks = _check_resnet(widths, blocks)
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        inplanes = widths[0]
        for i, (planes, count) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(inplanes, planes, stride)]
            layers += [BasicBlock(planes, planes) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            inplanes = planes
        self.stages = nn.ModuleList(stages)
        self.out_features = widths[-1]
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


# ---------------------------------------------------------------------------------------------
# ViT with the report's multi-branch patch embedding


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
        image_size = _positive_int(image_size, "image_size")
        embed_dim = _positive_int(embed_dim, "embed_dim")
        depth = _positive_int(depth, "depth")
        heads = _positive_int(heads, "heads")
        mlp_ratio = _positive_float(mlp_ratio, "mlp_ratio")
        patch_sizes = _positive_ints(patch_sizes, "patch_sizes")
        token_patch = _positive_int(token_patch, "token_patch")
        se_reduction = _positive_int(se_reduction, "se_reduction")
        dropout = _fraction(dropout, "dropout")
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


# ---------------------------------------------------------------------------------------------
# fusion and the two-headed network


class FusionEncoder(nn.Module):
    """Both trunks side by side: ``forward(x)`` -> ``(cnn (B, C), transformer (B, E))``."""

    def __init__(self, cnn: ResNetEncoder, transformer: ViTEncoder) -> None:
        super().__init__()
        self.cnn = cnn
        self.transformer = transformer
        self.out_features = (cnn.out_features, transformer.out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cnn(x), self.transformer(x)


class ConcatNeck(nn.Module):
    """Late fusion: concatenate the features ``(B, C)`` and ``(B, E)`` -> LayerNorm -> ``(B, C + E)``."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.out_features = int(sum(dims))
        self.norm = nn.LayerNorm(self.out_features)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.norm(torch.cat(list(features), dim=1))


class AcneNet(nn.Module):
    """``encoder -> neck -> dropout -> (count_head, grade_head)``; see the module docstring.

    Attributes: ``arch_name`` (registry name), ``config`` (JSON-serialisable constructor
    kwargs, see :func:`model_config`), ``image_size`` (required input side, or ``None`` when any
    size >= 32 works).
    """

    def __init__(
        self,
        *,
        arch_name: str,
        config: dict[str, Any],
        encoder: nn.Module,
        neck: nn.Module,
        feature_dim: int,
        dropout: float,
        image_size: int | None,
    ) -> None:
        super().__init__()
        self.arch_name = arch_name
        self.config = config
        self.image_size = image_size
        self.encoder = encoder
        self.neck = neck
        self.dropout = nn.Dropout(dropout)
        self.count_head = nn.Linear(feature_dim, N_COUNT_BINS)
        self.grade_head = nn.Linear(feature_dim, N_GRADES)

    def _check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ModelError(expected("a torch.Tensor", type(x).__name__))
        if x.dim() != 4 or x.shape[1] != 3:
            raise ModelError(expected("an image batch of shape (B, 3, H, W)", f"shape {tuple(x.shape)}"))
        if not x.is_floating_point():
            raise ModelError(expected("a floating-point tensor", x.dtype))
        side = self.image_size
        if side is not None and tuple(x.shape[2:]) != (side, side):
            raise ModelError(
                expected(f"{self.arch_name} input of {side}x{side} pixels", f"{x.shape[2]}x{x.shape[3]}")
            )
        if side is None and min(x.shape[2:]) < 32:
            raise ModelError(expected("an input of at least 32x32 pixels", f"{x.shape[2]}x{x.shape[3]}"))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: (B, 3, H, W)`` float32 normalised -> ``(count_logits (B, 65), grade_logits (B, 4))``."""
        features = self.dropout(self.neck(self.encoder(self._check_input(x))))
        return self.count_head(features), self.grade_head(features)


# ---------------------------------------------------------------------------------------------
# registry


def _vit_encoder(cfg: dict[str, Any]) -> ViTEncoder:
    return ViTEncoder(**{key: cfg[key] for key in _VIT_KEYS})


def _build(name: str, cfg: dict[str, Any]) -> AcneNet:
    dropout = _fraction(cfg["dropout"], "dropout")
    if name == "resnet":
        encoder: nn.Module = ResNetEncoder(cfg["widths"], cfg["blocks"])
        neck: nn.Module = nn.Identity()
        dim, side = encoder.out_features, None
    elif name == "vit":
        encoder = _vit_encoder(cfg)
        neck = nn.Identity()
        dim, side = encoder.out_features, encoder.image_size
    else:
        encoder = FusionEncoder(ResNetEncoder(cfg["widths"], cfg["blocks"]), _vit_encoder(cfg))
        neck = ConcatNeck(encoder.out_features)
        dim, side = neck.out_features, encoder.transformer.image_size
    return AcneNet(
        arch_name=name,
        config=cfg,
        encoder=encoder,
        neck=neck,
        feature_dim=dim,
        dropout=dropout,
        image_size=side,
    )


def _json_ready(cfg: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in cfg.items()}


def preset_config(name: str, preset: str = "small") -> dict[str, Any]:
    """Full constructor kwargs of ``name`` under ``preset`` (``"small"`` or ``"paper"``)."""
    _check_name(name)
    if preset not in PRESETS:
        raise ModelError(expected(f"preset one of {', '.join(PRESETS)}", repr(preset)))
    return _json_ready(PRESETS[preset][name])


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in MODEL_NAMES:
        raise ModelError(expected(f"model one of {', '.join(MODEL_NAMES)}", repr(name)))
    return name


def build_model(name: str, *, preset: str = "small", **config: Any) -> AcneNet:
    """Build registry model ``name`` (``resnet``, ``vit`` or ``fusion``).

    ``preset`` picks the base sizes (``"small"`` default, ``"paper"``); keywords in ``config``
    override single options: ``widths``, ``blocks`` (resnet, fusion); ``image_size``,
    ``embed_dim``, ``depth``, ``heads``, ``mlp_ratio``, ``patch_sizes``, ``token_patch``,
    ``se_reduction`` (vit, fusion); ``dropout`` (all). ``build_model(name, **model_config(m))``
    rebuilds ``m`` exactly. Unknown names, options or bad values raise :class:`ModelError`.
    """
    cfg = preset_config(name, preset)
    allowed = _CONFIG_KEYS[name]
    extra = sorted(set(config) - set(allowed))
    if extra:
        raise ModelError(
            expected(f"{name} options among {', '.join(allowed)}", ", ".join(extra))
        )
    cfg.update(_json_ready(config))
    return _build(name, cfg)


def model_config(model: nn.Module) -> dict[str, Any]:
    """JSON-serialisable kwargs that rebuild ``model``: ``build_model(model.arch_name, **cfg)``."""
    cfg = getattr(model, "config", None)
    if not isinstance(model, AcneNet) or not isinstance(cfg, dict):
        raise ModelError(expected("a model built by medimg.acne.models.build_model", type(model).__name__))
    return _json_ready(dict(cfg))
