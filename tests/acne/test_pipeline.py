import numpy as np
import pytest
from PIL import Image

from medimg.acne.labels import HAYASHI, N_COUNT_BINS, parse_thresholds
from medimg.acne.inference import InferenceOptions, acne_network
from medimg.acne.pipeline import RECORD_COLUMNS, expand_inputs, grade_images, grade_records
from medimg.common.errors import InputError
from medimg.common.images import read_image

GRADE_PROBS = np.array([0.1, 0.2, 0.3, 0.4])


def one_hot_count(index: int, n: int = 1) -> np.ndarray:
    probs = np.zeros((n, N_COUNT_BINS))
    probs[:, index] = 1.0
    return probs


def as_logits(count_probs, grade_probs):
    """Logits whose softmax is the given distributions (log of 0 is -inf, whose softmax is 0)."""
    with np.errstate(divide="ignore"):
        return np.log(count_probs), np.log(grade_probs)


def fixed_predictor(count_bin: int):
    """Every image: all count mass in ``count_bin``, grade probabilities GRADE_PROBS."""
    return lambda images: as_logits(one_hot_count(count_bin, len(images)), np.tile(GRADE_PROBS, (len(images), 1)))


def write_photo(path, size=(160, 128)):
    """Skin-toned noise, large enough not to be flagged as out of domain."""
    rng = np.random.default_rng(len(str(path)))
    photo = np.clip(np.array([210, 160, 130]) + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(path)
    return path


def test_count_bin_20_is_count_21_and_graded_by_the_chosen_criterion(tmp_path):
    photo = write_photo(tmp_path / "a.png")
    (hayashi,) = grade_images([photo], predictor=fixed_predictor(20), criterion=HAYASHI).results
    assert list(hayashi) == list(RECORD_COLUMNS)
    assert hayashi["count"] == 21
    assert (hayashi["count_grade"], hayashi["count_grade_name"], hayashi["cou2cls_grade"]) == (2, "severe", 2)
    assert (hayashi["grade"], hayashi["grade_name"]) == (3, "very severe")
    assert [hayashi[f"p_{n}"] for n in ("mild", "moderate", "severe", "very_severe")] == pytest.approx(GRADE_PROBS)
    (custom,) = grade_images([photo], predictor=fixed_predictor(20), criterion=parse_thresholds("10,30,60")).results
    assert (custom["count"], custom["count_grade"], custom["count_grade_name"], custom["cou2cls_grade"]) == (21, 1, "moderate", 1)
    (low,) = grade_images([photo], predictor=fixed_predictor(20), criterion=parse_thresholds("25,40,60")).results
    assert (low["count_grade"], low["count_grade_name"]) == (0, "mild")  # 21 <= 25
    assert custom["grade"] == 3  # the grade head does not depend on the criterion


def test_hayashi_boundaries_of_the_count_grade(tmp_path):
    files = [f"f{i}" for i in range(6)]
    bins = [4, 5, 19, 20, 49, 50]  # counts 5/6, 20/21, 50/51
    records = grade_records(files, np.concatenate([one_hot_count(b) for b in bins]), np.tile(GRADE_PROBS, (6, 1)))
    assert [r["count"] for r in records] == [5, 6, 20, 21, 50, 51]
    assert [r["count_grade"] for r in records] == [0, 1, 1, 2, 2, 3]


def test_cou2cls_grade_sums_bins_while_count_grade_follows_the_mode():
    # mode at count 21 (severe) but most mass on counts 6..20 (moderate)
    probs = np.zeros((1, N_COUNT_BINS))
    probs[0, 20] = 0.3
    probs[0, 10:17] = 0.1
    (record,) = grade_records(["x"], probs, GRADE_PROBS[None])
    assert (record["count"], record["count_grade"], record["cou2cls_grade"]) == (21, 2, 1)


def test_exif_orientation_is_honoured(tmp_path):
    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:30] = 220  # bright top half
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    stored.save(tmp_path / "tagged.jpg", quality=95, exif=exif.tobytes())
    stored.save(tmp_path / "untagged.jpg", quality=95)

    tagged = read_image(tmp_path / "tagged.jpg")
    assert tagged.shape == (60, 40, 3)
    assert np.abs(tagged.astype(int) - read_image(tmp_path / "upright.jpg")).mean() < 2

    def top_bright(images):
        """Count 1 when the top half is clearly brighter than the bottom half, else count 65."""
        top = images[:, :, :112].mean(axis=(1, 2, 3)) > images[:, :, 112:].mean(axis=(1, 2, 3)) + 1.0
        return as_logits(np.stack([one_hot_count(0 if t else 64)[0] for t in top]), np.tile(GRADE_PROBS, (len(images), 1)))

    paths = [tmp_path / n for n in ("upright.jpg", "tagged.jpg", "untagged.jpg")]
    counts = [r["count"] for r in grade_images(paths, predictor=top_bright).results]
    assert counts == [1, 1, 65]


def test_an_unreadable_file_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    good = [write_photo(tmp_path / f"g{i}.png") for i in range(3)]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    paths = [good[0], tmp_path / "broken.jpg", good[1], tmp_path / "missing.png", good[2]]
    calls = []

    def predictor(images):
        calls.append(len(images))
        return fixed_predictor(3)(images)

    outcome = grade_images(paths, predictor=predictor, batch_size=2)
    assert [r["file"] for r in outcome.results] == [str(p) for p in good]
    assert [failure.item for failure in outcome.failures] == [str(tmp_path / "broken.jpg"), str(tmp_path / "missing.png")]
    assert calls == [2, 1] and outcome.exit_code == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("Error: ") for line in err)
    assert "broken.jpg" in err[0] and "missing.png" in err[1] and "does not exist" in err[1]
    assert outcome.tally() == "2 of 5 images failed"  # printed last by the command, after its own notes


def test_the_network_is_not_loaded_when_no_image_is_readable(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG junk")
    network = acne_network(InferenceOptions(weights=tmp_path / "no_such.safetensors", device="cpu"))
    (tmp_path / "broken2.png").write_bytes(b"\x89PNG junk")
    outcome = grade_images([tmp_path / "broken.png", tmp_path / "broken2.png"], predictor=network)
    assert outcome.results == [] and len(outcome.failures) == 2
    assert network.source == "not loaded"


def test_expand_inputs_reads_folders_recursively_and_globs(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    a = write_photo(tmp_path / "sub" / "a.JPG")
    b = write_photo(tmp_path / "sub" / "deeper" / "b.tiff")
    (tmp_path / "sub" / "notes.txt").write_text("not an image")
    c = write_photo(tmp_path / "c.bmp")
    assert expand_inputs([tmp_path / "sub"]) == [a, b]
    assert expand_inputs([str(tmp_path / "*.bmp"), c, tmp_path / "sub"]) == [c, a, b]
    assert expand_inputs([tmp_path / "missing.jpg"]) == [tmp_path / "missing.jpg"]  # reported later, per file
    with pytest.raises(InputError, match=r"expected images matching '.*\*\.png', got none"):
        expand_inputs([str(tmp_path / "*.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="in folder"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(InputError, match="at least one image"):
        expand_inputs([])
