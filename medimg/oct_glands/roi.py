"""Stage 3: regions of interest, 80^3 blocks anchored on the skin surface (paper eq. 1), or the
fast path's band tiles (:func:`band_tiles`).

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
TILINGS = ("paper", "band")  # extract's --tiling: the paper's overlapping blocks, or band tiles
BAND_SIDE = 80  # lateral side of a band tile: the light network's cheapest per voxel on CPU
BAND_OVERLAP = 16  # voxels two neighbouring band tiles share, blended by Gaussian importance
BAND_MARGIN = 8  # rows of context above the highest and below the deepest surface of a tile
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


def band_tiles(
    surface: np.ndarray,
    volume_shape: tuple[int, int, int],
    *,
    depth: int = BLOCK_SIZE,
    side: int = BAND_SIDE,
    overlap: int = BAND_OVERLAP,
    margin: int = BAND_MARGIN,
    divisor: int = 8,
    field_margin: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Tiles that cover the surface band ``[surface, surface + depth)`` of every A-scan once, with
    ``overlap`` voxels shared between lateral neighbours (the paper's stride-40 blocks read each
    voxel four times).

    Each tile is ``side`` x ``side`` laterally and as deep as its own stretch of the band needs:
    from ``margin`` above its highest surface to ``margin`` below its deepest surface + ``depth``,
    rounded up to a multiple of ``divisor`` (the network's) and clipped to the volume.

    With ``field_margin`` m > 0 the tiles cover the en-face field widened by m A-scans on each
    side (corners from -m; read them with ``tile_reader(..., beyond="reflect")``), so that the
    field's own edge lies m voxels inside a tile rather than at a tile's border, where a network
    sees least context.

    Parameters
    ----------
    surface : (Y, X) ndarray of int, surface depth of each A-scan
    volume_shape : (Y, Z, X)

    Returns
    -------
    corners : (N, 3) ndarray of int64, rows (y, z, x), ordered by tile shape
    shapes : (N, 3) ndarray of int64, rows (side, D, side)
    """
    check_volume_fits(volume_shape, depth)
    n_y, n_z, n_x = volume_shape
    if surface.shape != (n_y, n_x):
        raise InputError(expected(f"a surface map of shape {(n_y, n_x)}", f"shape {surface.shape}"))
    if not 0 <= overlap < side:
        raise InputError(expected(f"a tile overlap in [0, {side})", overlap))
    if not 0 <= field_margin < min(n_y, n_x):
        raise InputError(expected(f"a field margin in [0, {min(n_y, n_x)})", field_margin))
    deepest = n_z - n_z % divisor
    corners, shapes = [], []
    for y in tile_starts(n_y + 2 * field_margin, side, side - overlap) - field_margin:
        for x in tile_starts(n_x + 2 * field_margin, side, side - overlap) - field_margin:
            stretch = surface[max(y, 0) : y + side, max(x, 0) : x + side]
            top = int(stretch.min()) - margin
            rows = int(stretch.max()) + depth + margin - top
            rows = min(-(-rows // divisor) * divisor, deepest)
            corners.append((int(y), min(max(top, 0), n_z - rows), int(x)))
            shapes.append((min(side, n_y + 2 * field_margin), rows, min(side, n_x + 2 * field_margin)))
    corners, shapes = np.asarray(corners, dtype=np.int64), np.asarray(shapes, dtype=np.int64)
    order = np.lexsort((np.arange(len(shapes)), shapes[:, 1]))
    return corners[order], shapes[order]


def clear_outside_band(volume: np.ndarray, surface: np.ndarray, *, depth: int = BLOCK_SIZE, margin: int = BAND_MARGIN, top: int = 0) -> np.ndarray:
    """Set to 0, in place, every voxel outside the band the band tiles predict for: from ``margin``
    above the surface to ``depth`` below it (the paper's blocks leave the same voxels out).

    Parameters
    ----------
    volume : (Y, Z, X) ndarray (a probability map), or the rows of a depth window
    surface : (Y, X) ndarray of int, the surface of the same B-scans
    top : depth of ``volume[:, 0]`` in the scan (a depth window's)

    Returns
    -------
    volume : the same array
    """
    rows = top + np.arange(volume.shape[1])[:, None]
    for y in range(volume.shape[0]):
        line = surface[y].astype(np.int64)[None, :]
        volume[y][(rows < line - margin) | (rows >= line + depth)] = 0
    return volume
