"""Evaluation on an ACNE04 fold: the report's grading and counting table for one test split.

Truth is the split file's grade column (grading) and count column (counting). Predictions are
made as ``medimg acne grade`` makes them: the count by the weights' answer rule
(:func:`medimg.acne.labels.answer_counts`: the most probable count bin + 1, the detected count, or
their mean), the count-derived grade as the criterion applied to that count, and the grade as the
grade head's argmax or that count-derived grade (``output.grade_from``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.acne.dataset import image_path, load_split, warn_grade_disagreements
from medimg.acne.labels import HAYASHI, GradingCriterion, answer_counts, grades_of_counts
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
        ``lesions`` : (N,) ndarray of int64, detected lesions (lesion network), or ``None``
    """
    from medimg.acne.inference import input_preprocessing, network_input, predict_photos
    from medimg.common.images import read_image

    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    entries = load_split(data_dir, fold, part)
    preprocessing = input_preprocessing(predictor)
    count_parts, grade_parts, lesions = [], [], []
    starts = range(0, len(entries), batch_size)
    for start in console.track(starts, description=f"evaluate fold {fold}"):
        # an unreadable image stops the evaluation: silently skipping it would bias every metric
        photos = [read_image(image_path(data_dir, entry)) for entry in entries[start : start + batch_size]]
        images = np.stack([network_input(photo, preprocessing) for photo in photos])
        for prediction in predict_photos(images, predictor, [photo.shape[:2] for photo in photos]):
            count_parts.append(prediction.count_probs)
            grade_parts.append(prediction.grade_probs)
            lesions.append(None if prediction.detections is None else len(prediction.detections))
    return {
        "true_grades": np.array([entry.grade for entry in entries], dtype=np.int64),
        "true_counts": np.array([entry.count for entry in entries], dtype=np.int64),
        "count_probs": np.stack(count_parts).astype(np.float32),
        "grade_probs": np.stack(grade_parts).astype(np.float32),
        "lesions": None if not lesions or lesions[0] is None else np.array(lesions, dtype=np.int64),
    }


def evaluate(
    data_dir: Path | str,
    *,
    fold: int,
    predictor,
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
    keep_predictions: bool = False,
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
        ``scores.evaluation_report``'s dict (with ``n_images``) plus ``fold`` and ``criterion``;
        ``ldl_count_mae`` and ``grade_head_acc``; for a network with a detector, ``{detected,mean}_
        {count_mae,count_rmse,grade_acc}`` (the detected count, and the mean of the two counts);
        with ``keep_predictions`` the per-photo lists ``true_grades``, ``predicted_grades``,
        ``true_counts``, ``predicted_counts``, ``ldl_counts``, ``detected_counts`` and
        ``grade_head_grades``. Lines whose grade column differs from ``criterion(count)`` are
        counted and said on stderr.
    """
    from medimg.acne.scores import evaluation_report

    predicted = predict_split(data_dir, fold=fold, predictor=predictor, batch_size=batch_size)
    warn_grade_disagreements(predicted["true_grades"], predicted["true_counts"], criterion, consequence=(
        "the grade head is scored against the column (a grade head trained with --grade-target cou2cls, the default, "
        "learnt the count's grade instead) and the count-derived grade against it too"))
    from medimg.acne.inference import DEFAULT_ARCH
    from medimg.common.predictor import model_io

    output = model_io(predictor, DEFAULT_ARCH)[1]
    ldl_counts = predicted["count_probs"].argmax(axis=1) + 1
    lesions = predicted["lesions"]
    counts = answer_counts(ldl_counts, lesions, output.get("count_from", "ldl"))
    count_grades = grades_of_counts(counts, criterion)
    report = evaluation_report(
        true_grades=predicted["true_grades"],
        grade_head=count_grades if output.get("grade_from") == "count" else predicted["grade_probs"].argmax(axis=1),
        count_grade=count_grades,
        true_counts=predicted["true_counts"],
        predicted_counts=counts,
    )
    grade_head = predicted["grade_probs"].argmax(axis=1)
    extra = {"ldl_count_mae": float(np.abs(ldl_counts - predicted["true_counts"]).mean()),
             "grade_head_acc": float((grade_head == predicted["true_grades"]).mean())}
    if lesions is not None:
        for name, rule in (("detected", "detections"), ("mean", "mean")):
            rule_counts = answer_counts(ldl_counts, lesions, rule)
            extra[f"{name}_count_mae"] = float(np.abs(rule_counts - predicted["true_counts"]).mean())
            extra[f"{name}_count_rmse"] = float(np.sqrt(np.mean((rule_counts - predicted["true_counts"]) ** 2)))
            extra[f"{name}_grade_acc"] = float((grades_of_counts(rule_counts, criterion) == predicted["true_grades"]).mean())
    if keep_predictions:
        final = count_grades if output.get("grade_from") == "count" else grade_head
        extra.update(true_grades=predicted["true_grades"].tolist(), predicted_grades=final.tolist(),
                     true_counts=predicted["true_counts"].tolist(), predicted_counts=np.asarray(counts).tolist(),
                     ldl_counts=ldl_counts.tolist(), detected_counts=None if lesions is None else lesions.tolist(),
                     grade_head_grades=grade_head.tolist())
    return {"fold": fold, "criterion": criterion.name, **report, **extra}


def evaluate_fold(
    data_dir: Path | str,
    *,
    fold: int,
    model: str | None = None,
    weights: Path | None = None,
    device: str = "auto",
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
    keep_predictions: bool = False,
) -> dict:
    """``medimg acne evaluate``: load the network once and :func:`evaluate` it on the fold."""
    from medimg.acne.inference import InferenceOptions, acne_network

    network = acne_network(InferenceOptions(model=model, weights=weights, device=device, batch_size=batch_size))
    load_split(data_dir, fold, "test")  # a wrong folder or fold fails before the model loads
    network.load()
    report = evaluate(data_dir, fold=fold, predictor=network, criterion=criterion, batch_size=batch_size, keep_predictions=keep_predictions)
    report["weights"] = network.source
    return report
