"""The ``acne grade`` page: one card per photo, the tally of grades, the not-a-skin-photo flag, failures."""

import re

import numpy as np
import pytest

from medimg.acne.report_page import NOT_SKIN_FLAG, grading_page
from medimg.common.errors import InputError
from medimg.common.images import write_png
from tests.common.test_html_report import decode_data_uri, image_uris


def record(file: str, *, count: int, grade: int, lesions: int | None = None, in_domain: bool = True,
           count_grade: int | None = None) -> dict:
    names = ("mild", "moderate", "severe", "very severe")
    probabilities = np.full(4, 0.1)
    probabilities[grade] = 0.7
    count_grade = grade if count_grade is None else count_grade
    return {"file": file, "count": count, "grade": grade, "grade_name": names[grade],
            **{f"p_{name.replace(' ', '_')}": float(p) for name, p in zip(names, probabilities)},
            "count_grade": count_grade, "count_grade_name": names[count_grade], "cou2cls_grade": count_grade, "ldl_count": count,
            "lesions": lesions, "in_domain": in_domain}


@pytest.fixture
def photos(tmp_path):
    """Three graded photos with their overlays (720 x 480, so the cards' thumbnails are 360 x 240)."""
    records = [
        record("photos/a.jpg", count=3, grade=0, lesions=3),
        record("photos/b.jpg", count=30, grade=2, lesions=28, count_grade=2),
        record("photos/<sky>.jpg", count=4, grade=3, lesions=0, in_domain=False, count_grade=0),
    ]
    colours = ((200, 150, 130), (190, 120, 110), (20, 60, 200))
    overlays = {r["file"]: write_png(tmp_path / f"overlay{i}.png", np.full((480, 720, 3), colour, np.uint8))
                for i, (r, colour) in enumerate(zip(records, colours))}
    return records, overlays


REPORT = {
    "medimg_version": "0.1.0", "command": "acne grade", "input": "photos",
    "grade_counts": {"mild": 1, "moderate": 0, "severe": 1, "very severe": 1},
    "mean_count": 12.333, "criterion": "hayashi: 0-5 mild, 6-20 moderate, 21-50 severe, >50 very severe",
    "arch": "acne-lesion", "weights": "shipped:acne-lesion", "device": "cpu",
    "seconds_per_stage": {"read": 0.5, "infer": 1.25, "overlay": 0.25}, "options": {"batch_size": 8}, "notes": [],
}


def cards(text: str) -> list[str]:
    return re.findall(r'<div class="card(?: flagged)?"[^>]*>.*?</div></div>', text)


def test_each_photo_is_a_card_with_its_overlay_name_grade_count_and_lesions(photos):
    records, overlays = photos
    text = grading_page(records, overlays=overlays, report=REPORT, failures=[])
    shown = cards(text)
    assert len(shown) == 3 and len(image_uris(text)) == 3
    thumbnails = [decode_data_uri(uri) for uri in image_uris(text)]
    assert all(image.format == "JPEG" and image.size == (360, 240) for image in thumbnails)
    assert np.allclose(np.asarray(thumbnails[2]).reshape(-1, 3).mean(axis=0), (20, 60, 200), atol=3)  # the overlay of its own photo
    first = shown[0]
    for line in ("a.jpg", "mild (p = 0.70)", "count 3", "lesions detected: 3"):
        assert f'<div class="line">{line}</div>' in first, line
    assert 'title="photos/a.jpg"' in first
    assert '<div class="line">very severe (p = 0.70)</div>' in shown[2] and '<div class="line">count 4; mild by count</div>' in shown[2]
    assert '<div class="line">&lt;sky&gt;.jpg</div>' in shown[2]


def test_a_photo_that_is_not_skin_is_flagged_and_only_that_one(photos):
    records, overlays = photos
    text = grading_page(records, overlays=overlays, report=None, failures=[])
    shown = cards(text)
    assert [NOT_SKIN_FLAG in card for card in shown] == [False, False, True]
    assert shown[2].startswith('<div class="card flagged"') and f'<div class="flag">{NOT_SKIN_FLAG}</div>' in shown[2]
    assert f"<th>flagged &#x27;{NOT_SKIN_FLAG}&#x27;</th><td>1</td>" in text


def test_the_tally_counts_each_grade_and_the_mean_count(photos):
    records, overlays = photos
    text = grading_page(records, overlays=overlays, report=REPORT, failures=[])
    tally = re.findall(r'<tr><td>(\d [a-z ]+)</td><td class="number">(\d+)</td><td>([^<]+)</td></tr>', text)
    assert tally == [("0 mild", "1", "33%"), ("1 moderate", "0", "0%"), ("2 severe", "1", "33%"), ("3 very severe", "1", "33%")]
    assert "<th>mean lesion count</th><td>12.33</td>" in text


def test_the_report_adds_model_criterion_and_stage_times(photos):
    records, overlays = photos
    text = grading_page(records, overlays=overlays, report=REPORT, failures=[])
    assert "<th>arch</th><td>acne-lesion</td>" in text and "<th>criterion</th><td>hayashi: 0-5 mild" in text
    assert '<tr class="total"><th>total</th><td class="number">2.000</td>' in text
    without = grading_page(records, overlays=overlays, report=None, failures=[])
    assert "Time per stage" not in without and "<h2>Model</h2>" not in without and len(cards(without)) == 3


def test_failures_are_listed_in_red_and_counted_in_the_title(photos):
    records, overlays = photos
    failures = [("photos/broken.jpg", "expected a readable image, got 'broken.jpg'")]
    text = grading_page(records, overlays=overlays, report=REPORT, failures=failures)
    assert "<h1>Acne grading: 3 of 4 photos graded</h1>" in text
    assert '<div class="notes failures"><h3>1 input failed</h3>' in text
    assert "<li>photos/broken.jpg: expected a readable image, got &#x27;broken.jpg&#x27;</li>" in text
    from medimg.common.batch import Failure

    assert grading_page(records, overlays=overlays, report=REPORT, failures=[Failure(*failures[0])]) == text
    clean = grading_page(records, overlays=overlays, report=REPORT, failures=[])
    assert "No failures." in clean and "notes failures" not in clean


def test_a_photo_without_overlay_is_shown_itself_and_a_missing_one_as_no_image(tmp_path, photos):
    records, overlays = photos
    photo = write_png(tmp_path / "plain.png", np.full((100, 50, 3), 128, np.uint8))
    extra = [record(str(photo), count=1, grade=0), record(str(tmp_path / "gone.jpg"), count=2, grade=0)]
    text = grading_page(records + extra, overlays=overlays, report=None, failures=[])
    shown = cards(text)
    assert len(shown) == 5 and len(image_uris(text)) == 4
    assert decode_data_uri(image_uris(shown[3])[0]).size == (50, 100)
    assert "photo (no lesion overlay)" in shown[3] and '<div class="no-image">no image</div>' in shown[4]


def test_records_with_only_some_keys_and_no_detector_are_tolerated():
    text = grading_page([{"file": "x.jpg", "grade": 1, "grade_name": "moderate", "count": 9, "lesions": None}], overlays={}, report={},
                        failures=[])
    assert '<div class="line">lesions detected: n/a (no detector)</div>' in text and '<div class="line">moderate</div>' in text
    assert NOT_SKIN_FLAG not in text.split('<div class="grid">')[1]  # in_domain missing: not flagged
    empty = grading_page([], overlays={}, report=None, failures=[("a.jpg", "unreadable")])
    assert "<h1>Acne grading: 0 of 1 photo graded</h1>" in empty and "<th>mean lesion count</th><td>\u2014</td>" in empty


def test_grading_page_refuses_overlays_that_are_not_a_mapping(photos):
    records, _ = photos
    with pytest.raises(InputError, match="overlays"):
        grading_page(records, overlays=["a.png"], report=None, failures=[])
