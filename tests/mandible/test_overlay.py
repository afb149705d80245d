import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.mandible.overlay import MASK_COLOUR, MASK_OPACITY, montage_slices, overlay_montage


def _volume():
    hu = np.full((20, 64, 80), 400.0, np.float32)  # window centre of (400, 2000): grey 127.5
    mask = np.zeros(hu.shape, bool)
    mask[5:15, 20:40, 30:50] = True
    return hu, mask


def test_tiles_are_spread_over_the_mask_slice_range():
    _, mask = _volume()
    np.testing.assert_array_equal(montage_slices(mask, 4), [5, 8, 11, 14])
    np.testing.assert_array_equal(montage_slices(mask, 12), np.arange(5, 15))  # only 10 slices hold mask
    np.testing.assert_array_equal(montage_slices(np.zeros((9, 2, 2), bool), 3), [0, 4, 8])


def test_montage_shape_and_tinted_mask():
    hu, mask = _volume()
    montage = overlay_montage(hu, mask, tiles=4, level=400.0, width=2000.0)
    # 4 tiles -> 2 x 2 grid of 64 x 80 tiles with 2-pixel gaps
    assert montage.shape == (2 * 64 + 2, 2 * 80 + 2, 3)
    assert montage.dtype == np.uint8
    grey = 127.5
    inside = montage[30, 40]  # tile 0, interior of the mask
    expected = np.rint((1 - MASK_OPACITY) * grey + MASK_OPACITY * np.array(MASK_COLOUR))
    np.testing.assert_array_equal(inside, expected)
    assert inside[0] > inside[2]  # orange: red above blue
    np.testing.assert_array_equal(montage[60, 70], [128, 128, 128])  # outside the mask: plain grey
    np.testing.assert_array_equal(montage[20, 40], MASK_COLOUR)  # the outline
    np.testing.assert_array_equal(montage[64:66, :], 0)  # the gap between tile rows
    # the second tile in the first row starts after the gap and is tinted at the same place
    np.testing.assert_array_equal(montage[30, 82 + 40], expected)


def test_montage_of_an_empty_mask_shows_plain_grey_slices():
    hu, mask = _volume()
    montage = overlay_montage(hu, np.zeros_like(mask), tiles=1)
    assert montage.shape == (64, 80, 3)
    assert np.all(montage[20:, :, 0] == montage[20:, :, 2])  # no tint (label text is in the top rows)


def test_montage_refuses_mismatched_shapes():
    hu, mask = _volume()
    with pytest.raises(InputError, match="expected a \\(Z, Y, X\\) volume and a mask of the same shape"):
        overlay_montage(hu, mask[:, :10])
