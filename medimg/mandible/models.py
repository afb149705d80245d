"""2D U-Nets for mandible segmentation in CT slices (SPEC section 3, seed 002).

Four variants, the paper's ablation (Table 3), built by name with :func:`build_model`:

============== ===================================== ==========================
arch           encoder                               decoder modules
============== ===================================== ==========================
unet           plain double-conv ("VGG-style")       Up modules without CBAM
res-unet       ResNet-50 (bottleneck 3-4-6-3)        Up modules without CBAM
cbam-unet      plain double-conv                     Up-CBAM modules
res-cbam-unet  ResNet-50                             Up-CBAM modules (the paper)
============== ===================================== ==========================

Graph at ``width=1.0`` (``c@s``: c channels at 1/s of the input size)::

    ResNet-50 encoder (torchvision names, so a torchvision resnet50 state dict loads as is):
      f1 = relu(bn1(conv1(x)))            conv1 7x7 stride 2             64@2
      f2 = layer1(maxpool(f1))            3 bottlenecks, mid 64          256@4
      f3 = layer2(f2)                     4 bottlenecks, mid 128, s2     512@8
      f4 = layer3(f3)                     6 bottlenecks, mid 256, s2     1024@16
      f5 = layer4(f4)                     3 bottlenecks, mid 512, s2     2048@32
    Plain encoder (same five levels, so the ablation changes only the encoder's blocks):
      f1 = double_conv(x), first conv stride 2                           64@2
      f2..f5 = double_conv(maxpool(previous))                            128@4 ... 1024@32
    decoder (five Up[-CBAM] modules; each: CBAM -> conv3x3-BN-ReLU x2 -> bilinear upsample x2):
      d5 = up(f5)                    -> 512@16
      d4 = up(cat(f4, d5))           -> 256@8
      d3 = up(cat(f3, d4))           -> 128@4
      d2 = up(cat(f2, d3))           -> 64@2
      d1 = up(cat(f1, d2))           -> 64@1
    head: Conv2d(64 -> 1, kernel 1, bias) -> logits (B, 1, H, W)

The Up-CBAM order (attention on the module input, two convolutions, then the upsampling) is
the paper's section 1.2: "先通过 CBAM 模块计算注意力, 然后进行两次卷积 ... 最后进行一次上采样".
Because the ResNet stem already halves the size, the last module's convolutions run at 1/2
size and its upsampling restores the input size; the 1x1 head then classifies every pixel.

Bottleneck blocks are torchvision's "v1.5" (the stride sits on the 3x3 conv). The first block
of every stage is the paper's "conv block" (projection shortcut ``downsample`` = 1x1 conv + BN),
the others are "identity blocks" (the input is added unchanged).

**Width multiplier.** Every channel count ``c`` above becomes ``scaled(c, width) = max(8,
floor(c * width + 0.5))``; bottleneck outputs stay ``4 x`` their (scaled) middle width.
``width=1.0`` is exactly the paper-size network (its encoder has torchvision's resnet50 trunk,
23,508,032 parameters); the shipped default uses ``width=0.125`` (about 0.6 M parameters).

Inputs must have a height and width that are multiples of 32 (five halvings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from medimg.common.errors import ModelError, expected
from medimg.common.models import register_group
from medimg.mandible.preprocess import DEFAULT_INPUT_SIZE, DEFAULT_WINDOW, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "ARCHS",
    "BOTTLENECK_WIDTHS",
    "CBAM",
    "DECODER_WIDTHS",
    "DEFAULT_ARCH",
    "DIVISOR",
    "PLAIN_WIDTHS",
    "STAGE_BLOCKS",
    "Bottleneck",
    "ChannelAttention",
    "DoubleConv",
    "MandibleUNet",
    "PlainEncoder",
    "ResNet50Encoder",
    "SpatialAttention",
    "UNetDecoder",
    "UpBlock",
    "build_model",
    "model_config",
    "scaled",
]

ARCHS = ("unet", "res-unet", "cbam-unet", "res-cbam-unet")
DEFAULT_ARCH = "res-cbam-unet"

STEM_WIDTH = 64
BOTTLENECK_WIDTHS = (64, 128, 256, 512)
STAGE_BLOCKS = (3, 4, 6, 3)
EXPANSION = 4
PLAIN_WIDTHS = (64, 128, 256, 512, 1024)
DECODER_WIDTHS = (512, 256, 128, 64, 64)
DIVISOR = 32
MIN_CHANNELS = 8
MAX_WIDTH = 4.0  # beyond this a 512x512 forward no longer fits in common GPU memory


def scaled(channels: int, width: float) -> int:
    """Channel count under the width multiplier: ``max(8, floor(channels * width + 0.5))``."""
    return max(MIN_CHANNELS, int(math.floor(channels * width + 0.5)))


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(expected(f"{what} as a positive integer", repr(value)))
    return value


def _odd_kernel(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ModelError(expected("cbam_kernel as an odd positive integer (e.g. 3 or 7)", repr(value)))
    return value


def _width(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= MAX_WIDTH):
        raise ModelError(expected(f"width as a number in (0, {MAX_WIDTH:g}]", repr(value)))
    return float(value)


# --------------------------------------------------------------------------- attention


class ChannelAttention(nn.Module):
    """CBAM channel attention (paper eq. 1): ``sigmoid(MLP(avgpool F) + MLP(maxpool F))``.

    The shared MLP is ``fc1`` (C -> hidden, 1x1 conv) -> ReLU -> ``fc2`` (hidden -> C), both
    without bias as in the reference CBAM code, with ``hidden = max(1, C // reduction)``.

    ``forward(x: (B, C, H, W))`` returns the weights ``M_c``: (B, C, 1, 1) in (0, 1).
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        channels = _positive_int(channels, "channels")
        reduction = _positive_int(reduction, "cbam_reduction")
        self.channels = channels
        self.hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, self.hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(self.hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        pooled = torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)])
        both = self.fc2(self.relu(self.fc1(pooled)))  # one MLP call for the avg and max rows
        return torch.sigmoid(both[:batch] + both[batch:])


class SpatialAttention(nn.Module):
    """CBAM spatial attention (paper eq. 2): ``sigmoid(conv_kxk([mean_c F; max_c F]))``.

    ``conv`` is Conv2d(2 -> 1, k x k, padding k // 2, no bias).
    ``forward(x: (B, C, H, W))`` returns the weights ``M_s``: (B, 1, H, W) in (0, 1).
    """

    def __init__(self, *, kernel_size: int = 7) -> None:
        super().__init__()
        kernel_size = _odd_kernel(kernel_size)
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    ``F_c = M_c(F) * F``; ``F_out = M_s(F_c) * F_c``. Output shape equals the input's.
    """

    def __init__(self, channels: int, *, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction=reduction)
        self.spatial = SpatialAttention(kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


# --------------------------------------------------------------------------- encoders


class Bottleneck(nn.Module):
    """ResNet bottleneck with torchvision's names (conv1/bn1, conv2/bn2, conv3/bn3, downsample).

    ``downsample=True`` gives the paper's "conv block" (projection shortcut: 1x1 conv with the
    block's stride + BN); otherwise an "identity block" (requires ``in_ch == 4 * mid_ch`` and
    stride 1).
    """

    def __init__(self, in_ch: int, mid_ch: int, *, stride: int = 1, downsample: bool = False) -> None:
        super().__init__()
        out_ch = mid_ch * EXPANSION
        if not downsample and (stride != 1 or in_ch != out_ch):
            raise ModelError(expected(f"an identity block with stride 1 and {out_ch} input channels", f"stride {stride}, {in_ch} channels"))
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNet50Encoder(nn.Module):
    """ResNet-50 trunk (no avgpool/fc) returning the five feature maps ``[f1, ..., f5]``.

    State-dict keys equal torchvision's ``resnet50`` ones without ``fc.*``
    (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``, ...).
    ``channels`` lists the five feature widths (``(64, 256, 512, 1024, 2048)`` at width 1).
    """

    def __init__(self, *, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        stem = scaled(STEM_WIDTH, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = [stem]
        in_ch = stem
        for index, (mid, blocks) in enumerate(zip(BOTTLENECK_WIDTHS, STAGE_BLOCKS)):
            mid_ch = scaled(mid, width)
            stride = 1 if index == 0 else 2
            layers = [Bottleneck(in_ch, mid_ch, stride=stride, downsample=True)]
            in_ch = mid_ch * EXPANSION
            layers += [Bottleneck(in_ch, mid_ch) for _ in range(blocks - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
            channels.append(in_ch)
        self.channels = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]


class DoubleConv(nn.Module):
    """(conv3x3 -> BN -> ReLU) twice; the first conv may carry a stride."""

    def __init__(self, in_ch: int, out_ch: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class PlainEncoder(nn.Module):
    """The plain U-Net encoder of the ablation: one double conv per level, at the same five
    levels (1/2 ... 1/32) as the ResNet trunk. The first conv has stride 2 like the ResNet stem;
    deeper levels max-pool first. ``channels`` = ``(64, 128, 256, 512, 1024)`` at width 1.
    """

    def __init__(self, *, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        channels = tuple(scaled(c, width) for c in PLAIN_WIDTHS)
        previous = (in_channels, *channels[:-1])
        self.stages = nn.ModuleList(
            DoubleConv(p, c, stride=2 if i == 0 else 1) for i, (p, c) in enumerate(zip(previous, channels))
        )
        self.pool = nn.MaxPool2d(2)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x if index == 0 else self.pool(x))
            features.append(x)
        return features


# --------------------------------------------------------------------------- decoder


class UpBlock(nn.Module):
    """Up-CBAM module (paper Fig. 2): CBAM -> DoubleConv -> bilinear upsample x2.

    With ``attention=False`` the CBAM is an identity (the ablation's no-CBAM variants).
    Output: ``(B, out_ch, 2H, 2W)``.
    """

    def __init__(self, in_ch: int, out_ch: int, *, attention: bool, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.attention = CBAM(in_ch, reduction=reduction, kernel_size=kernel_size) if attention else nn.Identity()
        self.convs = DoubleConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.attention(x))
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class UNetDecoder(nn.Module):
    """Five Up[-CBAM] modules: the first takes ``f5``, each next one ``cat(skip, previous)``."""

    def __init__(self, encoder_channels: Sequence[int], *, width: float, attention: bool, reduction: int, kernel_size: int) -> None:
        super().__init__()
        widths = tuple(scaled(c, width) for c in DECODER_WIDTHS)
        skips = tuple(reversed(encoder_channels))  # f5, f4, ..., f1
        inputs = [skips[0]] + [skip + out for skip, out in zip(skips[1:], widths[:-1])]
        self.blocks = nn.ModuleList(
            UpBlock(i, o, attention=attention, reduction=reduction, kernel_size=kernel_size) for i, o in zip(inputs, widths)
        )
        self.channels = widths

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        skips = list(reversed(features))
        x = self.blocks[0](skips[0])
        for block, skip in zip(self.blocks[1:], skips[1:]):
            x = block(torch.cat([skip, x], dim=1))
        return x


# --------------------------------------------------------------------------- network


class MandibleUNet(nn.Module):
    """U-Net for binary mandible segmentation; see the module docstring for the graph.

    Attributes: ``arch`` (registry name), ``config`` (the keyword arguments of
    :func:`build_model`, without ``arch``), ``encoder``, ``decoder``, ``head``,
    ``encoder_frozen`` (set by :func:`medimg.mandible.encoder_weights.freeze_encoder`).

    ``forward(x: (B, in_channels, H, W) float32)`` with H, W multiples of 32 returns logits
    ``(B, 1, H, W)`` (apply a sigmoid for probabilities).
    """

    divisor = DIVISOR

    def __init__(
        self,
        arch: str = DEFAULT_ARCH,
        *,
        width: float = 1.0,
        cbam_reduction: int = 16,
        cbam_kernel: int = 7,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not isinstance(arch, str) or arch not in ARCHS:
            raise ModelError(expected(f"arch one of {', '.join(ARCHS)}", repr(arch)))
        width = _width(width)
        cbam_reduction = _positive_int(cbam_reduction, "cbam_reduction")
        cbam_kernel = _odd_kernel(cbam_kernel)
        in_channels = _positive_int(in_channels, "in_channels")
        self.arch = arch
        self.config = {"width": width, "cbam_reduction": cbam_reduction, "cbam_kernel": cbam_kernel, "in_channels": in_channels}
        self.in_channels = in_channels
        self.encoder_frozen = False
        encoder_cls = ResNet50Encoder if arch.startswith("res-") else PlainEncoder
        self.encoder = encoder_cls(width=width, in_channels=in_channels)
        self.decoder = UNetDecoder(
            self.encoder.channels, width=width, attention="cbam" in arch, reduction=cbam_reduction, kernel_size=cbam_kernel
        )
        self.head = nn.Conv2d(self.decoder.channels[-1], 1, 1, bias=True)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's ResNet initialisation, applied to the whole network.
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not self.head:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ModelError(expected("a torch.Tensor", type(x).__name__))
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ModelError(expected(f"a (B, {self.in_channels}, H, W) tensor", f"shape {tuple(x.shape)}"))
        if not x.is_floating_point():
            raise ModelError(expected("a floating-point tensor", x.dtype))
        height, width = int(x.shape[2]), int(x.shape[3])
        if height < DIVISOR or width < DIVISOR or height % DIVISOR or width % DIVISOR:
            raise ModelError(expected(f"height and width that are multiples of {DIVISOR}", f"{height}x{width}"))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        return self.head(self.decoder(self.encoder(x)))

    def train(self, mode: bool = True) -> "MandibleUNet":
        # A frozen encoder keeps its BatchNorm layers in eval mode even while the rest trains
        # (training loops call model.train() every epoch): see freeze_encoder for why.
        super().train(mode)
        if mode and self.encoder_frozen:
            for module in self.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def build_model(
    arch: str = DEFAULT_ARCH,
    *,
    width: float = 1.0,
    cbam_reduction: int = 16,
    cbam_kernel: int = 7,
    in_channels: int = 3,
) -> MandibleUNet:
    """Build one of :data:`ARCHS`.

    Parameters
    ----------
    arch : "unet" | "res-unet" | "cbam-unet" | "res-cbam-unet"
    width : channel multiplier in (0, 4]; 1.0 is the paper-size network
    cbam_reduction : CBAM channel-MLP reduction ratio r (hidden = max(1, C // r))
    cbam_kernel : CBAM spatial-attention kernel size (odd)
    in_channels : input channels (3: the CT window replicated for the ImageNet-style encoder)

    Unknown architectures or invalid options raise :class:`ModelError`. Rebuild a saved network
    with ``build_model(arch, **model_config(model))``.
    """
    return MandibleUNet(arch, width=width, cbam_reduction=cbam_reduction, cbam_kernel=cbam_kernel, in_channels=in_channels)


def model_config(model: nn.Module) -> dict:
    """JSON-serialisable keyword arguments that rebuild ``model`` with :func:`build_model`
    (``width``, ``cbam_reduction``, ``cbam_kernel``, ``in_channels``; the arch is ``model.arch``)."""
    config = getattr(model, "config", None)
    if not isinstance(model, MandibleUNet) or not isinstance(config, dict):
        raise ModelError(expected("a network built by medimg.mandible.models.build_model", type(model).__name__))
    return dict(config)


# The CT window and the ImageNet statistics the encoder expects (see medimg.mandible.preprocess)
INPUT_PREPROCESSING = {
    "window_level": DEFAULT_WINDOW[0], "window_width": DEFAULT_WINDOW[1], "input_size": DEFAULT_INPUT_SIZE, "channels": 3,
    "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
}

register_group("mandible", ARCHS, build_model, config_of=model_config, preprocessing=INPUT_PREPROCESSING,
               output={"activation": "sigmoid", "channels": ["mandible"]}, shipped={DEFAULT_ARCH: "mandible-res-cbam-unet"})
