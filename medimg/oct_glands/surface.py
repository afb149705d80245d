"""Stage 2: the skin (stratum corneum) surface depth of every A-scan.

Paper rule: ``G(y, z, x) = |I(y, z, x) - I(y, z - 1, x)|`` and the surface of column (y, x) is
the z of the largest G. Contact OCT may show a glass plate whose edge is stronger than the skin's,
and speckle creates spurious maxima, so three optional refinements exist (all off by default,
which is the paper's rule): Gaussian smoothing of each B-scan first, counting only rising edges
(dark above, bright below), and a median filter over the resulting depth map.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

_CHUNK_BSCANS = 16  # bounds the float32 copies to a few B-scans of a 1.26 GB volume


def detect_surface(
    volume: np.ndarray,
    *,
    smooth_sigma: float = 0.0,
    rising_only: bool = False,
    median_size: int = 0,
) -> np.ndarray:
    """Depth of the largest vertical intensity step in every column.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8 (any real dtype works)
    smooth_sigma : Gaussian sigma (voxels) applied within each B-scan before the gradient; 0 = none.
    rising_only : keep only steps from dark (above) to bright (below).
    median_size : odd size of a median filter over the depth map for outlier rejection; 0 = none.

    Returns
    -------
    surface : (Y, X) ndarray of int32
        z index of the maximum of G; G is defined from z = 1 on, so the surface is >= 1.
    """
    from scipy import ndimage

    if volume.ndim != 3:
        raise InputError(expected("a (Y, Z, X) volume", f"shape {volume.shape}"))
    if volume.shape[1] < 2:
        raise InputError(expected("a volume at least 2 voxels deep", volume.shape[1]))
    if median_size < 0 or (median_size and median_size % 2 == 0):
        raise InputError(expected("an odd median size or 0", median_size))
    n_y = volume.shape[0]
    surface = np.empty((n_y, volume.shape[2]), dtype=np.int32)
    for start in range(0, n_y, _CHUNK_BSCANS):
        chunk = np.asarray(volume[start : start + _CHUNK_BSCANS], dtype=np.float32)
        if smooth_sigma > 0:
            chunk = ndimage.gaussian_filter(chunk, sigma=(0, smooth_sigma, smooth_sigma))
        step = np.diff(chunk, axis=1)  # step[:, z - 1, :] = I(z) - I(z - 1)
        gradient = np.maximum(step, 0) if rising_only else np.abs(step)
        surface[start : start + chunk.shape[0]] = np.argmax(gradient, axis=1) + 1
    if median_size:
        surface = ndimage.median_filter(surface, size=median_size, mode="nearest").astype(np.int32)
    return surface
