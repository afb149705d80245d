import numpy as np
import pytest
from PIL import Image

from medimg.common.errors import FormatError
from medimg.common.images import read_image, write_png


def _asymmetric_rgb():
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[0, 0] = (255, 0, 0)  # red marks the top-left corner
    return image


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(_asymmetric_rgb()).save(tmp_path / "o.png", exif=exif)
    image = read_image(tmp_path / "o.png")
    assert image.shape == (3, 2, 3)
    np.testing.assert_array_equal(image[0, 1], (255, 0, 0))  # the red corner is now top-right


@pytest.mark.parametrize(
    "mode, value, expected",
    [("L", 100, (100, 100, 100)), ("I;16", 65535, (255, 255, 255)), ("CMYK", (0, 0, 0, 255), (0, 0, 0))],
)
def test_modes_become_rgb8(tmp_path, mode, value, expected):
    Image.new(mode, (4, 3), value).save(tmp_path / "m.tif")
    image = read_image(tmp_path / "m.tif")
    assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
    np.testing.assert_array_equal(image[1, 1], expected)


def test_rgba_is_composited_on_white(tmp_path):
    Image.new("RGBA", (2, 2), (0, 0, 0, 0)).save(tmp_path / "t.png")
    np.testing.assert_array_equal(read_image(tmp_path / "t.png")[0, 0], (255, 255, 255))


def test_png_round_trip_and_bad_file(tmp_path):
    path = write_png(tmp_path / "x.png", _asymmetric_rgb())
    np.testing.assert_array_equal(read_image(path), _asymmetric_rgb())
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FormatError, match="expected a readable image"):
        read_image(tmp_path / "bad.jpg")


def _write_tiff(path, array):
    import tifffile

    tifffile.imwrite(path, array)
    return path


def test_float_tiff_in_unit_range_is_not_black(tmp_path, capsys):
    gray = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    path = _write_tiff(tmp_path / "unit.tif", gray)
    assert Image.open(path).mode == "F"
    image = read_image(path)
    np.testing.assert_array_equal(image[..., 0], [[0, 64], [128, 255]])  # rint(v * 255)
    np.testing.assert_array_equal(image[..., 2], image[..., 0])
    assert capsys.readouterr().err == ""  # [0, 1] is unambiguous: nothing to say


def test_float_tiff_in_8_bit_range_is_clipped_not_rescaled(tmp_path):
    gray = np.array([[-3.0, 2.0], [100.4, 255.0]], dtype=np.float32)
    image = read_image(_write_tiff(tmp_path / "byte.tif", gray))
    np.testing.assert_array_equal(image[..., 0], [[0, 2], [100, 255]])


def test_12_bit_data_in_a_16_bit_container_use_the_12_bit_span(tmp_path, capsys):
    gray = np.array([[0, 1000], [2048, 4095]], dtype=np.uint16)
    path = _write_tiff(tmp_path / "twelve.tif", gray)
    assert Image.open(path).mode == "I;16"
    image = read_image(path)
    np.testing.assert_array_equal(image[..., 0], [[0, 62], [128, 255]])  # rint(v / 4095 * 255)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Warning: 'twelve.tif' (I;16): values up to 4095 (< 4096) read as 12-bit data" in err


def test_genuine_16_bit_data_keep_the_16_bit_span(tmp_path, capsys):
    gray = np.array([[0, 4096], [32768, 65535]], dtype=np.uint16)
    image = read_image(_write_tiff(tmp_path / "sixteen.tif", gray))
    np.testing.assert_array_equal(image[..., 0], [[0, 16], [128, 255]])  # rint(v / 65535 * 255)
    assert capsys.readouterr().err == ""


def test_32_bit_integer_images(tmp_path, capsys):
    Image.fromarray(np.array([[0, 100], [200, 255]], dtype=np.int32)).save(tmp_path / "i8.tif")
    Image.fromarray(np.array([[0, 300], [3000, 4000]], dtype=np.int32)).save(tmp_path / "i12.tif")
    assert Image.open(tmp_path / "i8.tif").mode == Image.open(tmp_path / "i12.tif").mode == "I"
    np.testing.assert_array_equal(read_image(tmp_path / "i8.tif")[..., 0], [[0, 100], [200, 255]])
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(read_image(tmp_path / "i12.tif")[..., 0], [[0, 19], [187, 249]])
    assert "read as 12-bit data" in capsys.readouterr().err


def test_intensity_span_rules():
    from medimg.common.images import intensity_span

    assert intensity_span(np.array([0.0, 1.0]), container="float") == (1.0, None)
    assert intensity_span(np.array([0.0, 1.5]), container="float") == (255.0, None)
    assert intensity_span(np.array([0.0, np.nan, 0.5]), container="float") == (1.0, None)
    assert intensity_span(np.array([0, 200]), container="32-bit") == (255.0, None)
    assert intensity_span(np.array([0, 200]), container="16-bit")[0] == 4095.0
    assert intensity_span(np.array([0, 0]), container="16-bit") == (4095.0, None)  # black either way
    assert intensity_span(np.array([0, 4096]), container="16-bit") == (65535.0, None)
    span, note = intensity_span(np.array([0, 100000]), container="32-bit")
    assert span == 100000.0 and "stretched" in note


def test_a_decompression_bomb_is_a_format_error_not_a_crash(tmp_path, monkeypatch):
    from PIL import Image

    from medimg.common.errors import FormatError
    from medimg.common.images import read_image

    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    # PIL refuses images over twice MAX_IMAGE_PIXELS; lower the limit instead of writing gigapixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(FormatError, match=r"expected an image of at most about 179 megapixels, got 'big.png'"):
        read_image(path)


def test_a_photo_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    import medimg.common.images as images

    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PHOTO_PIXELS", 100)
    with pytest.raises(FormatError, match=r"a photo of at most 0 megapixels, got 20x10 \(0.0 MP\) in 'big.png'"):
        images.read_image(tmp_path / "big.png")
