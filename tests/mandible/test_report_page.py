"""The ``mandible segment`` page: title, overlay, volume and mesh statistics, series, stage times, notes."""

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.images import write_png
from medimg.mandible.report_page import segment_page
from tests.common.test_html_report import decode_data_uri, image_uris


def report(**changes) -> dict:
    """A report as ``mandible segment`` writes it (``SegmentResult.report``)."""
    data = {
        "medimg_version": "0.1.0", "command": "mandible segment", "input": "ct/case <1>",
        "series_uid": "1.2.826.0.1.3680043", "shape": [48, 256, 256], "spacing_mm": [2.5, 0.9, 0.9],
        "spacing_runs": [{"spacing_mm": 2.5, "first_slice": 0, "last_slice": 47}], "resampled_grid": None, "tilt_deg": 0.0,
        "voxels": 45108, "voxel_volume_mm3": 2.025, "volume_mm3": 91343.7, "slice_range": [5, 42], "slice_range_z_mm": [-86.25, 6.25],
        "bounding_box_mm": {"space": "LPS", "min": [-56.7, -81.8, -87.5], "max": [58.5, 10.9, 7.5], "size": [115.2, 92.7, 95.0]},
        "threshold": 0.5, "largest_component_only": True, "window": {"level": 400, "width": 2000}, "input_size": 256,
        "coordinates": {"nifti": "RAS (affine_ras)"}, "outputs": ["mask.nii.gz", "mandible.stl", "overlay.png", "report.json"],
        "arch": "mandible-res-cbam-unet", "weights": "shipped:mandible-res-cbam-unet", "device": "cpu",
        "seconds_per_stage": {"read": 0.25, "infer": 1.5, "mesh": 0.125}, "options": {"smoothing": 10},
        "notes": ["kept the largest connected component; dropped 504 voxel(s) in smaller ones"],
        "mesh": {"vertices": 20536, "faces": 41072, "closed": True, "smoothing_iterations": 10},
    }
    data.update(changes)
    return data


@pytest.fixture
def overlay(tmp_path):
    return write_png(tmp_path / "overlay.png", np.full((772, 1030, 3), (255, 140, 0), np.uint8))


def test_segment_page_shows_title_volume_box_and_mesh(overlay):
    text = segment_page(report(), overlay_png=overlay)
    assert "<h1>Mandible segmentation: ct/case &lt;1&gt;</h1>" in text
    expected_rows = (
        ("volume (mL)", "91.34"), ("volume (mm\u00b3)", "91340"), ("voxels", "45108"), ("voxel volume (mm\u00b3)", "2.025"),
        ("slices holding mandible", "5 to 42"), ("their z (mm)", "-86.25 to 6.25"),
        ("bounding box size (LPS)", "115.2 \u00d7 92.7 \u00d7 95 mm"),
        ("bounding box from (LPS)", "-56.7 \u00d7 -81.8 \u00d7 -87.5 mm"),
        ("vertices", "20536"), ("triangles", "41072"), ("watertight (closed surface)", "yes"), ("smoothing iterations", "10"),
        ("volume shape (Z \u00d7 Y \u00d7 X)", "48 \u00d7 256 \u00d7 256"), ("voxel spacing", "2.5 \u00d7 0.9 \u00d7 0.9 mm"),
        ("gantry tilt (degrees)", "0"), ("resampled to", "not resampled (one slice spacing)"),
        ("probability threshold", "0.5"), ("CT window (HU)", "level 400, width 2000"), ("largest component only", "yes"),
        ("arch", "mandible-res-cbam-unet"), ("device", "cpu"),
    )
    for label, value in expected_rows:
        assert f"<th>{label}</th><td>{value}</td>" in text, label
    assert '<th class="number">first_slice</th>' in text  # the spacing runs as a small table
    assert "<th>outputs</th><td>mask.nii.gz, mandible.stl, overlay.png, report.json</td>" in text
    assert '<tr class="total"><th>total</th><td class="number">1.875</td>' in text
    assert "<li>kept the largest connected component; dropped 504 voxel(s) in smaller ones</li>" in text


def test_segment_page_inlines_the_overlay_within_its_edge(overlay):
    text = segment_page(report(), overlay_png=overlay)
    (uri,) = image_uris(text)
    image = decode_data_uri(uri)
    assert image.size == (1030, 772) and tuple(np.asarray(image.convert("RGB"))[10, 10]) == (255, 140, 0)
    assert "<figcaption>Axial CT slices spread over the mandible" in text


def test_the_overlay_may_be_given_as_the_montage_itself():
    montage = np.zeros((40, 60, 3), np.uint8)
    montage[:, 30:] = (255, 140, 0)
    (uri,) = image_uris(segment_page(report(), overlay_png=montage))
    assert np.array_equal(np.asarray(decode_data_uri(uri).convert("RGB")), montage)


def test_a_volume_in_ml_given_by_the_report_is_used_as_is(overlay):
    text = segment_page(report(volume_ml=91.0), overlay_png=overlay)
    assert "<th>volume (mL)</th><td>91</td>" in text


def test_an_empty_mask_without_mesh_or_overlay_still_renders():
    empty = report(voxels=0, volume_mm3=0.0, slice_range=None, slice_range_z_mm=None, bounding_box_mm=None,
                   notes=["no voxel reached the threshold 0.5: the mask is empty", "mandible.stl not written: no mandible to mesh"])
    del empty["mesh"]
    text = segment_page(empty, overlay_png=None)
    assert image_uris(text) == [] and "Surface mesh" not in text
    assert "<th>volume (mL)</th><td>0</td>" in text and "<th>bounding box</th><td>\u2014</td>" in text
    assert "<th>slices holding mandible</th><td>\u2014</td>" in text
    assert "<li>mandible.stl not written: no mandible to mesh</li>" in text


def test_a_report_with_only_some_keys_is_tolerated():
    text = segment_page({"input": "ct/x", "volume_mm3": 1500.0, "tilt_deg": 12.5, "resampled_grid": {"spacing_mm": 0.5, "slices": 90}},
                        overlay_png=None)
    assert "<h1>Mandible segmentation: ct/x</h1>" in text and "<th>volume (mL)</th><td>1.5</td>" in text
    assert "<th>gantry tilt (degrees)</th><td>12.5</td>" in text and "<th>slices</th><td>90</td>" in text
    for absent in ("Time per stage", "Surface mesh", 'class="notes"', "Other results", "<figure>"):
        assert absent not in text, absent
    assert "<h1>Mandible segmentation: series</h1>" in segment_page({}, overlay_png=None)


def test_results_it_does_not_know_are_shown_under_their_own_name():
    text = segment_page(report(condyle_distance_mm=98.765), overlay_png=None)
    assert "<h2>Other results</h2>" in text and "<th>condyle_distance_mm</th><td>98.77</td>" in text


def test_segment_page_refuses_a_report_that_is_not_a_mapping():
    with pytest.raises(InputError, match="mapping"):
        segment_page("report.json", overlay_png=None)
