"""The segmentation network as a slice predictor: weights loading and batched, device-side inference.

A weights file written by ``medimg mandible train`` carries everything needed to use it: the
architecture (the ``arch`` tag ``mandible-<arch>``), the constructor arguments (``model_config``,
JSON), the input size the network was trained at (``input_size``) and the CT window its inputs
were made with (``window_level``, ``window_width``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from medimg.common import weights as weights_registry
from medimg.common.errors import ModelError, expected
from medimg.common.weights import load_state_into, load_weights, shipped_weights

if TYPE_CHECKING:
    import torch

DEFAULT_ARCH = "res-cbam-unet"
SHIPPED_NAME = "mandible-res-cbam-unet"
ARCH_PREFIX = "mandible-"
DEFAULT_INPUT_SIZE = 256

SlicePredictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LoadedNetwork:
    """A network rebuilt from its weights file, with what the file says about its inputs."""

    network: "torch.nn.Module"
    source: str  # "shipped:<name>" or the weights path
    arch: str
    input_size: int
    window: tuple[float, float]  # (level, width) in HU
    metadata: dict[str, str]


def _metadata_number(metadata: dict[str, str], key: str, default, kind, source: str):
    if key not in metadata:
        return default
    try:
        return kind(metadata[key])
    except ValueError:
        raise ModelError(expected(f"a number under '{key}' in the weights metadata", f"{metadata[key]!r} in {source}")) from None


def check_arch(arch: str | None) -> str | None:
    """``arch`` itself when it is one of :data:`medimg.mandible.models.ARCHS` (or None); else a ModelError."""
    if arch is None:
        return None
    from medimg.mandible.models import ARCHS

    if arch not in ARCHS:
        raise ModelError(expected(f"an arch among {', '.join(ARCHS)}", repr(arch)))
    return arch


def _shipped_path() -> Path:
    if SHIPPED_NAME not in weights_registry.SHIPPED:
        raise ModelError(expected("the shipped mandible weights", "none in this build; pass --weights (train them with 'medimg mandible train')"))
    try:
        return shipped_weights(SHIPPED_NAME)
    except ModelError as error:
        raise ModelError(f"{error}; or pass --weights (train them with 'medimg mandible train')") from None


def model_config_of(metadata: dict[str, str], *, source: str) -> dict:
    """The ``build_model`` keyword arguments stored under ``model_config`` (a JSON object)."""
    if "model_config" not in metadata:
        raise ModelError(expected("'model_config' in the weights metadata (written by 'medimg mandible train')", f"none in '{source}'"))
    text = metadata["model_config"]
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise ModelError(expected("a JSON object under 'model_config' in the weights metadata", f"{text[:60]!r} in '{source}'"))
    config.pop("arch", None)
    return config


def load_network_with_metadata(arch: str | None = DEFAULT_ARCH, *, weights: Path | str | None = None) -> LoadedNetwork:
    """Rebuild the network stored in a weights file and load its tensors.

    Parameters
    ----------
    arch : str or None
        One of :data:`medimg.mandible.models.ARCHS`; the file must hold that architecture.
        ``None`` takes whatever architecture the file holds.
    weights : path, optional
        A ``.safetensors`` file from ``medimg mandible train``; default: the shipped weights.
    """
    from medimg.mandible.models import build_model
    from medimg.mandible.preprocess import DEFAULT_WINDOW

    check_arch(arch)
    if weights is None:
        if arch not in (None, DEFAULT_ARCH):
            raise ModelError(expected(f"--weights for architecture '{arch}' (weights ship only for {DEFAULT_ARCH})", "none"))
        weights = _shipped_path()
        source = f"shipped:{SHIPPED_NAME}"
        arch = DEFAULT_ARCH
    else:
        source = str(weights)
    tensors, metadata = load_weights(weights, arch=None if arch is None else f"{ARCH_PREFIX}{arch}")
    tag = metadata.get("arch", "")
    if not tag.startswith(ARCH_PREFIX):
        raise ModelError(expected("mandible weights (arch tag 'mandible-...')", f"'{tag or 'unknown'}' in '{Path(weights).name}'"))
    arch = tag[len(ARCH_PREFIX):]
    config = model_config_of(metadata, source=Path(weights).name)
    try:
        network = build_model(arch, **config)
    except (TypeError, ValueError) as error:
        raise ModelError(expected(f"model_config keywords that build_model('{arch}') accepts", f"{config} in '{Path(weights).name}' ({error})")) from None
    load_state_into(network, tensors, source=Path(weights).name)
    input_size = _metadata_number(metadata, "input_size", DEFAULT_INPUT_SIZE, int, source)
    if input_size < 32 or input_size % 32:
        raise ModelError(expected("an input size that is a multiple of 32 in the weights metadata", input_size))
    window = (
        _metadata_number(metadata, "window_level", DEFAULT_WINDOW[0], float, source),
        _metadata_number(metadata, "window_width", DEFAULT_WINDOW[1], float, source),
    )
    return LoadedNetwork(network.eval(), source, arch, input_size, window, metadata)


def load_network(arch: str | None = DEFAULT_ARCH, *, weights: Path | str | None = None) -> tuple["torch.nn.Module", str, int]:
    """``(network in eval mode, weights source, input size)``; see :func:`load_network_with_metadata`."""
    loaded = load_network_with_metadata(arch, weights=weights)
    return loaded.network, loaded.source, loaded.input_size


def network_predictor(network: "torch.nn.Module", device: "torch.device", *, batch_size: int = 8) -> SlicePredictor:
    """A slice predictor running ``network`` on ``device``, ``batch_size`` slices per forward pass.

    The returned function maps ``(N, 3, S, S)`` float32 (the output of
    :func:`medimg.mandible.preprocess.to_model_input`) to ``(N, S, S)`` float32 mandible
    probabilities (sigmoid of the logits).
    """
    import torch

    if batch_size < 1:
        from medimg.common.errors import InputError

        raise InputError(expected("a batch size >= 1", batch_size))
    network = network.to(device).eval()

    def predict(slices: np.ndarray) -> np.ndarray:
        slices = np.asarray(slices, dtype=np.float32)
        out = np.empty((slices.shape[0], *slices.shape[2:]), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(slices), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size])).to(device)
                out[start : start + len(batch)] = torch.sigmoid(network(batch)[:, 0]).float().cpu().numpy()
        return out

    return predict
