"""Stage 4: per-block gland probabilities merged back into volume coordinates.

Blending rule: a voxel's probability is the plain mean of the predictions of every block that
covers it (blocks at stride 40 cover most voxels 4 times); a voxel no block covers gets 0.
Blocks are fetched, predicted and accumulated a batch at a time, so memory stays at one
float32 and one uint16 volume whatever the number of blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from medimg.common.errors import InputError, ModelError, expected

BlockPredictor = Callable[[np.ndarray], np.ndarray]
"""Maps ``(B, S, S, S) uint8`` blocks to ``(B, S, S, S) float32`` probabilities in [0, 1]."""


def batches(count: int, batch_size: int) -> list[slice]:
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    return [slice(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def predict_and_merge(
    blocks_for: Callable[[slice], np.ndarray],
    corners: np.ndarray,
    volume_shape: tuple[int, int, int],
    *,
    predictor: BlockPredictor,
    batch_size: int = 4,
    progress: Callable[[list], Iterable] = lambda items: items,
) -> np.ndarray:
    """Predict every block and average overlapping predictions.

    Parameters
    ----------
    blocks_for : callable
        ``blocks_for(slice)`` returns the ``(b, S, S, S)`` blocks whose corners are ``corners[slice]``.
    corners : (B, 3) ndarray of int, rows (y*, z*, x*)
    volume_shape : (Y, Z, X)

    Returns
    -------
    probability : (Y, Z, X) ndarray of float32 in [0, 1]
    """
    total = np.zeros(volume_shape, dtype=np.float32)
    hits = np.zeros(volume_shape, dtype=np.uint16)
    for batch in progress(batches(len(corners), batch_size)):
        blocks = np.asarray(blocks_for(batch))
        probabilities = np.asarray(predictor(blocks), dtype=np.float32)
        if probabilities.shape != blocks.shape:
            raise ModelError(expected(f"predictions of shape {blocks.shape}", f"{probabilities.shape}"))
        size_y, size_z, size_x = blocks.shape[1:]
        for (y, z, x), block_probability in zip(corners[batch], probabilities):
            total[y : y + size_y, z : z + size_z, x : x + size_x] += block_probability
            hits[y : y + size_y, z : z + size_z, x : x + size_x] += 1
    np.divide(total, hits, out=total, where=hits > 0)
    return total
