"""3D U-Nets for sweat-gland segmentation in fingertip OCT volumes (SPEC section 1).

Two networks share one graph (depth-3 U-Net, channels 32/64/128) and differ only in their
convolution block:

* ``light`` -- every 3x3x3 convolution is a depthwise-separable block
  (depthwise 3x3x3 conv -> BN -> ReLU -> pointwise 1x1x1 conv -> BN -> ReLU);
* ``standard`` -- the "3DUnet" baseline with plain 3x3x3 conv -> BN -> ReLU blocks.

Graph (``m->n`` are channels)::

    encoder: block(1->32), block(32->32)            -> skip1 (full size)
             maxpool 2
             block(32->64), block(64->64)           -> skip2 (1/2 size)
             maxpool 2
             block(64->128), block(128->128)        -> bottleneck (1/4 size)
    decoder: upsample x2, concat skip2 (192 ch), block(192->64), block(64->64)
             upsample x2, concat skip1 (96 ch),  block(96->32),  block(32->32)
    head:    Conv3d(32->1, kernel 1, bias) ; forward() returns logits (the pipeline applies the sigmoid)

Convolutions inside blocks carry no bias (a BatchNorm follows each), so the conv weight counts
are exactly the SPEC's: 71,323 (light) and 1,410,944 (standard). Upsampling is
nearest-neighbour (``nn.Upsample(scale_factor=2, mode="nearest")``, no weights), as Keras'
``UpSampling3D`` used by the paper.

State-dict keys (stable; weights files depend on them)::

    encoder.stages.{0,1,2}.{0,1}.<block params>
    decoder.stages.{0,1}.{0,1}.<block params>
    head.weight, head.bias

with ``<block params>`` = ``depthwise.weight, bn1.*, pointwise.weight, bn2.*`` (depthwise) or
``conv.weight, bn.*`` (standard).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from medimg.common.errors import InputError, ModelError, expected
from medimg.common.models import register_group

__all__ = [
    "BLOCKS",
    "MODELS",
    "DepthwiseSeparableBlock",
    "LightUNet3D",
    "StandardBlock",
    "StandardUNet3D",
    "UNet3D",
    "UNet3DDecoder",
    "UNet3DEncoder",
    "build_model",
    "conv_weight_count",
    "model_names",
]


def _check_channels(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(expected(f"{what} to be a positive integer", repr(value)))
    return value


class DepthwiseSeparableBlock(nn.Module):
    """DS(m->n): depthwise Conv3d(m, m, 3, groups=m) -> BN -> ReLU -> pointwise Conv3d(m, n, 1)
    -> BN -> ReLU.

    Conv weights: ``27*m + m*n`` (no biases: each conv is followed by BatchNorm).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.in_ch = _check_channels(in_ch, "in_ch")
        self.out_ch = _check_channels(out_ch, "out_ch")
        self.depthwise = nn.Conv3d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.bn1 = nn.BatchNorm3d(in_ch)
        self.pointwise = nn.Conv3d(in_ch, out_ch, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))


class StandardBlock(nn.Module):
    """Conv3d(m, n, 3, padding=1) -> BN -> ReLU. Conv weights: ``27*m*n`` (no bias)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.in_ch = _check_channels(in_ch, "in_ch")
        self.out_ch = _check_channels(out_ch, "out_ch")
        self.conv = nn.Conv3d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


BLOCKS: dict[str, type[nn.Module]] = {
    "depthwise": DepthwiseSeparableBlock,
    "standard": StandardBlock,
}


def _double(block: type[nn.Module], in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(block(in_ch, out_ch), block(out_ch, out_ch))


class UNet3DEncoder(nn.Module):
    """Contracting path: one double block per level, 2x max-pooling between levels.

    ``forward`` returns the features of every level, finest first (the last is the bottleneck).
    """

    def __init__(self, block: type[nn.Module], channels: Sequence[int], in_channels: int) -> None:
        super().__init__()
        chans = [in_channels, *channels]
        self.stages = nn.ModuleList(
            _double(block, chans[i], chans[i + 1]) for i in range(len(channels))
        )
        self.pool = nn.MaxPool3d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.pool(x)
            x = stage(x)
            features.append(x)
        return features


class UNet3DDecoder(nn.Module):
    """Expanding path: nearest x2 upsampling, concat with the skip, double block."""

    def __init__(self, block: type[nn.Module], channels: Sequence[int]) -> None:
        super().__init__()
        stages = []
        deeper = channels[-1]
        for skip in reversed(channels[:-1]):
            stages.append(_double(block, deeper + skip, skip))
            deeper = skip
        self.stages = nn.ModuleList(stages)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for stage, skip in zip(self.stages, reversed(features[:-1])):
            x = torch.cat([self.upsample(x), skip], dim=1)
            x = stage(x)
        return x


class UNet3D(nn.Module):
    """Depth-3 3D U-Net for binary segmentation (SPEC section 1, "The two networks").

    Args:
        block: ``"depthwise"`` (light 3D U-Net) or ``"standard"`` (3DUnet baseline).
        channels: feature channels per level, finest first; default ``(32, 64, 128)``.
        in_channels: input channels (1 for OCT intensity volumes).

    ``forward(x)`` takes ``(B, in_channels, D, H, W)`` float and returns ``(B, 1, D, H, W)``
    logits (pre-sigmoid scores), as every medimg network does: probabilities are made in one
    place, :func:`medimg.common.activation.activate`. D, H and W must be divisible by ``2**(len(channels)-1)``
    (4 by default). Upsampling is nearest-neighbour, without weights.
    ``channels_last_3d`` models and inputs are supported.
    """

    # Each BatchNorm is registered right after the convolution whose output it normalises, so
    # inference may fold it into that convolution (medimg.common.batchnorm_folding).
    conv_then_batchnorm = True

    def __init__(
        self,
        block: str = "depthwise",
        channels: Sequence[int] = (32, 64, 128),
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ModelError(expected(f"block one of {', '.join(BLOCKS)}", repr(block)))
        if (
            isinstance(channels, (str, bytes))
            or not isinstance(channels, Sequence)
            or len(channels) < 2
        ):
            raise ModelError(
                expected("channels as a sequence of at least 2 positive integers", repr(channels))
            )
        channels = tuple(_check_channels(c, "every channel count") for c in channels)
        in_channels = _check_channels(in_channels, "in_channels")
        block_cls = BLOCKS[block]
        self.block = block
        self.channels = channels
        self.in_channels = in_channels
        self.divisor = 2 ** (len(channels) - 1)
        self.arch_name = "light" if block == "depthwise" else "standard"
        self.encoder = UNet3DEncoder(block_cls, channels, in_channels)
        self.decoder = UNet3DDecoder(block_cls, channels)
        self.head = nn.Conv3d(channels[0], 1, 1, bias=True)

    def _check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(expected("a torch.Tensor", type(x).__name__))
        if x.dim() != 5:
            raise InputError(expected("a 5-D tensor (B, C, D, H, W)", f"shape {tuple(x.shape)}"))
        if x.shape[1] != self.in_channels:
            raise InputError(
                expected(f"{self.in_channels} input channel(s)", f"shape {tuple(x.shape)}")
            )
        if not x.is_floating_point():
            raise InputError(expected("a floating-point tensor", x.dtype))
        spatial = tuple(x.shape[2:])
        if any(s < self.divisor or s % self.divisor for s in spatial):
            raise InputError(
                expected(f"spatial size (D, H, W) divisible by {self.divisor}", f"{spatial}")
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gland logits, shape ``(B, 1, D, H, W)``."""
        x = self._check_input(x)
        return self.head(self.decoder(self.encoder(x)))


class LightUNet3D(UNet3D):
    """The paper's light 3D U-Net: ``UNet3D(block="depthwise")``."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128), in_channels: int = 1) -> None:
        super().__init__(block="depthwise", channels=channels, in_channels=in_channels)


class StandardUNet3D(UNet3D):
    """The paper's "3DUnet" baseline: ``UNet3D(block="standard")``."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128), in_channels: int = 1) -> None:
        super().__init__(block="standard", channels=channels, in_channels=in_channels)


MODELS: dict[str, Callable[..., UNet3D]] = {
    "light": LightUNet3D,
    "standard": StandardUNet3D,
}


def model_names() -> list[str]:
    """Registry names, in registry order (``["light", "standard"]``)."""
    return list(MODELS)


def build_model(name: str, **kwargs: object) -> UNet3D:
    """Build a registered model; ``kwargs`` (``channels``, ``in_channels``) go to its constructor.

    The result carries ``.arch_name == name``. Unknown names raise :class:`ModelError`.
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ModelError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    allowed = {"channels", "in_channels"}
    extra = sorted(set(kwargs) - allowed)
    if extra:
        raise ModelError(expected(f"options among {', '.join(sorted(allowed))}", ", ".join(extra)))
    model = MODELS[name](**kwargs)
    model.arch_name = name
    return model


def conv_weight_count(model: nn.Module) -> int:
    """Number of convolution weights (biases, BatchNorm and other parameters excluded)."""
    return sum(
        m.weight.numel() for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)
    )


def model_config(model: nn.Module) -> dict:
    """JSON keyword arguments that rebuild ``model`` with :func:`build_model` (its name aside)."""
    if not isinstance(model, UNet3D):
        raise ModelError(expected("a network built by medimg.oct_glands.models.build_model", type(model).__name__))
    return {"channels": list(model.channels), "in_channels": model.in_channels}


# uint8 log-compressed intensity scaled to [0, 1], as the shipped weights were trained
#: Inputs are the scan's grey levels centred and scaled by its tissue percentiles (see
#: medimg.oct_glands.intensity.tissue_levels); weights trained on ``/255`` carry ``divisor`` instead.
INPUT_PREPROCESSING = {"intensity": "uint8", "scaling": "tissue", "percentiles": [5.0, 50.0, 95.0], "tissue_depth": 80}

register_group("oct", list(MODELS), build_model, config_of=model_config, preprocessing=INPUT_PREPROCESSING,
               output={"activation": "sigmoid", "channels": ["gland"]}, shipped={"light": "oct-light"})
