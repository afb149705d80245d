"""Tissue labels of the head-CT phantom and the canvas the painters draw them on.

Tissues are painted as labels at voxel centres, structure after structure; a later structure
overwrites an earlier one where they overlap (air spaces cut into soft tissue, bone into both).
That sampling *is* the ground truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from medimg.mandible.phantom_geometry import Grid

LABELS = {
    "air": 0, "skin": 1, "fat": 2, "soft": 3, "tongue": 4, "gland": 5, "brain": 6, "csf": 7, "disc": 8,
    "bone": 9, "mandible": 10, "lower_crown": 11, "lower_root": 12, "lower_pulp": 13, "lower_metal": 14,
    "upper_crown": 15, "upper_root": 16, "upper_pulp": 17, "upper_metal": 18,
}
"""Tissue label values of :attr:`HeadPhantom.labels`."""
MANDIBLE_LABELS = tuple(LABELS[n] for n in ("mandible", "lower_crown", "lower_root", "lower_pulp", "lower_metal"))
"""Labels that make up the ground-truth mask: the mandible and its teeth."""

Inside = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``inside(x, y, z) -> bool array``: a structure as a test on frame coordinates (mm, float32)."""


class Canvas:
    """The label volume being painted.

    Attributes
    ----------
    grid : Grid with the ``head`` and ``jaw`` frames
    labels : (Z, Y, X) ndarray of uint8, :data:`LABELS` values, air (0) at first
    """

    def __init__(self, grid: Grid):
        self.grid = grid
        self.labels = np.zeros(grid.shape, dtype=np.uint8)

    def paint(self, frame: str, lo, hi, label: int, inside: Inside) -> None:
        """Set ``label`` where ``inside`` holds, testing only voxels in the frame box [lo, hi]."""
        region = self.grid.region(frame, lo, hi)
        if region is None:
            return
        slices, x, y, z = region
        mask = inside(x, y, z)
        if np.any(mask):
            self.labels[slices][mask] = label


def keep_one_mandible(labels: np.ndarray) -> None:
    """Hand detached mandible fragments (coarse grids cut thin processes) to soft tissue, in place."""
    mask = np.isin(labels, MANDIBLE_LABELS)
    components, count = ndimage.label(mask)
    if count <= 1:
        return
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    labels[(components != np.argmax(sizes)) & mask] = LABELS["soft"]
