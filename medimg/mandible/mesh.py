"""Mask -> closed triangle surface in patient millimetres, and binary STL files for it.

The mesh is for 3D printing and surgical planning, so it must be watertight (a printer slicer
rejects open shells), its normals must point out of the bone, and it must sit in the same patient
coordinates as the CT so that it overlays the scan in a viewer. Passing ``CTSeries.affine`` (LPS)
gives LPS millimetres, which is what 3D Slicer assumes for an STL file (and the header says so).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import atomic_path

# Taubin's lambda|mu smoothing: a shrinking Laplacian step followed by a slightly larger inflating
# one; together they low-pass the staircase of the voxel surface without the volume loss of plain
# Laplacian smoothing (pass-band k_PB = 1/lambda + 1/mu ~ 0.11).
TAUBIN_LAMBDA = 0.5
TAUBIN_MU = -0.53

_STL_HEADER_BYTES = 80
_STL_FACET = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])  # 50 bytes


def _labelled_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """26-connected labels of a bool mask and each label's voxel count (label 0, the background, counts 0)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels, sizes


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 26-connected component of a 3-D mask.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool
        Only the component with the most voxels (the first of equal ones); all False if ``mask`` is.
    """
    mask = np.asarray(mask, dtype=bool)
    labels, sizes = _labelled_components(mask)
    if len(sizes) <= 2:
        return mask.copy()
    return labels == int(np.argmax(sizes))


def major_components(mask: np.ndarray, *, fraction: float) -> np.ndarray:
    """Keep the 26-connected components of at least ``fraction`` times the largest one's voxels.

    mask : (Z, Y, X) ndarray of bool -> (Z, Y, X) ndarray of bool; ``fraction`` 1 keeps only the
    largest (and any of equal size).
    """
    mask = np.asarray(mask, dtype=bool)
    labels, sizes = _labelled_components(mask)
    if len(sizes) <= 2:
        return mask.copy()
    keep = sizes >= fraction * sizes.max()
    keep[0] = False
    return keep[labels]


# mask_to_mesh's keyword argument of the same name hides the function inside it.
_keep_largest_component = largest_component


def _unique_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges ``(E, 2)`` (smaller index first) and how many faces use each."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges.sort(axis=1)
    return np.unique(edges, axis=0, return_counts=True)


def is_closed(faces: np.ndarray) -> bool:
    """True when every undirected edge is shared by exactly two faces (a watertight surface).

    Parameters
    ----------
    faces : (F, 3) ndarray of int
    """
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        return False
    _, counts = _unique_edges(faces.astype(np.int64))
    return bool(np.all(counts == 2))


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed mesh, in the cube of the vertices' unit (mm^3).

    Divergence theorem: the sum over faces of the signed tetrahedra (origin, a, b, c). Positive
    when the faces are wound counter-clockwise seen from outside (normals pointing out).

    Parameters
    ----------
    vertices : (V, 3) ndarray of float
    faces : (F, 3) ndarray of int
    """
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6.0)


def _taubin_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Taubin lambda|mu smoothing with uniform weights over the vertex graph."""
    if iterations <= 0:
        return vertices
    from scipy import sparse

    edges, _ = _unique_edges(faces)
    n = len(vertices)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0  # an isolated vertex has no neighbours and stays where it is
    mean_of_neighbours = sparse.diags(1.0 / degree) @ adjacency
    smoothed = vertices.astype(np.float64)
    for _ in range(iterations):
        for factor in (TAUBIN_LAMBDA, TAUBIN_MU):
            smoothed = smoothed + factor * (mean_of_neighbours @ smoothed - smoothed)
    return smoothed


def mask_to_mesh(
    mask: np.ndarray,
    affine: np.ndarray,
    *,
    smoothing_iterations: int = 10,
    largest_component: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed, smoothed surface of a binary mask, in the affine's millimetres.

    Marching cubes at level 0.5 on the mask padded by one empty voxel on every side, so that a
    mask touching the volume's border still gives a closed surface; then Taubin smoothing (which
    removes the voxel staircase without shrinking the bone); then the voxel -> mm map.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
    affine : (4, 4) ndarray of float
        Voxel index ``(i=column, j=row, k=slice, 1)`` -> mm (e.g. ``CTSeries.affine``, LPS).
    smoothing_iterations : int
        Taubin lambda|mu passes; 0 keeps the raw marching-cubes surface.
    largest_component : bool
        Mesh only the largest 26-connected component (drops stray false-positive islands).

    Returns
    -------
    vertices : (V, 3) ndarray of float32, mm
    faces : (F, 3) ndarray of int64
        Wound so that normals point outward (positive :func:`mesh_volume`), whatever the
        handedness of ``affine``.
    """
    from skimage import measure

    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(expected("a (Z, Y, X) mask", f"shape {mask.shape}"))
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(expected("an invertible (4, 4) voxel -> mm affine", f"array of shape {affine.shape}"))
    mask = mask.astype(bool)
    if not mask.any():
        raise InputError(expected("a non-empty mask", "0 voxels"))
    if largest_component:
        mask = _keep_largest_component(mask)

    # Work on the mask's bounding box only: a head CT is ~100x larger than the mandible in it.
    occupied = np.nonzero(mask)
    start = np.array([axis.min() for axis in occupied])
    stop = np.array([axis.max() + 1 for axis in occupied])
    box = mask[tuple(slice(a, b) for a, b in zip(start, stop))]
    padded = np.pad(box, 1).astype(np.float32)
    # The classic Lorensen case table, not Lewiner's: on a binary mask Lewiner's resolution of
    # ambiguous cells joins voxels that touch along an edge into non-manifold edges (four faces
    # on one edge), which printers reject; Lorensen's table keeps every edge shared by two faces.
    vertices_zyx, faces, _, _ = measure.marching_cubes(padded, level=0.5, method="lorensen", allow_degenerate=False)
    faces = faces.astype(np.int64)
    vertices_zyx = vertices_zyx.astype(np.float64) + (start - 1.0)  # back to indices of ``mask``
    vertices_zyx = _taubin_smooth(vertices_zyx, faces, int(smoothing_iterations))

    # (k, j, i) array order -> (i, j, k) affine order, then to mm.
    ijk = vertices_zyx[:, ::-1]
    vertices_mm = ijk @ affine[:3, :3].T + affine[:3, 3]

    # Both the axis reversal and a left-handed affine (det < 0) mirror the surface and
    # so turn its winding inside out. Rather than track each sign, check the result: a closed
    # surface around a solid has a positive volume exactly when its normals point out.
    if mesh_volume(vertices_mm, faces) < 0:
        faces = faces[:, ::-1].copy()
    return vertices_mm.astype(np.float32), np.ascontiguousarray(faces, dtype=np.int64)


def facet_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals ``(F, 3)`` float32 from the right-hand rule; zero for degenerate faces."""
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    np.divide(normals, lengths, out=normals, where=lengths > 0)
    normals[lengths[:, 0] == 0] = 0.0
    return normals.astype(np.float32)


def _stl_header(space: str | None) -> bytes:
    # Must not start with "solid", or readers take the binary file for ASCII STL.
    text = "medimg surface mesh; units: mm"
    if space:
        text += f"; SPACE={space}"  # 3D Slicer reads this tag to place the model (LPS if absent)
    return text.encode("ascii")[:_STL_HEADER_BYTES].ljust(_STL_HEADER_BYTES, b" ")


def write_stl(path: Path | str, vertices: np.ndarray, faces: np.ndarray, *, inputs: Iterable[Path] = (), space: str | None = "LPS") -> Path:
    """Write a binary STL file atomically.

    Parameters
    ----------
    path : Path
    vertices : (V, 3) ndarray of float, mm
    faces : (F, 3) ndarray of int
    inputs : Paths the output must not overwrite
    space : str or None
        Patient coordinate system of ``vertices`` written in the header as ``SPACE=...``
        ("LPS" for meshes built with ``CTSeries.affine``, "RAS" with ``affine_ras``).

    Returns
    -------
    path : Path

    Layout: 80-byte header, uint32 facet count, then per facet a float32 normal, three float32
    vertices and a uint16 attribute (0), little-endian: ``84 + 50 * F`` bytes.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(expected("vertices (V, 3) and faces (F, 3)", f"shapes {vertices.shape} and {faces.shape}"))
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(expected(f"face indices in [0, {len(vertices)})", f"indices from {faces.min()} to {faces.max()}"))
    facets = np.zeros(len(faces), dtype=_STL_FACET)
    facets["normal"] = facet_normals(vertices, faces)
    facets["vertices"] = np.asarray(vertices, dtype=np.float32)[faces]
    path = Path(path)
    with atomic_path(path, inputs=inputs) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(_stl_header(space))
            handle.write(struct.pack("<I", len(faces)))
            handle.write(facets.tobytes())
    return path


def read_stl(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary STL file, merging corners with identical coordinates into shared vertices.

    Returns
    -------
    vertices : (V, 3) ndarray of float32
    faces : (F, 3) ndarray of int64
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(expected("an existing STL file", f"'{path}'"))
    data = path.read_bytes()
    if len(data) < _STL_HEADER_BYTES + 4:
        raise FormatError(expected("a binary STL file (at least 84 bytes)", f"'{path.name}' of {len(data)} bytes"))
    (count,) = struct.unpack_from("<I", data, _STL_HEADER_BYTES)
    size = _STL_HEADER_BYTES + 4 + count * _STL_FACET.itemsize
    if len(data) != size:
        raise FormatError(expected(f"a binary STL of {size} bytes for {count} facets", f"'{path.name}' of {len(data)} bytes"))
    facets = np.frombuffer(data, dtype=_STL_FACET, count=count, offset=_STL_HEADER_BYTES + 4)
    corners = facets["vertices"].reshape(-1, 3)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    return vertices.astype(np.float32), inverse.reshape(-1, 3).astype(np.int64)
