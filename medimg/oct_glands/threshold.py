"""Stage 5: binary gland map ``M = P >= thr`` with Otsu's threshold (or a given one).

A probability map held as a depth window (:class:`medimg.oct_glands.depth_window.DepthWindow`)
gets the threshold of the whole volume it stands for: the voxels outside the window count as
probability 0 (:func:`window_threshold`), and its mask is made a slab at a time by whoever reads it.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.oct_glands.depth_window import PROBABILITY_CODES, DepthWindow

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
        The bin edge ``i / bins`` whose split (bins below i vs bins from i on) maximises the
        between-class variance, so that ``P >= thr`` selects exactly the upper class. A map
        with a single occupied bin has no two classes; its threshold is that bin's upper edge.
    """
    return threshold_of_histogram(probability_histogram(probability, bins=bins))


def probability_histogram(probability: np.ndarray, *, bins: int = OTSU_BINS) -> np.ndarray:
    """Counts of ``bins`` equal bins over [0, 1] (the last bin holds 1).

    Returns
    -------
    counts : (bins,) ndarray of int64
    """
    flat = probability.reshape(-1)
    counts = np.zeros(bins, dtype=np.int64)
    for start in range(0, flat.size, _CHUNK):
        counts += np.histogram(flat[start : start + _CHUNK], bins=bins, range=(0.0, 1.0))[0]
    return counts


def window_histogram(window: DepthWindow, *, bins: int = OTSU_BINS) -> np.ndarray:
    """:func:`probability_histogram` of the whole volume a probability window stands for: the
    voxels outside it fall in the first bin. uint8 codes are counted exactly (code ``c`` is the
    value ``c / 255``, in bin ``floor(c bins / 255)``)."""
    if window.scale is not None and window.data.dtype == np.uint8 and window.scale == 1.0 / PROBABILITY_CODES:
        codes = np.zeros(PROBABILITY_CODES + 1, dtype=np.int64)
        flat = window.data.reshape(-1)
        for start in range(0, flat.size, _CHUNK):
            codes += np.bincount(flat[start : start + _CHUNK], minlength=PROBABILITY_CODES + 1)
        code_bins = np.minimum(np.arange(PROBABILITY_CODES + 1) * bins // PROBABILITY_CODES, bins - 1)
        counts = np.bincount(code_bins, weights=codes, minlength=bins).astype(np.int64)
    else:
        counts = probability_histogram(window.values(slice(None)), bins=bins)
    counts[0] += window.voxels_outside()
    return counts


def window_threshold(window: DepthWindow, *, threshold: float | None = None) -> float:
    """The threshold :func:`binarize` would use on the whole volume: ``threshold`` checked, or Otsu's."""
    if threshold is None:
        return threshold_of_histogram(window_histogram(window))
    if not 0.0 <= threshold <= 1.0:
        raise InputError(expected("a threshold in [0, 1]", threshold))
    return float(threshold)


def threshold_of_histogram(counts: np.ndarray) -> float:
    """Otsu's threshold from the counts of equal bins over [0, 1] (:func:`otsu_threshold`)."""
    bins = len(counts)
    occupied = np.flatnonzero(counts)
    if occupied.size == 0:
        raise InputError(expected("a non-empty probability map", "no voxels"))
    if occupied.size == 1:
        return float((occupied[0] + 1) / bins)
    centres = (np.arange(bins) + 0.5) / bins
    weight_below = np.cumsum(counts)[:-1].astype(np.float64)  # split i = 1..bins-1: class 0 = bins < i
    mass_below = np.cumsum(counts * centres)[:-1]
    weight_above = counts.sum() - weight_below
    mass_above = (counts * centres).sum() - mass_below
    with np.errstate(divide="ignore", invalid="ignore"):
        between = weight_below * weight_above * (mass_below / weight_below - mass_above / weight_above) ** 2
    between[(weight_below == 0) | (weight_above == 0)] = -1.0
    return float((int(np.argmax(between)) + 1) / bins)


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
