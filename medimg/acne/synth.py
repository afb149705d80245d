"""Synthetic skin photos with a known number of acne lesions, written in the ACNE04 layout.

The photos themselves come from :mod:`medimg.acne.skin_family`: a :class:`SkinFamily` of ranges
samples one photo's :class:`SkinParams`, and :func:`render` paints them. This module keeps the
one-call wrappers (``synth_skin_scene``, ``synth_skin_photo``) and writes data sets.

Lesion counts (``draw_lesion_counts``): the real ACNE04 split files are skewed to mild acne
(in ``data/acne04_NNEW_trainval_sample.txt`` grades 0/1/2/3 hold 35/43/13/9 % of the images).
For training we draw a balanced mixture instead: grades are dealt in equal shares (so all four
appear as soon as there are four images) and the count is uniform within the grade's Hayashi
range, 1..5, 6..20, 21..50, 51..65. Rare heavy cases are then not starved of examples; a model
trained on it is not biased towards "mild".

``write_synthetic_dataset`` writes ``JPEGImages/levle{grade}_{i}.jpg`` (JPEG quality 92, no
chroma subsampling so that small red lesions keep their colour), each photo's parameters as
``params/levle{grade}_{i}.json`` (re-render with ``render(read_params(path, SkinParams))``), and
five stratified folds ``NNEW_trainval_k.txt`` / ``NNEW_test_k.txt``. The same seed gives
byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.acne.dataset import IMAGES_DIR, SplitEntry, split_file_path, write_split_file
from medimg.acne.labels import HAYASHI, N_COUNT_BINS, N_GRADES, grade_of_count
from medimg.acne.skin_family import LESION_KINDS, SkinFamily, SkinParams, SkinScene, check_int, render
from medimg.common.console import track
from medimg.common.errors import OutputError, expected
from medimg.common.families import write_params
from medimg.common.outputs import atomic_path

__all__ = [
    "JPEG_QUALITY",
    "LESION_KINDS",
    "PARAMS_DIR",
    "SkinFamily",
    "SkinParams",
    "SkinScene",
    "assign_folds",
    "draw_lesion_counts",
    "grade_count_ranges",
    "render",
    "synth_skin_photo",
    "synth_skin_scene",
    "write_synthetic_dataset",
]

JPEG_QUALITY = 92
# beside JPEGImages/: one JSON of SkinParams per photo, named after the photo
PARAMS_DIR = "params"
_DEFAULT_FAMILY = SkinFamily()


def synth_skin_scene(
    n_lesions: int,
    *,
    rng: np.random.Generator,
    size: int | tuple[int, int] = (256, 256),
    family: SkinFamily = _DEFAULT_FAMILY,
) -> SkinScene:
    """Draw one synthetic skin photo with exactly ``n_lesions`` acne lesions.

    Parameters
    ----------
    n_lesions : int
        Number of lesions (papules, pustules, nodules) to draw, >= 0.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same photo.
    size : int or (H, W)
        Photo size in pixels (at least 16 x 16).
    family : SkinFamily
        The ranges to draw from; the default is what the shipped models were trained on.

    Returns
    -------
    SkinScene
        ``image`` (H, W, 3) ndarray of uint8 RGB and ``lesions`` (N, 4) ndarray of float64
        (y, x, radius, kind index into ``LESION_KINDS``).
    """
    return render(family.sample(rng, n_lesions=n_lesions, size=size))


def synth_skin_photo(
    n_lesions: int,
    *,
    rng: np.random.Generator,
    size: int | tuple[int, int] = (256, 256),
    family: SkinFamily = _DEFAULT_FAMILY,
) -> np.ndarray:
    """A synthetic skin photo with exactly ``n_lesions`` acne lesions.

    Returns
    -------
    image : (H, W, 3) ndarray of uint8
        RGB. See ``synth_skin_scene`` for the lesion positions.
    """
    return synth_skin_scene(n_lesions, rng=rng, size=size, family=family).image


def grade_count_ranges() -> list[tuple[int, int]]:
    """The inclusive lesion-count range of each Hayashi grade: ``[(1, 5), (6, 20), (21, 50), (51, 65)]``."""
    lows = (1, *(upper + 1 for upper in HAYASHI.upper))
    highs = (*HAYASHI.upper, N_COUNT_BINS)
    return list(zip(lows, highs))


def draw_lesion_counts(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Lesion counts for ``n`` photos: grades dealt in equal shares, counts uniform within a grade.

    Returns
    -------
    counts : (n,) ndarray of int64
        Values in 1..65; the Hayashi grades of the counts differ in frequency by at most one,
        so every grade appears once ``n >= 4``.
    """
    n = check_int("n", n, 0)
    grades = rng.permutation(np.arange(n) % N_GRADES)
    ranges = np.array(grade_count_ranges(), dtype=np.int64)
    return rng.integers(ranges[grades, 0], ranges[grades, 1] + 1).astype(np.int64)


def assign_folds(grades: np.ndarray, *, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified folds: the images of each grade, shuffled, dealt round-robin over the folds.

    Parameters
    ----------
    grades : (N,) ndarray of int
    folds : int
        Number of folds, >= 2.

    Returns
    -------
    fold_of_image : (N,) ndarray of int64
        Fold 0..folds-1 whose test split holds the image. Each grade is spread over the folds
        within one image, and so is the total (each grade starts where the last one stopped).
    """
    grades = np.asarray(grades)
    fold_of_image = np.zeros(len(grades), dtype=np.int64)
    start = 0
    for grade in np.unique(grades):
        members = rng.permutation(np.flatnonzero(grades == grade))
        fold_of_image[members] = (start + np.arange(len(members))) % folds
        start = (start + len(members)) % folds
    return fold_of_image


def _write_jpeg(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    with atomic_path(path) as temporary:
        # 4:4:4 (subsampling=0): halving the chroma resolution would wash out the smallest lesions
        Image.fromarray(image).save(temporary, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return path


def _refuse_filled_folder(folder: Path) -> None:
    """A data set is never mixed with an earlier one: ``folder`` must be empty or absent."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(expected(f"'{folder.name}' to be a folder", f"a file '{folder}'"))
    present = sum(1 for _ in folder.iterdir())
    if present:
        raise OutputError(expected(f"an output folder whose '{folder.name}/' is empty or absent", f"'{folder}' holding {present} files"))


def write_synthetic_dataset(
    out_dir: Path | str,
    *,
    n: int,
    seed: int,
    size: int = 256,
    folds: int = 5,
    family: SkinFamily = _DEFAULT_FAMILY,
) -> list[Path]:
    """Write ``n`` synthetic photos, their parameters and ``folds`` stratified splits (ACNE04 layout).

    Writes ``out_dir/JPEGImages/levle{grade}_{i}.jpg`` (i = 0..n-1), the :class:`SkinParams` of
    each as ``out_dir/params/levle{grade}_{i}.json`` and, for k = 0..folds-1,
    ``NNEW_test_k.txt`` (the images of fold k) and ``NNEW_trainval_k.txt`` (all others), lines
    ``"filename  grade  count"`` with the Hayashi grade of the true count. Photo i depends only on
    ``seed`` and ``i`` (and its count), so the same seed gives byte-identical files.

    Parameters
    ----------
    family : SkinFamily
        The ranges photos are drawn from; the default is what the shipped models were trained on.

    Returns
    -------
    paths : list of Path
        The image folder, then ``NNEW_trainval_k.txt`` and ``NNEW_test_k.txt`` for each k (the
        ``params/`` folder is not listed: it describes the images rather than being a split).

    Raises
    ------
    InputError
        ``n < folds``, ``folds < 2``, ``size < 16`` or a negative seed.
    OutputError
        ``out_dir`` is a file, or ``out_dir/JPEGImages/`` or ``out_dir/params/`` already holds
        files (never mixed with an earlier data set).
    """
    folds = check_int("folds", folds, 2)
    n = check_int("n (every fold needs a test image)", n, folds)
    seed = check_int("seed", seed, 0)
    size = check_int("size", size, 16)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{out_dir}' which is a file"))
    images_dir = out_dir / IMAGES_DIR
    params_dir = out_dir / PARAMS_DIR
    _refuse_filled_folder(images_dir)
    _refuse_filled_folder(params_dir)

    plan_seed, photos_seed = np.random.SeedSequence(seed).spawn(2)
    plan_rng = np.random.default_rng(plan_seed)
    counts = draw_lesion_counts(n, rng=plan_rng)
    grades = np.array([grade_of_count(int(count)) for count in counts], dtype=np.int64)
    fold_of_image = assign_folds(grades, folds=folds, rng=plan_rng)

    images_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    photo_seeds = photos_seed.spawn(n)
    for i in track(range(n), description="synthetic photos"):
        params = family.sample(np.random.default_rng(photo_seeds[i]), n_lesions=int(counts[i]), size=(size, size))
        stem = f"levle{grades[i]}_{i}"
        write_params(params_dir / f"{stem}.json", params)
        _write_jpeg(images_dir / f"{stem}.jpg", render(params).image)
        entries.append(SplitEntry(filename=f"{stem}.jpg", grade=int(grades[i]), count=int(counts[i])))

    written: list[Path] = [images_dir]
    for fold in range(folds):
        test = [entry for entry, home in zip(entries, fold_of_image) if home == fold]
        trainval = [entry for entry, home in zip(entries, fold_of_image) if home != fold]
        written.append(write_split_file(split_file_path(out_dir, fold, "trainval"), trainval))
        written.append(write_split_file(split_file_path(out_dir, fold, "test"), test))
    return written
