import json
import math

import numpy as np
import pytest

from medimg.acne.scores import (
    RECORD_FIELDS,
    average_accuracy,
    counting_errors,
    counting_rows,
    evaluation_report,
    grading_rows,
    report_records,
)
from medimg.common.errors import InputError
from medimg.common.tables import records_to_csv, to_json


def labels_from_matrix(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Expand a confusion matrix (rows = true, columns = predicted) into label lists."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    truth = np.repeat(np.repeat(np.arange(k), k), matrix.ravel())
    predicted = np.repeat(np.tile(np.arange(k), k), matrix.ravel())
    return truth, predicted


HAND_MATRIX = [
    [3, 1, 0, 0],
    [1, 4, 1, 0],
    [0, 1, 2, 1],
    [0, 0, 1, 2],
]  # 17 images, 11 on the diagonal


def test_grading_rows_on_a_hand_made_confusion_matrix():
    truth, predicted = labels_from_matrix(HAND_MATRIX)
    rows = grading_rows(truth, predicted)
    assert [row["class"] for row in rows] == ["mild", "moderate", "severe", "very severe", "average"]
    assert [row["grade"] for row in rows] == [0, 1, 2, 3, None]
    # by hand, one-vs-rest:        TP FP FN TN
    #   mild         3  1  1  12
    #   moderate     4  2  2   9
    #   severe       2  2  2  11
    #   very severe  2  1  1  13
    precision = [3 / 4, 4 / 6, 2 / 4, 2 / 3]
    se = [3 / 4, 4 / 6, 2 / 4, 2 / 3]
    sp = [12 / 13, 9 / 11, 11 / 13, 13 / 14]
    yi = [s + p - 1 for s, p in zip(se, sp)]
    for k in range(4):
        assert rows[k]["precision"] == pytest.approx(precision[k])
        assert rows[k]["SE"] == pytest.approx(se[k])
        assert rows[k]["SP"] == pytest.approx(sp[k])
        assert rows[k]["YI"] == pytest.approx(yi[k])
    assert [row["support"] for row in rows] == [4, 6, 4, 3, 17]
    average = rows[-1]
    assert average["precision"] == pytest.approx((3 / 4 + 4 / 6 + 2 / 4 + 2 / 3) / 4)
    assert average["SE"] == pytest.approx(sum(se) / 4)
    assert average["SP"] == pytest.approx(sum(sp) / 4)
    assert average["YI"] == pytest.approx(sum(yi) / 4)
    assert average_accuracy(truth, predicted) == pytest.approx(11 / 17)


def test_reproduces_the_reports_table_2():
    # A confusion matrix consistent with the report's Table 2 (fusion model, grade head, 292 test
    # images): per class TP/FP/FN follow from its Precision and SE; its numbers come back exactly.
    matrix = [[90, 13, 0, 0], [21, 103, 3, 0], [0, 13, 20, 3], [0, 1, 4, 21]]
    truth, predicted = labels_from_matrix(matrix)
    rows = grading_rows(truth, predicted)
    table_2 = [
        (0.8108, 0.8738, 0.8889, 0.7627),
        (0.7923, 0.8110, 0.8364, 0.6474),
        (0.7407, 0.5556, 0.9727, 0.5282),
        (0.8750, 0.8077, 0.9887, 0.7964),
        (0.8047, 0.7620, 0.9217, 0.6837),  # "avg / total": the unweighted class mean
    ]
    for row, reported in zip(rows, table_2):
        assert [round(row[m], 4) for m in ("precision", "SE", "SP", "YI")] == pytest.approx(reported, abs=1.01e-4)
    assert round(average_accuracy(truth, predicted), 4) == 0.8014  # the report's AVE_ACC


def test_undefined_precision_is_nan_and_left_out_of_the_average():
    rows = grading_rows([0, 1, 2, 3], [0, 1, 2, 2])  # class 3 never predicted
    assert math.isnan(rows[3]["precision"]) and rows[3]["SE"] == 0.0
    assert rows[2]["precision"] == pytest.approx(0.5)
    assert rows[4]["precision"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert rows[4]["SE"] == pytest.approx(3 / 4)


def test_grading_rows_with_other_classes():
    rows = grading_rows([0, 1, 1], [0, 1, 0], n_classes=2, names=("no", "yes"))
    assert [row["class"] for row in rows] == ["no", "yes", "average"]
    assert rows[0]["precision"] == pytest.approx(0.5) and rows[1]["SE"] == pytest.approx(0.5)


def test_grading_input_errors():
    with pytest.raises(InputError, match="expected 3 predicted grades, got 2"):
        grading_rows([0, 1, 2], [0, 1])
    with pytest.raises(InputError, match="predicted labels in 0..3"):
        grading_rows([0, 1], [0, 4])
    with pytest.raises(InputError, match="at least one"):
        average_accuracy([], [])
    with pytest.raises(InputError, match="integer true grades"):
        grading_rows([0.5, 1], [0, 1])
    with pytest.raises(InputError, match="4 class names"):
        grading_rows([0], [0], names=("a", "b"))


def test_counting_errors_by_hand():
    errors = counting_errors([1, 5, 10, 40], [2, 5, 7, 44])  # differences 1, 0, -3, 4
    assert errors == {"MAE": pytest.approx(8 / 4), "RMSE": pytest.approx(math.sqrt((1 + 0 + 9 + 16) / 4))}
    fractional = counting_errors(np.array([3.0, 3.0]), np.array([2.5, 4.5]))
    assert fractional["MAE"] == pytest.approx(1.0) and fractional["RMSE"] == pytest.approx(math.sqrt((0.25 + 2.25) / 2))
    with pytest.raises(InputError, match="expected 2 predicted counts, got 3"):
        counting_errors([1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="at least one"):
        counting_errors([], [])
    with pytest.raises(InputError, match="finite lesion counts"):
        counting_errors([1.0], [float("nan")])


def test_average_accuracy():
    assert average_accuracy([0, 1, 2, 3], [0, 1, 3, 3]) == pytest.approx(0.75)
    assert average_accuracy(np.array([2]), np.array([2])) == 1.0


TRUE_COUNTS = [1, 5, 10, 40, 60]  # Hayashi grades 0, 0, 1, 2, 3
PREDICTED_COUNTS = [2, 5, 7, 44, 50]  # count-derived grades 0, 0, 1, 2, 2
TRUE_GRADES = [0, 0, 1, 2, 3]
COUNT_GRADES = [0, 0, 1, 2, 2]
HEAD_GRADES = [0, 1, 1, 2, 3]


def test_counting_rows_per_true_grade():
    rows = counting_rows(TRUE_GRADES, COUNT_GRADES, TRUE_COUNTS, PREDICTED_COUNTS)
    assert rows[0]["MAE"] == pytest.approx(0.5) and rows[0]["RMSE"] == pytest.approx(math.sqrt(0.5))
    assert rows[1]["MAE"] == pytest.approx(3.0) and rows[1]["RMSE"] == pytest.approx(3.0)
    assert rows[2]["MAE"] == pytest.approx(4.0) and rows[2]["RMSE"] == pytest.approx(4.0)
    assert rows[3]["MAE"] == pytest.approx(10.0) and rows[3]["SE"] == 0.0
    assert rows[4]["MAE"] == pytest.approx((1 + 0 + 3 + 4 + 10) / 5)
    assert rows[4]["RMSE"] == pytest.approx(math.sqrt((1 + 0 + 9 + 16 + 100) / 5))
    assert rows[2]["precision"] == pytest.approx(0.5)  # two images predicted severe, one right
    empty_class = counting_rows([0, 0], [0, 0], [1, 2], [1, 3])
    assert math.isnan(empty_class[1]["MAE"]) and empty_class[4]["MAE"] == pytest.approx(0.5)


def test_evaluation_report_and_records():
    report = evaluation_report(
        true_grades=TRUE_GRADES,
        grade_head=HEAD_GRADES,
        count_grade=COUNT_GRADES,
        true_counts=TRUE_COUNTS,
        predicted_counts=PREDICTED_COUNTS,
    )
    assert report["n_images"] == 5
    assert report["grading"]["grade_head"]["AVE_ACC"] == pytest.approx(4 / 5)
    assert report["grading"]["count_derived"]["AVE_ACC"] == pytest.approx(4 / 5)
    assert report["grading"]["grade_head"]["rows"][0]["SE"] == pytest.approx(0.5)
    assert report["grading"]["count_derived"]["rows"][3]["SE"] == 0.0
    assert report["counting"]["MAE"] == pytest.approx(18 / 5)
    assert report["counting"]["RMSE"] == pytest.approx(math.sqrt(126 / 5))
    assert len(report["counting"]["rows"]) == 5

    records = report_records(report)
    assert len(records) == 10
    assert all(tuple(record) == RECORD_FIELDS for record in records)
    assert [r["table"] for r in records] == ["grade_head"] * 5 + ["counting"] * 5
    assert [r["AVE_ACC"] for r in records if r["AVE_ACC"] is not None] == [pytest.approx(0.8), pytest.approx(0.8)]
    assert records[0]["MAE"] is None and records[5]["MAE"] == pytest.approx(0.5)
    # undefined metrics become null in JSON and empty CSV cells
    undefined = report_records(evaluation_report(true_grades=[0, 0], grade_head=[0, 0], count_grade=[0, 0], true_counts=[1, 2], predicted_counts=[1, 3]))
    assert json.loads(to_json(undefined))[1]["precision"] is None
    csv_lines = records_to_csv(records).splitlines()
    assert csv_lines[0] == ",".join(RECORD_FIELDS)
    assert csv_lines[5].startswith("grade_head,average,,")
