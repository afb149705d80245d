"""Tests of the synthetic fingertip OCT phantom (medimg.oct_glands.phantom)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from medimg.common.errors import InputError
from medimg.common.families import Uniform, params_from_dict, params_to_dict, read_params, write_params
from medimg.oct_glands.phantom import FingertipFamily, FingertipParams, Phantom, make_phantom, render

SHAPE = (160, 128, 160)
SMALL = (48, 96, 48)
MEDIUM = (96, 96, 96)  # room for 2-4 ducts, renders in a fraction of a second
FAMILY = FingertipFamily()


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


# ---- randomness as data -------------------------------------------------------------------------


def _arrays_equal(a: Phantom, b: Phantom) -> None:
    for name in ("volume", "glands", "pores", "surface"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_make_phantom_is_render_of_the_sampled_params() -> None:
    phantom = make_phantom(MEDIUM, seed=1)
    assert phantom.params == FAMILY.sample(np.random.default_rng(1), MEDIUM)
    assert phantom.params.shape == MEDIUM
    _arrays_equal(render(phantom.params), phantom)


def test_params_json_round_trip_renders_the_same_volume(tmp_path) -> None:
    phantom = make_phantom(MEDIUM, seed=0)
    assert len(phantom.params.ducts) >= 2 and len(phantom.params.vessels) >= 1
    assert params_from_dict(FingertipParams, params_to_dict(phantom.params)) == phantom.params
    again = read_params(write_params(tmp_path / "params.json", phantom.params), FingertipParams)
    assert again == phantom.params
    _arrays_equal(render(again), phantom)


def _check_within_family(params: object, prefix: str = "") -> int:
    """Assert every field of ``params`` with a ``prefix + name`` range in FAMILY lies in it; count them."""
    checked = 0
    for field in dataclasses.fields(params):
        allowed = getattr(FAMILY, prefix + field.name, None)
        if allowed is None:
            continue
        value = getattr(params, field.name)
        if hasattr(allowed, "contains"):
            assert allowed.contains(value), (field.name, value, allowed)
        else:
            assert value == allowed, (field.name, value, allowed)
        checked += 1
    return checked


@pytest.mark.parametrize("seed", range(4))
def test_every_sampled_value_lies_in_its_family_range(seed: int) -> None:
    params = FAMILY.sample(np.random.default_rng(seed), SHAPE)
    ny, _, nx = SHAPE
    assert params.shape == SHAPE
    # All but shape, warps, vessels, ducts and the three noise seeds have a range of their own.
    assert _check_within_family(params) == len(dataclasses.fields(FingertipParams)) - 7
    assert all(0 <= getattr(params, name) < 2**31 - 1 for name in ("layers_seed", "collagen_seed", "speckle_seed"))

    assert len(params.warps) == 2 * FAMILY.warps_per_scale
    for k, warp in enumerate(params.warps):
        scale = "broad" if k < FAMILY.warps_per_scale else "fine"
        assert getattr(FAMILY, f"{scale}_warp_wavelength").contains(warp.wavelength)
        assert getattr(FAMILY, f"{scale}_warp_amplitude").contains(warp.amplitude)

    assert 3 <= len(params.vessels) <= 6  # vessel_density per 160 x 160
    for vessel in params.vessels:
        assert _check_within_family(vessel, "vessel_") == 4
        assert FAMILY.vessel_wavelength.contains(vessel.meander_wavelength)
        assert FAMILY.vessel_wavelength.contains(vessel.wobble_wavelength)
        assert 0.0 <= vessel.depth_fraction < 1.0

    assert 8 <= len(params.ducts) <= 20
    margin = FAMILY.pore_margin()
    for duct in params.ducts:
        assert _check_within_family(duct, "duct_") == 5
        assert margin <= duct.pore_y < ny - margin and margin <= duct.pore_x < nx - margin
        assert np.hypot(duct.tilt_y, duct.tilt_x) <= FAMILY.duct_tilt_max + 1e-9
    pores = np.array([(d.pore_y, d.pore_x) for d in params.ducts], dtype=float)
    gaps = np.hypot(*(pores[:, None, :] - pores[None, :, :]).transpose(2, 0, 1))
    assert gaps[~np.eye(len(pores), dtype=bool)].min() >= FAMILY.pore_spacing


def test_fixed_pitch_gives_every_duct_that_pitch() -> None:
    params = FingertipFamily(duct_pitch=9.0).sample(np.random.default_rng(2), SHAPE)
    assert params.ducts and {duct.pitch for duct in params.ducts} == {9.0}


def test_family_tube_radius_sets_the_rendered_duct_size() -> None:
    # A zero-width range draws nothing from the generator, so both phantoms share every other value.
    thin = make_phantom(MEDIUM, seed=0, family=FingertipFamily(duct_tube_radius=Uniform(2.0, 2.0)))
    thick = make_phantom(MEDIUM, seed=0, family=FingertipFamily(duct_tube_radius=Uniform(2.5, 2.5)))
    assert {duct.tube_radius for duct in thin.params.ducts} == {2.0}
    assert {duct.tube_radius for duct in thick.params.ducts} == {2.5}
    np.testing.assert_array_equal(thin.pores, thick.pores)
    assert len(thin.pores) >= 2
    thin_voxels = np.bincount(thin.glands.ravel())[1:]
    thick_voxels = np.bincount(thick.glands.ravel())[1:]
    # The labelled cross-section grows with the radius squared: (2.5 / 2)^2 ~ 1.56.
    assert np.all(thick_voxels > 1.3 * thin_voxels)


def test_render_follows_edited_params() -> None:
    params = FAMILY.sample(np.random.default_rng(0), MEDIUM)
    without_ducts = render(dataclasses.replace(params, ducts=()))
    assert without_ducts.pores.shape == (0, 3) and not without_ducts.glands.any()
    brighter = render(dataclasses.replace(params, level_epidermis=200.0))
    assert brighter.volume.mean() > render(params).volume.mean() + 2.0


def test_render_rejects_what_is_not_fingertip_params() -> None:
    params = FAMILY.sample(np.random.default_rng(0), MEDIUM)
    with pytest.raises(InputError, match="expected FingertipParams"):
        render(params_to_dict(params))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="expected a shape"):
        render(dataclasses.replace(params, shape=(96, 64, 96)))
    stray = dataclasses.replace(params.ducts[0], pore_x=MEDIUM[2])
    with pytest.raises(InputError, match="expected duct pores"):
        render(dataclasses.replace(params, ducts=(stray,)))


def test_the_held_out_spec_family_shares_no_brightness_pitch_or_artefact_setting_with_training() -> None:
    from medimg.oct_glands.phantom import SPEC_FAMILY, WIDE_FAMILY

    held_out = ("level_entrance", "level_stratum_corneum", "level_epidermis", "level_dermis", "duct_pitch", "display_gain")
    for name in held_out:
        trained, spec = getattr(WIDE_FAMILY, name), getattr(SPEC_FAMILY, name)
        assert trained.low >= spec.high or trained.high <= spec.low, name  # disjoint ranges
    # duct contrast is shared: drawn above the SC in training, spanning the held-out ducts' 14-87
    spec_above_low = SPEC_FAMILY.level_duct.low - SPEC_FAMILY.level_stratum_corneum.high
    spec_above_high = SPEC_FAMILY.level_duct.high - SPEC_FAMILY.level_stratum_corneum.low
    assert WIDE_FAMILY.duct_above_sc.low <= spec_above_low and spec_above_high <= WIDE_FAMILY.duct_above_sc.high
    trained_rows, spec_rows = WIDE_FAMILY.artefact_rows.options, SPEC_FAMILY.artefact_rows.options
    assert set(trained_rows) & set(spec_rows) == {()}  # the fixed-pattern rows differ, or are absent in both
    # what is shared is the anatomy: duct size and layer thickness ranges hold SPEC's
    for name in ("duct_tube_radius", "duct_helix_radius", "sc_thickness", "epidermis_thickness"):
        trained, spec = getattr(WIDE_FAMILY, name), getattr(SPEC_FAMILY, name)
        assert trained.low <= spec.low and spec.high <= trained.high, name


def test_the_gap_family_coils_on_both_sides_of_the_held_out_pitch_and_never_inside_it() -> None:
    from medimg.oct_glands.phantom import SPEC_FAMILY, STYLES, WIDE_FAMILY, WIDE_GAP_FAMILY

    assert STYLES["wide-gap"] is WIDE_GAP_FAMILY
    assert dataclasses.replace(WIDE_GAP_FAMILY, duct_pitch=WIDE_FAMILY.duct_pitch) == WIDE_FAMILY  # only the pitch differs
    pitches = [duct.pitch for seed in range(12) for duct in WIDE_GAP_FAMILY.sample(np.random.default_rng(seed), (128, 176, 128)).ducts]
    tight = [p for p in pitches if p < 12.0]
    loose = [p for p in pitches if p >= 20.0]
    assert tight and loose and len(tight) + len(loose) == len(pitches)  # none in the held-out 12-20
    assert min(pitches) >= 6.0 and max(pitches) < 28.0
    assert not any(SPEC_FAMILY.duct_pitch.contains(p) for p in pitches)


def test_wide_phantoms_hold_ducts_near_the_top() -> None:
    from medimg.oct_glands.phantom import WIDE_FAMILY

    ph = make_phantom((64, 176, 64), seed=0, family=WIDE_FAMILY)
    assert 12.0 <= ph.params.level_duct - ph.params.level_stratum_corneum <= 90.0
    assert ph.glands.max() >= 1 and len(ph.pores) == ph.glands.max()
    assert ph.surface.max() < 176 - 80  # an 80-deep ROI fits below every surface point


def test_ducts_start_under_a_thick_bright_band_as_in_real_scans() -> None:
    """SPEC section 5: ducts run from just under the bright band; inside it they are hidden."""
    from medimg.oct_glands.phantom import SPEC_FAMILY

    ph = make_phantom((64, 400, 128), seed=402, family=SPEC_FAMILY)
    assert ph.glands.max() >= 1
    band_end = 0.6 + ph.params.entrance_thickness + ph.params.entrance_sigma  # peak offset + plateau + fall
    depth = np.arange(ph.volume.shape[1])[None, :, None] - ph.surface[:, None, :]
    assert np.broadcast_to(depth, ph.glands.shape)[ph.glands > 0].min() >= band_end
    # without a band (the paper's phantoms) ducts reach up to the surface
    paper = make_phantom((64, 128, 64), seed=0)
    paper_depth = np.arange(128)[None, :, None] - paper.surface[:, None, :]
    assert np.broadcast_to(paper_depth, paper.glands.shape)[paper.glands > 0].min() < 1.0
