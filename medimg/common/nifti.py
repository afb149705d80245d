"""NIfTI-1 volumes in the same voxel order and world space as the CT series they belong to.

Array order and affine follow :mod:`medimg.common.dicom_series`: the volume is ``(Z, Y, X)``
(slice, row, column) and the affine maps the voxel index written ``(i=column, j=row, k=slice, 1)``
to RAS millimetres (``CTSeries.affine_ras``). NIfTI indexes its data ``[i, j, k]``, so the file
holds ``volume.transpose(2, 1, 0)``; with the affine stored as both sform and qform (code 1,
scanner-based), 3D Slicer, ITK-SNAP and nibabel put a mask exactly over the CT it came from.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common.errors import FormatError, InputError, OutputError, expected
from medimg.common.outputs import write_bytes_atomic

# NIfTI xform code 1: "scanner-based anatomical coordinates" -- the DICOM patient space.
SCANNER_XFORM_CODE = 1

# Types NIfTI-1 stores natively; anything else would be cast silently by nibabel.
_STORABLE = tuple(np.dtype(t) for t in ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"))


def _compressed(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return True
    if name.endswith(".nii"):
        return False
    raise OutputError(expected("a NIfTI path ending in .nii or .nii.gz", f"'{path}'"))


def _checked_affine(affine) -> np.ndarray:
    try:
        matrix = np.asarray(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(expected("a (4, 4) affine of numbers", type(affine).__name__)) from None
    if matrix.shape != (4, 4):
        raise InputError(expected("a (4, 4) affine", f"shape {matrix.shape}"))
    if not np.all(np.isfinite(matrix)):
        raise InputError(expected("a finite affine", "NaN or infinite entries"))
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise InputError(expected("an affine whose last row is [0, 0, 0, 1]", matrix[3].tolist()))
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise InputError(expected("an invertible affine (non-zero voxel sizes)", "a singular 3x3 part"))
    return matrix


def write_nifti(path: Path | str, volume: np.ndarray, affine_ras, *, inputs: Iterable[Path] = ()) -> Path:
    """Write a ``(Z, Y, X)`` volume as NIfTI-1 with its affine as sform and qform.

    Parameters
    ----------
    path : path ending in ``.nii`` or ``.nii.gz`` (gzip-compressed)
    volume : (Z, Y, X) ndarray of bool or a NIfTI-storable integer/float type
        Slice, row, column order, as :func:`medimg.common.dicom_series.read_ct_series` gives.
        The dtype is kept; bool is stored as uint8 (0/1).
    affine_ras : (4, 4) array of float
        Voxel index ``(i=column, j=row, k=slice, 1)`` -> RAS mm (``CTSeries.affine_ras``).
    inputs : paths the file must not overwrite

    Returns
    -------
    Path
        ``path``, written atomically (complete or absent); the same arguments give the same bytes.

    Raises
    ------
    InputError
        The volume is not 3-D or has a type NIfTI cannot hold, or the affine is not a usable (4, 4) matrix.
    OutputError
        The name does not end in ``.nii`` / ``.nii.gz``, or the path is one of ``inputs``.
    """
    import nibabel as nib

    path = Path(path)
    compressed = _compressed(path)
    array = np.asarray(volume)
    if array.ndim != 3:
        raise InputError(expected("a 3-D (Z, Y, X) volume", f"an array of shape {array.shape}"))
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype.newbyteorder("=") not in _STORABLE:
        raise InputError(expected("integer, float or bool voxels", f"dtype {array.dtype}"))
    matrix = _checked_affine(affine_ras)

    image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), matrix)
    # A rotation with a shear cannot be a qform; nibabel then stores the nearest rigid one, which
    # still opens in the right place in viewers that only read the qform.
    image.set_sform(matrix, code=SCANNER_XFORM_CODE)
    image.set_qform(matrix, code=SCANNER_XFORM_CODE)
    image.header.set_xyzt_units(xyz="mm")
    data = image.to_bytes()
    if compressed:
        # mtime 0 and no stored name: the file depends on the data only.
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:
            stream.write(data)
        data = buffer.getvalue()
    return write_bytes_atomic(path, data, inputs=inputs)


def read_nifti(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3-D NIfTI file back into ``(Z, Y, X)`` order with its RAS affine.

    Parameters
    ----------
    path : a ``.nii`` or ``.nii.gz`` file (NIfTI-1 or NIfTI-2)

    Returns
    -------
    volume : (Z, Y, X) ndarray
        The stored type (scaled to float when the header sets a slope); a trailing singleton
        dimension (``X, Y, Z, 1``) is dropped.
    affine_ras : (4, 4) ndarray of float64
        Voxel ``(i=column, j=row, k=slice, 1)`` -> RAS mm: the sform when set, else the qform,
        else nibabel's fallback from the voxel sizes.

    Raises
    ------
    InputError
        The path does not exist or is a folder.
    FormatError
        The file is not readable NIfTI, or it does not hold a 3-D volume.
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing NIfTI file", f"'{path}' which does not exist"))
    if path.is_dir():
        raise InputError(expected("a NIfTI file", f"'{path}' which is a folder"))
    try:
        image = nib.load(path, mmap=False)
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise FormatError(expected("a NIfTI image", f"{type(image).__name__} in '{path.name}'"))
        data = np.asanyarray(image.dataobj)
        affine = np.asarray(image.affine, dtype=np.float64)
    except FormatError:
        raise
    except Exception as error:  # nibabel, gzip and zlib raise many types for a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FormatError(expected("a readable NIfTI file (.nii or .nii.gz)", f"'{path.name}' ({reason})")) from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise FormatError(expected("a 3-D NIfTI volume", f"shape {data.shape} in '{path.name}'"))
    return np.ascontiguousarray(data.transpose(2, 1, 0)), affine
