"""Tests for medimg.oct_glands.models (SPEC section 1, "The two networks")."""

from __future__ import annotations

import pytest
import torch

from medimg.common.errors import InputError, ModelError
from medimg.oct_glands.models import (
    MODELS,
    DepthwiseSeparableBlock,
    LightUNet3D,
    StandardBlock,
    StandardUNet3D,
    UNet3D,
    build_model,
    conv_weight_count,
    model_names,
)


@pytest.fixture(scope="module", params=["light", "standard"])
def model(request):
    torch.manual_seed(0)
    return build_model(request.param).eval()


def test_conv_weight_counts_match_spec():
    assert conv_weight_count(build_model("light")) == 71_323
    assert conv_weight_count(build_model("standard")) == 1_410_944


def test_ds_block_conv_weights_hand_count():
    block = DepthwiseSeparableBlock(32, 64)
    assert conv_weight_count(block) == 32 * 27 + 32 * 64
    assert block.depthwise.bias is None and block.pointwise.bias is None
    assert block.depthwise.groups == 32


def test_standard_block_conv_weights_hand_count():
    block = StandardBlock(32, 64)
    assert conv_weight_count(block) == 27 * 32 * 64
    assert block.conv.bias is None


def test_head_has_bias_and_submodules():
    m = build_model("light")
    assert m.head.bias is not None and m.head.kernel_size == (1, 1, 1)
    for attr in ("encoder", "decoder", "head"):
        assert hasattr(m, attr)
    assert len(m.encoder.stages) == 3 and len(m.decoder.stages) == 2


@pytest.mark.parametrize("shape", [(1, 1, 16, 16, 16), (2, 1, 8, 12, 16)])
def test_output_is_logits_of_the_input_shape(model, shape):
    x = torch.randn(shape)
    with torch.no_grad():
        y = model(x)
        by_parts = model.head(model.decoder(model.encoder(x)))
    assert y.shape == shape
    assert torch.equal(y, by_parts)  # no activation inside: the pipeline applies it


def test_registry():
    assert model_names() == ["light", "standard"]
    assert set(MODELS) == {"light", "standard"}
    light, standard = build_model("light"), build_model("standard")
    assert isinstance(light, UNet3D) and isinstance(light, LightUNet3D)
    assert isinstance(standard, StandardUNet3D)
    assert light.arch_name == "light" and standard.arch_name == "standard"
    assert light.block == "depthwise" and standard.block == "standard"
    assert isinstance(light.encoder.stages[0][0], DepthwiseSeparableBlock)
    assert isinstance(standard.encoder.stages[0][0], StandardBlock)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError) as err:
        build_model("x")
    assert str(err.value) == "unknown model 'x': expected one of light, standard"


def test_bad_options():
    with pytest.raises(ModelError):
        build_model("light", block="standard")
    with pytest.raises(ModelError):
        UNet3D(block="resnet")
    with pytest.raises(ModelError):
        UNet3D(channels=(32,))


@pytest.mark.parametrize("shape", [(1, 1, 10, 16, 16), (1, 1, 16, 16, 6), (1, 1, 2, 4, 4)])
def test_non_divisible_size_raises(shape):
    m = build_model("light")
    with pytest.raises(InputError, match="expected spatial size .* divisible by 4, got"):
        m(torch.zeros(shape))


def test_bad_input_tensor():
    m = build_model("light")
    with pytest.raises(InputError, match="expected a 5-D tensor"):
        m(torch.zeros(1, 16, 16, 16))
    with pytest.raises(InputError, match="input channel"):
        m(torch.zeros(1, 2, 8, 8, 8))
    with pytest.raises(InputError, match="floating-point"):
        m(torch.zeros(1, 1, 8, 8, 8, dtype=torch.int64))


def test_channels_last_3d_matches_default(model):
    torch.manual_seed(1)
    x = torch.randn(2, 1, 8, 12, 16)
    with torch.no_grad():
        ref = model(x)
        cl_model = build_model(model.arch_name)
        cl_model.load_state_dict(model.state_dict())
        cl_model = cl_model.eval().to(memory_format=torch.channels_last_3d)
        out = cl_model(x.to(memory_format=torch.channels_last_3d))
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)


def test_train_mode_backward():
    m = build_model("light").train()
    x = torch.randn(2, 1, 8, 8, 8)
    loss = m(x).mean()
    loss.backward()
    assert m.head.weight.grad is not None
    assert m.encoder.stages[0][0].depthwise.weight.grad is not None
