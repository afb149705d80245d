"""Confusion-based metrics shared by the three pipelines.

Conventions for empty denominators: a ratio whose denominator is zero is ``nan``, except IoU
and Dice of two empty masks, which agree perfectly and score 1.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medimg.common.errors import InputError, expected


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


@dataclass(frozen=True)
class ConfusionCounts:
    """Binary confusion counts and the metrics derived from them."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_masks(cls, predicted: np.ndarray, truth: np.ndarray) -> "ConfusionCounts":
        """Count agreement of two boolean masks of the same shape (any dimension)."""
        predicted = np.asarray(predicted, dtype=bool)
        truth = np.asarray(truth, dtype=bool)
        if predicted.shape != truth.shape:
            raise InputError(expected(f"masks of the same shape {truth.shape}", f"shape {predicted.shape}"))
        tp = int(np.count_nonzero(predicted & truth))
        fp = int(np.count_nonzero(predicted)) - tp
        fn = int(np.count_nonzero(truth)) - tp
        tn = int(truth.size) - tp - fp - fn
        return cls(tp=tp, fp=fp, fn=fn, tn=tn)

    def __add__(self, other: "ConfusionCounts") -> "ConfusionCounts":
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Also called sensitivity (SE)."""
        return _ratio(self.tp, self.tp + self.fn)

    sensitivity = recall

    @property
    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def iou(self) -> float:
        union = self.tp + self.fp + self.fn
        return _ratio(self.tp, union) if union else 1.0

    @property
    def dice(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return _ratio(2 * self.tp, denominator) if denominator else 1.0

    @property
    def youden(self) -> float:
        """Youden index YI = sensitivity + specificity - 1."""
        return self.recall + self.specificity - 1.0

    def summary(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "specificity": self.specificity,
            "iou": self.iou,
            "dice": self.dice,
        }


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``(K, K)`` int64 matrix, rows = true class, columns = predicted class."""
    truth = np.asarray(truth, dtype=np.int64).ravel()
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    if truth.shape != predicted.shape:
        raise InputError(expected(f"{truth.size} predictions", predicted.size))
    for name, labels in (("true", truth), ("predicted", predicted)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise InputError(expected(f"{name} labels in 0..{n_classes - 1}", f"{labels.min()}..{labels.max()}"))
    return np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def one_vs_rest(matrix: np.ndarray) -> list[ConfusionCounts]:
    """Per-class binary counts of a multi-class confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.int64)
    total = int(matrix.sum())
    counts = []
    for k in range(matrix.shape[0]):
        tp = int(matrix[k, k])
        fp = int(matrix[:, k].sum()) - tp
        fn = int(matrix[k, :].sum()) - tp
        counts.append(ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=total - tp - fp - fn))
    return counts
