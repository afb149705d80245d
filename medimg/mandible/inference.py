"""The network side of the mandible pipeline: which network (:class:`InferenceOptions`), loaded
once and shared (:class:`LazyNetwork`), and the slice-by-slice probability of a CT volume
(:func:`predict_volume`, timed per step by :class:`StageClock`).

Used alike by :func:`medimg.mandible.pipeline.segment` and the ``infer`` stage
(:func:`medimg.mandible.stages.run_infer`), so both see the same probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, ModelError, expected

SLICE_CHUNK = 32  # slices windowed/resized at once: bounds memory at (32, 3, 512, 512) float32 = 100 MB


@dataclass(frozen=True)
class InferenceOptions:
    arch: str | None = None  # None: the architecture the weights hold (shipped: res-cbam-unet)
    weights: Path | None = None
    device: str = "auto"
    batch_size: int = 8


class LazyNetwork:
    """The network of ``options``, loaded on first use and then shared by every series.

    ``segment`` loads it right after reading a series, so a bad folder fails before the model
    loads and bad weights fail before any output is written.
    """

    def __init__(self, options: InferenceOptions = InferenceOptions()) -> None:
        from medimg.mandible.predictor import check_arch

        check_arch(options.arch)  # a typo in --arch is told before any series is read
        self.options = options
        self._predict: Callable[[np.ndarray], np.ndarray] | None = None
        self.source = "not loaded"
        self.device = "n/a"
        self.input_size: int | None = None
        self.window: tuple[float, float] | None = None

    def load(self) -> None:
        if self._predict is not None:
            return
        from medimg.common.device import resolve_device
        from medimg.mandible.predictor import load_network_with_metadata, network_predictor

        device = resolve_device(self.options.device)
        loaded = load_network_with_metadata(self.options.arch, weights=self.options.weights)
        self._predict = network_predictor(loaded.network, device, batch_size=self.options.batch_size)
        self.source, self.device, self.input_size, self.window = loaded.source, str(device), loaded.input_size, loaded.window
        console.info(f"network {loaded.arch} from {loaded.source}, input {loaded.input_size}x{loaded.input_size}")

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        self.load()
        return self._predict(slices)


class StageClock:
    """Wall-clock seconds per stage (a stage may be entered several times; its times add up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)


def predict_volume(
    hu: np.ndarray,
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    input_size: int,
    level: float,
    width: float,
    clock: StageClock | None = None,
    chunk: int = SLICE_CHUNK,
) -> np.ndarray:
    """Mandible probability of every voxel, slice by slice.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray of float32 (HU)
    predictor : callable, (N, 3, S, S) float32 -> (N, S, S) float32 in [0, 1], S = ``input_size``

    Returns
    -------
    probabilities : (Z, Y, X) ndarray of float32 in [0, 1]
    """
    from medimg.mandible.preprocess import to_model_input, to_original_grid

    clock = clock or StageClock()
    probabilities = np.empty(hu.shape, dtype=np.float32)
    for start in console.track(range(0, hu.shape[0], chunk), description="segment"):
        stop = min(start + chunk, hu.shape[0])
        with clock.stage("preprocess"):
            batch = to_model_input(hu[start:stop], size=input_size, level=level, width=width)
        with clock.stage("infer"):
            predicted = np.asarray(predictor(batch), dtype=np.float32)
        if predicted.shape != (stop - start, input_size, input_size):
            raise ModelError(expected(f"predictions of shape {(stop - start, input_size, input_size)}", f"{predicted.shape}"))
        with clock.stage("resample"):
            probabilities[start:stop] = to_original_grid(predicted, shape=hu.shape[1:])
    return probabilities


@dataclass(frozen=True)
class NetworkSettings:
    """What the slice predictor needs around it: input side, CT window (HU), and where it came from."""

    input_size: int
    level: float
    width: float
    weights: str = "custom predictor"
    device: str = "n/a"


def network_settings(
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    input_size: int | None = None,
    level: float | None = None,
    width: float | None = None,
) -> NetworkSettings:
    """Load a :class:`LazyNetwork` and take its input size and window unless given.

    Any other callable needs ``input_size``; the window then defaults to
    :data:`~medimg.mandible.preprocess.DEFAULT_WINDOW`.
    """
    from medimg.mandible.preprocess import DEFAULT_WINDOW

    weights, device = "custom predictor", "n/a"
    if isinstance(predictor, LazyNetwork):
        predictor.load()
        weights, device = predictor.source, predictor.device
        input_size = input_size or predictor.input_size
        level = predictor.window[0] if level is None else level
        width = predictor.window[1] if width is None else width
    if input_size is None:
        raise InputError(expected("the network's input_size with a custom predictor", "none"))
    level = DEFAULT_WINDOW[0] if level is None else level
    width = DEFAULT_WINDOW[1] if width is None else width
    return NetworkSettings(int(input_size), level, width, weights, device)
