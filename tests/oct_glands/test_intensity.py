import numpy as np
import pytest

from medimg.oct_glands.intensity import levels_of_blocks, scale_to_levels, tissue_levels


def test_tissue_levels_are_percentiles_of_the_band_below_the_surface():
    # 2 B-scans x 3 A-scans; air 0 above the surface, tissue 1..8 down the 8 rows below it, 255 deeper
    volume = np.zeros((2, 20, 3), np.uint8)
    surface = np.array([[2, 3, 4], [5, 6, 7]])
    for y in range(2):
        for x in range(3):
            s = surface[y, x]
            volume[y, s : s + 8, x] = np.arange(1, 9)
            volume[y, s + 8 :, x] = 255
    low, centre, high = tissue_levels(volume, surface, depth=8)
    # 6 A-scans x (1..8): 48 sorted values, each level 6 times; percentile 5 sits at rank 2.35 (a 1),
    # 50 between ranks 23 and 24 (a 4 and a 5), 95 at rank 44.65 (an 8); the air and the 255s never count
    assert (low, centre, high) == pytest.approx((1.0, 4.5, 8.0))


def test_tissue_levels_stop_at_the_volume_bottom():
    volume = np.full((1, 6, 1), 10, np.uint8)
    volume[0, 5, 0] = 50
    # depth 8 from row 3 runs past the 6 rows: the last row repeats (10, 10, 50, 50, 50, ...)
    assert tissue_levels(volume, np.array([[3]]), depth=8)[1] == 50.0


def test_scaling_takes_brightness_and_gain_out():
    rng = np.random.default_rng(0)
    dark = rng.integers(5, 40, (4, 8, 8, 8)).astype(np.uint8)
    bright = (dark.astype(np.int32) * 5 + 20).astype(np.uint8)  # another gain and offset of the same tissue
    dark_levels, bright_levels = levels_of_blocks(dark), levels_of_blocks(bright)
    np.testing.assert_allclose(scale_to_levels(dark, dark_levels), scale_to_levels(bright, bright_levels), atol=1e-5)
    assert bright_levels == pytest.approx(tuple(5 * v + 20 for v in dark_levels))


def test_scaling_is_centre_over_spread_and_a_flat_scan_is_not_blown_up():
    np.testing.assert_allclose(scale_to_levels(np.array([10, 30, 50], np.uint8), (10.0, 30.0, 50.0)), [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(scale_to_levels(np.array([7, 8], np.uint8), (7.0, 7.0, 7.0)), [0.0, 1.0])  # spread at least 1
