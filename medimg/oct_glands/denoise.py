"""Stage 1: denoise every B-scan with one sigma, by a registered denoiser (default: BM3D).

The volume's uint8 grey levels go to the unit range of the working domain
(:mod:`~medimg.oct_glands.intensity`), each B-scan through the denoiser, and back. The sigma, unless
given, is measured in the air above the skin (:func:`medimg.oct_glands.noise.estimate_noise_sigma`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from medimg.common import console
from medimg.common.denoisers import DEFAULT_DENOISER, build_denoiser, denoiser_options
from medimg.common.errors import InputError, expected
from medimg.oct_glands.intensity import check_domain, from_unit, to_unit


def denoise_volume(
    volume: np.ndarray,
    *,
    sigma: float | None = None,
    domain: str = "log",
    stage: str = "full",
    denoiser: str = DEFAULT_DENOISER,
    noise_region: str = "air",
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> np.ndarray:
    """Denoise each B-scan with one sigma.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    sigma : noise standard deviation in grey levels of the working domain; None = measured in
        ``noise_region``: ``"air"`` above the skin (default) or ``"tissue"`` below the surface
        (:mod:`medimg.oct_glands.noise`).
    domain : "log" (input already log-compressed) or "linear" (log-transform, denoise, map back).
    stage : BM3D's "full" (hard thresholding + Wiener) or "hard" (hard thresholding only, ~2x faster).
    denoiser : a name in :data:`medimg.common.denoisers.DENOISERS`

    Returns
    -------
    denoised : (Y, Z, X) ndarray of uint8
    """
    from medimg.common.errors import OptionValueError
    from medimg.oct_glands.noise import NOISE_REGIONS, estimate_noise_sigma, tissue_noise_sigma

    if noise_region not in NOISE_REGIONS:
        raise OptionValueError(expected(f"a noise region among {', '.join(NOISE_REGIONS)}", repr(noise_region)))

    check_domain(domain)
    method = build_denoiser(denoiser, **vars(denoiser_options(denoiser, stage=stage)))
    if volume.dtype != np.uint8:
        raise InputError(expected("a uint8 volume", f"dtype {volume.dtype}"))
    if sigma is None:
        if noise_region == "tissue":
            sigma = tissue_noise_sigma(volume, domain=domain)
            console.info(f"Estimated noise sigma {sigma:.2f} grey levels (speckle in the tissue below the surface)")
        else:
            sigma = estimate_noise_sigma(volume, domain=domain)
            console.info(f"Estimated noise sigma {sigma:.2f} grey levels (air above the skin)")
    if not sigma > 0:
        raise InputError(expected("a noise sigma > 0", sigma))
    denoised = np.empty(volume.shape, dtype=np.uint8)
    for index in progress(range(volume.shape[0])):
        denoised[index] = from_unit(method(to_unit(volume[index], domain), sigma / 255.0), domain)
    return denoised
