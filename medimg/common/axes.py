"""The one place where array axes are named and converted.

Every volume inside medimg is in the canonical order ``(Y, Z, X)``:
Y = B-scan index (slow scan), Z = depth (0 at the top, in air), X = A-scan index (fast scan).
A multi-page OCT TIFF with one B-scan (depth x width) per page is already in that order.
Files in any other order are converted once, when read, by :func:`to_canonical`.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, OptionValueError, expected

CANONICAL_AXES = "YZX"


def parse_axes(axes: str) -> str:
    """Validate an axes string: a permutation of the letters Y, Z, X (any case)."""
    letters = axes.strip().upper()
    if len(letters) != 3 or sorted(letters) != sorted(CANONICAL_AXES):
        raise OptionValueError(expected("--axes as a permutation of Y, Z, X such as YZX or ZYX", repr(axes)))
    return letters


def to_canonical(volume: np.ndarray, axes: str) -> np.ndarray:
    """Reorder a 3-D array whose axes are named by ``axes`` into ``(Y, Z, X)`` (a view, no copy)."""
    letters = parse_axes(axes)
    if volume.ndim != 3:
        raise InputError(expected("a 3-D volume", f"an array with {volume.ndim} dimensions of shape {volume.shape}"))
    return np.transpose(volume, [letters.index(axis) for axis in CANONICAL_AXES])


def from_canonical(volume: np.ndarray, axes: str) -> np.ndarray:
    """Inverse of :func:`to_canonical`: reorder a ``(Y, Z, X)`` array into ``axes``."""
    letters = parse_axes(axes)
    return np.transpose(volume, [CANONICAL_AXES.index(axis) for axis in letters])
