"""The ACNE04 on-disk layout: ``JPEGImages/`` and split files ``NNEW_{trainval,test}_{k}.txt``.

Each split-file line is ``filename grade count`` separated by whitespace (ACNE04 uses two
spaces). The grade column is the truth: ACNE04 file names start with ``levle<g>_`` and a few of
those prefixes disagree with the grade column, so the name is never parsed for a label.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.acne.labels import N_COUNT_BINS, CRITERIA, HAYASHI, N_GRADES, GradingCriterion, grades_of_counts
from medimg.common import console
from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import write_text_atomic

N_FOLDS = 5
SPLIT_PARTS = ("trainval", "test")
IMAGES_DIR = "JPEGImages"
_MISSING_SHOWN = 5  # missing images named in the error; the rest are counted


@dataclass(frozen=True)
class SplitEntry:
    """One image of a split: its file name in ``JPEGImages/``, grade 0..3 and lesion count."""

    filename: str
    grade: int
    count: int


def _parse_line(fields: list[str], where: str) -> SplitEntry:
    if len(fields) != 3:
        raise FormatError(f"{where}: " + expected("'filename grade count'", f"{len(fields)} fields {fields}"))
    filename, grade_text, count_text = fields
    try:
        grade = int(grade_text)
    except ValueError:
        raise FormatError(f"{where}: " + expected("an integer grade", repr(grade_text))) from None
    try:
        count = int(count_text)
    except ValueError:
        raise FormatError(f"{where}: " + expected("an integer lesion count", repr(count_text))) from None
    if not 0 <= grade < N_GRADES:
        raise FormatError(f"{where}: " + expected(f"a grade in 0..{N_GRADES - 1}", grade))
    if count < 0:
        raise FormatError(f"{where}: " + expected("a lesion count >= 0", count))
    return SplitEntry(filename=filename, grade=grade, count=count)


def parse_split_file(path: Path | str) -> list[SplitEntry]:
    """Read an ACNE04 split file; blank lines are skipped.

    Raises
    ------
    InputError
        The file does not exist.
    FormatError
        A line is not ``filename grade count`` (the message gives its line number), or the file
        holds no entry.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(expected("an existing split file", f"'{path}' which does not exist"))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise FormatError(expected("a text split file", f"'{path.name}' ({error})")) from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            entries.append(_parse_line(fields, f"{path.name} line {number}"))
    if not entries:
        raise FormatError(expected("at least one line 'filename grade count'", f"an empty split file '{path.name}'"))
    above = [entry for entry in entries if entry.count > N_COUNT_BINS]
    if above:
        from medimg.common import console

        console.warn(f"{path.name}: {len(above)} line(s) count more than {N_COUNT_BINS} lesions (e.g. '{above[0].filename}' "
                     f"{above[0].count}); the count head's last bin is {N_COUNT_BINS}: trained as {N_COUNT_BINS}, scored against their own count")
    return entries


def split_file_path(data_dir: Path | str, fold: int, part: str) -> Path:
    """``data_dir/NNEW_{part}_{fold}.txt`` with part ``trainval`` or ``test``."""
    if part not in SPLIT_PARTS:
        raise InputError(expected(f"a split part among {', '.join(SPLIT_PARTS)}", repr(part)))
    try:
        fold_number = operator.index(fold)
    except TypeError:
        fold_number = -1
    if isinstance(fold, bool) or fold_number < 0:
        raise InputError(expected("a fold number >= 0", repr(fold)))
    return Path(data_dir) / f"NNEW_{part}_{fold_number}.txt"


def image_path(data_dir: Path | str, entry: SplitEntry) -> Path:
    """Where the image of ``entry`` lives: ``data_dir/JPEGImages/<filename>``."""
    return Path(data_dir) / IMAGES_DIR / entry.filename


def load_split(data_dir: Path | str, fold: int, part: str) -> list[SplitEntry]:
    """Parse the split file of ``fold`` and ``part`` and check that every image it names exists.

    Raises
    ------
    InputError
        The folder, the split file, ``JPEGImages/`` or an image is missing (the message names
        what is missing and, for a split file, the ones that are there).
    FormatError
        The split file is malformed.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(expected("an ACNE04-style data folder", f"'{data_dir}' which is not a folder"))
    path = split_file_path(data_dir, fold, part)
    if not path.is_file():
        present = sorted(candidate.name for candidate in data_dir.glob("NNEW_*_*.txt"))
        raise InputError(expected(f"split file '{path.name}' in '{data_dir}'", f"only {', '.join(present)}" if present else "no NNEW_*_*.txt file"))
    entries = parse_split_file(path)
    images_dir = data_dir / IMAGES_DIR
    if not images_dir.is_dir():
        raise InputError(expected(f"an image folder '{IMAGES_DIR}/' in '{data_dir}'", "none"))
    missing = [entry.filename for entry in entries if not image_path(data_dir, entry).is_file()]
    if missing:
        shown = ", ".join(missing[:_MISSING_SHOWN]) + (f" and {len(missing) - _MISSING_SHOWN} more" if len(missing) > _MISSING_SHOWN else "")
        raise InputError(expected(f"every image of '{path.name}' in '{images_dir}'", f"{len(missing)} missing: {shown}"))
    return entries


def write_split_file(path: Path | str, entries: Iterable[SplitEntry]) -> Path:
    """Write entries as ACNE04 does, ``"name  grade  count"`` per line, atomically."""
    lines = []
    for entry in entries:
        if not entry.filename or len(entry.filename.split()) != 1 or entry.filename != entry.filename.strip():
            raise InputError(expected("an image file name without whitespace", repr(entry.filename)))
        if not 0 <= int(entry.grade) < N_GRADES or int(entry.count) < 0:
            raise InputError(expected(f"grade 0..{N_GRADES - 1} and count >= 0", f"grade {entry.grade}, count {entry.count} for '{entry.filename}'"))
        lines.append(f"{entry.filename}  {int(entry.grade)}  {int(entry.count)}\n")
    return write_text_atomic(path, "".join(lines))


def grade_disagreements(grades: np.ndarray, counts: np.ndarray, criterion: GradingCriterion = HAYASHI) -> int:
    """How many split lines have a grade column other than ``criterion`` applied to their count column.

    ACNE04's columns follow Hayashi except on a few lines; under another criterion most differ.

    Parameters
    ----------
    grades, counts : (N,) ndarray of int, the split file's grade and count columns
    """
    grades = np.asarray(grades, dtype=np.int64).reshape(-1)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if grades.shape != counts.shape:
        raise InputError(expected("as many grades as counts", f"{grades.size} and {counts.size}"))
    return int(np.count_nonzero(grades != grades_of_counts(counts, criterion)))


def warn_grade_disagreements(grades: np.ndarray, counts: np.ndarray, criterion: GradingCriterion, *, consequence: str) -> int:
    """One stderr warning when some grade columns differ from ``criterion(count)``; returns how many.

    The warning reads "k of N lines have a grade column that differs from hayashi(count): <consequence>".
    """
    disagreeing = grade_disagreements(grades, counts, criterion)
    if disagreeing:
        rule = f"{criterion.name}(count)" if criterion.name in CRITERIA else f"the grade of the count under {criterion.name}"
        console.warn(f"{disagreeing} of {np.asarray(grades).size} lines have a grade column that differs from {rule}: {consequence}")
    return disagreeing


def split_columns(entries: Sequence[SplitEntry]) -> tuple[np.ndarray, np.ndarray]:
    """The grade and count columns of split entries.

    Returns
    -------
    grades, counts : (N,) ndarray of int64
    """
    grades = np.array([entry.grade for entry in entries], dtype=np.int64)
    counts = np.array([entry.count for entry in entries], dtype=np.int64)
    return grades, counts
