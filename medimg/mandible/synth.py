"""A synthetic head CT written as a real DICOM series, with its mandible mask as NIfTI.

``write_synthetic_series`` gives the files a scanner and an annotator would: a CT Image Storage
series (one file per axial slice, int16 stored values with RescaleIntercept -1024) and the
ground truth of :func:`medimg.mandible.phantom.make_head_ct` as ``mandible_mask.nii.gz`` on the
same grid, so that ``read_ct_series`` + ``read_nifti`` give a volume and a mask that line up.
Beside them, ``params.json`` holds the drawn :class:`~medimg.mandible.phantom.HeadParams`:
``render(read_params(path, HeadParams))`` gives the same head again.
``threshold_baseline`` is the naive method the paper argues against, kept to show it fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.common.errors import InputError, OptionValueError, OutputError, expected
from medimg.mandible.phantom import DEFAULT_SHAPE, HeadPhantom, make_head_ct

__all__ = ["write_synthetic_series", "threshold_baseline", "make_head_ct", "HeadPhantom", "MASK_NAME", "DICOM_FOLDER", "PARAMS_NAME"]

DICOM_FOLDER = "dicom"
MASK_NAME = "mandible_mask.nii.gz"
PARAMS_NAME = "params.json"
RESCALE_INTERCEPT = -1024
# Fixed so that the same seed gives the same bytes; a synthetic study has no real date.
_STUDY_DATE, _STUDY_TIME = "20240101", "120000"


def threshold_baseline(hu: np.ndarray, *, threshold_hu: float = 300.0) -> np.ndarray:
    """The largest face-connected component of ``hu >= threshold_hu``: "the mandible" by thresholding.

    Mandible, maxilla, skull base and spine share their HU, touch or nearly touch at the teeth
    and the joints, and blur together; this is what the paper's network has to do better than.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray of int16 or float (HU)
    threshold_hu : float
        Bone threshold.

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool
        All False when no voxel reaches the threshold.
    """
    from scipy import ndimage

    volume = np.asarray(hu)
    if volume.ndim != 3:
        raise InputError(expected("a 3-D (Z, Y, X) HU volume", f"an array of shape {volume.shape}"))
    bone = volume >= threshold_hu
    components, count = ndimage.label(bone)
    if count == 0:
        return bone
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters that reads back as the same float."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _uid(seed: int, shape, metal: bool, *parts) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["medimg synthetic head CT", str(int(seed)), "x".join(map(str, shape)), str(bool(metal)), *map(str, parts)])


def _slice_bytes(phantom: HeadPhantom, k: int, *, seed: int, metal: bool, uids: dict) -> bytes:
    import io

    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

    shape = phantom.hu.shape
    sop_uid = _uid(seed, shape, metal, "sop", k)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = _STUDY_TIME
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "medimg (synthetic)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic head CT"
    ds.SeriesDescription = f"Synthetic head CT, seed {int(seed)}" + (", metal" if metal else "")
    ds.PatientName = "SYNTHETIC^HEAD"
    ds.PatientID = f"SYNTH-{int(seed)}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = _ds(phantom.spacing[0])
    ds.KVP = "120"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    x0, y0, z0 = phantom.affine[:3, 3]
    z = z0 + k * phantom.spacing[0]
    ds.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(z)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = shape[1], shape[2]
    ds.PixelSpacing = [_ds(phantom.spacing[1]), _ds(phantom.spacing[2])]
    ds.SpacingBetweenSlices = _ds(phantom.spacing[0])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = ["400", "40"]
    ds.WindowWidth = ["1800", "400"]
    ds.WindowCenterWidthExplanation = ["BONE", "SOFT TISSUE"]
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    stored = (phantom.hu[k].astype(np.int32) - RESCALE_INTERCEPT).astype("<i2")
    ds.PixelData = stored.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def series_affine_ras(phantom: HeadPhantom) -> np.ndarray:
    """(4, 4) voxel (i, j, k) -> RAS mm of the series as written (positions as their decimal strings read back)."""
    x0, y0, z0 = (float(_ds(v)) for v in phantom.affine[:3, 3])
    n = phantom.hu.shape[0]
    dz = float(_ds(phantom.spacing[0]))
    # read_ct_series takes the slice spacing as the mean step between the written positions.
    step = (float(_ds(z0 + (n - 1) * dz)) - z0) / (n - 1) if n > 1 else dz
    affine = np.eye(4)
    affine[0, 0] = float(_ds(phantom.spacing[2]))
    affine[1, 1] = float(_ds(phantom.spacing[1]))
    affine[2, 2] = step
    affine[:3, 3] = (x0, y0, z0)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def write_synthetic_series(out_dir: Path | str, *, seed: int, shape=DEFAULT_SHAPE, metal: bool = False, style: str = "default") -> list[Path]:
    """Write a synthetic head CT as a DICOM series, its mandible mask as NIfTI and its parameters as JSON.

    Parameters
    ----------
    out_dir : folder (created); ``out_dir/dicom`` must be absent or empty
    seed : int
        Same seed, shape and ``metal`` -> byte-identical files (UIDs derive from them too).
    shape : (Z, Y, X) tuple of int
        Grid of :func:`make_head_ct`; the field of view stays 120 x 230.4 x 230.4 mm.
    metal : bool
        Dental fillings with streak artefacts.
    style : a key of :data:`~medimg.mandible.phantom_family.FAMILIES`: ``default`` (the shipped
        weights' training heads), ``wide`` (scanners and people varied: pose, dentition, kernels,
        slice thickness, pixel size, calibration, beam hardening; the grid is drawn, ``shape`` is
        ignored) or ``held-out`` (the same anatomy on scanner settings ``wide`` never uses).

    Returns
    -------
    list of Path
        ``out_dir/dicom/IM0001.dcm`` ... (one per slice, inferior to superior, InstanceNumber
        1..Z), ``out_dir/params.json`` (the HeadParams drawn) and, last,
        ``out_dir/mandible_mask.nii.gz`` (uint8 0/1, RAS affine of the series).

    Raises
    ------
    OutputError
        ``out_dir`` is a file, or ``out_dir/dicom`` already holds files.
    InputError
        ``shape`` is not usable.
    """
    from medimg.common.families import write_params
    from medimg.common.nifti import write_nifti
    from medimg.common.outputs import write_bytes_atomic

    out_dir = Path(out_dir)
    dicom_dir = out_dir / DICOM_FOLDER
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{out_dir}' which is a file"))
    if dicom_dir.exists() and (not dicom_dir.is_dir() or any(dicom_dir.iterdir())):
        raise OutputError(expected(f"an empty or absent '{dicom_dir}' (a series must not mix with other files)", "one that already holds files"))
    from medimg.mandible.phantom_family import FAMILIES

    if style not in FAMILIES:
        raise OptionValueError(expected(f"--style among {', '.join(FAMILIES)}", repr(style)))
    phantom = make_head_ct(seed=seed, shape=shape, metal=metal, family=FAMILIES[style])
    dicom_dir.mkdir(parents=True, exist_ok=True)
    family_part = () if style == "default" else (style,)  # default heads keep the UIDs they always had
    uids = {name: _uid(seed, phantom.hu.shape, metal, name, *family_part) for name in ("study", "series", "frame")}
    written = []
    for k in range(phantom.hu.shape[0]):
        data = _slice_bytes(phantom, k, seed=seed, metal=metal, uids=uids)
        written.append(write_bytes_atomic(dicom_dir / f"IM{k + 1:04d}.dcm", data))
    written.append(write_params(out_dir / PARAMS_NAME, phantom.params))
    # The mask stays last: callers take it as the list's final entry.
    written.append(write_nifti(out_dir / MASK_NAME, phantom.mandible, series_affine_ras(phantom)))
    return written
