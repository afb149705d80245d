"""Tests of the synthetic head CT (medimg.mandible.phantom)."""

from __future__ import annotations


import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from medimg.common.errors import InputError
from medimg.common.families import Choice, Uniform, params_from_dict, params_to_dict, read_params, write_params
from medimg.mandible.phantom import (
    HU_MAX,
    HU_MIN,
    LABELS,
    HeadFamily,
    HeadParams,
    HeadPhantom,
    make_head_ct,
    render,
)

SMALL = (16, 96, 96)
MEDIUM = (24, 128, 128)


@pytest.fixture(scope="module")
def head() -> HeadPhantom:
    return make_head_ct(seed=2, shape=MEDIUM)


def test_shapes_dtypes_and_geometry(head):
    assert head.hu.shape == MEDIUM and head.hu.dtype == np.int16
    assert head.mandible.shape == MEDIUM and head.mandible.dtype == np.bool_
    assert head.labels.shape == MEDIUM and head.labels.dtype == np.uint8
    # Default spacing: the 120 x 230.4 x 230.4 mm field of view over the grid.
    assert head.spacing == pytest.approx((5.0, 1.8, 1.8))
    assert np.diag(head.affine)[:3] == pytest.approx([1.8, 1.8, 5.0])
    assert HU_MIN <= head.hu.min() and head.hu.max() <= HU_MAX


def test_default_shape_gives_the_documented_voxels():
    phantom = make_head_ct(seed=0)
    assert phantom.hu.shape == (48, 256, 256)
    assert phantom.spacing == pytest.approx((2.5, 0.9, 0.9))


def test_same_seed_same_volume_other_seed_other_head():
    a, b, c = (make_head_ct(seed=s, shape=SMALL) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.mandible, b.mandible)
    assert not np.array_equal(a.mandible, c.mandible)
    assert (a.opening_deg, a.joint_gap_mm) != (c.opening_deg, c.joint_gap_mm)


def test_tissue_levels(head):
    hu, labels = head.hu.astype(np.float64), head.labels
    corner_air = hu[:, :6, :6]
    assert abs(corner_air.mean() + 1000) < 10 and 10 < corner_air.std() < 40  # air with ~20 HU noise
    interior = ndimage.binary_erosion(labels == LABELS["soft"], iterations=2)
    assert 25 < np.median(hu[interior]) < 65
    fat = ndimage.binary_erosion(labels == LABELS["fat"])
    assert -130 < np.median(hu[fat]) < -40
    mandible_bone = hu[labels == LABELS["mandible"]]
    assert np.percentile(mandible_bone, 90) > 1000  # cortical shell
    assert 150 < np.percentile(mandible_bone, 10) < 600  # cancellous core
    assert hu[labels == LABELS["lower_crown"]].max() > 1800  # enamel


def test_mask_is_the_labelled_mandible_and_its_teeth_in_one_piece(head):
    expected = np.isin(head.labels, [LABELS[n] for n in ("mandible", "lower_crown", "lower_root", "lower_pulp", "lower_metal")])
    np.testing.assert_array_equal(head.mandible, expected)
    assert np.any(head.labels == LABELS["lower_crown"]) and np.any(head.labels == LABELS["upper_crown"])
    _, count = ndimage.label(head.mandible)
    assert count == 1


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_mandible_is_u_shaped_with_two_rami(seed):
    phantom = make_head_ct(seed=seed, shape=SMALL)
    mask = phantom.mandible
    area = mask.sum(axis=(1, 2))
    present = np.flatnonzero(area)
    assert present.size >= 5  # spans many slices, from the chin to the condyles
    body = present[np.argmax(area[present])]
    rows, cols = np.nonzero(mask[body])
    centre = (int(round(rows.mean())), int(round(cols.mean())))
    assert not mask[body][centre]  # the centroid of a U lies in the tongue, outside the bone
    middle = mask.shape[2] // 2
    assert mask[body, :, : middle - 5].sum() > 10 and mask[body, :, middle + 5 :].sum() > 10
    top = mask[present[-3] :].any(axis=0)  # the top ~20 mm: condyles and coronoids (the head may be tilted)
    assert not top[:, middle - 5 : middle + 5].any()  # left and right, nothing in between
    assert top[:, : middle - 5].any() and top[:, middle + 5 :].any()


def test_metal_adds_fillings_streaks_and_nothing_else():
    plain = make_head_ct(seed=1, shape=MEDIUM)
    metal = make_head_ct(seed=1, shape=MEDIUM, metal=True)
    assert plain.hu.max() < 3000 < metal.hu.max()
    assert len(metal.metal_centres) >= 1 and len(plain.metal_centres) == 0
    difference = metal.hu.astype(np.float64) - plain.hu
    k, j, i = metal.metal_centres[0]
    changed = np.flatnonzero(np.any(difference != 0, axis=(1, 2)))
    assert changed.min() >= k - 3 and changed.max() <= k + 3  # streaks stay in the slices of the metal
    # Along a circle of 15 mm around the filling: alternating bright and dark lines.
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    rows = np.rint(j + 15.0 / metal.spacing[1] * np.sin(angles)).astype(int)
    cols = np.rint(i + 15.0 / metal.spacing[2] * np.cos(angles)).astype(int)
    profile = difference[int(round(k)), rows, cols]
    assert profile.max() > 80 and profile.min() < -80 and profile.std() > 30
    signs = np.sign(profile[np.abs(profile) > 40])
    assert np.count_nonzero(np.diff(signs)) >= 4
    # The fillings belong to the teeth; the anatomy does not move.
    outside_metal = ~np.isin(metal.labels, [LABELS["lower_metal"], LABELS["upper_metal"]])
    np.testing.assert_array_equal(metal.labels[outside_metal], plain.labels[outside_metal])


def test_bad_shape_or_spacing_is_an_input_error():
    with pytest.raises(InputError, match=r"expected a shape \(Z, Y, X\) of 3 ints of at least \(8, 32, 32\), got \(4, 96, 96\)"):
        make_head_ct(seed=0, shape=(4, 96, 96))
    with pytest.raises(InputError, match="shape"):
        make_head_ct(seed=0, shape=(16, 96))
    with pytest.raises(InputError, match=r"spacing \(slice, row, column\) of 3 positive numbers"):
        make_head_ct(seed=0, shape=SMALL, spacing=(2.5, 0.0, 0.9))


# ---- randomness as data: HeadFamily -> HeadParams -> render ----------------------------------

TEETH = [LABELS[f"{jaw}_{part}"] for jaw in ("lower", "upper") for part in ("crown", "root", "pulp", "metal")]


def test_params_round_trip_through_json_renders_the_same_volume(tmp_path):
    params = HeadFamily().sample(np.random.default_rng(11), shape=SMALL, metal=True)
    assert params.fillings  # the round trip covers the nested per-filling entries too
    path = write_params(tmp_path / "params.json", params)
    again = read_params(path, HeadParams)
    assert again == params and params_from_dict(HeadParams, params_to_dict(params)) == params
    first, second = render(params), render(again)
    np.testing.assert_array_equal(first.hu, second.hu)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.metal_centres, second.metal_centres)
    assert second.params == params


def test_make_head_ct_is_sample_then_render():
    phantom = make_head_ct(seed=4, shape=SMALL, metal=True)
    params = HeadFamily().sample(np.random.default_rng(4), shape=SMALL, metal=True)
    assert phantom.params == params
    np.testing.assert_array_equal(phantom.hu, render(params).hu)
    # Fillings are drawn last: the head without metal has the same parameters but for them.
    assert HeadFamily().sample(np.random.default_rng(4), shape=SMALL) == dataclasses.replace(params, fillings=())


@pytest.mark.parametrize("seed", range(6))
def test_every_sampled_value_lies_in_its_family_range(seed):
    family = HeadFamily()
    params = family.sample(np.random.default_rng(seed), shape=SMALL, metal=True)
    seeds = {"mastoid_cells_seed", "soft_texture_seed", "trabecular_seed", "noise_seed"}
    per_item = {"head_aspect", "teeth", "fillings"}  # tuples, checked item by item below
    derived = {"slice_profile_voxels"}  # from the family's slice thickness (None here: the original profile)
    scalars = {f.name for f in dataclasses.fields(HeadParams)} - seeds - per_item - derived - {"shape", "spacing"}
    assert all(hasattr(family, name) for name in scalars)  # each drawn from its own range, or a constant of the family
    for name in sorted(scalars):
        allowed = getattr(family, name)
        inside = allowed.contains(getattr(params, name)) if hasattr(allowed, "contains") else getattr(params, name) == allowed
        assert inside, (name, getattr(params, name))
    assert params.slice_profile_voxels == 0.4
    assert all(family.head_aspect.contains(value) for value in params.head_aspect)
    assert params.spacing == pytest.approx((7.5, 2.4, 2.4))
    for name in seeds:
        assert 0 <= getattr(params, name) < 2**31 - 1
    assert len(params.teeth) == 28
    for tooth in params.teeth:
        assert family.tooth_present.contains(tooth.present)
        assert tooth.shape == (family.upper_teeth if tooth.upper else family.lower_teeth)[tooth.position]
    assert 1 <= len(params.fillings) <= family.filling_count.high
    for filling in params.fillings:
        tooth = params.teeth[filling.tooth]
        assert tooth.present and tooth.shape.cusps
        assert family.filling_hu.contains(filling.hu) and family.streak_strength_hu.contains(filling.streak_strength_hu)
        assert family.streak_lines.contains(len(filling.streak_angles_rad)) and len(filling.streak_amplitudes) == len(filling.streak_angles_rad)
        assert all(family.streak_angle_rad.contains(a) for a in filling.streak_angles_rad)
        assert all(family.streak_amplitude.contains(a) for a in filling.streak_amplitudes)


def _render_with(seed: int, **ranges) -> HeadPhantom:
    return render(dataclasses.replace(HeadFamily(), **ranges).sample(np.random.default_rng(seed), shape=MEDIUM))


def test_no_teeth_in_the_family_means_no_teeth_in_the_volume():
    # Both variants draw the same number of values, so everything else about the head is alike.
    toothless = _render_with(3, tooth_present=Choice((False,)))
    full = _render_with(3, tooth_present=Choice((True,)))
    assert not any(t.present for t in toothless.params.teeth) and all(t.present for t in full.params.teeth)
    assert np.count_nonzero(np.isin(toothless.labels, TEETH)) == 0
    assert np.count_nonzero(np.isin(full.labels, TEETH)) > 500
    assert np.count_nonzero(full.mandible) > np.count_nonzero(toothless.mandible) > 2000


def test_a_larger_head_or_a_taller_ramus_gives_a_larger_mandible():
    small, large = (_render_with(5, head_size=Uniform(size, size)) for size in (0.95, 1.05))
    volume = (np.count_nonzero(small.mandible), np.count_nonzero(large.mandible))
    assert 1.2 < volume[1] / volume[0] < 1.5  # (1.05 / 0.95)^3 = 1.35
    short, tall = (_render_with(5, ramus_height_scale=Uniform(scale, scale)) for scale in (0.94, 1.04))
    assert np.count_nonzero(tall.mandible) > np.count_nonzero(short.mandible)
    outside = ~(tall.mandible | short.mandible)
    np.testing.assert_array_equal(tall.labels[outside], short.labels[outside])  # only the jaw changed


def test_narrowed_pose_and_levels_show_in_the_volume():
    closed = _render_with(8, mouth_closed=Choice((True,)), mandible_cortical_hu=Uniform(1300.0, 1300.0))
    dense = _render_with(8, mouth_closed=Choice((True,)), mandible_cortical_hu=Uniform(1700.0, 1700.0))
    assert closed.opening_deg == 0.0 and closed.params.mouth_closed
    np.testing.assert_array_equal(closed.labels, dense.labels)  # only the level differs
    gain = dense.hu.astype(np.float64) - closed.hu
    assert gain.min() >= 0 and 250 < gain.max() <= 400  # the 400 HU step of the shell, blurred
    near_the_jaw = ndimage.binary_dilation(closed.mandible, iterations=2)
    assert np.abs(gain[~near_the_jaw]).max() <= 1  # elsewhere the same noise, up to rounding


def test_render_refuses_inconsistent_params():
    params = HeadFamily().sample(np.random.default_rng(1), shape=SMALL, metal=True)
    missing = dataclasses.replace(params.teeth[params.fillings[0].tooth], present=False)
    teeth = tuple(missing if i == params.fillings[0].tooth else t for i, t in enumerate(params.teeth))
    with pytest.raises(InputError, match=r"expected fillings in present teeth \(indices 0-27\), got one in tooth \d+"):
        render(dataclasses.replace(params, teeth=teeth))
    with pytest.raises(InputError, match=r"expected a shape \(Z, Y, X\)"):
        render(dataclasses.replace(params, shape=(4, 96, 96)))
    with pytest.raises(InputError, match="expected HeadParams, got dict"):
        render(params_to_dict(params))  # type: ignore[arg-type]
