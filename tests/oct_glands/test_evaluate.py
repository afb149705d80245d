import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.evaluate import pore_scores, voxel_scores


def test_rt_rf_on_hand_placed_pores():
    truth = [(10, 10), (50, 10), (90, 10), (10, 60)]
    predicted = [
        (13, 14),  # distance 5 from (10, 10): correct
        (50, 19.5),  # distance 9.5: correct
        (90, 20),  # distance 10 > 9.8989: wrong
        (200, 200),  # far: wrong
        (11, 11),  # second hit near (10, 10): correct, counts again for RT
    ]
    scores = pore_scores(np.array(predicted, float), np.array(truth, float), radius=9.8989)
    assert scores["correct_predicted"] == 3 and scores["wrong_predicted"] == 2
    assert scores["RT"] == pytest.approx(3 / 4)
    assert scores["RF"] == pytest.approx(2 / 5)
    assert scores["detected"] == pytest.approx(2 / 4)
    on_the_boundary = pore_scores(np.array([[13.0, 14.0]]), np.array([[10.0, 10.0]]), radius=5.0)
    assert on_the_boundary["correct_predicted"] == 1  # distance <= radius counts


def test_no_predictions_and_no_truth():
    scores = pore_scores(np.zeros((0, 2)), np.array([[1.0, 1.0]]))
    assert scores["RT"] == 0 and np.isnan(scores["RF"])
    with pytest.raises(InputError, match="at least one true pore"):
        pore_scores(np.array([[1.0, 1.0]]), np.zeros((0, 2)))


def test_voxel_iou_and_dice():
    truth = np.zeros((2, 2, 5), np.uint16)
    truth[0, 0, :4] = 7
    predicted = np.zeros_like(truth)
    predicted[0, 0, 2:] = 1
    scores = voxel_scores(predicted, truth)  # |S|=4, |S'|=3, overlap 2
    assert scores["iou"] == pytest.approx(2 / 5)
    assert scores["dice"] == pytest.approx(4 / 7)
