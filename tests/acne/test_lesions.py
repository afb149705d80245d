import numpy as np
import pytest

from medimg.acne.lesions import centre_heatmap, detect_lesions, scale_boxes
from medimg.common.errors import InputError


def test_heatmap_peaks_at_each_centre_cell_with_log_sizes():
    boxes = np.array([[8, 8, 24, 16], [40, 40, 48, 56]], dtype=np.float32)  # centres (16, 12) and (44, 48)
    heatmap, size, mask = centre_heatmap(boxes, (16, 16), stride=4)
    assert heatmap.shape == (1, 16, 16) and size.shape == (2, 16, 16) and mask.shape == (1, 16, 16)
    assert heatmap[0, 3, 4] == 1.0 and heatmap[0, 12, 11] == 1.0  # rows y/4, columns x/4
    assert np.count_nonzero(heatmap == 1.0) == 2 and mask.sum() == 2
    assert size[:, 3, 4] == pytest.approx(np.log([16, 8]))
    assert size[:, 12, 11] == pytest.approx(np.log([8, 16]))
    # sigma 0.8 cells (the floor): one cell away is exp(-1 / (2 * 0.64))
    assert heatmap[0, 3, 5] == pytest.approx(np.exp(-1 / 1.28), rel=1e-5)


def test_no_boxes_give_an_empty_target_and_inverted_boxes_are_refused():
    heatmap, size, mask = centre_heatmap(np.zeros((0, 4)), (8, 8), stride=4)
    assert heatmap.max() == 0 and mask.sum() == 0
    with pytest.raises(InputError, match="xmin, ymin, xmax, ymax"):
        centre_heatmap(np.array([[10, 10, 5, 20]]), (8, 8), stride=4)


def test_detections_are_the_local_maxima_above_the_threshold_strongest_first():
    heatmap = np.zeros((10, 10), np.float32)
    heatmap[2, 3], heatmap[2, 4] = 0.9, 0.5  # a peak and its shoulder: one lesion
    heatmap[7, 7] = 0.6
    heatmap[5, 0] = 0.2  # under the threshold
    sizes = np.full((2, 10, 10), np.log(12.0), np.float32)
    found = detect_lesions(heatmap, sizes, threshold=0.3, stride=4)
    assert found.shape == (2, 5)
    assert found[:, :2].tolist() == [[14.0, 10.0], [30.0, 30.0]]  # (column + 0.5) * 4, (row + 0.5) * 4
    assert found[:, 2:4] == pytest.approx(12.0)
    assert found[:, 4] == pytest.approx([0.9, 0.6])
    assert len(detect_lesions(heatmap, sizes, threshold=0.1, stride=4)) == 3
    with pytest.raises(InputError, match="threshold"):
        detect_lesions(heatmap, sizes, threshold=1.5, stride=4)


def test_scale_boxes_stretches_x_and_y_apart():
    found = np.array([[128, 64, 10, 20, 0.7]], np.float32)
    scaled = scale_boxes(found, from_shape=(256, 256), to_shape=(512, 1024))
    assert scaled[0].tolist() == pytest.approx([512, 128, 40, 40, 0.7])
