"""Stage 3: regions of interest, 80^3 blocks anchored on the skin surface (paper eq. 1).

Corners sit on a grid: ``x* = k N`` and ``y* = h N`` for every k, h whose block fits
(``k <= (X - size) / N``), plus one more column and row of blocks ending at the far X and Y
edges where the grid stops short of them (the paper's grid left those voxels unpredicted; see
:func:`medimg.common.tiling.tile_starts`). The block's top ``z*`` is the rounded mean surface depth at
``(y*, x*), (y* + 1, x*), (y* + 2, x*), (y* + 3, x*)``, clipped so the block fits the volume.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.common.tiling import tile_reader, tile_starts

BLOCK_SIZE = 80
INFERENCE_STRIDE = 40
TRAINING_STRIDE = 20
_SURFACE_ROWS = 4  # the paper averages the surface over 4 consecutive B-scans


def check_volume_fits(shape: tuple[int, ...], size: int = BLOCK_SIZE) -> None:
    """Raise InputError when a ``(Y, Z, X)`` volume cannot hold one ``size``^3 block."""
    if len(shape) != 3:
        raise InputError(expected("a (Y, Z, X) volume", f"shape {tuple(shape)}"))
    for axis, extent in zip("YZX", shape):
        if extent < size:
            what = "deep (Z)" if axis == "Z" else f"along {axis}"
            raise InputError(expected(f"a volume at least {size} voxels {what}", f"{extent} in shape {tuple(shape)} (Y, Z, X)"))


def roi_corners(surface: np.ndarray, volume_shape: tuple[int, int, int], *, size: int = BLOCK_SIZE, stride: int = INFERENCE_STRIDE) -> np.ndarray:
    """Corners of the surface-anchored blocks.

    Parameters
    ----------
    surface : (Y, X) ndarray of int
        Surface depth from :func:`~medimg.oct_glands.surface.detect_surface`.
    volume_shape : (Y, Z, X)

    Returns
    -------
    corners : (B, 3) ndarray of int64
        Rows ``(y*, z*, x*)`` in raster order (y* slow, x* fast).
    """
    check_volume_fits(volume_shape, size)
    if stride < 1:
        raise InputError(expected("a stride >= 1", stride))
    n_y, n_z, n_x = volume_shape
    if surface.shape != (n_y, n_x):
        raise InputError(expected(f"a surface map of shape {(n_y, n_x)}", f"shape {surface.shape}"))
    ys = tile_starts(n_y, size, stride)
    xs = tile_starts(n_x, size, stride)
    corners = []
    for y in ys:
        rows = surface[y : y + _SURFACE_ROWS].astype(np.float64)
        for x in xs:
            z = int(np.floor(rows[:, x].mean() + 0.5))  # round half up, as people round
            corners.append((int(y), min(max(z, 0), n_z - size), int(x)))
    return np.asarray(corners, dtype=np.int64).reshape(-1, 3)


def extract_blocks(volume: np.ndarray, corners: np.ndarray, *, size: int = BLOCK_SIZE) -> np.ndarray:
    """Copy the blocks out of the volume.

    Returns
    -------
    blocks : (B, size, size, size) ndarray, the volume's dtype, axes (Y, Z, X) within each block
    """
    return tile_reader(volume, corners, (size,) * 3)(slice(None))
