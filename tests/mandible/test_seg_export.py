from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medimg.common.dicom_series import read_ct_series
from medimg.common.errors import InputError
from medimg.mandible.seg_export import write_dicom_seg

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
ROWS, COLUMNS = 16, 16


def _write_ct_series(folder: Path, heights) -> list[Path]:
    """A complete little CT Image Storage series, files named against the slice order."""
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k, z in enumerate(heights):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Mandible", "MI0001", "19700101", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study, "20240101", "120000", "1"
        ds.ReferringPhysicianName, ds.AccessionNumber = "", ""
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = series, 3, "CT"
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
        ds.Manufacturer = "medimg tests"
        ds.InstanceNumber = len(heights) - k  # numbered against the position order, as scanners often do
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-4.0, -4.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.SliceThickness = 2.0
        ds.KVP, ds.AcquisitionNumber = 120, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.Rows, ds.Columns = ROWS, COLUMNS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.full((ROWS, COLUMNS), 1024 + 100 * k, "<i2").tobytes()
        path = folder / f"IM{len(heights) - k:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _mask() -> np.ndarray:
    mask = np.zeros((3, ROWS, COLUMNS), bool)
    mask[0, 2:6, 3:9] = True
    mask[2, 8:14, 1:4] = True  # slice 1 stays empty
    mask[2, 0, 15] = True
    return mask


def test_seg_frames_reference_their_source_images_and_hold_the_mask(tmp_path):
    _write_ct_series(tmp_path / "ct", [10.0, 12.0, 14.0])
    series = read_ct_series(tmp_path / "ct")
    assert [p.name for p in series.files] == ["IM0003.dcm", "IM0002.dcm", "IM0001.dcm"]
    mask = _mask()
    path = write_dicom_seg(tmp_path / "out" / "mandible_seg.dcm", mask, series.files)
    assert path == tmp_path / "out" / "mandible_seg.dcm"
    assert [p.name for p in path.parent.iterdir()] == ["mandible_seg.dcm"]

    seg = pydicom.dcmread(path)
    assert seg.SOPClassUID == SEGMENTATION_STORAGE
    assert seg.SegmentationType == "BINARY"
    assert int(seg.NumberOfFrames) == 2  # the empty slice 1 is left out
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "Mandible"
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "91609006"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName.startswith("medimg")
    source_uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in series.files]
    referenced = [
        frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for frame in seg.PerFrameFunctionalGroupsSequence
    ]
    assert sorted(referenced) == sorted([source_uids[0], source_uids[2]])
    assert seg.StudyInstanceUID == pydicom.dcmread(series.files[0], stop_before_pixels=True).StudyInstanceUID

    import highdicom as hd

    pixels = hd.seg.segread(path).get_pixels_by_source_instance(source_uids, assert_missing_frames_are_empty=True)
    assert pixels.shape == (3, ROWS, COLUMNS, 1)
    np.testing.assert_array_equal(pixels[..., 0].astype(bool), mask)


def test_same_mask_and_sources_give_the_same_uids(tmp_path):
    files = _write_ct_series(tmp_path / "ct", [0.0, 2.0, 4.0])
    first = pydicom.dcmread(write_dicom_seg(tmp_path / "a.dcm", _mask(), files))
    second = pydicom.dcmread(write_dicom_seg(tmp_path / "b.dcm", _mask(), files))
    assert first.SOPInstanceUID == second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    other = np.zeros_like(_mask())
    other[1, 5, 5] = True
    assert pydicom.dcmread(write_dicom_seg(tmp_path / "c.dcm", other, files)).SOPInstanceUID != first.SOPInstanceUID


def test_empty_mask_writes_one_empty_frame_per_slice(tmp_path):
    files = _write_ct_series(tmp_path / "ct", [0.0, 2.0, 4.0])
    seg = pydicom.dcmread(write_dicom_seg(tmp_path / "empty.dcm", np.zeros((3, ROWS, COLUMNS), bool), files))
    assert int(seg.NumberOfFrames) == 3
    assert not seg.pixel_array.any()


def test_mask_that_does_not_match_the_sources_is_refused(tmp_path):
    files = _write_ct_series(tmp_path / "ct", [0.0, 2.0, 4.0])
    with pytest.raises(InputError, match="expected a \\(Z, Y, X\\) mask with one slice per source image, got mask of shape \\(2, 16, 16\\) and 3"):
        write_dicom_seg(tmp_path / "x.dcm", np.ones((2, ROWS, COLUMNS), bool), files)
    with pytest.raises(InputError, match="expected single-frame source images of 8 x 16 pixels"):
        write_dicom_seg(tmp_path / "x.dcm", np.ones((3, 8, COLUMNS), bool), files)
    assert not (tmp_path / "x.dcm").exists()


def test_warnings_about_real_headers_are_one_line_each(tmp_path, capsys):
    # A real scanner file whose PatientName has a single component: highdicom warns over several
    # sentences with a URL; the user gets the first sentence, once, as a Warning line.
    from .conftest import pydicom_files

    source = tmp_path / "J2K_pixelrep_mismatch.dcm"
    source.write_bytes((pydicom_files() / "J2K_pixelrep_mismatch.dcm").read_bytes())
    mask = np.zeros((1, 512, 512), bool)
    mask[0, 200:300, 150:250] = True
    capsys.readouterr()
    path = write_dicom_seg(tmp_path / "seg.dcm", mask, [source])
    assert capsys.readouterr().err.splitlines() == [
        'Warning: DICOM SEG: The string "JXD191021006" is unlikely to represent the intended person name since it '
        "contains only a single component."
    ]
    assert int(pydicom.dcmread(path).NumberOfFrames) == 1
