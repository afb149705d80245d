"""Painters of the mandible and its joints: body, rami, condylar necks, condyles, and the glenoid
fossae of the temporal bone that each condyle sits under, ``joint_gap_mm`` below the bone.

The mandible is drawn in the jaw frame (it turns with the mouth opening), the fossae in the
head frame; the condyles sit on the hinge axis, so the gap stays the same when the mouth opens.
"""

from __future__ import annotations

import numpy as np

from medimg.mandible.phantom_geometry import Ramus, dental_arch, occlusal_z, segment_distance
from medimg.mandible.phantom_labels import LABELS, Canvas

_CONDYLE_SEMI = (9.0, 4.5, 5.0)  # mediolateral, anteroposterior, vertical (mm)
_CONDYLE_TURN_DEG = 15.0  # the long axis turns backwards medially


def condyle_shape(x, y, z, condyle_x: float, grow: float = 0.0) -> np.ndarray:
    """Inside either condyle (bool), its semi-axes grown by ``grow`` mm."""
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=bool)
    c, s = np.cos(np.radians(_CONDYLE_TURN_DEG)), np.sin(np.radians(_CONDYLE_TURN_DEG))
    a, b, h = (semi + grow for semi in _CONDYLE_SEMI)
    for side in (-1, 1):
        lateral = side * x - condyle_x  # mirrored so that + is lateral on both sides
        u = lateral * c - y * s
        w = lateral * s + y * c
        inside |= (u / a) ** 2 + (w / b) ** 2 + (z / h) ** 2 <= 1.0
    return inside


def glenoid_fossa(side: int, params):
    """Temporal bone over one joint, hollowed to the condyle's shape plus the joint gap."""
    condyle_x, joint_gap = params.condyle_x_mm, params.joint_gap_mm

    def inside(x, y, z):
        lateral = side * x
        box = (((lateral - condyle_x - 0.5) / 15.0) ** 2 + ((y + 2.0) / 14.0) ** 2 <= 1.0) & (z < 18)
        # Lower surface along y: eminence in front, fossa roof, postglenoid process behind.
        low = np.interp(y, [-16, -11, -7.5, -5.5, 5.5, 7.5, 12], [1.0, -4.5, -3.0, 0.5, 0.5, -2.5, -2.5]).astype(np.float32)
        return box & (z >= low) & ~condyle_shape(x, y, z, condyle_x, joint_gap)

    return inside


def _mandible_body(x, y, z, menton: float) -> np.ndarray:
    """The horseshoe body: alveolar crest under the teeth, rounded lower border, mental protuberance."""
    arch = dental_arch()
    n, s = arch.at(x, y)
    a = np.abs(s)
    z_inf = np.interp(a, [0, 30, 60, 95], [menton, menton + 5, menton + 17, menton + 29]).astype(np.float32)
    crest = np.where(a < 56, occlusal_z(s) - 8.0 + 1.5 * a / 56, occlusal_z(56) - 6.5 + 0.6 * (a - 56)).astype(np.float32)
    height = np.maximum(crest - z_inf, 1.0)
    frac = np.clip((crest - z) / height, 0.0, 1.0)
    buccal = 5.0 + 2.2 * np.sqrt(frac) + 4.5 * np.clip((a - 45) / 30, 0, 1)
    lingual = 3.8 + 2.2 * np.sqrt(frac)
    centre = 1.8 * np.exp(-((s / 14) ** 2)) * frac  # mental protuberance
    u = np.where(n > centre, (n - centre) / buccal, (centre - n) / lingual)
    v = (z - (crest + z_inf) / 2) / (height / 2)
    return (u**2 + v**4 <= 1.0) & (a <= arch.half_length - 1)


def _rami_and_necks(x, y, z, ramus: Ramus, condyle_x: float) -> np.ndarray:
    """Both rami as bony plates of the outline's thickness, and the condylar necks."""
    half = ramus.half_thickness(y, z)
    middle = condyle_x - 5.0 + 0.05 * (z + 57) + 0.13 * (y - 3)  # the plates flare out towards the condyles
    inside = np.abs(np.abs(x) - middle) <= half
    for side in (-1, 1):
        inside |= segment_distance(x, y, z, (side * (condyle_x - 1), 1, -3), (side * (condyle_x - 3.5), 2.5, -14)) <= 3.4
    return inside


def paint_mandible(canvas: Canvas, params) -> None:
    """Body, rami, necks and condyles as one bone, in the jaw frame."""
    ramus = Ramus(params.ramus_height_scale)
    condyle_x, menton = params.condyle_x_mm, params.menton_z_mm

    def inside(x, y, z):
        return _mandible_body(x, y, z, menton) | _rami_and_necks(x, y, z, ramus, condyle_x) | condyle_shape(x, y, z, condyle_x)

    canvas.paint("jaw", (-66, -95, -95), (66, 14, 8), LABELS["mandible"], inside)
