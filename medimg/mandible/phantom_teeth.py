"""Painters of the teeth (crown, root, pulp; enamel comes with the HU) and the metal fillings.

Lower teeth sit in the jaw frame and move with the mandible, upper teeth in the head frame;
in occlusion their cusps are ``occlusion_gap_mm`` apart, which CT cannot resolve - the reason
the ground-truth mask includes the lower teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medimg.mandible.phantom_family import FillingParams, HeadParams, ToothParams
from medimg.mandible.phantom_geometry import UPPER_ARCH_OFFSET_MM, dental_arch, ellipsoid, occlusal_z
from medimg.mandible.phantom_labels import LABELS, Canvas

_CROWN_EXPONENT = 2.5  # a rounded square in the occlusal plane
_FILLING_DEPTH_MM = 2.2  # filling centre below the cusp tips


@dataclass(frozen=True)
class _PlacedTooth:
    """A tooth on its arch, in mm of its frame."""

    tooth: ToothParams
    frame: str  # "jaw" for the lower teeth, "head" for the upper
    n: float  # offset from the arch centreline
    x: float
    y: float
    occlusal: float  # height of the occlusal plane at the tooth
    half_width: float  # mesio-distal semi-axis of the crown
    gap: float  # occlusion gap

    @property
    def tip_z(self) -> float:
        """Height of the cusp tips: half the occlusion gap off the occlusal plane."""
        return self.occlusal + (self.gap / 2 if self.tooth.upper else -self.gap / 2)


def _place(tooth: ToothParams, gap: float) -> _PlacedTooth:
    # Teeth lean towards the tongue further back; the upper arch overlaps the lower one outside.
    n = (UPPER_ARCH_OFFSET_MM + 0.8 if tooth.upper else 0.0) - 1.2 * min(abs(tooth.centre_mm) / 55.0, 1.0)
    x, y = dental_arch().point(tooth.centre_mm, n)
    return _PlacedTooth(tooth, "head" if tooth.upper else "jaw", n, float(x), float(y), float(occlusal_z(tooth.centre_mm)),
                        tooth.shape.width_mm * 0.47, gap)


def paint_teeth(canvas: Canvas, params: HeadParams) -> None:
    """Every present tooth: root, then crown over it, then pulp inside both."""
    for tooth in params.teeth:
        if tooth.present:
            _paint_tooth(canvas, _place(tooth, params.occlusion_gap_mm))


def _paint_tooth(canvas: Canvas, placed: _PlacedTooth) -> None:
    tooth, shape, gap = placed.tooth, placed.tooth.shape, placed.gap
    crown, root = shape.crown_mm, shape.root_mm
    reach = placed.half_width + shape.half_breadth_mm + 1.0
    if tooth.upper:
        lo, hi = placed.occlusal + gap / 2 - 1.0, placed.occlusal + gap / 2 + crown + root + 1.0
    else:
        lo, hi = placed.occlusal - gap / 2 - crown - root - 1.0, placed.occlusal - gap / 2 + 1.0
    region = canvas.grid.region(placed.frame, (placed.x - reach, placed.y - reach, lo), (placed.x + reach, placed.y + reach, hi))
    if region is None:
        return
    slices, x, y, z = region
    n, s = dental_arch().at(x, y)
    u = (s - tooth.centre_mm) / placed.half_width
    w = (n - placed.n) / shape.half_breadth_mm
    radius = (np.abs(u) ** _CROWN_EXPONENT + np.abs(w) ** _CROWN_EXPONENT) ** (1 / _CROWN_EXPONENT)
    # Height above the occlusal surface toward the root apex (positive into the jaw).
    into = (z - placed.occlusal) if tooth.upper else (placed.occlusal - z)
    cusp = 1.2 * (1.0 - np.clip(w, -1, 1) ** 2) if shape.cusps else 0.3 * np.abs(np.clip(u, -1, 1))
    surface = gap / 2 + cusp  # the fossa of the crown lies deeper than its cusp tips
    width = 0.8 + 0.2 * np.sqrt(np.clip((crown - into) / (0.45 * crown), 0, 1))  # narrower at the neck
    crown_mask = (into >= surface) & (into <= crown) & (radius <= width)
    depth = np.clip((into - crown) / root, 0, 1)
    root_mask = (into > crown) & (into <= crown + root) & (radius <= 0.75 * (1 - 0.8 * depth))
    pulp_mask = (into > crown * 0.45) & (into <= crown + 0.8 * root) & (radius <= 0.28 * (1 - 0.6 * depth))
    prefix = "upper" if tooth.upper else "lower"
    sub = canvas.labels[slices]
    sub[root_mask] = LABELS[f"{prefix}_root"]
    sub[crown_mask] = LABELS[f"{prefix}_crown"]
    sub[pulp_mask & (crown_mask | root_mask)] = LABELS[f"{prefix}_pulp"]


@dataclass(frozen=True, eq=False)
class PaintedFilling:
    """A filling as painted: its voxels and its parameters.

    Attributes
    ----------
    voxels : (n, 3) ndarray of int64, ``(k, j, i)`` of the filling's voxels, n >= 1
    params : FillingParams
    """

    voxels: np.ndarray
    params: FillingParams

    @property
    def centre_voxel(self) -> np.ndarray:
        """(3,) float64 ``(k, j, i)`` mean of the voxels."""
        return self.voxels.mean(axis=0)


def paint_fillings(canvas: Canvas, params: HeadParams) -> list[PaintedFilling]:
    """Amalgam fillings in the crowns of ``params.fillings``; those outside the grid are left out."""
    painted = []
    for filling in params.fillings:
        placed = _place(params.teeth[filling.tooth], params.occlusion_gap_mm)
        voxels = _paint_filling(canvas, placed)
        if voxels is not None:
            painted.append(PaintedFilling(voxels, filling))
    return painted


def _paint_filling(canvas: Canvas, placed: _PlacedTooth) -> np.ndarray | None:
    into_crown = 1.0 if placed.tooth.upper else -1.0
    centre = (placed.x, placed.y, placed.tip_z + into_crown * _FILLING_DEPTH_MM)
    semi = (placed.half_width * 0.55, placed.tooth.shape.half_breadth_mm * 0.5, 2.0)
    region = canvas.grid.region(placed.frame, np.subtract(centre, semi) - 1, np.add(centre, semi) + 1)
    if region is None:
        return None
    slices, x, y, z = region
    inside = ellipsoid(x, y, z, centre, semi)
    if not np.any(inside):
        # Slices coarser than the filling: it still shows, in the voxel nearest its centre.
        squared = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
        inside[np.unravel_index(np.argmin(squared), inside.shape)] = True
    canvas.labels[slices][inside] = LABELS["upper_metal" if placed.tooth.upper else "lower_metal"]
    return np.argwhere(inside) + [s.start for s in slices]
