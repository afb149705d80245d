"""Acne networks as image predictors: weights loading and batched, device-side inference.

A weights file carries the constructor arguments of its network (metadata ``model_config``, JSON),
so a file trained with any size or preset rebuilds exactly the network it was trained as.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medimg.common.errors import FormatError, ModelError, expected
from medimg.common.weights import SHIPPED, load_state_into, load_weights, shipped_weights

if TYPE_CHECKING:
    import torch

# model name -> name of its weights in medimg.common.weights.SHIPPED
DEFAULT_WEIGHTS = {"fusion": "acne-fusion"}

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``images (B, 3, 224, 224) float32 -> (count_probs (B, 65), grade_probs (B, 4))``, rows summing to 1."""


def arch_tag(model: str) -> str:
    """The architecture name recorded in (and required of) a weights file: ``acne-<model>``."""
    return f"acne-{model}"


def check_model_name(model: str) -> None:
    from medimg.acne.models import MODEL_NAMES

    if model not in MODEL_NAMES:
        raise ModelError(expected(f"a model among {', '.join(MODEL_NAMES)}", repr(model)))


def _default_weights(model: str) -> tuple[Path, str]:
    name = DEFAULT_WEIGHTS.get(model)
    if name is None:
        raise ModelError(expected(
            f"--weights for model '{model}' (no weights ship for it: train them with 'medimg acne train --model {model}')", "none"))
    if name not in SHIPPED:
        raise ModelError(expected(
            f"--weights for model '{model}' (its default weights '{name}' are not shipped in this build: "
            f"pass --weights or train them with 'medimg acne train --model {model}')", "none"))
    return shipped_weights(name), f"shipped:{name}"


def model_config_of(metadata: dict[str, str], *, source: str) -> dict:
    """The ``build_model`` keyword arguments stored in weights metadata (``{}`` for files without them)."""
    text = metadata.get("model_config")
    if text is None:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise FormatError(expected("a JSON object in the weights metadata 'model_config'", f"{text[:60]!r} in '{source}'"))
    return config


def load_network(model: str = "fusion", *, weights: Path | str | None = None) -> tuple["torch.nn.Module", str]:
    """Build network ``model`` as its weights describe it and load them.

    Parameters
    ----------
    model : str
        One of ``medimg.acne.models.MODEL_NAMES``.
    weights : path, optional
        A safetensors file with arch ``acne-<model>``; default: the shipped fusion weights
        (other models have none).

    Returns
    -------
    network : torch.nn.Module, in eval mode
    source : str
        ``"shipped:<name>"`` or the weights path.
    """
    from medimg.acne.models import build_model

    check_model_name(model)
    if weights is None:
        weights, source = _default_weights(model)
    else:
        source = str(weights)
    tensors, metadata = load_weights(weights, arch=arch_tag(model))
    config = model_config_of(metadata, source=Path(weights).name)
    try:
        network = build_model(model, **config)
    except TypeError as error:
        raise ModelError(expected(f"model_config keywords that build_model('{model}') accepts", f"{config} ({error})")) from None
    load_state_into(network, tensors, source=Path(weights).name)
    return network.eval(), source


def probabilities(network: "torch.nn.Module", images: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Softmax of both heads: ``(B, 3, H, W)`` -> ``(count_probs (B, 65), grade_probs (B, 4))`` float32."""
    import torch

    count_logits, grade_logits = network(images)
    return torch.softmax(count_logits.float(), dim=1), torch.softmax(grade_logits.float(), dim=1)


def network_predictor(network: "torch.nn.Module", device: "torch.device", *, batch_size: int | None = None) -> Predictor:
    """A :data:`Predictor` running ``network`` on ``device`` (at most ``batch_size`` images per pass).

    Parameters
    ----------
    network : torch.nn.Module
        An acne network; its ``forward`` returns ``(count_logits (B, 65), grade_logits (B, 4))``.
    device : torch.device
    batch_size : int, optional
        Split larger inputs into passes of this many images; default: one pass.
    """
    import torch

    network = network.to(device).eval()

    def predict(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ModelError(expected("images of shape (B, 3, H, W)", f"shape {images.shape}"))
        step = batch_size or max(len(images), 1)
        counts, grades = [], []
        with torch.inference_mode():
            for start in range(0, len(images), step):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + step])).to(device)
                count_probs, grade_probs = probabilities(network, batch)
                counts.append(count_probs.cpu().numpy())
                grades.append(grade_probs.cpu().numpy())
        if not counts:
            from medimg.acne.labels import N_COUNT_BINS, N_GRADES

            return np.zeros((0, N_COUNT_BINS), np.float32), np.zeros((0, N_GRADES), np.float32)
        return np.concatenate(counts), np.concatenate(grades)

    return predict
