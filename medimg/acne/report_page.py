"""``report.html`` of ``acne grade``: every photo as a card (its lesion overlay, grade and count),
the tally of grades, and the photos that failed, in one self-contained page
(:mod:`medimg.common.html_report`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from medimg.acne.labels import GRADE_NAMES
from medimg.common.errors import InputError, MedimgError, expected
from medimg.common.html_report import MISSING, Card, FailureLike, Page, failure_pairs, format_value

NOT_SKIN_FLAG = "not a skin photo?"
MODEL_FIELDS = ("arch", "weights", "device", "criterion", "medimg_version")


def _grade_line(record: Mapping) -> str:
    name = record.get("grade_name", MISSING)
    probability = record.get(f"p_{str(name).replace(' ', '_')}")
    return f"{name}" + (f" (p = {probability:.2f})" if isinstance(probability, float) else "")


def _count_line(record: Mapping) -> str:
    line = f"count {format_value(record.get('count'))}"
    by_count = record.get("count_grade_name")
    if by_count is not None and by_count != record.get("grade_name"):
        line += f"; {by_count} by count"
    return line


def _lesions_line(record: Mapping) -> str:
    lesions = record.get("lesions")
    return "lesions detected: " + ("n/a (no detector)" if lesions is None else format_value(lesions))


def _picture(record: Mapping, overlays: Mapping[str, Path]) -> tuple[object, str | None]:
    """The overlay when there is one; else the photo itself (a model without a detector draws
    none), read here so that only one full-size photo is in memory at a time."""
    from medimg.common.images import read_image

    file = str(record.get("file", ""))
    if file in overlays:
        return Path(overlays[file]), None
    try:
        return read_image(file), "photo (no lesion overlay)"
    except MedimgError:
        return None, None  # moved or unreadable since grading: the card says "no image"


def _cards(records: Sequence[Mapping], overlays: Mapping[str, Path]) -> Iterator[Card]:
    for record in records:
        file = str(record.get("file", "?"))
        image, remark = _picture(record, overlays)
        lines = [Path(file).name, _grade_line(record), _count_line(record), _lesions_line(record)]
        if remark:
            lines.append(remark)
        flagged = record.get("in_domain") is False
        yield Card(image, lines, flag=NOT_SKIN_FLAG if flagged else None, title=file)


def _tally(records: Sequence[Mapping]) -> list[dict]:
    rows = []
    for grade, name in enumerate(GRADE_NAMES):
        photos = sum(record.get("grade") == grade for record in records)
        rows.append({"grade": f"{grade} {name}", "photos": photos,
                     "share": f"{100.0 * photos / len(records):.0f}%" if records else MISSING})
    return rows


def grading_page(records: Sequence[Mapping[str, object]], *, overlays: Mapping[str | Path, Path | str],
                 report: Mapping[str, object] | None, failures: Sequence[FailureLike]) -> str:
    """The page of one ``acne grade`` run.

    Parameters
    ----------
    records : one per graded photo (:func:`medimg.acne.pipeline.grade_records`: ``file``,
        ``count``, ``grade``, ``grade_name``, ``p_<grade>``, ``count_grade_name``, ``lesions``,
        ``in_domain``, ...), in the order to show
    overlays : each photo's lesion overlay (``--overlay``), keyed by its record's ``file``; a
        photo without one is shown itself (downscaled)
    report : the grading report (``grading_report(...).to_dict()``) for the model, the
        criterion and the time per stage, or None
    failures : (file, error message) of each photo that could not be graded (or the batch's
        :class:`~medimg.common.batch.Failure` objects)

    Returns
    -------
    str
        The whole HTML document (write it with :func:`medimg.common.html_report.write_html`).
    """
    if report is not None and not isinstance(report, Mapping):
        raise InputError(expected("the grading report as a mapping or None", type(report).__name__))
    if not isinstance(overlays, Mapping):
        raise InputError(expected("the overlays as a mapping of photo file to overlay", type(overlays).__name__))
    records = list(records)
    failures = failure_pairs(failures)
    overlays = {str(file): Path(overlay) for file, overlay in overlays.items()}
    report = report or {}
    photos = len(records) + len(failures)
    page = Page(f"Acne grading: {len(records)} of {photos} photo{'s' if photos != 1 else ''} graded",
                subtitle=f"{report.get('command', 'acne grade')} \u00b7 medimg {report.get('medimg_version', '?')}")
    page.notes(report.get("notes") or [])
    if failures:
        page.failures(failures)

    page.heading("Grades")
    page.table(_tally(records), columns=["grade", "photos", "share"])
    counts = [record["count"] for record in records if isinstance(record.get("count"), (int, float))]
    not_skin = sum(record.get("in_domain") is False for record in records)
    page.key_values({
        "mean lesion count": sum(counts) / len(counts) if counts else None,
        f"flagged '{NOT_SKIN_FLAG}'": not_skin,
    })

    page.heading("Photos")
    page.grid(_cards(records, overlays))

    page.run_details(report, model_fields=MODEL_FIELDS)
    if not failures:
        page.heading("Failures").failures(())
    return page.render()
