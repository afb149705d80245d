"""The mandible stage commands, one runner per subcommand; they chain through files so that a batch
script can run, cache or replace any stage.

Stage files (volumes ``(Z, Y, X)`` = slice, row, column; NIfTI affine = ``CTSeries.affine_ras``)::

    volume   DICOM_DIR              -> ct.nii.gz           float32 HU (exactly the volume segment works on)
    infer    ct.nii.gz | DICOM_DIR  -> probability.nii.gz  float32 in [0, 1]
    mask     probability.nii.gz     -> mask.nii.gz         uint8 0/1, largest 3-D component
    mesh     mask.nii.gz            -> mandible.stl        LPS mm
    overlay  ct mask.nii.gz         -> overlay.png

:func:`medimg.mandible.pipeline.segment` runs every stage in one process with the same functions
(:func:`~medimg.mandible.inference.network_settings`, :func:`~medimg.mandible.inference.predict_volume`,
:func:`~medimg.mandible.postprocess.mask_from_probabilities`, :func:`~medimg.mandible.postprocess.write_mesh`,
:func:`~medimg.mandible.overlay.overlay_montage`) on the same grid
(:func:`~medimg.mandible.postprocess.stored_affine`), so the chain's mask.nii.gz and mandible.stl
equal segment's byte for byte. Each stage writes its one file atomically; where it goes:
:func:`medimg.mandible.output_folders.stage_output_dir`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import FormatError, InputError, OptionValueError, expected
from medimg.mandible.inference import InferenceOptions, mandible_network, network_settings, predict_volume
from medimg.mandible.output_folders import CT_FILE, FILE_NAMES, PROBABILITY_FILE, stage_output_dir
from medimg.mandible.postprocess import (
    DEFAULT_SMOOTHING,
    DEFAULT_THRESHOLD,
    check_threshold,
    lps_affine,
    mask_from_probabilities,
    stored_affine,
    write_mesh,
)


@dataclass(frozen=True)
class CTVolume:
    """A CT volume on its grid, from a DICOM folder or a ``ct.nii.gz``."""

    hu: np.ndarray  # (Z, Y, X) float32 HU
    affine_ras: np.ndarray  # (4, 4) voxel (i, j, k) -> RAS mm, as NIfTI keeps it (stored_affine)
    source: Path


def series_records(folder: Path | str) -> list[dict]:
    """The image series under ``folder``, one row each (for ``volume --list``), in :func:`~medimg.common.dicom_series.list_series` order."""
    from medimg.common.dicom_series import list_series

    return [
        {"series_number": s.number, "modality": s.modality, "images": s.images, "localizers": s.localizers,
         "description": s.description, "series_uid": s.uid}
        for s in list_series(folder)
    ]


def _warn_unusual_orientation(path: Path, affine_ras: np.ndarray) -> None:
    import nibabel as nib

    codes = nib.aff2axcodes(affine_ras)
    # read_ct_series keeps an axial series as stored: columns run to patient left, rows to posterior.
    if codes[:2] != ("L", "P"):
        console.warn(f"{path.name}: voxel axes run {''.join(codes)}, not LP as in an axial DICOM series; slices are "
                     "fed to the network as stored (rotated or mirrored ones segment worse)")


def load_ct(source: Path | str, *, series_uid: str | None = None, correct_tilt: bool = False, resample: bool = True) -> CTVolume:
    """A CT from a DICOM folder (read as ``segment`` reads it) or from a NIfTI file (``ct.nii.gz``).

    ``series_uid``, ``correct_tilt`` and ``resample`` apply to DICOM folders only (a NIfTI file is
    already on a regular grid: ``resample=False`` changes nothing there).
    """
    from medimg.common.nifti import read_nifti

    source = Path(source)
    if source.is_dir():
        from medimg.common.dicom_series import read_ct_series

        series = read_ct_series(source, series_uid=series_uid, correct_tilt=correct_tilt, resample=resample)
        return CTVolume(series.volume, stored_affine(series.affine_ras), source)
    if series_uid is not None or correct_tilt:
        raise OptionValueError(expected("--series and --correct-tilt only with a DICOM folder", f"the file '{source.name}'"))
    volume, affine_ras = read_nifti(source)
    if not np.issubdtype(volume.dtype, np.number) or np.issubdtype(volume.dtype, np.complexfloating):
        raise InputError(expected("a CT volume of real numbers (HU)", f"dtype {volume.dtype} in '{source.name}'"))
    volume = np.asarray(volume, dtype=np.float32)
    check_hounsfield(volume, source.name)
    _warn_unusual_orientation(source, affine_ras)
    return CTVolume(volume, stored_affine(affine_ras), source)


#: a head CT always holds air (about -1000 HU) around the head; nothing below this is no CT in HU
AIR_CEILING_HU = -200.0


def check_hounsfield(volume: np.ndarray, name: str) -> None:
    """Refuse a "CT" that cannot be one in Hounsfield units.

    Non-finite voxels would turn whole slices of probability into NaN; a volume with nothing
    below :data:`AIR_CEILING_HU` has no air, so it is a mask, a probability map or raw scanner
    values, and any segmentation of it would be a confident wrong answer.
    """
    finite = np.isfinite(volume)
    if not finite.all():
        z, y, x = np.argwhere(~finite)[0]
        raise FormatError(expected("finite CT values (HU)", f"{int(np.count_nonzero(~finite))} NaN or infinite voxel(s), the first at "
                                                          f"(z, y, x) = ({int(z)}, {int(y)}, {int(x)}), in '{name}'"))
    if volume.size and float(volume.min()) > AIR_CEILING_HU:
        raise FormatError(expected(
            f"a CT in Hounsfield units (air near -1000 HU somewhere, at least below {AIR_CEILING_HU:g})",
            f"values {float(volume.min()):g}..{float(volume.max()):g} in '{name}' (a mask, probabilities, or raw values without "
            f"their rescale?)"))


def _read_probability(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from medimg.common.nifti import read_nifti

    probabilities, affine_ras = read_nifti(path)
    if not np.issubdtype(probabilities.dtype, np.floating):
        raise FormatError(expected("float probabilities (probability.nii.gz from 'medimg mandible infer')",
                                   f"dtype {probabilities.dtype} in '{path.name}'"))
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.size and not (probabilities.min() >= 0.0 and probabilities.max() <= 1.0):
        raise FormatError(expected("probabilities in [0, 1]", f"{probabilities.min():.3g}..{probabilities.max():.3g} in '{path.name}'"))
    return probabilities, stored_affine(affine_ras)


def _read_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from medimg.common.nifti import read_nifti

    volume, affine_ras = read_nifti(path)
    volume = np.asarray(volume)
    # A probability map passed by mistake would mesh as one block: nonzero is not "mandible" there.
    if np.issubdtype(volume.dtype, np.floating) and np.any((volume != 0) & (volume != 1)):
        raise FormatError(expected("a 0/1 mask (mask.nii.gz from 'medimg mandible mask')", f"fractional values in '{path.name}'"))
    return volume != 0, stored_affine(affine_ras)


def _check_same_grid(ct: CTVolume, mask: np.ndarray, mask_affine: np.ndarray, mask_path: Path, *, tolerance_mm: float = 1e-3) -> None:
    if mask.shape != ct.hu.shape:
        raise InputError(expected(f"a mask of the CT's shape {ct.hu.shape}", f"{mask.shape} in '{mask_path.name}'"))
    worst = float(np.abs(mask_affine - ct.affine_ras).max())
    if worst > tolerance_mm:
        raise InputError(expected(f"a mask on the CT's grid (same affine as '{ct.source.name}')",
                                  f"an affine {worst:.3g} mm away in '{mask_path.name}'"))


def run_volume(
    dicom_dir: Path | str,
    output_dir: Path | str | None = None,
    *,
    series_uid: str | None = None,
    correct_tilt: bool = False,
    resample: bool = True,
) -> Path:
    """DICOM series -> ``ct.nii.gz``: float32 HU (the exact values ``segment`` works on) on ``affine_ras``."""
    from medimg.common.nifti import write_nifti

    output_dir = stage_output_dir(output_dir, dicom_dir)
    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise InputError(expected("a DICOM folder", f"'{dicom_dir}' which is not a folder"))
    ct = load_ct(dicom_dir, series_uid=series_uid, correct_tilt=correct_tilt, resample=resample)
    return write_nifti(Path(output_dir) / CT_FILE, ct.hu, ct.affine_ras)


def run_infer(
    ct_source: Path | str,
    output_dir: Path | str | None = None,
    *,
    inference: InferenceOptions = InferenceOptions(),
    series_uid: str | None = None,
    correct_tilt: bool = False,
    resample: bool = True,
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    input_size: int | None = None,
) -> Path:
    """CT (DICOM folder or ``ct.nii.gz``) -> ``probability.nii.gz``, float32 in [0, 1] on the CT's grid.

    ``predictor`` replaces the network of ``inference`` (then ``input_size`` is required).
    """
    from medimg.common.nifti import write_nifti

    output_dir = stage_output_dir(output_dir, ct_source)
    predictor = predictor if predictor is not None else mandible_network(inference)
    ct = load_ct(ct_source, series_uid=series_uid, correct_tilt=correct_tilt, resample=resample)
    settings = network_settings(predictor, input_size=input_size)
    probabilities = predict_volume(ct.hu, predictor, **settings.predict_options())
    return write_nifti(Path(output_dir) / PROBABILITY_FILE, probabilities, ct.affine_ras, inputs=[ct.source])


def run_mask(probability_path: Path | str, output_dir: Path | str | None = None, *, threshold: float = DEFAULT_THRESHOLD, keep_largest: bool = True) -> Path:
    """``probability.nii.gz`` -> ``mask.nii.gz``, uint8 0/1 (largest component unless ``keep_largest`` is False)."""
    from medimg.common.nifti import write_nifti

    output_dir = stage_output_dir(output_dir, probability_path)
    probability_path = Path(probability_path)
    check_threshold(threshold)
    probabilities, affine_ras = _read_probability(probability_path)
    mask, notes = mask_from_probabilities(probabilities, threshold=threshold, keep_largest=keep_largest)
    for note in notes:
        console.info(note)
    if not mask.any():
        console.warn(f"{probability_path}: no voxel reached the threshold {threshold:g}: the mask is empty")
    return write_nifti(Path(output_dir) / FILE_NAMES["nifti"], mask.astype(np.uint8), affine_ras, inputs=[probability_path])


def run_mesh(mask_path: Path | str, output_dir: Path | str | None = None, *, smoothing: int = DEFAULT_SMOOTHING) -> Path:
    """``mask.nii.gz`` -> ``mandible.stl`` in LPS mm (the mask is meshed as it is: ``mask`` already kept
    the largest component)."""
    output_dir = stage_output_dir(output_dir, mask_path)
    mask_path = Path(mask_path)
    mask, affine_ras = _read_mask(mask_path)
    if not mask.any():
        raise InputError(expected("a mask with at least one mandible voxel", f"an empty mask in '{mask_path.name}'"))
    path = Path(output_dir) / FILE_NAMES["stl"]
    write_mesh(path, mask, lps_affine(affine_ras), smoothing=smoothing, inputs=[mask_path])
    return path


def run_overlay(
    ct_source: Path | str,
    mask_path: Path | str,
    output_dir: Path | str | None = None,
    *,
    level: float | None = None,
    width: float | None = None,
    series_uid: str | None = None,
    correct_tilt: bool = False,
    resample: bool = True,
) -> Path:
    """CT + ``mask.nii.gz`` -> ``overlay.png`` (default window: :data:`~medimg.mandible.preprocess.DEFAULT_WINDOW`,
    the shipped network's)."""
    from medimg.common.images import write_png
    from medimg.mandible.overlay import overlay_montage
    from medimg.mandible.preprocess import DEFAULT_WINDOW

    output_dir = stage_output_dir(output_dir, mask_path)
    mask_path = Path(mask_path)
    ct = load_ct(ct_source, series_uid=series_uid, correct_tilt=correct_tilt, resample=resample)
    mask, mask_affine = _read_mask(mask_path)
    _check_same_grid(ct, mask, mask_affine, mask_path)
    level = DEFAULT_WINDOW[0] if level is None else level
    width = DEFAULT_WINDOW[1] if width is None else width
    montage = overlay_montage(ct.hu, mask, level=level, width=width)
    return write_png(Path(output_dir) / FILE_NAMES["png"], montage, inputs=[ct.source, mask_path])
