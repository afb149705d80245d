"""Acne labels: lesion-count bins, severity grades, grading criteria and label distributions.

A lesion count ``c`` lives in count bin ``c - 1`` (counts 1..65, the ACNE04 range; counts outside
are clipped into the first or last bin). A grade is 0..3 (mild, moderate, severe, very severe).

Two grading criteria are built in:

- ``hayashi`` (default, the criterion ACNE04's labels follow): count <= 5 -> 0, 6..20 -> 1,
  21..50 -> 2, > 50 -> 3.
- ``report``: the thresholds written in the seed report, 0-19 -> 0, 20-50 -> 1, 50-65 -> 2,
  > 65 -> 3. The report's ranges overlap at 50; here 50 goes to grade 1 (upper bounds 19, 50, 65).
  With 65 count bins grade 3 is unreachable from the count head under this criterion, and the
  ACNE04 grade column does not follow it, so it is offered for comparison only.

Any other criterion is given as upper bounds ``"a,b,c"`` (see ``parse_thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, OptionValueError, expected

N_COUNT_BINS = 65
N_GRADES = 4
GRADE_NAMES = ("mild", "moderate", "severe", "very severe")
DEFAULT_SIGMA = 3.0


@dataclass(frozen=True)
class GradingCriterion:
    """Upper lesion counts of grades 0, 1 and 2: grade 0 if count <= upper[0], 1 if <= upper[1],
    2 if <= upper[2], else 3."""

    name: str
    upper: tuple[int, int, int]

    def describe(self) -> str:
        a, b, c = self.upper
        return f"{self.name}: 0-{a} mild, {a + 1}-{b} moderate, {b + 1}-{c} severe, >{c} very severe"


HAYASHI = GradingCriterion("hayashi", (5, 20, 50))
REPORT = GradingCriterion("report", (19, 50, 65))
CRITERIA: dict[str, GradingCriterion] = {criterion.name: criterion for criterion in (HAYASHI, REPORT)}


def parse_thresholds(text: str) -> GradingCriterion:
    """Read ``"a,b,c"``: three strictly increasing integer upper counts >= 0 of grades 0, 1, 2."""
    fields = [field.strip() for field in str(text).split(",")]
    if len(fields) != N_GRADES - 1:
        raise OptionValueError(expected("three thresholds 'a,b,c' (upper counts of grades 0, 1, 2)", repr(text)))
    try:
        upper = tuple(int(field) for field in fields)
    except ValueError:
        raise OptionValueError(expected("integer thresholds 'a,b,c'", repr(text))) from None
    if upper[0] < 0 or not (upper[0] < upper[1] < upper[2]):
        raise OptionValueError(expected("thresholds 'a,b,c' with 0 <= a < b < c", repr(text)))
    return GradingCriterion(f"thresholds {upper[0]},{upper[1]},{upper[2]}", upper)


def resolve_criterion(name: str | None, thresholds: str | None) -> GradingCriterion:
    """The criterion named (``hayashi`` when neither is given) or given by thresholds ``"a,b,c"``.

    Giving both is ambiguous and refused. Thresholds that leave grades beyond the count head's
    last bin (65) are accepted with a one-line warning on stderr.
    """
    if thresholds is not None:
        if name is not None:
            raise OptionValueError(expected("either a criterion name or thresholds", f"both '{name}' and '{thresholds}'"))
        criterion = parse_thresholds(thresholds)
        unreachable = unreachable_grades(criterion)
        if unreachable:
            listed = f"grade {unreachable[0]} needs" if len(unreachable) == 1 else f"grades {', '.join(map(str, unreachable))} need"
            console.warn(f"with thresholds {thresholds.strip()} {listed} more than {N_COUNT_BINS} lesions: "
                         f"the count head (counts 1..{N_COUNT_BINS}) can never give {'it' if len(unreachable) == 1 else 'them'}")
        return criterion
    if name is None:
        return HAYASHI
    criterion = CRITERIA.get(str(name).strip().lower())
    if criterion is None:
        raise OptionValueError(expected(f"a criterion among {', '.join(CRITERIA)}", repr(name)))
    return criterion


def unreachable_grades(criterion: GradingCriterion) -> tuple[int, ...]:
    """Grades that no count of the count head (1..65) falls into under ``criterion``."""
    lowest = (0, *(upper + 1 for upper in criterion.upper))  # lowest count of each grade
    return tuple(grade for grade, count in enumerate(lowest) if count > N_COUNT_BINS)


def grades_of_counts(counts: np.ndarray, criterion: GradingCriterion = HAYASHI) -> np.ndarray:
    """Grade of each lesion count.

    Parameters
    ----------
    counts : ndarray of int or float, any shape, values >= 0
        Fractional counts (an expected count) are graded as they are: 5.4 is above 5.

    Returns
    -------
    grades : ndarray of int64, same shape, values 0..3
    """
    counts = np.asarray(counts)
    if counts.size and not np.all(counts >= 0):
        raise InputError(expected("lesion counts >= 0", f"minimum {np.nanmin(counts)}"))
    # side="left": a count equal to an upper bound belongs to the lower grade
    return np.searchsorted(np.asarray(criterion.upper), counts, side="left").astype(np.int64)


#: Where the answered lesion count comes from (the weights' ``output.count_from``)
COUNT_RULES = ("ldl", "detections", "mean")
#: Where the answered grade comes from (``output.grade_from``): the grade head, or the criterion applied to the count
GRADE_RULES = ("grade_head", "count")


def check_answer_rules(count_from: str, grade_from: str) -> None:
    """Raise InputError unless ``count_from`` is one of :data:`COUNT_RULES` and ``grade_from`` one of :data:`GRADE_RULES`."""
    if count_from not in COUNT_RULES or grade_from not in GRADE_RULES:
        raise InputError(expected(f"count_from {'|'.join(COUNT_RULES)} and grade_from {'|'.join(GRADE_RULES)}", f"{count_from!r} and {grade_from!r}"))


def answer_counts(ldl_counts: np.ndarray, detected: np.ndarray | None, rule: str) -> np.ndarray:
    """The lesion count a network answers with, from its two estimates.

    ``ldl``: the count head's answer; ``detections``: the number of lesions the detector found;
    ``mean``: their mean, halves rounded up. The two estimates err differently (the count head
    under-counts crowded faces more than the detector, which misses faint lesions), so their mean
    is closer than either (cross-validated count MAE in the lesion card). Without a detector
    (``detected`` None) every rule answers with the count head.

    Parameters
    ----------
    ldl_counts : (N,) ndarray of int
    detected : (N,) ndarray of int, or None
    rule : one of :data:`COUNT_RULES`

    Returns
    -------
    counts : (N,) ndarray of int64
    """
    if rule not in COUNT_RULES:
        raise InputError(expected(f"a count rule in {', '.join(COUNT_RULES)}", repr(rule)))
    ldl_counts = _lesion_counts(ldl_counts, "count-head counts")
    if detected is None or rule == "ldl":
        return ldl_counts
    detected = _lesion_counts(detected, "detected counts")
    if detected.shape != ldl_counts.shape:
        raise InputError(expected(f"{len(ldl_counts)} detected counts (one per photo)", len(detected)))
    if rule == "detections":
        return detected
    return (ldl_counts + detected + 1) // 2


def _lesion_counts(counts, name: str) -> np.ndarray:
    array = np.asarray(counts)
    if array.ndim != 1 or (array.size and (array.dtype.kind not in "iu" or array.min() < 0)):
        raise InputError(expected(f"{name} as one non-negative integer per photo", f"{array.dtype} of shape {array.shape}"))
    return array.astype(np.int64)


def grade_of_count(count: int, criterion: GradingCriterion = HAYASHI) -> int:
    """Grade 0..3 of one lesion count under ``criterion``."""
    return int(grades_of_counts(np.asarray(count), criterion))


def count_to_bin(count: int) -> int:
    """Count bin of a lesion count: ``count - 1``, counts outside 1..65 clipped into the end bins."""
    return int(np.clip(int(count), 1, N_COUNT_BINS)) - 1


def bin_to_count(index: int) -> int:
    """Lesion count of a count bin 0..64: ``index + 1``."""
    index = int(index)
    if not 0 <= index < N_COUNT_BINS:
        raise InputError(expected(f"a count bin in 0..{N_COUNT_BINS - 1}", index))
    return index + 1


def gen_label_distribution(label: int, n_labels: int, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """The report's ``genLD``: a Gaussian over the label set ``0..n_labels-1`` centred on ``label``.

    ``p_k = exp(-(k - label)^2 / (2 sigma^2)) / sum_j exp(-(j - label)^2 / (2 sigma^2))``; the
    Gaussian's constant factor cancels in the normalisation, and the mass that would fall outside
    the label set is redistributed by it.

    Returns
    -------
    distribution : (n_labels,) ndarray of float32, sums to 1
    """
    return gen_label_distributions(np.asarray([label]), n_labels, sigma=sigma)[0]


def gen_label_distributions(labels: np.ndarray, n_labels: int, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """``gen_label_distribution`` for a batch.

    Parameters
    ----------
    labels : (N,) ndarray of int, values in 0..n_labels-1

    Returns
    -------
    distributions : (N, n_labels) ndarray of float32, rows sum to 1
    """
    n_labels = int(n_labels)
    if n_labels < 1:
        raise InputError(expected("at least one label", n_labels))
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(expected("sigma > 0", sigma))
    labels = np.asarray(labels).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
        raise InputError(expected(f"labels in 0..{n_labels - 1}", f"{labels.min()}..{labels.max()}"))
    offsets = np.arange(n_labels, dtype=np.float64)[None, :] - labels.astype(np.float64)[:, None]
    density = np.exp(-(offsets**2) / (2.0 * float(sigma) ** 2))
    return (density / density.sum(axis=1, keepdims=True)).astype(np.float32)


def count_distributions(counts: np.ndarray, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Training targets of the count head: ``genLD`` over the 65 count bins at each count's bin.

    Parameters
    ----------
    counts : (N,) ndarray of int (lesion counts; outside 1..65 clipped)

    Returns
    -------
    distributions : (N, 65) ndarray of float32
    """
    bins = np.clip(np.asarray(counts).reshape(-1).astype(np.int64), 1, N_COUNT_BINS) - 1
    return gen_label_distributions(bins, N_COUNT_BINS, sigma=sigma)


def cou2cls_matrix(criterion: GradingCriterion = HAYASHI) -> np.ndarray:
    """Membership of count bins in grades: row i (count i + 1) has a 1 in its grade's column.

    Returns
    -------
    matrix : (65, 4) ndarray of float32, every row sums to 1
    """
    grades = grades_of_counts(np.arange(1, N_COUNT_BINS + 1), criterion)
    matrix = np.zeros((N_COUNT_BINS, N_GRADES), dtype=np.float32)
    matrix[np.arange(N_COUNT_BINS), grades] = 1.0
    return matrix


def count_to_grade_distribution(count_probs: np.ndarray, criterion: GradingCriterion = HAYASHI) -> np.ndarray:
    """The report's cou2cls: the grade distribution implied by a count distribution.

    Parameters
    ----------
    count_probs : (..., 65) ndarray of float

    Returns
    -------
    grade_probs : (..., 4) ndarray of float (float32 input stays float32, else float64)
        Sum of the count bins of each grade.
    """
    count_probs = np.asarray(count_probs)
    if count_probs.ndim < 1 or count_probs.shape[-1] != N_COUNT_BINS:
        raise InputError(expected(f"count distributions of shape (..., {N_COUNT_BINS})", f"shape {count_probs.shape}"))
    dtype = count_probs.dtype if count_probs.dtype == np.float32 else np.float64
    return count_probs.astype(dtype, copy=False) @ cou2cls_matrix(criterion).astype(dtype)
