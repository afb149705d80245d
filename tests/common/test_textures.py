"""Smooth random fields and the linear resize they are stretched with."""

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.textures import resize_linear, smooth_noise


def _lag_correlation(field, lag, axis):
    a = np.take(field, np.arange(field.shape[axis] - lag), axis=axis).ravel()
    b = np.take(field, np.arange(lag, field.shape[axis]), axis=axis).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_smooth_noise_has_zero_mean_and_unit_std():
    field = smooth_noise(np.random.default_rng(0), (64, 48), 3.0)
    assert field.shape == (64, 48) and field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-5
    assert float(field.std()) == pytest.approx(1.0, abs=1e-4)


def test_smooth_noise_dtype_and_dimensions():
    field = smooth_noise(np.random.default_rng(1), (6, 7, 8), 1.5, dtype=np.float64)
    assert field.shape == (6, 7, 8) and field.dtype == np.float64
    assert float(field.std()) == pytest.approx(1.0, abs=1e-9)
    assert smooth_noise(np.random.default_rng(1), (50,), 2.0).shape == (50,)


def test_same_seed_gives_the_same_field():
    a = smooth_noise(np.random.default_rng(5), (20, 30), 2.0)
    b = smooth_noise(np.random.default_rng(5), (20, 30), 2.0)
    c = smooth_noise(np.random.default_rng(6), (20, 30), 2.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(
        smooth_noise(np.random.default_rng(5), (40, 40), 9.0, coarse=True),
        smooth_noise(np.random.default_rng(5), (40, 40), 9.0, coarse=True),
    )


def test_larger_sigma_gives_a_longer_correlation():
    rough = smooth_noise(np.random.default_rng(2), (128, 128), 1.0)
    smooth = smooth_noise(np.random.default_rng(2), (128, 128), 6.0)
    assert _lag_correlation(smooth, 5, 0) > _lag_correlation(rough, 5, 0) + 0.3


def test_per_axis_sigma_correlates_longer_along_the_smoother_axis():
    field = smooth_noise(np.random.default_rng(3), (128, 128), (8.0, 1.0))
    along_smooth = _lag_correlation(field, 5, 0)
    along_rough = _lag_correlation(field, 5, 1)
    # a Gaussian filter of sigma s gives correlation exp(-lag^2 / (4 s^2)): 0.91 and 0.002
    assert along_smooth > 0.5
    assert abs(along_rough) < 0.1
    assert along_smooth > along_rough + 0.4


def test_zero_sigma_is_white_noise():
    field = smooth_noise(np.random.default_rng(4), (256, 256), 0.0)
    assert abs(_lag_correlation(field, 1, 0)) < 0.05


@pytest.mark.parametrize("shape", [(50, 70), (37, 23, 19)])
def test_coarse_keeps_the_shape_unit_std_and_smoothness(shape):
    field = smooth_noise(np.random.default_rng(7), shape, 12.0, coarse=True)
    assert field.shape == shape and field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-5
    assert float(field.std()) == pytest.approx(1.0, abs=1e-4)
    assert _lag_correlation(field, 5, 0) > 0.5


def test_coarse_with_small_sigma_is_the_plain_field():
    rng_a, rng_b = np.random.default_rng(8), np.random.default_rng(8)
    np.testing.assert_array_equal(
        smooth_noise(rng_a, (30, 30), 2.0, coarse=True), smooth_noise(rng_b, (30, 30), 2.0)
    )


@pytest.mark.parametrize("sigma", [(-1.0, 1.0), (1.0, 1.0, 1.0), -0.5])
def test_bad_sigmas_are_input_errors(sigma):
    with pytest.raises(InputError, match="2 non-negative smoothing sigmas"):
        smooth_noise(np.random.default_rng(0), (8, 8), sigma)


def test_resize_linear_of_a_ramp_upsampled():
    ramp = np.arange(4, dtype=np.float32)
    # pixel centres: (i + 0.5) * 4/8 - 0.5 = -0.25, 0.25, ..., 3.25, clipped to [0, 3]
    np.testing.assert_allclose(resize_linear(ramp, (8,)), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], rtol=1e-6)


def test_resize_linear_of_a_ramp_downsampled():
    ramp = np.arange(8, dtype=np.float32) * 2.0  # centres (i + 0.5) * 2 - 0.5 = 0.5, 2.5, 4.5, 6.5
    np.testing.assert_allclose(resize_linear(ramp, (4,)), [1.0, 5.0, 9.0, 13.0], rtol=1e-6)


def test_resize_linear_keeps_a_3d_linear_field_linear():
    i, j, k = np.meshgrid(np.arange(2), np.arange(3), np.arange(4), indexing="ij")
    small = (1.0 * i + 10.0 * j + 100.0 * k).astype(np.float32)
    big = resize_linear(small, (4, 6, 8))
    assert big.shape == (4, 6, 8)
    p0 = np.array([0, 0.25, 0.75, 1])
    p1 = np.array([0, 0.25, 0.75, 1.25, 1.75, 2])
    p2 = np.array([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    expected = p0[:, None, None] + 10.0 * p1[None, :, None] + 100.0 * p2[None, None, :]
    np.testing.assert_allclose(big, expected, rtol=1e-5, atol=1e-5)


def test_resize_linear_repeats_a_single_cell_and_keeps_equal_axes():
    small = np.array([[1.0, 3.0]], dtype=np.float32)
    out = resize_linear(small, (3, 2))
    np.testing.assert_array_equal(out, [[1.0, 3.0]] * 3)
    same = np.random.default_rng(0).random((3, 4))
    np.testing.assert_array_equal(resize_linear(same, (3, 4)), same)
