import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.roi import extract_blocks, roi_corners


def test_corners_on_the_stride_grid_for_a_given_shape():
    shape = (200, 100, 170)  # Y, Z, X
    corners = roi_corners(np.zeros((200, 170), np.int32), shape, size=80, stride=40)
    # y* = 0, 40, 80, 120 (120 + 80 = 200 fits); x* = 0, 40, 80 (120 + 80 > 170), then 90 = 170 - 80
    # so that the last 10 columns are predicted too
    assert len(corners) == 4 * 4
    np.testing.assert_array_equal(np.unique(corners[:, 0]), [0, 40, 80, 120])
    np.testing.assert_array_equal(np.unique(corners[:, 2]), [0, 40, 80, 90])
    np.testing.assert_array_equal(corners[:5], [[0, 0, 0], [0, 0, 40], [0, 0, 80], [0, 0, 90], [40, 0, 0]])


def test_z_star_is_the_rounded_mean_of_four_b_scans_and_clipped():
    surface = np.zeros((80, 80), np.int32)
    surface[0:4, 0] = [10, 10, 11, 11]  # mean 10.5 rounds up to 11
    assert roi_corners(surface, (80, 100, 80), size=80, stride=40).tolist() == [[0, 11, 0]]
    surface[0:4, 0] = [10, 10, 10, 11]  # 10.25 -> 10
    assert roi_corners(surface, (80, 100, 80))[0, 1] == 10
    surface[0:4, 0] = 50  # the block would end below the volume: clipped to Z - 80 = 20
    assert roi_corners(surface, (80, 100, 80))[0, 1] == 20


def test_training_stride_gives_more_blocks():
    assert len(roi_corners(np.zeros((120, 120), np.int32), (120, 90, 120), stride=20)) == 9


@pytest.mark.parametrize("shape, axis", [((80, 79, 80), "deep"), ((79, 90, 80), "along Y"), ((80, 90, 60), "along X")])
def test_too_small_volumes_are_refused(shape, axis):
    with pytest.raises(InputError, match=f"expected a volume at least 80 voxels {axis}"):
        roi_corners(np.zeros((shape[0], shape[2]), np.int32), shape)


def test_blocks_are_the_volume_at_their_corners():
    volume = np.arange(10 * 12 * 14).reshape(10, 12, 14)
    corners = np.array([[1, 2, 3], [5, 6, 7]])
    blocks = extract_blocks(volume, corners, size=4)
    assert blocks.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(blocks[1], volume[5:9, 6:10, 7:11])


def test_band_tiles_cover_the_band_of_every_a_scan_with_little_overlap():
    from medimg.oct_glands.roi import band_tiles

    y, x = np.mgrid[0:150, 0:200]
    surface = (40 + 0.1 * x + 0.05 * y).astype(np.int64)  # tilted: 40..67
    corners, shapes = band_tiles(surface, (150, 200, 200))
    # Y starts 0, 64, 70 (last tile ends at the edge); X starts 0, 64, 120: 9 tiles of 80 x D x 80
    assert len(corners) == 9 and (shapes[:, [0, 2]] == 80).all()
    assert sorted({int(c) for c in corners[:, 0]}) == [0, 64, 70] and sorted({int(c) for c in corners[:, 2]}) == [0, 64, 120]
    assert (shapes[:, 1] % 8 == 0).all() and shapes[:, 1].max() <= 120  # 80 + range 11 + 2 x 8 margin -> 112
    assert list(shapes[:, 1]) == sorted(shapes[:, 1])  # tiles of one shape batch together
    covered = np.zeros((150, 200, 200), bool)
    for (ty, tz, tx), (sy, sz, sx) in zip(corners, shapes):
        covered[ty : ty + sy, tz : tz + sz, tx : tx + sx] = True
    z = np.arange(200)[None, :, None]
    band = (z >= surface[:, None, :]) & (z < surface[:, None, :] + 80)
    assert covered[band].all()
    assert covered.sum() < 2 * band.sum()  # the paper's blocks read about 4x the band


def test_band_tiles_with_a_field_margin_put_the_field_edge_inside_a_tile():
    from medimg.oct_glands.roi import band_tiles

    surface = np.full((150, 200), 40)
    corners, shapes = band_tiles(surface, (150, 200, 200), field_margin=16)
    # the field widened to 182 x 232: starts 0, 64, 102 and 0, 64, 128, 152, less 16
    assert sorted({int(c) for c in corners[:, 0]}) == [-16, 48, 86] and sorted({int(c) for c in corners[:, 2]}) == [-16, 48, 112, 136]
    assert (shapes[:, [0, 2]] == 80).all() and (corners[:, 0] + shapes[:, 0]).max() == 150 + 16
    assert (corners[:, 2] + shapes[:, 2]).max() == 200 + 16
    corners, _ = band_tiles(np.full((80, 90), 10), (80, 120, 90), field_margin=8)
    # one tile's field widened to 96 x 106: starts 0, 16 and 0, 26, less 8
    assert sorted({int(c) for c in corners[:, 0]}) == [-8, 8] and sorted({int(c) for c in corners[:, 2]}) == [-8, 18]
    with pytest.raises(InputError, match="field margin"):
        band_tiles(surface, (150, 200, 200), field_margin=150)


def test_band_tiles_stay_inside_a_shallow_volume():
    from medimg.oct_glands.roi import band_tiles

    corners, shapes = band_tiles(np.full((80, 80), 10), (80, 90, 80))
    assert corners.tolist() == [[0, 2, 0]] and shapes.tolist() == [[80, 88, 80]]  # 104 rows wanted, 88 fit


def test_clear_outside_band_keeps_margin_above_and_depth_below_the_surface():
    from medimg.oct_glands.roi import clear_outside_band

    volume = np.ones((2, 120, 3), np.float32)
    surface = np.array([[10, 20, 30], [0, 0, 0]])
    clear_outside_band(volume, surface, depth=80, margin=8)
    assert volume[0, :, 0].nonzero()[0].tolist() == list(range(2, 90))
    assert volume[0, :, 2].nonzero()[0].tolist() == list(range(22, 110))
    assert volume[1, :, 1].nonzero()[0].tolist() == list(range(0, 80))
