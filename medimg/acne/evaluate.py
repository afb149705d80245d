"""Evaluation on an ACNE04 fold: the report's grading and counting table for one test split.

Truth is the split file's grade column (grading) and count column (counting). Predictions are
made as ``medimg acne grade`` makes them: the grade head's argmax, the count as the most probable
count bin + 1, and the count-derived grade as the criterion applied to that count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.acne.dataset import image_path, load_split, warn_grade_disagreements
from medimg.acne.labels import HAYASHI, GradingCriterion, grades_of_counts
from medimg.common import console
from medimg.common.errors import InputError, expected


def predict_split(
    data_dir: Path | str,
    *,
    fold: int,
    predictor,
    part: str = "test",
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """Run ``predictor`` over every image of a split.

    Returns
    -------
    dict with
        ``true_grades``, ``true_counts`` : (N,) ndarray of int64, from the split file
        ``count_probs`` : (N, 65) ndarray of float32
        ``grade_probs`` : (N, 4) ndarray of float32
    """
    from medimg.acne.inference import input_preprocessing, load_input, predict_probabilities

    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    entries = load_split(data_dir, fold, part)
    preprocessing = input_preprocessing(predictor)
    count_parts, grade_parts = [], []
    starts = range(0, len(entries), batch_size)
    for start in console.track(starts, description=f"evaluate fold {fold}"):
        # an unreadable image stops the evaluation: silently skipping it would bias every metric
        images = np.stack([load_input(image_path(data_dir, entry), preprocessing) for entry in entries[start : start + batch_size]])
        count_probs, grade_probs = predict_probabilities(images, predictor)
        count_parts.append(np.asarray(count_probs, dtype=np.float32))
        grade_parts.append(np.asarray(grade_probs, dtype=np.float32))
    return {
        "true_grades": np.array([entry.grade for entry in entries], dtype=np.int64),
        "true_counts": np.array([entry.count for entry in entries], dtype=np.int64),
        "count_probs": np.concatenate(count_parts),
        "grade_probs": np.concatenate(grade_parts),
    }


def evaluate(
    data_dir: Path | str,
    *,
    fold: int,
    predictor,
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
) -> dict:
    """The report's table on ``NNEW_test_<fold>.txt`` (see ``scores.evaluation_report``).

    Parameters
    ----------
    data_dir : path of an ACNE04-style folder
    fold : int
    predictor : callable
        ``images (B, 3, 224, 224) float32 -> (count_logits (B, 65), grade_logits (B, 4))``
        (a :class:`~medimg.common.predictor.LazyModel` from :func:`~medimg.acne.inference.acne_network`).
    criterion : GradingCriterion
        Grades the predicted counts (the count-derived grade).

    Returns
    -------
    report : dict
        ``scores.evaluation_report``'s dict (with ``n_images``) plus ``fold`` and ``criterion``.
        Lines whose grade column differs from ``criterion(count)`` are counted and said on stderr.
    """
    from medimg.acne.scores import evaluation_report

    predicted = predict_split(data_dir, fold=fold, predictor=predictor, batch_size=batch_size)
    warn_grade_disagreements(predicted["true_grades"], predicted["true_counts"], criterion, consequence=(
        "the grade head is scored against the column (a grade head trained with --grade-target cou2cls, the default, "
        "learnt the count's grade instead) and the count-derived grade against it too"))
    counts = predicted["count_probs"].argmax(axis=1) + 1
    report = evaluation_report(
        true_grades=predicted["true_grades"],
        grade_head=predicted["grade_probs"].argmax(axis=1),
        count_grade=grades_of_counts(counts, criterion),
        true_counts=predicted["true_counts"],
        predicted_counts=counts,
    )
    return {"fold": fold, "criterion": criterion.name, **report}


def evaluate_fold(
    data_dir: Path | str,
    *,
    fold: int,
    model: str | None = None,
    weights: Path | None = None,
    device: str = "auto",
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
) -> dict:
    """``medimg acne evaluate``: load the network once and :func:`evaluate` it on the fold."""
    from medimg.acne.inference import InferenceOptions, acne_network

    network = acne_network(InferenceOptions(model=model, weights=weights, device=device, batch_size=batch_size))
    load_split(data_dir, fold, "test")  # a wrong folder or fold fails before the model loads
    network.load()
    report = evaluate(data_dir, fold=fold, predictor=network, criterion=criterion, batch_size=batch_size)
    report["weights"] = network.source
    return report
