"""The lesion network: a small fully convolutional encoder-decoder that finds acne lesions and,
from the same features, predicts the count and grade distributions of the LDL heads.

Trained on the real ACNE04 boxes (:mod:`medimg.acne.lesion_training`), it answers three ways
per photo ``(B, 3, S, S)``, all LOGITS::

    count_logits   (B, 65)           LDL count distribution, bin i <-> count i + 1 (as AcneNet)
    grade_logits   (B, 4)            mild, moderate, severe, very severe
    heatmap_logits (B, 1, S/4, S/4)  CenterNet-style lesion-centre heat-map (sigmoid)
    size_logits    (B, 2, S/4, S/4)  log of the lesion box (width, height) in input pixels, read
                                     at a detected centre

Graph (``encoder -> decoder -> heads``):

* ``encoder`` -- a stem of two 3x3 convs (stride 2) then one residual stage per width, each
  halving the resolution: strides 4, 8, 16, 32 for the default widths.
* ``decoder`` -- feature-pyramid upsampling: the deepest features are upsampled step by step and
  added to 1x1 projections of each shallower stage, down to stride 4.
* ``heatmap_head`` / ``size_head`` -- 3x3 conv + ReLU + 1x1 conv on the stride-4 features.
* ``count_head`` / ``grade_head`` -- linear layers on the global average of the deepest
  features concatenated with the heat-map's total (a soft lesion count), so the LDL heads see
  what the detector sees.

Any input whose sides are multiples of 32 works; the pipeline resizes photos to the weights'
``input_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medimg.acne.labels import N_COUNT_BINS, N_GRADES
from medimg.acne.option_checks import positive_ints
from medimg.acne.resnet import BasicBlock
from medimg.common.errors import ModelError, expected

__all__ = ["LESION_PRESET", "OUTPUT_STRIDE", "LesionNet", "build_lesionnet"]

OUTPUT_STRIDE = 4
LESION_PRESET: dict[str, Any] = {"widths": [16, 32, 64, 96, 128], "decoder_width": 32}
_CONFIG_KEYS = tuple(LESION_PRESET)


def _conv_bn_relu(inplanes: int, planes: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(planes),
                         nn.ReLU(inplace=True))


class LesionEncoder(nn.Module):
    """Stem (stride 2) then one downsampling residual stage per remaining width.

    ``forward(x)`` -> list of stage features, strides 4, 8, ..., finest first.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn_relu(3, widths[0], 2), _conv_bn_relu(widths[0], widths[0]))
        self.stages = nn.ModuleList(
            nn.Sequential(BasicBlock(widths[i], widths[i + 1], stride=2), BasicBlock(widths[i + 1], widths[i + 1]))
            for i in range(len(widths) - 1)
        )
        self.out_channels = tuple(widths[1:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class PyramidDecoder(nn.Module):
    """Upsample the deepest features and add 1x1 projections of each shallower stage -> stride 4."""

    def __init__(self, in_channels: Sequence[int], width: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = _conv_bn_relu(width, width)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            x = F.interpolate(x, size=feature.shape[-2:], mode="nearest") + lateral(feature)
        return self.smooth(x)


def _map_head(width: int, channels: int, bias: float = 0.0) -> nn.Sequential:
    head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, channels, 1))
    nn.init.constant_(head[-1].bias, bias)
    return head


class LesionNet(nn.Module):
    """``encoder -> decoder -> (count_head, grade_head, heatmap_head, size_head)``; module docstring."""

    def __init__(self, *, widths: Sequence[int], decoder_width: int) -> None:
        super().__init__()
        self.arch_name = "lesion"
        self.config = {"widths": list(widths), "decoder_width": int(decoder_width)}
        self.image_size = None
        self.encoder = LesionEncoder(widths)
        self.decoder = PyramidDecoder(self.encoder.out_channels, decoder_width)
        # prior of a lesion centre in ~1 % of stride-4 cells (CenterNet's focal-loss start)
        self.heatmap_head = _map_head(decoder_width, 1, bias=-4.6)
        self.size_head = _map_head(decoder_width, 2, bias=3.0)
        pooled = self.encoder.out_channels[-1] + 1
        self.count_head = nn.Linear(pooled, N_COUNT_BINS)
        self.grade_head = nn.Linear(pooled, N_GRADES)

    def _check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ModelError(expected("a torch.Tensor", type(x).__name__))
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ModelError(expected("a float image batch of shape (B, 3, H, W)", f"{x.dtype} shape {tuple(x.shape)}"))
        if x.shape[2] % 32 or x.shape[3] % 32 or min(x.shape[2:]) < 64:
            raise ModelError(expected("input sides that are multiples of 32, at least 64", f"{x.shape[2]}x{x.shape[3]}"))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x: (B, 3, H, W)`` normalised -> ``(count (B, 65), grade (B, 4), heatmap (B, 1, H/4, W/4),
        size (B, 2, H/4, W/4))`` logits."""
        features = self.encoder(self._check_input(x))
        fine = self.decoder(features)
        heatmap = self.heatmap_head(fine)
        soft_count = torch.sigmoid(heatmap).sum(dim=(1, 2, 3)).unsqueeze(1) / 10.0
        pooled = torch.cat([features[-1].mean(dim=(2, 3)), soft_count], dim=1)
        return self.count_head(pooled), self.grade_head(pooled), heatmap, self.size_head(fine)


def build_lesionnet(**config: Any) -> LesionNet:
    """A :class:`LesionNet` from :data:`LESION_PRESET` overridden by ``config`` (``widths``,
    ``decoder_width``); unknown options or bad values raise :class:`ModelError`."""
    extra = sorted(set(config) - set(_CONFIG_KEYS))
    if extra:
        raise ModelError(expected(f"lesion options among {', '.join(_CONFIG_KEYS)}", ", ".join(extra)))
    cfg = {**LESION_PRESET, **config}
    widths = positive_ints(cfg["widths"], "widths")
    if len(widths) < 3:
        raise ModelError(expected("at least 3 widths (stem and two stages)", len(widths)))
    width = positive_ints([cfg["decoder_width"]], "decoder_width")[0]
    return LesionNet(widths=widths, decoder_width=width)
