import math

import numpy as np
import pytest

from medimg.acne.labels import (
    CRITERIA,
    GRADE_NAMES,
    HAYASHI,
    N_COUNT_BINS,
    N_GRADES,
    REPORT,
    GradingCriterion,
    answer_counts,
    bin_to_count,
    cou2cls_matrix,
    count_distributions,
    count_to_bin,
    count_to_grade_distribution,
    gen_label_distribution,
    gen_label_distributions,
    grade_of_count,
    grades_of_counts,
    parse_thresholds,
    resolve_criterion,
    unreachable_grades,
)
from medimg.common.errors import InputError


def report_genld(label: int, n_labels: int, sigma: float) -> list[float]:
    """The report's genLD snippet, written out with math: density 1/(sqrt(2 pi) sigma) exp(-d^2 / (2 sigma^2)), normalised."""
    density = [1.0 / (math.sqrt(2.0 * math.pi) * sigma) * math.exp(-((k - label) ** 2) / (2.0 * sigma**2)) for k in range(n_labels)]
    total = sum(density)
    return [value / total for value in density]


def test_constants():
    assert N_COUNT_BINS == 65 and N_GRADES == 4
    assert GRADE_NAMES == ("mild", "moderate", "severe", "very severe")
    assert HAYASHI == GradingCriterion("hayashi", (5, 20, 50))
    assert REPORT.upper == (19, 50, 65)
    assert set(CRITERIA) == {"hayashi", "report"}


def test_genld_matches_the_formula_in_the_middle():
    distribution = gen_label_distribution(32, 65)
    assert distribution.shape == (65,) and distribution.dtype == np.float32
    assert int(np.argmax(distribution)) == 32
    assert distribution.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(distribution, report_genld(32, 65, 3.0), rtol=1e-6)
    # symmetric around the label, neighbours in the ratio exp(-d^2 / (2 * 9))
    np.testing.assert_allclose(distribution[:32][::-1], distribution[33:], rtol=1e-6)
    assert distribution[33] / distribution[32] == pytest.approx(math.exp(-1 / 18), rel=1e-6)
    assert distribution[35] / distribution[32] == pytest.approx(math.exp(-9 / 18), rel=1e-6)
    # far from the centre the mass is essentially the full Gaussian: peak = 1 / (sqrt(2 pi) * 3)
    assert distribution[32] == pytest.approx(1 / (math.sqrt(2 * math.pi) * 3), rel=1e-4)


def test_genld_truncated_at_the_edge_is_renormalised():
    distribution = gen_label_distribution(0, 65)
    total = sum(math.exp(-(k**2) / 18) for k in range(65))
    assert distribution[0] == pytest.approx(1 / total, rel=1e-6)
    assert distribution[0] > 1 / (math.sqrt(2 * math.pi) * 3)  # the half that fell off is redistributed
    assert distribution[1] / distribution[0] == pytest.approx(math.exp(-1 / 18), rel=1e-6)
    assert distribution.sum() == pytest.approx(1.0, abs=1e-6)
    last = gen_label_distribution(64, 65)
    np.testing.assert_allclose(last, distribution[::-1], rtol=1e-6)


def test_genld_over_four_grades_and_other_sigma():
    grades = gen_label_distribution(1, 4)
    weights = [math.exp(-1 / 18), 1.0, math.exp(-1 / 18), math.exp(-4 / 18)]
    np.testing.assert_allclose(grades, [w / sum(weights) for w in weights], rtol=1e-6)
    np.testing.assert_allclose(gen_label_distribution(10, 30, sigma=1.5), report_genld(10, 30, 1.5), rtol=1e-6)


def test_genld_batch_and_count_targets():
    batch = gen_label_distributions(np.array([0, 32, 64]), 65)
    assert batch.shape == (3, 65)
    np.testing.assert_array_equal(batch[1], gen_label_distribution(32, 65))
    targets = count_distributions(np.array([1, 33, 65, 0, 90]))  # counts, clipped into 1..65
    assert targets.shape == (5, 65) and targets.dtype == np.float32
    assert [int(np.argmax(row)) for row in targets] == [0, 32, 64, 0, 64]


def test_genld_rejects_bad_arguments():
    with pytest.raises(InputError, match="labels in 0..64"):
        gen_label_distribution(65, 65)
    with pytest.raises(InputError, match="sigma > 0"):
        gen_label_distribution(3, 65, sigma=0.0)
    with pytest.raises(InputError, match="at least one label"):
        gen_label_distribution(0, 0)


def test_count_bins():
    assert [count_to_bin(c) for c in (1, 2, 65, 0, -3, 66, 200)] == [0, 1, 64, 0, 0, 64, 64]
    assert [bin_to_count(i) for i in (0, 31, 64)] == [1, 32, 65]
    with pytest.raises(InputError, match="count bin in 0..64"):
        bin_to_count(65)


def test_hayashi_boundaries():
    cases = {0: 0, 1: 0, 5: 0, 6: 1, 20: 1, 21: 2, 50: 2, 51: 3, 65: 3, 400: 3}
    for count, grade in cases.items():
        assert grade_of_count(count) == grade, count
        assert grade_of_count(count, HAYASHI) == grade, count
    counts = np.array(list(cases))
    grades = grades_of_counts(counts)
    assert grades.dtype == np.int64
    np.testing.assert_array_equal(grades, list(cases.values()))
    np.testing.assert_array_equal(grades_of_counts(np.array([[5.0, 5.5], [20.0, 50.2]])), [[0, 1], [1, 3]])


def test_report_criterion_boundaries():
    cases = {1: 0, 19: 0, 20: 1, 50: 1, 51: 2, 65: 2, 66: 3}
    for count, grade in cases.items():
        assert grade_of_count(count, REPORT) == grade, count
    np.testing.assert_array_equal(grades_of_counts(np.array(list(cases)), REPORT), list(cases.values()))


def test_negative_count_is_refused():
    with pytest.raises(InputError, match="lesion counts >= 0"):
        grade_of_count(-1)


def test_parse_thresholds():
    criterion = parse_thresholds(" 2, 4 ,8")
    assert criterion.upper == (2, 4, 8)
    assert [grade_of_count(c, criterion) for c in (2, 3, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert parse_thresholds("5,20,50").upper == HAYASHI.upper
    assert parse_thresholds("0,1,2").upper == (0, 1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c", "integer thresholds"),
        ("5.5,20,50", "integer thresholds"),
        ("5,20", "three thresholds"),
        ("5,20,50,60", "three thresholds"),
        ("", "three thresholds"),
        ("5,5,50", "0 <= a < b < c"),
        ("20,5,50", "0 <= a < b < c"),
        ("-1,5,10", "0 <= a < b < c"),
    ],
)
def test_parse_thresholds_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_thresholds(text)


def test_resolve_criterion():
    assert resolve_criterion(None, None) is HAYASHI
    assert resolve_criterion("report", None) is REPORT
    assert resolve_criterion("Hayashi", None) is HAYASHI
    assert resolve_criterion(None, "3,10,30").upper == (3, 10, 30)
    with pytest.raises(InputError, match="criterion among hayashi, report, got 'iga'"):
        resolve_criterion("iga", None)
    with pytest.raises(InputError, match="either a criterion name or thresholds"):
        resolve_criterion("report", "3,10,30")


def test_thresholds_beyond_the_last_count_bin_warn_once(capsys):
    assert unreachable_grades(HAYASHI) == () and unreachable_grades(REPORT) == (3,)
    assert unreachable_grades(parse_thresholds("5,64,65")) == (3,) and unreachable_grades(parse_thresholds("5,64,70")) == (3,)
    assert unreachable_grades(parse_thresholds("5,63,64")) == ()  # count 65 is grade 3
    resolve_criterion(None, "5,20,64")
    assert capsys.readouterr().err == ""
    assert resolve_criterion(None, "5,20,65").upper == (5, 20, 65)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "Warning: with thresholds 5,20,65 grade 3 needs more than 65 lesions: the count head (counts 1..65) can never give it"]
    resolve_criterion(None, "5,66,80")
    assert "grades 2, 3 need more than 65 lesions" in capsys.readouterr().err


def test_cou2cls_matrix_membership():
    matrix = cou2cls_matrix()
    assert matrix.shape == (65, 4) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix.sum(axis=1), np.ones(65))
    np.testing.assert_array_equal(matrix.sum(axis=0), [5, 15, 30, 15])  # counts 1-5, 6-20, 21-50, 51-65
    assert matrix[4, 0] == 1 and matrix[5, 1] == 1 and matrix[19, 1] == 1 and matrix[20, 2] == 1
    assert matrix[49, 2] == 1 and matrix[50, 3] == 1
    report = cou2cls_matrix(REPORT)
    np.testing.assert_array_equal(report.sum(axis=1), np.ones(65))
    np.testing.assert_array_equal(report.sum(axis=0), [19, 31, 15, 0])  # grade 3 unreachable with 65 bins


def test_cou2cls_sums_a_hand_made_distribution():
    probs = np.zeros(65)
    # bin i holds count i + 1
    probs[0], probs[4] = 0.10, 0.20  # counts 1, 5 -> mild
    probs[5], probs[19] = 0.05, 0.15  # counts 6, 20 -> moderate
    probs[20], probs[49] = 0.10, 0.20  # counts 21, 50 -> severe
    probs[50], probs[64] = 0.12, 0.08  # counts 51, 65 -> very severe
    grades = count_to_grade_distribution(probs)
    assert grades.shape == (4,) and grades.dtype == np.float64
    np.testing.assert_allclose(grades, [0.30, 0.20, 0.30, 0.20])
    np.testing.assert_allclose(count_to_grade_distribution(probs, REPORT), [0.35, 0.45, 0.20, 0.0])


def test_cou2cls_batch_and_dtype():
    uniform = np.full((2, 3, 65), 1 / 65, dtype=np.float32)
    grades = count_to_grade_distribution(uniform)
    assert grades.shape == (2, 3, 4) and grades.dtype == np.float32
    np.testing.assert_allclose(grades[1, 2], np.array([5, 15, 30, 15]) / 65, rtol=1e-6)
    peaked = count_to_grade_distribution(gen_label_distribution(count_to_bin(21), 65))
    assert int(np.argmax(peaked)) == 2 and peaked.sum() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(InputError, match=r"shape \(\.\.\., 65\)"):
        count_to_grade_distribution(np.ones((2, 64)))


def test_answer_counts_by_rule():
    ldl = np.array([2, 10, 30, 7])
    detected = np.array([3, 10, 21, 0])
    assert answer_counts(ldl, detected, "ldl").tolist() == [2, 10, 30, 7]
    assert answer_counts(ldl, detected, "detections").tolist() == [3, 10, 21, 0]
    # (2+3)/2 = 2.5 -> 3, halves rounded up; (30+21)/2 = 25.5 -> 26; (7+0)/2 = 3.5 -> 4
    assert answer_counts(ldl, detected, "mean").tolist() == [3, 10, 26, 4]
    # a network without a detector answers with its count head whatever the rule
    assert answer_counts(ldl, None, "mean").tolist() == [2, 10, 30, 7]


def test_answer_counts_refuses_an_unknown_rule_and_mismatched_lengths():
    with pytest.raises(InputError, match="count rule in ldl, detections, mean"):
        answer_counts(np.array([1]), np.array([1]), "median")
    with pytest.raises(InputError, match="expected 2 detected counts \\(one per photo\\), got 1"):
        answer_counts(np.array([1, 2]), np.array([1]), "mean")
    with pytest.raises(InputError, match="detected counts as one non-negative integer per photo"):
        answer_counts(np.array([1, 2]), np.array([1.5, 2.0]), "mean")
    with pytest.raises(InputError, match="count-head counts as one non-negative integer per photo"):
        answer_counts(np.array([1, -2]), np.array([1, 2]), "mean")
