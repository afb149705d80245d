"""Grading with a lesion network: detections, count and grade sources, overlays, domain warnings."""

import numpy as np
import pytest
from PIL import Image

from medimg.acne.models import LESION_OUTPUT, LESION_PREPROCESSING
from medimg.acne.overlay import BOX_COLOUR
from medimg.acne.pipeline import RECORD_COLUMNS, grade_images, grade_records
from medimg.common.errors import ModelError
from medimg.common.images import read_image

PEAKS = [(4, 8), (10, 3), (12, 12)]  # (row, column) cells of the 16 x 16 heat-map


class LesionStandIn:
    """A network stand-in with the lesion network's io: three lesions, LDL count 2, grade head 'severe'."""

    preprocessing = {**LESION_PREPROCESSING, "input_size": 64}
    output = {**LESION_OUTPUT, "threshold": 0.5, "count_from": "detections", "grade_from": "count"}

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        n = len(images)
        count = np.full((n, 65), -20.0, np.float32)
        count[:, 1] = 0.0
        grade = np.log(np.tile([0.1, 0.2, 0.6, 0.1], (n, 1))).astype(np.float32)
        heatmap = np.full((n, 1, 16, 16), -5.0, np.float32)
        for row, col in PEAKS:
            heatmap[:, 0, row, col] = 5.0
        size = np.full((n, 2, 16, 16), np.log(8.0), np.float32)
        return count, grade, heatmap, size


def skin_photo(path, width=256, height=192):
    rng = np.random.default_rng(0)
    photo = np.clip(np.array([224, 172, 140]) + rng.normal(0, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(path)
    return path


def test_lesions_count_and_grade_come_from_the_detector_and_overlays_box_them(tmp_path, capsys):
    photo = skin_photo(tmp_path / "face.png")
    (record,) = grade_images([photo], predictor=LesionStandIn(), overlay_dir=tmp_path / "marked").results
    assert list(record) == list(RECORD_COLUMNS)
    assert (record["lesions"], record["count"], record["ldl_count"]) == (3, 3, 2)
    assert (record["grade"], record["grade_name"], record["count_grade"]) == (0, "mild", 0)
    assert record["p_severe"] == pytest.approx(0.6)
    assert record["in_domain"] is True and "unreliable" not in capsys.readouterr().err
    marked = read_image(tmp_path / "marked" / "face_lesions.png")
    assert marked.shape == (192, 256, 3)
    # cell (4, 8) -> input (34, 18) -> photo (136, 54); an 8-pixel box -> 32 x 24 photo pixels
    assert tuple(marked[54, 120]) == BOX_COLOUR and tuple(marked[42, 136]) == BOX_COLOUR
    assert tuple(marked[54, 136]) != BOX_COLOUR  # the lesion itself is left visible


def test_overlay_needs_a_detector(tmp_path):
    photo = skin_photo(tmp_path / "face.png")

    def ldl_only(images):
        return np.zeros((len(images), 65), np.float32), np.zeros((len(images), 4), np.float32)

    with pytest.raises(ModelError, match="lesion detector"):
        grade_images([photo], predictor=ldl_only, overlay_dir=tmp_path / "marked")
    assert not (tmp_path / "marked").exists() or not any((tmp_path / "marked").iterdir())


def test_a_grey_chart_is_graded_but_flagged(tmp_path, capsys):
    chart = tmp_path / "chart.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(chart)
    (record,) = grade_images([chart], predictor=LesionStandIn()).results
    assert record["in_domain"] is False
    err = capsys.readouterr().err
    assert "chart.png: no colour" in err and "unreliable" in err


def test_test_time_flip_averages_the_mirrored_heat_map(tmp_path):
    stand_in = LesionStandIn()
    stand_in.output = {**stand_in.output, "test_flip": True}
    (record,) = grade_images([skin_photo(tmp_path / "face.png")], predictor=stand_in).results
    assert stand_in.calls == 2
    # mirrored peaks average to 0 logit (sigmoid 0.5, not above the 0.5 threshold) unless symmetric
    assert record["lesions"] == 0


def test_records_without_a_detector_keep_the_ldl_answer():
    probs = np.zeros((1, 65))
    probs[0, 9] = 1
    (record,) = grade_records(["x"], probs, np.array([[0.1, 0.6, 0.2, 0.1]]))
    assert (record["count"], record["ldl_count"], record["lesions"], record["grade"]) == (10, 10, None, 1)


def test_the_mean_rule_answers_halfway_between_count_head_and_detector(tmp_path):
    photo = skin_photo(tmp_path / "face.png")
    stand_in = LesionStandIn()
    stand_in.output = {**stand_in.output, "count_from": "mean"}
    (record,) = grade_images([photo], predictor=stand_in).results
    # LDL count 2, three lesions found: (2 + 3) / 2 = 2.5, halves rounded up
    assert (record["ldl_count"], record["lesions"], record["count"], record["grade"]) == (2, 3, 3, 0)


def test_a_photo_without_a_detector_count_answers_with_its_count_head_alone():
    count_probs = np.zeros((2, 65))
    count_probs[:, 1] = 1.0  # LDL count 2 for both photos
    grade_probs = np.full((2, 4), 0.25)
    records = grade_records(["a.png", "b.png"], count_probs, grade_probs, lesions=[6, None], count_from="mean", grade_from="count")
    assert [r["count"] for r in records] == [4, 2]
    records = grade_records(["a.png", "b.png"], count_probs, grade_probs, lesions=[6, None], count_from="detections", grade_from="count")
    assert [r["count"] for r in records] == [6, 2]
