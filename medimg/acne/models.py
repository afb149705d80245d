"""Acne networks: ResNet, multi-scale ViT and their fusion, each with a count and a grade head
(SPEC section 2; seed 001).

Every network maps a normalised photo ``(B, 3, 224, 224)`` to two sets of LOGITS::

    count_logits (B, 65)   bin i <-> lesion count i + 1 (counts 1..65)
    grade_logits (B, 4)    mild, moderate, severe, very severe

Softmax is left to the loss (:func:`medimg.acne.losses.ldl_loss`) and to the pipeline.

Graph, shared by all three (``model.encoder -> model.neck -> model.count_head / grade_head``):

* ``resnet`` -- :class:`medimg.acne.resnet.ResNetEncoder`: the seed code's ``BasicBlock`` in
  ResNet stages, global average pooling. ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is
  ResNet-18.
* ``vit`` -- :class:`medimg.acne.vit.ViTEncoder`: the report's ViT (class token, learned
  positional embedding, pre-norm transformer blocks, final LayerNorm, class token as the feature)
  with the report's multi-branch patch embedding (one strided conv per patch size, fused by
  squeeze-and-excitation channel attention).
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
  4 heads, MLP ratio 4, patches 8/16/32. The fusion has 711,469 parameters (2.85 MB float32),
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

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from medimg.acne.labels import N_COUNT_BINS, N_GRADES
from medimg.acne.option_checks import fraction
from medimg.acne.resnet import ResNetEncoder
from medimg.acne.vit import ViTEncoder
from medimg.acne.transforms import ACNE04_MEAN, ACNE04_STD, INPUT_SIZE
from medimg.common.errors import ModelError, expected
from medimg.common.models import register_group

__all__ = [
    "MODEL_NAMES",
    "N_COUNT_BINS",
    "N_GRADES",
    "PRESETS",
    "AcneNet",
    "ConcatNeck",
    "FusionEncoder",
    "build_model",
    "model_config",
    "preset_config",
]

MODEL_NAMES = ("resnet", "vit", "fusion")

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
    dropout = fraction(cfg["dropout"], "dropout")
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


# RGB resized straight to a square and standardised with ACNE04's channel statistics
INPUT_PREPROCESSING = {"input_size": INPUT_SIZE, "resize": "bilinear", "mean": list(ACNE04_MEAN), "std": list(ACNE04_STD)}
HEADS_OUTPUT = {"heads": [
    {"name": "count", "activation": "softmax", "bins": N_COUNT_BINS},
    {"name": "grade", "activation": "softmax", "classes": N_GRADES},
]}

register_group("acne", MODEL_NAMES, build_model, config_of=model_config, preprocessing=INPUT_PREPROCESSING, output=HEADS_OUTPUT,
               shipped={"fusion": "acne-fusion"})


# ---------------------------------------------------------------------------------------------
# the lesion network: detector heat-map + LDL heads (medimg.acne.lesionnet), trained on real boxes

LESION_PREPROCESSING = {"input_size": 256, "resize": "bilinear", "mean": list(ACNE04_MEAN), "std": list(ACNE04_STD)}
LESION_OUTPUT = {"heads": [
    {"name": "count", "activation": "softmax", "bins": N_COUNT_BINS},
    {"name": "grade", "activation": "softmax", "classes": N_GRADES},
    {"name": "heatmap", "activation": "sigmoid", "stride": 4},
    {"name": "size", "activation": "identity", "stride": 4},
]}


def _build_lesion(name: str, **config: Any) -> nn.Module:
    from medimg.acne.lesionnet import build_lesionnet

    return build_lesionnet(**config)


def _lesion_config(model: nn.Module) -> dict[str, Any]:
    from medimg.acne.lesionnet import LesionNet

    if not isinstance(model, LesionNet):
        raise ModelError(expected("a network built by medimg.acne.lesionnet.build_lesionnet", type(model).__name__))
    return dict(model.config)


register_group("acne", ("lesion",), _build_lesion, config_of=_lesion_config, preprocessing=LESION_PREPROCESSING, output=LESION_OUTPUT,
               shipped={"lesion": "acne-lesion"})
