"""From tissue labels to the HU a scanner shows: tissue levels and textures, the scanner's blur
and noise, and the streaks that metal fillings cast.

Bone gets a cortical shell over cancellous bone by distance to its surface, teeth enamel over
dentin; soft tissue a faint smooth texture. Every random texture comes from a seed of the
:class:`~medimg.mandible.phantom_family.HeadParams`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from medimg.common.textures import smooth_noise
from medimg.mandible.phantom_family import FillingParams, HeadParams
from medimg.mandible.phantom_labels import LABELS
from medimg.mandible.phantom_teeth import PaintedFilling

_L = LABELS
# Mean HU of the tissues whose levels do not vary between heads.
_BASE_HU = {
    "air": -1000.0, "skin": 30.0, "fat": -100.0, "soft": 45.0, "tongue": 70.0, "gland": -15.0,
    "brain": 35.0, "csf": 8.0, "disc": 85.0, "lower_pulp": 60.0, "upper_pulp": 60.0,
}
_TEXTURED = ("skin", "fat", "soft", "tongue", "gland", "brain")
_SOFT_TEXTURE_HU = 7.0  # amplitude of the smooth texture of soft tissue
_SOFT_TEXTURE_VOXELS = (1.0, 8.0, 8.0)  # correlation length: broad patches in-plane
_TRABECULAR_HU = 110.0  # std of the trabecular pattern of cancellous bone
_TRABECULAR_VOXELS = (0.5, 0.9, 0.9)
_CORTEX_MM = 2.2
_ENAMEL_MM = 1.3
_CROWN_OVER_DENTIN_HU = 60.0  # crown dentin is a little denser than root dentin
_PSF_SIGMA_VOXELS = (0.4, 0.6, 0.6)  # (slice, row, column): the scanner's blur
_SHARPEN_SIGMA_VOXELS = 1.5  # the blur a bone kernel's edge enhancement subtracts
_BEAM_HARDENING_MM = 15.0  # reach of the shading around dense bone
_DENSE_LABELS = ("bone", "mandible", "lower_crown", "lower_root", "upper_crown", "upper_root", "lower_metal", "upper_metal")
_STREAK_REFERENCE_HU = 6000.0  # a filling of this HU casts streaks of ``streak_strength_hu``
_STREAK_FALLOFF_MM = 25.0  # streak brightness halves this far from the filling
_DARK_BAND = 0.8  # depth of the band between two fillings, relative to the weaker one's streaks


def _depth_inside(region_mask: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from each voxel centre inside the mask to the mask's surface (0 outside).

    region_mask : (Z, Y, X) ndarray of bool -> (Z, Y, X) ndarray of float32
    """
    depth = np.zeros(region_mask.shape, dtype=np.float32)
    if not np.any(region_mask):
        return depth
    found = ndimage.find_objects(region_mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found)
    inner = ndimage.distance_transform_edt(region_mask[box], sampling=spacing).astype(np.float32)
    # The surface lies half a voxel outside the outermost centres.
    depth[box] = np.where(region_mask[box], inner - 0.5 * min(spacing), 0.0)
    return depth


def _soft_tissue_hu(labels: np.ndarray, params: HeadParams) -> np.ndarray:
    lut = np.zeros(256, dtype=np.float32)
    for name, value in _BASE_HU.items():
        lut[_L[name]] = value
    hu = lut[labels]
    textured = np.isin(labels, [_L[name] for name in _TEXTURED])
    texture = smooth_noise(np.random.default_rng(params.soft_texture_seed), labels.shape, _SOFT_TEXTURE_VOXELS, coarse=True)
    hu[textured] += _SOFT_TEXTURE_HU * texture[textured]
    return hu


def _paint_bone_hu(hu: np.ndarray, labels: np.ndarray, params: HeadParams) -> None:
    """Cortical shell and trabecular core of the mandible and of the other bone, in place."""
    trabecular = smooth_noise(np.random.default_rng(params.trabecular_seed), labels.shape, _TRABECULAR_VOXELS)
    bones = (
        ("mandible", ("mandible", "lower_root", "lower_pulp"), params.mandible_cortical_hu, params.mandible_cancellous_hu),
        ("bone", ("bone", "upper_root", "upper_pulp"), params.bone_cortical_hu, params.bone_cancellous_hu),
    )
    for name, solid, cortical, cancellous in bones:
        where = labels == _L[name]
        # The sockets of the roots are bone too: depth is measured to the surface of bone plus roots.
        depth = _depth_inside(np.isin(labels, [_L[part] for part in solid]), params.spacing)
        shell = where & (depth < _CORTEX_MM)
        core = where & ~shell
        hu[core] = cancellous + _TRABECULAR_HU * trabecular[core]
        hu[shell] = cortical + 0.5 * _TRABECULAR_HU * trabecular[shell]


def _paint_teeth_hu(hu: np.ndarray, labels: np.ndarray, params: HeadParams) -> None:
    """Enamel over the crown's surface, dentin inside and in the root, in place."""
    for prefix in ("lower", "upper"):
        tooth = np.isin(labels, [_L[f"{prefix}_{part}"] for part in ("crown", "root", "pulp", "metal")])
        depth = _depth_inside(tooth, params.spacing)
        crown = labels == _L[f"{prefix}_crown"]
        hu[crown] = params.dentin_hu + _CROWN_OVER_DENTIN_HU
        hu[crown & (depth < _ENAMEL_MM)] = params.enamel_hu
        hu[labels == _L[f"{prefix}_root"]] = params.dentin_hu


def saturate_fillings(hu: np.ndarray, fillings: Sequence[PaintedFilling]) -> None:
    """Fillings at their HU at least, in place: real fillings are larger than any blur."""
    for filling in fillings:
        k, j, i = filling.voxels.T
        hu[k, j, i] = np.maximum(hu[k, j, i], filling.params.hu)


def tissue_hu(labels: np.ndarray, params: HeadParams, fillings: Sequence[PaintedFilling]) -> np.ndarray:
    """HU of the labelled tissues, before blur and noise.

    labels : (Z, Y, X) ndarray of uint8 -> (Z, Y, X) ndarray of float32
    """
    hu = _soft_tissue_hu(labels, params)
    _paint_bone_hu(hu, labels, params)
    _paint_teeth_hu(hu, labels, params)
    for filling in fillings:
        k, j, i = filling.voxels.T
        hu[k, j, i] = filling.params.hu
    return hu


def scanner_blur(hu: np.ndarray, params: HeadParams | None = None) -> np.ndarray:
    """The scanner's point spread, slice profile and kernel: (Z, Y, X) float32 -> (Z, Y, X) float32.

    A sharp (bone) kernel enhances edges: ``hu + sharpen * (hu - blur(hu, 1.5 voxels))`` in-plane.
    """
    if params is None:
        return ndimage.gaussian_filter(hu, _PSF_SIGMA_VOXELS, mode="nearest")
    sigma = (params.slice_profile_voxels, params.kernel_blur_voxels, params.kernel_blur_voxels)
    blurred = ndimage.gaussian_filter(hu, sigma, mode="nearest")
    if params.kernel_sharpen > 0:
        halo = ndimage.gaussian_filter(blurred, (0.0, _SHARPEN_SIGMA_VOXELS, _SHARPEN_SIGMA_VOXELS), mode="nearest")
        blurred += np.float32(params.kernel_sharpen) * (blurred - halo)
    return blurred


def scanner_noise(params: HeadParams) -> np.ndarray:
    """Noise correlated in-plane, of std ``noise_hu``: (Z, Y, X) ndarray of float32."""
    correlation = params.noise_correlation_voxels
    sigma = (0.0, correlation, correlation)
    return np.float32(params.noise_hu) * smooth_noise(np.random.default_rng(params.noise_seed), params.shape, sigma)


def beam_hardening(labels: np.ndarray, params: HeadParams) -> np.ndarray:
    """Shading between dense bones, to add: (Z, Y, X) ndarray of float32 HU, 0 in air.

    Rays through much bone come out harder and read low: soft tissue is darkened in proportion to
    the bone density around it (the share of bone within about 15 mm in the slice), by up to
    ``beam_hardening_hu``.
    """
    if params.beam_hardening_hu <= 0:
        return np.zeros(params.shape, np.float32)
    dense = np.isin(labels, [_L[name] for name in _DENSE_LABELS]).astype(np.float32)
    sigma = _BEAM_HARDENING_MM / float(params.spacing[1])
    density = ndimage.gaussian_filter(dense, (0.0, sigma, sigma), mode="constant")
    peak = float(density.max())
    shading = -np.float32(params.beam_hardening_hu) * density / np.float32(max(peak, 1e-6))
    shading[labels == _L["air"]] = 0.0
    return shading.astype(np.float32)


def metal_streaks(shape, spacing, fillings: Sequence[PaintedFilling]) -> np.ndarray:
    """Streak artefacts of the fillings: (Z, Y, X) ndarray of float32 HU to add.

    Alternating bright and dark lines through each filling, in its slices, and a dark band between
    two fillings in one slice (photon starvation along that path).
    """
    artefact = np.zeros(shape, dtype=np.float32)
    rows, cols = _plane_mm(shape, spacing)
    width = max(0.9, 0.7 * min(spacing[1], spacing[2]))
    sources: dict[int, list[tuple[float, float, float]]] = {}
    for filling in fillings:
        for k, row, col, strength in _streak_sources(filling, spacing):
            artefact[k] += strength * _radial_lines(rows - row, cols - col, filling.params, width)
            sources.setdefault(k, []).append((row, col, strength))
    for k, in_slice in sources.items():
        for a in range(len(in_slice)):
            for b in range(a + 1, len(in_slice)):
                artefact[k] -= _dark_band(rows, cols, in_slice[a], in_slice[b], width)
    return artefact


def _plane_mm(shape, spacing) -> tuple[np.ndarray, np.ndarray]:
    """(Y, 1) row and (1, X) column positions in mm, float32."""
    return (np.arange(shape[1], dtype=np.float32) * spacing[1])[:, None], (np.arange(shape[2], dtype=np.float32) * spacing[2])[None, :]


def _streak_sources(filling: PaintedFilling, spacing):
    """(slice, row mm, column mm, strength HU) of each slice the filling is in, weighted by its
    cross-section there relative to the largest one."""
    k_all = filling.voxels[:, 0]
    counts = np.bincount(k_all - k_all.min())
    strength = filling.params.hu / _STREAK_REFERENCE_HU * filling.params.streak_strength_hu
    for offset in np.flatnonzero(counts):
        k = int(k_all.min() + offset)
        here = filling.voxels[k_all == k]
        yield k, here[:, 1].mean() * spacing[1], here[:, 2].mean() * spacing[2], strength * counts[offset] / counts.max()


def _radial_lines(d_row: np.ndarray, d_col: np.ndarray, filling: FillingParams, width: float) -> np.ndarray:
    """(Y, X) float32: lines through the origin of ``d_row, d_col`` at the filling's streak angles,
    alternately bright and dark, fading with distance."""
    falloff = _STREAK_FALLOFF_MM / (np.hypot(d_row, d_col) + _STREAK_FALLOFF_MM)
    pattern = np.zeros(np.broadcast_shapes(d_row.shape, d_col.shape), dtype=np.float32)
    for index, (angle, amplitude) in enumerate(zip(filling.streak_angles_rad, filling.streak_amplitudes)):
        distance = np.abs(d_col * np.sin(angle) - d_row * np.cos(angle))
        pattern += (amplitude if index % 2 == 0 else -amplitude) * np.exp(-0.5 * (distance / width) ** 2)
    return pattern * falloff


def _dark_band(rows, cols, first, second, width: float) -> np.ndarray:
    """(Y, X) float32 HU to subtract along the path between two fillings of one slice."""
    (ra, ca, sa), (rb, cb, sb) = first, second
    length = max(np.hypot(rb - ra, cb - ca), 1e-3)
    t = np.clip(((rows - ra) * (rb - ra) + (cols - ca) * (cb - ca)) / length**2, 0, 1)
    distance = np.hypot(rows - ra - t * (rb - ra), cols - ca - t * (cb - ca))
    return _DARK_BAND * min(sa, sb) * np.exp(-0.5 * (distance / (2.5 * width)) ** 2)
