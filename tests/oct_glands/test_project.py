import numpy as np
import pytest

from medimg.oct_glands.project import gland_pores


def test_centroid_of_a_known_blob():
    labels = np.zeros((10, 12, 14), np.uint16)
    labels[2:5, 3:8, 4:6] = 1  # y 2..4 (mean 3), z 3..7 (mean 5), x 4..5 (mean 4.5)
    labels[7, 10, 12] = 3  # ids need not be consecutive
    probability = np.zeros(labels.shape, np.float32)
    probability[2:5, 3:8, 4:6] = 0.8
    probability[2, 3, 4] = 0.5
    pores = gland_pores(labels, probability=probability)
    assert [p["id"] for p in pores] == [1, 3]
    first = pores[0]
    assert (first["x"], first["y"], first["z"]) == pytest.approx((4.5, 3.0, 5.0))
    assert first["volume_voxels"] == 30
    assert first["mean_probability"] == pytest.approx((29 * 0.8 + 0.5) / 30)
    assert (pores[1]["x"], pores[1]["y"], pores[1]["z"]) == (12.0, 7.0, 10.0)


def test_no_glands_no_pores_and_probability_is_optional():
    assert gland_pores(np.zeros((2, 2, 2), np.uint8)) == []
    labels = np.ones((1, 1, 2), np.uint8)
    assert gland_pores(labels)[0]["mean_probability"] is None


def test_a_depth_window_of_labels_and_probability_codes_gives_the_same_pores():
    labels = np.zeros((10, 12, 14), np.uint16)
    labels[2:5, 3:8, 4:6] = 1
    probability = np.zeros(labels.shape, np.float32)
    probability[2:5, 3:8, 4:6] = 204 / 255
    window_codes = np.rint(probability[:, 3:9] * 255).astype(np.uint8)
    pores = gland_pores(labels[:, 3:9], probability=window_codes, top=3, probability_scale=1 / 255)
    expected = gland_pores(labels, probability=probability)
    assert [sorted(p) for p in pores] == [sorted(p) for p in expected]
    assert [list(p.values()) for p in pores] == [pytest.approx(list(p.values())) for p in expected]
    assert pores[0]["z"] == pytest.approx(5.0) and pores[0]["mean_probability"] == pytest.approx(0.8)


def test_depth_reached_is_the_90th_percentile_of_depths_below_the_surface_lower_rank():
    labels = np.zeros((3, 40, 4), np.uint16)
    labels[1, 10:20, 2] = 1  # ten voxels, z 10..19
    labels[0, 5:7, 0:2] = 2  # four voxels, z 5..6
    surface = np.full((3, 4), 8, np.int32)
    surface[1, 2] = 6  # depths of gland 1: 4..13, sorted; rank floor(0.9 * 9) = 8 -> 12
    pores = gland_pores(labels, surface=surface)
    assert [p["depth_reached"] for p in pores] == [12, -2]  # gland 2: depths -3, -3, -2, -2; rank floor(0.9 * 3) = 2 -> -2
    assert gland_pores(labels)[0]["depth_reached"] is None
    window = gland_pores(labels[:, 4:24], surface=surface, top=4)  # a depth window gives the same depths
    assert [p["depth_reached"] for p in window] == [12, -2]


def test_a_surface_of_the_wrong_shape_is_refused():
    from medimg.common.errors import InputError

    with pytest.raises(InputError, match=r"expected a \(Y, X\) surface of shape \(3, 4\), got shape \(4, 3\)"):
        gland_pores(np.ones((3, 5, 4), np.uint8), surface=np.zeros((4, 3), np.int32))
