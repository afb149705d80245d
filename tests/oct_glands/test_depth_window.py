import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.depth_window import DepthWindow, encode_probability, whole


def test_a_window_stands_for_a_volume_that_is_zero_above_and_below_it():
    data = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    window = DepthWindow(data, top=5, depth=10)
    assert window.shape == (2, 10, 4) and window.bottom == 8 and window.voxels_outside() == 2 * 7 * 4
    volume = window.to_array()
    assert volume.shape == (2, 10, 4) and volume.dtype == np.uint16
    np.testing.assert_array_equal(volume[:, 5:8], data)
    assert not volume[:, :5].any() and not volume[:, 8:].any()
    np.testing.assert_array_equal(window.bscan(1), volume[1])
    y, z, x = window.nonzero()
    np.testing.assert_array_equal(volume[y, z, x], data[data > 0])
    np.testing.assert_array_equal(whole(volume).to_array(), volume)
    with pytest.raises(InputError, match="within depth 10"):
        DepthWindow(data, top=8, depth=10)


def test_probability_codes_decode_within_half_a_code():
    probability = np.linspace(0, 1, 1001, dtype=np.float32).reshape(1, 1001, 1)
    codes = encode_probability(probability)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    window = DepthWindow(codes, top=0, depth=1001, scale=1 / 255)
    assert window.values(slice(None)).dtype == np.float32
    assert np.abs(window.values(slice(None)) - probability).max() <= 0.5 / 255 + 1e-7
