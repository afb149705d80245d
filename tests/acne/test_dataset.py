from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from medimg.acne.dataset import (
    N_FOLDS,
    SplitEntry,
    image_path,
    load_split,
    parse_split_file,
    grade_disagreements,
    split_columns,
    split_file_path,
    warn_grade_disagreements,
    write_split_file,
)
from medimg.acne.labels import HAYASHI, REPORT, grades_of_counts, parse_thresholds
from medimg.common.errors import FormatError, InputError

# A real ACNE04 split file (1,165 lines), copied into the repository so that CI always runs its test.
REAL_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "acne04_NNEW_trainval_sample.txt"

# Real lines of ACNE04's NNEW_trainval split (lines 1-3, 9, 54, 67, 440 and two very severe ones).
# levle1_151, levle2_68 and levle3_112 have a file-name prefix that disagrees with the grade column.
REAL_LINES = """\
levle0_38.jpg  0  4
levle0_407.jpg  0  1
levle1_500.jpg  1  6
levle2_28.jpg  2  31
levle1_151.jpg  0  4
levle2_68.jpg  1  17
levle3_112.jpg  2  22
levle3_67.jpg  3  52
levle3_34.jpg  3  65
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def make_dataset(root: Path, text: str = REAL_LINES, *, fold: int = 0, part: str = "trainval") -> list[SplitEntry]:
    root.mkdir(parents=True, exist_ok=True)
    write(root / f"NNEW_{part}_{fold}.txt", text)
    (root / "JPEGImages").mkdir(exist_ok=True)
    entries = parse_split_file(root / f"NNEW_{part}_{fold}.txt")
    for entry in entries:
        (root / "JPEGImages" / entry.filename).write_bytes(b"\xff\xd8\xff\xd9")
    return entries


def test_parse_real_lines(tmp_path):
    entries = parse_split_file(write(tmp_path / "NNEW_trainval_0.txt", REAL_LINES))
    assert len(entries) == 9
    assert entries[0] == SplitEntry("levle0_38.jpg", 0, 4)
    assert entries[3] == SplitEntry("levle2_28.jpg", 2, 31)
    assert [e.count for e in entries] == [4, 1, 6, 31, 4, 17, 22, 52, 65]
    assert [e.grade for e in entries] == [0, 0, 1, 2, 0, 1, 2, 3, 3]


def test_grade_column_wins_over_file_name_prefix(tmp_path):
    entries = {e.filename: e for e in parse_split_file(write(tmp_path / "split.txt", REAL_LINES))}
    assert entries["levle1_151.jpg"].grade == 0
    assert entries["levle2_68.jpg"].grade == 1
    assert entries["levle3_112.jpg"].grade == 2
    # and the grade column of these real lines follows Hayashi, not the prefix
    counts = np.array([e.count for e in entries.values()])
    np.testing.assert_array_equal(grades_of_counts(counts), [e.grade for e in entries.values()])


def test_blank_lines_crlf_tabs_and_bom_are_accepted(tmp_path):
    text = "\ufefflevle0_38.jpg  0  4\r\n\r\n   \n\tlevle1_500.jpg\t1\t6   \r\n\n"
    entries = parse_split_file(write(tmp_path / "split.txt", text))
    assert entries == [SplitEntry("levle0_38.jpg", 0, 4), SplitEntry("levle1_500.jpg", 1, 6)]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("levle0_1.jpg  0", r"line 3: expected 'filename grade count', got 2 fields"),
        ("levle0_1.jpg  0  4  extra", r"line 3: expected 'filename grade count', got 4 fields"),
        ("levle0_1.jpg  zero  4", r"line 3: expected an integer grade, got 'zero'"),
        ("levle0_1.jpg  0  4.5", r"line 3: expected an integer lesion count, got '4.5'"),
        ("levle0_1.jpg  4  4", r"line 3: expected a grade in 0..3, got 4"),
        ("levle0_1.jpg  0  -2", r"line 3: expected a lesion count >= 0, got -2"),
    ],
)
def test_bad_line_gives_its_number(tmp_path, bad_line, message):
    path = write(tmp_path / "NNEW_test_1.txt", f"levle0_38.jpg  0  4\n\n{bad_line}\nlevle1_500.jpg  1  6\n")
    with pytest.raises(FormatError, match="NNEW_test_1.txt " + message):
        parse_split_file(path)


def test_missing_and_empty_split_file(tmp_path):
    with pytest.raises(InputError, match="existing split file"):
        parse_split_file(tmp_path / "nope.txt")
    with pytest.raises(FormatError, match="at least one line"):
        parse_split_file(write(tmp_path / "empty.txt", "\n  \n"))


def test_split_file_path():
    assert N_FOLDS == 5
    assert split_file_path("/data/acne04", 2, "trainval") == Path("/data/acne04/NNEW_trainval_2.txt")
    assert split_file_path(Path("d"), np.int64(4), "test") == Path("d/NNEW_test_4.txt")
    with pytest.raises(InputError, match="split part among trainval, test, got 'train'"):
        split_file_path("d", 0, "train")
    with pytest.raises(InputError, match="fold number >= 0"):
        split_file_path("d", -1, "test")
    with pytest.raises(InputError, match="fold number >= 0"):
        split_file_path("d", 1.5, "test")


def test_load_split_and_image_path(tmp_path):
    root = tmp_path / "acne04"
    make_dataset(root, fold=3, part="test")
    entries = load_split(root, 3, "test")
    assert len(entries) == 9
    assert image_path(root, entries[4]) == root / "JPEGImages" / "levle1_151.jpg"
    assert all(image_path(root, entry).is_file() for entry in entries)


def test_load_split_names_a_missing_image(tmp_path):
    root = tmp_path / "acne04"
    make_dataset(root)
    (root / "JPEGImages" / "levle2_68.jpg").unlink()
    with pytest.raises(InputError, match=r"every image of 'NNEW_trainval_0.txt' .*got 1 missing: levle2_68.jpg"):
        load_split(root, 0, "trainval")


def test_load_split_counts_many_missing_images(tmp_path):
    root = tmp_path / "acne04"
    make_dataset(root)
    for picture in (root / "JPEGImages").iterdir():
        picture.unlink()
    with pytest.raises(InputError, match=r"9 missing: levle0_38.jpg, levle0_407.jpg, .* and 4 more"):
        load_split(root, 0, "trainval")


def test_load_split_missing_split_file_folder_and_images_dir(tmp_path):
    root = tmp_path / "acne04"
    make_dataset(root)
    with pytest.raises(InputError, match=r"split file 'NNEW_test_0.txt' .*got only NNEW_trainval_0.txt"):
        load_split(root, 0, "test")
    with pytest.raises(InputError, match="not a folder"):
        load_split(tmp_path / "absent", 0, "test")
    bare = tmp_path / "bare"
    bare.mkdir()
    write(bare / "NNEW_test_0.txt", REAL_LINES)
    with pytest.raises(InputError, match="image folder 'JPEGImages/'"):
        load_split(bare, 0, "test")


def test_write_split_file_round_trip(tmp_path):
    entries = parse_split_file(write(tmp_path / "source.txt", REAL_LINES))
    target = write_split_file(tmp_path / "out" / "NNEW_test_0.txt", entries)
    assert target == tmp_path / "out" / "NNEW_test_0.txt"
    assert target.read_text() == REAL_LINES  # byte for byte the ACNE04 format
    assert parse_split_file(target) == entries
    assert [p.name for p in target.parent.iterdir()] == ["NNEW_test_0.txt"]  # no temporary left


def test_write_split_file_refuses_bad_entries(tmp_path):
    with pytest.raises(InputError, match="file name without whitespace"):
        write_split_file(tmp_path / "x.txt", [SplitEntry("a b.jpg", 0, 1)])
    with pytest.raises(InputError, match="grade 0..3 and count >= 0"):
        write_split_file(tmp_path / "x.txt", [SplitEntry("a.jpg", 5, 1)])
    assert not (tmp_path / "x.txt").exists()


def test_the_real_acne04_split_file():
    entries = parse_split_file(REAL_SAMPLE)
    assert len(entries) == 1165
    counts = np.array([e.count for e in entries])
    grades = np.array([e.grade for e in entries])
    assert counts.min() == 1 and counts.max() == 65
    assert Counter(grades.tolist()) == {0: 410, 1: 506, 2: 146, 3: 103}
    np.testing.assert_array_equal(grades_of_counts(counts), grades)  # the labels follow Hayashi
    assert grade_disagreements(grades, counts, HAYASHI) == 0
    disagreeing = [e for e in entries if not e.filename.startswith(f"levle{e.grade}_")]
    assert len(disagreeing) == 33
    assert SplitEntry("levle1_151.jpg", 0, 4) in disagreeing


def test_grade_disagreements_are_counted_and_warned_once(capsys):
    entries = [SplitEntry("a.jpg", 0, 5), SplitEntry("b.jpg", 0, 6), SplitEntry("c.jpg", 2, 21), SplitEntry("d.jpg", 2, 51)]
    grades, counts = split_columns(entries)
    assert grades.tolist() == [0, 0, 2, 2] and counts.tolist() == [5, 6, 21, 51]
    assert grade_disagreements(grades, counts, HAYASHI) == 2  # 6 is moderate, 51 very severe
    assert grade_disagreements(grades, counts, REPORT) == 1  # under 19,50,65: 21 is moderate, 51 severe
    assert warn_grade_disagreements(grades, counts, HAYASHI, consequence="so be it") == 2
    assert capsys.readouterr().err.splitlines() == [
        "Warning: 2 of 4 lines have a grade column that differs from hayashi(count): so be it"]
    assert warn_grade_disagreements(grades[:1], counts[:1], HAYASHI, consequence="never said") == 0
    assert capsys.readouterr().err == ""
    warn_grade_disagreements(grades, counts, parse_thresholds("5,20,60"), consequence="x")
    assert "differs from the grade of the count under thresholds 5,20,60: x" in capsys.readouterr().err
    with pytest.raises(InputError, match="as many grades as counts"):
        grade_disagreements(grades, counts[:2])


def test_counts_above_the_last_bin_are_said(tmp_path, capsys):
    from medimg.acne.dataset import parse_split_file

    (tmp_path / "split.txt").write_text("a.jpg 3 70\nb.jpg 0 2\n")
    entries = parse_split_file(tmp_path / "split.txt")
    assert [e.count for e in entries] == [70, 2]
    assert "1 line(s) count more than 65 lesions (e.g. 'a.jpg' 70)" in capsys.readouterr().err
