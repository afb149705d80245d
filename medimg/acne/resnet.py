"""The CNN backbone of the acne networks: the seed code's ``BasicBlock`` in ResNet stages
(SPEC section 2; seed 001).

* :class:`BasicBlock` -- conv3x3-BN-ReLU-conv3x3-BN + identity or a 1x1-conv/BN shortcut, then
  ReLU.
* :class:`ResNetEncoder` -- stem conv 7x7/2 -> BN -> ReLU -> maxpool 3/2, then one stage per
  entry of ``widths`` (``blocks[i]`` blocks; stride 1 for the first stage, 2 after), global
  average pooling. ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is ResNet-18. Fully
  convolutional up to the pooling: any input of at least 32 x 32.

State-dict keys (stable; weights files depend on them)::

    stem.{0,1}.*, stages.<i>.<j>.{conv1,bn1,conv2,bn2,downsample.{0,1}}.*
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medimg.acne.option_checks import positive_ints
from medimg.common.errors import ModelError, expected

__all__ = ["BasicBlock", "ResNetEncoder"]


def _check_resnet(widths: object, blocks: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    widths = positive_ints(widths, "widths")
    blocks = positive_ints(blocks, "blocks")
    if len(widths) != len(blocks):
        raise ModelError(
            expected("one block count per width", f"{len(widths)} widths and {len(blocks)} block counts")
        )
    return widths, blocks


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows), as in the seed code."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """The seed code's ResNet BasicBlock: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the input
    (through a 1x1 conv + BN ``downsample`` when the stride or width changes), then ReLU."""

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
