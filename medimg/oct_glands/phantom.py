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

Randomness is data (see :mod:`medimg.common.families`): :class:`FingertipFamily` holds the
ranges, its ``sample`` draws a frozen :class:`FingertipParams` (one :class:`DuctParams` per
duct, one :class:`VesselParams` per vessel, integer seeds of the noise fields), and
:func:`render` paints a :class:`Phantom` from the parameters alone. :func:`make_phantom` is
the two in a row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from medimg.common.errors import InputError, expected
from medimg.common.families import Choice, Range, Uniform, draw, new_seed, sample_fields
from medimg.common.textures import smooth_noise

__all__ = [
    "DuctParams",
    "FingertipFamily",
    "FingertipParams",
    "MIN_DEPTH",
    "MIN_LATERAL",
    "Phantom",
    "VesselParams",
    "WarpParams",
    "make_phantom",
    "render",
]

MIN_DEPTH = 96
"""Smallest Z that still holds air, SC, viable epidermis and a little dermis."""
MIN_LATERAL = 32
"""Smallest Y and X accepted."""
DEFAULT_SHAPE = (160, 128, 160)

_TURN = 2.0 * np.pi
# E[log10 X] for X ~ Exp(1): levels are shifted by it so that they are display means.
_LOG_SPECKLE_MEAN = -0.5772156649 / np.log(10.0)
# Tissue boundaries are ~2 voxels wide: the axial resolution blurs them in real scans.
_BOUNDARY_WIDTH = 2.0
# The entrance line peaks just below the surface and is ~1.6 voxels wide (FWHM).
_ENTRANCE_OFFSET = 0.6
_ENTRANCE_SIGMA = 0.7
# Small Z: the viable epidermis ends at least this far above the bottom of the volume.
_EPIDERMIS_CLEARANCE = 6.0
# Collagen: where the unit-std texture exceeds 1, ramping to full brightness over 0.8 std,
# fading in over the first 8 voxels of dermis.
_COLLAGEN_THRESHOLD = 1.0
_COLLAGEN_RAMP = 0.8
_COLLAGEN_FADE_IN = 8.0
# Pores sit within this many voxels of a crest line, and not where the ridges curl too
# tightly around the core (phase < 1 cycle) for a duct to sit on one crest.
_CREST_HALF_WIDTH = 0.6
_MIN_CREST_PHASE = 1.0
# The duct's centre line starts this far above the surface so the pore opens cleanly.
_DUCT_OVERSHOOT = 1.5


@dataclass(frozen=True)
class WarpParams:
    """One plane-wave distortion of the ridge rings: ``amplitude * sin(2 pi s / wavelength + phase)``.

    ``s`` runs along the en-face direction ``direction`` (radians); lengths in voxels.
    """

    wavelength: float
    direction: float
    amplitude: float
    phase: float


@dataclass(frozen=True)
class VesselParams:
    """One dark dermal vessel: a tube along ``direction`` that meanders sideways and in depth.

    Lengths in voxels, angles in radians; ``offset`` is the signed distance of its axis from
    the en-face centre in units of ``max(Y, X)``; ``depth_fraction`` places its centre between
    just below the deepest papilla (0) and the bottom of the volume (1).
    """

    radius: float
    direction: float
    offset: float
    meander_amplitude: float
    meander_wavelength: float
    meander_phase: float
    depth_wobble: float
    wobble_wavelength: float
    wobble_phase: float
    depth_fraction: float


@dataclass(frozen=True)
class DuctParams:
    """One helical sweat duct, from ``depth_into_epidermis`` below the SC up to its pore.

    ``pore_y``, ``pore_x`` are voxel indices on a ridge crest; lengths in voxels, ``phase`` in
    radians; ``handedness`` +1 or -1 is the sense of the coil; ``tilt_y``, ``tilt_x`` is the
    lateral drift of the helix axis from the pore to the duct's bottom.
    """

    pore_y: int
    pore_x: int
    helix_radius: float
    tube_radius: float
    pitch: float
    handedness: int
    phase: float
    tilt_y: float
    tilt_x: float
    depth_into_epidermis: float


@dataclass(frozen=True)
class FingertipParams:
    """Everything random about one fingertip phantom; :func:`render` needs nothing else.

    Depths, thicknesses and lengths are voxels, angles radians, levels display units (0..255).
    Fields are documented where :class:`FingertipFamily` gives their ranges.
    """

    shape: tuple[int, int, int]
    # Fingerprint.
    ridge_period: float
    core_angle: float
    core_distance: float
    core_aspect: float
    warps: tuple[WarpParams, ...]
    # Skin layers.
    surface_depth: float
    surface_tilt_y: float
    surface_tilt_x: float
    surface_curvature: float
    ridge_height: float
    surface_roughness: float
    surface_roughness_sigma: float
    sc_thickness: float
    sc_ridge_thickening: float
    sc_roughness: float
    sc_roughness_sigma: float
    epidermis_thickness: float
    papillae_ridge_height: float
    papillae_roughness: float
    papillae_sigma: float
    # Display levels.
    level_air: float
    level_noise_floor: float
    level_entrance: float
    level_stratum_corneum: float
    level_epidermis: float
    level_dermis: float
    level_duct: float
    level_duct_in_epidermis: float
    level_vessel: float
    level_collagen: float
    dermis_decay: float
    attenuation: float
    display_decades: float
    # Inclusions.
    vessels: tuple[VesselParams, ...]
    collagen_sigma: tuple[float, float, float]
    ducts: tuple[DuctParams, ...]
    min_duct_voxels: int
    speckle_sigma: tuple[float, float, float]
    # Seeds of the renderer's own noise fields.
    layers_seed: int
    collagen_seed: int
    speckle_seed: int
    # Acquisition and display (defaults: the phantoms the shipped network was trained on).
    entrance_thickness: float = 0.0  # voxels of full-strength band below the entrance line's peak
    entrance_sigma: float = 0.7
    artefact_rows: tuple[float, ...] = ()  # mean display levels of the first image rows (fixed-pattern)
    display_gain: float = 1.0  # final display = gain * display + offset (a dark, low-range scanner)
    display_offset: float = 0.0


_NOISE_SEEDS = ("layers_seed", "collagen_seed", "speckle_seed")


def _largest(value: Range | float) -> float:
    """The largest value a family field can draw (a constant is its own largest value)."""
    if isinstance(value, Choice):
        return max(_largest(option) for option in value.options)
    return getattr(value, "high", value)


@dataclass(frozen=True)
class FingertipFamily:
    """Ranges of :class:`FingertipParams`; the defaults give the phantoms the shipped network was trained on.

    A field named like a :class:`FingertipParams` field is its range (a constant is used as it
    is). ``broad_warp_*`` and ``fine_warp_*`` are drawn ``warps_per_scale`` times each,
    ``vessel_*`` once per vessel and ``duct_*`` once per duct; ``pore_*`` place the ducts.
    """

    # Fingerprint: whorl core at ``core_distance * max(Y, X)`` from the centre (often outside
    # the field of view), rings squashed by ``core_aspect`` along Y and warped at two scales;
    # the warp gradient stays < ~0.15, so the local period stays within ~36-46.
    ridge_period: Range | float = Uniform(38.0, 42.0)
    core_angle: Range | float = Uniform(0.0, _TURN)
    core_distance: Range | float = Uniform(0.15, 1.1)
    core_aspect: Range | float = Uniform(0.92, 1.08)
    broad_warp_wavelength: Range | float = Uniform(150.0, 300.0)
    broad_warp_amplitude: Range | float = Uniform(0.5, 3.0)
    fine_warp_wavelength: Range | float = Uniform(70.0, 120.0)
    fine_warp_amplitude: Range | float = Uniform(0.5, 1.5)
    warps_per_scale: int = 2
    # Skin surface: a tilted convex dome (tilt and curvature per max(Y, X) of lateral
    # distance from the centre), minus the ridges, plus smooth roughness.
    surface_depth: Range | float = Uniform(22.0, 27.0)
    surface_tilt_y: Range | float = Uniform(-3.0, 3.0)
    surface_tilt_x: Range | float = Uniform(-3.0, 3.0)
    surface_curvature: Range | float = Uniform(2.0, 5.0)
    ridge_height: Range | float = Uniform(1.6, 2.2)
    surface_roughness: Range | float = 0.6
    surface_roughness_sigma: Range | float = 12.0
    # Stratum corneum, thicker under the ridges, and the viable epidermis below it.
    sc_thickness: Range | float = Uniform(31.0, 35.0)
    sc_ridge_thickening: Range | float = 3.0
    sc_roughness: Range | float = 1.0
    sc_roughness_sigma: Range | float = 8.0
    epidermis_thickness: Range | float = Uniform(16.0, 19.0)
    papillae_ridge_height: Range | float = 1.5
    papillae_roughness: Range | float = 2.0
    papillae_sigma: Range | float = 3.0
    # Mean display levels (before clipping). Air reflects nothing: what shows there is the
    # noise floor, ~15 after clipping at 0. Soft edges bring labelled duct voxels down to
    # ~170-180; a duct inside the viable epidermis is nearly invisible.
    level_air: Range | float = -80.0
    level_noise_floor: Range | float = 5.0
    level_entrance: Range | float = 235.0
    level_stratum_corneum: Range | float = 74.0
    level_epidermis: Range | float = 155.0
    level_dermis: Range | float = 118.0
    level_duct: Range | float = 198.0
    # When set, the duct level is drawn relative to the stratum corneum it runs through:
    # level_duct = level_stratum_corneum + duct_above_sc (``level_duct`` is then not used).
    duct_above_sc: Range | float | None = None
    level_duct_in_epidermis: Range | float = 8.0
    level_vessel: Range | float = 45.0
    level_collagen: Range | float = 55.0
    dermis_decay: Range | float = 1.0  # display units per voxel below the dermis top
    attenuation: Range | float = 0.12  # display units per voxel below the surface, all tissues
    # 255 display units span this many decades of intensity (45 dB, a usual OCT display
    # range). It also sets the speckle strength on screen: ~32 display units of std.
    display_decades: Range | float = 4.5
    # Dermis: vessels per 160 x 160 voxels of en-face area (at least one), collagen grain.
    vessel_density: Range | float = Uniform(3.0, 6.0)
    vessel_radius: Range | float = Uniform(2.0, 4.0)
    vessel_offset: Range | float = Uniform(-0.45, 0.45)
    vessel_meander_amplitude: Range | float = Uniform(2.0, 8.0)
    vessel_depth_wobble: Range | float = Uniform(0.5, 2.5)
    vessel_wavelength: Range | float = Uniform(80.0, 200.0)
    collagen_sigma: tuple[float, float, float] = (2.5, 0.8, 2.5)
    # Ducts: Poisson-disc pore sites on the crests (along a ridge ~26-52 apart), of which
    # ``pore_skip_share`` hold no active gland; no duct voxel nearer than ``duct_border``
    # to the X/Y border; ducts showing fewer than ``min_duct_voxels`` voxels are dropped.
    pore_spacing: float = 26.0
    pore_skip_share: Range | float = 0.1
    duct_border: int = 6
    duct_helix_radius: Range | float = Uniform(3.0, 4.0)
    duct_tube_radius: Range | float = Uniform(2.0, 2.5)
    duct_pitch: Range | float = Uniform(8.0, 10.0)
    duct_handedness: Range | int = Choice((1, -1), (0.85, 0.15))  # most ducts coil the same way
    duct_depth_into_epidermis: Range | float = Uniform(2.0, 6.0)
    duct_tilt_sigma: float = 1.0  # per axis, of a normal draw clipped to ``duct_tilt_max``
    duct_tilt_max: float = 2.0
    min_duct_voxels: int = 300
    # Speckle grain: std of the Gaussian that smooths the complex field (Y, Z, X); the
    # intensity autocorrelation FWHM is 2.355 * sigma, ~1.6-1.8 voxels.
    speckle_sigma: tuple[float, float, float] = (0.75, 0.65, 0.75)
    # Acquisition and display: a thick bright band under the surface (real stratum corneum),
    # bright fixed-pattern first rows, a dark low-range display. Constants here; ranges in SPEC_FAMILY.
    entrance_thickness: Range | float = 0.0
    entrance_sigma: Range | float = 0.7
    artefact_rows: Range | tuple[float, ...] = ()
    display_gain: Range | float = 1.0
    display_offset: Range | float = 0.0

    def sample(self, rng: np.random.Generator, shape: tuple[int, int, int] = DEFAULT_SHAPE) -> FingertipParams:
        """Draw one fingertip.

        Parameters
        ----------
        rng : numpy Generator, the only source of randomness
        shape : tuple of 3 int
            ``(Y, Z, X)``; Z >= 96, Y >= 32, X >= 32. The pores are placed for this shape.

        Raises
        ------
        InputError
            If ``shape`` is not three positive ints with Z >= 96, Y >= 32, X >= 32.
        """
        shape = _check_shape(shape)
        scales = [(self.broad_warp_wavelength, self.broad_warp_amplitude)] * self.warps_per_scale
        scales += [(self.fine_warp_wavelength, self.fine_warp_amplitude)] * self.warps_per_scale
        warps = tuple(_sample_warp(rng, wavelength, amplitude) for wavelength, amplitude in scales)
        vessels = self._sample_vessels(rng, shape)
        seeds = {name: new_seed(rng) for name in _NOISE_SEEDS}
        params = sample_fields(self, FingertipParams, rng, shape=shape, warps=warps, vessels=vessels, ducts=(), **seeds)
        if self.duct_above_sc is not None:
            params = dataclasses.replace(params, level_duct=params.level_stratum_corneum + draw(self.duct_above_sc, rng))
        # Pores go on the crests of this very fingerprint, so the ridges are drawn first.
        sites = self._sample_pore_sites(rng, _ridge_phase(params))
        return dataclasses.replace(params, ducts=tuple(self._sample_duct(rng, y, x) for y, x in sites))

    def pore_margin(self) -> int:
        """Distance of a pore from the X/Y border that keeps every duct voxel ``duct_border`` away."""
        reach = _largest(self.duct_helix_radius) + _largest(self.duct_tube_radius) + self.duct_tilt_max
        # 1.5: the soft half-voxel edge of the tube plus rounding of the pore to a voxel.
        return int(np.ceil(self.duct_border + reach + 1.5))

    def _sample_vessels(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[VesselParams, ...]:
        ny, _, nx = shape
        count = max(int(round(ny * nx / 160.0**2 * draw(self.vessel_density, rng))), 1)
        return tuple(
            VesselParams(
                radius=draw(self.vessel_radius, rng),
                direction=float(rng.uniform(0.0, np.pi)),
                offset=draw(self.vessel_offset, rng),
                meander_amplitude=draw(self.vessel_meander_amplitude, rng),
                meander_wavelength=draw(self.vessel_wavelength, rng),
                meander_phase=float(rng.uniform(0.0, _TURN)),
                depth_wobble=draw(self.vessel_depth_wobble, rng),
                wobble_wavelength=draw(self.vessel_wavelength, rng),
                wobble_phase=float(rng.uniform(0.0, _TURN)),
                depth_fraction=float(rng.random()),
            )
            for _ in range(count)
        )

    def _sample_pore_sites(self, rng: np.random.Generator, phase: np.ndarray) -> np.ndarray:
        """Pore sites (n, 2) int64 rows (y, x), sorted: Poisson-disc samples on ridge crests."""
        candidates = np.argwhere(_crest_mask(phase, margin=self.pore_margin()))
        candidates = candidates[rng.permutation(len(candidates))]
        taken = np.empty((len(candidates), 2), dtype=np.float64)
        n_taken = 0
        min_dist2 = float(self.pore_spacing) ** 2
        for point in candidates:
            if n_taken and np.min(np.sum((taken[:n_taken] - point) ** 2, axis=1)) < min_dist2:
                continue
            taken[n_taken] = point
            n_taken += 1
        sites = taken[:n_taken].astype(np.int64)
        # Not every crest site holds an active gland.
        skip_share = draw(self.pore_skip_share, rng)
        sites = sites[rng.random(len(sites)) >= skip_share]
        return sites[np.lexsort((sites[:, 1], sites[:, 0]))]

    def _sample_duct(self, rng: np.random.Generator, pore_y: int, pore_x: int) -> DuctParams:
        """The duct below the pore at voxel (``pore_y``, ``pore_x``)."""
        tube_radius = draw(self.duct_tube_radius, rng)
        helix_radius = draw(self.duct_helix_radius, rng)
        pitch = draw(self.duct_pitch, rng)
        handedness = int(draw(self.duct_handedness, rng))
        phase = float(rng.uniform(0.0, _TURN))
        tilt = rng.normal(0.0, self.duct_tilt_sigma, size=2)
        tilt *= min(1.0, self.duct_tilt_max / max(float(np.hypot(*tilt)), 1e-9))
        return DuctParams(
            pore_y=int(pore_y),
            pore_x=int(pore_x),
            helix_radius=helix_radius,
            tube_radius=tube_radius,
            pitch=pitch,
            handedness=handedness,
            phase=phase,
            tilt_y=float(tilt[0]),
            tilt_x=float(tilt[1]),
            depth_into_epidermis=draw(self.duct_depth_into_epidermis, rng),
        )


def _sample_warp(rng: np.random.Generator, wavelength: Range | float, amplitude: Range | float) -> WarpParams:
    """One warp of the ridge rings, at the scale that ``wavelength`` and ``amplitude`` give."""
    return WarpParams(
        wavelength=draw(wavelength, rng),
        direction=float(rng.uniform(0.0, _TURN)),
        amplitude=draw(amplitude, rng),
        phase=float(rng.uniform(0.0, _TURN)),
    )


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
    params : FingertipParams or None
        The parameters it was rendered from. ``params.ducts`` may hold more ducts than
        ``pores``: a duct showing fewer than ``params.min_duct_voxels`` voxels is not drawn.
    """

    volume: np.ndarray
    glands: np.ndarray
    pores: np.ndarray
    surface: np.ndarray
    params: FingertipParams | None = None


def make_phantom(
    shape: tuple[int, int, int] = DEFAULT_SHAPE, *, seed: int = 0, family: FingertipFamily = FingertipFamily()
) -> Phantom:
    """Generate a synthetic fingertip OCT volume with sweat-duct labels.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(Y, Z, X)``; Z >= 96, Y >= 32, X >= 32. A 160 x 160 en-face area holds
        roughly 8-20 ducts; small areas may hold none.
    seed : int
        Seed of ``np.random.default_rng``; the same shape, seed and family give identical arrays.
    family : FingertipFamily
        The ranges to draw from; the default is what the shipped network was trained on.

    Returns
    -------
    Phantom
        ``volume`` (Y, Z, X) uint8, ``glands`` (Y, Z, X) uint16, ``pores`` (n, 3)
        float64 rows (x, y, z), ``surface`` (Y, X) float32, ``params`` the FingertipParams drawn.

    Raises
    ------
    InputError
        If ``shape`` is not three positive ints with Z >= 96, Y >= 32, X >= 32.
    """
    return render(family.sample(np.random.default_rng(seed), shape))


def render(params: FingertipParams) -> Phantom:
    """Paint the phantom of ``params``: the same parameters give identical arrays.

    Raises
    ------
    InputError
        If ``params`` is not a FingertipParams or its shape is not usable.
    """
    if not isinstance(params, FingertipParams):
        raise InputError(expected("FingertipParams", type(params).__name__))
    ny, _, nx = _check_shape(params.shape)
    outside = [(d.pore_y, d.pore_x) for d in params.ducts if not (0 <= d.pore_y < ny and 0 <= d.pore_x < nx)]
    if outside:
        raise InputError(expected(f"duct pores (y, x) inside the {ny} x {nx} en-face area", outside))
    ridge = _ridge_profile(_ridge_phase(params))
    surface, sc_bottom, epi_bottom = _layer_depths(params, ridge)

    level = _tissue_levels(params, surface, sc_bottom, epi_bottom)
    _add_vessels(level, params, epi_bottom)
    _add_collagen(level, params, epi_bottom)
    duct_top = surface + _band_extent(params)
    glands, duct_weight, pores = _draw_ducts(params, surface, duct_top, sc_bottom)
    _add_ducts(level, params, duct_weight, duct_top, sc_bottom)

    volume = _acquire(level, params)
    return Phantom(volume=volume, glands=glands, pores=pores, surface=surface.astype(np.float32), params=params)


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


# ---- fingerprint and layers ---------------------------------------------------------------------


def _ridge_phase(params: FingertipParams) -> np.ndarray:
    """Ridge phase (Y, X) float64 in cycles, integer on a crest.

    Concentric rings around the whorl core, warped so they do not look machine-made.
    """
    ny, _, nx = params.shape
    reach = params.core_distance * float(max(ny, nx))
    core_y = ny / 2.0 + reach * np.sin(params.core_angle)
    core_x = nx / 2.0 + reach * np.cos(params.core_angle)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    radius = np.hypot(xx - core_x, (yy - core_y) * params.core_aspect)
    for warp in params.warps:
        along = xx * np.cos(warp.direction) + yy * np.sin(warp.direction)
        radius += warp.amplitude * np.sin(_TURN * along / warp.wavelength + warp.phase)
    return radius / params.ridge_period


def _ridge_profile(phase: np.ndarray) -> np.ndarray:
    """Ridge height (Y, X) float64 in [-1, 1], 1 on a crest: real ridges are broad and rounded, furrows narrow."""
    return 2.0 * ((1.0 + np.cos(_TURN * phase)) / 2.0) ** 0.6 - 1.0


def _crest_mask(phase: np.ndarray, *, margin: int) -> np.ndarray:
    """(Y, X) bool: near a crest line, at least ``margin`` from the border, away from the core."""
    ny, nx = phase.shape
    gy, gx = np.gradient(phase)
    gradient = np.maximum(np.hypot(gy, gx), 1e-6)
    distance_to_crest = np.abs(phase - np.round(phase)) / gradient
    inner = np.zeros(phase.shape, dtype=bool)
    inner[margin : ny - margin, margin : nx - margin] = True
    return (distance_to_crest < _CREST_HALF_WIDTH) & inner & (phase > _MIN_CREST_PHASE)


def _layer_depths(params: FingertipParams, ridge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth maps (Y, X) float64: skin surface, SC lower boundary, viable-epidermis lower boundary."""
    ny, nz, nx = params.shape
    size = float(max(ny, nx))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u = (xx - nx / 2.0) / size
    v = (yy - ny / 2.0) / size
    rng = np.random.default_rng(params.layers_seed)

    def roughness(amplitude: float, sigma: float) -> np.ndarray:
        return amplitude * smooth_noise(rng, (ny, nx), sigma, dtype=np.float64)

    dome = (
        params.surface_depth
        + params.surface_tilt_x * u
        + params.surface_tilt_y * v
        + params.surface_curvature * (u * u + v * v)
    )
    surface = dome - params.ridge_height * ridge + roughness(params.surface_roughness, params.surface_roughness_sigma)
    sc_thickness = params.sc_thickness + params.sc_ridge_thickening * ridge
    sc_bottom = surface + sc_thickness + roughness(params.sc_roughness, params.sc_roughness_sigma)
    # Dermal papillae: rows of bumps under the ridges plus irregular ones.
    papillae = params.papillae_ridge_height * ridge + roughness(params.papillae_roughness, params.papillae_sigma)
    epi_bottom = np.minimum(sc_bottom + params.epidermis_thickness + papillae, nz - _EPIDERMIS_CLEARANCE)
    return surface, sc_bottom, epi_bottom


def _ramp(t: np.ndarray) -> np.ndarray:
    """Partial-volume fraction of a voxel whose centre is ``t`` voxels past a boundary (in place)."""
    return np.clip(t + 0.5, 0.0, 1.0, out=t)


def _depth_columns(nz: int, *maps: np.ndarray) -> tuple[np.ndarray, ...]:
    """Depth index (1, Z, 1) and each (Y, X) map as (Y, 1, X), float32, to broadcast over a volume."""
    z = np.arange(nz, dtype=np.float32)[None, :, None]
    return (z, *(depth.astype(np.float32)[:, None, :] for depth in maps))


def _tissue_levels(params: FingertipParams, surface, sc_bottom, epi_bottom) -> np.ndarray:
    """Display-level volume (Y, Z, X) float32 of the layered skin without inclusions."""
    z, s, b, d = _depth_columns(params.shape[1], surface, sc_bottom, epi_bottom)
    below_surface = z - s
    level = np.full(below_surface.shape, params.level_stratum_corneum, dtype=np.float32)
    level += (params.level_epidermis - params.level_stratum_corneum) * _ramp((z - b) / _BOUNDARY_WIDTH)
    below_dermis_top = z - d
    dermis_level = params.level_dermis - params.dermis_decay * np.maximum(below_dermis_top, 0.0)
    level += (dermis_level - params.level_epidermis) * _ramp(below_dermis_top / _BOUNDARY_WIDTH)
    level -= params.attenuation * np.maximum(below_surface, 0.0)
    skin = _ramp(below_surface.copy())
    level = params.level_air + skin * (level - params.level_air)
    # The entrance line: index step air -> skin, a strong specular reflection.
    past_peak = below_surface - _ENTRANCE_OFFSET
    past_peak -= np.clip(past_peak, 0.0, params.entrance_thickness)  # a plateau of band, then the fall
    entrance = np.exp(-0.5 * (past_peak / params.entrance_sigma) ** 2)
    level += (params.level_entrance - params.level_stratum_corneum) * entrance
    return level.astype(np.float32, copy=False)


# ---- dermis -------------------------------------------------------------------------------------


def _add_vessels(level: np.ndarray, params: FingertipParams, epi_bottom: np.ndarray) -> None:
    """Dark, gently winding, roughly horizontal tubes in the dermis (in place)."""
    top = float(epi_bottom.max())
    for vessel in params.vessels:
        _add_vessel(level, vessel, top, params.level_vessel)


def _add_vessel(level: np.ndarray, vessel: VesselParams, top: float, vessel_level: float) -> None:
    """Paint one vessel (in place) below depth ``top``, the deepest papilla."""
    ny, nz, nx = level.shape
    reach_z = vessel.radius + vessel.depth_wobble
    lowest, highest = top + reach_z + 3.0, nz - reach_z - 2.0
    if highest <= lowest:  # a shallow volume leaves no room below the papillae
        return
    z0 = lowest + vessel.depth_fraction * (highest - lowest)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    cos, sin = np.cos(vessel.direction), np.sin(vessel.direction)
    along = (xx - nx / 2.0) * cos + (yy - ny / 2.0) * sin
    across = -(xx - nx / 2.0) * sin + (yy - ny / 2.0) * cos - vessel.offset * max(ny, nx)
    across -= vessel.meander_amplitude * np.sin(_TURN * along / vessel.meander_wavelength + vessel.meander_phase)
    z_centre = z0 + vessel.depth_wobble * np.sin(_TURN * along / vessel.wobble_wavelength + vessel.wobble_phase)
    z_lo = max(int(np.floor(z0 - reach_z - 2)), 0)
    z_hi = min(int(np.ceil(z0 + reach_z + 2)) + 1, nz)
    z = np.arange(z_lo, z_hi, dtype=np.float64)[None, :, None]
    dist = np.sqrt(across[:, None, :] ** 2 + (z - z_centre[:, None, :]) ** 2)
    weight = np.clip(vessel.radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    slab = level[:, z_lo:z_hi, :]
    slab += weight * (vessel_level - slab)


def _add_collagen(level: np.ndarray, params: FingertipParams, epi_bottom: np.ndarray) -> None:
    """Bright, laterally elongated fibre bundles that grow denser deeper in the dermis (in place)."""
    ny, nz, nx = level.shape
    z0 = int(np.floor(epi_bottom.min()))
    if z0 >= nz:
        return
    texture = smooth_noise(np.random.default_rng(params.collagen_seed), (ny, nz - z0, nx), params.collagen_sigma)
    fibres = np.clip((texture - _COLLAGEN_THRESHOLD) / _COLLAGEN_RAMP, 0.0, 1.0)
    z, d = _depth_columns(nz, epi_bottom)
    fade_in = np.clip((z[:, z0:] - d) / _COLLAGEN_FADE_IN, 0.0, 1.0)
    level[:, z0:, :] += params.level_collagen * fibres * fade_in


# ---- sweat ducts --------------------------------------------------------------------------------


def _band_extent(params: FingertipParams) -> float:
    """Depth below the surface where a thick bright band ends (0 without one).

    Real scans (SPEC section 5) show ducts from just under the bright band: inside it the band's
    brightness hides them, so they are neither drawn nor labelled there.
    """
    if params.entrance_thickness <= 0:
        return 0.0
    return _ENTRANCE_OFFSET + params.entrance_thickness + params.entrance_sigma


def _draw_ducts(params: FingertipParams, surface: np.ndarray, duct_top: np.ndarray, sc_bottom: np.ndarray):
    """Rasterise every duct of ``params`` that shows at least ``min_duct_voxels`` voxels
    between ``duct_top`` (the surface, or the bottom of a thick bright band) and ``sc_bottom``.

    Returns
    -------
    glands : (Y, Z, X) ndarray of uint16, labels 1..n in the order of ``params.ducts``
    duct_weight : (Y, Z, X) ndarray of float32 in [0, 1], soft duct occupancy for the image
    pores : (n, 3) ndarray of float64, rows (x, y, z)
    """
    glands = np.zeros(params.shape, dtype=np.uint16)
    duct_weight = np.zeros(params.shape, dtype=np.float32)
    pores = []
    for duct in params.ducts:
        z_top = float(surface[duct.pore_y, duct.pore_x])
        z_bottom = float(sc_bottom[duct.pore_y, duct.pore_x]) + duct.depth_into_epidermis
        box, gz, dist = _duct_distance(duct, z_top, z_bottom, params.shape)
        # Label only what OCT shows: the part inside the stratum corneum, below any bright band.
        s = duct_top[box[0], None, box[2]]
        b = sc_bottom[box[0], None, box[2]]
        inside = (dist <= duct.tube_radius) & (gz >= s) & (gz < b)
        if np.count_nonzero(inside) < params.min_duct_voxels:
            continue
        pores.append((float(duct.pore_x), float(duct.pore_y), z_top))
        glands[box][inside] = len(pores)
        weight = np.clip(duct.tube_radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)
        np.maximum(duct_weight[box], weight, out=duct_weight[box])
    return glands, duct_weight, np.asarray(pores, dtype=np.float64).reshape(-1, 3)


def _duct_centre_line(duct: DuctParams, z_top: float, z_bottom: float) -> np.ndarray:
    """Points (n, 3) float64 rows (y, z, x) along the helix, < 0.25 voxel of arc apart.

    That spacing puts the nearest sample within ~0.01 voxel of the true distance to the curve.
    """
    arc_per_depth = np.hypot(1.0, _TURN * duct.helix_radius / duct.pitch)
    zs = np.arange(z_top - _DUCT_OVERSHOOT, z_bottom + 1e-9, 0.25 / arc_per_depth)
    progress = np.clip((zs - z_top) / (z_bottom - z_top), 0.0, 1.0)
    theta = duct.phase + duct.handedness * _TURN * (zs - z_top) / duct.pitch
    cy = duct.pore_y + duct.tilt_y * progress + duct.helix_radius * np.sin(theta)
    cx = duct.pore_x + duct.tilt_x * progress + duct.helix_radius * np.cos(theta)
    return np.column_stack([cy, zs, cx])


def _duct_distance(duct: DuctParams, z_top: float, z_bottom: float, shape: tuple[int, int, int]):
    """Distance to the duct's centre line in the box around it.

    Returns the box (3 slices, Y Z X), the depth index of its voxels (Y, Z, X) int, and the
    distance (Y, Z, X) float64 (inf beyond ``tube_radius + 1``).
    """
    points = _duct_centre_line(duct, z_top, z_bottom)
    reach = duct.tube_radius + 1.0
    lo = np.maximum(np.floor(points.min(axis=0) - reach).astype(int), 0)
    hi = np.minimum(np.ceil(points.max(axis=0) + reach).astype(int) + 1, shape)
    hi = np.maximum(hi, lo)  # a duct wholly outside the volume (too shallow a volume) has an empty box
    gy, gz, gx = np.mgrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    grid = np.column_stack([gy.ravel(), gz.ravel(), gx.ravel()])
    dist, _ = cKDTree(points).query(grid, distance_upper_bound=reach)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return box, gz, dist.reshape(gy.shape)


def _add_ducts(level: np.ndarray, params: FingertipParams, duct_weight: np.ndarray, duct_top, sc_bottom) -> None:
    """Ducts replace the SC level with their own below ``duct_top`` and barely lift the viable epidermis (in place)."""
    z, s, b = _depth_columns(params.shape[1], duct_top, sc_bottom)
    in_sc = _ramp(z - s) * _ramp((b - z) / _BOUNDARY_WIDTH)
    level += duct_weight * (
        in_sc * (params.level_duct - level) + (1.0 - in_sc) * (z > s) * params.level_duct_in_epidermis
    )


# ---- acquisition --------------------------------------------------------------------------------


def _acquire(level: np.ndarray, params: FingertipParams) -> np.ndarray:
    """Speckle, noise floor and log compression of a display-level volume -> (Y, Z, X) uint8."""
    rng = np.random.default_rng(params.speckle_seed)
    # Fully developed speckle: |complex Gaussian field|^2 is exponential with unit mean;
    # smoothing the field before squaring sets the grain size, not the distribution.
    speckle = smooth_noise(rng, level.shape, params.speckle_sigma)
    speckle *= speckle
    imaginary = smooth_noise(rng, level.shape, params.speckle_sigma)
    imaginary *= imaginary
    speckle += imaginary
    del imaginary
    speckle /= speckle.mean(dtype=np.float64)

    decades_per_level = np.float32(params.display_decades / 255.0)
    # Decades above the display floor, shifted so that each level is a display mean.
    intensity = np.power(np.float32(10.0), level * decades_per_level - np.float32(_LOG_SPECKLE_MEAN))
    intensity *= speckle
    del speckle
    floor = rng.standard_exponential(level.shape, dtype=np.float32)
    floor *= np.float32(10.0 ** (params.level_noise_floor * params.display_decades / 255.0 - _LOG_SPECKLE_MEAN))
    intensity += floor
    del floor
    display = np.log10(intensity, out=intensity)
    display *= np.float32(255.0 / params.display_decades)
    if params.display_gain != 1.0 or params.display_offset != 0.0:
        display *= np.float32(params.display_gain)
        display += np.float32(params.display_offset)
    np.clip(display, 0.0, 255.0, out=display)
    if params.artefact_rows:
        rows = np.random.default_rng(params.speckle_seed + 1)
        for row, mean in enumerate(params.artefact_rows[: display.shape[1]]):
            display[:, row, :] = np.clip(rows.normal(mean, 0.25 * mean, (display.shape[0], display.shape[2])), 0.0, 255.0)
    return np.rint(display).astype(np.uint8)


#: Ranges that include the real scans of SPEC section 5: 400-600-deep B-scans with the surface
#: 35-57 % down and up to ~120 px of sag, bright fixed-pattern first rows (or none), a dark low-range
#: display (air ~3, a 9-18 px bright band ~39, the epidermis ~10 down to the junction 30-50 px
#: below the surface, dermis ~15 fading), ducts 18-25 px wide at 1.3-2x their surroundings, and
#: speckle whose std is about its mean. ``oct synth --style spec``; needs Z >= 400.
SPEC_FAMILY = FingertipFamily(
    surface_depth=Uniform(160.0, 230.0),
    surface_curvature=Uniform(30.0, 120.0),
    surface_tilt_y=Uniform(-10.0, 10.0),
    surface_tilt_x=Uniform(-20.0, 20.0),
    ridge_height=Uniform(1.0, 3.0),
    sc_thickness=Uniform(24.0, 42.0),
    epidermis_thickness=Uniform(15.0, 30.0),
    level_entrance=Uniform(125.0, 175.0),
    level_stratum_corneum=Uniform(28.0, 44.0),
    level_epidermis=Uniform(50.0, 75.0),
    level_dermis=Uniform(50.0, 70.0),
    dermis_decay=Uniform(0.4, 0.8),
    display_decades=Uniform(2.8, 4.0),
    attenuation=Uniform(0.0, 0.08),
    level_duct=Uniform(58.0, 115.0),
    level_duct_in_epidermis=Uniform(0.0, 8.0),
    level_vessel=Uniform(20.0, 40.0),
    level_collagen=Uniform(10.0, 30.0),
    pore_spacing=45.0,
    duct_helix_radius=Uniform(5.0, 8.0),
    duct_tube_radius=Uniform(3.0, 4.5),
    duct_pitch=Uniform(12.0, 20.0),
    duct_depth_into_epidermis=Uniform(2.0, 8.0),
    min_duct_voxels=500,
    entrance_thickness=Uniform(7.0, 15.0),
    entrance_sigma=Uniform(1.0, 2.0),
    artefact_rows=Choice(((), (44.0, 7.0, 4.0), (60.0, 10.0, 5.0)), (0.2, 0.5, 0.3)),
    display_gain=Uniform(0.2, 0.3),
    display_offset=Uniform(-3.5, -0.5),
)

#: What the shipped network is trained on (``oct synth --style wide``, Z >= 176): anatomy as wide
#: as SPEC_FAMILY's and the paper's together (layer thickness, duct size, bright band, curvature),
#: but brightness, display range, duct pitch and artefact rows *disjoint* from SPEC_FAMILY's, so
#: that SPEC_FAMILY is a held-out family of settings never trained on: every level here is brighter
#: (SC 44-85 against 28-44, epidermis 76-160 against 50-75, display gain 0.35-1.1 against 0.2-0.3;
#: the duct's contrast is drawn above the stratum corneum it runs through, 12-90 levels, the
#: faint half of the range as likely as the bright one; SPEC_FAMILY's ducts stand 14-87 above theirs),
#: ducts coil tighter (pitch 6-12 against 12-20) and the fixed-pattern rows have other levels.
#: The surface sits near the top so that the volumes stay small: the network sees only the
#: surface-anchored blocks, where depth in the B-scan does not show.
WIDE_FAMILY = FingertipFamily(
    surface_depth=Uniform(20.0, 45.0),
    surface_curvature=Uniform(0.0, 60.0),
    surface_tilt_y=Uniform(-10.0, 10.0),
    surface_tilt_x=Uniform(-15.0, 15.0),
    ridge_height=Uniform(1.0, 3.0),
    sc_thickness=Uniform(24.0, 42.0),
    epidermis_thickness=Uniform(15.0, 30.0),
    level_entrance=Uniform(175.0, 240.0),
    level_stratum_corneum=Uniform(44.0, 85.0),
    level_epidermis=Uniform(76.0, 160.0),
    level_dermis=Uniform(71.0, 125.0),
    dermis_decay=Uniform(0.3, 1.2),
    display_decades=Uniform(3.0, 5.0),
    attenuation=Uniform(0.0, 0.12),
    duct_above_sc=Uniform(12.0, 90.0),
    level_duct_in_epidermis=Uniform(0.0, 12.0),
    level_vessel=Uniform(25.0, 60.0),
    level_collagen=Uniform(20.0, 60.0),
    pore_spacing=38.0,
    duct_helix_radius=Uniform(3.0, 8.0),
    duct_tube_radius=Uniform(2.0, 4.5),
    duct_pitch=Uniform(6.0, 12.0),
    duct_depth_into_epidermis=Uniform(2.0, 8.0),
    min_duct_voxels=300,
    entrance_thickness=Uniform(0.0, 12.0),
    entrance_sigma=Uniform(0.7, 2.0),
    artefact_rows=Choice(((), (90.0, 20.0, 8.0), (35.0, 6.0)), (0.4, 0.3, 0.3)),
    display_gain=Uniform(0.35, 1.1),
    display_offset=Uniform(-5.0, 15.0),
)

#: WIDE_FAMILY whose helices coil either tighter (pitch 6-12) or looser (20-28) than SPEC_FAMILY's
#: 12-20, so that training shows helices whose turns stand apart, as the held-out family's do,
#: without drawing the held-out pitches themselves.
WIDE_GAP_FAMILY = dataclasses.replace(WIDE_FAMILY, duct_pitch=Choice((Uniform(6.0, 12.0), Uniform(20.0, 28.0))))

#: ``oct synth --style``: the family each style draws from, and the smallest depth it needs
STYLES = {"paper": FingertipFamily(), "spec": SPEC_FAMILY, "wide": WIDE_FAMILY, "wide-gap": WIDE_GAP_FAMILY}
STYLE_MIN_DEPTH = {"paper": MIN_DEPTH, "spec": 400, "wide": 176, "wide-gap": 176}
