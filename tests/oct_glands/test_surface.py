import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.surface import detect_surface


def _step_volume(depths: np.ndarray, n_z: int = 20, low: int = 10, high: int = 200) -> np.ndarray:
    """Dark above ``depths[y, x]``, bright from it down."""
    z = np.arange(n_z)[None, :, None]
    return np.where(z >= depths[:, None, :], high, low).astype(np.uint8)


def test_surface_of_a_step_image_is_the_first_bright_voxel():
    depths = np.array([[5, 6, 7], [8, 9, 10]])
    surface = detect_surface(_step_volume(depths))
    assert surface.dtype == np.int32 and surface.shape == (2, 3)
    np.testing.assert_array_equal(surface, depths)


def test_absolute_gradient_takes_the_strongest_edge_rising_only_ignores_falls():
    volume = np.full((1, 12, 1), 50, np.uint8)
    volume[0, 3:5, 0] = 250  # a bright glass plate: rise at z=3 (+200), fall at z=5 (-200)
    volume[0, 8:, 0] = 180  # the skin: rise of +130 at z=8
    assert detect_surface(volume)[0, 0] == 3
    volume[0, 3:5, 0] = 20  # a dark plate: fall of -30 at z=3, rise at z=5 (+30)
    volume[0, 0:3, 0] = 220  # bright top: fall of -200 at z=3 dominates |G|
    assert detect_surface(volume)[0, 0] == 3
    assert detect_surface(volume, rising_only=True)[0, 0] == 8


def test_median_filter_rejects_an_outlier_column():
    depths = np.full((5, 5), 6)
    depths[2, 2] = 15
    np.testing.assert_array_equal(detect_surface(_step_volume(depths), median_size=3), np.full((5, 5), 6))


def test_even_median_size_is_refused():
    with pytest.raises(InputError, match="odd median size"):
        detect_surface(np.zeros((2, 4, 2), np.uint8), median_size=2)
