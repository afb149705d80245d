"""The head-CT phantom as data: :class:`HeadFamily` (ranges) samples :class:`HeadParams` (values).

Every random choice of :func:`medimg.mandible.phantom.make_head_ct` is a field here: pose,
head and jaw shape, mouth opening, joint and occlusion gaps, which teeth are present, tissue HU
levels, noise level, and with metal the fillings and their streaks. Textures that are random
per voxel (trabecular bone, soft-tissue grain, scanner noise, mastoid air cells) are stored as
integer seeds, so :func:`medimg.mandible.phantom.render` turns the same parameters into the
same volume. Parameters round-trip through JSON with
:func:`medimg.common.families.params_to_dict` / ``params_from_dict``.

Lengths are millimetres in the head frame (x to the patient's left, y posterior, z superior;
origin midway between the condyle centres), angles degrees unless the name says radians.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from medimg.common.families import Choice, IntRange, Uniform, draw, new_seed, sample_fields
from medimg.mandible.phantom_geometry import DEFAULT_SHAPE, check_shape, check_spacing

__all__ = ["FAMILIES", "HELD_OUT_FAMILY", "WIDE_FAMILY", "HeadFamily", "HeadParams", "ToothShape", "ToothParams", "FillingParams", "LOWER_TEETH", "UPPER_TEETH"]


@dataclass(frozen=True)
class ToothShape:
    """One tooth type: mesio-distal width, bucco-lingual half width, crown height, root length (mm)."""

    width_mm: float
    half_breadth_mm: float
    crown_mm: float
    root_mm: float
    cusps: bool  # molars and premolars: a crown with cusps, where fillings go


# From the midline backwards: central and lateral incisor, canine, two premolars, two molars.
LOWER_TEETH = (ToothShape(5.0, 3.0, 9.0, 12.0, False), ToothShape(5.6, 3.1, 9.0, 13.0, False), ToothShape(6.8, 3.8, 10.0, 16.0, False),
               ToothShape(7.0, 3.9, 8.0, 14.0, True), ToothShape(7.1, 4.1, 8.0, 14.0, True), ToothShape(11.0, 5.0, 7.5, 13.0, True),
               ToothShape(10.4, 4.9, 7.0, 12.5, True))
UPPER_TEETH = (ToothShape(8.4, 3.4, 10.5, 13.0, False), ToothShape(6.5, 3.1, 9.0, 12.5, False), ToothShape(7.5, 4.0, 10.0, 17.0, False),
               ToothShape(6.9, 4.4, 8.0, 14.0, True), ToothShape(6.6, 4.4, 7.5, 14.0, True), ToothShape(10.0, 5.4, 7.0, 13.0, True),
               ToothShape(9.0, 5.2, 7.0, 12.5, True))
_FIRST_TOOTH_MM = 0.25  # half the gap between the central incisors
_INTERPROXIMAL_MM = 0.2  # gap between neighbouring teeth


@dataclass(frozen=True)
class ToothParams:
    """One tooth slot of an arch, present or missing."""

    upper: bool
    side: int  # -1 patient's right, +1 left
    position: int  # 0 = central incisor ... 6 = second molar
    present: bool
    centre_mm: float  # arc length of the crown centre along the mandible's centreline (+ on the left)
    shape: ToothShape


@dataclass(frozen=True)
class FillingParams:
    """An amalgam filling in the crown of ``HeadParams.teeth[tooth]`` and its streak artefact."""

    tooth: int
    hu: float
    streak_strength_hu: float  # peak of the streaks of a 6000 HU filling; scales with ``hu``
    streak_angles_rad: tuple[float, ...]  # directions of the streaks in the axial plane
    streak_amplitudes: tuple[float, ...]  # relative brightness of each, alternately bright and dark


@dataclass(frozen=True)
class HeadParams:
    """Everything random about one synthetic head CT (see the module docstring for units)."""

    shape: tuple[int, int, int]  # (Z, Y, X) voxels
    spacing: tuple[float, float, float]  # (slice, row, column) mm
    # Pose and size of the head in the field of view.
    head_size: float
    head_aspect: tuple[float, float, float]  # extra scale along x, y, z on top of ``head_size``
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    shift_x_mm: float
    shift_y_mm: float
    shift_z_mm: float
    # Jaw position.
    mouth_closed: bool
    opening_deg: float  # rotation of the jaw about the condylar axis when the mouth is not closed
    joint_gap_mm: float  # condyle to glenoid fossa
    occlusion_gap_mm: float  # upper to lower cusps in occlusion
    # Shape of the head and the jaw.
    face_depth_scale: float  # how far the face reaches in front of the condyles
    head_width_scale: float
    fat_mm: float  # subcutaneous fat
    airway_scale: float
    condyle_x_mm: float  # distance of each condyle centre from the midline
    palate_z_mm: float
    hyoid_z_mm: float
    menton_z_mm: float  # lowest point of the chin
    ramus_height_scale: float
    teeth: tuple[ToothParams, ...]
    # Tissue HU levels.
    mandible_cortical_hu: float
    mandible_cancellous_hu: float
    bone_cortical_hu: float
    bone_cancellous_hu: float
    enamel_hu: float
    dentin_hu: float
    noise_hu: float  # standard deviation of the scanner noise
    # Seeds of the per-voxel textures.
    mastoid_cells_seed: int
    soft_texture_seed: int
    trabecular_seed: int
    noise_seed: int
    fillings: tuple[FillingParams, ...] = ()
    # What differs between scanners and protocols (the defaults are the original phantom's scanner).
    hu_offset: float = 0.0  # calibration: added to every voxel
    kernel_blur_voxels: float = 0.6  # in-plane point spread (Gaussian sigma): larger for a soft kernel
    kernel_sharpen: float = 0.0  # edge enhancement of a bone kernel (unsharp-mask amount)
    slice_profile_voxels: float = 0.4  # blur across slices (Gaussian sigma): slice thickness over spacing
    noise_correlation_voxels: float = 0.7  # in-plane correlation of the noise: shorter for a sharp kernel
    beam_hardening_hu: float = 0.0  # shading in the soft tissue between dense bones

    @property
    def jaw_opening_deg(self) -> float:
        """The mouth opening that is drawn: 0 when the mouth is closed."""
        return 0.0 if self.mouth_closed else self.opening_deg


_TEXTURE_SEEDS = ("mastoid_cells_seed", "soft_texture_seed", "trabecular_seed", "noise_seed")

# How likely a tooth slot holds a tooth, per kind of mouth ("dentate" uses the family's tooth_present).
DENTITION_PRESENT = {"dentate": None, "partial": Choice((True, False), (0.5, 0.5)), "edentulous": Choice((True, False), (0.0, 1.0))}


@dataclass(frozen=True)
class HeadFamily:
    """Ranges of :class:`HeadParams`; the defaults give the heads the shipped network was trained on.

    A field of the same name as a :class:`HeadParams` field is its range (a constant is used as
    it is). ``head_aspect`` is drawn once per axis, ``tooth_present`` once per tooth slot, and
    the ``filling_*`` and ``streak_*`` fields once per filling (only when ``metal`` is asked for).
    """

    head_size: Uniform = Uniform(0.95, 1.05)
    head_aspect: Uniform = Uniform(0.97, 1.03)
    yaw_deg: Uniform = Uniform(-4.0, 4.0)
    pitch_deg: Uniform = Uniform(-4.0, 4.0)
    roll_deg: Uniform = Uniform(-3.0, 3.0)
    shift_x_mm: Uniform = Uniform(-3.0, 3.0)
    shift_y_mm: Uniform = Uniform(-4.0, 4.0)
    shift_z_mm: Uniform = Uniform(-3.0, 3.0)
    mouth_closed: Choice = Choice((True, False), (0.4, 0.6))
    opening_deg: Uniform = Uniform(1.0, 6.0)
    joint_gap_mm: Uniform = Uniform(1.0, 2.0)
    occlusion_gap_mm: Uniform = Uniform(0.0, 0.8)
    face_depth_scale: Uniform = Uniform(0.97, 1.03)
    head_width_scale: Uniform = Uniform(0.96, 1.04)
    fat_mm: Uniform = Uniform(3.0, 7.0)
    airway_scale: Uniform = Uniform(0.75, 1.2)
    condyle_x_mm: Uniform = Uniform(48.5, 51.5)
    palate_z_mm: Uniform = Uniform(-23.5, -20.5)
    hyoid_z_mm: Uniform = Uniform(-89.0, -83.0)
    menton_z_mm: Uniform = Uniform(-88.0, -84.0)
    ramus_height_scale: Uniform = Uniform(0.94, 1.04)
    tooth_present: Choice = Choice((True, False), (0.95, 0.05))
    lower_teeth: tuple[ToothShape, ...] = LOWER_TEETH
    upper_teeth: tuple[ToothShape, ...] = UPPER_TEETH
    mandible_cortical_hu: Uniform = Uniform(1300.0, 1700.0)
    mandible_cancellous_hu: Uniform = Uniform(320.0, 480.0)
    bone_cortical_hu: Uniform = Uniform(1350.0, 1750.0)
    bone_cancellous_hu: Uniform = Uniform(260.0, 420.0)
    enamel_hu: Uniform = Uniform(2400.0, 2700.0)
    dentin_hu: Uniform = Uniform(1550.0, 1800.0)
    noise_hu: Uniform = Uniform(15.0, 25.0)
    filling_count: IntRange = IntRange(1, 4)
    filling_hu: Uniform = Uniform(4000.0, 8000.0)
    streak_strength_hu: Uniform = Uniform(350.0, 600.0)
    streak_lines: IntRange = IntRange(10, 17)
    streak_angle_rad: Uniform = Uniform(0.0, math.pi)
    streak_amplitude: Uniform = Uniform(0.5, 1.0)
    # Dentition: the chance that a tooth slot holds a tooth, per kind of mouth.
    dentition: Choice | str = "dentate"
    # Scanner and protocol (HeadParams fields of the same names; slice thickness in mm).
    hu_offset: Uniform = 0.0
    kernel_blur_voxels: Uniform = 0.6
    kernel_sharpen: Uniform = 0.0
    slice_thickness_mm: Uniform | None = None  # None: the original 0.4-voxel slice profile
    noise_correlation_voxels: Uniform = 0.7
    beam_hardening_hu: Uniform = 0.0
    # Grid: None keeps the caller's shape and spacing; else pixel and slice spacing are drawn and
    # the shape follows: rows and columns covering the field of view (within the pixel bounds),
    # slices covering ``coverage_mm`` (within the slice bounds).
    pixel_mm: Uniform | None = None
    slice_spacing_mm: Uniform | None = None
    field_of_view_mm: Uniform = 230.4
    coverage_mm: float = 120.0
    slice_count_bounds: tuple[int, int] = (24, 64)
    pixel_count_bounds: tuple[int, int] = (192, 640)

    def sample(self, rng: np.random.Generator, *, shape=DEFAULT_SHAPE, spacing=None, metal: bool = False) -> HeadParams:
        """Draw one head.

        Parameters
        ----------
        rng : numpy Generator, the only source of randomness
        shape : (Z, Y, X) tuple of int, at least ``MIN_SHAPE``
        spacing : (slice, row, column) mm, optional; default ``FIELD_OF_VIEW_MM / shape``
        metal : bool
            Add fillings. They are drawn last, so the same ``rng`` state with and without
            metal gives the same head and differs only by the fillings.

        Raises
        ------
        InputError
            If ``shape`` or ``spacing`` is not usable.
        """
        if self.pixel_mm is not None and self.slice_spacing_mm is not None:
            shape, spacing = self._sample_grid(rng)
        shape = check_shape(shape)
        spacing = check_spacing(spacing, shape)
        head_aspect = tuple(draw(self.head_aspect, rng) for _ in range(3))
        teeth = self._sample_teeth(rng)
        seeds = {name: new_seed(rng) for name in _TEXTURE_SEEDS}
        profile = {}
        if self.slice_thickness_mm is not None:  # FWHM of the slice profile = the slice thickness
            profile["slice_profile_voxels"] = float(draw(self.slice_thickness_mm, rng)) / 2.3548 / spacing[0]
        params = sample_fields(self, HeadParams, rng, shape=shape, spacing=spacing, head_aspect=head_aspect, teeth=teeth, fillings=(),
                               **seeds, **profile)
        if not metal:
            return params
        return dataclasses.replace(params, fillings=self._sample_fillings(rng, teeth))

    def _sample_grid(self, rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
        pixel = float(draw(self.pixel_mm, rng))
        slice_spacing = float(draw(self.slice_spacing_mm, rng))
        field_of_view = float(draw(self.field_of_view_mm, rng))
        slices = int(np.clip(round(self.coverage_mm / slice_spacing), *self.slice_count_bounds))
        pixels = int(np.clip(round(field_of_view / pixel), *self.pixel_count_bounds))
        return (slices, pixels, pixels), (slice_spacing, pixel, pixel)

    def _sample_teeth(self, rng: np.random.Generator) -> tuple[ToothParams, ...]:
        kind = draw(self.dentition, rng)
        if kind not in DENTITION_PRESENT:
            raise ValueError(f"unknown dentition {kind!r}: expected one of {', '.join(DENTITION_PRESENT)}")
        present_range = self.tooth_present if kind == "dentate" else DENTITION_PRESENT[kind]
        teeth = []
        for upper, shapes in ((False, self.lower_teeth), (True, self.upper_teeth)):
            for side in (-1, 1):
                start = _FIRST_TOOTH_MM
                for position, shape in enumerate(shapes):
                    centre = side * (start + shape.width_mm / 2)
                    start += shape.width_mm + _INTERPROXIMAL_MM
                    present = bool(draw(present_range, rng))
                    teeth.append(ToothParams(upper, side, position, present, float(centre), shape))
        return tuple(teeth)

    def _sample_fillings(self, rng: np.random.Generator, teeth: tuple[ToothParams, ...]) -> tuple[FillingParams, ...]:
        candidates = [index for index, tooth in enumerate(teeth) if tooth.present and tooth.shape.cusps]
        if not candidates:
            return ()
        count = min(len(candidates), int(draw(self.filling_count, rng)))
        chosen = sorted(candidates[int(i)] for i in rng.choice(len(candidates), size=count, replace=False))
        return tuple(self._sample_filling(rng, tooth) for tooth in chosen)

    def _sample_filling(self, rng: np.random.Generator, tooth: int) -> FillingParams:
        hu = float(draw(self.filling_hu, rng))
        strength = float(draw(self.streak_strength_hu, rng))
        lines = int(draw(self.streak_lines, rng))
        angles = tuple(sorted(float(draw(self.streak_angle_rad, rng)) for _ in range(lines)))
        amplitudes = tuple(float(draw(self.streak_amplitude, rng)) for _ in range(lines))
        return FillingParams(tooth, hu, strength, angles, amplitudes)


# A family that spans what differs between scanners and people (SPEC section 5, issue 11): pose,
# jaw opening, dentition, tissue levels, calibration offset, soft to bone kernels, slice thickness,
# pixel size, noise, beam hardening. Training draws from WIDE_FAMILY; HELD_OUT_FAMILY draws the
# same anatomy from scanner settings WIDE_FAMILY never uses (disjoint ranges, tested), so its
# score says how a network does on a scanner it never saw.
WIDE_FAMILY = HeadFamily(
    head_size=Uniform(0.88, 1.12), head_aspect=Uniform(0.93, 1.07),
    yaw_deg=Uniform(-10.0, 10.0), pitch_deg=Uniform(-10.0, 10.0), roll_deg=Uniform(-6.0, 6.0),
    shift_x_mm=Uniform(-10.0, 10.0), shift_y_mm=Uniform(-10.0, 10.0), shift_z_mm=Uniform(-6.0, 6.0),
    mouth_closed=Choice((True, False), (0.35, 0.65)), opening_deg=Uniform(1.0, 12.0),
    fat_mm=Uniform(2.0, 10.0), ramus_height_scale=Uniform(0.88, 1.1),
    dentition=Choice(("dentate", "partial", "edentulous"), (0.5, 0.3, 0.2)),
    mandible_cortical_hu=Uniform(1100.0, 1900.0), mandible_cancellous_hu=Uniform(250.0, 550.0),
    bone_cortical_hu=Uniform(1100.0, 1900.0), bone_cancellous_hu=Uniform(200.0, 500.0),
    noise_hu=Uniform(8.0, 35.0),
    hu_offset=Uniform(-40.0, 40.0),
    kernel_blur_voxels=Uniform(0.5, 1.1), kernel_sharpen=Uniform(0.0, 0.6),
    slice_thickness_mm=Uniform(0.6, 3.0), noise_correlation_voxels=Uniform(0.5, 1.0),
    beam_hardening_hu=Uniform(0.0, 50.0),
    pixel_mm=Uniform(0.3, 1.0), slice_spacing_mm=Uniform(0.6, 3.0), field_of_view_mm=Uniform(170.0, 250.0),
)

HELD_OUT_FAMILY = dataclasses.replace(
    WIDE_FAMILY,
    yaw_deg=Uniform(-13.0, 13.0), pitch_deg=Uniform(-13.0, 13.0),
    noise_hu=Uniform(36.0, 50.0),
    hu_offset=Choice((-70.0, -55.0, 55.0, 70.0)),
    kernel_blur_voxels=Uniform(0.5, 0.9), kernel_sharpen=Uniform(0.7, 1.0),
    slice_thickness_mm=Uniform(3.5, 5.0), noise_correlation_voxels=Uniform(0.4, 0.5),
    beam_hardening_hu=Uniform(55.0, 80.0),
    pixel_mm=Choice((0.26, 0.28, 1.04, 1.08)), slice_spacing_mm=Uniform(3.5, 5.0),
)

FAMILIES = {"default": HeadFamily(), "wide": WIDE_FAMILY, "held-out": HELD_OUT_FAMILY}
"""The families ``mandible synth --style`` draws from."""
