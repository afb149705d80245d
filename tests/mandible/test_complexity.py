"""Tests for medimg.mandible.complexity: hand-counted MACs and the per-arch table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medimg.common.errors import InputError
from medimg.mandible.complexity import complexity_table, model_complexity
from medimg.mandible.models import ARCHS, CBAM, build_model


def test_tiny_conv_hand_count():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=True))
    counts = model_complexity(model, size=32)
    assert counts["params"] == 4 * 3 * 9 + 4
    assert counts["macs"] == 32 * 32 * 4 * 3 * 9  # output pixels x out ch x in ch x kernel area
    assert counts["flops"] == 2 * counts["macs"]


def test_stride_groups_linear_and_batchnorm():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),  # 16x16 output
        nn.BatchNorm2d(4),  # not counted in MACs, 8 params
        nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),  # depthwise
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    counts = model_complexity(model, size=32)
    assert counts["macs"] == 16 * 16 * 4 * 3 * 9 + 16 * 16 * 4 * 1 * 9 + 2 * 4
    assert counts["params"] == 4 * 3 * 9 + 8 + 4 * 9 + 4 * 2 + 2


def test_cbam_mlp_counted_at_1x1_twice():
    counts = model_complexity(CBAM(16, reduction=16, kernel_size=7), size=32)
    # MLP 16 -> 1 -> 16 on the avg and max rows, then a 7x7 conv 2 -> 1 on 32x32
    assert counts["macs"] == 2 * 16 * 1 + 2 * 1 * 16 + 32 * 32 * 2 * 49
    assert counts["params"] == 16 + 16 + 2 * 49


def test_stem_of_the_paper_network_at_512():
    torch.manual_seed(0)
    model = build_model("res-cbam-unet", width=0.125)
    stem = nn.Sequential(model.encoder.conv1)
    assert model_complexity(stem, size=512)["macs"] == 256 * 256 * 8 * 3 * 49
    assert next(model.parameters()).device.type == "cpu"  # the counted copy is on meta, not the model


def test_table_at_paper_size():
    rows = complexity_table()
    assert [row["arch"] for row in rows] == list(ARCHS)
    by_arch = {row["arch"]: row for row in rows}
    for row in rows:
        assert row["size"] == 512 and row["width"] == 1.0
        assert row["flops"] == 2 * row["macs"]
    assert by_arch["res-cbam-unet"]["params"] == 41_752_171
    # CBAM adds 2*C*(C//16) MLP weights + 2*49 spatial weights per decoder module:
    # plain decoder inputs 1024, 1024, 512, 256, 128; ResNet decoder inputs 2048, 1536, 768, 384, 128
    plain_cbam = sum(2 * c * (c // 16) + 98 for c in (1024, 1024, 512, 256, 128))
    res_cbam = sum(2 * c * (c // 16) + 98 for c in (2048, 1536, 768, 384, 128))
    assert by_arch["cbam-unet"]["params"] - by_arch["unet"]["params"] == plain_cbam == 305_642
    assert by_arch["res-cbam-unet"]["params"] - by_arch["res-unet"]["params"] == res_cbam == 913_898
    assert by_arch["res-cbam-unet"]["macs"] > by_arch["res-unet"]["macs"] > by_arch["unet"]["macs"]


def test_table_scales_with_width_and_size():
    small = complexity_table(["res-cbam-unet"], width=0.125, size=256)[0]
    assert small["params"] == 660_155
    assert small["weights_MB"] == pytest.approx(660_155 * 4 / 1e6, abs=0.01)
    double = complexity_table(["res-cbam-unet"], width=0.125, size=512)[0]
    # every conv's MACs scale with the pixel count, except the CBAM MLPs, which run on pooled
    # 1x1 maps: 2 rows x 2 layers x C x (C // 16) for decoder inputs C = 256, 192, 96, 48, 16
    mlp = sum(4 * c * max(1, c // 16) for c in (256, 192, 96, 48, 16))
    assert mlp == 28_544
    assert double["macs"] - mlp == 4 * (small["macs"] - mlp)


@pytest.mark.parametrize("size", [500, 0, 16, 64.0])
def test_size_must_be_multiple_of_32(size):
    with pytest.raises(InputError) as info:
        model_complexity(nn.Conv2d(3, 1, 1), size=size)
    assert str(info.value).startswith("expected size as a positive multiple of 32")
