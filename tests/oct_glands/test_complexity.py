"""Tests for medimg.oct_glands.complexity (the paper's Table 3)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.complexity import (
    PAPER_TABLE3,
    ConvLayer,
    ModelComplexity,
    complexity_table,
    conv_layers,
    model_complexity,
)
from medimg.oct_glands.models import DepthwiseSeparableBlock, StandardBlock, build_model


@pytest.mark.parametrize("name", ["light", "standard"])
@pytest.mark.parametrize("key", ["params_kB", "space", "time"])
def test_within_one_percent_of_paper(name, key):
    c = model_complexity(name)
    paper = PAPER_TABLE3[name][key]
    assert abs(getattr(c, key) / paper - 1) < 0.01


def test_exact_figures():
    light = model_complexity("light")
    standard = model_complexity("standard")
    assert isinstance(light, ModelComplexity)
    assert light.conv_weights == 71_323 and standard.conv_weights == 1_410_944
    assert light.params_kB == pytest.approx(71_323 * 4 / 1024)
    assert light.space == 122_951_323 and light.time == 7_168_000_000
    assert standard.space == 124_290_944 and standard.time == 115_474_432_000
    assert light.total_params > light.conv_weights
    assert standard.total_params > standard.conv_weights


def test_ds_block_hand_computed():
    # DS(2->3) on a 4x4x4 input: space = m (k^3 + n + HWD), time = HWD m (k^3 + n)
    layers = conv_layers(DepthwiseSeparableBlock(2, 3), (1, 2, 4, 4, 4))
    assert len(layers) == 1
    (layer,) = layers
    assert layer.kind == "depthwise_separable"
    assert layer.feature_size == (4, 4, 4)
    assert layer.space == 2 * (27 + 3 + 64) == 188
    assert layer.time == 64 * 2 * (27 + 3) == 3840


def test_standard_block_hand_computed():
    # Standard(2->3) on 2x4x6: space = m (k^3 n + HWD), time = HWD k^3 m n
    (layer,) = conv_layers(StandardBlock(2, 3), (1, 2, 2, 4, 6))
    assert layer.kind == "conv"
    assert layer.space == 2 * (27 * 3 + 48) == 258
    assert layer.time == 48 * 27 * 2 * 3 == 7776


def test_layer_list_of_light_model():
    layers = conv_layers(build_model("light"), (1, 1, 80, 80, 80))
    # 10 DS layers + the 1x1 head, counted as a plain conv with k = 1
    assert [l.kind for l in layers] == ["depthwise_separable"] * 10 + ["conv"]
    sizes = [l.feature_size[0] for l in layers]
    assert sizes == [80, 80, 40, 40, 20, 20, 40, 40, 80, 80, 80]
    assert [(l.in_channels, l.out_channels) for l in layers[6:]] == [
        (192, 64), (64, 64), (96, 32), (32, 32), (32, 1)
    ]
    head = layers[-1]
    assert head.kernel_volume == 1
    assert head.space == 32 * (1 + 80**3) and head.time == 80**3 * 32


def test_conv_layers_leaves_model_untouched():
    model = build_model("light")
    before = next(model.parameters()).device
    conv_layers(model, (1, 1, 8, 8, 8))
    assert next(model.parameters()).device == before
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_table_rows_json_ready():
    rows = complexity_table()
    assert [r["model"] for r in rows] == ["light", "standard"]
    json.dumps(rows)
    for row in rows:
        for key in ("params_kB", "space", "time"):
            assert row[f"paper_{key}"] == PAPER_TABLE3[row["model"]][key]
            assert abs(row[f"{key}_rel_diff"]) < 0.01


def test_bad_input_size():
    with pytest.raises(InputError):
        model_complexity("light", input_size=0)
    with pytest.raises(InputError):
        model_complexity("light", input_size=81)


def test_conv_layer_dataclass_frozen():
    layer = ConvLayer("conv", "x", 1, 1, 1, (2, 2, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.in_channels = 3  # type: ignore[misc]
