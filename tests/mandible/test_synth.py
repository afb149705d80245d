"""Tests of the synthetic DICOM series and the thresholding baseline (medimg.mandible.synth)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medimg.common.dicom_series import read_ct_series
from medimg.common.errors import InputError, OutputError
from medimg.common.families import read_params
from medimg.common.nifti import read_nifti
from medimg.mandible.phantom import HeadParams, render
from medimg.mandible.synth import make_head_ct, threshold_baseline, write_synthetic_series

SMALL = (16, 96, 96)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, write_synthetic_series(out, seed=7, shape=SMALL)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_files_written(written):
    out, files = written
    assert [p.name for p in files[:-2]] == [f"IM{k:04d}.dcm" for k in range(1, 17)]
    assert all(p.parent == out / "dicom" for p in files[:-2])
    assert files[-2:] == [out / "params.json", out / "mandible_mask.nii.gz"]
    assert sorted(p.name for p in out.iterdir()) == ["dicom", "mandible_mask.nii.gz", "params.json"]


def test_params_json_renders_the_written_series_again(written):
    out, _ = written
    params = read_params(out / "params.json", HeadParams)
    assert params.shape == SMALL and params.spacing == pytest.approx((7.5, 2.4, 2.4)) and params.fillings == ()
    again = render(params)
    np.testing.assert_array_equal(read_ct_series(out / "dicom").volume, again.hu.astype(np.float32))
    mask, _ = read_nifti(out / "mandible_mask.nii.gz")
    np.testing.assert_array_equal(mask.astype(bool), again.mandible)


def test_series_reads_back_as_the_phantom(written):
    out, _ = written
    phantom = make_head_ct(seed=7, shape=SMALL)
    series = read_ct_series(out / "dicom")
    np.testing.assert_array_equal(series.volume, phantom.hu.astype(np.float32))
    assert series.spacing == pytest.approx((7.5, 2.4, 2.4))
    np.testing.assert_allclose(series.affine, phantom.affine, atol=1e-6)
    assert series.notes == ()  # a clean series: nothing to report
    assert [p.name for p in series.files] == [f"IM{k:04d}.dcm" for k in range(1, 17)]


def test_headers_make_a_proper_ct_series(written):
    out, files = written
    headers = [pydicom.dcmread(p) for p in files[:-2]]
    first = headers[0]
    assert first.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert first.SOPClassUID == CTImageStorage == first.file_meta.MediaStorageSOPClassUID
    assert first.Modality == "CT" and str(first.PatientName) == "SYNTHETIC^HEAD" and first.PatientPosition == "HFS"
    assert list(first.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert (first.BitsAllocated, first.BitsStored, first.HighBit, first.PixelRepresentation) == (16, 16, 15, 1)
    assert (float(first.RescaleSlope), float(first.RescaleIntercept)) == (1.0, -1024.0)
    assert float(first.SliceThickness) == float(first.SpacingBetweenSlices) == 7.5
    assert [float(v) for v in first.PixelSpacing] == [2.4, 2.4]
    assert len({h.SeriesInstanceUID for h in headers}) == 1 and len({h.StudyInstanceUID for h in headers}) == 1
    assert len({h.FrameOfReferenceUID for h in headers}) == 1
    assert len({h.SOPInstanceUID for h in headers}) == 16
    assert all(h.SOPInstanceUID == h.file_meta.MediaStorageSOPInstanceUID for h in headers)
    assert [h.InstanceNumber for h in headers] == list(range(1, 17))
    heights = np.array([float(h.ImagePositionPatient[2]) for h in headers])
    np.testing.assert_allclose(np.diff(heights), 7.5)
    stored = headers[3].pixel_array
    assert stored.dtype == np.int16
    np.testing.assert_array_equal(stored.astype(np.int32) - 1024, make_head_ct(seed=7, shape=SMALL).hu[3])


def test_mask_aligns_with_the_series(written):
    out, files = written
    phantom = make_head_ct(seed=7, shape=SMALL)
    mask, affine = read_nifti(files[-1])
    series = read_ct_series(out / "dicom")
    assert mask.shape == series.volume.shape and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask.astype(bool), phantom.mandible)
    np.testing.assert_allclose(affine, series.affine_ras, atol=1e-5)
    # Under the mask the series shows bone and teeth.
    assert np.median(series.volume[mask.astype(bool)]) > 300


def test_same_seed_gives_identical_files(tmp_path, written):
    _, first = written
    again = write_synthetic_series(tmp_path, seed=7, shape=SMALL)
    assert [a.read_bytes() == b.read_bytes() for a, b in zip(first, again)] == [True] * len(first)
    other = write_synthetic_series(tmp_path / "other", seed=8, shape=SMALL)
    assert other[0].read_bytes() != first[0].read_bytes()
    a, b = pydicom.dcmread(first[0]), pydicom.dcmread(other[0])
    assert a.SeriesInstanceUID != b.SeriesInstanceUID and a.StudyInstanceUID != b.StudyInstanceUID


def test_metal_series_has_fillings(tmp_path):
    files = write_synthetic_series(tmp_path, seed=7, shape=SMALL, metal=True)
    series = read_ct_series(tmp_path / "dicom")
    assert series.volume.max() > 3000
    assert "metal" in pydicom.dcmread(files[0]).SeriesDescription


def test_refuses_a_dicom_folder_that_holds_files(tmp_path):
    (tmp_path / "dicom").mkdir()
    (tmp_path / "dicom" / "old.dcm").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"expected an empty or absent '.*dicom'.*got one that already holds files"):
        write_synthetic_series(tmp_path, seed=0, shape=SMALL)
    assert sorted(p.name for p in (tmp_path / "dicom").iterdir()) == ["old.dcm"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="which is a file"):
        write_synthetic_series(tmp_path / "file", seed=0, shape=SMALL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholding_does_not_isolate_the_mandible(seed):
    phantom = make_head_ct(seed=seed, shape=(24, 128, 128))
    mandible = phantom.mandible
    assert np.count_nonzero(mandible) > 3000  # clearly present
    assert np.mean(phantom.hu[mandible] >= 300) > 0.8  # and bright enough for the threshold
    largest = threshold_baseline(phantom.hu)
    assert largest.dtype == np.bool_ and largest.shape == mandible.shape
    # The largest bone component is the maxilla-skull base-spine mass (with or without the jaw).
    assert _dice(largest, mandible) < 0.6
    assert np.count_nonzero(largest) > 2 * np.count_nonzero(mandible)


def test_threshold_baseline_on_a_hand_made_volume():
    hu = np.full((3, 6, 8), -1000, dtype=np.int16)
    hu[1, 1:3, 1:3] = 1200  # 4 voxels
    hu[1, 4, 1:7] = 400  # 6 voxels: the largest
    hu[1, 4, 7] = 299  # below the threshold
    largest = threshold_baseline(hu)
    assert np.argwhere(largest).tolist() == [[1, 4, c] for c in range(1, 7)]
    assert not threshold_baseline(hu, threshold_hu=2000).any()
    with pytest.raises(InputError, match=r"expected a 3-D \(Z, Y, X\) HU volume"):
        threshold_baseline(hu[0])
