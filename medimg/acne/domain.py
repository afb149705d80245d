"""Is this a skin photo? A cheap check that keeps ``acne grade`` honest on inputs out of domain.

The grader is trained on ACNE04: colour face photos under clinic light. A photo is flagged as
out of domain (a one-line warning on stderr, ``in_domain`` false in the record; it is still
graded) when any of these holds:

* it is tiny: its shorter side is under :data:`MIN_SIDE` pixels (lesions would be under a pixel);
* it has no colour: the mean chroma (``|Cb - 128| + |Cr - 128|`` in YCbCr) is under
  :data:`MIN_CHROMA` (scans, charts, CT, text);
* too little of it is skin-coloured: under :data:`MIN_SKIN_FRACTION` of its pixels fall in the
  classic YCbCr skin box ``77 <= Cb <= 127, 133 <= Cr <= 173`` (Chai and Ngan, 1999).

Measured on 199 ACNE04 training photos (every 15th), the skin fraction is at least 0.21 (1st
percentile 0.27, median 0.61); scikit-image's astronaut (a face) has 0.29, its landscapes,
textures, charts and micrographs 0-0.08. The rule is colour only: an orange cat, a coffee cup
or a motorbike in warm light passes it (documented in the model card).
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

__all__ = ["MIN_CHROMA", "MIN_SIDE", "MIN_SKIN_FRACTION", "colour_stats", "domain_warning"]

MIN_SIDE = 128
MIN_CHROMA = 4.0
MIN_SKIN_FRACTION = 0.15


def colour_stats(photo: np.ndarray) -> tuple[float, float]:
    """``(skin_fraction, mean_chroma)`` of a photo.

    Parameters
    ----------
    photo : (H, W, 3) ndarray of uint8, RGB
    """
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.size == 0:
        raise InputError(expected("an RGB photo (H, W, 3)", f"shape {photo.shape}"))
    step = max(1, int(np.sqrt(photo.shape[0] * photo.shape[1] / 250_000)))  # a quarter-megapixel sample is plenty
    rgb = photo[::step, ::step].astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    skin = (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173)
    return float(skin.mean()), float(np.mean(np.abs(cb - 128.0) + np.abs(cr - 128.0)))


def domain_warning(photo: np.ndarray) -> str | None:
    """Why ``photo`` is clearly not a skin photo like ACNE04's (module docstring), or ``None``."""
    height, width = np.asarray(photo).shape[:2]
    if min(height, width) < MIN_SIDE:
        return f"a tiny image ({width}x{height} pixels; skin photos here are at least {MIN_SIDE} pixels a side)"
    skin, chroma = colour_stats(photo)
    if chroma < MIN_CHROMA:
        return f"no colour (mean chroma {chroma:.1f}; skin photos have colour)"
    if skin < MIN_SKIN_FRACTION:
        return f"little skin colour ({skin:.0%} of pixels; ACNE04 faces have at least 20 %)"
    return None
