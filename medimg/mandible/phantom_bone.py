"""Painters of the bone other than the mandible: cervical spine, skull base, temporal bones,
maxilla and palate, hyoid.

Together they make one bony mass larger than the mandible that touches it at the teeth and
nearly at the joints, so that no threshold isolates the mandible. Painters follow the
``paint_*(canvas, params)`` convention of :mod:`medimg.mandible.phantom_head`.
"""

from __future__ import annotations

import numpy as np

from medimg.common.textures import smooth_noise
from medimg.mandible.phantom_geometry import UPPER_ARCH_OFFSET_MM, dental_arch, ellipsoid, occlusal_z, segment_distance
from medimg.mandible.phantom_head import POSTERIOR_FOSSA_BONE_MM, ear_canal, posterior_fossa_depth, skin_depth
from medimg.mandible.phantom_jaw import glenoid_fossa
from medimg.mandible.phantom_labels import LABELS, Canvas

_L = LABELS
_BONE = LABELS["bone"]
# (bottom, top) of the vertebral bodies C1 (anterior arch level) to C5, mm.
_VERTEBRAE = ((-52.0, -35.0), (-70.0, -55.0), (-88.0, -73.0), (-106.0, -91.0), (-124.0, -109.0))
_DISC_MM = 3.0
_MASTOID_SEMI = (9.0, 10.0, 15.0)
_MASTOID_CELLS_SEMI = (6.5, 7.5, 12.0)
_SINUS_WALL_MM = 1.5


def _mastoid_centre(side: int, params) -> tuple[float, float, float]:
    return (side * (params.condyle_x_mm - 2), 28.0, -2.0)


def paint_cervical_spine(canvas: Canvas, params) -> None:
    """C1-C5 with discs, laminae and spinous processes; articular pillars continuous from C2 down
    (the facet joints are too thin to separate them); the dens and the atlas."""
    for bottom, top in _VERTEBRAE:
        canvas.paint("head", (-10, 20, bottom - 1), (10, 40, top + 1), _BONE,
                     lambda x, y, z, b=bottom, t=top: ((x / 9) ** 2 + ((y - 30) / 8) ** 2 <= 1) & (z >= b) & (z <= t))
        canvas.paint("head", (-10, 20, top), (10, 40, top + _DISC_MM), _L["disc"],
                     lambda x, y, z, t=top: ((x / 9) ** 2 + ((y - 30) / 8) ** 2 <= 1) & (z > t) & (z < t + _DISC_MM))
        canvas.paint("head", (-25, 40, bottom), (25, 80, top), _BONE, lambda x, y, z, b=bottom, t=top: _vertebral_arch(x, y, z, b, t))
    canvas.paint("head", (-30, 30, -115), (30, 55, -28), _BONE,
                 lambda x, y, z: ((((np.abs(x) - 19) / 6) ** 2 + ((y - 42) / 7) ** 2) <= 1)
                 | ((((np.abs(x) - 12) / 4) ** 2 + ((y - 37) / 4) ** 2) <= 1))  # articular pillars
    canvas.paint("head", (-8, 18, -40), (8, 34, -12), _BONE,
                 lambda x, y, z: segment_distance(x, y, z, (0, 28, -36), (0, 27, -15)) <= 5.0)  # dens
    canvas.paint("head", (-30, 15, -27), (30, 65, -12), _BONE,
                 lambda x, y, z: (((x / 22) ** 2 + ((y - 41) / 22) ** 2 <= 1) & ((x / 17) ** 2 + ((y - 42) / 17) ** 2 > 1)
                                  & (z > -24) & (z < -15))
                 | ((((np.abs(x) - 17) / 7) ** 2 + ((y - 33) / 9) ** 2 + ((z + 19.5) / 6) ** 2) <= 1))  # atlas


def _vertebral_arch(x, y, z, bottom: float, top: float) -> np.ndarray:
    """Spinous process and laminae of one vertebra."""
    middle = (bottom + top) / 2
    spinous = segment_distance(x, y, z, (0, 56, middle), (0, 70, middle - 6)) <= 3.5
    lamina = (((x / 20) ** 2 + ((y - 47) / 14) ** 2) <= 1) & (((x / 16) ** 2 + ((y - 47) / 10) ** 2) > 1) & (y > 44)
    return spinous | (lamina & (z >= bottom + 2) & (z <= top - 2))


def paint_skull_base(canvas: Canvas, params) -> None:
    """Occipital condyles, clivus, sphenoid, middle fossa floor, occipital bone, temporal squama."""
    canvas.paint("head", (-22, 15, -14), (22, 40, -2), _BONE,
                 lambda x, y, z: ((np.abs(x) - 13) / 6) ** 2 + ((y - 27) / 9) ** 2 + ((z + 8) / 5) ** 2 <= 1)
    canvas.paint("head", (-14, -14, -12), (14, 28, 18), _BONE,
                 lambda x, y, z: (segment_distance(np.zeros_like(x), y, z, (0, -6, 10), (0, 20, -5)) / 6) ** 2 + (x / 13) ** 2 <= 1)
    canvas.paint("head", (-16, -27, 1), (16, 3, 27), _BONE, lambda x, y, z: ellipsoid(x, y, z, (0, -12, 14), (14, 13, 11)))
    # Middle cranial fossa floor (greater wings): sloping down laterally to the temporal bone.
    condyle_x = params.condyle_x_mm
    canvas.paint("head", (-50, -30, 4), (50, 0, 20), _BONE,
                 lambda x, y, z: (np.abs(x) > 10) & (np.abs(x) < condyle_x - 4) & (y > -28) & (y < -2)
                 & (np.abs(z - 16.0 + 0.25 * (np.abs(x) - 12.0)) < 1.5))

    def occipital(x, y, z):
        depth = posterior_fossa_depth(x, y, z)
        foramen_magnum = ((x / 14) ** 2 + ((y - 40) / 17) ** 2 <= 1) & (z < 8)
        return (depth >= 0) & (depth <= POSTERIOR_FOSSA_BONE_MM) & (y > 8) & ~foramen_magnum

    canvas.paint("head", (-70, 0, -12), (70, 100, 45), _BONE, occipital)

    def squama(x, y, z):  # lateral skull wall under the scalp and temporalis
        depth = skin_depth(params, x, y, z)
        return (depth > 9.0) & (depth < 14.0) & (z > 9) & (y > -38) & (y < 55)

    canvas.paint("head", (-90, -40, 8), (90, 60, 45), _BONE, squama)


def paint_temporal_bones(canvas: Canvas, params) -> None:
    """Each side: petrous ridge, mastoid, the glenoid fossa over the joint with the ear canal
    through the bone behind it, zygomatic arch and body, pterygoid plates."""
    condyle_x = params.condyle_x_mm
    for side in (-1, 1):
        canvas.paint("head", (-75, -5, -2), (75, 30, 24), _BONE,
                     lambda x, y, z, s=side: segment_distance(x, y, z, (s * (condyle_x + 5), 18, 9), (s * 20, -4, 12)) <= 8.0)
        canvas.paint("head", (-70, 15, -20), (70, 42, 16), _BONE,
                     lambda x, y, z, c=_mastoid_centre(side, params): ellipsoid(x, y, z, c, _MASTOID_SEMI))
        canvas.paint("head", (-80, -18, -6), (80, 14, 20), _BONE, glenoid_fossa(side, params))
        canvas.paint("head", (-80, 0, -8), (80, 20, 10), _L["air"], ear_canal(side, condyle_x, 6.0))
        canvas.paint("head", (-70, -80, -12), (70, -5, 22), _BONE,
                     lambda x, y, z, s=side: ((segment_distance(x, y, z, (s * 52, -52, 2), (s * (condyle_x + 10), -10, 2)) <= 3.2)
                                              | ellipsoid(x, y, z, (s * 45, -57, 6), (9, 9, 12))))  # zygomatic arch and body
        canvas.paint("head", (-30, -26, -32), (30, -4, 12), _BONE,
                     lambda x, y, z, s=side: (((np.abs(x - s * 20) < 1.1) | (np.abs(x - s * 12) < 1.1))
                                              & (y > -24) & (y < -8) & (z > -30) & (z < 10)))  # pterygoid plates


def paint_mastoid_cells(canvas: Canvas, params) -> None:
    """A honeycomb of air inside each mastoid: a thresholded random field (``mastoid_cells_seed``)."""
    region = canvas.grid.region("head", (-70, 15, -20), (70, 42, 16))
    if region is None:
        return
    slices, x, y, z = region
    cells = smooth_noise(np.random.default_rng(params.mastoid_cells_seed), x.shape, 0.8) > 0.5
    inside = np.zeros_like(cells)
    for side in (-1, 1):
        inside |= ellipsoid(x, y, z, _mastoid_centre(side, params), _MASTOID_CELLS_SEMI)
    canvas.labels[slices][cells & inside] = _L["air"]


def _maxillary_sinus(side: int, palate_z: float, grow: float = 0.0):
    return lambda x, y, z: ellipsoid(x, y, z, (side * 23, -46, palate_z + 16), (10.5 + grow, 15.5 + grow, 12.5 + grow))


def paint_maxilla(canvas: Canvas, params) -> None:
    """The maxilla's body: a bony shell around the nasal cavity and the maxillary sinuses."""
    palate_z = params.palate_z_mm
    for side in (-1, 1):  # the sinus with its wall, cleared of whatever soft tissue was there
        canvas.paint("head", (-40, -64, palate_z), (40, -26, palate_z + 32), _L["air"], _maxillary_sinus(side, palate_z, _SINUS_WALL_MM))

    def body(x, y, z):
        envelope = ((x / 38) ** 2 + ((y + 45) / 34) ** 2 <= 1) & (y < -18) & (z >= palate_z - 1) & (z < 14)
        sinus = _maxillary_sinus(-1, palate_z, _SINUS_WALL_MM)(x, y, z) | _maxillary_sinus(1, palate_z, _SINUS_WALL_MM)(x, y, z)
        nasal = (np.abs(x) < 13 - 0.12 * (z - palate_z)) & (y > -76) & (z > palate_z + 1.5)
        septum = np.abs(x) < 0.9
        return envelope & ~sinus & (~nasal | septum)

    canvas.paint("head", (-40, -80, palate_z - 2), (40, -10, 15), _BONE, body)
    canvas.paint("head", (-20, -75, palate_z), (20, -12, 15), _L["soft"],
                 lambda x, y, z: ((np.abs(x) - 10) / 3.5) ** 2 + ((y + 45) / 26) ** 2 + ((z - palate_z - 7) / 4.5) ** 2 <= 1)  # turbinates
    for side in (-1, 1):
        canvas.paint("head", (-40, -64, palate_z), (40, -26, palate_z + 32), _L["air"], _maxillary_sinus(side, palate_z))


def paint_palate(canvas: Canvas, params) -> None:
    """The upper alveolar process that holds the upper teeth, and the hard palate."""
    arch = dental_arch()
    palate_z = params.palate_z_mm
    gap = params.occlusion_gap_mm

    def alveolar(x, y, z):
        n, s = arch.at(x, y)
        crest = occlusal_z(s) + gap / 2 + 6.5
        return (np.abs(n - UPPER_ARCH_OFFSET_MM) <= 5.5) & (np.abs(s) < 64) & (z >= crest) & (z <= palate_z + 2) & (y < -14)

    def palate(x, y, z):
        n, s = arch.at(x, y)
        centre = palate_z - 1.5 - 6.0 * np.clip((x / 20) ** 2, 0, 1)
        return (n < UPPER_ARCH_OFFSET_MM - 2) & (np.abs(z - centre) <= 2.5) & (y < -16)

    canvas.paint("head", (-50, -95, -45), (50, -10, palate_z + 3), _BONE, alveolar)
    canvas.paint("head", (-45, -90, palate_z - 12), (45, -10, palate_z + 2), _BONE, palate)


def paint_hyoid(canvas: Canvas, params) -> None:
    """A small bony U below and behind the chin, free-floating."""
    hyoid_z = params.hyoid_z_mm
    canvas.paint("head", (-30, -45, hyoid_z - 4), (30, 0, hyoid_z + 4), _BONE,
                 lambda x, y, z: (np.abs(np.sqrt((x / 19) ** 2 + ((y + 10) / 26) ** 2) - 1) * 20 <= 2.5)
                 & (y < -4) & (np.abs(z - hyoid_z) <= 3))
