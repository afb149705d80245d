"""Parameter and operation counts of the mandible networks (``medimg mandible model-info``).

For one ``(1, in_channels, size, size)`` input:

* **params** -- every trainable parameter (conv weights and biases, BatchNorm affine weights;
  not BatchNorm running statistics);
* **macs** -- multiply-accumulates of Conv2d and Linear layers only:
  ``output elements x (in_channels / groups) x kernel area`` for a conv,
  ``output elements x in_features`` for a linear layer. Bias additions, BatchNorm (foldable
  into the preceding conv at inference), activations, pooling, the CBAM pooling/products and the
  bilinear upsampling are not counted (BatchNorm and ReLU together are 0.3 % of the conv MACs
  of res-cbam-unet at width 1 and 512x512; the share grows as ``1 / width``);
* **flops** -- ``2 x macs`` (one multiply plus one add each).

The CBAM channel MLP runs on pooled 1x1 maps (twice per CBAM: average and max), so its MACs
are counted at 1x1 size, twice. Shapes are recorded with forward hooks while a copy of the
model runs on the ``meta`` device: nothing is computed, so the paper-size network at 512x512
is counted instantly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from medimg.common.errors import InputError, ModelError, expected
from medimg.mandible.models import ARCHS, DIVISOR, build_model

__all__ = ["BYTES_PER_PARAM", "complexity_table", "model_complexity"]

BYTES_PER_PARAM = 4  # float32


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < DIVISOR or size % DIVISOR:
        raise InputError(expected(f"size as a positive multiple of {DIVISOR}", repr(size)))
    return size


def model_complexity(model: nn.Module, *, size: int = 512) -> dict:
    """Counts for one ``size x size`` input (see the module docstring for definitions).

    Returns
    -------
    dict with ``params`` (int), ``macs`` (int), ``flops`` (int, ``2 * macs``)
    """
    size = _check_size(size)
    in_channels = getattr(model, "in_channels", None)
    if in_channels is None:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ModelError(expected("a network with at least one Conv2d", type(model).__name__))
        in_channels = convs[0].in_channels
    meta_model = copy.deepcopy(model).to("meta").eval()
    macs = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            macs += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        else:
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in meta_model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            meta_model(torch.empty((1, in_channels, size, size), device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    return {"params": int(params), "macs": int(macs), "flops": int(2 * macs)}


def complexity_table(archs: Sequence[str] = ARCHS, *, width: float = 1.0, size: int = 512, cbam_reduction: int = 16, cbam_kernel: int = 7) -> list[dict]:
    """One row per architecture: ``arch, width, size, params, weights_MB, macs, GMACs, flops, GFLOPs``.

    ``weights_MB`` is the float32 weights size in MB (10^6 bytes); networks are built on the
    ``meta`` device, so no memory is allocated for them.
    """
    size = _check_size(size)
    rows = []
    for arch in archs:
        with torch.device("meta"):
            model = build_model(arch, width=width, cbam_reduction=cbam_reduction, cbam_kernel=cbam_kernel)
        counts = model_complexity(model, size=size)
        rows.append(
            {
                "arch": arch,
                "width": float(width),
                "size": size,
                "params": counts["params"],
                "weights_MB": round(counts["params"] * BYTES_PER_PARAM / 1e6, 2),
                "macs": counts["macs"],
                "GMACs": round(counts["macs"] / 1e9, 2),
                "flops": counts["flops"],
                "GFLOPs": round(counts["flops"] / 1e9, 2),
            }
        )
    return rows
