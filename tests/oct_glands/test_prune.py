import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.prune import label_glands


def _mask_with_sizes(sizes, n_z=20):
    """Straight rods of the given voxel counts along x, one per B-scan row, well apart."""
    mask = np.zeros((2 * len(sizes) + 1, 3, max(sizes) + 2), bool)
    for i, size in enumerate(sizes):
        mask[2 * i + 1, 1, 1 : 1 + size] = True
    return mask


def test_399_voxels_are_removed_and_400_kept_and_the_papers_120_on_request():
    labels = label_glands(_mask_with_sizes([399, 400, 500]))
    assert labels.dtype == np.uint16
    assert labels.max() == 2
    assert sorted(np.bincount(labels.ravel())[1:].tolist()) == [400, 500]
    assert np.count_nonzero(labels[1]) == 0  # the 399-voxel rod was in row y = 1
    paper = label_glands(_mask_with_sizes([119, 120, 300]), min_size=120)
    assert sorted(np.bincount(paper.ravel())[1:].tolist()) == [120, 300]


def test_connectivity_decides_whether_diagonal_voxels_join():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours only
    assert label_glands(mask, min_size=1, connectivity=3).max() == 1
    assert label_glands(mask, min_size=1, connectivity=1).max() == 2
    assert label_glands(mask, min_size=2, connectivity=1).max() == 0


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="connectivity 1, 2 or 3"):
        label_glands(np.zeros((2, 2, 2), bool), connectivity=4)


def test_labelling_by_slabs_joins_a_gland_split_by_the_slab_boundary():
    from medimg.oct_glands.prune import label_glands_by_slabs

    mask = np.zeros((4, 5, 5), bool)
    mask[0:2, 0, 0] = True  # 2 voxels, rows 0-1: inside slab 0
    mask[1, 3, 3] = True  # touches the next voxel only through a corner, across the slab boundary
    mask[2:4, 4, 4] = True  # 2 voxels in slab 1: with the corner voxel, one gland of 3
    labels, mask_voxels = label_glands_by_slabs(lambda rows: mask[rows], 4, min_size=3, connectivity=3, slab=2)
    assert mask_voxels == 5 and labels.dtype == np.uint16
    assert labels[1, 3, 3] == labels[2, 4, 4] == labels[3, 4, 4] == 1 and labels.max() == 1  # the 2-voxel gland is pruned
    faces_only, _ = label_glands_by_slabs(lambda rows: mask[rows], 4, min_size=2, connectivity=1, slab=2)
    assert faces_only.max() == 2 and faces_only[1, 3, 3] == 0  # with faces only the corner voxel stands alone and goes


@pytest.mark.parametrize("slab", [1, 2, 5, 64])
@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_labelling_by_slabs_equals_labelling_the_whole_mask(slab, connectivity):
    from scipy import ndimage

    from medimg.oct_glands.prune import label_glands_by_slabs

    rng = np.random.default_rng(slab * 10 + connectivity)
    for _ in range(5):
        shape = tuple(int(n) for n in rng.integers(3, 24, size=3))
        mask = ndimage.gaussian_filter(rng.random(shape), 1.0) > rng.uniform(0.5, 0.55)
        min_size = int(rng.integers(1, 20))
        expected = label_glands(mask, min_size=min_size, connectivity=connectivity)
        labels, mask_voxels = label_glands_by_slabs(lambda rows: mask[rows], shape[0], min_size=min_size, connectivity=connectivity, slab=slab)
        assert labels.dtype == expected.dtype and mask_voxels == mask.sum()
        np.testing.assert_array_equal(labels, expected)


def test_faint_glands_are_dropped_and_the_rest_renumbered_in_order():
    from medimg.oct_glands.prune import drop_glands, faint_glands

    labels = np.zeros((3, 4, 4), dtype=np.uint16)
    labels[0, 0, :2], labels[1, 1, :3], labels[2, 3, 3] = 1, 2, 3
    before = labels.copy()
    faint = faint_glands({1: 0.9, 2: 0.65, 3: 0.8}, min_probability=0.0)
    assert faint == [] and np.array_equal(drop_glands(labels, faint), before)
    faint = faint_glands({1: 0.9, 2: 0.65, 3: 0.8}, min_probability=0.7)
    kept = drop_glands(labels, faint)
    assert faint == [2] and kept is labels  # in place
    assert kept[0, 0, :2].tolist() == [1, 1] and not kept[1].any() and kept[2, 3, 3] == 2 and kept.max() == 2
    assert np.count_nonzero(kept) == 3
    with pytest.raises(InputError, match="minimum mean probability"):
        faint_glands({1: 0.9}, min_probability=-0.1)


def test_shallow_glands_are_those_reaching_less_than_the_minimum_depth():
    from medimg.oct_glands.prune import shallow_glands

    depth_reached = {1: 9, 2: 15, 3: 14, 4: None}
    assert shallow_glands(depth_reached, min_depth=15) == [1, 3]  # 15 stays; no surface, no verdict
    assert shallow_glands(depth_reached, min_depth=0) == []
    with pytest.raises(InputError, match="expected a minimum depth >= 0, got -1"):
        shallow_glands(depth_reached, min_depth=-1)


def test_dropping_glands_renumbers_the_rest_in_place_in_their_order():
    from medimg.oct_glands.prune import drop_glands

    labels = np.array([[[1, 2, 3, 4, 0]]], np.uint16)
    assert drop_glands(labels, [2, 4]) is labels
    assert labels.tolist() == [[[1, 0, 2, 0, 0]]]
    assert drop_glands(labels, []).tolist() == [[[1, 0, 2, 0, 0]]]
