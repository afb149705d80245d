import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.mandible.preprocess import DEFAULT_WINDOW, IMAGENET_MEAN, IMAGENET_STD, to_model_input, to_original_grid, window


def test_default_window_is_a_bone_window():
    level, width = DEFAULT_WINDOW
    assert level - width / 2 <= -500  # soft tissue and fat stay below mid grey, not black-clipped bone
    assert level + width / 2 >= 1200  # cortical bone (~1000-1500 HU) is not all saturated


def test_window_maps_endpoints_to_zero_and_one_and_clips():
    hu = np.array([-2000.0, -600.0, 400.0, 1400.0, 3000.0, 900.0])
    image = window(hu, level=400.0, width=2000.0)
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, [0.0, 0.0, 0.5, 1.0, 1.0, 0.75])


@pytest.mark.parametrize("width", [0.0, -10.0, float("nan")])
def test_window_refuses_a_non_positive_width(width):
    with pytest.raises(InputError, match="expected a window"):
        window(np.zeros(3), level=40.0, width=width)


def test_model_input_of_a_constant_slice_is_the_normalised_window_value():
    hu = np.full((2, 40, 30), 900.0, np.float32)  # non-square: resized straight to the square
    batch = to_model_input(hu, size=32, level=400.0, width=2000.0)
    assert batch.shape == (2, 3, 32, 32)
    assert batch.dtype == np.float32
    for channel in range(3):
        by_hand = (0.75 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]  # e.g. red (0.75-0.485)/0.229 = 1.1572
        np.testing.assert_allclose(batch[:, channel], by_hand, rtol=1e-5)
    assert batch[0, 0, 0, 0] == pytest.approx(1.157205, abs=1e-5)


def test_model_input_keeps_left_right_and_top_bottom():
    hu = np.full((1, 64, 64), -1000.0, np.float32)
    hu[0, :16, 48:] = 1400.0  # bright block in the top-right corner
    batch = to_model_input(hu, size=32, level=400.0, width=2000.0)
    red = batch[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    np.testing.assert_allclose(red[:6, 26:], 1.0, atol=1e-6)
    np.testing.assert_allclose(red[10:, :20], 0.0, atol=1e-6)


def test_model_input_refuses_a_two_dimensional_array():
    with pytest.raises(InputError, match=r"expected CT slices as a non-empty \(Z, Y, X\) array, got shape \(8, 8\)"):
        to_model_input(np.zeros((8, 8), np.float32), size=8)


def test_original_grid_round_trip_of_a_smooth_image():
    rows, cols = np.mgrid[0:96, 0:80].astype(np.float32)
    smooth = 0.5 + 0.4 * np.sin(rows / 96 * np.pi) * np.cos(cols / 80 * np.pi)
    probabilities = np.stack([smooth, 1.0 - smooth])
    small = to_original_grid(probabilities, shape=(64, 64))  # down to the "network" grid (anti-aliased)
    back = to_original_grid(small, shape=(96, 80))
    assert small.shape == (2, 64, 64) and back.shape == (2, 96, 80)
    assert back.dtype == np.float32
    assert 0.0 <= back.min() and back.max() <= 1.0
    np.testing.assert_allclose(back[:, 2:-2, 2:-2], probabilities[:, 2:-2, 2:-2], atol=0.01)


def test_model_input_then_original_grid_restores_a_block_position():
    hu = np.full((1, 100, 60), -1000.0, np.float32)
    hu[0, 40:60, 20:40] = 1400.0
    batch = to_model_input(hu, size=64, level=400.0, width=2000.0)
    probability = batch[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    mask = to_original_grid(probability, shape=(100, 60)) > 0.5
    assert mask.shape == (1, 100, 60)
    assert np.argwhere(mask[0]).min(axis=0).tolist() == [40, 20]
    assert np.argwhere(mask[0]).max(axis=0).tolist() == [59, 39]
