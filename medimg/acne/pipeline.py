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
about it from :attr:`GradingOutcome.failures`; ``grade_files`` ends stderr with
"k of N images could not be read" (for more than one image). The network is loaded once per batch, and only
after the first image has been read, so a bad first file fails before a slow model load.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medimg.acne.labels import GRADE_NAMES, HAYASHI, GradingCriterion, count_to_grade_distribution, grades_of_counts
from medimg.common import console
from medimg.common.errors import InputError, MedimgError, expected
from medimg.common.images import read_image
from medimg.common.lazy_predictor import LazyPredictor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
PROBABILITY_COLUMNS = tuple(f"p_{name.replace(' ', '_')}" for name in GRADE_NAMES)
RECORD_COLUMNS = ("file", "count", "grade", "grade_name", *PROBABILITY_COLUMNS, "count_grade", "count_grade_name", "cou2cls_grade")
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class InferenceOptions:
    model: str = "fusion"
    weights: Path | None = None
    device: str = "auto"
    batch_size: int = 8


@dataclass
class GradingOutcome:
    records: list[dict] = field(default_factory=list)  # one per readable image, in input order
    failures: list[tuple[Path, str]] = field(default_factory=list)  # (image, one-line reason)


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


def _network_predictor(options: InferenceOptions):
    from medimg.acne.predictor import load_network, network_predictor
    from medimg.common.device import resolve_device

    device = resolve_device(options.device)
    network, source = load_network(options.model, weights=options.weights)
    return network_predictor(network, device, batch_size=options.batch_size), source, str(device)


class LazyNetwork(LazyPredictor):
    """The network of ``options``, loaded on first use and then reused for every image."""

    def __init__(self, options: InferenceOptions) -> None:
        self.options = options
        super().__init__(lambda: _network_predictor(options))


def load_input(path: Path) -> np.ndarray:
    """A photo as the network sees it.

    Returns
    -------
    image : (3, 224, 224) ndarray of float32
        RGB after EXIF orientation and mode conversion, resized and normalised with ACNE04's
        mean and std (``transforms.test_transform``).
    """
    from medimg.acne.transforms import test_transform

    return test_transform(read_image(path))


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
) -> GradingOutcome:
    """Grade photos in batches of ``batch_size``; unreadable files are reported and skipped.

    Parameters
    ----------
    paths : sequence of image paths
    predictor : callable
        ``images (B, 3, 224, 224) float32 -> (count_probs (B, 65), grade_probs (B, 4))``;
        a :class:`LazyNetwork` loads its network only when the first image has been read.
    criterion : GradingCriterion
        Grades the predicted count (``count_grade``, ``cou2cls_grade``); the grade head does
        not depend on it.
    """
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    outcome = GradingOutcome()
    pending_files: list[Path] = []
    pending_images: list[np.ndarray] = []

    def flush() -> None:
        count_probs, grade_probs = predictor(np.stack(pending_images))
        outcome.records.extend(grade_records(pending_files, count_probs, grade_probs, criterion=criterion))
        pending_files.clear()
        pending_images.clear()

    for path in console.track(list(paths), description="grade"):
        try:
            image = load_input(Path(path))
        except MedimgError as error:
            console.error_line(f"{path}: {error}")
            outcome.failures.append((Path(path), str(error)))
            continue
        pending_files.append(Path(path))
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
) -> GradingOutcome:
    """``medimg acne grade``: expand files / folders / globs, load the network once, grade every image."""
    from medimg.acne.predictor import check_model_name

    check_model_name(options.model)  # a typo fails now, not after the first image
    paths = expand_inputs(items)
    network = LazyNetwork(options)
    outcome = grade_images(paths, predictor=network, criterion=criterion, batch_size=options.batch_size)
    if outcome.records:
        console.info(f"Graded {len(outcome.records)} image(s) with weights {network.provenance[0]} on {network.provenance[1]}")
    if outcome.failures and len(paths) > 1:
        # the tally ends stderr so that the failures are not lost above a long batch's lines; a lone
        # image's error line already says it all
        console.error_line(f"{len(outcome.failures)} of {len(paths)} images could not be read")
    return outcome
