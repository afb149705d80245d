"""Tests of the synthetic fingertip OCT phantom (medimg.oct_glands.phantom)."""

from __future__ import annotations


import numpy as np
import pytest
from skimage.filters import threshold_otsu

from medimg.common.errors import InputError
from medimg.oct_glands.phantom import Phantom, make_phantom

SHAPE = (160, 128, 160)
SMALL = (48, 96, 48)


@pytest.fixture(scope="module")
def ph() -> Phantom:
    return make_phantom(SHAPE, seed=0)


def test_shapes_and_dtypes(ph: Phantom) -> None:
    ny, nz, nx = SHAPE
    assert ph.volume.shape == SHAPE and ph.volume.dtype == np.uint8
    assert ph.glands.shape == SHAPE and ph.glands.dtype == np.uint16
    assert ph.surface.shape == (ny, nx) and ph.surface.dtype == np.float32
    assert ph.pores.ndim == 2 and ph.pores.shape[1] == 3 and ph.pores.dtype == np.float64


def test_small_shape_works() -> None:
    p = make_phantom(SMALL, seed=3)
    assert p.volume.shape == SMALL
    assert p.pores.shape == (int(p.glands.max()), 3)


def test_deterministic_per_seed() -> None:
    a = make_phantom(SMALL, seed=7)
    b = make_phantom(SMALL, seed=7)
    c = make_phantom(SMALL, seed=8)
    for name in ("volume", "glands", "pores", "surface"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.volume, c.volume)
    assert not np.array_equal(a.surface, c.surface)


def test_duct_count_and_sizes(ph: Phantom) -> None:
    n = len(ph.pores)
    assert 8 <= n <= 20
    labels = np.unique(ph.glands)
    np.testing.assert_array_equal(labels, np.arange(n + 1))
    counts = np.bincount(ph.glands.ravel(), minlength=n + 1)[1:]
    assert counts.min() >= 300


def test_pores_match_label_centroids_and_surface(ph: Phantom) -> None:
    for k, (x, y, z) in enumerate(ph.pores):
        yy, _, xx = np.nonzero(ph.glands == k + 1)
        assert np.hypot(xx.mean() - x, yy.mean() - y) <= 3.0
        assert abs(z - ph.surface[int(round(y)), int(round(x))]) <= 1.0


def test_pores_sit_on_ridge_crests(ph: Phantom) -> None:
    # Crests are raised (smaller depth): once the tilt of a 31 x 31 window is removed,
    # few of its points lie higher than the pore; a random point would give ~50 %.
    s = ph.surface.astype(np.float64)
    dy, dx = np.mgrid[-15:16, -15:16]
    design = np.column_stack([np.ones(dy.size), dy.ravel(), dx.ravel()])
    for x, y, _ in ph.pores:
        iy, ix = int(round(y)), int(round(x))
        win = s[iy - 15 : iy + 16, ix - 15 : ix + 16]
        coef, *_ = np.linalg.lstsq(design, win.ravel(), rcond=None)
        res = win - (design @ coef).reshape(win.shape)
        assert np.mean(res < res[15, 15]) < 0.4


def test_air_is_dark_skin_is_bright(ph: Phantom) -> None:
    v = ph.volume.astype(np.float64)
    ny, nz, nx = v.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    above = v[yy, np.floor(ph.surface).astype(int) - 3, xx]
    below = v[yy, np.ceil(ph.surface).astype(int) + 3, xx]
    assert above.mean() < 25.0
    assert below.mean() - above.mean() > 40.0
    air = v[:, :10, :]
    assert 8.0 < air.mean() < 22.0 and air.std() > 5.0  # dark, but speckled


def test_ducts_within_depth_band_and_away_from_borders(ph: Phantom) -> None:
    yy, zz, xx = np.nonzero(ph.glands)
    s = ph.surface[yy, xx]
    assert np.all(zz >= s - 1e-6)
    assert np.all(zz < s + 80.0)
    ny, _, nx = ph.glands.shape
    assert yy.min() >= 6 and yy.max() < ny - 6
    assert xx.min() >= 6 and xx.max() < nx - 6


def test_ducts_bright_in_stratum_corneum(ph: Phantom) -> None:
    v = ph.volume.astype(np.float64)
    g = ph.glands > 0
    z = np.arange(v.shape[1])[None, :, None]
    s = ph.surface[:, None, :]
    sc = (z > s + 4) & (z < s + 25) & ~g
    duct_mean, sc_mean = v[g].mean(), v[sc].mean()
    assert 150.0 < duct_mean < 200.0
    assert 55.0 < sc_mean < 95.0


def test_otsu_cannot_find_glands(ph: Phantom) -> None:
    g = ph.glands > 0
    assert 0.001 < g.mean() < 0.03
    m = ph.volume >= threshold_otsu(ph.volume)
    dice = 2.0 * np.count_nonzero(m & g) / (np.count_nonzero(m) + np.count_nonzero(g))
    assert dice < 0.25


@pytest.mark.parametrize(
    "shape",
    [
        (160, 95, 160),
        (31, 128, 160),
        (160, 128, 31),
        (160, 128),
        (160, 128, 160, 1),
        (160.0, 128, 160),
        (0, 128, 160),
        (-5, 128, 160),
        (True, 128, 160),
        "abc",
        None,
    ],
)
def test_bad_shape_raises_input_error(shape) -> None:
    with pytest.raises(InputError, match="expected a shape"):
        make_phantom(shape)  # type: ignore[arg-type]
