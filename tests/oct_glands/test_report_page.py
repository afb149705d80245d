"""The ``oct extract`` page: title, pore map and B-scans inlined, results, model, stage times, notes."""

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.images import write_png
from medimg.oct_glands.report_page import extract_page
from tests.common.test_html_report import decode_data_uri, image_uris


def summary(**changes) -> dict:
    data = {
        "medimg_version": "0.1.0", "command": "oct extract", "input": "fingers/<left> index.tif",
        "volume_shape_yzx": [160, 128, 200], "blocks": 9, "tissue_levels": [55.0, 97.0, 173.0], "threshold": 0.47265625,
        "mask_voxels": 19305, "glands": 14, "pores": 14, "gland_voxels": 18007,
        "arch": "oct-light", "weights": "shipped:oct-light", "device": "cpu",
        "seconds_per_stage": {"denoise": 12.5, "surface": 0.25, "infer": 7.25},
        "options": {"stride": 40, "denoise": {"enabled": True, "domain": "log"}},
        "notes": ["noise estimated from 3% of the rows"],
    }
    data.update(changes)
    return data


@pytest.fixture
def pictures(tmp_path):
    fingerprint = write_png(tmp_path / "fingerprint.png", np.tile(np.arange(200, dtype=np.uint8), (160, 1)))
    overlay = write_png(tmp_path / "bscan_overlay.png", np.full((392, 200, 3), (200, 40, 40), np.uint8))
    return fingerprint, overlay


def test_extract_page_shows_title_results_model_times_and_notes(pictures):
    fingerprint, overlay = pictures
    text = extract_page(summary(), fingerprint_png=fingerprint, bscan_overlay_png=overlay)
    assert "<title>OCT extract: fingers/&lt;left&gt; index.tif</title>" in text
    assert "<h1>OCT extract: fingers/&lt;left&gt; index.tif</h1>" in text
    for label, value in (("volume shape", "160 \u00d7 128 \u00d7 200 (Y B-scans \u00d7 Z depth \u00d7 X)"),
                         ("sweat glands (ducts) found", "14"), ("pores", "14"), ("gland voxels", "18007"),
                         ("voxels above the threshold", "19305"), ("probability threshold", "0.4727"), ("blocks analysed", "9"),
                         ("tissue intensity levels", "55, 97, 173"), ("arch", "oct-light"), ("weights", "shipped:oct-light"),
                         ("device", "cpu"), ("medimg_version", "0.1.0")):
        assert f"<th>{label}</th><td>{value}</td>" in text, label
    assert '<tr class="total"><th>total</th><td class="number">20.000</td>' in text
    assert "<li>noise estimated from 3% of the rows</li>" in text
    assert "<summary>Options of the run</summary>" in text and "<th>domain</th><td>log</td>" in text


def test_extract_page_inlines_the_pore_map_and_the_bscans(pictures):
    fingerprint, overlay = pictures
    text = extract_page(summary(), fingerprint_png=fingerprint, bscan_overlay_png=overlay)
    shown = [decode_data_uri(uri) for uri in image_uris(text)]
    assert [image.size for image in shown] == [(200, 160), (200, 392)]
    assert np.asarray(shown[0].convert("L"))[0, 199] == 199  # the pore map itself, not a placeholder
    assert tuple(np.asarray(shown[1].convert("RGB"))[5, 5]) == (200, 40, 40)
    assert "<figcaption>En-face fingerprint" in text and "<figcaption>B-scans (depth down)" in text


def test_extract_page_shows_results_it_does_not_know_under_their_own_name(pictures):
    fingerprint, overlay = pictures
    text = extract_page(summary(duct_depth_mm=0.4567), fingerprint_png=fingerprint, bscan_overlay_png=overlay)
    assert "<th>duct_depth_mm</th><td>0.4567</td>" in text


def test_extract_page_tolerates_a_summary_with_only_some_keys(pictures):
    fingerprint, overlay = pictures
    text = extract_page({"glands": 3}, fingerprint_png=fingerprint, bscan_overlay_png=overlay)
    assert "<h1>OCT extract: scan</h1>" in text and "<th>sweat glands (ducts) found</th><td>3</td>" in text
    assert len(image_uris(text)) == 2
    for absent in ("<h2>Model</h2>", "<h2>Time per stage</h2>", 'class="notes"', "Options of the run", "volume shape"):
        assert absent not in text, absent


def test_extract_page_refuses_a_summary_that_is_not_a_mapping(pictures):
    fingerprint, overlay = pictures
    with pytest.raises(InputError, match="mapping"):
        extract_page([("glands", 3)], fingerprint_png=fingerprint, bscan_overlay_png=overlay)


def test_extract_page_says_which_picture_is_missing(tmp_path, pictures):
    fingerprint, _ = pictures
    with pytest.raises(InputError, match="bscan_overlay.png"):
        extract_page(summary(), fingerprint_png=fingerprint, bscan_overlay_png=tmp_path / "gone" / "bscan_overlay.png")
