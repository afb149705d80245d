"""The predictor contract: a callable from a float32 batch to logits, and the network behind it
loaded once, on first use.

``Predictor``: ``batch (B, C, *spatial) float32, already normalised -> logits`` (one float32
array ``(B, K, *spatial)``, or a tuple with one array per head). Inference plumbing (tilers,
pipelines) takes any such callable, so a test can pass a lambda instead of a network; the pipeline
normalises inputs before and applies :func:`medimg.common.activation.activate` after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from medimg.common.errors import InputError, expected

if TYPE_CHECKING:
    import torch

    from medimg.common.models import LoadedModel

Logits = Union[np.ndarray, tuple[np.ndarray, ...]]
Predictor = Callable[[np.ndarray], Logits]


def network_predictor(network: "torch.nn.Module", device: "torch.device", *, batch_size: int | None = None, channels_last: bool = False) -> Predictor:
    """A :data:`Predictor` running ``network`` on ``device``, at most ``batch_size`` items per pass.

    ``channels_last`` stores 5-D inputs and weights as channels-last-3d (NDHWC), which makes
    depthwise 3-D convolutions several times faster on CPU.
    """
    import torch

    if batch_size is not None and batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    network = network.to(device).eval()
    if channels_last:
        network = network.to(memory_format=torch.channels_last_3d)

    def to_numpy(output) -> Logits:
        if isinstance(output, (tuple, list)):
            return tuple(item.float().cpu().numpy() for item in output)
        return output.float().cpu().numpy()

    def predict(batch: np.ndarray) -> Logits:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim < 2 or len(batch) == 0:
            raise InputError(expected("a non-empty batch (B, C, ...)", f"shape {batch.shape}"))
        step = batch_size or max(len(batch), 1)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(batch), step):
                # a copy: memory-mapped or read-only inputs cannot back a tensor
                tensor = torch.from_numpy(np.array(batch[start : start + step], copy=True)).to(device)
                if channels_last and tensor.dim() == 5:
                    tensor = tensor.contiguous(memory_format=torch.channels_last_3d)
                parts.append(to_numpy(network(tensor)))
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(head) for head in zip(*parts))
        return np.concatenate(parts)

    return predict


@dataclass(frozen=True)
class NetworkOptions:
    """Which network a command runs, and where: the ``--model``, ``--weights``, ``--device`` and
    ``--batch-size`` options every group shares (a group subclasses it for its own defaults).

    ``model`` is a short name within the group (``light``, ``fusion``, ``res-cbam-unet``); None
    takes the group's default, or with ``weights`` whatever architecture the file holds.
    """

    model: str | None = None
    weights: Path | None = None
    device: str = "auto"
    batch_size: int = 4


def group_network(group: str, options: NetworkOptions, *, default_model: str, channels_last: bool = False) -> "LazyModel":
    """The :class:`LazyModel` of ``options`` within ``group``; an unknown model or device name is
    refused now, before any input is read."""
    from medimg.common.device import check_device_name
    from medimg.common.models import arch_of

    check_device_name(options.device)
    if options.model is not None:
        arch = arch_of(group, options.model)
    else:
        arch = f"{group}-{default_model}" if options.weights is None else None
    return LazyModel(arch=arch, weights=options.weights, group=group, device=options.device, batch_size=options.batch_size,
                     channels_last=channels_last)


# Networks loaded by LazyModels that arrived pickled (Dask tasks): one load per worker process.
_LOADED_IN_PROCESS: dict[tuple, tuple["LoadedModel", Predictor, str]] = {}


class LazyModel:
    """The network of a weights file (or the shipped one), loaded on first use, then shared.

    Batch commands build one before reading any input, so a bad first input fails before a slow
    model load, and bad weights fail before the first expensive stage; every input of the batch
    then shares the one loaded network. Calling it is calling the :data:`Predictor`.

    It pickles as its options, never its tensors: a copy sent to a Dask worker loads the network
    there, once per worker process, however many tasks bring their own copy.
    """

    def __init__(
        self,
        *,
        arch: str | None = None,
        weights: Path | str | None = None,
        group: str | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        channels_last: bool = False,
    ) -> None:
        from medimg.common.models import network_spec

        if arch is not None:
            network_spec(arch)  # a typo in --model is told before any input is read
        self.arch, self.weights, self.group = arch, weights, group
        self.device_name, self.batch_size, self.channels_last = device, batch_size, channels_last
        self._model: LoadedModel | None = None
        self._predict: Predictor | None = None
        self.device = "n/a"
        self._shared_in_process = False

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_model=None, _predict=None, device="n/a")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._shared_in_process = True

    def _process_key(self) -> tuple:
        import os

        stamp = None
        if self.weights is not None and os.path.exists(self.weights):
            status = os.stat(self.weights)
            stamp = (status.st_size, status.st_mtime_ns)  # a weights file rewritten in place is a new network
        return (self.arch, None if self.weights is None else str(self.weights), stamp, self.group, self.device_name,
                self.batch_size, self.channels_last)

    def load(self) -> "LoadedModel":
        if self._model is None and self._shared_in_process and self._process_key() in _LOADED_IN_PROCESS:
            self._model, self._predict, self.device = _LOADED_IN_PROCESS[self._process_key()]
        if self._model is None:
            from medimg.common.device import resolve_device
            from medimg.common.models import load_model

            device = resolve_device(self.device_name)
            model = load_model(self.weights, arch=self.arch, group=self.group)
            from medimg.common.batchnorm_folding import fold_batchnorm

            self._predict = network_predictor(fold_batchnorm(model.network), device, batch_size=self.batch_size,
                                              channels_last=self.channels_last)
            self._model, self.device = model, str(device)
            from medimg.common import console

            console.info(f"network {model.arch} from {model.source} on {device}")
            if self._shared_in_process:
                _LOADED_IN_PROCESS[self._process_key()] = (self._model, self._predict, self.device)
        return self._model

    @property
    def model(self) -> "LoadedModel":
        return self.load()

    @property
    def source(self) -> str:
        return self._model.source if self._model is not None else "not loaded"

    def __call__(self, batch: np.ndarray) -> Logits:
        self.load()
        return self._predict(batch)


def model_io(predictor: Predictor, default_arch: str) -> tuple[dict, dict]:
    """``(preprocessing, output)`` the pipeline applies around ``predictor``: the weights file's for
    a :class:`LazyModel`, its own ``preprocessing`` and ``output`` attributes for a callable that
    carries both (a test's stand-in for a network), the registered defaults of ``default_arch``
    for any other callable."""
    if isinstance(predictor, LazyModel):
        model = predictor.load()
        return model.preprocessing, model.output
    preprocessing, output = getattr(predictor, "preprocessing", None), getattr(predictor, "output", None)
    if isinstance(preprocessing, dict) and isinstance(output, dict):
        return preprocessing, output
    from medimg.common.models import network_spec

    spec = network_spec(default_arch)
    return spec.preprocessing, spec.output
