"""Synthetic head CT of the lower head with a ground-truth mandible mask.

No mandible CT with masks can be downloaded here, so the tests, the demo and the default
weights rest on this phantom. It is built to defeat the shortcut the paper warns about
(mandible and other facial bone have the same HU, so no threshold isolates the mandible):
the upper and lower teeth touch or nearly touch in occlusion, each condyle sits 1-2 mm under
its glenoid fossa, and the maxilla, skull base and cervical spine are one bony mass larger
than the mandible. The largest connected component above a bone threshold is therefore that
mass, sometimes with the mandible attached, never the mandible alone
(see :func:`medimg.mandible.synth.threshold_baseline`).

Axial slices run from below the chin (hyoid, C4-C5) up to the skull base; ``(Z, Y, X)`` =
(slice from inferior to superior, row from anterior to posterior, column from the patient's
right to left), the order of a head-first-supine axial series read by
:func:`medimg.common.dicom_series.read_ct_series`.

Randomness is data (see :mod:`medimg.common.families`): :class:`HeadFamily` holds the ranges,
``HeadFamily().sample(rng, shape=...)`` draws a :class:`HeadParams`, and :func:`render` turns
those into the volume and its truth, deterministically. :func:`make_head_ct` does both from a
seed. Rendering paints tissue labels at voxel centres (that sampling *is* the ground truth;
painters in ``phantom_head``, ``phantom_bone``, ``phantom_jaw`` and ``phantom_teeth``), turns
them into HU (``phantom_hu``: cortical shell over cancellous bone, enamel over dentin, textured
soft tissue), blurs them by the scanner's point spread, and adds correlated Gaussian noise and,
with fillings, streak artefacts.

The mask is the mandible *with its teeth* (roots, crowns, pulp and fillings of the lower
teeth): the paper labels "the mandible region" slice by slice in Labelme, and at the
occlusal plane a mask without teeth would have to cut through tooth-bone contacts that CT
cannot resolve. Upper teeth, maxilla, hyoid and everything else are background.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medimg.common.errors import InputError, expected
from medimg.mandible import phantom_bone, phantom_head, phantom_hu, phantom_jaw, phantom_teeth
from medimg.mandible.phantom_family import FillingParams, HeadFamily, HeadParams, ToothParams, ToothShape
from medimg.mandible.phantom_geometry import (
    DEFAULT_SHAPE,
    FIELD_OF_VIEW_MM,
    MIN_SHAPE,
    check_shape,
    check_spacing,
    grid_origin,
    head_grid,
)
from medimg.mandible.phantom_labels import LABELS, MANDIBLE_LABELS, Canvas, keep_one_mandible

__all__ = [
    "HeadPhantom",
    "HeadFamily",
    "HeadParams",
    "ToothParams",
    "ToothShape",
    "FillingParams",
    "make_head_ct",
    "render",
    "grid_origin",
    "DEFAULT_SHAPE",
    "FIELD_OF_VIEW_MM",
    "MIN_SHAPE",
    "LABELS",
    "MANDIBLE_LABELS",
    "HU_MIN",
    "HU_MAX",
]

HU_MIN = -1024
HU_MAX = 32767 - 1024
"""HU range that fits int16 stored values with RescaleIntercept -1024."""

# In painting order: a later structure overwrites an earlier one where they overlap.
_ANATOMY_PAINTERS = (
    phantom_head.paint_head_outline,
    phantom_head.paint_nose,
    phantom_head.paint_glands_and_fat_pads,
    phantom_head.paint_brain_and_spinal_canal,
    phantom_head.paint_airways,
    phantom_bone.paint_cervical_spine,
    phantom_bone.paint_skull_base,
    phantom_bone.paint_temporal_bones,
    phantom_bone.paint_mastoid_cells,
    phantom_bone.paint_maxilla,
    phantom_bone.paint_palate,
    phantom_bone.paint_hyoid,
    phantom_head.paint_tongue,
    phantom_jaw.paint_mandible,
    phantom_teeth.paint_teeth,
)


@dataclass(frozen=True, eq=False)
class HeadPhantom:
    """A synthetic head CT and its ground truth.

    Attributes
    ----------
    hu : (Z, Y, X) ndarray of int16
        Hounsfield units in [HU_MIN, HU_MAX]; Z from inferior to superior, Y anterior to
        posterior, X from the patient's right to left.
    mandible : (Z, Y, X) ndarray of bool
        The mandible with its teeth; one face-connected component.
    spacing : (float, float, float)
        (slice, row, column) voxel size in mm.
    affine : (4, 4) ndarray of float64
        Voxel ``(i=column, j=row, k=slice, 1)`` -> patient LPS mm, as read_ct_series reports it
        for the series written by :func:`medimg.mandible.synth.write_synthetic_series`.
    labels : (Z, Y, X) ndarray of uint8
        Tissue labels (:data:`LABELS`) at voxel centres, before blur and noise.
    opening_deg : float
        Mouth opening: rotation of the jaw about the condylar axis (0 = teeth in occlusion).
    joint_gap_mm : float
        Gap between each condyle and its glenoid fossa.
    occlusion_gap_mm : float
        Gap between upper and lower cusps at zero opening (0 = touching).
    metal_centres : (n, 3) ndarray of float64
        Centres of the dental fillings as voxel ``(k, j, i)`` coordinates (empty without metal).
    params : HeadParams or None
        What was rendered; ``render(params)`` gives the same arrays again.
    """

    hu: np.ndarray
    mandible: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    labels: np.ndarray
    opening_deg: float
    joint_gap_mm: float
    occlusion_gap_mm: float
    metal_centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    params: HeadParams | None = None


def render(params: HeadParams) -> HeadPhantom:
    """The head CT of ``params``: the same parameters give identical arrays.

    Raises
    ------
    InputError
        If ``params`` is not a HeadParams, or its shape or spacing is not usable.
    """
    if not isinstance(params, HeadParams):
        raise InputError(expected("HeadParams", type(params).__name__))
    check_spacing(params.spacing, check_shape(params.shape))
    _check_fillings(params)
    canvas = Canvas(head_grid(params))
    for paint in _ANATOMY_PAINTERS:
        paint(canvas, params)
    fillings = phantom_teeth.paint_fillings(canvas, params)
    keep_one_mandible(canvas.labels)

    hu = phantom_hu.tissue_hu(canvas.labels, params, fillings)
    hu += phantom_hu.beam_hardening(canvas.labels, params)
    hu = phantom_hu.scanner_blur(hu, params)
    phantom_hu.saturate_fillings(hu, fillings)
    if fillings:
        hu += phantom_hu.metal_streaks(params.shape, params.spacing, fillings)
    hu += phantom_hu.scanner_noise(params)
    if params.hu_offset:
        hu += np.float32(params.hu_offset)
    return HeadPhantom(
        hu=np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.int16),
        mandible=np.isin(canvas.labels, MANDIBLE_LABELS),
        spacing=params.spacing,
        affine=canvas.grid.affine(),
        labels=canvas.labels,
        opening_deg=float(params.jaw_opening_deg),
        joint_gap_mm=float(params.joint_gap_mm),
        occlusion_gap_mm=float(params.occlusion_gap_mm),
        metal_centres=np.array([f.centre_voxel for f in fillings], dtype=np.float64).reshape(-1, 3),
        params=params,
    )


def _check_fillings(params: HeadParams) -> None:
    for filling in params.fillings:
        if not 0 <= filling.tooth < len(params.teeth) or not params.teeth[filling.tooth].present:
            raise InputError(expected(f"fillings in present teeth (indices 0-{len(params.teeth) - 1})", f"one in tooth {filling.tooth}"))
        if len(filling.streak_angles_rad) != len(filling.streak_amplitudes):
            raise InputError(expected("one streak amplitude per streak angle",
                                      f"{len(filling.streak_amplitudes)} for {len(filling.streak_angles_rad)}"))


def make_head_ct(*, seed: int, shape=DEFAULT_SHAPE, spacing=None, metal: bool = False, family: HeadFamily = HeadFamily()) -> HeadPhantom:
    """Generate a synthetic axial CT of the lower head with its mandible mask.

    Parameters
    ----------
    seed : int
        Everything random derives from it: head size, shape, pose, mouth opening, gaps, tissue
        levels, textures, noise. ``metal`` adds fillings without changing anything else, so the
        same seed with and without metal differs only by the fillings and their artefacts.
    shape : (Z, Y, X) tuple of int, at least ``MIN_SHAPE``
    spacing : (slice, row, column) mm, optional
        Default: :data:`FIELD_OF_VIEW_MM` divided by ``shape`` (2.5 x 0.9 x 0.9 mm for the
        default shape). A field of view smaller than ~120 x 210 x 170 mm crops the head.
    metal : bool
        Put 1-4 metal fillings (4000-8000 HU) into posterior teeth, with streak artefacts
        (alternating bright and dark lines radiating from the metal within its slices).
    family : HeadFamily
        The ranges drawn from; the default is the family the shipped weights were trained on.

    Returns
    -------
    HeadPhantom
        ``hu`` (Z, Y, X) int16, ``mandible`` (Z, Y, X) bool, the geometry, and ``params``.

    Raises
    ------
    InputError
        If ``shape`` or ``spacing`` is not usable.
    """
    return render(family.sample(np.random.default_rng(int(seed)), shape=shape, spacing=spacing, metal=metal))
