"""Networks as block predictors: weights loading and batched, device-side inference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medimg.common.weights import load_state_into, load_weights, shipped_weights

if TYPE_CHECKING:
    import torch

    from medimg.oct_glands.models import UNet3D

DEFAULT_WEIGHTS = {"light": "oct-light"}


def load_network(model: str = "light", *, weights: Path | None = None) -> tuple["UNet3D", str]:
    """Build a registered network and load weights (shipped defaults when ``weights`` is None).

    Returns the network in eval mode and a description of the weights used.
    """
    from medimg.common.errors import ModelError, expected
    from medimg.oct_glands.models import build_model

    network = build_model(model)
    if weights is None:
        if model not in DEFAULT_WEIGHTS:
            raise ModelError(expected(f"--weights for model '{model}' (shipped weights exist for {', '.join(DEFAULT_WEIGHTS)})", "none"))
        weights = shipped_weights(DEFAULT_WEIGHTS[model])
        source = f"shipped:{DEFAULT_WEIGHTS[model]}"
    else:
        source = str(weights)
    tensors, _ = load_weights(weights, arch=f"oct-{model}")
    load_state_into(network, tensors, source=Path(weights).name)
    return network.eval(), source


def network_predictor(network: "torch.nn.Module", device: "torch.device"):
    """A :data:`~medimg.oct_glands.blend.BlockPredictor` running ``network`` on ``device``.

    uint8 blocks are scaled to [0, 1] as in training; the channels-last-3d layout makes the
    depthwise convolutions fast on CPU.
    """
    import torch

    network = network.to(device).to(memory_format=torch.channels_last_3d).eval()

    def predict(blocks: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(np.array(blocks, copy=True)).to(device)  # a copy: memory-mapped blocks are read-only
            batch = (batch.float() / 255.0).unsqueeze(1).contiguous(memory_format=torch.channels_last_3d)
            return network(batch)[:, 0].float().cpu().numpy()

    return predict
