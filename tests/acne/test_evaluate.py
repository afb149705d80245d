import numpy as np
import pytest

from medimg.acne.evaluate import evaluate
from medimg.acne.labels import N_COUNT_BINS
from medimg.acne.transforms import ACNE04_MEAN, ACNE04_STD
from medimg.common.errors import InputError

from .conftest import TEST_ENTRIES

# grey level of each test image -> (predicted count, predicted grade-head grade)
PREDICTIONS = {30: (3, 0), 90: (25, 1), 150: (30, 1), 210: (40, 3)}


def by_grey_level(images):
    """A predictor that recognises each solid test image by its grey level."""
    levels = (images[:, 0].mean(axis=(1, 2)) * ACNE04_STD[0] + ACNE04_MEAN[0]) * 255
    count_probs = np.zeros((len(images), N_COUNT_BINS))
    grade_probs = np.zeros((len(images), 4))
    for i, level in enumerate(levels):
        count, grade = PREDICTIONS[min(PREDICTIONS, key=lambda known: abs(known - level))]
        count_probs[i, count - 1] = 1.0
        grade_probs[i, grade] = 1.0
    return count_probs, grade_probs


def test_report_on_a_hand_worked_fold(tiny_acne04, capsys):
    # truth (grade column, count column): (0, 3), (1, 10), (2, 30), (3, 60)
    # grade head: 0, 1, 1, 3 -> 3 of 4 right; counts 3, 25, 30, 40 -> Hayashi grades 0, 2, 2, 2 -> 2 of 4
    report = evaluate(tiny_acne04, fold=0, predictor=by_grey_level, batch_size=3)
    assert (report["fold"], report["criterion"], report["n_images"]) == (0, "hayashi", 4)
    assert "images" not in report  # one count of images, the scores' n_images
    assert "grade column" not in capsys.readouterr().err  # the fold's columns follow Hayashi
    assert report["grading"]["grade_head"]["AVE_ACC"] == 0.75
    assert report["grading"]["count_derived"]["AVE_ACC"] == 0.5
    assert report["counting"]["MAE"] == pytest.approx((0 + 15 + 0 + 20) / 4)
    assert report["counting"]["RMSE"] == pytest.approx(np.sqrt((15**2 + 20**2) / 4))
    moderate = report["grading"]["grade_head"]["rows"][1]
    # moderate: TP = image 2, FP = image 3, FN none, TN = images 1 and 4
    assert (moderate["precision"], moderate["SE"], moderate["SP"]) == (0.5, 1.0, pytest.approx(2 / 3))
    assert moderate["YI"] == pytest.approx(2 / 3)
    very_severe = report["counting"]["rows"][3]  # the 'levle0_' named image of grade 3: count 60 -> 40
    assert (very_severe["SE"], very_severe["MAE"]) == (0.0, 20.0)


def test_the_criterion_grades_the_predicted_counts(tiny_acne04, capsys):
    from medimg.acne.labels import parse_thresholds

    # counts 3, 25, 30, 40 -> grades 0, 0, 0, 1 under 30,40,50; truth 0, 1, 2, 3: only the first is right
    report = evaluate(tiny_acne04, fold=0, predictor=by_grey_level, criterion=parse_thresholds("30,40,50"))
    assert report["grading"]["count_derived"]["AVE_ACC"] == 0.25
    assert report["grading"]["grade_head"]["AVE_ACC"] == 0.75
    # the true counts 3, 10, 30, 60 are grades 0, 0, 0, 3 under 30,40,50; the columns say 0, 1, 2, 3
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("Warning:") == 1
    assert ("2 of 4 lines have a grade column that differs from the grade of the count under thresholds 30,40,50: "
            "the grade head is scored against the column") in err


def test_missing_fold_is_a_clear_error(tiny_acne04):
    with pytest.raises(InputError, match="NNEW_test_3.txt"):
        evaluate(tiny_acne04, fold=3, predictor=by_grey_level)
    assert len(TEST_ENTRIES) == 4
