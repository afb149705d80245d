"""Grading photos: image files -> lesion count, severity grade and probabilities per image.

Per image (one record)::

    file                 the path as given (or as found in a folder / glob)
    count                predicted lesion count, by the weights' answer rule (``output.count_from``
                         below): the LDL networks' most probable count bin + 1 (argmax of the
                         count distribution, as the LDL reference code counts; not its mean); the
                         shipped lesion network's mean of that and the detected count
    grade, grade_name    0..3, mild / moderate / severe / very severe: the argmax of the grade
                         head, or the criterion applied to ``count`` (``output.grade_from``)
    p_mild ... p_very_severe   the grade head's probabilities
    count_grade, count_grade_name   the criterion (Hayashi by default) applied to ``count``
    cou2cls_grade        argmax of the count distribution summed per grade under the criterion
                         (the report's cou2cls); equals ``count_grade`` unless the count
                         distribution is spread across a grade boundary
    ldl_count            the count head's answer (argmax + 1), whatever ``count`` is
    lesions              lesions found by the detector (lesion network only; empty otherwise)
    in_domain            false when the photo is clearly not a skin photo
                         (:mod:`medimg.acne.domain`; a one-line warning says why on stderr)

For the lesion network the weights say where ``count`` and ``grade`` come from
(``output.count_from``: ``ldl``, ``detections`` or ``mean`` of the two,
:func:`medimg.acne.labels.answer_counts`; ``output.grade_from``: ``count`` (the
criterion applied to ``count``) or ``grade_head``); the fusion and its kin always answer with
the LDL heads. ``--overlay DIR`` writes each photo with its detected lesions boxed
(:mod:`medimg.acne.overlay`).

An unreadable image is reported on stderr and skipped; the batch goes on and the caller learns
about it from the outcome's ``failures``; stderr ends with "k of N images failed" (for more than
one image), under the common batch policy (:mod:`medimg.common.batch`). The network is loaded once per batch, and only
after the first image has been read, so a bad first file fails before a slow model load.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from medimg.acne.labels import GRADE_NAMES, HAYASHI, GradingCriterion, answer_counts, check_answer_rules, count_to_grade_distribution, grades_of_counts
from medimg.acne.inference import InferenceOptions, acne_network, input_preprocessing, network_input, predict_photos
from medimg.common import console
from medimg.common.batch import HERE, BatchEngine, BatchOutcome, iter_batch
from medimg.common.clock import StageClock
from medimg.common.errors import InputError, expected
from medimg.common.images import read_image
from medimg.common.report import RunReport

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
PROBABILITY_COLUMNS = tuple(f"p_{name.replace(' ', '_')}" for name in GRADE_NAMES)
RECORD_COLUMNS = ("file", "count", "grade", "grade_name", *PROBABILITY_COLUMNS, "count_grade", "count_grade_name", "cou2cls_grade",
                  "ldl_count", "lesions", "in_domain")
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


REPORT_PAGE = "report.html"


def grade_records(
    files: Sequence[Path | str],
    count_probs: np.ndarray,
    grade_probs: np.ndarray,
    *,
    criterion: GradingCriterion = HAYASHI,
    lesions: Sequence[int | None] | None = None,
    in_domain: Sequence[bool] | None = None,
    count_from: str = "ldl",
    grade_from: str = "grade_head",
) -> list[dict]:
    """Records (see module docstring) from the network's two distributions and, for the lesion
    network, the number of lesions it detected per photo.

    Parameters
    ----------
    files : sequence of N paths
    count_probs : (N, 65) ndarray of float
    grade_probs : (N, 4) ndarray of float
    lesions : N detected counts (``None`` where there is no detector: that photo answers with its
        count head whatever ``count_from`` says)
    in_domain : N flags from :func:`medimg.acne.domain.domain_warning` (default all true)
    count_from : one of :data:`~medimg.acne.labels.COUNT_RULES` -- what ``count`` is
    grade_from : ``"grade_head"`` or ``"count"`` -- what ``grade`` is
    """
    count_probs = np.asarray(count_probs, dtype=np.float64)
    grade_probs = np.asarray(grade_probs, dtype=np.float64)
    n = len(files)
    if count_probs.shape[:1] != (n,) or grade_probs.shape != (n, len(GRADE_NAMES)):
        raise InputError(expected(f"({n}, 65) count and ({n}, 4) grade probabilities", f"shapes {count_probs.shape} and {grade_probs.shape}"))
    check_answer_rules(count_from, grade_from)
    lesions = list(lesions) if lesions is not None else [None] * n
    in_domain = list(in_domain) if in_domain is not None else [True] * n
    ldl_counts = count_probs.argmax(axis=1) + 1
    # photo by photo: a photo without a detector count answers with its count head
    has_detection = np.array([count is not None for count in lesions], dtype=bool)
    found = np.array([0 if count is None else count for count in lesions], dtype=np.int64)
    counts = np.where(has_detection, answer_counts(ldl_counts, found, count_from), ldl_counts)
    count_grades = grades_of_counts(counts, criterion)
    grades = count_grades if grade_from == "count" else grade_probs.argmax(axis=1)
    cou2cls_grades = count_to_grade_distribution(count_probs, criterion).argmax(axis=1)
    records = []
    for i, path in enumerate(files):
        record = {"file": str(path), "count": int(counts[i]), "grade": int(grades[i]), "grade_name": GRADE_NAMES[grades[i]]}
        record.update({column: float(p) for column, p in zip(PROBABILITY_COLUMNS, grade_probs[i])})
        record.update(count_grade=int(count_grades[i]), count_grade_name=GRADE_NAMES[count_grades[i]], cou2cls_grade=int(cou2cls_grades[i]),
                      ldl_count=int(ldl_counts[i]), lesions=None if lesions[i] is None else int(lesions[i]), in_domain=bool(in_domain[i]))
        records.append(record)
    return records


def grade_images(
    paths: Sequence[Path | str],
    *,
    predictor,
    criterion: GradingCriterion = HAYASHI,
    batch_size: int = 8,
    clock: StageClock | None = None,
    overlay_dir: Path | None = None,
    overlay_names: Mapping[Path, str] | None = None,
) -> BatchOutcome[dict]:
    """Grade photos in network batches of ``batch_size``; unreadable files are reported and skipped
    (:func:`medimg.common.batch.iter_batch`), so memory holds one batch of photos at a time.

    Parameters
    ----------
    paths : sequence of image paths
    predictor : callable
        ``images (B, 3, S, S) float32 -> logits`` of the heads its weights name (count and grade;
        heatmap and size for the lesion network); a :class:`~medimg.common.predictor.LazyModel`
        loads its network only when the first image has been read.
    criterion : GradingCriterion
        Grades the predicted count (``count_grade``, ``cou2cls_grade``); the grade head does
        not depend on it.
    overlay_dir : folder for ``<stem>_lesions.png`` per photo (needs a network with a detector)
    overlay_names : each photo's overlay file name, when a caller grades a batch in parts (Dask
        tasks); default: :func:`_overlay_names`, unique within this batch

    Returns
    -------
    BatchOutcome
        ``results``: one record per readable image (module docstring), in input order.
    """
    from medimg.acne.domain import domain_warning
    from medimg.acne.inference import DEFAULT_ARCH, head_names
    from medimg.common.predictor import model_io

    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    clock = clock or StageClock()
    outcome: BatchOutcome[dict] = BatchOutcome()
    # (path, photo or None, photo shape, network input, in domain): the photo is kept only to draw on it
    pending: list[tuple[Path, np.ndarray | None, tuple[int, int], np.ndarray, bool]] = []
    preprocessing: dict | None = None
    output: dict = {}
    if overlay_dir is not None and overlay_names is None:
        overlay_names = _overlay_names(paths)

    def read(path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
        nonlocal preprocessing, output
        with clock.stage("read"):
            photo = read_image(path)  # read before the network loads: a bad first file fails fast
        if preprocessing is None:
            with clock.stage("load_model"):
                preprocessing = input_preprocessing(predictor)
                output = model_io(predictor, DEFAULT_ARCH)[1]
            if overlay_dir is not None and "heatmap" not in head_names(output):
                from medimg.common.errors import ModelError

                raise ModelError(expected("a network with a lesion detector for --overlay (model lesion)", f"{getattr(predictor, 'arch', 'a network')} without one"))
        warning = domain_warning(photo)
        if warning is not None:
            console.warn(f"{path}: {warning}; its grade is unreliable")
        with clock.stage("preprocess"):
            return photo, network_input(photo, preprocessing), warning is None

    def flush() -> None:
        with clock.stage("infer"):
            predictions = predict_photos(np.stack([item[3] for item in pending]), predictor, [item[2] for item in pending])
        records = grade_records(
            [item[0] for item in pending], np.stack([p.count_probs for p in predictions]), np.stack([p.grade_probs for p in predictions]),
            criterion=criterion, lesions=[None if p.detections is None else len(p.detections) for p in predictions],
            in_domain=[item[4] for item in pending], count_from=output.get("count_from", "ldl"), grade_from=output.get("grade_from", "grade_head"),
        )
        if overlay_dir is not None:
            from medimg.acne.overlay import write_overlay

            with clock.stage("overlay"):
                for (path, photo, _, _, _), prediction, record in zip(pending, predictions, records):
                    caption = (f"{record['lesions']} lesions marked; count {record['count']}, {record['grade_name']}"
                               + ("" if record["in_domain"] else " (not a skin photo?)"))
                    write_overlay(Path(overlay_dir) / overlay_names[path], photo, prediction.detections, caption=caption, source=path)
        outcome.results.extend(records)
        pending.clear()

    for path, (photo, image, in_domain) in iter_batch([Path(p) for p in paths], read, outcome,
                                                      progress=lambda items: console.track(items, description="grade"), noun="images"):
        pending.append((path, photo if overlay_dir is not None else None, photo.shape[:2], image, in_domain))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return outcome


def grade_files(
    items: Iterable[Path | str],
    *,
    options: InferenceOptions = InferenceOptions(),
    criterion: GradingCriterion = HAYASHI,
    report_path: Path | None = None,
    overlay_dir: Path | None = None,
    engine: BatchEngine = HERE,
) -> BatchOutcome[dict]:
    """``medimg acne grade``: expand files / folders / globs, load the network once, grade every
    image; with ``report_path``, also write the run report (JSON) there; with ``overlay_dir``,
    each photo with its lesions boxed, and ``report.html`` there: the photo grid with grades,
    counts and lesion marks, the tally, stage times and failures. With a Dask ``engine`` each photo is one task (the network
    loaded once per worker), graded alone rather than in batches of ``options.batch_size``."""
    from medimg.common.errors import OutputError

    network = acne_network(options)  # a typo in --model fails now, not after the first image
    items = [str(item) for item in items]
    paths = expand_inputs(items)
    if overlay_dir is not None:
        from medimg.acne.inference import head_names
        from medimg.common.errors import ModelError

        if "heatmap" not in head_names(network.load().output):  # refuse before any folder is made
            raise ModelError(expected("a network with a lesion detector for --overlay (model lesion)", f"{network.load().arch} without one"))
        try:
            Path(overlay_dir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(expected("a folder for the overlays", f"'{overlay_dir}' ({error.strerror})")) from None
    clock = StageClock()
    names = _overlay_names(paths) if overlay_dir is not None else None
    if engine.uses_dask:
        network.load()  # here too: bad weights fail before the cluster starts, and the report names the model
        outcome = _grade_on_dask(paths, network=network, criterion=criterion, clock=clock, overlay_dir=overlay_dir, overlay_names=names,
                                 engine=engine)
    else:
        outcome = grade_images(paths, predictor=network, criterion=criterion, batch_size=options.batch_size, clock=clock,
                               overlay_dir=overlay_dir, overlay_names=names)
    if outcome.results:
        console.info(f"Graded {len(outcome.results)} image(s) with weights {network.source} on {network.device}")
    outcome.report_failures()
    if report_path is not None or overlay_dir is not None:
        report = grading_report(outcome, items, clock=clock, criterion=criterion, predictor=network)
        report.options = {"model": options.model, "weights": str(options.weights) if options.weights else None,
                          "device": options.device, "batch_size": options.batch_size, "criterion": criterion.name}
        if report_path is not None:
            report.write_json(report_path, inputs=paths)
        if overlay_dir is not None:
            from medimg.acne.report_page import grading_page
            from medimg.common.html_report import write_html

            overlays = {str(path): Path(overlay_dir) / name for path, name in names.items()}
            page = grading_page(outcome.results, overlays=overlays, report=report.to_dict(),
                                failures=[(failure.item, failure.message) for failure in outcome.failures])
            write_html(Path(overlay_dir) / REPORT_PAGE, page, inputs=paths)
    return outcome


def _overlay_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Each photo's overlay file name, unique within the batch (two photos of one name in two folders)."""
    from medimg.acne.overlay import overlay_name

    taken: set[str] = set()
    return {Path(path): overlay_name(Path(path), taken) for path in paths}


def _grade_on_dask(paths: list[Path], *, network, criterion: GradingCriterion, clock: StageClock, overlay_dir: Path | None,
                   overlay_names: Mapping[Path, str] | None, engine: BatchEngine) -> BatchOutcome[dict]:
    """One Dask task per photo, the workers' stage times added to ``clock``."""

    def grade_one(path: Path) -> tuple[dict, dict[str, float]]:
        own_clock = StageClock()
        single = grade_images([path], predictor=network, criterion=criterion, batch_size=1, clock=own_clock,
                              overlay_dir=overlay_dir, overlay_names=overlay_names)
        return single.results[0], own_clock.seconds

    outcome: BatchOutcome[dict] = BatchOutcome()
    for _, (record, seconds) in iter_batch([Path(p) for p in paths], grade_one, outcome, noun="images", engine=engine):
        outcome.results.append(record)
        clock.add(seconds)
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
