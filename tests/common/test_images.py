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
