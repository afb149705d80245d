"""The en-face fingerprint: skin-surface topography seen from above, with pores drawn on it."""

from __future__ import annotations

import numpy as np

PORE_COLOUR = (230, 40, 40)
_DETREND_SIGMA = 25.0  # voxels, about two ridge periods: removes finger curvature, keeps ridges


def fingerprint_image(surface: np.ndarray) -> np.ndarray:
    """Ridges bright, valleys dark, from the surface depth map.

    Ridges stand higher (smaller z) than valleys, so the detrended negative depth is the
    epidermal fingerprint.

    Parameters
    ----------
    surface : (Y, X) ndarray of int or float, depth of the skin surface

    Returns
    -------
    image : (Y, X) ndarray of uint8
    """
    from scipy import ndimage

    height = -ndimage.median_filter(surface.astype(np.float32), size=3, mode="nearest")
    detail = height - ndimage.gaussian_filter(height, _DETREND_SIGMA, mode="nearest")
    low, high = np.percentile(detail, [1, 99])
    if high <= low:
        return np.full(surface.shape, 128, dtype=np.uint8)
    return np.clip((detail - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)


def draw_pores(image: np.ndarray, pores: list[dict], *, radius: int = 4) -> np.ndarray:
    """Draw each pore ``(x, y)`` as a ring on a grey ``(Y, X)`` image; returns ``(Y, X, 3)`` uint8 RGB."""
    from skimage.draw import circle_perimeter

    rgb = np.repeat(image[..., None], 3, axis=2)
    for pore in pores:
        for ring in (radius, radius + 1):
            rows, cols = circle_perimeter(int(round(pore["y"])), int(round(pore["x"])), ring, shape=image.shape)
            rgb[rows, cols] = PORE_COLOUR
    return rgb
