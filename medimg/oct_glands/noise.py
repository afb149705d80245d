"""The noise sigma BM3D is given, measured in the air above the skin (a homogeneous region).

Wavelet estimators such as ``skimage.restoration.estimate_sigma`` underestimate spatially
correlated speckle several-fold, so they are only the fallback when a scan shows too little air.
"""

from __future__ import annotations

import numpy as np

from medimg.common import console
from medimg.common.denoisers import region_sigma
from medimg.oct_glands.intensity import to_unit

_AIR_MARGIN = 4  # voxels kept between the air sample and the detected surface
_MIN_AIR_VOXELS = 1000


def estimate_noise_sigma(volume: np.ndarray, *, domain: str = "log", max_bscans: int = 32) -> float:
    """Noise standard deviation in grey levels (0-255 scale of the working domain), measured in air.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8

    Returns
    -------
    sigma : float
        Standard deviation of the voxels more than 4 voxels above the smoothed surface,
        from up to ``max_bscans`` evenly spaced B-scans.
    """
    from medimg.oct_glands.surface import detect_surface

    picks = np.unique(np.linspace(0, volume.shape[0] - 1, min(max_bscans, volume.shape[0])).astype(int))
    sample = np.stack([to_unit(volume[index], domain) for index in picks]) * 255.0
    surface = detect_surface(sample)
    depth = np.arange(sample.shape[1])[None, :, None]
    sigma = region_sigma(sample, np.broadcast_to(depth < (surface[:, None, :] - _AIR_MARGIN), sample.shape), min_voxels=_MIN_AIR_VOXELS)
    if sigma is not None:
        return sigma
    from skimage.restoration import estimate_sigma

    console.warn("too little air above the skin to measure noise; using a wavelet estimate, which tends to be low: consider --sigma")
    return float(np.mean([estimate_sigma(image) for image in sample]))
