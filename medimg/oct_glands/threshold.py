"""Stage 5: binary gland map ``M = P >= thr`` with Otsu's threshold (or a given one)."""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

OTSU_BINS = 256
_CHUNK = 1 << 24  # voxels per histogram pass: keeps temporaries small on 1e9-voxel maps


def otsu_threshold(probability: np.ndarray, *, bins: int = OTSU_BINS) -> float:
    """Otsu's threshold of a probability map, from a fixed 256-bin histogram over [0, 1].

    Parameters
    ----------
    probability : ndarray of float, values in [0, 1]

    Returns
    -------
    threshold : float
        The bin centre maximising the between-class variance. A map with a single value
        has no two classes; its threshold is just above that value, so nothing is selected.
    """
    from skimage.filters import threshold_otsu

    flat = probability.reshape(-1)
    counts = np.zeros(bins, dtype=np.int64)
    for start in range(0, flat.size, _CHUNK):
        counts += np.histogram(flat[start : start + _CHUNK], bins=bins, range=(0.0, 1.0))[0]
    centres = (np.arange(bins) + 0.5) / bins
    occupied = np.flatnonzero(counts)
    if occupied.size == 0:
        raise InputError(expected("a non-empty probability map", "no voxels"))
    if occupied.size == 1:
        return float(centres[occupied[0]] + 0.5 / bins)
    return float(threshold_otsu(hist=(counts, centres)))


def binarize(probability: np.ndarray, *, threshold: float | None = None) -> tuple[np.ndarray, float]:
    """Apply ``M = P >= thr``.

    Parameters
    ----------
    probability : (Y, Z, X) ndarray of float32 in [0, 1]
    threshold : a fixed value in [0, 1]; ``None`` uses :func:`otsu_threshold`.

    Returns
    -------
    mask : (Y, Z, X) ndarray of bool
    threshold : float, the value used
    """
    if threshold is None:
        threshold = otsu_threshold(probability)
    elif not 0.0 <= threshold <= 1.0:
        raise InputError(expected("a threshold in [0, 1]", threshold))
    return probability >= threshold, float(threshold)
