"""Stage 1: BM3D on every B-scan (the `bm3d` package, non-commercial licence).

OCT speckle is multiplicative. Scanner exports are usually log-compressed already (``domain="log"``),
where speckle is additive and BM3D with one sigma fits; for linear-intensity exports
(``domain="linear"``) each B-scan is log-transformed first and mapped back after.

The noise sigma, unless given, is measured in the air above the skin (a homogeneous region):
wavelet estimators such as ``skimage.restoration.estimate_sigma`` underestimate spatially
correlated speckle several-fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, expected

DOMAINS = ("log", "linear")
STAGES = ("full", "hard")
_LOG_SPAN = np.log1p(255.0)
_AIR_MARGIN = 4  # voxels kept between the air sample and the detected surface
_MIN_AIR_VOXELS = 1000


def _to_unit(bscan: np.ndarray, domain: str) -> np.ndarray:
    values = bscan.astype(np.float64)
    return values / 255.0 if domain == "log" else np.log1p(values) / _LOG_SPAN


def _from_unit(unit: np.ndarray, domain: str) -> np.ndarray:
    values = unit * 255.0 if domain == "log" else np.expm1(unit * _LOG_SPAN)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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
    sample = np.stack([_to_unit(volume[index], domain) for index in picks]) * 255.0
    surface = detect_surface(sample, smooth_sigma=2.0, rising_only=True, median_size=5)
    depth = np.arange(sample.shape[1])[None, :, None]
    air = sample[depth < (surface[:, None, :] - _AIR_MARGIN)]
    if air.size >= _MIN_AIR_VOXELS:
        return float(air.std())
    from skimage.restoration import estimate_sigma

    console.warn("too little air above the skin to measure noise; using a wavelet estimate, which tends to be low: consider --sigma")
    return float(np.mean([estimate_sigma(image) for image in sample]))


def denoise_volume(
    volume: np.ndarray,
    *,
    sigma: float | None = None,
    domain: str = "log",
    stage: str = "full",
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> np.ndarray:
    """BM3D each B-scan with one sigma.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    sigma : noise standard deviation in grey levels of the working domain; None = measured in air.
    domain : "log" (input already log-compressed) or "linear" (log-transform, denoise, map back).
    stage : "full" (hard thresholding + Wiener) or "hard" (hard thresholding only, ~2x faster).

    Returns
    -------
    denoised : (Y, Z, X) ndarray of uint8
    """
    import bm3d

    if domain not in DOMAINS:
        raise InputError(expected(f"a domain among {', '.join(DOMAINS)}", repr(domain)))
    if stage not in STAGES:
        raise InputError(expected(f"a BM3D stage among {', '.join(STAGES)}", repr(stage)))
    if volume.dtype != np.uint8:
        raise InputError(expected("a uint8 volume", f"dtype {volume.dtype}"))
    if sigma is None:
        sigma = estimate_noise_sigma(volume, domain=domain)
        console.info(f"Estimated noise sigma {sigma:.2f} grey levels (air above the skin)")
    if not sigma > 0:
        raise InputError(expected("a noise sigma > 0", sigma))
    stage_arg = bm3d.BM3DStages.ALL_STAGES if stage == "full" else bm3d.BM3DStages.HARD_THRESHOLDING
    denoised = np.empty(volume.shape, dtype=np.uint8)
    for index in progress(range(volume.shape[0])):
        unit = _to_unit(volume[index], domain)
        estimate = bm3d.bm3d(unit, sigma_psd=sigma / 255.0, stage_arg=stage_arg)
        denoised[index] = _from_unit(np.asarray(estimate), domain)
    return denoised
