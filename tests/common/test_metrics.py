import math

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.metrics import ConfusionCounts, confusion_matrix, one_vs_rest


def test_counts_and_metrics_on_a_hand_made_pair():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    predicted = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    c = ConfusionCounts.from_masks(predicted, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 4)
    assert c.accuracy == pytest.approx(6 / 8)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(2 / 3)
    assert c.specificity == pytest.approx(4 / 5)
    assert c.iou == pytest.approx(2 / 4)
    assert c.dice == pytest.approx(4 / 6)
    assert c.youden == pytest.approx(2 / 3 + 4 / 5 - 1)


def test_empty_masks_agree_perfectly_and_undefined_ratios_are_nan():
    c = ConfusionCounts.from_masks(np.zeros(4, bool), np.zeros(4, bool))
    assert c.iou == 1.0 and c.dice == 1.0
    assert math.isnan(c.precision) and math.isnan(c.recall)


def test_shape_mismatch_is_refused():
    with pytest.raises(InputError, match=r"expected masks of the same shape \(3,\), got shape \(4,\)"):
        ConfusionCounts.from_masks(np.zeros(4), np.zeros(3))


def test_multiclass_matrix_and_one_vs_rest():
    truth = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    matrix = confusion_matrix(truth, predicted, 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    class0, class1, class2 = one_vs_rest(matrix)
    assert (class0.tp, class0.fp, class0.fn, class0.tn) == (1, 1, 1, 3)
    assert (class1.tp, class1.fp, class1.fn, class1.tn) == (2, 1, 0, 3)
    assert class2.precision == 1.0 and class2.recall == 0.5
    with pytest.raises(InputError, match="expected true labels in 0..2"):
        confusion_matrix([3], [0], 3)
