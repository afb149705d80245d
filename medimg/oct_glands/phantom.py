"""Synthetic fingertip OCT volume with sweat-duct ground truth.

No public fingertip OCT data set with gland annotations can be downloaded here, so the
tests, the demo and the default weights of the 3D U-Net all rest on this phantom. It is
built to fail the easy shortcuts the way real scans do: the ducts are about as bright as
the viable epidermis and the entrance line, and the speckle is fully developed, so a
global threshold cannot find them while a network that looks at shape can.

Geometry (1 voxel ~ 10 um laterally), top to bottom:

* air: the scanner's noise floor only;
* skin surface at depth ~20-30 with a gentle tilt/curvature and fingerprint ridges
  (height +-2 voxels, period ~40) that follow a whorl-like orientation field;
* a thin bright entrance line, then the stratum corneum (SC, ~31-35 voxels, dark),
  thicker under the ridges;
* the viable epidermis (bright, ~17 voxels) with dermal papillae at its lower edge;
* the dermis: exponentially fading, with dark vessels and bright collagen texture;
* helical sweat ducts rising from a few voxels inside the viable epidermis to pores on
  the ridge crests, bright inside the SC and nearly invisible below it.

Levels are designed on the display scale (0..255, mean of the log-compressed signal),
turned into linear reflectivity, multiplied by speckle, given an additive noise floor,
and log-compressed back, as an OCT scanner does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from medimg.common.errors import InputError, expected

__all__ = ["Phantom", "make_phantom", "MIN_DEPTH", "MIN_LATERAL"]

MIN_DEPTH = 96
"""Smallest Z that still holds air, SC, viable epidermis and a little dermis."""
MIN_LATERAL = 32
"""Smallest Y and X accepted."""

# Display mapping: 255 display units span this many decades of linear intensity
# (45 dB, a usual OCT display range). It also sets the speckle strength on screen:
# log10 of exponential speckle has a std of 0.557 decades, i.e. ~32 display units.
_DECADES = 4.5
# E[log10 X] for X ~ Exp(1): levels are shifted by it so that they are display means.
_LOG_SPECKLE_MEAN = -0.5772156649 / np.log(10.0)

# Mean display levels (before clipping) of each tissue.
_L_VOID = -80.0  # air reflects nothing; what shows there is the noise floor
_L_FLOOR = 5.0  # noise floor; after clipping at 0 the air mean is ~15
_L_ENTRANCE = 235.0
_L_SC = 74.0
_L_EPI = 155.0
_L_DERMIS = 118.0
_L_DUCT = 198.0  # soft edges bring the labelled voxels down to ~170-180
_L_DUCT_EPI = 8.0  # extra level of a duct inside the viable epidermis: nearly invisible
_L_VESSEL = 45.0
_L_COLLAGEN = 55.0
_DERMIS_DECAY = 1.0  # display units per voxel below the dermis top
_ATTENUATION = 0.12  # display units per voxel below the surface, all tissues

# Speckle grain: std of the Gaussian that smooths the complex field (Y, Z, X); the
# intensity autocorrelation FWHM is 2.355 * sigma, ~1.6-1.8 voxels.
_SPECKLE_SIGMA = (0.75, 0.65, 0.75)

# Sweat ducts.
_PORE_MIN_DIST = 26.0  # Poisson-disc radius; along a ridge this gives ~26-52 spacing
_PORE_SKIP = 0.1  # share of accepted pore sites left without a duct
_BORDER = 6  # no duct voxel closer than this to the X/Y border
_TILT_MAX = 2.0
_HELIX_R = (3.0, 4.0)
_TUBE_R = (2.0, 2.5)
_PITCH = (8.0, 10.0)
_INTO_EPI = (2.0, 6.0)
_MIN_DUCT_VOXELS = 300


@dataclass(frozen=True)
class Phantom:
    """A synthetic fingertip OCT volume and its ground truth.

    Attributes
    ----------
    volume : (Y, Z, X) ndarray of uint8
        Log-compressed OCT intensity. Y = B-scan index, Z = depth (0 = top, in air),
        X = A-scan index.
    glands : (Y, Z, X) ndarray of uint16
        Label volume: 0 = background, k = 1..n the visible part of duct k (from the
        skin surface down to the stratum corneum / viable epidermis boundary).
    pores : (n, 3) ndarray of float64
        Rows ``(x, y, z)``: where duct ``k = row + 1`` opens on the skin surface;
        ``z`` is the surface depth there.
    surface : (Y, X) ndarray of float32
        True skin-surface depth (sub-voxel) of every A-scan.
    """

    volume: np.ndarray
    glands: np.ndarray
    pores: np.ndarray
    surface: np.ndarray


def make_phantom(shape: tuple[int, int, int] = (160, 128, 160), *, seed: int = 0) -> Phantom:
    """Generate a synthetic fingertip OCT volume with sweat-duct labels.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(Y, Z, X)``; Z >= 96, Y >= 32, X >= 32. A 160 x 160 en-face area holds
        roughly 8-20 ducts; small areas may hold none.
    seed : int
        Seed of ``np.random.default_rng``; the same shape and seed give identical arrays.

    Returns
    -------
    Phantom
        ``volume`` (Y, Z, X) uint8, ``glands`` (Y, Z, X) uint16, ``pores`` (n, 3)
        float64 rows (x, y, z), ``surface`` (Y, X) float32.

    Raises
    ------
    InputError
        If ``shape`` is not three positive ints with Z >= 96, Y >= 32, X >= 32.
    """
    ny, nz, nx = _check_shape(shape)
    rng = np.random.default_rng(seed)

    ridge, phase = _fingerprint(rng, ny, nx)
    surface, sc_bottom, epi_bottom = _layers(rng, ridge, nz)

    level = _tissue_levels(nz, surface, sc_bottom, epi_bottom)
    _add_vessels(rng, level, epi_bottom)
    _add_collagen(rng, level, epi_bottom)

    pores_yx = _pick_pores(rng, phase, margin=_pore_margin())
    glands, duct_w, pores = _draw_ducts(rng, pores_yx, surface, sc_bottom, nz)
    _add_ducts(level, duct_w, surface, sc_bottom)

    volume = _acquire(rng, level)
    return Phantom(volume=volume, glands=glands, pores=pores, surface=surface.astype(np.float32))


def _check_shape(shape: object) -> tuple[int, int, int]:
    what = (
        f"a shape (Y, Z, X) of 3 positive ints with depth Z >= {MIN_DEPTH}, "
        f"Y >= {MIN_LATERAL} and X >= {MIN_LATERAL}"
    )
    try:
        dims = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(expected(what, shape)) from None
    if len(dims) != 3 or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims
    ):
        raise InputError(expected(what, shape))
    ny, nz, nx = (int(d) for d in dims)
    if nz < MIN_DEPTH or ny < MIN_LATERAL or nx < MIN_LATERAL:
        raise InputError(expected(what, shape))
    return ny, nz, nx


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma``."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    f -= f.mean()
    return f / max(float(f.std()), 1e-12)


def _fingerprint(rng: np.random.Generator, ny: int, nx: int):
    """Ridge profile (Y, X) in [-1, 1] (1 = crest) and ridge phase (Y, X) in cycles.

    Concentric ridges around a core point (whorl) that may lie outside the field of
    view, warped by a smooth distortion so they do not look machine-made.
    """
    period = rng.uniform(38.0, 42.0)
    size = float(max(ny, nx))
    ang = rng.uniform(0.0, 2.0 * np.pi)
    dist = rng.uniform(0.15, 1.1) * size
    cy = ny / 2.0 + dist * np.sin(ang)
    cx = nx / 2.0 + dist * np.cos(ang)
    aspect = rng.uniform(0.92, 1.08)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    r = np.hypot(xx - cx, (yy - cy) * aspect)
    # Smooth warp at two scales; its gradient stays < ~0.15 so the local period stays
    # within ~36-46 while the rings stop looking machine-made.
    warp = np.zeros_like(r)
    scales = ((150.0, 300.0, 3.0), (150.0, 300.0, 3.0), (70.0, 120.0, 1.5), (70.0, 120.0, 1.5))
    for wl_lo, wl_hi, amp_hi in scales:
        wl = rng.uniform(wl_lo, wl_hi)
        th = rng.uniform(0.0, 2.0 * np.pi)
        amp = rng.uniform(0.5, amp_hi)
        along = xx * np.cos(th) + yy * np.sin(th)
        warp += amp * np.sin(2 * np.pi * along / wl + rng.uniform(0, 2 * np.pi))
    phase = (r + warp) / period
    c = np.cos(2.0 * np.pi * phase)
    # Real ridges are broad and rounded, furrows narrow.
    ridge = 2.0 * ((1.0 + c) / 2.0) ** 0.6 - 1.0
    return ridge, phase


def _layers(rng: np.random.Generator, ridge: np.ndarray, nz: int):
    """Depth maps (Y, X): skin surface, SC lower boundary, viable-epidermis lower boundary."""
    ny, nx = ridge.shape
    size = float(max(ny, nx))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u = (xx - nx / 2.0) / size
    v = (yy - ny / 2.0) / size
    # Fingertip: a tilted, convex dome (deeper towards the edges) seen through the probe.
    base = rng.uniform(22.0, 27.0)
    tilt = (
        rng.uniform(-3.0, 3.0) * u
        + rng.uniform(-3.0, 3.0) * v
        + rng.uniform(2.0, 5.0) * (u * u + v * v)
    )
    height = rng.uniform(1.6, 2.2)
    surface = base + tilt - height * ridge + 0.6 * _smooth_noise(rng, (ny, nx), 12.0)

    sc_thick = rng.uniform(31.0, 35.0) + 3.0 * ridge + 1.0 * _smooth_noise(rng, (ny, nx), 8.0)
    sc_bottom = surface + sc_thick

    # Dermal papillae: rows of bumps under the ridges plus irregular ones.
    papillae = 1.5 * ridge + 2.0 * _smooth_noise(rng, (ny, nx), 3.0)
    epi_bottom = sc_bottom + rng.uniform(16.0, 19.0) + papillae
    # Small Z: never let the epidermis run out of the volume.
    epi_bottom = np.minimum(epi_bottom, nz - 6.0)
    return surface, sc_bottom, epi_bottom


def _ramp(t: np.ndarray) -> np.ndarray:
    """Partial-volume fraction of a voxel whose centre is ``t`` voxels past a boundary."""
    return np.clip(t + 0.5, 0.0, 1.0, out=t)


def _tissue_levels(nz: int, surface, sc_bottom, epi_bottom) -> np.ndarray:
    """Display-level volume (Y, Z, X) float32 of the layered skin without inclusions."""
    z = np.arange(nz, dtype=np.float32)[None, :, None]
    s = surface.astype(np.float32)[:, None, :]
    b = sc_bottom.astype(np.float32)[:, None, :]
    d = epi_bottom.astype(np.float32)[:, None, :]

    below_s = z - s
    level = np.full(below_s.shape, _L_SC, dtype=np.float32)
    # Boundaries are ~2 voxels wide: the axial resolution blurs them in real scans.
    level += (_L_EPI - _L_SC) * _ramp((z - b) / 2.0)
    dermis = (z - d).astype(np.float32)
    derm_level = _L_DERMIS - _DERMIS_DECAY * np.maximum(dermis, 0.0)
    level += (derm_level - _L_EPI) * _ramp(dermis / 2.0)
    level -= _ATTENUATION * np.maximum(below_s, 0.0)
    skin = _ramp(below_s.copy())
    level = _L_VOID + skin * (level - _L_VOID)
    # The entrance line: index step air -> skin, a strong specular reflection.
    level += (_L_ENTRANCE - _L_SC) * np.exp(-0.5 * ((below_s - 0.6) / 0.7) ** 2)
    return level


def _add_vessels(rng: np.random.Generator, level: np.ndarray, epi_bottom: np.ndarray) -> None:
    """Dark, gently winding, roughly horizontal tubes in the dermis."""
    ny, nz, nx = level.shape
    top = float(epi_bottom.max())
    n = int(round(ny * nx / 160.0**2 * rng.uniform(3.0, 6.0)))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    for _ in range(max(n, 1)):
        rad = rng.uniform(2.0, 4.0)
        wob_z = rng.uniform(0.5, 2.5)
        lo, hi = top + rad + wob_z + 3.0, nz - rad - wob_z - 2.0
        ang = rng.uniform(0.0, np.pi)
        off = rng.uniform(-0.45, 0.45) * max(ny, nx)
        wl1, wl2 = rng.uniform(80.0, 200.0, size=2)
        ph1, ph2 = rng.uniform(0.0, 2 * np.pi, size=2)
        amp = rng.uniform(2.0, 8.0)
        z0 = rng.uniform(lo, hi) if hi > lo else None
        if z0 is None:  # a shallow volume leaves no room below the papillae
            continue
        s = (xx - nx / 2.0) * np.cos(ang) + (yy - ny / 2.0) * np.sin(ang)
        n_ = -(xx - nx / 2.0) * np.sin(ang) + (yy - ny / 2.0) * np.cos(ang) - off
        dn = n_ - amp * np.sin(2 * np.pi * s / wl1 + ph1)
        zc = z0 + wob_z * np.sin(2 * np.pi * s / wl2 + ph2)
        z_lo = max(int(np.floor(z0 - wob_z - rad - 2)), 0)
        z_hi = min(int(np.ceil(z0 + wob_z + rad + 2)) + 1, nz)
        z = np.arange(z_lo, z_hi, dtype=np.float64)[None, :, None]
        dist = np.sqrt(dn[:, None, :] ** 2 + (z - zc[:, None, :]) ** 2)
        w = np.clip(rad + 0.5 - dist, 0.0, 1.0).astype(np.float32)
        slab = level[:, z_lo:z_hi, :]
        slab += w * (_L_VESSEL - slab)


def _add_collagen(rng: np.random.Generator, level: np.ndarray, epi_bottom: np.ndarray) -> None:
    """Bright, laterally elongated fibre bundles that grow denser deeper in the dermis."""
    ny, nz, nx = level.shape
    z0 = int(np.floor(epi_bottom.min()))
    if z0 >= nz:
        return
    f = ndimage.gaussian_filter(
        rng.standard_normal((ny, nz - z0, nx), dtype=np.float32), (2.5, 0.8, 2.5), mode="reflect"
    )
    f /= max(float(f.std()), 1e-12)
    w = np.clip((f - 1.0) / 0.8, 0.0, 1.0)
    z = np.arange(z0, nz, dtype=np.float32)[None, :, None]
    depth_in = np.clip((z - epi_bottom.astype(np.float32)[:, None, :]) / 8.0, 0.0, 1.0)
    level[:, z0:, :] += _L_COLLAGEN * w * depth_in


def _pore_margin() -> int:
    """Distance of a pore from the X/Y border that keeps every duct voxel >= _BORDER away."""
    return int(np.ceil(_BORDER + _HELIX_R[1] + _TUBE_R[1] + _TILT_MAX + 1.5))


def _pick_pores(rng: np.random.Generator, phase: np.ndarray, *, margin: int) -> np.ndarray:
    """Pore sites (n, 2) int rows (y, x): Poisson-disc samples on ridge crests."""
    ny, nx = phase.shape
    gy, gx = np.gradient(phase)
    grad = np.maximum(np.hypot(gy, gx), 1e-6)
    frac = phase - np.round(phase)  # crests at integer phase
    crest = np.abs(frac) / grad < 0.6
    inner = np.zeros_like(crest)
    inner[margin : ny - margin, margin : nx - margin] = True
    # Near the core the ridges curl too tightly for a duct to sit on one crest.
    crest &= inner & (phase > 1.0)
    cand = np.argwhere(crest)
    if len(cand) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    cand = cand[rng.permutation(len(cand))]
    taken = np.empty((len(cand), 2), dtype=np.float64)
    n = 0
    r2 = _PORE_MIN_DIST**2
    for p in cand:
        if n and np.min(np.sum((taken[:n] - p) ** 2, axis=1)) < r2:
            continue
        taken[n] = p
        n += 1
    sites = taken[:n].astype(np.int64)
    # Not every crest site holds an active gland.
    keep = rng.random(len(sites)) >= _PORE_SKIP
    sites = sites[keep]
    order = np.lexsort((sites[:, 1], sites[:, 0]))
    return sites[order]


def _draw_ducts(rng: np.random.Generator, sites: np.ndarray, surface, sc_bottom, nz: int):
    """Rasterise one helical duct per pore site.

    Returns the label volume (Y, Z, X) uint16, the soft duct occupancy (Y, Z, X)
    float32 in [0, 1] used for the image, and the pores (n, 3) float64 (x, y, z).
    """
    ny, nx = surface.shape
    glands = np.zeros((ny, nz, nx), dtype=np.uint16)
    duct_w = np.zeros((ny, nz, nx), dtype=np.float32)
    pores = []
    label = 0
    for y0, x0 in sites:
        tube = rng.uniform(*_TUBE_R)
        helix = rng.uniform(*_HELIX_R)
        pitch = rng.uniform(*_PITCH)
        hand = 1.0 if rng.random() < 0.85 else -1.0  # most ducts coil the same way
        phase0 = rng.uniform(0.0, 2 * np.pi)
        tilt = rng.normal(0.0, 1.0, size=2)
        tilt *= min(1.0, _TILT_MAX / max(float(np.hypot(*tilt)), 1e-9))
        z_top = float(surface[y0, x0])
        z_bot = float(sc_bottom[y0, x0]) + rng.uniform(*_INTO_EPI)

        # Centre line sampled finely enough (< 0.25 voxel of arc) that the nearest
        # sample is within ~0.01 voxel of the true distance to the curve.
        arc = np.hypot(1.0, 2 * np.pi * helix / pitch)
        zs = np.arange(z_top - 1.5, z_bot + 1e-9, 0.25 / arc)
        t = np.clip((zs - z_top) / (z_bot - z_top), 0.0, 1.0)
        theta = phase0 + hand * 2 * np.pi * (zs - z_top) / pitch
        cy = y0 + tilt[0] * t + helix * np.sin(theta)
        cx = x0 + tilt[1] * t + helix * np.cos(theta)
        pts = np.column_stack([cy, zs, cx])

        reach = tube + 1.0
        y_lo, y_hi = int(np.floor(cy.min() - reach)), int(np.ceil(cy.max() + reach)) + 1
        x_lo, x_hi = int(np.floor(cx.min() - reach)), int(np.ceil(cx.max() + reach)) + 1
        z_lo = max(int(np.floor(zs.min() - reach)), 0)
        z_hi = min(int(np.ceil(zs.max() + reach)) + 1, nz)
        gy, gz, gx = np.mgrid[y_lo:y_hi, z_lo:z_hi, x_lo:x_hi]
        grid = np.column_stack([gy.ravel(), gz.ravel(), gx.ravel()])
        dist, _ = cKDTree(pts).query(grid, distance_upper_bound=reach)
        dist = dist.reshape(gy.shape)

        box = (slice(y_lo, y_hi), slice(z_lo, z_hi), slice(x_lo, x_hi))
        s = surface[y_lo:y_hi, None, x_lo:x_hi]
        b = sc_bottom[y_lo:y_hi, None, x_lo:x_hi]
        # Label only what OCT shows: the part inside the stratum corneum.
        inside = (dist <= tube) & (gz >= s) & (gz < b)
        if np.count_nonzero(inside) < _MIN_DUCT_VOXELS:
            continue
        label += 1
        glands[box][inside] = label
        w = np.clip(tube + 0.5 - dist, 0.0, 1.0).astype(np.float32)
        np.maximum(duct_w[box], w, out=duct_w[box])
        pores.append((float(x0), float(y0), z_top))
    pores_arr = np.asarray(pores, dtype=np.float64).reshape(-1, 3)
    return glands, duct_w, pores_arr


def _add_ducts(level: np.ndarray, duct_w: np.ndarray, surface, sc_bottom) -> None:
    """Ducts replace the SC level with their own and barely lift the viable epidermis."""
    ny, nz, nx = level.shape
    z = np.arange(nz, dtype=np.float32)[None, :, None]
    s = surface.astype(np.float32)[:, None, :]
    b = sc_bottom.astype(np.float32)[:, None, :]
    in_sc = _ramp(z - s) * _ramp((b - z) / 2.0)
    level += duct_w * (in_sc * (_L_DUCT - level) + (1.0 - in_sc) * (z > s) * _L_DUCT_EPI)


def _acquire(rng: np.random.Generator, level: np.ndarray) -> np.ndarray:
    """Speckle, noise floor and log compression of a display-level volume -> uint8."""
    shape = level.shape
    # Fully developed speckle: |complex Gaussian field|^2 is exponential with unit mean;
    # smoothing the field before squaring sets the grain size, not the distribution.
    re = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), _SPECKLE_SIGMA)
    im = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), _SPECKLE_SIGMA)
    re *= re
    im *= im
    re += im
    del im
    speckle = re
    speckle /= speckle.mean(dtype=np.float64)

    scale = np.float32(_DECADES / 255.0)
    # Decades above the display floor; shift so that each level is a display mean.
    q = level * scale - np.float32(_LOG_SPECKLE_MEAN)
    inten = np.power(np.float32(10.0), q, out=q)
    inten *= speckle
    floor = rng.standard_exponential(shape, dtype=np.float32)
    floor *= np.float32(10.0 ** (_L_FLOOR * _DECADES / 255.0 - _LOG_SPECKLE_MEAN))
    inten += floor
    del floor
    disp = np.log10(inten, out=inten)
    disp *= np.float32(255.0 / _DECADES)
    np.clip(disp, 0.0, 255.0, out=disp)
    return np.rint(disp).astype(np.uint8)
