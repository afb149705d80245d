import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.bscan_overlay import BAND_COLOUR, SURFACE_COLOUR, bscan_overlay, overlay_bscans


def scene():
    volume = np.tile(np.linspace(0, 200, 20, dtype=np.float32)[None, :, None], (8, 1, 10)).astype(np.uint8)
    surface = np.full((8, 10), 5, np.int32)
    labels = np.zeros((8, 20, 10), np.int32)
    labels[3, 9:12, 4:6] = 1  # one duct, in B-scan 3
    return volume, surface, labels


def test_panels_are_the_duct_bscan_and_the_quarters():
    volume, surface, labels = scene()
    assert overlay_bscans(labels) == [2, 3, 6]
    assert overlay_bscans(np.zeros_like(labels)) == [2, 4, 6]  # no duct: the middle B-scan


def test_surface_band_and_ducts_are_drawn_where_they_are():
    volume, surface, labels = scene()
    image = bscan_overlay(volume, surface, labels, band=8)
    assert image.shape == (3 * 20 + 2 * 4, 10, 3) and image.dtype == np.uint8
    assert all(tuple(image[5, x]) == SURFACE_COLOUR for x in range(10))
    assert all(tuple(image[13, x]) == BAND_COLOUR for x in range(10))
    duct_panel = image[24:44]  # second panel: B-scan 3
    assert duct_panel[10, 4, 1] > duct_panel[10, 4, 0] and duct_panel[10, 4, 1] > duct_panel[10, 7, 1]
    assert tuple(image[20, 0]) == (255, 255, 255)  # the gap between panels


def test_mismatched_shapes_are_refused():
    volume, surface, labels = scene()
    with pytest.raises(InputError, match="labels of its shape"):
        bscan_overlay(volume, surface, labels[:, :10], band=8)


def test_a_depth_window_of_labels_draws_the_same_picture():
    from medimg.oct_glands.depth_window import DepthWindow

    volume, surface, labels = scene()
    window = DepthWindow(labels[:, 8:14].copy(), top=8, depth=20)
    assert overlay_bscans(window) == overlay_bscans(labels)
    np.testing.assert_array_equal(bscan_overlay(volume, surface, window, band=8), bscan_overlay(volume, surface, labels, band=8))
