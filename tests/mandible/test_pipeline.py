import json

import numpy as np
import pytest
from PIL import Image

from medimg.common.dicom_series import read_ct_series
from medimg.common.errors import InputError, ModelError, OutputError
from medimg.common.nifti import read_nifti
from medimg.mandible.mesh import is_closed, largest_component, read_stl
from medimg.mandible.overlay import overlay_montage
from medimg.mandible.output_folders import output_dirs
from medimg.mandible.pipeline import mask_statistics, parse_formats, segment
from medimg.mandible.preprocess import IMAGENET_MEAN, IMAGENET_STD

from .conftest import SYNTH_SHAPE, mask_predictor


def test_true_mask_predictor_gives_the_true_mask_aligned_with_the_ct(synthetic_case, tmp_path):
    series = read_ct_series(synthetic_case / "dicom")
    truth, truth_affine = read_nifti(synthetic_case / "mandible_mask.nii.gz")
    np.testing.assert_allclose(truth_affine, series.affine_ras, atol=1e-4)  # synth's contract: aligned
    truth = truth != 0
    assert truth.shape == series.volume.shape == SYNTH_SHAPE and truth.any()

    out = tmp_path / "out"
    result = segment(synthetic_case / "dicom", out, predictor=mask_predictor(truth), input_size=SYNTH_SHAPE[1])
    assert [p.name for p in result.paths] == ["mask.nii.gz", "mandible.stl", "overlay.png", "report.json", "report.html"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in result.paths)

    mask, affine = read_nifti(out / "mask.nii.gz")
    expected = largest_component(truth)
    np.testing.assert_array_equal(mask != 0, expected)
    assert mask.dtype == np.uint8
    np.testing.assert_allclose(affine, series.affine_ras, atol=1e-4)

    report = json.loads((out / "report.json").read_text())
    slice_mm, row_mm, column_mm = series.spacing
    voxels = int(expected.sum())
    assert report["voxels"] == voxels
    assert report["volume_mm3"] == pytest.approx(voxels * slice_mm * row_mm * column_mm, rel=1e-9)
    holding = np.flatnonzero(expected.any(axis=(1, 2)))
    assert report["slice_range"] == [int(holding[0]), int(holding[-1])]
    assert report["slice_range_z_mm"] == pytest.approx([series.affine[2, 3] + k * series.affine[2, 2] for k in holding[[0, -1]]])
    assert report["shape"] == list(SYNTH_SHAPE) and report["series_uid"] == series.series_uid
    assert set(report["seconds_per_stage"]) >= {"read", "preprocess", "infer", "resample", "postprocess", "mesh"}

    vertices, faces = read_stl(out / "mandible.stl")
    assert is_closed(faces) and report["mesh"]["closed"]
    # The mesh lies in patient LPS mm on the mask's bounding box (smoothing moves it by under half a voxel).
    box = report["bounding_box_mm"]
    slack = 0.5 * np.abs(series.affine[:3, :3]).sum(axis=1)
    assert np.all(np.abs(vertices.min(axis=0) - box["min"]) < slack) and np.all(np.abs(vertices.max(axis=0) - box["max"]) < slack)

    with Image.open(out / "overlay.png") as png:
        montage = overlay_montage(series.volume, expected)
        assert (png.height, png.width) == montage.shape[:2] and png.mode == "RGB"


def test_bone_threshold_predictor_inside_a_box_and_formats_subset(synthetic_case, tmp_path):
    series = read_ct_series(synthetic_case / "dicom")
    low = 400.0 - 2000.0 / 2  # the default window's bottom

    def bone_in_box(batch):
        windowed = batch[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # undo the normalisation of channel 0
        hu = low + windowed * 2000.0
        inside = np.zeros(batch.shape[2:], bool)
        inside[32:, :] = True
        return np.where((hu > 300.0) & inside, 20.0, -20.0).astype(np.float32)[:, None]

    result = segment(synthetic_case / "dicom", tmp_path / "out", predictor=bone_in_box, input_size=64, formats="nifti,json")
    assert [p.name for p in result.paths] == ["mask.nii.gz", "report.json"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mask.nii.gz", "report.json"]
    box = np.zeros(SYNTH_SHAPE, bool)
    box[:, 32:, :] = True
    expected = largest_component((series.volume > 300.0) & box)
    mask, _ = read_nifti(tmp_path / "out" / "mask.nii.gz")
    np.testing.assert_array_equal(mask != 0, expected)
    assert result.report["voxels"] == int(expected.sum()) and result.report["outputs"] == ["mask.nii.gz", "report.json"]


def _nothing(batch):
    return np.full((len(batch), 1, 64, 64), -20.0, np.float32)


def test_empty_prediction_writes_mask_overlay_report_and_an_empty_seg_and_skips_the_mesh(synthetic_case, tmp_path, capsys):
    import pydicom

    out = tmp_path / "out"
    result = segment(synthetic_case / "dicom", out, predictor=_nothing, input_size=64, formats=("nifti", "stl", "png", "json", "seg"))
    assert [p.name for p in result.paths] == ["mask.nii.gz", "overlay.png", "report.json", "seg.dcm"]
    mask, _ = read_nifti(out / "mask.nii.gz")
    assert mask.shape == SYNTH_SHAPE and not mask.any()
    report = json.loads((out / "report.json").read_text())
    assert report["voxels"] == 0 and report["volume_mm3"] == 0.0
    assert report["slice_range"] is None and report["bounding_box_mm"] is None
    assert report["outputs"] == ["mask.nii.gz", "overlay.png", "report.json", "seg.dcm"]
    assert "mandible.stl not written: no mandible to mesh" in report["notes"]
    seg = pydicom.dcmread(out / "seg.dcm")  # "no mandible found" as a readable result: one empty frame per slice
    assert int(seg.NumberOfFrames) == SYNTH_SHAPE[0] and not seg.pixel_array.any()
    assert f"{synthetic_case / 'dicom'}: no voxel reached the threshold 0.5: the mask is empty; mandible.stl not written" in (
        capsys.readouterr().err.replace("\n", " ")
    )


def test_empty_prediction_with_only_stl_asked_leaves_no_folder(synthetic_case, tmp_path):
    result = segment(synthetic_case / "dicom", tmp_path / "out", predictor=_nothing, input_size=64, formats="stl")
    assert result.paths == [] and result.report["outputs"] == []
    nested = segment(synthetic_case / "dicom", tmp_path / "a" / "b" / "out", predictor=_nothing, input_size=64, formats="stl")
    assert nested.paths == []
    assert list(tmp_path.iterdir()) == []


def _tilted_copy(synthetic_case, folder, *, rows_per_slice: float = 0.5, header_tilt: float = 15.0):
    """The synthetic series with each slice's origin moved posterior (a gantry tilt as the positions show it)."""
    import pydicom

    for path in sorted((synthetic_case / "dicom").glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        k = int(dataset.InstanceNumber) - 1
        x, y, z = (float(v) for v in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y + k * rows_per_slice * float(dataset.PixelSpacing[0]), z]
        dataset.GantryDetectorTilt = header_tilt
        folder.mkdir(parents=True, exist_ok=True)
        dataset.save_as(folder / path.name)
    return folder


def test_seg_of_a_tilt_corrected_series_is_refused_before_any_work(synthetic_case, tmp_path, capsys):
    tilted = _tilted_copy(synthetic_case, tmp_path / "tilted")
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return np.full((len(batch), 1, 64, 64), -20.0, np.float32)

    capsys.readouterr()
    with pytest.raises(InputError) as caught:
        segment(tilted, tmp_path / "out", predictor=counting, input_size=64, correct_tilt=True, formats="nifti,seg")
    assert str(caught.value).startswith(
        "expected a series on its own slice grid for DICOM SEG, got a tilt-corrected volume (its mask does not lie on the "
        "source images' pixels); drop seg from --format"
    )
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["tilted"]
    tilt_lines = [line for line in capsys.readouterr().err.splitlines() if "tilt" in line.lower()]
    assert len(tilt_lines) == 1 and tilt_lines[0].startswith("Warning: gantry tilt ")
    assert "(GantryDetectorTilt 15 deg): slices shifted in-plane by up to 5.5 pixels" in tilt_lines[0]

    # Without seg the corrected volume segments, its NIfTI on the orthogonal grid.
    result = segment(tilted, tmp_path / "out", predictor=counting, input_size=64, correct_tilt=True, formats="nifti")
    assert [p.name for p in result.paths] == ["mask.nii.gz"] and sum(calls) == SYNTH_SHAPE[0]


def test_an_output_folder_inside_the_dicom_folder_is_refused(synthetic_case, tmp_path):
    import shutil

    dicom = tmp_path / "dicom"
    shutil.copytree(synthetic_case / "dicom", dicom)
    for out in (dicom, dicom / "results", dicom / "."):
        with pytest.raises(OutputError, match=rf"expected an output folder outside the DICOM folder '{dicom}', got '.*' inside it"):
            segment(dicom, out, predictor=_nothing, input_size=64)
    assert sorted(p.name for p in dicom.iterdir()) == sorted(p.name for p in (synthetic_case / "dicom").iterdir())


def test_a_failure_leaves_nothing_behind(synthetic_case, tmp_path):
    def broken(batch):
        raise InputError("expected a working network, got a broken one")

    with pytest.raises(InputError, match="broken one"):
        segment(synthetic_case / "dicom", tmp_path / "out", predictor=broken, input_size=64)
    assert list(tmp_path.iterdir()) == []

    def wrong_size(batch):
        return np.zeros((len(batch), 32, 32), np.float32)

    with pytest.raises(ModelError, match=r"expected logits of shape \(12, 1, 64, 64\), got \(12, 32, 32\)"):
        segment(synthetic_case / "dicom", tmp_path / "out", predictor=wrong_size, input_size=64)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="expected an output folder, got '.*file' which is a file"):
        segment(synthetic_case / "dicom", tmp_path / "file", predictor=wrong_size, input_size=64)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_mask_statistics_by_hand():
    # Columns 0.5 mm, rows 0.5 mm, slices 2 mm, axial LPS with the origin at (10, 20, -30).
    affine = np.array([[0.5, 0, 0, 10.0], [0, 0.5, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])
    mask = np.zeros((4, 5, 6), bool)
    mask[1, 2, 3] = mask[2, 3, 1] = True
    stats = mask_statistics(mask, affine)
    assert stats["voxels"] == 2 and stats["voxel_volume_mm3"] == 0.5
    assert stats["volume_mm3"] == 1.0
    assert stats["slice_range"] == [1, 2] and stats["slice_range_z_mm"] == [-28.0, -26.0]
    box = stats["bounding_box_mm"]
    # columns 1..3 -> x 10 + 0.5 * [0.5, 3.5]; rows 2..3 -> y 20 + 0.5 * [1.5, 3.5]; slices 1..2 -> z -30 + 2 * [0.5, 2.5]
    assert box["min"] == [10.25, 20.75, -29.0] and box["max"] == [11.75, 21.75, -25.0]
    assert box["size"] == [1.5, 1.0, 4.0] and box["space"] == "LPS"


def test_formats_and_output_folder_names(tmp_path):
    assert parse_formats("JSON, nifti") == ("nifti", "json")
    with pytest.raises(InputError, match="got 'obj'"):
        parse_formats("nifti,obj")
    one = output_dirs([tmp_path / "scan"], None)
    assert one == [tmp_path / "scan_mandible"]
    assert output_dirs([tmp_path / "scan"], tmp_path / "o") == [tmp_path / "o"]
    two = output_dirs([tmp_path / "c1" / "dicom", tmp_path / "c2" / "dicom", tmp_path / "x"], tmp_path / "o")
    assert [p.name for p in two] == ["c1_dicom_mandible", "c2_dicom_mandible", "x_mandible"]


def test_spec_series_segments_on_the_resampled_grid_and_the_report_says_how(tmp_path):
    from tests.common.test_dicom_series import spec_like_series

    spec_like_series(tmp_path / "spec")
    with pytest.raises(InputError) as caught:
        segment(tmp_path / "spec", tmp_path / "out", predictor=_nothing, input_size=64, correct_tilt=True, formats="nifti,seg")
    assert str(caught.value).startswith(
        "expected a series on its own slice grid for DICOM SEG, got a tilt-corrected and resampled from 2 spacing runs "
        "(variable slice spacing) volume (its mask does not lie on the source images' pixels)"
    )
    result = segment(tmp_path / "spec", tmp_path / "out", predictor=_nothing, input_size=64, correct_tilt=True, formats="nifti,json")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    fine, coarse = (step * np.cos(np.radians(18.5)) for step in (4.22, 7.38))
    assert report["spacing_runs"] == [
        {"spacing_mm": pytest.approx(fine), "first_slice": 0, "last_slice": 13},
        {"spacing_mm": pytest.approx(coarse), "first_slice": 14, "last_slice": 27},
    ]
    assert report["resampled_grid"] == {"spacing_mm": pytest.approx(fine), "slices": 37}
    assert report["tilt_deg"] == pytest.approx(18.5) and report["shape"][0] == 37
    assert report["options"]["resample"] is True and result.report["tilt_deg"] == report["tilt_deg"]
    mask, affine = read_nifti(tmp_path / "out" / "mask.nii.gz")
    assert mask.shape[0] == 37 and np.linalg.norm(affine[:3, 2]) == pytest.approx(fine, abs=1e-4)


def test_an_evenly_spaced_series_reports_one_run_and_no_grid(synthetic_case, tmp_path):
    result = segment(synthetic_case / "dicom", tmp_path / "out", predictor=_nothing, input_size=64, formats="json")
    slice_mm = read_ct_series(synthetic_case / "dicom").spacing[0]
    assert result.report["spacing_runs"] == [{"spacing_mm": pytest.approx(slice_mm), "first_slice": 0, "last_slice": SYNTH_SHAPE[0] - 1}]
    assert result.report["resampled_grid"] is None and result.report["tilt_deg"] == 0.0
