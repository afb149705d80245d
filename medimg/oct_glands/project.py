"""Stage 7: each gland's centroid ``(x', y', z')`` maps to the pore ``(x', y')`` of the fingerprint."""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

PORE_COLUMNS = ("id", "x", "y", "z", "volume_voxels", "mean_probability", "depth_reached")
REACH_PERCENTILE = 90  # a gland's depth_reached: this percentile of its voxels' depths below the surface
_SLAB = 64


def gland_pores(labels: np.ndarray, *, probability: np.ndarray | None = None, top: int = 0, probability_scale: float | None = None,
                surface: np.ndarray | None = None) -> list[dict]:
    """Centroid (mean voxel coordinate), size, mean probability and depth reached of every gland.

    Parameters
    ----------
    labels : (Y, Z, X) ndarray of int, 0 = background
    probability : (Y, Z, X) ndarray of float32, optional; or of codes with ``probability_scale``
        the value of one code (uint8 codes of a depth window: 1/255)
    top : depth of ``labels[:, 0]`` in the volume (a depth window's): added to ``z``
    surface : (Y, X) ndarray of int, optional; the surface depth of every A-scan (``detect_surface``)

    Returns
    -------
    pores : list of dict with keys ``id, x, y, z, volume_voxels, mean_probability, depth_reached``
        Coordinates in voxels of the canonical axes; ``mean_probability`` is None without a map;
        ``depth_reached`` (None without a surface) is the 90th percentile of the gland's voxels'
        depths below the surface, the lower of the two ranks around it (``np.percentile(...,
        method="lower")``): how far below the skin the gland goes, robust to a few stray voxels.
    """
    if labels.ndim != 3:
        raise InputError(expected("a (Y, Z, X) label volume", f"shape {labels.shape}"))
    if probability is not None and probability.shape != labels.shape:
        raise InputError(expected(f"a probability map of shape {labels.shape}", f"shape {probability.shape}"))
    if surface is not None and surface.shape != (labels.shape[0], labels.shape[2]):
        raise InputError(expected(f"a (Y, X) surface of shape {(labels.shape[0], labels.shape[2])}", f"shape {surface.shape}"))
    n = int(labels.max()) + 1 if labels.size else 1
    sizes = np.zeros(n, dtype=np.int64)
    sums = {axis: np.zeros(n, dtype=np.float64) for axis in "xyz"}
    probability_sum = np.zeros(n, dtype=np.float64)
    depth_ids, depths = [], []
    for first in range(0, labels.shape[0], _SLAB):  # B-scans a slab at a time: no coordinate arrays as long as the glands' voxels
        y, z, x = np.nonzero(labels[first : first + _SLAB])
        ids = labels[first : first + _SLAB][y, z, x].astype(np.int64)
        sizes += np.bincount(ids, minlength=n)
        for axis, coords in (("x", x), ("y", y + first), ("z", z + top)):
            sums[axis] += np.bincount(ids, weights=coords, minlength=n)
        if probability is not None:
            scale = 1.0 if probability_scale is None else probability_scale
            probability_sum += np.bincount(ids, weights=probability[first : first + _SLAB][y, z, x].astype(np.float64) * scale, minlength=n)
        if surface is not None:
            depth_ids.append(ids.astype(np.int32))
            depths.append((z + top - surface[y + first, x]).astype(np.int32))
    sizes[0] = 0
    present = np.flatnonzero(sizes)
    if present.size == 0:
        return []
    mean_probability = None if probability is None else probability_sum / np.maximum(sizes, 1)
    reached = None if surface is None else _depth_percentile(np.concatenate(depth_ids), np.concatenate(depths), sizes, REACH_PERCENTILE)
    return [
        {
            "id": int(k),
            "x": float(sums["x"][k] / sizes[k]),
            "y": float(sums["y"][k] / sizes[k]),
            "z": float(sums["z"][k] / sizes[k]),
            "volume_voxels": int(sizes[k]),
            "mean_probability": None if mean_probability is None else float(mean_probability[k]),
            "depth_reached": None if reached is None else int(reached[k]),
        }
        for k in present
    ]


def _depth_percentile(ids: np.ndarray, depths: np.ndarray, sizes: np.ndarray, percentile: float) -> np.ndarray:
    """Per label, the ``percentile`` of its depths, the lower rank (``np.percentile(method="lower")``).

    ``ids`` and ``depths`` hold one entry per voxel; ``sizes[k]`` is how many have id ``k``.
    """
    order = np.lexsort((depths, ids))  # by id, then depth: each gland's depths sorted, glands in id order
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ranks = starts + np.floor(percentile / 100 * np.maximum(sizes - 1, 0)).astype(np.int64)
    result = np.zeros(len(sizes), dtype=np.int64)
    present = sizes > 0
    result[present] = depths[order[ranks[present]]]
    return result
