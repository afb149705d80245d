"""OCT grey levels <-> the unit range the denoiser works in.

Scanner exports are usually log-compressed already (``domain="log"``), where speckle is additive
and one sigma fits the whole B-scan; linear-intensity exports (``domain="linear"``) are
log-transformed first and mapped back after.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import OptionValueError, expected

DOMAINS = ("log", "linear")
_LOG_SPAN = np.log1p(255.0)


def check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise OptionValueError(expected(f"a domain among {', '.join(DOMAINS)}", repr(domain)))


def to_unit(bscan: np.ndarray, domain: str) -> np.ndarray:
    """uint8 grey levels -> float32 in [0, 1], log-compressed."""
    values = bscan.astype(np.float32)
    return values / np.float32(255.0) if domain == "log" else (np.log1p(values) / np.float32(_LOG_SPAN)).astype(np.float32)


def from_unit(unit: np.ndarray, domain: str) -> np.ndarray:
    """Inverse of :func:`to_unit`, rounded and clipped to uint8."""
    unit = np.asarray(unit, dtype=np.float64)
    values = unit * 255.0 if domain == "log" else np.expm1(unit * _LOG_SPAN)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# ---- network input scaling ------------------------------------------------------------------------

#: Percentiles of the tissue's grey levels that scale the network input: low, centre, high
TISSUE_PERCENTILES = (5.0, 50.0, 95.0)
_MIN_SPREAD = 1.0  # grey levels: a constant scan is not blown up into noise
_MAX_TISSUE_COLUMNS = 40_000


def tissue_levels(volume: np.ndarray, surface: np.ndarray, *, depth: int) -> tuple[float, float, float]:
    """Robust grey levels of the tissue the network looks at.

    Percentiles :data:`TISSUE_PERCENTILES` of the voxels from the surface down ``depth`` voxels,
    over up to 40,000 evenly spread A-scans. A dark real scan (tissue 10-40) and a bright phantom
    (tissue 60-200) differ in these levels, and :func:`scale_to_levels` takes the difference out.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    surface : (Y, X) ndarray of int, surface depth of each A-scan
    depth : int, voxels below the surface that count as tissue

    Returns
    -------
    levels : (low, centre, high) floats, grey levels
    """
    n_y, n_z, n_x = volume.shape
    step = max(1, int(np.ceil(np.sqrt(n_y * n_x / _MAX_TISSUE_COLUMNS))))
    ys, xs = np.meshgrid(np.arange(0, n_y, step), np.arange(0, n_x, step), indexing="ij")
    zs = np.clip(np.asarray(surface)[ys, xs][..., None].astype(np.int64) + np.arange(depth), 0, n_z - 1)
    values = volume[ys[..., None], zs, xs[..., None]]
    low, centre, high = np.percentile(values, TISSUE_PERCENTILES)
    return float(low), float(centre), float(high)


def levels_of_blocks(blocks: np.ndarray) -> tuple[float, float, float]:
    """:func:`tissue_levels` of surface-anchored blocks alone, when the volume is not at hand.

    Parameters
    ----------
    blocks : (B, S, S, S) ndarray of uint8 (every second voxel along each axis is read)
    """
    low, centre, high = np.percentile(np.asarray(blocks)[:, ::2, ::2, ::2], TISSUE_PERCENTILES)
    return float(low), float(centre), float(high)


def scale_to_levels(values: np.ndarray, levels: tuple[float, float, float]) -> np.ndarray:
    """Grey levels -> ``(value - centre) / (high - low)``, float32: tissue centred on 0, its spread about 1."""
    low, centre, high = (float(level) for level in levels)
    spread = np.float32(max(high - low, _MIN_SPREAD))
    scaled = np.asarray(values, dtype=np.float32) - np.float32(centre)
    scaled /= spread
    return scaled
