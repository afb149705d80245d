"""Stage 1: denoise every B-scan with one sigma, by a registered denoiser (default: BM3D).

The volume's uint8 grey levels go to the unit range of the working domain
(:mod:`~medimg.oct_glands.intensity`), each B-scan through the denoiser, and back. The sigma, unless
given, is measured in the air above the skin (:func:`medimg.oct_glands.noise.estimate_noise_sigma`)
or in the tissue speckle below the surface (:func:`medimg.oct_glands.noise.tissue_noise_sigma`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from medimg.common.denoisers import DEFAULT_DENOISER, build_denoiser, denoise_stack, denoiser_options
from medimg.common.errors import InputError, expected
from medimg.oct_glands.intensity import check_domain, from_unit, to_unit
from medimg.oct_glands.noise import DEFAULT_NOISE_REGION


def denoise_volume(
    volume: np.ndarray,
    *,
    sigma: float | None = None,
    domain: str = "log",
    stage: str = "full",
    denoiser: str = DEFAULT_DENOISER,
    noise_region: str = DEFAULT_NOISE_REGION,
    rows: str = "surface",
    device: str = "auto",
    in_place: bool = False,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> np.ndarray:
    """Denoise each B-scan with one sigma.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    sigma : noise standard deviation in grey levels of the working domain; None = measured in
        ``noise_region``: ``"air"`` above the skin (default) or ``"tissue"`` below the surface
        (:mod:`medimg.oct_glands.noise`).
    domain : "log" (input already log-compressed) or "linear" (log-transform, denoise, map back).
    stage : BM3D's "full" (hard thresholding + Wiener) or "hard" (hard thresholding only, ~2x faster).
    denoiser : a name in :data:`medimg.common.denoisers.DENOISERS`
    rows : ``"surface"`` (default) or ``"tissue"``: only the rows the later stages read. ``"tissue"``: from 8 above the
        highest surface of each B-scan to 8 below its deepest surface plus the 80-voxel ROI
        (:func:`tissue_rows`); the air above and the deep dermis below keep their grey levels.
        On a real 500-deep B-scan that is about half the work. ``"surface"``: a band of the
        same rows that follows the smoothed surface column by column (:func:`surface_band`), so
        that the sag of a curved fingertip costs no rows (100 rows against 118 on SPEC-like
        phantoms, about half on a real scan's 100 px of sag; the same Dice). ``"all"``: every row.
    device : where a denoiser that runs on torch runs (``auto``: CUDA when available). A batched
        denoiser takes several B-scans at once, over the union of their rows.
    in_place : write into ``volume`` when it is writable (each batch of B-scans is read before it
        is overwritten), sparing a second volume in memory (1.3 GB for a real 1400 x 500 x 1800
        scan); a read-only (memory-mapped) scan is copied as without it

    Returns
    -------
    denoised : (Y, Z, X) ndarray of uint8
    """
    from medimg.oct_glands.noise import check_noise_region, measure_noise_sigma

    check_noise_region(noise_region)
    check_rows(rows)

    check_domain(domain)
    method = build_denoiser(denoiser, **vars(denoiser_options(denoiser, stage=stage, device=device)))
    if volume.dtype != np.uint8:
        raise InputError(expected("a uint8 volume", f"dtype {volume.dtype}"))
    if sigma is None:
        sigma = measure_noise_sigma(volume, region=noise_region, domain=domain)
    if not sigma > 0:
        raise InputError(expected("a noise sigma > 0", sigma))
    surface = None
    if rows in ("tissue", "surface"):
        from medimg.oct_glands.surface import detect_surface

        surface = detect_surface(volume)
    denoised = volume if in_place and volume.flags.writeable else volume.copy()
    batch = max(1, int(getattr(method, "batch_size", 1)))
    n_z = volume.shape[1]
    for first in progress(range(0, volume.shape[0], batch)):
        last = min(first + batch, volume.shape[0])
        if rows == "surface":
            tops, height = surface_band(surface[first:last], n_z)
            index = (tops[None, :] + np.arange(height)[:, None])[None]  # (1, height, X) rows of each column
            stack = to_unit(np.take_along_axis(volume[first:last], index, axis=1), domain)
            cleaned = from_unit(denoise_stack(method, stack, sigma / 255.0), domain)
            np.put_along_axis(denoised[first:last], np.broadcast_to(index, cleaned.shape), cleaned, axis=1)
            continue
        if rows == "tissue":
            spans = tissue_rows(surface[first:last], n_z)
            top, bottom = int(spans[:, 0].min()), int(spans[:, 1].max())
        else:
            top, bottom = 0, n_z
        stack = to_unit(volume[first:last, top:bottom], domain)
        denoised[first:last, top:bottom] = from_unit(denoise_stack(method, stack, sigma / 255.0), domain)
    return denoised


DENOISE_ROWS = ("tissue", "surface", "all")  # the rows the ROIs read, a band that follows the surface, or every row


def check_rows(rows: str) -> None:
    from medimg.common.errors import OptionValueError

    if rows not in DENOISE_ROWS:
        raise OptionValueError(expected(f"--denoise-rows among {', '.join(DENOISE_ROWS)}", repr(rows)))


# Rows of context beyond what the ROIs read: the surface may move a little after denoising. 8 rather
# than 16 saves 12 % of BM3D on a real-size B-scan; on the held-out spec seeds 401-403 Dice moved by
# 0.0004 (band tiles, one pass) and not at all on the default path (2026-11-29).
_ROW_MARGIN = 8
_MIN_ROWS = 32  # BM3D needs a few of its patches' heights


def tissue_rows(surface: np.ndarray, n_z: int, *, depth: int = 80, margin: int = _ROW_MARGIN) -> np.ndarray:
    """The rows of each B-scan that the surface-anchored ROIs read, with a margin.

    Parameters
    ----------
    surface : (Y, X) ndarray of int, surface depth of each A-scan (of the raw scan)
    n_z : int, rows per B-scan
    depth : int, voxels read below the surface (the ROI size)

    Returns
    -------
    spans : (Y, 2) ndarray of int64, rows ``[top, bottom)`` of each B-scan
    """
    surface = np.asarray(surface, dtype=np.int64)
    top = np.clip(surface.min(axis=1) - margin, 0, n_z)
    bottom = np.clip(surface.max(axis=1) + depth + margin, 0, n_z)
    short = bottom - top < _MIN_ROWS
    bottom[short] = np.minimum(top[short] + _MIN_ROWS, n_z)
    top[short] = np.maximum(bottom[short] - _MIN_ROWS, 0)
    return np.stack([top, bottom], axis=1)


# Columns of the Gaussian that smooths the band's top: wide enough that an 8 x 8 BM3D block sees
# a shift of at most about a row across it, narrow enough to follow a fingertip's sag.
_BAND_SMOOTHING = 16.0


def surface_band(
    surface: np.ndarray, n_z: int, *, depth: int = 80, margin: int = _ROW_MARGIN, smoothing: float = _BAND_SMOOTHING
) -> tuple[np.ndarray, int]:
    """A band of constant height that follows the surface: what the ROIs read below it, in every column.

    The band's top is the shallowest surface of each column smoothed along X, lowered until every
    column's band starts ``margin`` rows above its shallowest surface and ends ``margin`` rows
    below its deepest surface plus ``depth``. Gathering each column from its own top flattens the
    B-scans, so a curved fingertip costs as many rows as a flat one. Where that band would be
    taller than one rectangle of rows (the surface jumps), every column takes the rectangle.

    Parameters
    ----------
    surface : (B, X) ndarray of int, surface depth of each A-scan of B B-scans (of the raw scan)
    n_z : int, rows per B-scan

    Returns
    -------
    tops : (X,) ndarray of int64, first row of the band in each column (0 <= top <= n_z - height)
    height : int, rows in the band (at least 32, at most ``n_z``)
    """
    from scipy.ndimage import gaussian_filter1d

    surface = np.asarray(surface, dtype=np.int64)
    shallowest, deepest = surface.min(axis=0), surface.max(axis=0)
    # Odd reflection continues the surface's slope past the B-scan's edges, where a curved fingertip is steepest.
    pad = int(4 * smoothing) + 1
    extended = np.pad(shallowest.astype(np.float64), pad, mode="reflect", reflect_type="odd")
    smooth = gaussian_filter1d(extended, smoothing, mode="nearest")[pad:-pad]
    tops = np.rint(smooth).astype(np.int64) - margin
    tops -= max(int(np.max(tops + margin - shallowest)), 0)
    height = int(np.max(deepest + depth + margin - tops))
    rectangle_top = int(shallowest.min()) - margin
    rectangle_height = int(deepest.max()) + depth + margin - rectangle_top
    if rectangle_height <= height:  # a surface the smoothing cannot follow (a step, a stray column): one rectangle
        tops, height = np.full_like(tops, rectangle_top), rectangle_height
    height = min(max(height, _MIN_ROWS), n_z)
    return np.clip(tops, 0, n_z - height), height
