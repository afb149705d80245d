"""Grading photos: image files -> lesion count, severity grade and probabilities per image.

Per image (one record)::

    file                 the path as given (or as found in a folder / glob)
    count                predicted lesion count: the most probable count bin + 1 (argmax of the
                         count distribution, as the LDL reference code counts; not its mean)
    grade, grade_name    argmax of the grade head (0..3, mild / moderate / severe / very severe)
    p_mild ... p_very_severe   the grade head's probabilities
    count_grade, count_grade_name   the criterion (Hayashi by default) applied to ``count``
    cou2cls_grade        argmax of the count distribution summed per grade under the criterion
                         (the report's cou2cls); equals ``count_grade`` unless the count
                         distribution is spread across a grade boundary

An unreadable image is reported on stderr and skipped; the batch goes on and the caller learns
about it from the outcome's ``failures``; stderr ends with "k of N images failed" (for more than
one image), under the common batch policy (:mod:`medimg.common.batch`). The network is loaded once per batch, and only
after the first image has been read, so a bad first file fails before a slow model load.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from medimg.acne.labels import GRADE_NAMES, HAYASHI, GradingCriterion, count_to_grade_distribution, grades_of_counts
from medimg.acne.inference import InferenceOptions, acne_network, input_preprocessing, network_input, predict_probabilities
from medimg.common import console
from medimg.common.batch import BatchOutcome, iter_batch
from medimg.common.clock import StageClock
from medimg.common.errors import InputError, expected
from medimg.common.images import read_image
from medimg.common.report import RunReport

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
PROBABILITY_COLUMNS = tuple(f"p_{name.replace(' ', '_')}" for name in GRADE_NAMES)
RECORD_COLUMNS = ("file", "count", "grade", "grade_name", *PROBABILITY_COLUMNS, "count_grade", "count_grade_name", "cou2cls_grade")
_GLOB_CHARACTERS = frozenset("*?[")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _images_in_folder(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if _is_image(path))


def expand_inputs(items: Iterable[Path | str]) -> list[Path]:
    """Image paths from files, folders (searched recursively) and glob patterns, in the given order.

    A file is kept whatever its suffix (reading it decides); a folder contributes its files with
    an image suffix (.jpg .jpeg .png .tif .tiff .bmp, any case), sorted; a pattern its matches.
    A path that does not exist is kept too, so that the batch reports it and goes on. Duplicates
    are dropped.

    Raises
    ------
    InputError
        No items, or a folder or pattern that yields no image.
    """
    paths: list[Path] = []
    items = list(items)
    if not items:
        raise InputError(expected("at least one image, folder or glob pattern", "none"))
    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = _images_in_folder(path)
            if not found:
                raise InputError(expected(f"images ({' '.join(IMAGE_SUFFIXES)}) in folder '{path}'", "none"))
        elif not path.exists() and _GLOB_CHARACTERS & set(text):
            matches = [Path(match) for match in sorted(glob.glob(text, recursive=True))]
            found = [image for match in matches for image in (_images_in_folder(match) if match.is_dir() else [match] if _is_image(match) else [])]
            if not found:
                raise InputError(expected(f"images matching '{text}'", "none"))
        else:
            found = [path]
        paths.extend(found)
    return list(dict.fromkeys(paths))


def grade_records(
    files: Sequence[Path | str],
    count_probs: np.ndarray,
    grade_probs: np.ndarray,
    *,
    criterion: GradingCriterion = HAYASHI,
) -> list[dict]:
    """Records (see module docstring) from the network's two distributions.

    Parameters
    ----------
    files : sequence of N paths
    count_probs : (N, 65) ndarray of float
    grade_probs : (N, 4) ndarray of float
    """
    count_probs = np.asarray(count_probs, dtype=np.float64)
    grade_probs = np.asarray(grade_probs, dtype=np.float64)
    n = len(files)
    if count_probs.shape[:1] != (n,) or grade_probs.shape != (n, len(GRADE_NAMES)):
        raise InputError(expected(f"({n}, 65) count and ({n}, 4) grade probabilities", f"shapes {count_probs.shape} and {grade_probs.shape}"))
    counts = count_probs.argmax(axis=1) + 1
    grades = grade_probs.argmax(axis=1)
    count_grades = grades_of_counts(counts, criterion)
    cou2cls_grades = count_to_grade_distribution(count_probs, criterion).argmax(axis=1)
    records = []
    for i, path in enumerate(files):
        record = {"file": str(path), "count": int(counts[i]), "grade": int(grades[i]), "grade_name": GRADE_NAMES[grades[i]]}
        record.update({column: float(p) for column, p in zip(PROBABILITY_COLUMNS, grade_probs[i])})
        record.update(count_grade=int(count_grades[i]), count_grade_name=GRADE_NAMES[count_grades[i]], cou2cls_grade=int(cou2cls_grades[i]))
        records.append(record)
    return records


def grade_images(
    paths: Sequence[Path | str],
    *,
    predictor,
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
    clock: StageClock | None = None,
) -> BatchOutcome[dict]:
    """Grade photos in network batches of ``batch_size``; unreadable files are reported and skipped
    (:func:`medimg.common.batch.iter_batch`), so memory holds one batch of photos at a time.

    Parameters
    ----------
    paths : sequence of image paths
    predictor : callable
        ``images (B, 3, S, S) float32 -> (count_logits (B, 65), grade_logits (B, 4))``; a
        :class:`~medimg.common.predictor.LazyModel` loads its network only when the first image
        has been read.
    criterion : GradingCriterion
        Grades the predicted count (``count_grade``, ``cou2cls_grade``); the grade head does
        not depend on it.

    Returns
    -------
    BatchOutcome
        ``results``: one record per readable image (module docstring), in input order.
    """
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    clock = clock or StageClock()
    outcome: BatchOutcome[dict] = BatchOutcome()
    pending_files: list[Path] = []
    pending_images: list[np.ndarray] = []
    preprocessing: dict | None = None

    def read(path: Path) -> np.ndarray:
        nonlocal preprocessing
        with clock.stage("read"):
            photo = read_image(path)  # read before the network loads: a bad first file fails fast
        if preprocessing is None:
            with clock.stage("load_model"):
                preprocessing = input_preprocessing(predictor)
        with clock.stage("preprocess"):
            return network_input(photo, preprocessing)

    def flush() -> None:
        with clock.stage("infer"):
            count_probs, grade_probs = predict_probabilities(np.stack(pending_images), predictor)
        outcome.results.extend(grade_records(pending_files, count_probs, grade_probs, criterion=criterion))
        pending_files.clear()
        pending_images.clear()

    for path, image in iter_batch([Path(p) for p in paths], read, outcome, progress=lambda items: console.track(items, description="grade"),
                                  noun="images"):
        pending_files.append(path)
        pending_images.append(image)
        if len(pending_images) == batch_size:
            flush()
    if pending_images:
        flush()
    return outcome


def grade_files(
    items: Iterable[Path | str],
    *,
    options: InferenceOptions = InferenceOptions(),
    criterion: GradingCriterion = HAYASHI,
    report_path: Path | None = None,
) -> BatchOutcome[dict]:
    """``medimg acne grade``: expand files / folders / globs, load the network once, grade every
    image; with ``report_path``, also write the run report (JSON) there."""
    network = acne_network(options)  # a typo in --model fails now, not after the first image
    items = [str(item) for item in items]
    paths = expand_inputs(items)
    clock = StageClock()
    outcome = grade_images(paths, predictor=network, criterion=criterion, batch_size=options.batch_size, clock=clock)
    if outcome.results:
        console.info(f"Graded {len(outcome.results)} image(s) with weights {network.source} on {network.device}")
    outcome.report_failures()
    if report_path is not None:
        report = grading_report(outcome, items, clock=clock, criterion=criterion, predictor=network)
        report.options = {"model": options.model, "weights": str(options.weights) if options.weights else None,
                          "device": options.device, "batch_size": options.batch_size, "criterion": criterion.name}
        report.write_json(report_path, inputs=paths)
    return outcome


def grading_report(outcome: BatchOutcome[dict], items: Sequence[str], *, clock: StageClock, criterion: GradingCriterion,
                   predictor=None) -> RunReport:
    """The run report of a grading batch: how many photos per grade, the mean count, the failures."""
    records = outcome.results
    report = RunReport(
        command="acne grade",
        input=" ".join(items),
        results={
            "images": outcome.total,
            "graded": len(records),
            "grade_counts": {name: sum(r["grade"] == g for r in records) for g, name in enumerate(GRADE_NAMES)},
            "mean_count": float(np.mean([r["count"] for r in records])) if records else None,
            "criterion": criterion.describe(),
            "failures": [{"file": failure.item, "error": failure.message} for failure in outcome.failures],
        },
        seconds_per_stage=clock.seconds,
    )
    if predictor is not None and records:
        report.use_model(predictor)
    return report
