"""Tests of the synthetic acne photos (medimg.acne.skin_family) and their ACNE04-layout data set
(medimg.acne.synth)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from medimg.acne.dataset import parse_split_file
from medimg.acne.skin_family import DistractorFamily, HairFamily, KindMix, SkinFamily, SkinParams, render
from medimg.acne.synth import (
    JPEG_QUALITY,
    LESION_KINDS,
    assign_folds,
    draw_lesion_counts,
    grade_count_ranges,
    synth_skin_photo,
    synth_skin_scene,
    write_synthetic_dataset,
)
from medimg.common.errors import InputError, OutputError
from medimg.common.families import IntRange, Uniform, params_from_dict, params_to_dict, read_params

SPLIT_NAMES = [f"NNEW_{part}_{k}.txt" for k in range(5) for part in ("trainval", "test")]


def hayashi(count: int) -> int:
    return 0 if count <= 5 else 1 if count <= 20 else 2 if count <= 50 else 3


def redness(image: np.ndarray) -> np.ndarray:
    """R - (G + B) / 2 per pixel, float32."""
    rgb = image.astype(np.float32)
    return rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2])


def red_blobs(image: np.ndarray) -> tuple[int, float]:
    """(number of red blobs of >= 3 px, their area fraction).

    Redness is compared with its 15 x 15 local mean, so that skin tone and broad blotches cancel
    and only small red spots remain.
    """
    red = redness(image)
    mask = red - ndimage.uniform_filter(red, 15) > 12.0
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
        assert few <= 8  # measured 1..3 (freckles, marks and blotches give a few)
        assert 10 <= some <= 35  # measured 16..20
        # touching lesions merge into one blob: seed 2 (clustered) is at the 3rd percentile
        assert many >= 35 and many >= few + 30  # measured 39..63
        assert many_area > 1.5 * few_area  # measured 0.023..0.062 vs 0.001..0.017


@pytest.mark.parametrize("bad", [-1, 2.5, True, "3"])
def test_bad_lesion_count_is_an_input_error(bad) -> None:
    with pytest.raises(InputError, match="expected n_lesions"):
        synth_skin_photo(bad, rng=np.random.default_rng(0), size=64)


def test_tiny_size_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least 16 x 16"):
        synth_skin_photo(3, rng=np.random.default_rng(0), size=(8, 64))


# --- family, parameters, render ----------------------------------------------------------------

# every part of the photo drawn at least once: hair, freckles, moles, healed marks, glints
BUSY = dataclasses.replace(
    SkinFamily(),
    hair=HairFamily(chance=1.0),
    distractors=DistractorFamily(freckle_chance=1.0, mole_rate=3.0, healed_mark_rate=Uniform(4.0, 6.0), oiliness=Uniform(0.8, 1.0)),
)


def within(ranges, value, tolerance: float = 1e-9) -> bool:
    """``value`` in ``ranges``; the tolerance covers sizes scaled to the photo and back."""
    if isinstance(ranges, (Uniform, IntRange)):
        return ranges.low - tolerance <= value <= ranges.high + tolerance
    return ranges.contains(value)


def assert_shared_fields_within(family, params) -> int:
    """Every field of ``params`` whose namesake in ``family`` is a range holds a value of it
    (per-channel tuples: each channel). Returns how many values were checked.

    Radii are skipped: the family gives them for a 256-pixel photo, the parameters in pixels.
    """
    checked = 0
    for field in dataclasses.fields(params):
        ranges = getattr(family, field.name, None)
        if field.name == "radius" or not hasattr(ranges, "contains"):
            continue
        value = getattr(params, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            assert within(ranges, item), (type(params).__name__, field.name, item, ranges)
            checked += 1
    return checked


def test_params_json_round_trip_renders_the_same_photo() -> None:
    params = BUSY.sample(np.random.default_rng(3), n_lesions=25, size=(64, 80))
    assert params.hair.strands and params.distractors.freckles and params.distractors.moles
    text = json.dumps(params_to_dict(params))
    again = params_from_dict(SkinParams, json.loads(text))
    assert again == params
    scene, scene_again = render(params), render(again)
    np.testing.assert_array_equal(scene_again.image, scene.image)
    np.testing.assert_array_equal(scene_again.lesions, scene.lesions)
    # the wrapper is sample-then-render
    wrapped = synth_skin_scene(25, rng=np.random.default_rng(3), size=(64, 80), family=BUSY)
    np.testing.assert_array_equal(wrapped.image, scene.image)


@pytest.mark.parametrize(("family", "size"), [(SkinFamily(), 256), (SkinFamily(), (48, 80)), (BUSY, 96)])
def test_sampled_values_lie_inside_the_family_ranges(family, size) -> None:
    checked = 0
    for seed, n_lesions in enumerate((0, 7, 40, 65)):
        params = family.sample(np.random.default_rng(seed), n_lesions=n_lesions, size=size)
        height, width = params.size
        scale = min(height, width) / 256
        lesion_scale = max(scale, 0.45)
        assert params.size == ((size, size) if isinstance(size, int) else size)
        checked += assert_shared_fields_within(family, params)  # inflammation, pus tint
        checked += assert_shared_fields_within(family.surface, params.surface)
        checked += assert_shared_fields_within(family.camera, params.camera)
        checked += assert_shared_fields_within(family.hair, params.hair)
        checked += assert_shared_fields_within(family.distractors, params.distractors)

        assert len(params.lesions) == n_lesions
        for lesion in params.lesions:
            ranges = family.kind_ranges(lesion.kind)
            assert family.kind_mix.contains(lesion.kind)
            checked += assert_shared_fields_within(ranges, lesion)  # raised, dusk, cap, pus opacity
            assert within(ranges.radius, lesion.radius / lesion_scale)
            assert lesion.radius <= lesion.y <= height - 1 - lesion.radius
            assert lesion.radius <= lesion.x <= width - 1 - lesion.radius
            assert within(family.lesion_elongation, lesion.elongation) and within(family.lesion_strength, lesion.strength)
            assert 0.0 <= lesion.angle <= np.pi
            assert lesion.glint == 0.0 or (ranges.glint_chance > 0 and within(family.lesion_glint, lesion.glint))

        spots = family.distractors
        assert len(params.distractors.freckles) == 0 or within(spots.freckle_count, len(params.distractors.freckles))
        for ranges, drawn in (
            (spots.freckle, params.distractors.freckles),
            (spots.mole, params.distractors.moles),
            (spots.healed_mark, params.distractors.healed_marks),
            (spots.glint, params.distractors.glints),
        ):
            for spot in drawn:
                checked += assert_shared_fields_within(ranges, spot)
                assert within(ranges.radius, spot.radius / lesion_scale) and 0.0 <= spot.angle <= np.pi

        hair = params.hair
        assert len(hair.strands) == 0 or within(family.hair.count, len(hair.strands))
        for strand in hair.strands:
            length = np.linalg.norm(np.subtract(strand.end, strand.start))
            assert within(family.hair.length, length / min(height, width))
        for seed_value in (params.surface.texture_seed, params.surface.pore_seed, params.camera.noise_seed):
            assert isinstance(seed_value, int) and 0 <= seed_value < 2**31
    assert checked > 100


@pytest.mark.parametrize(("kinds", "n_lesions"), [(("pustule", "nodule"), 30), (("papule",), 12), (("nodule",), 0)])
def test_exactly_n_lesions_of_the_requested_kinds(kinds, n_lesions) -> None:
    family = SkinFamily(kind_mix=KindMix(kinds=kinds, concentration=(1.0,) * len(kinds)))
    for seed in range(2):
        params = family.sample(np.random.default_rng(seed), n_lesions=n_lesions, size=96)
        scene = render(params)
        assert scene.lesions.shape == (n_lesions, 4)
        assert {lesion.kind for lesion in params.lesions} <= set(kinds)
        assert set(scene.lesions[:, 3].astype(int).tolist()) <= {LESION_KINDS.index(kind) for kind in kinds}
        np.testing.assert_array_equal(scene.lesions[:, 2], [lesion.radius for lesion in params.lesions])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kinds": ("wart",), "concentration": (1.0,)}, "expected distinct lesion kinds"),
        ({"kinds": ("papule",)}, "expected 1 positive concentrations"),
    ],
)
def test_bad_kind_mix_is_an_input_error(arguments, message) -> None:
    with pytest.raises(InputError, match=message):
        KindMix(**arguments)


def dark_thin_share(image: np.ndarray) -> float:
    """Share of pixels much darker than their 7 x 7 median: thin dark lines such as hairs."""
    luminance = image.astype(np.float32).mean(axis=2)
    return float((luminance < ndimage.median_filter(luminance, 7) - 20).mean())


def test_no_hair_gives_fewer_dark_thin_pixels() -> None:
    hairy = SkinFamily(hair=HairFamily(chance=1.0, count=IntRange(8, 15)))
    bald = SkinFamily(hair=HairFamily(chance=0.0))
    for seed in range(3):
        with_hair = hairy.sample(np.random.default_rng(seed), n_lesions=10, size=96)
        without = bald.sample(np.random.default_rng(seed), n_lesions=10, size=96)
        assert len(with_hair.hair.strands) >= 8 and without.hair.strands == ()
        # each part of a photo draws from its own stream: narrowing the hair leaves the rest alone
        assert without.lesions == with_hair.lesions and without.surface == with_hair.surface
        hairy_share, bald_share = dark_thin_share(render(with_hair).image), dark_thin_share(render(without).image)
        assert hairy_share > 2.0 * bald_share  # measured 0.026..0.060 vs 0.006..0.011


def test_larger_lesion_radius_reddens_more_pixels() -> None:
    papules = KindMix(kinds=("papule",), concentration=(1.0,))

    def papules_of_radius(low: float, high: float) -> SkinFamily:
        return SkinFamily(kind_mix=papules, papule=dataclasses.replace(SkinFamily().papule, radius=Uniform(low, high)))

    small, large = papules_of_radius(2.5, 3.0), papules_of_radius(5.0, 5.5)
    for seed in range(3):
        # the same seed without lesions: the same skin, so the difference is the lesions alone
        bare = redness(render(small.sample(np.random.default_rng(seed), n_lesions=0, size=128)).image)
        shares = []
        for family in (small, large):
            params = family.sample(np.random.default_rng(seed), n_lesions=20, size=128)
            assert all(within(family.papule.radius, lesion.radius / 0.5) for lesion in params.lesions)
            shares.append(float((redness(render(params).image) - bare > 8.0).mean()))
        # twice the radius, about four times the area: measured 3.4..3.9 x
        assert shares[1] > 2.5 * shares[0] > 0


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


def test_dataset_params_re_render_each_photo(dataset) -> None:
    out, _ = dataset
    images = sorted((out / "JPEGImages").iterdir())
    assert sorted(path.stem for path in (out / "params").iterdir()) == [path.stem for path in images]
    entries = parse_split_file(out / "NNEW_test_0.txt") + parse_split_file(out / "NNEW_trainval_0.txt")
    counts = {entry.filename: entry.count for entry in entries}
    for image_path in images:
        params = read_params(out / "params" / f"{image_path.stem}.json", SkinParams)
        assert len(params.lesions) == counts[image_path.name] and params.size == (64, 64)
        # the same pixels: encoded as the writer does, the same bytes
        again = io.BytesIO()
        Image.fromarray(render(params).image).save(again, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        assert again.getvalue() == image_path.read_bytes()


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


def test_dataset_refuses_a_folder_with_params(tmp_path) -> None:
    (tmp_path / "data" / "params").mkdir(parents=True)
    (tmp_path / "data" / "params" / "old.json").write_text("{}")
    with pytest.raises(OutputError, match="whose 'params/' is empty or absent"):
        write_synthetic_dataset(tmp_path / "data", n=10, seed=1, size=64)
    assert not (tmp_path / "data" / "JPEGImages").exists()


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
