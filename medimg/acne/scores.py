"""The report's evaluation tables: per-grade Precision, SE, SP, YI (+ MAE, RMSE for counting), AVE_ACC.

Conventions, checked against the report's Table 2 (its numbers follow from one confusion matrix):

- per class, one-vs-rest: Precision = TP / (TP + FP), SE = TP / (TP + FN), SP = TN / (TN + FP),
  YI = SE + SP - 1; a ratio with a zero denominator is ``nan``.
- the "average" row is the unweighted mean over classes (the report's "avg / total"), ignoring
  classes where a metric is ``nan``.
- AVE_ACC is the overall accuracy.
- counting: MAE and RMSE of the counts per true grade; the average row is over all images.
  The report's "MSE" column is in fact this root mean squared error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medimg.acne.labels import GRADE_NAMES, N_GRADES
from medimg.common.errors import InputError, expected
from medimg.common.metrics import confusion_matrix, one_vs_rest

GRADING_METRICS = ("precision", "SE", "SP", "YI")
COUNTING_METRICS = ("MAE", "RMSE")
RECORD_FIELDS = ("table", "class", "grade", *GRADING_METRICS, *COUNTING_METRICS, "support", "AVE_ACC")


def _labels(values, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(expected(f"a 1-D sequence of {what}", f"shape {array.shape}"))
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise InputError(expected(f"integer {what}", array.dtype))
    return array.astype(np.int64)


def _same_length(first: np.ndarray, second: np.ndarray, what: str) -> None:
    if first.shape != second.shape:
        raise InputError(expected(f"{first.size} {what}", second.size))
    if first.size == 0:
        raise InputError(expected(f"at least one of the {what}", "none"))


def _mean_defined(values: Sequence[float]) -> float:
    defined = [value for value in values if np.isfinite(value)]
    return float(np.mean(defined)) if defined else float("nan")


def grading_rows(
    true_grades: Sequence[int] | np.ndarray,
    predicted_grades: Sequence[int] | np.ndarray,
    *,
    n_classes: int = N_GRADES,
    names: Sequence[str] = GRADE_NAMES,
) -> list[dict]:
    """One row per class and an "average" row.

    Parameters
    ----------
    true_grades, predicted_grades : (N,) ndarray of int, values 0..n_classes-1

    Returns
    -------
    rows : list of dict
        ``class`` (name), ``grade`` (index; None on the average row), ``precision``, ``SE``,
        ``SP``, ``YI``, ``support`` (true images of the class; all images on the average row).
    """
    truth = _labels(true_grades, "true grades")
    predicted = _labels(predicted_grades, "predicted grades")
    _same_length(truth, predicted, "predicted grades")
    if len(names) != n_classes:
        raise InputError(expected(f"{n_classes} class names", len(names)))
    matrix = confusion_matrix(truth, predicted, n_classes)
    rows = []
    for grade, counts in enumerate(one_vs_rest(matrix)):
        rows.append(
            {
                "class": names[grade],
                "grade": grade,
                "precision": counts.precision,
                "SE": counts.sensitivity,
                "SP": counts.specificity,
                "YI": counts.youden,
                "support": counts.tp + counts.fn,
            }
        )
    average = {"class": "average", "grade": None}
    average.update({metric: _mean_defined([row[metric] for row in rows]) for metric in GRADING_METRICS})
    average["support"] = int(truth.size)
    return rows + [average]


def counting_errors(true_counts: Sequence[float] | np.ndarray, predicted_counts: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean absolute error and root mean squared error of lesion counts.

    Parameters
    ----------
    true_counts, predicted_counts : (N,) ndarray of int or float

    Returns
    -------
    errors : dict ``{"MAE": float, "RMSE": float}``
    """
    truth = np.asarray(true_counts, dtype=np.float64)
    predicted = np.asarray(predicted_counts, dtype=np.float64)
    if truth.ndim != 1:
        raise InputError(expected("a 1-D sequence of true counts", f"shape {truth.shape}"))
    _same_length(truth, predicted, "predicted counts")
    if not (np.all(np.isfinite(truth)) and np.all(np.isfinite(predicted))):
        raise InputError(expected("finite lesion counts", "nan or infinity"))
    difference = predicted - truth
    return {"MAE": float(np.mean(np.abs(difference))), "RMSE": float(np.sqrt(np.mean(difference**2)))}


def average_accuracy(true: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """AVE_ACC: the share of images whose predicted grade equals the true one."""
    truth = _labels(true, "true grades")
    guess = _labels(predicted, "predicted grades")
    _same_length(truth, guess, "predicted grades")
    return float(np.mean(truth == guess))


def counting_rows(
    true_grades: Sequence[int] | np.ndarray,
    count_grades: Sequence[int] | np.ndarray,
    true_counts: Sequence[float] | np.ndarray,
    predicted_counts: Sequence[float] | np.ndarray,
    *,
    n_classes: int = N_GRADES,
    names: Sequence[str] = GRADE_NAMES,
) -> list[dict]:
    """The report's counting table: ``grading_rows`` of the count-derived grade, plus MAE and
    RMSE of the counts of the images of each true grade (``nan`` for a grade without images);
    the average row's MAE and RMSE are over all images."""
    truth = _labels(true_grades, "true grades")
    rows = grading_rows(truth, count_grades, n_classes=n_classes, names=names)
    true_counts = np.asarray(true_counts, dtype=np.float64)
    predicted_counts = np.asarray(predicted_counts, dtype=np.float64)
    if true_counts.shape != truth.shape:
        raise InputError(expected(f"{truth.size} true counts (one per graded image)", true_counts.size))
    overall = counting_errors(true_counts, predicted_counts)
    for row in rows[:-1]:
        members = truth == row["grade"]
        errors = counting_errors(true_counts[members], predicted_counts[members]) if members.any() else {"MAE": float("nan"), "RMSE": float("nan")}
        row.update(errors)
    rows[-1].update(overall)
    return rows


def evaluation_report(
    *,
    true_grades: Sequence[int] | np.ndarray,
    grade_head: Sequence[int] | np.ndarray,
    count_grade: Sequence[int] | np.ndarray,
    true_counts: Sequence[float] | np.ndarray,
    predicted_counts: Sequence[float] | np.ndarray,
    n_classes: int = N_GRADES,
    names: Sequence[str] = GRADE_NAMES,
) -> dict:
    """Both tables of the report for one test set.

    Parameters
    ----------
    true_grades : (N,) ndarray of int
    grade_head : (N,) ndarray of int, the grade head's predicted grades
    count_grade : (N,) ndarray of int, the grades derived from the count head
    true_counts, predicted_counts : (N,) ndarray of int or float

    Returns
    -------
    report : dict
        ``{"n_images": N,
           "grading": {"grade_head": {"rows": [...], "AVE_ACC": x},
                       "count_derived": {"rows": [...], "AVE_ACC": y}},
           "counting": {"MAE": .., "RMSE": .., "rows": [... with MAE, RMSE per class]}}``
    """
    truth = _labels(true_grades, "true grades")
    counted = counting_rows(truth, count_grade, true_counts, predicted_counts, n_classes=n_classes, names=names)
    overall = counted[-1]
    return {
        "n_images": int(truth.size),
        "grading": {
            "grade_head": {
                "rows": grading_rows(truth, grade_head, n_classes=n_classes, names=names),
                "AVE_ACC": average_accuracy(truth, grade_head),
            },
            "count_derived": {
                "rows": grading_rows(truth, count_grade, n_classes=n_classes, names=names),
                "AVE_ACC": average_accuracy(truth, count_grade),
            },
        },
        "counting": {"MAE": overall["MAE"], "RMSE": overall["RMSE"], "rows": counted},
    }


def report_records(report: dict) -> list[dict]:
    """Flat rows of the report's two tables for table/CSV output, all with the keys ``RECORD_FIELDS``.

    Table ``grade_head`` is the grading table (the report's Table 2); table ``counting`` is the
    count-derived grade with the count errors (Table 1). ``AVE_ACC`` is filled on average rows.
    """
    tables = (
        ("grade_head", report["grading"]["grade_head"]["rows"], report["grading"]["grade_head"]["AVE_ACC"]),
        ("counting", report["counting"]["rows"], report["grading"]["count_derived"]["AVE_ACC"]),
    )
    records = []
    for table, rows, accuracy in tables:
        for row in rows:
            record = {field: row.get(field) for field in RECORD_FIELDS}
            record["table"] = table
            record["AVE_ACC"] = accuracy if row.get("grade") is None else None
            records.append(record)
    return records
