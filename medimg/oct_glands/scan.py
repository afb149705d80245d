"""Reading an OCT scan: canonical axes, 8-bit display range, room for one 80^3 block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.volumes import read_volume
from medimg.oct_glands.roi import BLOCK_SIZE, check_volume_fits


def as_uint8(volume: np.ndarray) -> np.ndarray:
    """The pipeline works on 8-bit log-display volumes; other dtypes are rescaled (0.1-99.9 percentiles)."""
    if volume.dtype == np.uint8:
        return volume
    low, high = np.percentile(volume[:: max(1, volume.shape[0] // 16)], [0.1, 99.9])
    console.warn(f"volume has dtype {volume.dtype}; rescaling {low:.4g}..{high:.4g} to 0..255")
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip((np.asarray(volume, dtype=np.float32) - low) * scale, 0, 255).astype(np.uint8)


def load_scan(path: Path, *, axes: str = "YZX", require_block: bool = True) -> np.ndarray:
    """Read an OCT scan as a ``(Y, Z, X)`` uint8 volume (holding at least one 80^3 block if required)."""
    volume = read_volume(path, axes=axes)
    if require_block:
        check_volume_fits(volume.shape, BLOCK_SIZE)
    return as_uint8(volume)
