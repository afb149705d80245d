"""Parameter and multiply-accumulate counts of the acne networks (``medimg acne model-info``).

MACs are counted for ONE image of ``3 x size x size`` by running the model once on the ``meta``
device (shapes only, no arithmetic) with forward hooks:

* ``nn.Conv2d``: ``output elements * (in_channels / groups) * kernel_h * kernel_w``;
* ``nn.Linear``: ``output elements * in_features``;
* ``nn.MultiheadAttention`` (query length ``Lq``, key length ``Lk``, width ``E``): the input
  projections ``(Lq + 2 Lk) E^2``, the two attention matmuls ``Q K^T`` and ``A V``
  ``2 Lq Lk E``, and the output projection ``Lq E^2``. (``MultiheadAttention`` applies its
  projections through ``F.multi_head_attention_forward``, so no ``nn.Linear`` hook ever sees
  them; for self-attention over ``L`` tokens this is ``4 L E^2 + 2 L^2 E``.)

Normalisation, activations, pooling, softmax, residual additions and resampling are not counted
(they are a few percent at most). FLOPs are reported as ``2 * MACs``. ``size_mb`` is the float32
weights-file payload: the bytes of every state-dict tensor (parameters and BatchNorm buffers)
divided by 10^6.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from medimg.common.errors import InputError, expected
from medimg.acne.models import MODEL_NAMES, build_model

__all__ = ["complexity_table", "model_complexity", "state_dict_megabytes"]


def state_dict_megabytes(model: nn.Module) -> float:
    """Bytes of all state-dict tensors / 10^6 (what a safetensors weights file holds)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6


def _on_meta(model: nn.Module) -> nn.Module:
    tensors = [*model.parameters(), *model.buffers()]
    if tensors and all(t.is_meta for t in tensors):
        return model
    return copy.deepcopy(model).to("meta")


def model_complexity(model: nn.Module, *, size: int = 224) -> dict[str, int]:
    """Parameters and MACs of ``model`` on one ``(3, size, size)`` image.

    Returns ``{"params": int, "macs": int, "flops": int}`` with ``flops = 2 * macs``; see the
    module docstring for what is counted. ``model`` itself is not run or changed (a ``meta``
    copy is).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(expected("size as a positive integer", repr(size)))
    params = sum(p.numel() for p in model.parameters())
    probe = _on_meta(model)
    was_training = probe.training
    probe.eval()
    inside_attention = {
        id(sub)
        for module in probe.modules()
        if isinstance(module, nn.MultiheadAttention)
        for sub in module.modules()
        if sub is not module
    }
    macs = 0

    def count_conv(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def count_linear(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    def count_attention(module: nn.MultiheadAttention, args: tuple, kwargs: dict, _output: object) -> None:
        nonlocal macs
        names = ("query", "key", "value")
        query, key, _value = (args[i] if i < len(args) else kwargs[n] for i, n in enumerate(names))
        seq_dim = 1 if module.batch_first else 0
        batch = query.shape[1 - seq_dim] if query.dim() == 3 else 1
        lq = query.shape[seq_dim] if query.dim() == 3 else query.shape[0]
        lk = key.shape[seq_dim] if key.dim() == 3 else key.shape[0]
        e = module.embed_dim
        per_image = lq * e * e + lk * e * module.kdim + lk * e * module.vdim + 2 * lq * lk * e + lq * e * e
        macs += batch * per_image

    handles = []
    for module in probe.modules():
        if id(module) in inside_attention:
            continue
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(count_conv))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(count_linear))
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_hook(count_attention, with_kwargs=True))
    try:
        with torch.no_grad():
            probe(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
        probe.train(was_training)
    return {"params": int(params), "macs": int(macs), "flops": int(2 * macs)}


def complexity_table(
    names: Sequence[str] = MODEL_NAMES, *, preset: str = "small", size: int = 224
) -> list[dict]:
    """One row per model: ``{"model", "params", "size_mb", "GMACs", "GFLOPs"}`` at ``size``.

    Models are built (on the ``meta`` device, so the paper preset costs no memory) with
    ``build_model(name, preset=preset)``. ``size_mb`` is rounded to 3 decimals, GMACs and
    GFLOPs to 4.
    """
    rows = []
    for name in names:
        with torch.device("meta"):
            model = build_model(name, preset=preset)
        counts = model_complexity(model, size=size)
        rows.append(
            {
                "model": name,
                "params": counts["params"],
                "size_mb": round(state_dict_megabytes(model), 3),
                "GMACs": round(counts["macs"] / 1e9, 4),
                "GFLOPs": round(counts["flops"] / 1e9, 4),
            }
        )
    return rows
