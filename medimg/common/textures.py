"""Random fields that phantoms paint with: smooth Gaussian noise in any number of dimensions.

Every phantom family (OCT speckle and layers, CT tissue texture, skin tone) draws its
low-frequency variation from :func:`smooth_noise`, so there is one definition of "a smooth random
field with correlation length sigma" and one place to make it faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _per_axis(sigma: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    values = tuple(float(s) for s in sigma) if isinstance(sigma, Sequence) else (float(sigma),) * ndim
    if len(values) != ndim or any(s < 0 for s in values):
        from medimg.common.errors import InputError, expected

        raise InputError(expected(f"{ndim} non-negative smoothing sigmas", sigma))
    return values


def resize_linear(small: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Linear resize of a coarse grid onto ``shape``, pixel centres aligned (axis by axis).

    Parameters
    ----------
    small : ndarray of float, any number of dimensions
    shape : target shape, one extent per axis of ``small``
    """
    out = small
    for axis, (n_small, n_big) in enumerate(zip(small.shape, shape)):
        if n_small == n_big:
            continue
        if n_small == 1:
            out = np.repeat(out, n_big, axis=axis)
            continue
        position = (np.arange(n_big, dtype=np.float32) + 0.5) * np.float32(n_small / n_big) - 0.5
        position = np.clip(position, 0, n_small - 1)
        lower = np.minimum(position.astype(np.int64), n_small - 2)
        weight_shape = [1] * out.ndim
        weight_shape[axis] = -1
        weight = (position - lower).reshape(weight_shape)
        first = np.take(out, lower, axis=axis)
        second = np.take(out, lower + 1, axis=axis)
        out = first + (second - first) * weight
    return out


def smooth_noise(
    rng: np.random.Generator,
    shape: Sequence[int],
    sigma: float | Sequence[float],
    *,
    coarse: bool = False,
    dtype: type = np.float32,
) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma`` (voxels).

    Parameters
    ----------
    rng : numpy Generator (the only source of randomness)
    shape : output shape, any number of dimensions
    sigma : Gaussian filter width, one for all axes or one per axis
    coarse : draw broad fields on a grid about three cells per sigma and resize linearly: as smooth,
        at a fraction of the filtering cost (wide filters are the slow part of a large phantom)

    Returns
    -------
    field : ndarray of ``dtype`` with ``shape``, mean 0 and standard deviation 1
    """
    from scipy.ndimage import gaussian_filter

    shape = tuple(int(n) for n in shape)
    sigmas = _per_axis(sigma, len(shape))
    steps = tuple(max(1, int(s / 3.0)) if coarse else 1 for s in sigmas)
    draw_shape = tuple(max(2, -(-n // step) + 1) if step > 1 else n for n, step in zip(shape, steps))
    field = rng.standard_normal(draw_shape, dtype=np.float32)
    field = gaussian_filter(field, tuple(s / step for s, step in zip(sigmas, steps)), mode="reflect")
    if any(step > 1 for step in steps):
        stretched = tuple(n * step if step > 1 else n for n, step in zip(draw_shape, steps))
        field = resize_linear(field, stretched)[tuple(slice(0, n) for n in shape)]
    field = np.asarray(field, dtype=np.float64)
    field -= field.mean()
    field /= max(float(field.std()), 1e-12)
    return field.astype(dtype, copy=False)
