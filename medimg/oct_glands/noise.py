"""The noise sigma BM3D is given: measured in the air above the skin (a homogeneous region, the
default) or in the tissue just below the surface (``region="tissue"``).

On real scans the two differ several-fold (SPEC section 5: air 4.2 grey levels, while tissue
speckle has a std about equal to its mean, 10-40): the air under-states the noise BM3D should
remove from the tissue. The shipped weights were trained on air-sigma denoising, so the air stays
the default until weights trained on tissue-sigma denoising beat them (``oct train --denoise``
and ``scripts/train_oct_default.sh`` denoise with ``noise_region="tissue"``).

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


NOISE_REGIONS = ("air", "tissue")
DEFAULT_NOISE_REGION = "tissue"  # what the shipped weights were trained on (the paper measured the air)
_TISSUE_TOP, _TISSUE_BOTTOM = 2, 30  # the epidermis band measured, in voxels below the surface
_LOCAL_WINDOW = 5


def check_noise_region(region: str) -> None:
    from medimg.common.errors import OptionValueError, expected

    if region not in NOISE_REGIONS:
        raise OptionValueError(expected(f"a noise region among {', '.join(NOISE_REGIONS)}", repr(region)))


def measure_noise_sigma(volume: np.ndarray, *, region: str = DEFAULT_NOISE_REGION, domain: str = "log") -> float:
    """The sigma BM3D is given when the user gives none, measured in ``region`` ("air" or "tissue")
    of up to 32 evenly spaced B-scans (so its cost does not grow with the scan), and logged.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    """
    check_noise_region(region)
    if region == "tissue":
        sigma = tissue_noise_sigma(volume, domain=domain)
        console.info(f"Estimated noise sigma {sigma:.2f} grey levels (speckle in the tissue below the surface)")
    else:
        sigma = estimate_noise_sigma(volume, domain=domain)
        console.info(f"Estimated noise sigma {sigma:.2f} grey levels (air above the skin)")
    return sigma


def tissue_noise_sigma(volume: np.ndarray, *, domain: str = "log", max_bscans: int = 32) -> float:
    """Speckle standard deviation in the tissue, in grey levels of the working domain.

    The median, over the voxels 2-30 below the (robust) surface, of the standard deviation in a
    5 x 5 window of each B-scan: local, so the layers' different brightness does not count as noise.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    """
    from scipy import ndimage

    from medimg.oct_glands.surface import detect_surface

    picks = np.unique(np.linspace(0, volume.shape[0] - 1, min(max_bscans, volume.shape[0])).astype(int))
    sample = np.stack([to_unit(volume[index], domain) for index in picks]).astype(np.float64) * 255.0
    surface = detect_surface(sample)
    size = (1, _LOCAL_WINDOW, _LOCAL_WINDOW)
    mean = ndimage.uniform_filter(sample, size=size)
    local_std = np.sqrt(np.maximum(ndimage.uniform_filter(sample**2, size=size) - mean**2, 0.0))
    below = np.arange(sample.shape[1])[None, :, None] - surface[:, None, :]
    band = (below >= _TISSUE_TOP) & (below < _TISSUE_BOTTOM)
    if np.count_nonzero(band) < _MIN_AIR_VOXELS:
        return estimate_noise_sigma(volume, domain=domain, max_bscans=max_bscans)
    return float(np.median(local_std[band]))


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
