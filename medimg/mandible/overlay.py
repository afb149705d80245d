"""A montage of axial CT slices with the mandible mask drawn on them, for a quick visual check."""

from __future__ import annotations

import math

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.mandible.preprocess import DEFAULT_WINDOW, window

MASK_COLOUR = (255, 140, 0)  # orange: stands out on grey bone and soft tissue alike
MASK_OPACITY = 0.35  # the bone under the mask stays visible, so misses at its edge can be judged
LABEL_COLOUR = (255, 255, 0)
_GAP = 2  # black pixels between tiles


def montage_slices(mask: np.ndarray, tiles: int) -> np.ndarray:
    """Slice indices ``(n,)`` int64, ``n <= tiles``, evenly spread over the mask's slice range.

    The whole volume's range when the mask is empty; repeated indices (fewer slices than tiles)
    are dropped.
    """
    occupied = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    first, last = (occupied[0], occupied[-1]) if len(occupied) else (0, mask.shape[0] - 1)
    return np.unique(np.round(np.linspace(first, last, tiles)).astype(np.int64))


def _tile(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One ``(Y, X, 3)`` uint8 tile: grey image, mask tinted, mask outline in full colour."""
    from scipy import ndimage

    rgb = np.repeat(grey[..., None], 3, axis=2)
    colour = np.asarray(MASK_COLOUR, dtype=np.float32)
    rgb[mask] = (1.0 - MASK_OPACITY) * rgb[mask] + MASK_OPACITY * colour
    outline = mask & ~ndimage.binary_erosion(mask, border_value=1)
    rgb[outline] = colour
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(tile)
    ImageDraw.Draw(image).text((3, 2), text, fill=LABEL_COLOUR)
    return np.asarray(image)


def overlay_montage(
    hu: np.ndarray,
    mask: np.ndarray,
    *,
    tiles: int = 12,
    level: float = DEFAULT_WINDOW[0],
    width: float = DEFAULT_WINDOW[1],
) -> np.ndarray:
    """Grid of windowed axial slices with the mask overlaid.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray of float (HU)
    mask : (Z, Y, X) ndarray of bool
    tiles : int
        Most slices shown, spread evenly from the mask's first to its last slice (the whole
        volume when the mask is empty).
    level, width : float
        Display window in HU (default: the bone window used for the network).

    Returns
    -------
    montage : (H, W, 3) ndarray of uint8
        Tiles in rows of ``ceil(sqrt(n))``, separated by black lines, each labelled with its slice
        index; rows and columns as stored (row 0 at the top: anterior up for a standard axial
        series), the mask tinted orange with a solid outline.
    """
    hu = np.asarray(hu)
    mask = np.asarray(mask, dtype=bool)
    if hu.ndim != 3 or 0 in hu.shape or mask.shape != hu.shape:
        raise InputError(expected("a (Z, Y, X) volume and a mask of the same shape", f"shapes {hu.shape} and {mask.shape}"))
    if int(tiles) < 1:
        raise InputError(expected("at least one tile", tiles))
    indices = montage_slices(mask, int(tiles))
    columns = math.ceil(math.sqrt(len(indices)))
    rows = math.ceil(len(indices) / columns)
    height, width_px = hu.shape[1:]
    montage = np.zeros((rows * height + (rows - 1) * _GAP, columns * width_px + (columns - 1) * _GAP, 3), dtype=np.uint8)
    for position, index in enumerate(indices):
        grey = window(hu[index], level=level, width=width) * np.float32(255.0)
        tile = _label(_tile(grey, mask[index]), str(int(index)))
        top = (position // columns) * (height + _GAP)
        left = (position % columns) * (width_px + _GAP)
        montage[top : top + height, left : left + width_px] = tile
    return montage
