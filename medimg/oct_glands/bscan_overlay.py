"""``bscan_overlay.png``: a few B-scans with what the pipeline saw, for a person to check at once.

Each panel is one B-scan (depth down, X across), contrast-stretched between its 1st and 99.5th
percentiles, with the detected skin surface in red, the bottom of the surface-anchored ROI band
(surface + block size) in yellow, and the voxels of detected ducts tinted green. Panels are the
B-scan with the most duct voxels and the B-scans at a quarter and three quarters of the volume,
stacked top to bottom in Y order.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.oct_glands.depth_window import DepthWindow, whole

__all__ = ["SURFACE_COLOUR", "BAND_COLOUR", "DUCT_COLOUR", "bscan_overlay", "overlay_bscans"]

SURFACE_COLOUR = (255, 40, 40)
BAND_COLOUR = (255, 220, 0)
DUCT_COLOUR = (0, 255, 80)
_GAP = 4


def overlay_bscans(labels: np.ndarray | DepthWindow) -> list[int]:
    """The B-scans shown: the one with most duct voxels and those at 1/4 and 3/4 of Y, sorted, unique.

    Parameters
    ----------
    labels : (Y, Z, X) ndarray of int, 0 = background, or a depth window of them
    """
    stored = labels.data if isinstance(labels, DepthWindow) else labels
    n_y = stored.shape[0]
    picks = {n_y // 4, (3 * n_y) // 4}
    per_bscan = np.count_nonzero(stored.reshape(n_y, -1), axis=1)
    picks.add(int(per_bscan.argmax()) if per_bscan.any() else n_y // 2)
    return sorted(picks)


def _panel(bscan: np.ndarray, surface_row: np.ndarray, label_row: np.ndarray, band: int) -> np.ndarray:
    bscan = np.asarray(bscan, dtype=np.float32)
    low, high = np.percentile(bscan, [1.0, 99.5])
    grey = np.clip((bscan - low) / max(float(high - low), 1e-6), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    ducts = label_row > 0
    rgb[ducts] = 0.5 * rgb[ducts] + 0.5 * np.array(DUCT_COLOUR, np.float32)
    n_z, n_x = bscan.shape
    columns = np.arange(n_x)
    rgb[np.clip(surface_row + band, 0, n_z - 1), columns] = BAND_COLOUR
    rgb[np.clip(surface_row, 0, n_z - 1), columns] = SURFACE_COLOUR
    return rgb.astype(np.uint8)


def bscan_overlay(volume: np.ndarray, surface: np.ndarray, labels: np.ndarray | DepthWindow, *, band: int) -> np.ndarray:
    """Panels of :func:`overlay_bscans` (module docstring), stacked with a white gap.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray, the scan the surface was found on
    surface : (Y, X) ndarray of int, surface depth per A-scan
    labels : (Y, Z, X) ndarray of int, gland labels (0 = background), or a depth window of them
    band : ROI depth below the surface (the block size)

    Returns
    -------
    image : (P * Z + (P - 1) * 4, X, 3) ndarray of uint8, P panels
    """
    if not isinstance(labels, DepthWindow) and np.ndim(labels) == 3:
        labels = whole(np.asarray(labels))
    if volume.ndim != 3 or labels.shape != volume.shape or surface.shape != (volume.shape[0], volume.shape[2]):
        raise InputError(expected("a (Y, Z, X) volume with labels of its shape and a (Y, X) surface",
                                  f"shapes {volume.shape}, {labels.shape} and {surface.shape}"))
    panels = []
    for y in overlay_bscans(labels):
        if panels:
            panels.append(np.full((_GAP, volume.shape[2], 3), 255, np.uint8))
        panels.append(_panel(volume[y], np.asarray(surface[y], dtype=np.int64), labels.bscan(y), band))
    return np.concatenate(panels, axis=0)
