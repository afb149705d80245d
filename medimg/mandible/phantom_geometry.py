"""Geometry of the head-CT phantom: the voxel grid, the head and jaw frames, and shape primitives.

Anatomy is drawn in millimetres in a head frame (x to the patient's left, y posterior, z
superior; origin midway between the condyle centres) and in a jaw frame, the same frame rotated
about the condylar hinge axis by the mouth opening. Voxel ``(k, j, i)`` (slice, row, column)
has its centre at LPS ``origin + (i dx, j dy, k dz)``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from medimg.common.errors import InputError, expected

DEFAULT_SHAPE = (48, 256, 256)
"""(Z, Y, X) of :func:`make_head_ct` by default: 2.5 x 0.9 x 0.9 mm voxels."""
FIELD_OF_VIEW_MM = (120.0, 230.4, 230.4)
"""(slice, row, column) extent covered when no spacing is given: the lower head with some air around."""
MIN_SHAPE = (8, 32, 32)
"""Smallest (Z, Y, X) accepted: coarser grids lose the mandible's shape."""

# Where the field of view sits in the head frame (mm): from below the hyoid to the skull base,
# centred a little in front of the condyles in y.
_FOV_CENTRE = (0.0, -8.0, -40.0)  # x, y, z

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
UPPER_ARCH_OFFSET_MM = 1.6
"""The upper arch runs this far outside the lower one (overjet)."""


def check_shape(shape) -> tuple[int, int, int]:
    """``shape`` as three ints of at least :data:`MIN_SHAPE`; InputError otherwise."""
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


def check_spacing(spacing, shape) -> tuple[float, float, float]:
    """``spacing`` as three positive mm; ``None`` gives :data:`FIELD_OF_VIEW_MM` over ``shape``."""
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


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation (degrees) about z (yaw), x (pitch) and y (roll), applied in that order."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return ry @ rx @ rz


class Grid:
    """The voxel grid and the anatomical frames drawn into it.

    A frame is a linear map ``world = matrix @ p + offset`` from frame coordinates ``p`` (mm) to
    patient LPS mm.
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

    def affine(self) -> np.ndarray:
        """(4, 4) voxel ``(i, j, k, 1)`` -> LPS mm."""
        dz, dy, dx = self.spacing
        affine = np.eye(4)
        affine[0, 0], affine[1, 1], affine[2, 2] = dx, dy, dz
        affine[:3, 3] = self.origin
        return affine


def head_grid(params) -> Grid:
    """The grid of ``params`` (a HeadParams) with its ``head`` and ``jaw`` frames."""
    grid = Grid(params.shape, params.spacing, grid_origin(params.shape, params.spacing))
    head = rotation(params.yaw_deg, params.pitch_deg, params.roll_deg) @ np.diag(params.head_size * np.asarray(params.head_aspect))
    shift = (params.shift_x_mm, params.shift_y_mm, params.shift_z_mm)
    grid.add_frame("head", head, shift)
    a = np.radians(params.jaw_opening_deg)
    # Opening turns the jaw about the condylar (x) axis: the chin goes down and back.
    hinge = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    grid.add_frame("jaw", head @ hinge, shift)
    return grid


def ellipsoid(x, y, z, centre, semi) -> np.ndarray:
    """Points inside the axis-aligned ellipsoid (bool, broadcast shape of x, y, z)."""
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((z - centre[2]) / semi[2]) ** 2 <= 1.0


def ellipsoid_depth(x, y, z, centre, semi) -> np.ndarray:
    """Approximate depth (mm) inside an axis-aligned ellipsoid; negative outside."""
    ex, ey, ez = ((x - centre[0]) / semi[0], (y - centre[1]) / semi[1], (z - centre[2]) / semi[2])
    rho = np.sqrt(ex**2 + ey**2 + ez**2)
    gradient = np.sqrt((ex / semi[0]) ** 2 + (ey / semi[1]) ** 2 + (ez / semi[2]) ** 2) / np.maximum(rho, 1e-3)
    return (1.0 - rho) / np.maximum(gradient, 1e-3)


def segment_distance(x, y, z, a, b) -> np.ndarray:
    """Distance of each point to the segment from a to b."""
    a = np.asarray(a, dtype=np.float32)
    d = np.asarray(b, dtype=np.float32) - a
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d), 0.0, 1.0)
    return np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)


def occlusal_z(s) -> np.ndarray:
    """Height (mm) of the occlusal plane at arc length ``s``: the curve of Spee, rising backwards."""
    return -45.5 + 0.11 * np.abs(s)


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


class Arch:
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
        """(n, s) of frame points (float32 arrays of the broadcast shape of x, y)."""
        ix, iy = self.table.index(x, y)
        return self.n[ix, iy], self.s[ix, iy]

    def point(self, s: float, n: float = 0.0) -> np.ndarray:
        """(x, y) at arc length s and offset n."""
        k = int(np.clip(np.searchsorted(self.arc, s), 0, len(self.arc) - 1))
        return self.curve[k] + n * self.normal[k]


@functools.lru_cache(maxsize=1)
def dental_arch() -> Arch:
    """The arch of every head (its size and shape vary through the frame's scale)."""
    return Arch(_ARCH_POINTS)


class Ramus:
    """The ramus outline as a (y, z) table: inside, and the half thickness of the bony plate."""

    def __init__(self, z_scale: float, outline=_RAMUS_OUTLINE):
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
        """Half thickness (mm) of the plate at (y, z); negative outside the outline."""
        iy, iz = self.table.index(y, z)
        return self.half[iy, iz]
