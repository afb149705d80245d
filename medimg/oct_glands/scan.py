"""Reading an OCT scan: canonical axes, 8-bit display range, room for one 80^3 block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.volumes import read_volume
from medimg.oct_glands.roi import BLOCK_SIZE, check_volume_fits


def as_uint8(volume: np.ndarray) -> np.ndarray:
    """The pipeline works on 8-bit log-display volumes; other dtypes are rescaled (0.1-99.9 percentiles)."""
    if volume.dtype == np.uint8:
        return volume
    low, high = np.percentile(volume[:: max(1, volume.shape[0] // 16)], [0.1, 99.9])
    console.warn(f"volume has dtype {volume.dtype}; rescaling {low:.4g}..{high:.4g} to 0..255")
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip((np.asarray(volume, dtype=np.float32) - low) * scale, 0, 255).astype(np.uint8)


def check_finite(volume: np.ndarray, name: str) -> None:
    """Refuse a float volume with NaN or infinite voxels: any rescaling of it would be wrong everywhere.

    Raises
    ------
    FormatError
        Naming how many voxels and where the first one is (Y, Z, X).
    """
    from medimg.common.errors import FormatError, expected

    if not np.issubdtype(volume.dtype, np.floating):
        return
    bad = 0
    first = None
    for start in range(0, volume.shape[0], 16):
        chunk = ~np.isfinite(volume[start : start + 16])
        count = int(np.count_nonzero(chunk))
        if count and first is None:
            y, z, x = np.argwhere(chunk)[0]
            first = (int(y) + start, int(z), int(x))
        bad += count
    if bad:
        raise FormatError(expected("finite voxel values", f"{bad} NaN or infinite voxel(s), the first at (y, z, x) = {first}, in '{name}'"))


def load_scan(path: Path, *, axes: str = "YZX", require_block: bool = True, mmap: bool = True) -> np.ndarray:
    """Read an OCT scan as a ``(Y, Z, X)`` uint8 volume (holding at least one 80^3 block if
    required); float volumes must be finite, and a constant volume is said on stderr.

    ``mmap=False`` reads it into memory of its own, writable: what in-place denoising needs
    (copying a memory-mapped scan would hold it twice, its file pages and the copy)."""
    volume = read_volume(path, axes=axes, mmap=mmap)
    if require_block:
        check_volume_fits(volume.shape, BLOCK_SIZE)
    check_finite(volume, Path(path).name)
    scan = as_uint8(volume)
    sample = scan[:: max(1, scan.shape[0] // 16)]
    if sample.min() == sample.max():
        console.warn(f"'{Path(path).name}' is constant ({int(sample.min())} everywhere in a sample of B-scans): no skin, no glands to find")
    return scan
