"""Stage 7: each gland's centroid ``(x', y', z')`` maps to the pore ``(x', y')`` of the fingerprint."""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

PORE_COLUMNS = ("id", "x", "y", "z", "volume_voxels", "mean_probability")


def gland_pores(labels: np.ndarray, *, probability: np.ndarray | None = None) -> list[dict]:
    """Centroid (mean voxel coordinate), size and mean probability of every gland.

    Parameters
    ----------
    labels : (Y, Z, X) ndarray of int, 0 = background
    probability : (Y, Z, X) ndarray of float32, optional

    Returns
    -------
    pores : list of dict with keys ``id, x, y, z, volume_voxels, mean_probability``
        Coordinates in voxels of the canonical axes; ``mean_probability`` is None without a map.
    """
    if labels.ndim != 3:
        raise InputError(expected("a (Y, Z, X) label volume", f"shape {labels.shape}"))
    if probability is not None and probability.shape != labels.shape:
        raise InputError(expected(f"a probability map of shape {labels.shape}", f"shape {probability.shape}"))
    y, z, x = np.nonzero(labels)
    ids = labels[y, z, x].astype(np.int64)
    if ids.size == 0:
        return []
    n = int(ids.max()) + 1
    sizes = np.bincount(ids, minlength=n)
    present = np.flatnonzero(sizes[1:]) + 1
    sums = {axis: np.bincount(ids, weights=coords, minlength=n) for axis, coords in (("x", x), ("y", y), ("z", z))}
    mean_probability = None
    if probability is not None:
        mean_probability = np.bincount(ids, weights=probability[y, z, x].astype(np.float64), minlength=n) / np.maximum(sizes, 1)
    return [
        {
            "id": int(k),
            "x": float(sums["x"][k] / sizes[k]),
            "y": float(sums["y"][k] / sizes[k]),
            "z": float(sums["z"][k] / sizes[k]),
            "volume_voxels": int(sizes[k]),
            "mean_probability": None if mean_probability is None else float(mean_probability[k]),
        }
        for k in present
    ]
