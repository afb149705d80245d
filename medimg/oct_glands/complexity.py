"""Model complexity figures of the paper's Table 3 (SPEC section 1, "The two networks").

For one single-channel cubic input (80^3 in the paper) and each model:

* **params** -- convolution weights only (biases and BatchNorm excluded), as a count and as
  ``kB = count * 4 / 1024`` (float32);
* **space** -- ``sum_l m_l * (k^3 + n_l + H_l W_l D_l)`` over depthwise-separable layers and
  ``sum_l m_l * (k^3 n_l + H_l W_l D_l)`` over plain conv layers;
* **time** (multiply-accumulates) -- ``sum_l H W D m_l (k^3 + n_l)`` over depthwise-separable
  layers and ``sum_l H W D k^3 m_l n_l`` over plain conv layers.

Here ``m_l``/``n_l`` are the layer's input/output channels, ``k^3`` the kernel volume and
``H W D`` the layer's feature size (its input size; all convs here are stride 1, same padding).
A depthwise conv plus its pointwise conv (one :class:`DepthwiseSeparableBlock`) counts as ONE
layer ``l`` with ``k = 3``.

**Head conv.** The final ``Conv3d(32 -> 1, kernel 1)`` is not depthwise separable, so in both
models it is counted as a plain conv layer with ``k = 1``: space ``32 * (1 + 80^3)``, time
``80^3 * 32``. Without it, space misses the paper by about 13 % (the head's ``m * HWD`` term is
16.4e6), so the paper must have counted it; with it all six figures land within 0.5 % of the
paper's. (Counting it with the DS formula at ``k = 1`` instead would move light time from
-0.17 % to +0.06 %, and change nothing else materially.)

Layer feature sizes are not hard-coded: the model is run once on the ``meta`` device with
forward hooks, which records shapes without computing anything.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from medimg.common.errors import InputError, expected
from medimg.oct_glands.models import (
    DepthwiseSeparableBlock,
    build_model,
    conv_weight_count,
    model_names,
)

__all__ = [
    "PAPER_TABLE3",
    "ConvLayer",
    "ModelComplexity",
    "complexity_table",
    "conv_layers",
    "model_complexity",
]

#: Table 3 of the paper, on one 80^3 input.
PAPER_TABLE3: dict[str, dict[str, float]] = {
    "light": {"params_kB": 278.9, "space": 1.23e8, "time": 7.18e9},
    "standard": {"params_kB": 5507.8, "space": 1.24e8, "time": 1.16e11},
}

BYTES_PER_WEIGHT = 4  # float32


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer ``l`` as the paper counts it.

    ``kind`` is ``"depthwise_separable"`` (a depthwise + pointwise pair) or ``"conv"`` (a plain
    convolution: standard blocks and the 1x1 head).
    """

    kind: str
    name: str
    in_channels: int
    out_channels: int
    kernel_volume: int  # k^3
    feature_size: tuple[int, ...]  # (D, H, W) of the layer's input

    @property
    def voxels(self) -> int:
        return math.prod(self.feature_size)

    @property
    def space(self) -> int:
        m, n, k3, v = self.in_channels, self.out_channels, self.kernel_volume, self.voxels
        if self.kind == "depthwise_separable":
            return m * (k3 + n + v)
        return m * (k3 * n + v)

    @property
    def time(self) -> int:
        m, n, k3, v = self.in_channels, self.out_channels, self.kernel_volume, self.voxels
        if self.kind == "depthwise_separable":
            return v * m * (k3 + n)
        return v * k3 * m * n


@dataclass(frozen=True)
class ModelComplexity:
    """Table 3 figures of one model (see the module docstring for definitions)."""

    name: str
    conv_weights: int
    params_kB: float
    space: int
    time: int
    total_params: int


def conv_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[ConvLayer]:
    """The model's conv layers in execution order, with the feature size each one sees.

    ``input_shape`` is the full input shape, e.g. ``(1, 1, 80, 80, 80)``. The model is copied to
    the ``meta`` device (the original is untouched) and run once with forward hooks, so no real
    computation or memory is needed. Depthwise-separable blocks count as one layer; any other
    convolution (standard blocks' convs, the head) counts as a plain conv layer.
    """
    shape = tuple(input_shape)
    if len(shape) < 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise InputError(expected("an input shape (B, C, *spatial) of positive integers", shape))

    meta_model = copy.deepcopy(model).to("meta").eval()

    in_blocks: set[int] = set()
    for module in meta_model.modules():
        if isinstance(module, DepthwiseSeparableBlock):
            in_blocks.update(id(m) for m in module.modules() if m is not module)

    layers: list[ConvLayer] = []
    handles = []

    def hook_for(name: str, module: nn.Module):
        def hook(mod: nn.Module, inputs: tuple, _output: object) -> None:
            size = tuple(int(s) for s in inputs[0].shape[2:])
            if isinstance(mod, DepthwiseSeparableBlock):
                k3 = math.prod(mod.depthwise.kernel_size)
                layers.append(
                    ConvLayer("depthwise_separable", name, mod.in_ch, mod.out_ch, k3, size)
                )
            else:
                k3 = math.prod(mod.kernel_size)
                layers.append(ConvLayer("conv", name, mod.in_channels, mod.out_channels, k3, size))

        return hook

    for name, module in meta_model.named_modules():
        if isinstance(module, DepthwiseSeparableBlock) or (
            isinstance(module, nn.modules.conv._ConvNd) and id(module) not in in_blocks
        ):
            handles.append(module.register_forward_hook(hook_for(name, module)))
    try:
        with torch.no_grad():
            meta_model(torch.empty(shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return layers


def model_complexity(name: str, *, input_size: int = 80) -> ModelComplexity:
    """Table 3 figures of registry model ``name`` on one ``input_size``^3 single-channel input."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise InputError(expected("input_size as a positive integer", repr(input_size)))
    with torch.device("meta"):
        model = build_model(name)
    shape = (1, model.in_channels) + (input_size,) * 3
    layers = conv_layers(model, shape)
    weights = conv_weight_count(model)
    return ModelComplexity(
        name=name,
        conv_weights=weights,
        params_kB=weights * BYTES_PER_WEIGHT / 1024,
        space=sum(layer.space for layer in layers),
        time=sum(layer.time for layer in layers),
        total_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def _rel(ours: float, paper: float) -> float:
    return ours / paper - 1.0


def complexity_table(*, input_size: int = 80) -> list[dict]:
    """One row per registry model with our figures, the paper's and relative differences.

    Relative differences are fractions (``ours / paper - 1``; 0.01 = 1 %). Paper values are given
    only for models listed in :data:`PAPER_TABLE3` (``None`` otherwise). The paper's figures are
    for ``input_size=80``; other sizes still report them for reference.
    """
    rows = []
    for name in model_names():
        c = model_complexity(name, input_size=input_size)
        paper = PAPER_TABLE3.get(name)
        row: dict = {
            "model": name,
            "input_size": input_size,
            "conv_weights": c.conv_weights,
            "total_params": c.total_params,
        }
        for key in ("params_kB", "space", "time"):
            ours = getattr(c, key)
            row[key] = ours
            row[f"paper_{key}"] = paper[key] if paper else None
            row[f"{key}_rel_diff"] = _rel(ours, paper[key]) if paper else None
        rows.append(row)
    return rows


def table3_rows(*, input_size: int = 80) -> list[dict]:
    """Table 3 in long form for people: one row per (model, figure) with ours, the paper's and the gap in %."""
    rows = []
    for row in complexity_table(input_size=input_size):
        rows.append({"model": row["model"], "figure": "conv weights (count)", "ours": row["conv_weights"], "paper": None, "diff_%": None})
        for key, label in (("params_kB", "params (kB)"), ("space", "space"), ("time", "time (MACs)")):
            diff = row[f"{key}_rel_diff"]
            rows.append({
                "model": row["model"],
                "figure": label,
                "ours": round(row[key], 1) if key == "params_kB" else f"{row[key]:.4g}",
                "paper": row[f"paper_{key}"] if key == "params_kB" else f"{row[f'paper_{key}']:.3g}",
                "diff_%": None if diff is None else round(100 * diff, 2),
            })
    return rows
