"""Synthetic head CT of the lower head with a ground-truth mandible mask.

No mandible CT with masks can be downloaded here, so the tests, the demo and the default
weights rest on this phantom. It is built to defeat the shortcut the paper warns about
(mandible and other facial bone have the same HU, so no threshold isolates the mandible):
the upper and lower teeth touch or nearly touch in occlusion, each condyle sits 1-2 mm under
its glenoid fossa, and the maxilla, skull base and cervical spine are one bony mass larger
than the mandible. The largest connected component above a bone threshold is therefore that
mass, sometimes with the mandible attached, never the mandible alone
(see :func:`medimg.mandible.synth.threshold_baseline`).

Axial slices run from below the chin (hyoid, C4-C5) up to the skull base; ``(Z, Y, X)`` =
(slice from inferior to superior, row from anterior to posterior, column from the patient's
right to left), the order of a head-first-supine axial series read by
:func:`medimg.common.dicom_series.read_ct_series`.

Anatomy is drawn in millimetres in a head frame (x to the patient's left, y posterior,
z superior; origin midway between the condyle centres) and in a jaw frame, the same frame
rotated about the condylar hinge axis by the mouth opening. Tissues are painted as labels at
voxel centres (that sampling *is* the ground truth), turned into HU (cortical shell over
cancellous bone by distance to the bone surface, enamel over dentin, textured soft tissue),
blurred by the scanner's point spread, and given correlated Gaussian noise and, optionally,
dental fillings with streak artefacts.

The mask is the mandible *with its teeth* (roots, crowns, pulp and fillings of the lower
teeth): the paper labels "the mandible region" slice by slice in Labelme, and at the
occlusal plane a mask without teeth would have to cut through tooth-bone contacts that CT
cannot resolve. Upper teeth, maxilla, hyoid and everything else are background.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from medimg.common.errors import InputError, expected

__all__ = [
    "HeadPhantom",
    "make_head_ct",
    "DEFAULT_SHAPE",
    "FIELD_OF_VIEW_MM",
    "MIN_SHAPE",
    "LABELS",
    "MANDIBLE_LABELS",
    "HU_MIN",
    "HU_MAX",
]

DEFAULT_SHAPE = (48, 256, 256)
"""(Z, Y, X) of :func:`make_head_ct` by default: 2.5 x 0.9 x 0.9 mm voxels."""
FIELD_OF_VIEW_MM = (120.0, 230.4, 230.4)
"""(slice, row, column) extent covered when no spacing is given: the lower head with some air around."""
MIN_SHAPE = (8, 32, 32)
"""Smallest (Z, Y, X) accepted: coarser grids lose the mandible's shape."""
HU_MIN = -1024
HU_MAX = 32767 - 1024
"""HU range that fits int16 stored values with RescaleIntercept -1024."""

# Where the field of view sits in the head frame (mm): from below the hyoid to the skull base,
# centred a little in front of the condyles in y.
_FOV_CENTRE = (0.0, -8.0, -40.0)  # x, y, z

LABELS = {
    "air": 0, "skin": 1, "fat": 2, "soft": 3, "tongue": 4, "gland": 5, "brain": 6, "csf": 7, "disc": 8,
    "bone": 9, "mandible": 10, "lower_crown": 11, "lower_root": 12, "lower_pulp": 13, "lower_metal": 14,
    "upper_crown": 15, "upper_root": 16, "upper_pulp": 17, "upper_metal": 18,
}
"""Tissue label values of :attr:`HeadPhantom.labels`."""
MANDIBLE_LABELS = tuple(LABELS[n] for n in ("mandible", "lower_crown", "lower_root", "lower_pulp", "lower_metal"))
"""Labels that make up the ground-truth mask: the mandible and its teeth."""

_L = LABELS
# Mean HU of the tissues that are not drawn from per-seed ranges.
_BASE_HU = {
    "air": -1000.0, "skin": 30.0, "fat": -100.0, "soft": 45.0, "tongue": 70.0, "gland": -15.0,
    "brain": 35.0, "csf": 8.0, "disc": 85.0, "lower_pulp": 60.0, "upper_pulp": 60.0,
}
_SOFT_TEXTURE_HU = 7.0  # amplitude of the smooth texture of soft tissue
_TRABECULAR_HU = 110.0  # std of the trabecular pattern of cancellous bone
_CORTEX_MM = 2.2
_ENAMEL_MM = 1.3
_PSF_SIGMA_VOXELS = (0.4, 0.6, 0.6)  # (slice, row, column): the scanner's blur
_NOISE_CORRELATION_VOXELS = 0.7  # in-plane: reconstruction kernels correlate neighbouring pixels

# Mandibular / maxillary teeth from the midline backwards: mesio-distal width, bucco-lingual
# half width, crown height, root length (mm), and whether the crown has cusps.
_LOWER_TEETH = ((5.0, 3.0, 9.0, 12.0, False), (5.6, 3.1, 9.0, 13.0, False), (6.8, 3.8, 10.0, 16.0, False),
                (7.0, 3.9, 8.0, 14.0, True), (7.1, 4.1, 8.0, 14.0, True), (11.0, 5.0, 7.5, 13.0, True),
                (10.4, 4.9, 7.0, 12.5, True))
_UPPER_TEETH = ((8.4, 3.4, 10.5, 13.0, False), (6.5, 3.1, 9.0, 12.5, False), (7.5, 4.0, 10.0, 17.0, False),
                (6.9, 4.4, 8.0, 14.0, True), (6.6, 4.4, 7.5, 14.0, True), (10.0, 5.4, 7.0, 13.0, True),
                (9.0, 5.2, 7.0, 12.5, True))
_UPPER_ARCH_OFFSET = 1.6  # the upper arch runs this far outside the lower one (overjet)

# Mandible body centreline (closed mouth, jaw frame, left half; mirrored): chin to gonial region.
_ARCH_POINTS = ((0.0, -78.0), (8.0, -76.0), (14.0, -71.0), (19.0, -63.0), (23.0, -53.0), (27.0, -42.0),
                (31.0, -30.0), (36.0, -18.0), (41.0, -6.0), (44.0, 2.0))
# Ramus outline in the (y, z) plane of each side, counter-clockwise from the external oblique
# line: anterior border, coronoid, sigmoid notch, condylar neck, posterior border, gonial angle.
_RAMUS_OUTLINE = ((-36.0, -50.0), (-33.0, -32.0), (-30.0, -16.0), (-28.0, -7.0), (-25.0, -5.0), (-20.0, -11.0),
                  (-14.0, -16.5), (-9.0, -15.0), (-5.5, -10.0), (-4.0, -5.0), (-2.0, -3.0), (3.0, -3.0),
                  (4.5, -10.0), (5.5, -22.0), (6.0, -36.0), (5.0, -50.0), (2.5, -56.5), (-3.0, -59.5),
                  (-14.0, -62.0), (-36.0, -64.0))
_LOOKUP_MM = 0.4  # resolution of the 2-D lookup tables of the arch and the ramus


@dataclass(frozen=True, eq=False)
class HeadPhantom:
    """A synthetic head CT and its ground truth.

    Attributes
    ----------
    hu : (Z, Y, X) ndarray of int16
        Hounsfield units in [HU_MIN, HU_MAX]; Z from inferior to superior, Y anterior to
        posterior, X from the patient's right to left.
    mandible : (Z, Y, X) ndarray of bool
        The mandible with its teeth; one face-connected component.
    spacing : (float, float, float)
        (slice, row, column) voxel size in mm.
    affine : (4, 4) ndarray of float64
        Voxel ``(i=column, j=row, k=slice, 1)`` -> patient LPS mm, as read_ct_series reports it
        for the series written by :func:`medimg.mandible.synth.write_synthetic_series`.
    labels : (Z, Y, X) ndarray of uint8
        Tissue labels (:data:`LABELS`) at voxel centres, before blur and noise.
    opening_deg : float
        Mouth opening: rotation of the jaw about the condylar axis (0 = teeth in occlusion).
    joint_gap_mm : float
        Gap between each condyle and its glenoid fossa.
    occlusion_gap_mm : float
        Gap between upper and lower cusps at zero opening (0 = touching).
    metal_centres : (n, 3) ndarray of float64
        Centres of the dental fillings as voxel ``(k, j, i)`` coordinates (empty without metal).
    """

    hu: np.ndarray
    mandible: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    labels: np.ndarray
    opening_deg: float
    joint_gap_mm: float
    occlusion_gap_mm: float
    metal_centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (degrees) about z (yaw), x (pitch) and y (roll), applied in that order."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return ry @ rx @ rz


class _Grid:
    """The voxel grid and the anatomical frames drawn into it.

    A frame is a linear map ``world = matrix @ p + offset`` from frame coordinates ``p`` (mm) to
    patient LPS mm; voxel ``(k, j, i)`` has its centre at ``origin + (i dx, j dy, k dz)``.
    """

    def __init__(self, shape, spacing, origin):
        self.shape = shape
        self.spacing = spacing
        self.origin = np.asarray(origin, dtype=np.float64)  # x, y, z of voxel (0, 0, 0)
        self.frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add_frame(self, name: str, matrix: np.ndarray, offset) -> None:
        self.frames[name] = (np.asarray(matrix, dtype=np.float64), np.asarray(offset, dtype=np.float64))

    def to_voxel(self, name: str, points) -> np.ndarray:
        """Frame points (n, 3) x, y, z -> voxel coordinates (n, 3) k, j, i."""
        matrix, offset = self.frames[name]
        world = np.asarray(points, dtype=np.float64) @ matrix.T + offset
        dz, dy, dx = self.spacing
        rel = world - self.origin
        return np.stack([rel[:, 2] / dz, rel[:, 1] / dy, rel[:, 0] / dx], axis=1)

    def region(self, name: str, lo, hi):
        """Voxels whose centres may lie in the frame box [lo, hi]: (slices, x, y, z) or None.

        ``x, y, z`` are float32 frame coordinates of those voxels, broadcast to the box's shape.
        """
        corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
        voxels = self.to_voxel(name, corners)
        start = np.maximum(np.floor(voxels.min(axis=0)).astype(int), 0)
        stop = np.minimum(np.ceil(voxels.max(axis=0)).astype(int) + 1, self.shape)
        if np.any(stop <= start):
            return None
        slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
        dz, dy, dx = self.spacing
        wz = (self.origin[2] + dz * np.arange(start[0], stop[0]))[:, None, None]
        wy = (self.origin[1] + dy * np.arange(start[1], stop[1]))[None, :, None]
        wx = (self.origin[0] + dx * np.arange(start[2], stop[2]))[None, None, :]
        matrix, offset = self.frames[name]
        inverse = np.linalg.inv(matrix)
        rel = (wx - offset[0], wy - offset[1], wz - offset[2])
        coords = []
        for row in inverse:
            value = row[0] * rel[0] + row[1] * rel[1] + row[2] * rel[2]
            coords.append(np.broadcast_to(value, tuple(b - a for a, b in zip(start, stop))).astype(np.float32))
        return (slices, *coords)


def _ellipsoid(x, y, z, centre, semi) -> np.ndarray:
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((z - centre[2]) / semi[2]) ** 2 <= 1.0


def _segment_distance(x, y, z, a, b) -> np.ndarray:
    """Distance of each point to the segment from a to b."""
    a = np.asarray(a, dtype=np.float32)
    d = np.asarray(b, dtype=np.float32) - a
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d), 0.0, 1.0)
    return np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)


class _Lookup2D:
    """A 2-D table over a rectangle in mm, read at the nearest cell."""

    def __init__(self, lo, hi, step=_LOOKUP_MM):
        self.lo = np.asarray(lo, dtype=np.float64)
        self.step = step
        self.size = (np.ceil((np.asarray(hi) - self.lo) / step).astype(int) + 1)

    def axes(self):
        return (self.lo[0] + self.step * np.arange(self.size[0]), self.lo[1] + self.step * np.arange(self.size[1]))

    def index(self, a, b):
        ia = np.clip(np.rint((a - self.lo[0]) / self.step), 0, self.size[0] - 1).astype(np.intp)
        ib = np.clip(np.rint((b - self.lo[1]) / self.step), 0, self.size[1] - 1).astype(np.intp)
        return ia, ib


class _Arch:
    """Signed offset from the mandible body's centreline (``n``, + outward) and arc length along
    it (``s``, + on the patient's left), tabulated over the jaw's (x, y) plane."""

    def __init__(self, points):
        from scipy.interpolate import CubicSpline
        from scipy.spatial import cKDTree

        left = np.asarray(points, dtype=np.float64)
        full = np.concatenate([left[:0:-1] * [-1.0, 1.0], left])  # right back -> chin -> left back
        chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(full, axis=0).T))])
        spline = CubicSpline(chord, full, axis=0)
        t = np.linspace(0.0, chord[-1], int(chord[-1] / 0.1) + 1)
        curve = spline(t)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(curve, axis=0).T))])
        arc -= arc[-1] / 2  # the curve is symmetric: s = 0 at the chin
        tangent = np.gradient(curve, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # outward: away from the tongue
        self.half_length = float(min(-arc[0], arc[-1]))
        self.table = _Lookup2D((-66.0, -98.0), (66.0, 16.0))
        gx, gy = np.meshgrid(*self.table.axes(), indexing="ij")
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        _, nearest = cKDTree(curve).query(grid)
        offset = np.einsum("ij,ij->i", grid - curve[nearest], normal[nearest])
        self.n = offset.reshape(gx.shape).astype(np.float32)
        self.s = arc[nearest].reshape(gx.shape).astype(np.float32)
        self.curve, self.arc, self.normal = curve, arc, normal

    def at(self, x, y):
        ix, iy = self.table.index(x, y)
        return self.n[ix, iy], self.s[ix, iy]

    def point(self, s: float, n: float = 0.0) -> np.ndarray:
        """(x, y) at arc length s and offset n."""
        k = int(np.clip(np.searchsorted(self.arc, s), 0, len(self.arc) - 1))
        return self.curve[k] + n * self.normal[k]


@functools.lru_cache(maxsize=1)
def _arch() -> _Arch:
    # The same for every seed (the head's size and shape vary through the frame's scale).
    return _Arch(_ARCH_POINTS)


class _Ramus:
    """The ramus outline as a (y, z) table: inside, and the half thickness of the bony plate."""

    def __init__(self, outline, z_scale: float):
        from skimage.draw import polygon

        points = np.asarray(outline, dtype=np.float64) * [1.0, z_scale]
        self.table = _Lookup2D((-40.0, -70.0), (10.0, 2.0))
        rows = (points[:, 0] - self.table.lo[0]) / self.table.step
        cols = (points[:, 1] - self.table.lo[1]) / self.table.step
        inside = np.zeros(tuple(self.table.size), dtype=bool)
        rr, cc = polygon(rows, cols, inside.shape)
        inside[rr, cc] = True
        depth = ndimage.distance_transform_edt(inside) * self.table.step
        # Thin at the borders (notch, coronoid), about 7 mm thick in the middle of the plate.
        self.half = np.where(inside, np.clip(1.1 + 0.45 * depth, 1.1, 3.6), -1.0).astype(np.float32)

    def half_thickness(self, y, z):
        iy, iz = self.table.index(y, z)
        return self.half[iy, iz]


def _smooth_field(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field (float32) with correlation length ``sigma`` voxels."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="reflect")
    field_ -= field_.mean()
    return field_ / max(float(field_.std()), 1e-6)


def _coarse_field(rng: np.random.Generator, shape, factor: int = 8) -> np.ndarray:
    """A smooth unit-std field drawn on a grid ``factor`` times coarser in-plane, then interpolated."""
    coarse_shape = (shape[0], shape[1] // factor + 2, shape[2] // factor + 2)
    coarse = _smooth_field(rng, coarse_shape, (1.0, 1.0, 1.0))
    zoomed = ndimage.zoom(coarse, (1.0, shape[1] / (coarse_shape[1] - 2), shape[2] / (coarse_shape[2] - 2)), order=1)
    return np.ascontiguousarray(zoomed[:, : shape[1], : shape[2]])


# ---------------------------------------------------------------------------------------------
# The phantom


def _check_shape(shape) -> tuple[int, int, int]:
    what = f"a shape (Z, Y, X) of 3 ints of at least {MIN_SHAPE}"
    try:
        dims = tuple(shape)
    except TypeError:
        raise InputError(expected(what, shape)) from None
    if len(dims) != 3 or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise InputError(expected(what, shape))
    if any(int(d) < m for d, m in zip(dims, MIN_SHAPE)):
        raise InputError(expected(what, dims))
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


def _check_spacing(spacing, shape) -> tuple[float, float, float]:
    if spacing is None:
        return tuple(float(extent / n) for extent, n in zip(FIELD_OF_VIEW_MM, shape))  # type: ignore[return-value]
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise InputError(expected("a spacing (slice, row, column) of 3 positive numbers in mm", spacing)) from None
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(expected("a spacing (slice, row, column) of 3 positive numbers in mm", spacing))
    return values  # type: ignore[return-value]


def grid_origin(shape, spacing) -> tuple[float, float, float]:
    """LPS position (x, y, z) of voxel (0, 0, 0)'s centre: the field of view centred on the head.

    Rounded to 0.01 mm so that the DICOM position strings hold it exactly.
    """
    dz, dy, dx = spacing
    nz, ny, nx = shape
    x0 = _FOV_CENTRE[0] - (nx - 1) / 2 * dx
    y0 = _FOV_CENTRE[1] - (ny - 1) / 2 * dy
    z0 = _FOV_CENTRE[2] - (nz - 1) / 2 * dz
    return (round(x0, 2), round(y0, 2), round(z0, 2))


def make_head_ct(*, seed: int, shape=DEFAULT_SHAPE, spacing=None, metal: bool = False) -> HeadPhantom:
    """Generate a synthetic axial CT of the lower head with its mandible mask.

    Parameters
    ----------
    seed : int
        Everything random derives from it: head size, shape, pose, mouth opening, gaps, tissue
        levels, textures, noise. ``metal`` adds fillings without changing anything else, so the
        same seed with and without metal differs only by the fillings and their artefacts.
    shape : (Z, Y, X) tuple of int, at least ``MIN_SHAPE``
    spacing : (slice, row, column) mm, optional
        Default: :data:`FIELD_OF_VIEW_MM` divided by ``shape`` (2.5 x 0.9 x 0.9 mm for the
        default shape). A field of view smaller than ~120 x 210 x 170 mm crops the head.
    metal : bool
        Put 1-4 metal fillings (4000-8000 HU) into posterior teeth, with streak artefacts
        (alternating bright and dark lines radiating from the metal within its slices).

    Returns
    -------
    HeadPhantom
        ``hu`` (Z, Y, X) int16, ``mandible`` (Z, Y, X) bool and the geometry.

    Raises
    ------
    InputError
        If ``shape`` or ``spacing`` is not usable.
    """
    shape = _check_shape(shape)
    spacing = _check_spacing(spacing, shape)
    anatomy_rng = np.random.default_rng([int(seed), 0])
    texture_rng = np.random.default_rng([int(seed), 1])
    metal_rng = np.random.default_rng([int(seed), 2])

    grid, pose = _make_grid(anatomy_rng, shape, spacing)
    labels, teeth = _paint_anatomy(anatomy_rng, grid, pose)
    fillings = _paint_fillings(metal_rng, grid, labels, teeth) if metal else []
    _keep_one_mandible(labels)

    hu = _tissue_hu(anatomy_rng, texture_rng, labels, spacing, fillings)
    hu = ndimage.gaussian_filter(hu, _PSF_SIGMA_VOXELS, mode="nearest")
    for filling in fillings:
        # Real fillings are larger than the blur: their voxels stay saturated however coarse the grid.
        k, j, i = filling["voxels"].T
        hu[k, j, i] = np.maximum(hu[k, j, i], filling["hu"])
    if fillings:
        hu += _streaks(metal_rng, labels, spacing, fillings)
    noise = _smooth_field(texture_rng, shape, (0.0, _NOISE_CORRELATION_VOXELS, _NOISE_CORRELATION_VOXELS))
    hu += pose["noise_hu"] * noise
    hu_int = np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.int16)

    dz, dy, dx = spacing
    affine = np.eye(4)
    affine[0, 0], affine[1, 1], affine[2, 2] = dx, dy, dz
    affine[:3, 3] = grid.origin
    centres = np.array([f["centre_voxel"] for f in fillings], dtype=np.float64).reshape(-1, 3)
    return HeadPhantom(
        hu=hu_int,
        mandible=np.isin(labels, MANDIBLE_LABELS),
        spacing=spacing,
        affine=affine,
        labels=labels,
        opening_deg=float(pose["opening"]),
        joint_gap_mm=float(pose["joint_gap"]),
        occlusion_gap_mm=float(pose["occlusion_gap"]),
        metal_centres=centres,
    )


def _make_grid(rng: np.random.Generator, shape, spacing):
    size = rng.uniform(0.95, 1.05)
    scale = size * rng.uniform(0.97, 1.03, size=3)
    rotation = _rotation(rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(-3, 3))
    shift = rng.uniform([-3.0, -4.0, -3.0], [3.0, 4.0, 3.0])
    opening = 0.0 if rng.uniform() < 0.4 else rng.uniform(1.0, 6.0)
    pose = {
        "opening": opening,
        "joint_gap": rng.uniform(1.0, 2.0),
        "occlusion_gap": rng.uniform(0.0, 0.8),
        "noise_hu": rng.uniform(15.0, 25.0),
    }
    grid = _Grid(shape, spacing, grid_origin(shape, spacing))
    head = rotation @ np.diag(scale)
    grid.add_frame("head", head, shift)
    a = np.radians(opening)
    # Opening turns the jaw about the condylar (x) axis: the chin goes down and back.
    hinge = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    grid.add_frame("jaw", head @ hinge, shift)
    return grid, pose


def _paint_anatomy(rng: np.random.Generator, grid: _Grid, pose):
    labels = np.zeros(grid.shape, dtype=np.uint8)

    def paint(frame, lo, hi, label, inside):
        region = grid.region(frame, lo, hi)
        if region is None:
            return
        slices, x, y, z = region
        mask = inside(x, y, z)
        if np.any(mask):
            labels[slices][mask] = label

    gap = pose["occlusion_gap"]
    arch = _arch()
    condyle_x = 50.0 * rng.uniform(0.97, 1.03)
    fat_mm = rng.uniform(3.0, 7.0)
    airway = rng.uniform(0.75, 1.2)
    z_palate = -22.0 + rng.uniform(-1.5, 1.5)

    def z_occlusal(s):
        return -45.5 + 0.11 * np.abs(s)

    # --- Head outline: skin, subcutaneous fat, soft tissue -----------------------------------
    knots_z = [-110.0, -100.0, -92.0, -85.0, -75.0, -55.0, -40.0, -25.0, -10.0, 25.0]
    front = np.array([-45.0, -55.0, -84.0, -95.0, -99.0, -100.0, -101.0, -98.0, -99.0, -99.0]) * rng.uniform(0.97, 1.03)
    back = np.array([70.0, 71.0, 72.0, 72.5, 73.0, 76.0, 79.0, 83.0, 89.0, 96.0])
    half_width = np.array([55.0, 57.0, 60.0, 63.0, 68.0, 72.0, 73.0, 74.0, 75.0, 76.0]) * rng.uniform(0.96, 1.04)

    def head_depth(x, y, z):
        """Approximate depth below the skin (mm; negative outside)."""
        f = np.interp(z, knots_z, front).astype(np.float32)
        b = np.interp(z, knots_z, back).astype(np.float32)
        w = np.interp(z, knots_z, half_width).astype(np.float32)
        centre, half_depth = (f + b) / 2, (b - f) / 2
        ey = (y - centre) / half_depth
        wx = w * (1.0 - 0.22 * np.clip(-ey, 0.0, 1.0) ** 2)  # the face is narrower than the back of the head
        rho = np.sqrt((x / wx) ** 2 + ey**2)
        gradient = np.sqrt((x / wx**2) ** 2 + (ey / half_depth) ** 2) / np.maximum(rho, 1e-3)
        return (1.0 - rho) / np.maximum(gradient, 1e-3)

    box_lo, box_hi = (-90.0, -125.0, -125.0), (90.0, 110.0, 45.0)
    region = grid.region("head", box_lo, box_hi)
    if region is not None:
        slices, x, y, z = region
        depth = head_depth(x, y, z)
        sub = labels[slices]
        sub[depth >= 0] = _L["skin"]
        sub[depth >= 1.5] = _L["fat"]
        sub[depth >= 1.5 + fat_mm] = _L["soft"]
    # Nose
    paint("head", (-14, -118, -32), (14, -88, 22), _L["soft"], lambda x, y, z: _ellipsoid(x, y, z, (0, -100, -6), (11, 13, 24)))
    for side in (-1, 1):
        paint("head", (-14, -116, -32), (14, -88, -16), _L["air"], lambda x, y, z, s=side: _ellipsoid(x, y, z, (7 * s, -102, -24), (3.5, 9, 4.5)))

    # --- Soft-tissue detail ------------------------------------------------------------------
    for side in (-1, 1):
        paint("head", (-70, -10, -50), (70, 30, 0), _L["gland"],
              lambda x, y, z, s=side: _ellipsoid(x, y, z, (s * (condyle_x - 3), 14, -25), (11, 11, 20)))  # parotid
        paint("head", (-40, -15, -50), (40, 15, -10), _L["fat"],
              lambda x, y, z, s=side: _ellipsoid(x, y, z, (s * 24, 2, -30), (5, 9, 16)))  # parapharyngeal fat
        paint("head", (-60, -90, 5), (60, -40, 40), _L["fat"],
              lambda x, y, z, s=side: _ellipsoid(x, y, z, (s * 32, -62, 24), (15, 18, 12)))  # orbital fat
    # Posterior cranial fossa (cerebellum) and spinal canal
    fossa_centre, fossa_semi = (0.0, 32.0, 36.0), (62.0, 62.0, 44.0)

    def fossa_depth(x, y, z):
        ex, ey, ez = (x - fossa_centre[0]) / fossa_semi[0], (y - fossa_centre[1]) / fossa_semi[1], (z - fossa_centre[2]) / fossa_semi[2]
        rho = np.sqrt(ex**2 + ey**2 + ez**2)
        g = np.sqrt((ex / fossa_semi[0]) ** 2 + (ey / fossa_semi[1]) ** 2 + (ez / fossa_semi[2]) ** 2) / np.maximum(rho, 1e-3)
        return (1.0 - rho) / np.maximum(g, 1e-3)

    paint("head", (-70, -40, -12), (70, 100, 45), _L["brain"], lambda x, y, z: (fossa_depth(x, y, z) > 6.5) & (y > 8))
    paint("head", (-60, -40, 12), (60, 10, 45), _L["brain"], lambda x, y, z: (np.abs(x) < 50) & (z > 14) & (y > -36))
    canal = lambda x, y, z: ((x / 11) ** 2 + ((y - 47) / 8) ** 2 <= 1) & (z < 4)  # noqa: E731
    paint("head", (-12, 38, -115), (12, 56, 5), _L["csf"], canal)
    paint("head", (-8, 40, -115), (8, 54, 5), _L["brain"], lambda x, y, z: ((x / 6) ** 2 + ((y - 47) / 4.5) ** 2 <= 1) & (z < 4))

    # --- Air spaces ---------------------------------------------------------------------------
    zk = [-110.0, -100.0, -88.0, -70.0, -45.0, -20.0]
    airway_y = [-4.0, 0.0, 4.0, 8.0, 10.0, 8.0]
    airway_w = np.array([8.0, 9.0, 13.0, 14.0, 13.0, 12.0]) * airway
    airway_d = np.array([6.0, 6.0, 7.0, 6.0, 5.0, 5.0]) * airway

    def pharynx(x, y, z):
        cy = np.interp(z, zk, airway_y).astype(np.float32)
        return ((x / np.interp(z, zk, airway_w)) ** 2 + ((y - cy) / np.interp(z, zk, airway_d)) ** 2 <= 1) & (z <= -18)

    paint("head", (-20, -12, -115), (20, 22, -17), _L["air"], pharynx)
    paint("head", (-14, -20, -24), (14, 16, 4), _L["air"],
          lambda x, y, z: ((x / (11 * airway)) ** 2 + ((y + 2) / 15) ** 4 <= 1) & (z > -23) & (z < 2))  # nasopharynx
    # Oral cavity between the tongue and the palate; opening lowers its floor with the jaw.
    drop = np.tan(np.radians(pose["opening"]))

    def oral(x, y, z):
        n, s = arch.at(x, y)
        floor = z_occlusal(s) - 1.0 - drop * np.maximum(-y, 0.0)
        ceiling = np.minimum(z_palate - 6.0, floor + 4.0 + 2.0 * drop * np.maximum(-y, 0.0))
        return (n < _UPPER_ARCH_OFFSET + 3.0) & (np.abs(s) < 75) & (y < -12) & (z > floor) & (z < ceiling)

    paint("head", (-50, -95, -60), (50, -10, -20), _L["air"], oral)
    for side in (-1, 1):
        paint("head", (-80, 0, -8), (80, 20, 10), _L["air"],
              lambda x, y, z, s=side: (_segment_distance(x, y, z, (s * (condyle_x + 3), 10, 2), (s * (condyle_x + 18), 10, 2)) <= 3.5))  # ear canal

    # --- Bone other than the mandible ----------------------------------------------------------
    bone = _L["bone"]
    # Cervical spine: C1 ring and lateral masses, C2 with the dens, C3-C5 bodies with discs,
    # articular pillars continuous from C2 down (the facet joints are too thin to separate them).
    levels = ((-52.0, -35.0), (-70.0, -55.0), (-88.0, -73.0), (-106.0, -91.0), (-124.0, -109.0))
    for top_bottom in levels:
        bottom, top = top_bottom
        paint("head", (-10, 20, bottom - 1), (10, 40, top + 1), bone,
              lambda x, y, z, b=bottom, t=top: ((x / 9) ** 2 + ((y - 30) / 8) ** 2 <= 1) & (z >= b) & (z <= t))
        paint("head", (-10, 20, top), (10, 40, top + 3), _L["disc"],
              lambda x, y, z, t=top: ((x / 9) ** 2 + ((y - 30) / 8) ** 2 <= 1) & (z > t) & (z < t + 3))
        paint("head", (-25, 40, bottom), (25, 80, top), bone,
              lambda x, y, z, b=bottom, t=top: (_segment_distance(x, y, z, (0, 56, (b + t) / 2), (0, 70, (b + t) / 2 - 6)) <= 3.5)
              | ((((x / 20) ** 2 + ((y - 47) / 14) ** 2) <= 1) & (((x / 16) ** 2 + ((y - 47) / 10) ** 2) > 1) & (y > 44)
                 & (z >= b + 2) & (z <= t - 2)))  # spinous process and lamina
    paint("head", (-30, 30, -115), (30, 55, -28), bone,
          lambda x, y, z: ((((np.abs(x) - 19) / 6) ** 2 + ((y - 42) / 7) ** 2) <= 1) | ((((np.abs(x) - 12) / 4) ** 2 + ((y - 37) / 4) ** 2) <= 1))
    paint("head", (-8, 18, -40), (8, 34, -12), bone, lambda x, y, z: _segment_distance(x, y, z, (0, 28, -36), (0, 27, -15)) <= 5.0)  # dens
    paint("head", (-30, 15, -27), (30, 65, -12), bone,
          lambda x, y, z: (((x / 22) ** 2 + ((y - 41) / 22) ** 2 <= 1) & ((x / 17) ** 2 + ((y - 42) / 17) ** 2 > 1) & (z > -24) & (z < -15))
          | ((((np.abs(x) - 17) / 7) ** 2 + ((y - 33) / 9) ** 2 + ((z + 19.5) / 6) ** 2) <= 1))  # atlas
    # Skull base: occipital condyles, clivus, sphenoid, middle fossa floor, occipital bone.
    paint("head", (-22, 15, -14), (22, 40, -2), bone, lambda x, y, z: ((np.abs(x) - 13) / 6) ** 2 + ((y - 27) / 9) ** 2 + ((z + 8) / 5) ** 2 <= 1)
    paint("head", (-14, -14, -12), (14, 28, 18), bone,
          lambda x, y, z: (_segment_distance(np.zeros_like(x), y, z, (0, -6, 10), (0, 20, -5)) / 6) ** 2 + (x / 13) ** 2 <= 1)
    paint("head", (-16, -27, 1), (16, 3, 27), bone, lambda x, y, z: _ellipsoid(x, y, z, (0, -12, 14), (14, 13, 11)))
    # Middle cranial fossa floor (greater wings): sloping down laterally to the temporal bone.
    paint("head", (-50, -30, 4), (50, 0, 20), bone,
          lambda x, y, z: (np.abs(x) > 10) & (np.abs(x) < condyle_x - 4) & (y > -28) & (y < -2)
          & (np.abs(z - 16.0 + 0.25 * (np.abs(x) - 12.0)) < 1.5))
    paint("head", (-70, 0, -12), (70, 100, 45), bone,
          lambda x, y, z: (fossa_depth(x, y, z) >= 0) & (fossa_depth(x, y, z) <= 6.5) & (y > 8)
          & ~(((x / 14) ** 2 + ((y - 40) / 17) ** 2 <= 1) & (z < 8)))
    # Lateral skull wall (temporal squama) under the scalp and temporalis.
    paint("head", (-90, -40, 8), (90, 60, 45), bone,
          lambda x, y, z: (head_depth(x, y, z) > 9.0) & (head_depth(x, y, z) < 14.0) & (z > 9) & (y > -38) & (y < 55))
    for side in (-1, 1):
        paint("head", (-75, -5, -2), (75, 30, 24), bone,
              lambda x, y, z, s=side: _segment_distance(x, y, z, (s * (condyle_x + 5), 18, 9), (s * 20, -4, 12)) <= 8.0)  # petrous
        mastoid_centre = (side * (condyle_x - 2), 28.0, -2.0)
        paint("head", (-70, 15, -20), (70, 42, 16), bone, lambda x, y, z, c=mastoid_centre: _ellipsoid(x, y, z, c, (9, 10, 15)))
        # Temporal bone over the joint: glenoid fossa, articular eminence in front, postglenoid behind.
        paint("head", (-80, -18, -6), (80, 14, 20), bone, _fossa_bone(side, condyle_x, pose["joint_gap"]))
        paint("head", (-80, 0, -8), (80, 20, 10), _L["air"],
              lambda x, y, z, s=side: _segment_distance(x, y, z, (s * (condyle_x + 6), 10, 2), (s * (condyle_x + 18), 10, 2)) <= 3.5)
        paint("head", (-70, -80, -12), (70, -5, 22), bone,
              lambda x, y, z, s=side: ((_segment_distance(x, y, z, (s * 52, -52, 2), (s * (condyle_x + 10), -10, 2)) <= 3.2)
                                       | _ellipsoid(x, y, z, (s * 45, -57, 6), (9, 9, 12))))  # zygomatic arch and body
        paint("head", (-30, -26, -32), (30, -4, 12), bone,
              lambda x, y, z, s=side: (((np.abs(x - s * 20) < 1.1) | (np.abs(x - s * 12) < 1.1)) & (y > -24) & (y < -8) & (z > -30) & (z < 10)))  # pterygoid plates
        paint("head", (-40, -64, z_palate), (40, -26, z_palate + 32), _L["air"],
              lambda x, y, z, s=side: _ellipsoid(x, y, z, (s * 23, -46, z_palate + 16), (12, 17, 14)))  # maxillary sinus (shell later)
    # Mastoid air cells: a honeycomb of air inside each mastoid.
    region = grid.region("head", (-70, 15, -20), (70, 42, 16))
    if region is not None:
        slices, x, y, z = region
        cells = _smooth_field(rng, x.shape, 0.8) > 0.5
        inside = np.zeros_like(cells)
        for side in (-1, 1):
            inside |= _ellipsoid(x, y, z, (side * (condyle_x - 2), 28.0, -2.0), (6.5, 7.5, 12))
        labels[slices][cells & inside] = _L["air"]

    # Maxilla: a body around the nasal cavity and sinuses, alveolar process, palate.
    def maxilla_body(x, y, z):
        envelope = ((x / 38) ** 2 + ((y + 45) / 34) ** 2 <= 1) & (y < -18) & (z >= z_palate - 1) & (z < 14)
        sinus = np.zeros_like(envelope)
        for s in (-1, 1):
            sinus |= _ellipsoid(x, y, z, (s * 23, -46, z_palate + 16), (12, 17, 14))
        nasal = (np.abs(x) < 13 - 0.12 * (z - z_palate)) & (y > -76) & (z > z_palate + 1.5)
        septum = np.abs(x) < 0.9
        return envelope & ~sinus & (~nasal | septum)

    paint("head", (-40, -80, z_palate - 2), (40, -10, 15), bone, maxilla_body)
    paint("head", (-20, -75, z_palate), (20, -12, 15), _L["soft"],
          lambda x, y, z: (((np.abs(x) - 10) / 3.5) ** 2 + ((y + 45) / 26) ** 2 + ((z - z_palate - 7) / 4.5) ** 2 <= 1))  # turbinates
    for side in (-1, 1):
        paint("head", (-40, -64, z_palate), (40, -26, z_palate + 32), _L["air"],
              lambda x, y, z, s=side: _ellipsoid(x, y, z, (s * 23, -46, z_palate + 16), (10.5, 15.5, 12.5)))

    upper_bottom = lambda s: z_occlusal(s) + gap / 2  # noqa: E731

    def alveolar_upper(x, y, z):
        n, s = arch.at(x, y)
        crest = upper_bottom(s) + 6.5
        return (np.abs(n - _UPPER_ARCH_OFFSET) <= 5.5) & (np.abs(s) < 64) & (z >= crest) & (z <= z_palate + 2) & (y < -14)

    def palate(x, y, z):
        n, s = arch.at(x, y)
        centre = z_palate - 1.5 - 6.0 * np.clip((x / 20) ** 2, 0, 1)
        return (n < _UPPER_ARCH_OFFSET - 2) & (np.abs(z - centre) <= 2.5) & (y < -16)

    paint("head", (-50, -95, -45), (50, -10, z_palate + 3), bone, alveolar_upper)
    paint("head", (-45, -90, z_palate - 12), (45, -10, z_palate + 2), bone, palate)
    # Hyoid: a small U below and behind the chin, free-floating.
    z_hyoid = -86.0 + rng.uniform(-3, 3)
    paint("head", (-30, -45, z_hyoid - 4), (30, 0, z_hyoid + 4), bone,
          lambda x, y, z: (np.abs(np.sqrt((x / 19) ** 2 + ((y + 10) / 26) ** 2) - 1) * 20 <= 2.5) & (y < -4) & (np.abs(z - z_hyoid) <= 3))

    # --- Mandible (jaw frame) -------------------------------------------------------------------
    ramus = _Ramus(_RAMUS_OUTLINE, rng.uniform(0.94, 1.04))
    menton = -86.0 + rng.uniform(-2, 2)
    condyle_axes = (9.0, 4.5, 5.0)

    def condyle(x, y, z, grow=0.0):
        return _rotated_condyle(x, y, z, condyle_x, condyle_axes, grow)

    def tongue(x, y, z):
        n, s = arch.at(x, y)
        top = z_occlusal(s) + 15.0 - 12.0 * ((x / 30) ** 2 + ((y + 40) / 48) ** 2)
        floor = np.interp(np.abs(s), [0, 30, 60, 95], [menton + 14, menton + 16, menton + 22, menton + 30])
        return (n < -6.0) & (y < 6) & (z > floor) & (z < top)

    paint("jaw", (-45, -80, -80), (45, 8, -25), _L["tongue"], tongue)

    def mandible(x, y, z):
        n, s = arch.at(x, y)
        a = np.abs(s)
        z_inf = np.interp(a, [0, 30, 60, 95], [menton, menton + 5, menton + 17, menton + 29]).astype(np.float32)
        crest = np.where(a < 56, z_occlusal(s) - 8.0 + 1.5 * a / 56, z_occlusal(56) - 6.5 + 0.6 * (a - 56)).astype(np.float32)
        height = np.maximum(crest - z_inf, 1.0)
        frac = np.clip((crest - z) / height, 0.0, 1.0)
        buccal = 5.0 + 2.2 * np.sqrt(frac) + 4.5 * np.clip((a - 45) / 30, 0, 1)
        lingual = 3.8 + 2.2 * np.sqrt(frac)
        centre = 1.8 * np.exp(-((s / 14) ** 2)) * frac  # mental protuberance
        u = np.where(n > centre, (n - centre) / buccal, (centre - n) / lingual)
        v = (z - (crest + z_inf) / 2) / (height / 2)
        body = (u**2 + v**4 <= 1.0) & (a <= arch.half_length - 1)
        half = ramus.half_thickness(y, z)
        middle = condyle_x - 5.0 + 0.05 * (z + 57) + 0.13 * (y - 3)
        plate = np.abs(np.abs(x) - middle) <= half
        neck = np.zeros_like(body)
        for side in (-1, 1):
            neck |= _segment_distance(x, y, z, (side * (condyle_x - 1), 1, -3), (side * (condyle_x - 3.5), 2.5, -14)) <= 3.4
        return body | plate | neck | condyle(x, y, z)

    paint("jaw", (-66, -95, -95), (66, 14, 8), _L["mandible"], mandible)

    # --- Teeth -----------------------------------------------------------------------------------
    teeth = []
    missing = rng.uniform(size=(2, 2, len(_LOWER_TEETH))) < 0.05
    for arch_index, (table, frame) in enumerate(((_LOWER_TEETH, "jaw"), (_UPPER_TEETH, "head"))):
        upper = arch_index == 1
        offset = _UPPER_ARCH_OFFSET if upper else 0.0
        for side_index, side in enumerate((-1, 1)):
            start = 0.25
            for tooth_index, (width, half_b, crown, root, cusps) in enumerate(table):
                centre_s = side * (start + width / 2)
                start += width + 0.2
                if missing[arch_index, side_index, tooth_index]:
                    continue
                n_centre = offset - 1.2 * min(abs(centre_s) / 55.0, 1.0) + (0.8 if upper else 0.0)
                occ = float(z_occlusal(centre_s))
                tooth = dict(frame=frame, upper=upper, s=centre_s, n=n_centre, a=width * 0.47, b=half_b, crown=crown,
                             root=root, cusps=cusps, gap=gap, occ=occ)
                _paint_tooth(grid, labels, arch, tooth)
                teeth.append(tooth)
    return labels, teeth


def _rotated_condyle(x, y, z, condyle_x, axes, grow):
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=bool)
    c, s_ = np.cos(np.radians(15.0)), np.sin(np.radians(15.0))
    for side in (-1, 1):
        dx = side * x - condyle_x  # mirrored so that +dx is lateral on both sides
        u = dx * c - y * s_  # long axis: medial pole more posterior
        w = dx * s_ + y * c
        inside |= (u / (axes[0] + grow)) ** 2 + (w / (axes[1] + grow)) ** 2 + (z / (axes[2] + grow)) ** 2 <= 1.0
    return inside


def _fossa_bone(side: int, condyle_x: float, joint_gap: float):
    """Temporal bone over one joint, hollowed to the condyle's shape plus the joint gap."""

    def inside(x, y, z):
        lateral = side * x
        box = (((lateral - condyle_x - 0.5) / 15.0) ** 2 + ((y + 2.0) / 14.0) ** 2 <= 1.0) & (z < 18)
        # Lower surface along y: eminence in front, fossa roof, postglenoid process behind.
        low = np.interp(y, [-16, -11, -7.5, -5.5, 5.5, 7.5, 12], [1.0, -4.5, -3.0, 0.5, 0.5, -2.5, -2.5]).astype(np.float32)
        hollow = _rotated_condyle(x, y, z, condyle_x, (9.0, 4.5, 5.0), joint_gap)
        return box & (z >= low) & ~hollow

    return inside


def _paint_tooth(grid: _Grid, labels: np.ndarray, arch: _Arch, tooth: dict) -> None:
    x0, y0 = arch.point(tooth["s"], tooth["n"])
    reach = tooth["a"] + tooth["b"] + 1.0
    occ, gap, crown, root = tooth["occ"], tooth["gap"], tooth["crown"], tooth["root"]
    if tooth["upper"]:
        lo, hi = occ + gap / 2 - 1.0, occ + gap / 2 + crown + root + 1.0
    else:
        lo, hi = occ - gap / 2 - crown - root - 1.0, occ - gap / 2 + 1.0
    region = grid.region(tooth["frame"], (x0 - reach, y0 - reach, lo), (x0 + reach, y0 + reach, hi))
    if region is None:
        return
    slices, x, y, z = region
    n, s = arch.at(x, y)
    u = (s - tooth["s"]) / tooth["a"]
    w = (n - tooth["n"]) / tooth["b"]
    radius = (np.abs(u) ** 2.5 + np.abs(w) ** 2.5) ** (1 / 2.5)
    # Height above the occlusal surface toward the root apex (positive into the jaw).
    into = (z - occ) if tooth["upper"] else (occ - z)
    cusp = 1.2 * (1.0 - np.clip(w, -1, 1) ** 2) if tooth["cusps"] else 0.3 * np.abs(np.clip(u, -1, 1))
    surface = gap / 2 + cusp  # the fossa of the crown lies deeper than its cusp tips
    in_crown = (into >= surface) & (into <= crown)
    width = 0.8 + 0.2 * np.sqrt(np.clip((crown - into) / (0.45 * crown), 0, 1))  # narrower at the neck
    crown_mask = in_crown & (radius <= width)
    depth = np.clip((into - crown) / root, 0, 1)
    root_mask = (into > crown) & (into <= crown + root) & (radius <= 0.75 * (1 - 0.8 * depth))
    pulp_mask = (into > crown * 0.45) & (into <= crown + 0.8 * root) & (radius <= 0.28 * (1 - 0.6 * depth))
    prefix = "upper" if tooth["upper"] else "lower"
    sub = labels[slices]
    sub[root_mask] = _L[f"{prefix}_root"]
    sub[crown_mask] = _L[f"{prefix}_crown"]
    sub[pulp_mask & (crown_mask | root_mask)] = _L[f"{prefix}_pulp"]
    tooth["crown_top"] = (float(x0), float(y0), float(occ + (gap / 2 if tooth["upper"] else -gap / 2)))


def _paint_fillings(rng: np.random.Generator, grid: _Grid, labels: np.ndarray, teeth: list) -> list:
    """Amalgam fillings in 1-4 posterior teeth: labels painted, one dict per filling returned."""
    candidates = [t for t in teeth if t["cusps"] and "crown_top" in t]
    if not candidates:
        return []
    count = min(len(candidates), int(rng.integers(1, 5)))
    chosen = rng.choice(len(candidates), size=count, replace=False)
    fillings = []
    for index in sorted(chosen):
        tooth = candidates[index]
        x0, y0, z_top = tooth["crown_top"]
        direction = 1.0 if tooth["upper"] else -1.0
        centre = (x0, y0, z_top + direction * 2.2)
        semi = (tooth["a"] * 0.55, tooth["b"] * 0.5, 2.0)
        region = grid.region(tooth["frame"], np.subtract(centre, semi) - 1, np.add(centre, semi) + 1)
        if region is None:
            continue
        slices, x, y, z = region
        inside = _ellipsoid(x, y, z, centre, semi)
        if not np.any(inside):
            # Slices coarser than the filling: it still shows, in the voxel nearest its centre.
            nearest = np.unravel_index(np.argmin(_squared_distance(x, y, z, centre)), inside.shape)
            inside[nearest] = True
        label = _L["upper_metal" if tooth["upper"] else "lower_metal"]
        labels[slices][inside] = label
        where = np.argwhere(inside) + [s.start for s in slices]
        fillings.append({
            "voxels": where,
            "hu": float(rng.uniform(4000.0, 8000.0)),
            "centre_voxel": where.mean(axis=0),
        })
    return fillings


def _squared_distance(x, y, z, point) -> np.ndarray:
    return (x - point[0]) ** 2 + (y - point[1]) ** 2 + (z - point[2]) ** 2


def _keep_one_mandible(labels: np.ndarray) -> None:
    """Hand detached mandible fragments (coarse grids cut thin processes) to soft tissue."""
    mask = np.isin(labels, MANDIBLE_LABELS)
    components, count = ndimage.label(mask)
    if count <= 1:
        return
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    labels[(components != np.argmax(sizes)) & mask] = _L["soft"]


def _depth_inside(region_mask: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from each voxel centre inside the mask to the mask's surface (0 outside)."""
    depth = np.zeros(region_mask.shape, dtype=np.float32)
    if not np.any(region_mask):
        return depth
    found = ndimage.find_objects(region_mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found)
    inner = ndimage.distance_transform_edt(region_mask[box], sampling=spacing).astype(np.float32)
    # The surface lies half a voxel outside the outermost centres.
    depth[box] = np.where(region_mask[box], inner - 0.5 * min(spacing), 0.0)
    return depth


def _tissue_hu(anatomy_rng, texture_rng, labels, spacing, fillings) -> np.ndarray:
    """Labels -> HU (float32) before blur and noise."""
    lut = np.zeros(256, dtype=np.float32)
    for name, value in _BASE_HU.items():
        lut[_L[name]] = value
    hu = lut[labels]
    soft = np.isin(labels, [_L[n] for n in ("skin", "fat", "soft", "tongue", "gland", "brain")])
    texture = _coarse_field(texture_rng, labels.shape)
    hu[soft] += _SOFT_TEXTURE_HU * texture[soft]
    trabecular = _smooth_field(texture_rng, labels.shape, (0.5, 0.9, 0.9))

    levels = {
        "mandible": (anatomy_rng.uniform(1300, 1700), anatomy_rng.uniform(320, 480)),
        "bone": (anatomy_rng.uniform(1350, 1750), anatomy_rng.uniform(260, 420)),
    }
    enamel = anatomy_rng.uniform(2400, 2700)
    dentin = anatomy_rng.uniform(1550, 1800)
    for name, solid in (("mandible", [_L["mandible"], _L["lower_root"], _L["lower_pulp"]]), ("bone", [_L["bone"], _L["upper_root"], _L["upper_pulp"]])):
        cortical, cancellous = levels[name]
        where = labels == _L[name]
        depth = _depth_inside(np.isin(labels, solid), spacing)
        shell = where & (depth < _CORTEX_MM)
        core = where & ~shell
        hu[core] = cancellous + _TRABECULAR_HU * trabecular[core]
        hu[shell] = cortical + 0.5 * _TRABECULAR_HU * trabecular[shell]
    for prefix in ("lower", "upper"):
        tooth = np.isin(labels, [_L[f"{prefix}_{part}"] for part in ("crown", "root", "pulp", "metal")])
        depth = _depth_inside(tooth, spacing)
        crown = labels == _L[f"{prefix}_crown"]
        hu[crown] = dentin + 60.0
        hu[crown & (depth < _ENAMEL_MM)] = enamel
        hu[labels == _L[f"{prefix}_root"]] = dentin
    for filling in fillings:
        k, j, i = filling["voxels"].T
        hu[k, j, i] = filling["hu"]
    return hu


def _streaks(rng: np.random.Generator, labels, spacing, fillings) -> np.ndarray:
    """Metal streak artefacts: alternating bright and dark lines through each filling, in its slices,
    and a dark band between two fillings in one slice (photon starvation along that path)."""
    nz, ny, nx = labels.shape
    _, dy, dx = spacing
    rows = (np.arange(ny, dtype=np.float32) * dy)[:, None]
    cols = (np.arange(nx, dtype=np.float32) * dx)[None, :]
    artefact = np.zeros(labels.shape, dtype=np.float32)
    width = max(0.9, 0.7 * min(dx, dy))
    per_slice: dict[int, list[tuple[float, float, float]]] = {}
    for filling in fillings:
        k_all = filling["voxels"][:, 0]
        counts = np.bincount(k_all - k_all.min())
        strength = (filling["hu"] / 6000.0) * rng.uniform(350.0, 600.0)
        lines = int(rng.integers(10, 18))
        angles = np.sort(rng.uniform(0, np.pi, lines))
        amplitudes = rng.uniform(0.5, 1.0, lines) * np.where(np.arange(lines) % 2 == 0, 1.0, -1.0)
        for offset, count in enumerate(counts):
            if count == 0:
                continue
            k = int(k_all.min() + offset)
            here = filling["voxels"][k_all == k]
            r0, c0 = here[:, 1].mean() * dy, here[:, 2].mean() * dx
            weight = count / counts.max()
            dr, dc = rows - r0, cols - c0
            radius = np.hypot(dr, dc)
            falloff = 25.0 / (radius + 25.0)
            pattern = np.zeros((ny, nx), dtype=np.float32)
            for angle, amplitude in zip(angles, amplitudes):
                distance = np.abs(dc * np.sin(angle) - dr * np.cos(angle))
                pattern += amplitude * np.exp(-0.5 * (distance / width) ** 2)
            artefact[k] += weight * strength * pattern * falloff
            per_slice.setdefault(k, []).append((r0, c0, weight * strength))
    for k, centres in per_slice.items():
        for a in range(len(centres)):
            for b in range(a + 1, len(centres)):
                (ra, ca, sa), (rb, cb, sb) = centres[a], centres[b]
                length = max(np.hypot(rb - ra, cb - ca), 1e-3)
                t = np.clip(((rows - ra) * (rb - ra) + (cols - ca) * (cb - ca)) / length**2, 0, 1)
                distance = np.hypot(rows - ra - t * (rb - ra), cols - ca - t * (cb - ca))
                artefact[k] -= 0.8 * min(sa, sb) * np.exp(-0.5 * (distance / (2.5 * width)) ** 2)
    return artefact
