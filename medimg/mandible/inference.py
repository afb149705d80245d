"""The network side of the mandible pipeline: which network (:class:`InferenceOptions`, loaded
once by :func:`mandible_network` and shared by every series), and the slice-by-slice probability
of a CT volume (:func:`predict_volume`).

Used alike by :func:`medimg.mandible.pipeline.segment` and the ``infer`` stage
(:func:`medimg.mandible.stages.run_infer`), so both see the same probabilities.

Each CT slice is one tile of the common tiler (:func:`medimg.common.tiling.merge_tiles`): the tile
is windowed, resized to the network's input and normalised (:func:`~medimg.mandible.preprocess.to_model_input`),
its logits resized back to the slice's rows and columns, and the sigmoid applied once to the whole
volume (:func:`medimg.common.activation.activate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medimg.common import console
from medimg.common.activation import activate
from medimg.common.clock import StageClock
from medimg.common.errors import InputError, expected
from medimg.common.predictor import LazyModel, NetworkOptions, Predictor, group_network, model_io
from medimg.common.tiling import merge_tiles

DEFAULT_ARCH = "mandible-res-cbam-unet"
SLICE_CHUNK = 32  # slices windowed/resized at once: bounds memory at (32, 3, 512, 512) float32 = 100 MB


@dataclass(frozen=True)
class InferenceOptions(NetworkOptions):
    batch_size: int = 8  # model None: the architecture the weights hold (shipped: res-cbam-unet)


def mandible_network(options: InferenceOptions = InferenceOptions()) -> LazyModel:
    """The network of ``options``, loaded on first use; a typo in ``--arch`` is told at once.

    ``segment`` loads it right after reading a series, so a bad folder fails before the model
    loads and bad weights fail before any output is written.
    """
    return group_network("mandible", options, default_model=DEFAULT_ARCH.removeprefix("mandible-"))


def predict_volume(
    hu: np.ndarray,
    predictor: Predictor,
    *,
    input_size: int,
    level: float,
    width: float,
    output: dict | None = None,
    mean=None,
    std=None,
    clock: StageClock | None = None,
    chunk: int = SLICE_CHUNK,
) -> np.ndarray:
    """Mandible probability of every voxel, slice by slice.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray of float32 (HU)
    predictor : callable, (N, 3, S, S) float32 -> (N, 1, S, S) float32 logits, S = ``input_size``
    output : the weights' output entry (default: a sigmoid)
    mean, std : the weights' input statistics per channel (default: ImageNet's)

    Returns
    -------
    probabilities : (Z, Y, X) ndarray of float32 in [0, 1]
    """
    from medimg.mandible.preprocess import resize_slices, to_model_input

    clock = clock or StageClock()
    statistics = {key: value for key, value in (("mean", mean), ("std", std)) if value is not None}
    n_slices, rows, columns = hu.shape

    def prepare(tiles: np.ndarray) -> np.ndarray:
        with clock.stage("preprocess"):
            return to_model_input(tiles[:, 0], size=input_size, level=level, width=width, **statistics)

    def timed_predictor(batch: np.ndarray) -> np.ndarray:
        with clock.stage("infer"):
            return np.asarray(predictor(batch), dtype=np.float32)

    def restore(logits: np.ndarray) -> np.ndarray:
        if logits.ndim != 4 or logits.shape[1:] != (1, input_size, input_size):
            from medimg.common.errors import ModelError

            raise ModelError(expected(f"logits of shape ({len(logits)}, 1, {input_size}, {input_size})", f"{logits.shape}"))
        with clock.stage("resample"):
            return resize_slices(logits[:, 0], (rows, columns))[:, None, None]

    starts = np.stack([np.arange(n_slices), np.zeros(n_slices, int), np.zeros(n_slices, int)], axis=1)
    logits = merge_tiles(
        lambda batch: hu[batch][:, None], starts, hu.shape, (1, rows, columns), predictor=timed_predictor, prepare=prepare, restore=restore,
        weighting="constant", batch_size=chunk, progress=lambda items: console.track(items, description="segment"),
    )
    return activate(logits[None], output or {"activation": "sigmoid"}, in_place=True)[0, 0]


@dataclass(frozen=True)
class NetworkSettings:
    """What the slice predictor needs around it: input side, CT window (HU), and where it came from."""

    input_size: int
    level: float
    width: float
    weights: str = "custom predictor"
    device: str = "n/a"
    output: dict | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def predict_options(self) -> dict:
        """The keywords of :func:`predict_volume` these settings fix."""
        return {"input_size": self.input_size, "level": self.level, "width": self.width, "output": self.output,
                "mean": self.mean, "std": self.std}


def network_settings(
    predictor: Predictor,
    *,
    input_size: int | None = None,
    level: float | None = None,
    width: float | None = None,
) -> NetworkSettings:
    """What the predictor needs around it: the weights' input size, window and output (a
    :class:`LazyModel` is loaded here), unless given; any other callable needs ``input_size`` and
    gets the default window."""
    preprocessing, output = model_io(predictor, DEFAULT_ARCH)
    weights, device = "custom predictor", "n/a"
    if isinstance(predictor, LazyModel):
        model = predictor.load()
        weights, device = model.source, predictor.device
        input_size = input_size or int(preprocessing["input_size"])
    if input_size is None:
        raise InputError(expected("the network's input_size with a custom predictor", "none"))
    if int(input_size) < 32 or int(input_size) % 32:
        raise InputError(expected("an input size that is a multiple of 32", input_size))
    level = float(preprocessing["window_level"]) if level is None else level
    width = float(preprocessing["window_width"]) if width is None else width
    mean, std = preprocessing.get("mean"), preprocessing.get("std")
    return NetworkSettings(int(input_size), level, width, weights, device, output,
                           None if mean is None else tuple(mean), None if std is None else tuple(std))
