"""Tests for medimg.acne.complexity: hand-counted MACs, the size budget and the table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medimg.common.errors import InputError, ModelError
from medimg.acne.complexity import complexity_table, model_complexity, state_dict_megabytes
from medimg.acne.models import MODEL_NAMES, build_model


class ConvLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


class OneAttention(nn.Module):
    """Patchify 8x8 into 16 tokens of width 8 (conv 2x2/2), then one self-attention layer."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 2, stride=2)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.attn(tokens, tokens, tokens)[0]


def test_conv_and_linear_hand_counted():
    model = ConvLinear()
    counts = model_complexity(model, size=8)
    conv = (4 * 4 * 4) * 3 * 3 * 3  # output elements (4 ch x 4 x 4) * in_ch * k*k = 1728
    linear = 10 * 64  # out_features * in_features = 640
    assert counts["macs"] == conv + linear == 2368
    assert counts["flops"] == 2 * 2368
    assert counts["params"] == (3 * 9 * 4 + 4) + (64 * 10 + 10) == 762


def test_grouped_conv_counts_per_group():
    model = nn.Conv2d(3, 6, 3, padding=1, groups=3)
    assert model_complexity(model, size=5)["macs"] == 6 * 25 * 1 * 9


def test_attention_layer_hand_counted():
    counts = model_complexity(OneAttention(), size=8)
    tokens, dim = 16, 8
    patch = tokens * dim * (3 * 2 * 2)  # 1536
    projections = 4 * tokens * dim * dim  # q, k, v and out: 4096
    matmuls = 2 * tokens**2 * dim  # Q K^T and A V: 4096
    assert counts["macs"] == patch + projections + matmuls == 9728


def test_small_vit_hand_counted():
    # branches 8/16/32 (32 channels each) at 224, SE 96->24->96, 1x1 proj, 2 blocks of 197 tokens,
    # MLP 96->384->96, heads 96 -> 65 + 4.
    branches = 28 * 28 * 32 * 192 + 14 * 14 * 32 * 768 + 7 * 7 * 32 * 3072
    se = 96 * 24 + 24 * 96
    proj = 196 * 96 * 96
    tokens, dim = 197, 96
    block = 4 * tokens * dim * dim + 2 * tokens**2 * dim + 2 * tokens * dim * 384
    heads = 96 * (65 + 4)
    counts = model_complexity(build_model("vit"))
    assert counts["macs"] == branches + se + proj + 2 * block + heads == 74_744_160


def test_fusion_is_the_sum_of_its_parts():
    # 128 + 96 fused features feed the heads: the head MACs add up exactly.
    macs = {name: model_complexity(build_model(name))["macs"] for name in MODEL_NAMES}
    assert macs["fusion"] == macs["resnet"] + macs["vit"]


def test_model_is_left_untouched():
    model = build_model("resnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_complexity(model)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # mode unchanged


def test_default_fusion_fits_the_shipping_budget():
    model = build_model("fusion")
    counts = model_complexity(model)
    assert counts["params"] == sum(p.numel() for p in model.parameters())
    assert counts["params"] <= 750_000
    assert state_dict_megabytes(model) <= 3.0


def test_complexity_table_rows():
    rows = complexity_table()
    assert [r["model"] for r in rows] == list(MODEL_NAMES)
    for row in rows:
        assert set(row) == {"model", "params", "size_mb", "GMACs", "GFLOPs"}
        assert row["GFLOPs"] == pytest.approx(2 * row["GMACs"], abs=1e-4)
    by_name = {r["model"]: r for r in rows}
    assert by_name["vit"]["GMACs"] == round(74_744_160 / 1e9, 4)
    assert by_name["fusion"]["params"] == sum(p.numel() for p in build_model("fusion").parameters())


def test_paper_resnet_is_resnet18_sized():
    (row,) = complexity_table(["resnet"], preset="paper")
    assert row["GMACs"] == pytest.approx(1.814, rel=0.01)  # ResNet-18 at 224: 1.81 GMACs
    assert row["size_mb"] > 44


def test_bad_size():
    with pytest.raises(InputError, match="size as a positive integer"):
        model_complexity(build_model("resnet"), size=0)
    with pytest.raises(ModelError, match="224x224"):
        model_complexity(build_model("vit"), size=192)
