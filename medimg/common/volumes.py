"""Volumes on disk: multi-page TIFF read memory-mapped when possible, written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common.axes import CANONICAL_AXES, to_canonical
from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import atomic_path

_BIGTIFF_BYTES = 2**31


def _require_file(path: Path) -> None:
    if not path.exists():
        raise InputError(expected("an existing file", f"'{path}' which does not exist"))
    if path.is_dir():
        raise InputError(expected("a file", f"'{path}' which is a folder"))


def read_volume(path: Path | str, *, axes: str = CANONICAL_AXES, mmap: bool = True) -> np.ndarray:
    """Read a 3-D TIFF stack as a canonical ``(Y, Z, X)`` array.

    Returns
    -------
    volume : (Y, Z, X) ndarray
        Memory-mapped (read-only) when the file is uncompressed and contiguous, else loaded.
    """
    import tifffile

    path = Path(path)
    _require_file(path)
    try:
        array = None
        if mmap:
            try:
                array = tifffile.memmap(path, mode="r")
            except (ValueError, OSError):
                array = None  # compressed or non-contiguous pages cannot be mapped
        if array is None:
            array = tifffile.imread(path)
    except Exception as error:  # tifffile raises several types for a damaged file
        raise FormatError(expected("a readable TIFF volume", f"'{path.name}' ({type(error).__name__}: {error})")) from None
    array = np.squeeze(array) if array.ndim > 3 else array
    if array.ndim == 2:
        raise FormatError(expected("a 3-D volume (a multi-page TIFF)", f"a single 2-D image of shape {array.shape} in '{path.name}'"))
    if array.ndim != 3:
        raise FormatError(expected("a 3-D volume", f"an array of shape {array.shape} in '{path.name}'"))
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise FormatError(expected("integer or float voxels", f"dtype {array.dtype} in '{path.name}'"))
    return to_canonical(array, axes)


def read_volume_metadata(path: Path | str) -> dict:
    """The JSON metadata medimg stored in a TIFF it wrote (empty when there is none)."""
    import tifffile

    path = Path(path)
    _require_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            metadata = tif.shaped_metadata
    except Exception as error:
        raise FormatError(expected("a readable TIFF file", f"'{path.name}' ({type(error).__name__})")) from None
    return dict(metadata[0]) if metadata else {}


def write_volume(
    path: Path | str,
    volume: np.ndarray,
    *,
    metadata: dict | None = None,
    compression: str | None = None,
    inputs: Iterable[Path] = (),
) -> Path:
    """Write an array as a multi-page TIFF (one page per index of the first axis), atomically.

    ``metadata`` must be JSON-serialisable; it is stored in the TIFF description and returned by
    :func:`read_volume_metadata`.
    """
    import tifffile

    path = Path(path)
    volume = np.ascontiguousarray(volume)
    json.dumps(metadata or {})  # fail before touching the disk if metadata is not serialisable
    with atomic_path(path, inputs=inputs) as temporary:
        tifffile.imwrite(
            temporary,
            volume,
            metadata=dict(metadata or {}),
            compression=compression,
            photometric="minisblack",
            bigtiff=volume.nbytes >= _BIGTIFF_BYTES,
        )
    return path


def write_volume_pages(
    path: Path | str,
    pages: Iterable[np.ndarray],
    *,
    shape: tuple[int, ...],
    dtype: np.dtype | type,
    metadata: dict | None = None,
    inputs: Iterable[Path] = (),
) -> Path:
    """:func:`write_volume` of a volume given one page (index of the first axis) at a time, so that
    it never has to exist whole; the file is the same. ``pages`` yields ``shape[0]`` arrays of
    ``shape[1:]``."""
    import tifffile

    path = Path(path)
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    json.dumps(metadata or {})

    def checked() -> Iterable[np.ndarray]:
        for index, page in enumerate(pages):
            if page.shape != shape[1:] or index >= shape[0]:
                raise InputError(expected(f"{shape[0]} pages of shape {shape[1:]}", f"page {index} of shape {page.shape}"))
            yield np.ascontiguousarray(page, dtype=dtype)

    with atomic_path(path, inputs=inputs) as temporary:
        tifffile.imwrite(temporary, checked(), shape=shape, dtype=dtype, metadata=dict(metadata or {}), photometric="minisblack",
                         bigtiff=int(np.prod(shape)) * dtype.itemsize >= _BIGTIFF_BYTES)
    return path
