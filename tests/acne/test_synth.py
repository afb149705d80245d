"""Tests of the synthetic acne photos and their ACNE04-layout data set (medimg.acne.synth)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from medimg.acne.dataset import parse_split_file
from medimg.acne.synth import (
    LESION_KINDS,
    assign_folds,
    draw_lesion_counts,
    grade_count_ranges,
    synth_skin_photo,
    synth_skin_scene,
    write_synthetic_dataset,
)
from medimg.common.errors import InputError, OutputError

SPLIT_NAMES = [f"NNEW_{part}_{k}.txt" for k in range(5) for part in ("trainval", "test")]


def hayashi(count: int) -> int:
    return 0 if count <= 5 else 1 if count <= 20 else 2 if count <= 50 else 3


def red_blobs(image: np.ndarray) -> tuple[int, float]:
    """(number of red blobs of >= 3 px, their area fraction).

    Redness R - (G + B) / 2 is compared with its 15 x 15 local mean, so that skin tone and broad
    blotches cancel and only small red spots remain.
    """
    rgb = image.astype(np.float32)
    redness = rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2])
    mask = redness - ndimage.uniform_filter(redness, 15) > 12.0
    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= 3).sum()), float(mask.mean())


# --- single photos ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "shape"), [(64, (64, 64)), ((48, 80), (48, 80))])
def test_photo_shape_and_dtype(size, shape) -> None:
    image = synth_skin_photo(7, rng=np.random.default_rng(0), size=size)
    assert image.shape == (*shape, 3)
    assert image.dtype == np.uint8
    # skin, not a blank or saturated frame
    assert 60 < image.mean() < 230 and image.std() > 3


def test_photo_is_deterministic_and_seed_dependent() -> None:
    a = synth_skin_photo(12, rng=np.random.default_rng(5), size=64)
    b = synth_skin_photo(12, rng=np.random.default_rng(5), size=64)
    c = synth_skin_photo(12, rng=np.random.default_rng(6), size=64)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 2.0


@pytest.mark.parametrize(("n_lesions", "size"), [(0, 64), (1, 64), (33, 128), (65, 64), (65, 256)])
def test_scene_has_exactly_n_lesions_inside_the_frame(n_lesions, size) -> None:
    scene = synth_skin_scene(n_lesions, rng=np.random.default_rng(n_lesions), size=size)
    lesions = scene.lesions
    assert lesions.shape == (n_lesions, 4)
    if n_lesions:
        y, x, radius, kind = lesions.T
        assert np.all((y >= radius) & (y <= size - 1 - radius) & (x >= radius) & (x <= size - 1 - radius))
        assert set(np.unique(kind)) <= {0.0, 1.0, 2.0}


def test_lesions_do_not_overlap_on_a_full_size_photo() -> None:
    for seed in range(3):
        lesions = synth_skin_scene(65, rng=np.random.default_rng(seed), size=256).lesions
        gaps = np.linalg.norm(lesions[:, None, :2] - lesions[None, :, :2], axis=2)
        np.fill_diagonal(gaps, np.inf)
        reach = lesions[:, None, 2] + lesions[None, :, 2]
        # placement asks for 1.25 (r_i + r_j); 256 px leave room enough that it never has to relax
        assert (gaps / reach).min() >= 1.25


def test_all_three_lesion_kinds_are_drawn() -> None:
    kinds = np.concatenate([synth_skin_scene(40, rng=np.random.default_rng(s), size=64).lesions[:, 3] for s in range(5)])
    shares = np.bincount(kinds.astype(int), minlength=len(LESION_KINDS)) / len(kinds)
    assert len(LESION_KINDS) == 3 and np.all(shares > 0.05)


def test_more_lesions_make_more_red_blobs() -> None:
    # The same seed draws the same skin tone and lighting; the lesion count changes the rest.
    for seed in range(5):
        photos = [synth_skin_photo(n, rng=np.random.default_rng(seed), size=128) for n in (2, 20, 60)]
        (few, few_area), (some, _), (many, many_area) = (red_blobs(photo) for photo in photos)
        assert few <= 8  # measured 2..7 (freckles, marks and blotches give a few)
        assert 10 <= some <= 35  # measured 18..27
        assert many >= 40 and many >= few + 30  # measured 55..67
        assert many_area > 1.5 * few_area  # measured 0.034..0.075 vs 0.005..0.026


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_bad_lesion_count_is_an_input_error(bad) -> None:
    with pytest.raises(InputError, match="expected n_lesions"):
        synth_skin_photo(bad, rng=np.random.default_rng(0), size=64)


def test_tiny_size_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least 16 x 16"):
        synth_skin_photo(3, rng=np.random.default_rng(0), size=(8, 64))


# --- counts and folds ------------------------------------------------------------------------


def test_grade_count_ranges_follow_hayashi() -> None:
    assert grade_count_ranges() == [(1, 5), (6, 20), (21, 50), (51, 65)]


def test_lesion_counts_are_balanced_over_grades() -> None:
    counts = draw_lesion_counts(8, rng=np.random.default_rng(1))
    assert counts.dtype == np.int64 and counts.shape == (8,)
    assert Counter(hayashi(int(c)) for c in counts) == {0: 2, 1: 2, 2: 2, 3: 2}
    many = draw_lesion_counts(4000, rng=np.random.default_rng(2))
    assert many.min() == 1 and many.max() == 65
    assert Counter(hayashi(int(c)) for c in many) == {0: 1000, 1: 1000, 2: 1000, 3: 1000}
    # uniform within a grade: each of the 5 mild counts holds ~200 of the 1000 mild photos
    mild = np.bincount(many[many <= 5], minlength=6)[1:]
    assert mild.min() > 150 and mild.max() < 250


def test_folds_are_stratified() -> None:
    grades = np.array([0] * 10 + [1] * 7 + [2] * 5 + [3] * 3)
    folds = assign_folds(grades, folds=5, rng=np.random.default_rng(0))
    assert folds.shape == grades.shape and set(folds.tolist()) == set(range(5))
    for grade in range(4):
        per_fold = np.bincount(folds[grades == grade], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    totals = np.bincount(folds, minlength=5)
    assert totals.tolist() == [5, 5, 5, 5, 5]


# --- the data set on disk --------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("acne_synth") / "data"
    return out, write_synthetic_dataset(out, n=10, seed=11, size=64)


def test_dataset_layout(dataset) -> None:
    out, written = dataset
    assert written == [out / "JPEGImages"] + [out / name for name in SPLIT_NAMES]
    images = sorted(path.name for path in (out / "JPEGImages").iterdir())
    assert len(images) == 10
    seen_in_test: list[str] = []
    for k in range(5):
        test = parse_split_file(out / f"NNEW_test_{k}.txt")
        trainval = parse_split_file(out / f"NNEW_trainval_{k}.txt")
        test_names = {entry.filename for entry in test}
        trainval_names = {entry.filename for entry in trainval}
        assert len(test) == 2 and len(trainval) == 8  # 10 images over 5 folds
        assert not test_names & trainval_names
        assert test_names | trainval_names == set(images)
        seen_in_test += test_names
        for entry in test + trainval:
            assert 1 <= entry.count <= 65
            assert entry.grade == hayashi(entry.count)
            assert entry.filename.startswith(f"levle{entry.grade}_") and entry.filename.endswith(".jpg")
    assert sorted(seen_in_test) == images  # each image in exactly one test split
    grades = Counter(int(name[5]) for name in images)
    assert set(grades) == {0, 1, 2, 3} and max(grades.values()) - min(grades.values()) <= 1


def test_dataset_line_format(dataset) -> None:
    out, _ = dataset
    lines = (out / "NNEW_test_0.txt").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        name, grade, count = line.split("  ")
        assert name.startswith("levle") and grade.isdigit() and count.isdigit()


def test_dataset_images_are_rgb_jpegs(dataset) -> None:
    out, _ = dataset
    for path in (out / "JPEGImages").iterdir():
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)


def test_dataset_is_byte_identical_for_a_seed(dataset, tmp_path) -> None:
    out, _ = dataset
    again = tmp_path / "again"
    other = tmp_path / "other"
    write_synthetic_dataset(again, n=10, seed=11, size=64)
    write_synthetic_dataset(other, n=10, seed=12, size=64)
    names = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    # another seed: no photo in common
    photos = {path.read_bytes() for path in (out / "JPEGImages").iterdir()}
    other_photos = {path.read_bytes() for path in (other / "JPEGImages").iterdir()}
    assert len(other_photos) == 10 and not photos & other_photos


def test_dataset_refuses_a_folder_with_images(dataset) -> None:
    out, _ = dataset
    before = sorted((out / "JPEGImages").iterdir())
    with pytest.raises(OutputError, match="holding 10 files"):
        write_synthetic_dataset(out, n=10, seed=1, size=64)
    assert sorted((out / "JPEGImages").iterdir()) == before


def test_dataset_refuses_a_file_as_folder(tmp_path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(OutputError, match="which is a file"):
        write_synthetic_dataset(target, n=10, seed=1, size=64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 4}, "every fold needs a test image"), ({"n": 10, "folds": 1}, "folds"), ({"n": 10, "seed": -1}, "seed")],
)
def test_dataset_bad_arguments_are_input_errors(tmp_path, kwargs, message) -> None:
    arguments = {"seed": 0, "size": 64, **kwargs}
    with pytest.raises(InputError, match=message):
        write_synthetic_dataset(tmp_path / "data", **arguments)
    assert not (tmp_path / "data").exists()
