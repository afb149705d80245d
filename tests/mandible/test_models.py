"""Tests for medimg.mandible.models (SPEC section 3, "Model"; paper sections 1.1-1.3)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from medimg.common.errors import ModelError
from medimg.mandible.models import (
    ARCHS,
    CBAM,
    Bottleneck,
    ChannelAttention,
    MandibleUNet,
    PlainEncoder,
    ResNet50Encoder,
    SpatialAttention,
    build_model,
    model_config,
    scaled,
)

TORCHVISION_RESNET50_TRUNK_PARAMS = 23_508_032  # resnet50: 25,557,032 minus fc (2048 * 1000 + 1000)
TORCHVISION_RESNET50_KEYS_WITHOUT_FC = 318  # 53 conv weights + 53 BN x 5 tensors


@pytest.fixture(scope="module")
def full_encoder():
    with torch.device("meta"):
        return ResNet50Encoder(width=1.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_every_arch(arch):
    torch.manual_seed(0)
    model = build_model(arch, width=0.125).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
        wide = model(torch.randn(1, 3, 32, 64))
    assert logits.shape == (2, 1, 64, 64)
    assert wide.shape == (1, 1, 32, 64)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert model.arch == arch


def test_default_arch_is_the_papers():
    with torch.device("meta"):
        model = build_model(width=0.125)
    assert model.arch == "res-cbam-unet"
    assert isinstance(model.encoder, ResNet50Encoder)
    assert all(isinstance(block.attention, CBAM) for block in model.decoder.blocks)


@pytest.mark.parametrize(
    ("arch", "encoder_cls", "has_cbam"),
    [("unet", PlainEncoder, False), ("res-unet", ResNet50Encoder, False), ("cbam-unet", PlainEncoder, True), ("res-cbam-unet", ResNet50Encoder, True)],
)
def test_ablation_variants_differ_only_as_named(arch, encoder_cls, has_cbam):
    with torch.device("meta"):
        model = build_model(arch, width=0.125)
    assert isinstance(model.encoder, encoder_cls)
    assert any(isinstance(m, CBAM) for m in model.modules()) is has_cbam
    assert sum(isinstance(m, CBAM) for m in model.decoder.modules()) == (5 if has_cbam else 0)
    assert isinstance(model.head, nn.Conv2d) and model.head.out_channels == 1 and model.head.kernel_size == (1, 1)


def test_resnet50_trunk_has_torchvision_parameter_count(full_encoder):
    assert sum(p.numel() for p in full_encoder.parameters()) == TORCHVISION_RESNET50_TRUNK_PARAMS
    assert full_encoder.channels == (64, 256, 512, 1024, 2048)


def test_encoder_of_full_model_is_the_resnet50_trunk():
    with torch.device("meta"):
        model = build_model("res-cbam-unet", width=1.0)
    assert sum(p.numel() for p in model.encoder.parameters()) == TORCHVISION_RESNET50_TRUNK_PARAMS
    assert model.decoder.channels == (512, 256, 128, 64, 64)


def test_encoder_keys_follow_torchvision(full_encoder):
    keys = full_encoder.state_dict().keys()
    assert len(keys) == TORCHVISION_RESNET50_KEYS_WITHOUT_FC
    for key in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.num_batches_tracked",
        "layer2.3.bn3.weight",
        "layer3.5.conv2.weight",
        "layer4.2.bn3.bias",
    ):
        assert key in keys
    state = full_encoder.state_dict()
    assert tuple(state["conv1.weight"].shape) == (64, 3, 7, 7)
    assert tuple(state["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(state["layer4.0.conv2.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1)


def test_block_structure_3_4_6_3_with_projection_only_in_first_blocks(full_encoder):
    stages = [full_encoder.layer1, full_encoder.layer2, full_encoder.layer3, full_encoder.layer4]
    assert [len(stage) for stage in stages] == [3, 4, 6, 3]
    for index, stage in enumerate(stages):
        assert all(isinstance(block, Bottleneck) for block in stage)
        assert stage[0].downsample is not None  # "conv block"
        assert all(block.downsample is None for block in stage[1:])  # "identity blocks"
        assert stage[0].conv2.stride == ((1, 1) if index == 0 else (2, 2))
        assert stage[0].downsample[0].stride == stage[0].conv2.stride
        assert all(block.conv2.stride == (1, 1) for block in stage[1:])
    assert full_encoder.conv1.kernel_size == (7, 7) and full_encoder.conv1.stride == (2, 2)
    assert isinstance(full_encoder.maxpool, nn.MaxPool2d)


@pytest.mark.parametrize("encoder_cls", [ResNet50Encoder, PlainEncoder])
def test_encoder_feature_levels(encoder_cls):
    encoder = encoder_cls(width=0.125).eval()
    with torch.no_grad():
        features = encoder(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in features] == [32, 16, 8, 4, 2]
    assert [f.shape[1] for f in features] == list(encoder.channels)
    expected_channels = (8, 32, 64, 128, 256) if encoder_cls is ResNet50Encoder else (8, 16, 32, 64, 128)
    assert encoder.channels == expected_channels


def test_width_rounding():
    assert scaled(64, 1.0) == 64
    assert scaled(64, 0.125) == 8
    assert scaled(100, 0.125) == 13  # 12.5 rounds half up
    assert scaled(64, 0.05) == 8  # floor of 8 channels
    with torch.device("meta"):
        model = build_model("res-unet", width=0.5)
    assert model.encoder.channels == (32, 128, 256, 512, 1024)
    assert model.decoder.channels == (256, 128, 64, 32, 32)


def test_decoder_module_order_cbam_convs_then_upsample():
    torch.manual_seed(0)
    model = build_model("res-cbam-unet", width=0.125).eval()
    block = model.decoder.blocks[2]
    x = torch.randn(1, block.convs.conv1.in_channels, 8, 8)
    with torch.no_grad():
        manual = nn.functional.interpolate(block.convs(block.attention(x)), scale_factor=2, mode="bilinear", align_corners=False)
        assert torch.equal(block(x), manual)
    assert block(x).shape == (1, block.convs.conv2.out_channels, 16, 16)
    # module inputs: f5 alone, then cat(skip, previous output)
    assert [b.convs.conv1.in_channels for b in model.decoder.blocks] == [256, 128 + 64, 64 + 32, 32 + 16, 8 + 8]


def test_cbam_keeps_shape_and_maps_are_in_unit_interval():
    torch.manual_seed(0)
    cbam = CBAM(32, reduction=16, kernel_size=7)
    x = torch.randn(2, 32, 10, 12) * 5
    channel_map = cbam.channel(x)
    spatial_map = cbam.spatial(x)
    assert cbam(x).shape == x.shape
    assert channel_map.shape == (2, 32, 1, 1)
    assert spatial_map.shape == (2, 1, 10, 12)
    for weights in (channel_map, spatial_map):
        assert (weights > 0).all() and (weights < 1).all()
    assert cbam.channel.hidden == 2
    assert CBAM(8, reduction=16).channel.hidden == 1  # max(1, C // r)
    assert cbam.spatial.conv.kernel_size == (7, 7) and cbam.spatial.conv.padding == (3, 3)


def test_cbam_is_channel_then_spatial():
    torch.manual_seed(1)
    cbam = CBAM(8, reduction=4, kernel_size=3)
    x = torch.randn(1, 8, 6, 6)
    refined = x * cbam.channel(x)
    assert torch.allclose(cbam(x), refined * cbam.spatial(refined))


def test_channel_attention_hand_check():
    attention = ChannelAttention(4, reduction=2)
    with torch.no_grad():
        attention.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, -1, 0]]).reshape(2, 4, 1, 1))
        attention.fc2.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0]]).reshape(4, 2, 1, 1))
    x = torch.tensor(
        [[[[1.0, 2], [3, 4]], [[0, 0], [0, 4]], [[-1, -1], [-1, -1]], [[0, 0], [0, 0]]]]
    )
    # avg = (2.5, 1, -1, 0), max = (4, 4, -1, 0)
    # relu(W0 avg) = (2.5, 2) -> W1: (2.5, 2, 4.5, -2.5); relu(W0 max) = (4, 5) -> W1: (4, 5, 9, -4)
    logits = [6.5, 7.0, 13.5, -6.5]
    expected = torch.tensor([1 / (1 + math.exp(-v)) for v in logits]).reshape(1, 4, 1, 1)
    assert torch.allclose(attention(x), expected, atol=1e-6)


def test_spatial_attention_hand_check():
    attention = SpatialAttention(kernel_size=1)
    with torch.no_grad():
        attention.conv.weight.copy_(torch.tensor([0.5, -1.0]).reshape(1, 2, 1, 1))
    x = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2): mean (2, -1), max (3, 0)
    expected = torch.sigmoid(torch.tensor([0.5 * 2 - 3, 0.5 * -1 - 0])).reshape(1, 1, 1, 2)
    assert torch.allclose(attention(x), expected)


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ModelError) as info:
        build_model("segnet")
    message = str(info.value)
    assert message.startswith("expected arch one of unet, res-unet, cbam-unet, res-cbam-unet")
    assert "'segnet'" in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"width": 0}, "expected width as a number in (0, 4]"),
        ({"width": "1"}, "expected width"),
        ({"cbam_reduction": 0}, "expected cbam_reduction as a positive integer"),
        ({"cbam_kernel": 4}, "expected cbam_kernel as an odd positive integer"),
        ({"in_channels": 0}, "expected in_channels as a positive integer"),
    ],
)
def test_bad_options_raise_model_error(options, fragment):
    with pytest.raises(ModelError) as info:
        build_model("res-cbam-unet", **options)
    assert fragment in str(info.value)


def test_input_size_not_multiple_of_32():
    model = build_model("unet", width=0.125)
    with pytest.raises(ModelError) as info:
        model(torch.zeros(1, 3, 48, 64))
    assert str(info.value) == "expected height and width that are multiples of 32, got 48x64"
    with pytest.raises(ModelError, match=r"expected a \(B, 3, H, W\) tensor, got shape \(1, 1, 64, 64\)"):
        model(torch.zeros(1, 1, 64, 64))


def test_identity_block_needs_matching_channels():
    with pytest.raises(ModelError):
        Bottleneck(64, 64)  # 64 in, 256 out: needs a projection shortcut


def test_model_config_round_trip():
    torch.manual_seed(0)
    model = build_model("cbam-unet", width=0.125, cbam_reduction=8, cbam_kernel=3, in_channels=1).eval()
    config = model_config(model)
    assert config == {"width": 0.125, "cbam_reduction": 8, "cbam_kernel": 3, "in_channels": 1}
    rebuilt = build_model(model.arch, **json.loads(json.dumps(config))).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))
    assert model_config(rebuilt) == config
    assert model.config == config


def test_model_config_rejects_foreign_modules():
    with pytest.raises(ModelError):
        model_config(nn.Conv2d(1, 1, 1))


def test_shipped_size_fits_budget():
    model = build_model("res-cbam-unet", width=0.125)
    params = sum(p.numel() for p in model.parameters())
    assert params == 660_155
    assert params * 4 <= 3_000_000
    assert isinstance(model, MandibleUNet)
