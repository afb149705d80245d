"""Painters of the head's soft parts: outline (skin, fat, soft tissue), nose, glands and fat pads,
brain and spinal canal, air spaces, tongue.

Each painter is ``paint_*(canvas, params)``: it draws one structure of a
:class:`~medimg.mandible.phantom_family.HeadParams` head into a
:class:`~medimg.mandible.phantom_labels.Canvas`, in mm of the head or jaw frame.
"""

from __future__ import annotations

import numpy as np

from medimg.mandible.phantom_geometry import (
    UPPER_ARCH_OFFSET_MM,
    dental_arch,
    ellipsoid,
    ellipsoid_depth,
    occlusal_z,
    segment_distance,
)
from medimg.mandible.phantom_labels import LABELS, Canvas

_L = LABELS

# Head outline along z: the face in front (y), the back of the head (y) and the half width (x).
_PROFILE_Z = (-110.0, -100.0, -92.0, -85.0, -75.0, -55.0, -40.0, -25.0, -10.0, 25.0)
_PROFILE_FRONT = np.array([-45.0, -55.0, -84.0, -95.0, -99.0, -100.0, -101.0, -98.0, -99.0, -99.0])
_PROFILE_BACK = np.array([70.0, 71.0, 72.0, 72.5, 73.0, 76.0, 79.0, 83.0, 89.0, 96.0])
_PROFILE_HALF_WIDTH = np.array([55.0, 57.0, 60.0, 63.0, 68.0, 72.0, 73.0, 74.0, 75.0, 76.0])
_SKIN_MM = 1.5
# Posterior cranial fossa (cerebellum): centre and semi-axes; the occipital bone is its shell.
_POSTERIOR_FOSSA = ((0.0, 32.0, 36.0), (62.0, 62.0, 44.0))
POSTERIOR_FOSSA_BONE_MM = 6.5
"""Thickness of the occipital bone around the posterior fossa."""


def skin_depth(params, x, y, z) -> np.ndarray:
    """Approximate depth below the skin (mm; negative outside), float32 of the broadcast shape."""
    f = np.interp(z, _PROFILE_Z, _PROFILE_FRONT * params.face_depth_scale).astype(np.float32)
    b = np.interp(z, _PROFILE_Z, _PROFILE_BACK).astype(np.float32)
    w = np.interp(z, _PROFILE_Z, _PROFILE_HALF_WIDTH * params.head_width_scale).astype(np.float32)
    centre, half_depth = (f + b) / 2, (b - f) / 2
    ey = (y - centre) / half_depth
    wx = w * (1.0 - 0.22 * np.clip(-ey, 0.0, 1.0) ** 2)  # the face is narrower than the back of the head
    rho = np.sqrt((x / wx) ** 2 + ey**2)
    gradient = np.sqrt((x / wx**2) ** 2 + (ey / half_depth) ** 2) / np.maximum(rho, 1e-3)
    return (1.0 - rho) / np.maximum(gradient, 1e-3)


def posterior_fossa_depth(x, y, z) -> np.ndarray:
    """Depth (mm) inside the ellipsoid of the posterior cranial fossa; negative outside."""
    return ellipsoid_depth(x, y, z, *_POSTERIOR_FOSSA)


def paint_head_outline(canvas: Canvas, params) -> None:
    """Skin, then subcutaneous fat, then soft tissue filling the head."""
    region = canvas.grid.region("head", (-90.0, -125.0, -125.0), (90.0, 110.0, 45.0))
    if region is None:
        return
    slices, x, y, z = region
    depth = skin_depth(params, x, y, z)
    sub = canvas.labels[slices]
    sub[depth >= 0] = _L["skin"]
    sub[depth >= _SKIN_MM] = _L["fat"]
    sub[depth >= _SKIN_MM + params.fat_mm] = _L["soft"]


def paint_nose(canvas: Canvas, params) -> None:
    """The nose's soft tissue and both nostrils."""
    canvas.paint("head", (-14, -118, -32), (14, -88, 22), _L["soft"], lambda x, y, z: ellipsoid(x, y, z, (0, -100, -6), (11, 13, 24)))
    for side in (-1, 1):
        canvas.paint("head", (-14, -116, -32), (14, -88, -16), _L["air"],
                     lambda x, y, z, s=side: ellipsoid(x, y, z, (7 * s, -102, -24), (3.5, 9, 4.5)))  # nostril


def paint_glands_and_fat_pads(canvas: Canvas, params) -> None:
    """Parotid glands behind the rami, parapharyngeal and orbital fat."""
    condyle_x = params.condyle_x_mm
    for side in (-1, 1):
        canvas.paint("head", (-70, -10, -50), (70, 30, 0), _L["gland"],
                     lambda x, y, z, s=side: ellipsoid(x, y, z, (s * (condyle_x - 3), 14, -25), (11, 11, 20)))  # parotid
        canvas.paint("head", (-40, -15, -50), (40, 15, -10), _L["fat"],
                     lambda x, y, z, s=side: ellipsoid(x, y, z, (s * 24, 2, -30), (5, 9, 16)))  # parapharyngeal fat
        canvas.paint("head", (-60, -90, 5), (60, -40, 40), _L["fat"],
                     lambda x, y, z, s=side: ellipsoid(x, y, z, (s * 32, -62, 24), (15, 18, 12)))  # orbital fat


def paint_brain_and_spinal_canal(canvas: Canvas, params) -> None:
    """Cerebellum, the brain above the skull base, and the cord in its canal of CSF."""
    canvas.paint("head", (-70, -40, -12), (70, 100, 45), _L["brain"],
                 lambda x, y, z: (posterior_fossa_depth(x, y, z) > POSTERIOR_FOSSA_BONE_MM) & (y > 8))  # cerebellum
    canvas.paint("head", (-60, -40, 12), (60, 10, 45), _L["brain"], lambda x, y, z: (np.abs(x) < 50) & (z > 14) & (y > -36))
    canvas.paint("head", (-12, 38, -115), (12, 56, 5), _L["csf"], lambda x, y, z: ((x / 11) ** 2 + ((y - 47) / 8) ** 2 <= 1) & (z < 4))
    canvas.paint("head", (-8, 40, -115), (8, 54, 5), _L["brain"],
                 lambda x, y, z: ((x / 6) ** 2 + ((y - 47) / 4.5) ** 2 <= 1) & (z < 4))  # spinal cord


# Pharynx along z: centre (y), half width (x) and half depth (y) at airway scale 1.
_PHARYNX_Z = (-110.0, -100.0, -88.0, -70.0, -45.0, -20.0)
_PHARYNX_Y = (-4.0, 0.0, 4.0, 8.0, 10.0, 8.0)
_PHARYNX_HALF_WIDTH = np.array([8.0, 9.0, 13.0, 14.0, 13.0, 12.0])
_PHARYNX_HALF_DEPTH = np.array([6.0, 6.0, 7.0, 6.0, 5.0, 5.0])


def paint_airways(canvas: Canvas, params) -> None:
    """Pharynx, nasopharynx, oral cavity and external ear canals."""
    airway = params.airway_scale
    width, depth = _PHARYNX_HALF_WIDTH * airway, _PHARYNX_HALF_DEPTH * airway

    def pharynx(x, y, z):
        cy = np.interp(z, _PHARYNX_Z, _PHARYNX_Y).astype(np.float32)
        return ((x / np.interp(z, _PHARYNX_Z, width)) ** 2 + ((y - cy) / np.interp(z, _PHARYNX_Z, depth)) ** 2 <= 1) & (z <= -18)

    canvas.paint("head", (-20, -12, -115), (20, 22, -17), _L["air"], pharynx)
    canvas.paint("head", (-14, -20, -24), (14, 16, 4), _L["air"],
                 lambda x, y, z: ((x / (11 * airway)) ** 2 + ((y + 2) / 15) ** 4 <= 1) & (z > -23) & (z < 2))  # nasopharynx
    canvas.paint("head", (-50, -95, -60), (50, -10, -20), _L["air"], _oral_cavity(params))
    for side in (-1, 1):
        canvas.paint("head", (-80, 0, -8), (80, 20, 10), _L["air"], ear_canal(side, params.condyle_x_mm, 3.0))


def _oral_cavity(params):
    """Air between the tongue and the palate; opening the mouth lowers its floor with the jaw."""
    arch = dental_arch()
    drop = np.tan(np.radians(params.jaw_opening_deg))
    palate_z = params.palate_z_mm

    def inside(x, y, z):
        n, s = arch.at(x, y)
        floor = occlusal_z(s) - 1.0 - drop * np.maximum(-y, 0.0)
        ceiling = np.minimum(palate_z - 6.0, floor + 4.0 + 2.0 * drop * np.maximum(-y, 0.0))
        return (n < UPPER_ARCH_OFFSET_MM + 3.0) & (np.abs(s) < 75) & (y < -12) & (z > floor) & (z < ceiling)

    return inside


def ear_canal(side: int, condyle_x: float, medial_mm: float):
    """External ear canal of one side, from ``medial_mm`` lateral of the condyle centre outwards."""
    start, end = (side * (condyle_x + medial_mm), 10, 2), (side * (condyle_x + 18), 10, 2)
    return lambda x, y, z: segment_distance(x, y, z, start, end) <= 3.5


def paint_tongue(canvas: Canvas, params) -> None:
    """The tongue fills the floor of the mouth inside the mandible (jaw frame: it moves with it)."""
    arch = dental_arch()
    menton = params.menton_z_mm

    def inside(x, y, z):
        n, s = arch.at(x, y)
        top = occlusal_z(s) + 15.0 - 12.0 * ((x / 30) ** 2 + ((y + 40) / 48) ** 2)
        floor = np.interp(np.abs(s), [0, 30, 60, 95], [menton + 14, menton + 16, menton + 22, menton + 30])
        return (n < -6.0) & (y < 6) & (z > floor) & (z < top)

    canvas.paint("jaw", (-45, -80, -80), (45, 8, -25), _L["tongue"], inside)
