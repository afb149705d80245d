"""Tests of NIfTI writing and reading (medimg.common.nifti)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medimg.common.dicom_series import read_ct_series
from medimg.common.errors import FormatError, InputError, OutputError
from medimg.common.nifti import read_nifti, write_nifti


def _volume(dtype=np.int16) -> np.ndarray:
    # Z, Y, X all different so that a swapped axis shows up as a shape or value error.
    return (np.arange(3 * 4 * 5).reshape(3, 4, 5) * 7 - 50).astype(dtype)


def _oblique() -> np.ndarray:
    """30 degrees about z, voxels 0.8 x 0.5 x 2.0 mm, off-centre origin."""
    t = np.radians(30.0)
    rotation = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 0.5, 2.0])
    affine[:3, 3] = [-12.5, 30.25, 101.0]
    return affine


@pytest.mark.parametrize("name", ["mask.nii", "mask.nii.gz"])
def test_round_trip_keeps_values_dtype_and_affine(tmp_path, name):
    affine = np.diag([-0.8, -0.5, 2.0, 1.0])
    affine[:3, 3] = [10.0, -20.0, 30.0]
    path = write_nifti(tmp_path / name, _volume(), affine)
    assert path == tmp_path / name
    volume, read_affine = read_nifti(path)
    assert volume.shape == (3, 4, 5) and volume.dtype == np.int16
    np.testing.assert_array_equal(volume, _volume())
    np.testing.assert_allclose(read_affine, affine, atol=1e-6)
    assert read_affine.dtype == np.float64
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" if name.endswith(".gz") else raw[344:348] == b"n+1\x00"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_file_is_indexed_column_row_slice(tmp_path):
    volume = np.zeros((3, 4, 5), dtype=np.uint8)
    volume[2, 1, 4] = 9  # slice 2, row 1, column 4
    write_nifti(tmp_path / "m.nii.gz", volume, np.eye(4))
    data = np.asanyarray(nib.load(tmp_path / "m.nii.gz").dataobj)
    assert data.shape == (5, 4, 3)
    assert data[4, 1, 2] == 9 and data.sum() == 9


def test_oblique_affine_is_sform_and_qform_code_1(tmp_path):
    affine = _oblique()
    write_nifti(tmp_path / "o.nii.gz", _volume(np.float32), affine)
    header = nib.load(tmp_path / "o.nii.gz").header
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    assert (int(sform_code), int(qform_code)) == (1, 1)
    np.testing.assert_allclose(qform, sform, atol=1e-5)
    np.testing.assert_allclose(sform, affine, atol=1e-5)
    assert header.get_xyzt_units()[0] == "mm"
    volume, read_affine = read_nifti(tmp_path / "o.nii.gz")
    np.testing.assert_allclose(read_affine, affine, atol=1e-5)
    np.testing.assert_array_equal(volume, _volume(np.float32))
    # Voxel (i=1, j=2, k=1): 0.8 mm along the rotated x axis, 1.0 mm along the rotated y axis, 2 mm up.
    expected = [-12.5 + 0.8 * np.cos(np.radians(30)) - 1.0 * np.sin(np.radians(30)),
                30.25 + 0.8 * np.sin(np.radians(30)) + 1.0 * np.cos(np.radians(30)), 103.0, 1.0]
    np.testing.assert_allclose(read_affine @ [1, 2, 1, 1], expected, atol=1e-5)


def test_bool_is_stored_as_uint8(tmp_path):
    mask = _volume() > 0
    write_nifti(tmp_path / "b.nii", mask, np.eye(4))
    volume, _ = read_nifti(tmp_path / "b.nii")
    assert volume.dtype == np.uint8
    np.testing.assert_array_equal(volume, mask.astype(np.uint8))


def test_same_input_gives_same_bytes(tmp_path):
    a = write_nifti(tmp_path / "a.nii.gz", _volume(), _oblique())
    b = write_nifti(tmp_path / "b.nii.gz", _volume(), _oblique())
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes())[344:348] == b"n+1\x00"  # single-file NIfTI-1 magic


def test_mask_voxel_lands_where_the_dicom_series_puts_it(tmp_path):
    from medimg.mandible.synth import write_synthetic_series

    files = write_synthetic_series(tmp_path, seed=4, shape=(16, 96, 96))
    series = read_ct_series(tmp_path / "dicom")
    mask, affine = read_nifti(files[-1])
    k, j, i = (int(v) for v in np.argwhere(mask)[len(np.argwhere(mask)) // 2])  # a mandible voxel
    np.testing.assert_allclose(affine @ [i, j, k, 1], series.affine_ras @ [i, j, k, 1], atol=1e-4)
    # The same point from the slice's own header: IPP + row and column steps, LPS -> RAS.
    header = pydicom.dcmread(series.files[k], stop_before_pixels=True)
    row_spacing, column_spacing = (float(v) for v in header.PixelSpacing)
    lps = np.array([float(v) for v in header.ImagePositionPatient]) + [i * column_spacing, j * row_spacing, 0.0]
    np.testing.assert_allclose((affine @ [i, j, k, 1])[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)
    # nibabel, as a viewer would, finds the mask at that world point.
    image = nib.load(files[-1])
    ijk = np.rint(np.linalg.inv(image.affine) @ np.r_[-lps[0], -lps[1], lps[2], 1.0])[:3].astype(int)
    assert tuple(ijk) == (i, j, k) and np.asanyarray(image.dataobj)[i, j, k] == 1


def test_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_nifti(tmp_path / "missing.nii.gz")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti file at all" * 20)
    with pytest.raises(FormatError, match=r"expected a readable NIfTI file \(\.nii or \.nii\.gz\), got 'bad\.nii\.gz'"):
        read_nifti(tmp_path / "bad.nii.gz")
    (tmp_path / "bad.nii").write_bytes(b"\x00" * 400)
    with pytest.raises(FormatError, match="bad.nii"):
        read_nifti(tmp_path / "bad.nii")
    nib.save(nib.Nifti1Image(np.zeros((4, 5), np.float32), np.eye(4)), tmp_path / "flat.nii")
    with pytest.raises(FormatError, match=r"expected a 3-D NIfTI volume, got shape \(4, 5\) in \'flat\.nii\'"):
        read_nifti(tmp_path / "flat.nii")
    with pytest.raises(OutputError, match=r"ending in \.nii or \.nii\.gz"):
        write_nifti(tmp_path / "mask.png", _volume(), np.eye(4))
    with pytest.raises(InputError, match=r"expected a 3-D \(Z, Y, X\) volume, got an array of shape \(4, 5\)"):
        write_nifti(tmp_path / "m.nii", np.zeros((4, 5)), np.eye(4))
    with pytest.raises(InputError, match=r"expected a \(4, 4\) affine, got shape \(3, 3\)"):
        write_nifti(tmp_path / "m.nii", _volume(), np.eye(3))
    with pytest.raises(InputError, match="invertible"):
        write_nifti(tmp_path / "m.nii", _volume(), np.diag([1.0, 0.0, 1.0, 1.0]))
    assert not (tmp_path / "m.nii").exists()


def test_trailing_singleton_dimension_is_dropped(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((5, 4, 3, 1), np.int16), np.eye(4)), tmp_path / "t.nii.gz")
    volume, _ = read_nifti(tmp_path / "t.nii.gz")
    assert volume.shape == (3, 4, 5)
