"""A ``(Y, Z, X)`` volume held only between two depths, zero above and below.

Everything the pipeline computes after the network lives in the surface band the tiles cover: a
real fingertip volume is 1400 x 500 x 1800 voxels, its band a few hundred rows deep at most. Held
as a window, a probability map takes ``Y * W * X`` bytes as uint8 codes (``p = code / 255``)
instead of four times the volume as float32, and the gland labels half or less of a full uint16
volume. The window is converted to full B-scans only where a file or a picture needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medimg.common.errors import InputError, expected

PROBABILITY_CODES = 255  # uint8 probability codes: p = code / 255, half a code (0.002) at most from the float


@dataclass
class DepthWindow:
    """Values of a ``(Y, depth, X)`` volume at depths ``[top, top + W)``; 0 elsewhere.

    Attributes
    ----------
    data : (Y, W, X) ndarray, the stored values (uint8 codes when ``scale`` is set)
    top : depth of ``data[:, 0]`` in the volume
    depth : Z of the whole volume
    scale : None, or the value of one code (``1 / 255`` for uint8 probabilities)
    """

    data: np.ndarray
    top: int
    depth: int
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or not 0 <= self.top <= self.top + self.data.shape[1] <= self.depth:
            raise InputError(expected(f"a (Y, W, X) window within depth {self.depth}", f"shape {self.data.shape} at depth {self.top}"))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.data.shape[0], self.depth, self.data.shape[2])

    @property
    def bottom(self) -> int:
        return self.top + self.data.shape[1]

    def values(self, index) -> np.ndarray:
        """``data[index]`` decoded: float32 values when codes are stored, else as stored."""
        stored = self.data[index]
        return stored if self.scale is None else np.asarray(stored, dtype=np.float32) * np.float32(self.scale)

    def bscan(self, y: int) -> np.ndarray:
        """B-scan ``y`` over the whole depth: (Z, X), zero outside the window."""
        values = self.values(y)
        full = np.zeros((self.depth, self.data.shape[2]), dtype=values.dtype)
        full[self.top : self.bottom] = values
        return full

    def bscans(self) -> Iterator[np.ndarray]:
        return (self.bscan(y) for y in range(self.data.shape[0]))

    def to_array(self) -> np.ndarray:
        """The whole ``(Y, Z, X)`` volume (as big as the volume: for small scans and tests)."""
        return np.stack(list(self.bscans())) if self.data.shape[0] else np.zeros(self.shape, dtype=self.values(slice(0, 0)).dtype)

    def nonzero(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y, z, x)`` of the nonzero voxels, ``z`` in the volume's depths."""
        y, z, x = np.nonzero(self.data)
        return y, z + self.top, x

    def voxels_outside(self) -> int:
        """How many voxels of the volume lie above or below the window (all 0)."""
        n_y, _, n_x = self.data.shape
        return n_y * n_x * (self.depth - self.data.shape[1])


def whole(volume: np.ndarray) -> DepthWindow:
    """A full ``(Y, Z, X)`` array as a window over all its depths."""
    return DepthWindow(volume, top=0, depth=volume.shape[1])


def encode_probability(probability: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 codes (``round(255 p)``)."""
    return np.rint(np.clip(probability, 0.0, 1.0) * np.float32(PROBABILITY_CODES)).astype(np.uint8)
