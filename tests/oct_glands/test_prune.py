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


def test_119_voxels_are_removed_and_120_kept():
    labels = label_glands(_mask_with_sizes([119, 120, 300]))
    assert labels.dtype == np.uint16
    assert labels.max() == 2
    assert sorted(np.bincount(labels.ravel())[1:].tolist()) == [120, 300]
    assert np.count_nonzero(labels[1]) == 0  # the 119-voxel rod was in row y = 1


def test_connectivity_decides_whether_diagonal_voxels_join():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours only
    assert label_glands(mask, min_size=1, connectivity=3).max() == 1
    assert label_glands(mask, min_size=1, connectivity=1).max() == 2
    assert label_glands(mask, min_size=2, connectivity=1).max() == 0


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="connectivity 1, 2 or 3"):
        label_glands(np.zeros((2, 2, 2), bool), connectivity=4)
