"""Tests of the synthetic head CT (medimg.mandible.phantom)."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage

from medimg.common.errors import InputError
from medimg.mandible.phantom import HU_MAX, HU_MIN, LABELS, HeadPhantom, make_head_ct

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
