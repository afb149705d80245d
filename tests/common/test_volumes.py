import numpy as np
import pytest
import tifffile

from medimg.common.axes import from_canonical, parse_axes, to_canonical
from medimg.common.errors import FormatError, InputError
from medimg.common.volumes import read_volume, read_volume_metadata, write_volume


def _ramp(shape=(3, 4, 5)):
    return np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)


def test_round_trip_with_metadata_is_memory_mapped(tmp_path):
    volume = _ramp()
    path = write_volume(tmp_path / "v.tif", volume, metadata={"corners": [[0, 1, 2]]})
    read = read_volume(path)
    assert isinstance(read, np.memmap)
    np.testing.assert_array_equal(read, volume)
    assert read_volume_metadata(path)["corners"] == [[0, 1, 2]]


def test_compressed_file_is_read_without_mmap(tmp_path):
    volume = _ramp()
    tifffile.imwrite(tmp_path / "z.tif", volume, compression="zlib", photometric="minisblack")
    read = read_volume(tmp_path / "z.tif")
    assert not isinstance(read, np.memmap)
    np.testing.assert_array_equal(read, volume)


def test_axes_are_converted_to_canonical(tmp_path):
    canonical = _ramp((3, 4, 5))  # Y, Z, X
    stored = from_canonical(canonical, "ZYX")
    assert stored.shape == (4, 3, 5)
    tifffile.imwrite(tmp_path / "zyx.tif", stored, photometric="minisblack")
    np.testing.assert_array_equal(read_volume(tmp_path / "zyx.tif", axes="zyx"), canonical)
    np.testing.assert_array_equal(to_canonical(stored, "ZYX"), canonical)


@pytest.mark.parametrize("axes", ["YZ", "YYX", "ABC", "YZXX"])
def test_bad_axes_are_refused(axes):
    with pytest.raises(InputError, match="permutation of Y, Z, X"):
        parse_axes(axes)


def test_two_d_image_is_a_format_error(tmp_path):
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((8, 9), np.uint8))
    with pytest.raises(FormatError, match=r"expected a 3-D volume .*got a single 2-D image of shape \(8, 9\)"):
        read_volume(tmp_path / "flat.tif")


def test_corrupt_file_is_a_format_error(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(FormatError, match="expected a readable TIFF volume"):
        read_volume(tmp_path / "bad.tif")


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_volume(tmp_path / "none.tif")


def test_a_volume_written_page_by_page_is_the_same_file(tmp_path):
    from medimg.common.volumes import write_volume_pages

    volume = np.random.default_rng(0).integers(0, 60000, (3, 4, 5)).astype(np.uint16)
    write_volume(tmp_path / "whole.tif", volume, metadata={"threshold": 0.5})
    write_volume_pages(tmp_path / "pages.tif", iter(volume), shape=volume.shape, dtype=np.uint16, metadata={"threshold": 0.5})
    np.testing.assert_array_equal(read_volume(tmp_path / "pages.tif"), volume)
    assert read_volume_metadata(tmp_path / "pages.tif") == read_volume_metadata(tmp_path / "whole.tif")
    with pytest.raises(InputError, match="3 pages of shape"):
        write_volume_pages(tmp_path / "bad.tif", iter(volume[:, :2]), shape=volume.shape, dtype=np.uint16)
    assert not list(tmp_path.glob("bad*"))  # nothing half-written
