"""CT series from a DICOM folder: found, checked, sorted, converted to Hounsfield units, placed in space.

A folder as it comes off a scanner or a PACS export holds several series, non-DICOM files, a
DICOMDIR, localizer (scout) images, compressed transfer syntaxes, sometimes missing slices or a
gantry tilt. :func:`read_ct_series` turns it into one ``(Z, Y, X)`` float32 HU volume and its
affine, or refuses with one ``expected ..., got ...`` line that says what is wrong.

Geometry conventions
--------------------
``volume[k, j, i]``: k = slice (sorted by ImagePositionPatient projected on the slice normal,
ascending), j = row (DICOM row index, top to bottom), i = column (left to right in the image).

``affine`` maps the voxel index written in the order ``(i, j, k, 1)`` -- column, row, slice, i.e.
the *reverse* of the array's axis order -- to DICOM patient coordinates LPS in millimetres
(x grows to the patient's Left, y to Posterior, z to Superior)::

    affine[:3, 0] = row direction cosine    * column spacing   (IOP[0:3] * PixelSpacing[1])
    affine[:3, 1] = column direction cosine * row spacing      (IOP[3:6] * PixelSpacing[0])
    affine[:3, 2] = slice normal            * slice spacing    (normal = IOP[0:3] x IOP[3:6])
    affine[:3, 3] = ImagePositionPatient of slice k = 0 (centre of its first pixel)

``affine_ras`` is the same map into RAS (NIfTI / nibabel / 3D Slicer world):
``diag(-1, -1, 1, 1) @ affine``. To write NIfTI, store ``volume.transpose(2, 1, 0)`` (so the
array is indexed ``[i, j, k]``) with ``affine_ras`` as sform and qform.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import FormatError, InputError, expected

# A slice may sit this fraction of the slice spacing away from the regular grid before the
# spacing is called uneven: below it, the misplacement is smaller than the blur of the slice itself.
SPACING_TOLERANCE = 0.10
# Positions are written with a few decimals; smaller differences than this are rounding.
POSITION_EPSILON_MM = 0.01
# In-plane drift of the stack (in pixels, over the whole series) below which it is ignored.
TILT_TOLERANCE_PIXELS = 0.25
# Direction cosines closer than this are one orientation (about 0.06 degrees).
ORIENTATION_TOLERANCE = 1e-3
# Value given to pixels that tilt correction brings in from outside the scanned field.
AIR_HU = -1024.0

_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class SeriesSummary:
    """One series of DICOM images found in a folder (see :func:`list_series`)."""

    uid: str
    modality: str
    description: str
    number: int | None  # SeriesNumber, when the files carry one
    images: int  # image files, localizers included
    localizers: int  # images whose ImageType says LOCALIZER


@dataclass(frozen=True)
class SpacingRun:
    """Consecutive source slices with one spacing between neighbours."""

    spacing_mm: float  # along the slice normal
    first_slice: int  # index into the sorted source slices (``CTSeries.files``)
    last_slice: int  # inclusive

    def describe(self) -> str:
        return f"{self.spacing_mm:.2f} mm (slices {self.first_slice}-{self.last_slice})"


@dataclass(frozen=True)
class SliceGrid:
    """The regular grid along the slice normal that a variable-spacing series was resampled onto."""

    spacing_mm: float
    slices: int


@dataclass(frozen=True, eq=False)
class CTSeries:
    """A CT series as a volume in Hounsfield units with its place in patient space.

    Attributes
    ----------
    volume : (Z, Y, X) ndarray of float32 (HU)
        Slices sorted along the slice normal, ascending position; rows and columns as stored.
    affine : (4, 4) ndarray of float64
        Voxel index ``(i=column, j=row, k=slice, 1)`` -> patient LPS mm (see the module docstring).
    spacing : (float, float, float)
        ``(slice, row, column)`` spacing in mm, in the array's axis order.
    series_uid : str
    files : tuple of Path
        The files of the source slices, sorted along the normal: ``volume``'s first axis unless
        ``resampled_grid`` is set (then ``volume`` has ``resampled_grid.slices`` slices).
    notes : tuple of str
        What was found and handled on the way (also printed on stderr).
    resampled : bool
        True when the slices were shifted in-plane (gantry tilt correction) or interpolated onto a
        regular grid (variable spacing): ``volume[k]`` then no longer lies on the pixel grid of
        ``files[k]``, so anything that references the source images pixel for pixel (a DICOM SEG)
        would be misplaced.
    spacing_runs : tuple of SpacingRun
        The runs of equal spacing among the source slices: one for an evenly spaced series (empty
        for a single slice), several for variable spacing.
    resampled_grid : SliceGrid or None
        The regular grid of ``volume`` when variable spacing was resampled, else None.
    tilt_corrected : bool
        True when the slices were shifted in-plane onto an orthogonal grid (``correct_tilt``).
    tilt_deg : float
        Gantry tilt in degrees, unsigned: how far the stack runs off the slice normal when the
        slices drift in-plane, else the image plane's obliquity when GantryDetectorTilt confirms
        it; 0 when none.
    """

    volume: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    series_uid: str
    files: tuple[Path, ...]
    notes: tuple[str, ...]
    resampled: bool = False
    spacing_runs: tuple[SpacingRun, ...] = ()
    resampled_grid: SliceGrid | None = None
    tilt_corrected: bool = False
    tilt_deg: float = 0.0

    @property
    def affine_ras(self) -> np.ndarray:
        """(4, 4) float64: the affine into RAS mm (NIfTI convention), same voxel index order."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine


@dataclass(frozen=True)
class _Header:
    """What the reader needs from one image file, read without its pixels."""

    path: Path
    series_uid: str
    modality: str
    description: str
    series_number: int | None
    instance_number: int | None
    sop_uid: str
    position: tuple[float, ...] | None  # ImagePositionPatient
    orientation: tuple[float, ...] | None  # ImageOrientationPatient
    pixel_spacing: tuple[float, ...] | None  # (row spacing, column spacing)
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_tilt: float | None
    rows: int
    columns: int
    frames: int
    samples: int
    localizer: bool
    rescale: tuple[float, float] | None = None  # (RescaleSlope, RescaleIntercept) when both are present
    modality_lut: bool = False  # a ModalityLUTSequence maps pixels to HU instead


# --------------------------------------------------------------------------------------------
# Finding the files


def _numbers(value) -> tuple[float, ...] | None:
    """A DS/IS element value (single or multi) as floats; None when absent or unreadable."""
    if value is None or value == "":
        return None
    from pydicom.multival import MultiValue

    items = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    try:
        return tuple(float(item) for item in items)
    except (TypeError, ValueError):
        return None


def _number(value) -> float | None:
    numbers = _numbers(value)
    return numbers[0] if numbers and len(numbers) == 1 else None


def _looks_like_headerless_dicom(path: Path) -> bool:
    # Old exports drop the 128-byte preamble and start directly with a group 0008 (or 0002) tag;
    # only those are worth a forced read, which would otherwise turn any binary file into noise.
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except OSError:
        return False
    return start[:2] in (b"\x08\x00", b"\x02\x00") and len(start) == 4


def _read_header(path: Path):
    """The dataset without pixel data, or None when the file is not a DICOM image."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if path.name.upper() == "DICOMDIR":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's complaints about odd values are not the user's business here
            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:
                if not _looks_like_headerless_dicom(path):
                    return None
                dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            meta_class = str(getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
            if meta_class == _DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in dataset:
                return None
            # Reports, structure sets and presentation states share folders with images: only images count.
            if "Rows" not in dataset or "Columns" not in dataset or "SeriesInstanceUID" not in dataset:
                return None
            return dataset
    except Exception:  # a damaged or foreign file is skipped, whatever pydicom raised on it
        return None


def _header(path: Path, dataset) -> _Header:
    image_type = dataset.get("ImageType") or []
    image_type = [str(item).upper() for item in (image_type if not isinstance(image_type, str) else [image_type])]
    instance = _number(dataset.get("InstanceNumber"))
    series_number = _number(dataset.get("SeriesNumber"))
    return _Header(
        path=path,
        series_uid=str(dataset.SeriesInstanceUID),
        modality=str(dataset.get("Modality", "") or ""),
        description=str(dataset.get("SeriesDescription", "") or ""),
        series_number=None if series_number is None else int(series_number),
        instance_number=None if instance is None else int(instance),
        sop_uid=str(dataset.get("SOPInstanceUID", "") or path),
        position=_numbers(dataset.get("ImagePositionPatient")),
        orientation=_numbers(dataset.get("ImageOrientationPatient")),
        pixel_spacing=_numbers(dataset.get("PixelSpacing")),
        slice_thickness=_number(dataset.get("SliceThickness")),
        spacing_between_slices=_number(dataset.get("SpacingBetweenSlices")),
        gantry_tilt=_number(dataset.get("GantryDetectorTilt")),
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        frames=int(_number(dataset.get("NumberOfFrames")) or 1),
        samples=int(_number(dataset.get("SamplesPerPixel")) or 1),
        localizer="LOCALIZER" in image_type,
        rescale=_rescale(dataset),
        modality_lut="ModalityLUTSequence" in dataset,
    )


def _rescale(dataset) -> tuple[float, float] | None:
    slope, intercept = _number(dataset.get("RescaleSlope")), _number(dataset.get("RescaleIntercept"))
    return None if slope is None or intercept is None else (float(slope), float(intercept))


def _check_rescale(folder: Path, uid: str, ordered: list, say) -> tuple[float, float] | None:
    """The (slope, intercept) to apply to slices without rescale tags, or None when none lacks them.

    CT pixel values mean nothing without RescaleSlope and RescaleIntercept (a missing intercept of
    -1024 puts every voxel 1,024 HU off): a series where no slice has them is refused; slices that
    lack them while every other slice agrees on one value take that value, with a note; when the
    others disagree the series is refused.
    """
    lacking = [m for m in ordered if m.rescale is None and not m.modality_lut]
    if not lacking:
        return None
    examples = ", ".join(f"'{_relative(m.path, folder)}'" for m in lacking[:3]) + (", ..." if len(lacking) > 3 else "")
    if len(lacking) == len(ordered):
        raise FormatError(expected(
            f"RescaleSlope and RescaleIntercept (stored values -> HU) in CT series {uid}",
            f"neither in any of its {len(ordered)} slices; Hounsfield units cannot be known",
        ))
    values = {m.rescale for m in ordered if m.rescale is not None}
    if len(values) != 1:
        raise FormatError(expected(
            f"RescaleSlope and RescaleIntercept in every slice of CT series {uid}",
            f"{len(lacking)} slice(s) without them ({examples}) while the others disagree ({len(values)} different values)",
        ))
    (value,) = values
    say(f"{len(lacking)} slice(s) without RescaleSlope/RescaleIntercept ({examples}): the series' value "
        f"(slope {value[0]:g}, intercept {value[1]:g}) applied to them", warn=True)
    return value


def _scan(folder: Path | str) -> tuple[Path, list[_Header], list[Path]]:
    """Every DICOM image header under ``folder`` (recursively), and the files that were skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(expected("an existing DICOM folder", f"'{folder}' which does not exist"))
    if folder.is_file():
        paths = [folder]  # one file is a folder of one
    else:
        paths = []
        for root, directories, names in os.walk(folder):
            directories.sort()  # walk in a fixed order so that messages and ties are reproducible
            paths.extend(Path(root) / name for name in sorted(names))
    headers, skipped = [], []
    for path in paths:
        dataset = _read_header(path)
        if dataset is None:
            skipped.append(path)
            continue
        try:
            headers.append(_header(path, dataset))
        except (TypeError, ValueError, AttributeError):
            skipped.append(path)  # Rows/Columns present but unreadable: not an image we can use
    if not headers:
        got = "an empty folder" if not paths else f"none among {len(paths)} files (e.g. '{_relative(paths[0], folder)}')"
        raise FormatError(expected(f"DICOM images in '{folder}' or its subfolders", got))
    return folder, headers, skipped


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder)) if folder.is_dir() else path.name
    except ValueError:
        return str(path)


def _group(headers: list[_Header]) -> dict[str, list[_Header]]:
    groups: dict[str, list[_Header]] = {}
    for header in headers:
        groups.setdefault(header.series_uid, []).append(header)
    return groups


def _summary(uid: str, members: list[_Header]) -> SeriesSummary:
    first = members[0]
    return SeriesSummary(
        uid=uid,
        modality=first.modality,
        description=first.description,
        number=first.series_number,
        images=len(members),
        localizers=sum(member.localizer for member in members),
    )


def _sorted_summaries(groups: dict[str, list[_Header]]) -> list[SeriesSummary]:
    summaries = [_summary(uid, members) for uid, members in groups.items()]
    return sorted(summaries, key=lambda s: (s.number is None, s.number or 0, s.uid))


def _describe(summary: SeriesSummary) -> str:
    parts = [f"{summary.images} image{'s' if summary.images != 1 else ''}", summary.modality or "no modality"]
    if summary.description:
        parts.append(repr(summary.description))
    return f"{summary.uid} ({', '.join(parts)})"


def list_series(folder: Path | str) -> list[SeriesSummary]:
    """The image series found under ``folder`` (recursively; DICOMDIR and non-DICOM files ignored).

    Returns
    -------
    series : list of SeriesSummary
        Sorted by SeriesNumber, then UID.
    """
    _, headers, _ = _scan(folder)
    return _sorted_summaries(_group(headers))


# --------------------------------------------------------------------------------------------
# Choosing and checking a series


def _choose(folder: Path, groups: dict[str, list[_Header]], series_uid: str | None, say) -> str:
    summaries = _sorted_summaries(groups)
    if series_uid is not None:
        series_uid = series_uid.strip()
        if series_uid not in groups:
            listing = "; ".join(_describe(s) for s in summaries)
            raise InputError(expected(f"a SeriesInstanceUID found in '{folder}'", f"'{series_uid}'; the folder holds: {listing}"))
        chosen = next(s for s in summaries if s.uid == series_uid)
        if chosen.modality != "CT":
            say(f"series {series_uid} has modality {chosen.modality or 'none'}, not CT: its values may not be Hounsfield units", warn=True)
        return series_uid
    ct = [s for s in summaries if s.modality == "CT"]
    candidates = [s for s in ct if s.localizers < s.images]
    if not candidates:
        got = "only localizer CT series: " if ct else "no CT series; found: "
        raise FormatError(expected(f"a CT series in '{folder}'", got + "; ".join(_describe(s) for s in summaries)))
    if len(candidates) > 1:
        listing = "; ".join(_describe(s) for s in candidates)
        raise InputError(expected(f"one CT series in '{folder}' or a choice with --series UID", f"{len(candidates)} CT series: {listing}"))
    for scout in (s for s in ct if s.localizers == s.images):
        say(f"skipped localizer series {_describe(scout)}")
    return candidates[0].uid


def _orientation_groups(slices: list[_Header]) -> list[list[_Header]]:
    """Slices grouped by ImageOrientationPatient (within ORIENTATION_TOLERANCE), largest group first."""
    groups: list[list[_Header]] = []
    for member in slices:
        # Compare with each group's first member rather than rounding, which would split values
        # that straddle a rounding boundary.
        for group in groups:
            if np.abs(np.subtract(group[0].orientation, member.orientation)).max() <= ORIENTATION_TOLERANCE:
                group.append(member)
                break
        else:
            groups.append([member])
    return sorted(groups, key=len, reverse=True)


def _checked_slices(folder: Path, uid: str, members: list[_Header], say) -> list[_Header]:
    """The series' images that form the volume: localizers, odd orientations and copies removed."""
    localizers = [m for m in members if m.localizer]
    slices = [m for m in members if not m.localizer]
    if not slices:
        raise FormatError(expected(f"cross-sectional images in series {uid}", f"only {len(members)} localizer image(s)"))
    if localizers:
        say(f"dropped {len(localizers)} localizer image(s) (ImageType LOCALIZER) from series {uid}")

    multiframe = [m for m in slices if m.frames > 1]
    if multiframe:
        where = _relative(multiframe[0].path, folder)
        raise FormatError(expected(
            "single-frame CT images (one slice per file)",
            f"a multi-frame image with {multiframe[0].frames} frames in '{where}' (enhanced CT is not supported)",
        ))
    colour = [m for m in slices if m.samples != 1]
    if colour:
        where = _relative(colour[0].path, folder)
        raise FormatError(expected("grayscale CT images (SamplesPerPixel 1)", f"{colour[0].samples} samples per pixel in '{where}'"))

    required = (("ImagePositionPatient", "position", 3), ("ImageOrientationPatient", "orientation", 6), ("PixelSpacing", "pixel_spacing", 2))
    for keyword, attribute, size in required:
        bad = [m for m in slices if getattr(m, attribute) is None or len(getattr(m, attribute)) != size]
        if bad:
            raise FormatError(expected(
                f"{keyword} ({size} numbers) on every image of series {uid}",
                f"{len(bad)} of {len(slices)} images without a usable one (e.g. '{_relative(bad[0].path, folder)}')",
            ))

    # A series sometimes carries a few images in another plane (scouts not flagged as such,
    # a reformat); the stack is the orientation most images share, if they are a clear majority.
    groups = _orientation_groups(slices)
    if len(groups) > 1:
        main = groups[0]
        if len(main) <= len(slices) - len(main):
            listing = ", ".join(f"{len(g)} x [{', '.join(f'{v:g}' for v in g[0].orientation)}]" for g in groups)
            raise FormatError(expected(f"one ImageOrientationPatient in series {uid}", f"mixed orientations with no clear majority: {listing}"))
        say(
            f"dropped {len(slices) - len(main)} image(s) whose ImageOrientationPatient differs from the other {len(main)} "
            f"(localizers or reformats) in series {uid}",
            warn=True,
        )
        slices = main

    copies = len(slices) - len({m.sop_uid for m in slices})
    if copies:
        seen, unique = set(), []
        for m in slices:
            if m.sop_uid not in seen:
                seen.add(m.sop_uid)
                unique.append(m)
        slices = unique
        say(f"ignored {copies} duplicate file(s) of the same image (same SOPInstanceUID)")

    sizes = Counter((m.rows, m.columns) for m in slices)
    if len(sizes) > 1:
        listing = ", ".join(f"{n} x {r}x{c}" for (r, c), n in sizes.most_common())
        raise FormatError(expected(f"the same image size (Rows x Columns) on every slice of series {uid}", listing))
    spacings = np.array([m.pixel_spacing for m in slices])
    if np.any(spacings <= 0):
        raise FormatError(expected("positive PixelSpacing", f"{spacings[np.any(spacings <= 0, axis=1)][0].tolist()} in series {uid}"))
    if np.ptp(spacings, axis=0).max() > 1e-3 * spacings.max():
        got = f"values from {spacings.min():g} to {spacings.max():g} mm"
        raise FormatError(expected(f"the same PixelSpacing on every slice of series {uid}", got))
    return slices


def _unit_axes(orientation: tuple[float, ...], uid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row direction, column direction and slice normal (unit vectors, LPS)."""
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    lengths = np.linalg.norm(row), np.linalg.norm(column)
    if min(lengths) < 0.5 or abs(np.dot(row, column)) / (lengths[0] * lengths[1]) > 1e-2:
        raise FormatError(expected("ImageOrientationPatient with two orthogonal unit vectors", f"{list(orientation)} in series {uid}"))
    row, column = row / lengths[0], column / lengths[1]
    normal = np.cross(row, column)
    return row, column, normal / np.linalg.norm(normal)


def _numbering_note(ordered: list[_Header]) -> str | None:
    numbers = [m.instance_number for m in ordered]
    if None in numbers or len(set(numbers)) != len(numbers) or len(numbers) < 2:
        return None
    steps = np.diff(numbers)
    if np.all(steps > 0):
        return None
    if np.all(steps < 0):
        return "InstanceNumber runs against the slice position (reversed): slices sorted by position"
    return "InstanceNumber order differs from the slice position (shuffled): slices sorted by position"


def _tolerance(spacing: float) -> float:
    """How far a step may differ from ``spacing`` (mm) and still be that spacing."""
    return max(POSITION_EPSILON_MM, SPACING_TOLERANCE * spacing)


def _whole_multiple(step: float, spacing: float) -> int:
    """k >= 2 when ``step`` is k times ``spacing`` (k - 1 slices missing), else 0."""
    k = int(np.rint(step / spacing))
    return k if k >= 2 and abs(step - k * spacing) <= k * _tolerance(spacing) else 0


@dataclass
class _Segment:
    """Consecutive steps (indices ``first..last`` into the steps, inclusive) of one spacing."""

    first: int
    last: int
    spacing: float
    gaps: list[int]  # steps inside the segment that skip slices (whole multiples of the spacing)

    def regular_steps(self) -> int:
        return self.last - self.first + 1 - len(self.gaps)


def _segments(steps: np.ndarray) -> list[_Segment]:
    """``steps`` (N - 1,) mm cut into stretches of equal spacing, missing slices folded into theirs."""
    segments: list[_Segment] = []
    start = 0
    for i in range(1, len(steps) + 1):
        spacing = float(steps[start:i].mean())
        if i == len(steps) or abs(steps[i] - spacing) > _tolerance(spacing):
            segments.append(_Segment(start, i - 1, spacing, []))
            start = i
    # A lone step that is a whole multiple of a neighbour's spacing is that neighbour's missing
    # slice(s), not a spacing of its own: fold it (and a matching stretch beyond it) into the neighbour.
    i = 0
    while i < len(segments):
        lone = segments[i]
        if lone.first != lone.last or lone.gaps:
            i += 1
            continue
        step = float(steps[lone.first])
        left, right = (segments[i - 1] if i > 0 else None), (segments[i + 1] if i + 1 < len(segments) else None)
        joined = [n for n in (left, right) if n is not None and _whole_multiple(step, n.spacing)]
        if not joined:
            i += 1
            continue
        if len(joined) == 2 and abs(left.spacing - right.spacing) > _tolerance(left.spacing):
            joined = joined[:1]
        first, last = min(n.first for n in joined + [lone]), max(n.last for n in joined + [lone])
        gaps = sorted([lone.first] + [g for n in joined for g in n.gaps])
        regular = np.delete(steps[first:last + 1], np.subtract(gaps, first))
        merged = _Segment(first, last, float(regular.mean()), gaps)
        lo = i - 1 if joined[0] is left else i
        segments[lo:lo + len(joined) + 1] = [merged]
        i = lo
    return segments


def _is_transition(segments: list[_Segment], i: int) -> bool:
    """Whether lone step ``i`` joins two runs of different spacings, being no longer than the larger one.

    Such a step is a scanner switching protocol in mid-series (SPEC section 5: 1.08 mm between
    runs of 4 and 7 mm); anywhere else a lone step is a misplaced slice.
    """
    if not 0 < i < len(segments) - 1:
        return False
    spacings = sorted((segments[i - 1].spacing, segments[i + 1].spacing))
    return (
        min(segments[i - 1].regular_steps(), segments[i + 1].regular_steps()) >= 2
        and spacings[1] - spacings[0] > _tolerance(spacings[0])
        and segments[i].spacing <= spacings[1] + _tolerance(spacings[1])
    )


def _check_spacing(folder: Path, uid: str, ordered: list[_Header], heights: np.ndarray) -> tuple[SpacingRun, ...]:
    """The runs of equal slice spacing of a stack sorted by ``heights`` (mm along the normal), or a verdict.

    Returns
    -------
    runs : tuple of SpacingRun
        One run covering every slice for an evenly spaced stack; several for variable spacing
        (consecutive runs of different spacings, each at least three slices, joined directly or by
        one step no longer than the larger spacing).

    Raises
    ------
    FormatError
        Two slices at one position, missing slices inside a run (a gap), or spacing that fits neither.
    """
    steps = np.diff(heights)
    same = np.flatnonzero(steps <= POSITION_EPSILON_MM)
    if same.size:
        a, b = ordered[same[0]], ordered[same[0] + 1]
        raise FormatError(expected(
            f"one image per slice position in series {uid}",
            f"'{_relative(a.path, folder)}' and '{_relative(b.path, folder)}' both at {heights[same[0]]:.2f} mm along the normal "
            f"({same.size} such pair(s); several acquisitions or phases in one series?)",
        ))
    mean = (heights[-1] - heights[0]) / (len(heights) - 1)
    grid = heights[0] + mean * np.arange(len(heights))
    if np.abs(heights - grid).max() <= max(POSITION_EPSILON_MM, SPACING_TOLERANCE * mean):
        return (SpacingRun(float(mean), 0, len(heights) - 1),)

    segments = _segments(steps)
    gapped = [s for s in segments if s.gaps]
    if gapped:
        base = gapped[0].spacing
        gaps = [g for s in segments for g in s.gaps]
        multiples = [_whole_multiple(float(steps[g]), s.spacing) for s in segments for g in s.gaps]
        first = gaps[0]
        missing = sum(multiples) - len(gaps)
        more = f"; {len(gaps)} gaps, {missing} missing slices in all" if len(gaps) > 1 else ""
        raise FormatError(expected(
            f"evenly spaced slices in series {uid} ({base:.2f} mm apart)",
            f"a gap of {steps[first]:.2f} mm (about {multiples[0] - 1} missing slice{'s' if multiples[0] > 2 else ''}) "
            f"between slice positions {heights[first]:.2f} and {heights[first + 1]:.2f} mm "
            f"('{_relative(ordered[first].path, folder)}' and '{_relative(ordered[first + 1].path, folder)}'){more}",
        ))

    runs = [s for s in segments if s.regular_steps() >= 2]
    lone = [i for i, s in enumerate(segments) if s.regular_steps() < 2]
    if not all(_is_transition(segments, i) for i in lone):
        runs = []
    if len(runs) < 2:
        raise FormatError(expected(
            f"evenly spaced slices in series {uid} (within {SPACING_TOLERANCE:.0%} of the spacing)",
            f"uneven spacing from {steps.min():.2f} to {steps.max():.2f} mm between neighbouring slices",
        ))
    return tuple(SpacingRun(s.spacing, s.first, s.last + 1) for s in runs)


def _single_slice_spacing(header: _Header, say) -> float:
    for value, name in ((header.slice_thickness, "SliceThickness"), (header.spacing_between_slices, "SpacingBetweenSlices")):
        if value is not None and value > 0:
            say(f"single slice: slice spacing taken from {name} ({value:g} mm)")
            return float(value)
    say("single slice without SliceThickness: slice spacing set to 1 mm (volumes in mm^3 will be wrong)", warn=True)
    return 1.0


def _check_whole_series(path: Path, uid: str) -> None:
    """Refuse one file of a multi-slice series: read alone it would make a one-slice volume."""
    import pydicom

    others = 0
    for sibling in sorted(path.parent.iterdir()):
        if sibling == path or not sibling.is_file() or sibling.name.upper() == "DICOMDIR":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(sibling, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        except Exception:  # not DICOM, or damaged: not a slice of this series
            continue
        others += str(dataset.get("SeriesInstanceUID", "") or "") == uid
    if others:
        raise InputError(expected(
            "a DICOM folder (a single file only when it is the whole series)",
            f"'{path.name}', while its folder '{path.parent}' holds {others + 1} slices of that series {uid}; pass the folder instead",
        ))


def _plane_tilt(normal: np.ndarray, header_tilt: float | None) -> float:
    """The image plane's obliquity in degrees when GantryDetectorTilt (within 1 degree) says it is the tilt, else 0."""
    if not header_tilt:
        return 0.0
    plane_angle = float(np.degrees(np.arccos(np.clip(np.abs(normal).max(), -1.0, 1.0))))
    return plane_angle if abs(plane_angle - abs(header_tilt)) <= 1.0 else 0.0


def _tilt_note(header_tilt: float | None, normal: np.ndarray, say) -> None:
    if not header_tilt:
        return
    # When the header's tilt shows up as an oblique image plane, the affine carries it exactly.
    if _plane_tilt(normal, header_tilt):
        say(f"gantry tilt {header_tilt:g} deg (GantryDetectorTilt): the image plane is oblique and the affine follows it")
    else:
        say(
            f"GantryDetectorTilt says {header_tilt:g} deg but the slice geometry shows no such tilt: "
            "trusting ImagePositionPatient/ImageOrientationPatient",
            warn=True,
        )


def _runs_text(runs: tuple[SpacingRun, ...], positions: np.ndarray, tilt_deg: float) -> str:
    """"2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm (slices 14-27) along the slice normal (...)"."""
    listed = [run.describe() for run in runs]
    text = f"{len(runs)} spacing runs: {', '.join(listed[:-1])} and {listed[-1]} along the slice normal"
    # Under a gantry tilt the table steps (what the headers' positions show) are longer than the
    # plane-to-plane spacing; both are said so that either can be recognised.
    centre = [float(np.linalg.norm(np.diff(positions[r.first_slice:r.last_slice + 1], axis=0), axis=1).mean()) for r in runs]
    extra = []
    if any(f"{c:.2f}" != f"{r.spacing_mm:.2f}" for c, r in zip(centre, runs)):
        extra.append(f"{', '.join(f'{c:.2f}' for c in centre[:-1])} and {centre[-1]:.2f} mm between slice centres")
    if tilt_deg:
        extra.append(f"gantry tilt {tilt_deg:.1f} deg")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _slice_grid(runs: tuple[SpacingRun, ...], heights: np.ndarray) -> tuple[SliceGrid, np.ndarray]:
    """The regular grid for variable spacing and its (M,) float64 heights along the normal (mm).

    The spacing is the smallest run's (as dcm2niix chooses: no run loses resolution); the grid
    starts at the first slice and has round(extent / spacing) + 1 slices, so it ends within half
    a spacing of the last slice.
    """
    spacing = min(run.spacing_mm for run in runs)
    count = int(np.rint((heights[-1] - heights[0]) / spacing)) + 1
    return SliceGrid(spacing, count), heights[0] + spacing * np.arange(count)


def _resample_slices(volume: np.ndarray, heights: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(Z, Y, X) float32 slices at ``heights`` (Z,) -> (M, Y, X) float32 at ``targets`` (M,), mm along the normal.

    Linear interpolation in HU between the two neighbouring source slices; a target beyond the
    first or last slice (by under half a grid step) takes that slice's values.
    """
    below = np.clip(np.searchsorted(heights, targets, side="right") - 1, 0, len(heights) - 2)
    weights = np.clip((targets - heights[below]) / (heights[below + 1] - heights[below]), 0.0, 1.0)
    resampled = np.empty((len(targets), *volume.shape[1:]), dtype=np.float32)
    for m, (k, w) in enumerate(zip(below, weights)):
        resampled[m] = (1.0 - w) * volume[k] + w * volume[k + 1]
    return resampled


# --------------------------------------------------------------------------------------------
# Pixels


def _infer_transfer_syntax(dataset) -> None:
    """Give a file read without its meta header the transfer syntax it was read with (decoders need it)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    encoding = getattr(dataset, "original_encoding", None)  # pydicom 3: (implicit VR, little endian)
    implicit, little = encoding if encoding else (dataset.is_implicit_VR, dataset.is_little_endian)
    if meta is None:
        meta = dataset.file_meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _hounsfield(path: Path, folder: Path, rows: int, columns: int, fallback: tuple[float, float] | None = None) -> np.ndarray:
    """One slice as ``(rows, columns)`` float32 HU through the modality LUT (Rescale or LUT
    sequence); ``fallback`` (slope, intercept) stands in for missing rescale tags."""
    import pydicom

    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom 2.x
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    dataset = pydicom.dcmread(path, force=True)
    _infer_transfer_syntax(dataset)
    try:
        raw = dataset.pixel_array
    except Exception as error:  # missing decoder plugins and damaged streams raise various types
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = f"{syntax.name} ({syntax})" if syntax is not None else "unknown transfer syntax"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FormatError(expected(
            "pixel data that pydicom can decode (compressed CT needs pylibjpeg, pylibjpeg-libjpeg and pylibjpeg-openjpeg)",
            f"{name} in '{_relative(path, folder)}': {reason}",
        )) from None
    if raw.shape != (rows, columns):
        raise FormatError(expected(f"a {rows}x{columns} image", f"pixel data of shape {raw.shape} in '{_relative(path, folder)}'"))
    if fallback is not None and _rescale(dataset) is None and "ModalityLUTSequence" not in dataset:
        return (raw.astype(np.float32) * np.float32(fallback[0]) + np.float32(fallback[1])).astype(np.float32)
    return np.asarray(apply_modality_lut(raw, dataset), dtype=np.float32)


def _correct_tilt(volume: np.ndarray, drift_rows: np.ndarray, drift_columns: np.ndarray) -> np.ndarray:
    """Shift each slice in-plane so that the stack lines up along the normal (linear interpolation)."""
    from scipy import ndimage

    corrected = np.empty_like(volume)
    for k in range(volume.shape[0]):
        # The orthogonal grid's pixel (j, i) lies at (j - drift, i - drift) in the acquired slice.
        corrected[k] = ndimage.shift(volume[k], (drift_rows[k], drift_columns[k]), order=1, mode="constant", cval=AIR_HU)
    return corrected


# --------------------------------------------------------------------------------------------
# The reader


def read_ct_series(folder: Path | str, *, series_uid: str | None = None, correct_tilt: bool = False, resample: bool = True) -> CTSeries:
    """Read one CT series from a folder of DICOM files as a volume in Hounsfield units.

    Parameters
    ----------
    folder : path
        Folder searched recursively (a single file also works, when its folder holds no other
        slice of its series). DICOMDIR, non-DICOM files and non-image DICOM objects are ignored.
    series_uid : str, optional
        SeriesInstanceUID to read. Without it the folder must hold exactly one CT series with
        cross-sectional images (localizer-only series do not count).
    correct_tilt : bool
        A stack acquired with gantry tilt is refused unless this is set; then each slice is
        shifted in-plane (linear interpolation, new pixels at -1024 HU) onto an orthogonal grid.
    resample : bool
        A series whose slices come in runs of different spacings (finer through the skull base,
        say) is interpolated along the normal onto one regular grid at the smallest run's spacing
        (linear in HU between neighbouring slices, first to last slice), as dcm2niix and ITK do;
        False refuses it instead. Missing slices inside a run are refused either way.

    Returns
    -------
    CTSeries
        ``volume`` (Z, Y, X) float32 HU, ``affine`` (4, 4) float64 to LPS mm, notes, the spacing
        runs, and ``resampled`` (True after tilt correction or resampling onto a regular grid).

    Raises
    ------
    InputError
        The folder does not exist, several CT series and no choice, an unknown ``series_uid``, or
        one file of a series whose other slices sit beside it.
    FormatError
        No DICOM images, missing geometry, mixed orientations, missing slices, uneven spacing,
        variable spacing (without ``resample``), gantry tilt (without ``correct_tilt``), or pixel
        data that cannot be decoded.
    """
    notes: list[str] = []

    def say(message: str, *, warn: bool = False) -> None:
        notes.append(message)
        (console.warn if warn else console.info)(message)

    folder, headers, skipped = _scan(folder)
    if skipped:
        examples = ", ".join(f"'{_relative(p, folder)}'" for p in skipped[:3])
        say(f"ignored {len(skipped)} file(s) that are not DICOM images ({examples}{', ...' if len(skipped) > 3 else ''})")
    groups = _group(headers)
    uid = _choose(folder, groups, series_uid, say)
    if folder.is_file():
        _check_whole_series(folder, uid)
    slices = _checked_slices(folder, uid, groups[uid], say)
    row, column, normal = _unit_axes(slices[0].orientation, uid)
    row_spacing, column_spacing = (float(v) for v in slices[0].pixel_spacing)

    heights = np.array([np.dot(m.position, normal) for m in slices])
    order = np.argsort(heights, kind="stable")
    ordered = [slices[i] for i in order]
    heights = heights[order]
    numbering = _numbering_note(ordered)
    if numbering:
        say(numbering)

    positions = np.array([m.position for m in ordered], dtype=np.float64)
    runs: tuple[SpacingRun, ...] = ()
    header_tilt = next((m.gantry_tilt for m in ordered if m.gantry_tilt), None)
    tilt_deg = _plane_tilt(normal, header_tilt)
    if len(ordered) == 1:
        slice_spacing = _single_slice_spacing(ordered[0], say)
        drift_rows = drift_columns = np.zeros(1)
    else:
        runs = _check_spacing(folder, uid, ordered, heights)
        slice_spacing = runs[0].spacing_mm
        # Where each slice sits in-plane relative to the first, in pixels: zero for a straight stack.
        offsets = positions - positions[0]
        offsets -= np.outer(offsets @ normal, normal)
        drift_rows, drift_columns = offsets @ column / row_spacing, offsets @ row / column_spacing
        drift = float(np.hypot(drift_rows, drift_columns).max())
        if drift > TILT_TOLERANCE_PIXELS:
            # A drifting stack's tilt is the angle it runs off the normal, whatever the image plane does.
            along = positions[-1] - positions[0]
            tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(along - np.dot(along, normal) * normal), abs(np.dot(along, normal)))))
        if len(runs) > 1 and not resample:
            raise FormatError(expected(
                f"evenly spaced slices in series {uid}",
                f"{_runs_text(runs, positions, tilt_deg)}; rerun without --no-resample (resample=True) to resample them "
                f"onto one regular grid of {min(r.spacing_mm for r in runs):.2f} mm, as dcm2niix does",
            ))
        if drift > TILT_TOLERANCE_PIXELS:
            said = f"; GantryDetectorTilt {header_tilt:g} deg" if header_tilt is not None else ""
            if not correct_tilt:
                also = f"; the slices also come in {_runs_text(runs, positions, 0.0)}" if len(runs) > 1 else ""
                raise FormatError(expected(
                    f"slices stacked along their normal in series {uid}",
                    f"gantry tilt: the stack runs {tilt_deg:.1f} deg off the slice normal (in-plane drift {drift:.1f} pixels "
                    f"over {len(ordered)} slices{said}); rerun with --correct-tilt (correct_tilt=True) to shift the slices "
                    f"onto an orthogonal grid, or reslice the series{also}",
                ))
            # One line for the tilt: the header's angle, when there is one, is said here next to the measured one
            # (_tilt_note compares it with the image plane, which a drifting stack need not tilt at all).
            header_said = f" (GantryDetectorTilt {header_tilt:g} deg)" if header_tilt is not None else ""
            say(
                f"gantry tilt {tilt_deg:.1f} deg{header_said}: slices shifted in-plane by up to {drift:.1f} pixels onto an orthogonal grid "
                f"(linear interpolation, {AIR_HU:g} HU outside the scanned field)",
                warn=True,
            )
        else:
            drift_rows = drift_columns = np.zeros(len(ordered))
    tilt_corrected = bool(np.any(drift_rows) or np.any(drift_columns))
    if not tilt_corrected:
        _tilt_note(header_tilt, normal, say)

    grid = targets = None
    if len(runs) > 1:
        grid, targets = _slice_grid(runs, heights)
        slice_spacing = grid.spacing_mm
        say(
            f"variable slice spacing, {_runs_text(runs, positions, tilt_deg)}: resampled onto a regular grid of {grid.slices} "
            f"slices {grid.spacing_mm:.2f} mm apart (the smallest spacing, as dcm2niix; linear interpolation in HU)",
            warn=True,
        )

    rows, columns = ordered[0].rows, ordered[0].columns
    fallback = _check_rescale(folder, uid, ordered, say) if ordered[0].modality.upper() in ("CT", "") else None
    volume = np.empty((len(ordered), rows, columns), dtype=np.float32)
    for k, member in enumerate(ordered):
        volume[k] = _hounsfield(member.path, folder, rows, columns, fallback)
    # Tilt first: once each slice is shifted onto the first one's in-plane grid, the stack runs
    # along the normal and can be interpolated between neighbours pixel for pixel.
    if tilt_corrected:
        volume = _correct_tilt(volume, drift_rows, drift_columns)
    if targets is not None:
        volume = _resample_slices(volume, heights, targets)

    affine = np.eye(4)
    affine[:3, 0] = row * column_spacing
    affine[:3, 1] = column * row_spacing
    affine[:3, 2] = normal * slice_spacing
    affine[:3, 3] = positions[0]
    return CTSeries(
        volume=volume,
        affine=affine,
        spacing=(float(slice_spacing), row_spacing, column_spacing),
        series_uid=uid,
        files=tuple(m.path for m in ordered),
        notes=tuple(notes),
        resampled=tilt_corrected or grid is not None,
        spacing_runs=runs,
        resampled_grid=grid,
        tilt_corrected=tilt_corrected,
        tilt_deg=tilt_deg,
    )
