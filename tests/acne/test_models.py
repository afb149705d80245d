"""Tests for medimg.acne.models: the registry, shapes, submodules, presets and config round trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from medimg.common.errors import ModelError
from medimg.acne.models import (
    MODEL_NAMES,
    N_COUNT_BINS,
    N_GRADES,
    PRESETS,
    AcneNet,
    build_model,
    model_config,
    preset_config,
)
from medimg.acne.resnet import BasicBlock


def _image_batch(batch: int = 2, size: int = 224) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_gives_count_and_grade_logits(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        count_logits, grade_logits = model(_image_batch())
    assert count_logits.shape == (2, N_COUNT_BINS) == (2, 65)
    assert grade_logits.shape == (2, N_GRADES) == (2, 4)
    assert count_logits.dtype == grade_logits.dtype == torch.float32
    assert torch.isfinite(count_logits).all() and torch.isfinite(grade_logits).all()
    # logits, not probabilities: rows do not sum to one
    assert not torch.allclose(count_logits.sum(1), torch.ones(2))
    assert model.arch_name == name


def test_resnet_accepts_other_sizes():
    model = build_model("resnet").eval()
    with torch.no_grad():
        count_logits, grade_logits = model(torch.zeros(1, 3, 160, 192))
    assert count_logits.shape == (1, 65) and grade_logits.shape == (1, 4)
    with pytest.raises(ModelError, match="at least 32x32"):
        model(torch.zeros(1, 3, 16, 64))


@pytest.mark.parametrize("name", ["vit", "fusion"])
def test_transformers_reject_other_sizes(name):
    model = build_model(name)
    with pytest.raises(ModelError, match="expected .*224x224.* got 192x192"):
        model(torch.zeros(1, 3, 192, 192))


def test_vit_at_a_configured_size():
    model = build_model("vit", image_size=96, patch_sizes=[8, 16, 32], token_patch=16).eval()
    with torch.no_grad():
        count_logits, _ = model(torch.zeros(1, 3, 96, 96))
    assert count_logits.shape == (1, 65)
    assert model.encoder.pos_embedding.shape == (1, 6 * 6 + 1, 96)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(1, 1, 224, 224), torch.zeros(3, 224, 224), torch.zeros(1, 3, 224, 224, dtype=torch.uint8)],
)
def test_bad_input_tensors(bad):
    with pytest.raises(ModelError, match="expected"):
        build_model("resnet")(bad)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ModelError) as info:
        build_model("resnet50")
    assert str(info.value) == "expected model one of resnet, vit, fusion, got 'resnet50'"


def test_unknown_option_and_preset():
    with pytest.raises(ModelError, match=r"expected resnet options among widths, blocks, dropout, got embed_dim"):
        build_model("resnet", embed_dim=64)
    with pytest.raises(ModelError, match="preset one of small, paper"):
        build_model("vit", preset="huge")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("resnet", {"widths": [16, 32], "blocks": [1]}, "one block count per width"),
        ("resnet", {"widths": [16, 0]}, "positive integer"),
        ("resnet", {"blocks": "1111"}, "sequence of positive integers"),
        ("vit", {"embed_dim": 90, "heads": 4}, "divisible by heads"),
        ("vit", {"embed_dim": 100}, "divisible by the number of patch branches"),
        ("vit", {"patch_sizes": [10]}, "dividing image_size 224, got 10"),
        ("vit", {"patch_sizes": [8, 56], "token_patch": 16}, "divide or be a multiple of token_patch"),
        ("vit", {"depth": 0}, "depth as a positive integer"),
        ("vit", {"mlp_ratio": -1.0}, "mlp_ratio as a positive number"),
        ("fusion", {"dropout": 1.0}, r"dropout in \[0, 1\)"),
    ],
)
def test_bad_options_raise_model_error(name, options, message):
    with pytest.raises(ModelError, match=message):
        build_model(name, **options)


def test_named_submodules():
    resnet, vit, fusion = (build_model(name) for name in MODEL_NAMES)
    for model in (resnet, vit, fusion):
        assert isinstance(model, AcneNet)
        assert model.count_head.out_features == 65 and model.grade_head.out_features == 4
    assert resnet.count_head.in_features == 128  # widths[-1]
    assert vit.count_head.in_features == 96  # embed_dim
    assert fusion.count_head.in_features == 128 + 96  # concatenated features
    assert fusion.encoder.cnn.out_features == 128
    assert fusion.encoder.transformer.out_features == 96
    assert isinstance(fusion.neck.norm, nn.LayerNorm) and fusion.neck.norm.normalized_shape == (224,)
    assert isinstance(resnet.neck, nn.Identity)

    blocks = [m for m in resnet.encoder.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 4  # blocks (1, 1, 1, 1)
    assert [b.conv2.out_channels for b in blocks] == [16, 32, 64, 128]
    assert blocks[0].downsample is None and blocks[1].downsample is not None

    embed = vit.encoder.patch_embed
    assert [b.kernel_size for b in embed.branches] == [(8, 8), (16, 16), (32, 32)]
    assert [b.stride for b in embed.branches] == [(8, 8), (16, 16), (32, 32)]
    assert [b.out_channels for b in embed.branches] == [32, 32, 32]
    assert embed.attention.fc1.out_features == 96 // 4
    assert len(vit.encoder.blocks) == 2
    attn = vit.encoder.blocks[0].attn
    assert isinstance(attn, nn.MultiheadAttention) and attn.num_heads == 4 and attn.batch_first
    assert vit.encoder.cls_token.shape == (1, 1, 96)
    assert vit.encoder.pos_embedding.shape == (1, 14 * 14 + 1, 96)


def test_model_config_round_trip_rebuilds_the_same_network():
    for name in MODEL_NAMES:
        torch.manual_seed(1)
        model = build_model(name, dropout=0.1, depth=1) if name != "resnet" else build_model(name, blocks=[2, 1, 1, 1])
        cfg = json.loads(json.dumps(model_config(model)))
        rebuilt = build_model(name, **cfg)
        assert model_config(rebuilt) == cfg
        original = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == original
        rebuilt.load_state_dict(model.state_dict())
        x = _image_batch(1)
        with torch.no_grad():
            a, b = model.eval()(x), rebuilt.eval()(x)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_model_config_is_the_full_preset_plus_overrides():
    cfg = model_config(build_model("fusion", depth=3))
    assert cfg == {**preset_config("fusion"), "depth": 3}
    assert cfg["widths"] == [16, 32, 64, 128] and cfg["patch_sizes"] == [8, 16, 32]
    with pytest.raises(ModelError, match="built by medimg.acne.models.build_model"):
        model_config(nn.Linear(2, 2))


def test_state_dict_keys_are_stable():
    keys = set(build_model("fusion").state_dict())
    for key in (
        "encoder.cnn.stem.0.weight",
        "encoder.cnn.stages.1.0.downsample.0.weight",
        "encoder.transformer.patch_embed.branches.2.weight",
        "encoder.transformer.patch_embed.attention.fc1.weight",
        "encoder.transformer.patch_embed.proj.weight",
        "encoder.transformer.cls_token",
        "encoder.transformer.pos_embedding",
        "encoder.transformer.blocks.1.attn.in_proj_weight",
        "encoder.transformer.blocks.1.mlp.3.weight",
        "encoder.transformer.norm.weight",
        "neck.norm.weight",
        "count_head.weight",
        "grade_head.bias",
    ):
        assert key in keys


def test_paper_preset_sizes():
    with torch.device("meta"):
        resnet = build_model("resnet", preset="paper")
        vit = build_model("vit", preset="paper")
    assert PRESETS["paper"]["resnet"]["widths"] == (64, 128, 256, 512)
    # torchvision ResNet-18 has 11,689,512 parameters, 513,000 of them in its 1000-way fc;
    # our two heads read 512 features: 512*65+65 + 512*4+4.
    heads = 512 * 65 + 65 + 512 * 4 + 4
    assert sum(p.numel() for p in resnet.parameters()) == 11_689_512 - 513_000 + heads
    assert vit.encoder.out_features == 768 and len(vit.encoder.blocks) == 12
    assert vit.encoder.blocks[0].attn.num_heads == 12
    assert 80e6 < sum(p.numel() for p in vit.parameters()) < 95e6  # ViT-Base is 86 M


def test_training_step_reduces_loss_on_one_batch():
    torch.manual_seed(0)
    # the fusion graph with every branch (three patch scales, SE, both encoders) at a width that
    # steps in a fraction of a second; the default widths take seconds per step on a busy CPU
    model = build_model("fusion", widths=(8, 8, 8, 8), embed_dim=24, depth=1, heads=2, mlp_ratio=2.0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = _image_batch(4, 224)
    target_count = torch.tensor([3, 10, 30, 60])
    target_grade = torch.tensor([0, 1, 2, 3])
    losses = []
    for _ in range(3):
        count_logits, grade_logits = model(x)
        loss = nn.functional.cross_entropy(count_logits, target_count) + nn.functional.cross_entropy(
            grade_logits, target_grade
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
