"""A predictor whose network is loaded on first use, then reused for every later call.

Batch commands build one before reading any input, so a bad first input fails before a slow
model load, and bad weights fail before the first expensive stage; every input of the batch
then shares the one loaded network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyPredictor:
    """Wraps ``loader() -> (predict, weights_source, device)``; ``provenance`` is
    ``(weights_source, device)`` once loaded, ``("not loaded", "n/a")`` before."""

    def __init__(self, loader: Callable[[], tuple[Callable[..., Any], str, str]]) -> None:
        self._loader = loader
        self._predict: Callable[..., Any] | None = None
        self.provenance: tuple[str, str] = ("not loaded", "n/a")

    def load(self) -> None:
        if self._predict is None:
            self._predict, *provenance = self._loader()
            self.provenance = tuple(provenance)

    def __call__(self, batch):
        self.load()
        return self._predict(batch)
