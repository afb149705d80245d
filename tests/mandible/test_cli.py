import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common import weights as weights_module
from medimg.common.dicom_series import read_ct_series
from medimg.common.nifti import read_nifti

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [*map(str, args)])


def leftovers(folder):
    """Hidden temporary folders a failed run might leave behind."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_segment_real_single_slice_ct_with_a_random_network(ct_small_dir, tiny_weights):
    result = run("--quiet", "mandible", "segment", ct_small_dir, "--weights", tiny_weights, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    out = ct_small_dir.parent / "ct_small_mandible"
    names = [line.rsplit("/", 1)[1] for line in result.stdout.splitlines()]
    assert result.stdout.splitlines()[0] == str(out / "mask.nii.gz")
    report = json.loads((out / "report.json").read_text())
    mesh = ["mandible.stl"] if report["voxels"] else []  # an untrained network may find nothing
    assert names == ["mask.nii.gz", *mesh, "overlay.png", "report.json", "report.html"]
    mask, affine = read_nifti(out / "mask.nii.gz")
    series = read_ct_series(ct_small_dir)
    assert mask.shape == series.volume.shape == (1, 128, 128)
    np.testing.assert_allclose(affine, series.affine_ras, atol=1e-4)
    assert report["shape"] == [1, 128, 128] and report["input_size"] == 64 and report["weights"] == str(tiny_weights)
    assert report["voxels"] == int(mask.sum())
    assert "single slice: slice spacing taken from SliceThickness (5 mm)" in report["notes"]


def test_segment_real_five_slice_series_picks_the_ct_over_the_scouts(ct5n_dir, tiny_weights, tmp_path):
    out = tmp_path / "out"
    result = run("--quiet", "mandible", "segment", ct5n_dir, "-o", out, "--weights", tiny_weights, "--device", "cpu",
                 "--format", "nifti,json", "--threshold", "0.0001", "--all-components")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "mask.nii.gz"), str(out / "report.json")]
    assert sorted(p.name for p in out.iterdir()) == ["mask.nii.gz", "report.json"]
    mask, _ = read_nifti(out / "mask.nii.gz")
    assert mask.shape == (5, 16, 16)
    report = json.loads((out / "report.json").read_text())
    assert report["spacing_mm"] == [2.5, 0.488281, 0.488281]
    assert report["voxels"] == int(mask.sum())
    assert report["voxels"] > 0  # a threshold this low keeps most of the random network's voxels
    assert report["volume_mm3"] == pytest.approx(report["voxels"] * 2.5 * 0.488281 * 0.488281, rel=1e-9)


def test_series_with_a_gap_is_one_error_line_and_nothing_written(ct2_gap_dir, tiny_weights):
    result = run("mandible", "segment", ct2_gap_dir, "--weights", tiny_weights, "--device", "cpu")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: expected evenly spaced slices in series") and "gap of 202.50 mm" in lines[-1]
    assert sum(line.startswith("Error:") for line in lines) == 1
    assert not (ct2_gap_dir.parent / "ct2_mandible").exists()
    assert leftovers(ct2_gap_dir.parent) == []


def test_a_bad_folder_in_a_batch_is_reported_and_the_good_one_written(ct_small_dir, ct2_gap_dir, tiny_weights, tmp_path):
    out = tmp_path / "batch"
    result = run("--quiet", "mandible", "segment", ct2_gap_dir, ct_small_dir, "-o", out, "--weights", tiny_weights,
                 "--device", "cpu", "--format", "nifti")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [str(out / "ct_small_mandible" / "mask.nii.gz")]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2 and errors[0].startswith(f"Error: {ct2_gap_dir}: expected evenly spaced slices")
    assert errors[1] == "Error: 1 of 2 series failed"
    assert sorted(p.name for p in out.iterdir()) == ["ct_small_mandible"]


def test_missing_weights_say_how_to_get_them(ct_small_dir, monkeypatch):
    monkeypatch.setattr(weights_module, "SHIPPED", {})
    result = run("--quiet", "mandible", "segment", ct_small_dir, "--device", "cpu")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "Error: expected shipped weights among (none), got 'mandible-res-cbam-unet'; or pass --weights "
        "(train them with 'medimg mandible train')\n"
    )
    assert not (ct_small_dir.parent / "ct_small_mandible").exists()


def test_unknown_arch_is_refused_before_the_folder_is_read(tmp_path):
    for command in (["segment"], ["infer"]):
        result = run("mandible", *command, tmp_path / "no-such-folder", "--arch", "foo", "--device", "cpu")
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr == "Error: expected a model among cbam-unet, res-cbam-unet, res-unet, unet, got 'foo'\n"
    assert list(tmp_path.iterdir()) == []


def test_one_file_of_a_series_and_an_output_inside_the_dicom_folder_are_refused(synthetic_case, tmp_path):
    dicom = synthetic_case / "dicom"
    before = sorted(p.name for p in dicom.iterdir())
    one = run("mandible", "segment", dicom / "IM0001.dcm", "-o", tmp_path / "out", "--format", "nifti")
    assert one.exit_code == 1 and one.stdout == ""
    assert one.stderr.startswith("Error: expected a DICOM folder (a single file only when it is the whole series), got 'IM0001.dcm'")
    assert f"holds {len(before)} slices of that series" in one.stderr and "pass the folder instead" in one.stderr
    for command in (["segment", dicom, "-o", dicom / "masks"], ["volume", dicom, "-o", dicom]):
        inside = run("mandible", *command)
        assert inside.exit_code == 1 and inside.stdout == ""
        assert inside.stderr.startswith(f"Error: expected an output folder outside the DICOM folder '{dicom}', got ")
    assert sorted(p.name for p in dicom.iterdir()) == before and list(tmp_path.iterdir()) == []


def test_evaluate_refuses_json_and_csv_together(synthetic_case):
    truth = synthetic_case / "mandible_mask.nii.gz"
    result = run("mandible", "evaluate", truth, truth, "--json", "--csv")
    assert result.exit_code == 2 and result.stdout == ""
    assert "give --json or --csv, not both" in result.stderr
    csv = run("mandible", "evaluate", truth, truth, "--csv")
    assert csv.exit_code == 0 and csv.stdout.startswith("case,")


def test_bad_format_and_threshold_are_refused(ct_small_dir, tiny_weights):
    result = run("mandible", "segment", ct_small_dir, "--weights", tiny_weights, "--format", "nifti,obj")
    assert result.exit_code == 2  # a bad option value
    assert result.stderr.strip() == "Error: expected --format as a comma-separated subset of nifti,stl,png,json,seg,html, got 'obj'"


def test_model_info_lists_the_four_variants():
    result = run("mandible", "model-info", "--width", "0.125", "--size", "64", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["arch"] for row in rows] == ["unet", "res-unet", "cbam-unet", "res-cbam-unet"]
    assert all(row["params"] > 0 for row in rows)


def test_model_info_cbam_kernel_changes_only_the_cbam_variants():
    seven, three = (json.loads(run("mandible", "model-info", "--width", "0.125", "--size", "64", "--json", *extra).stdout)
                    for extra in ((), ("--cbam-kernel", "3")))
    # Five Up-CBAM modules, each with a bias-free 2 -> 1 channel k x k spatial-attention conv: 5 * 2 * (49 - 9).
    assert [a["params"] - b["params"] for a, b in zip(seven, three)] == [0, 0, 400, 400]


def test_synth_then_segment_then_evaluate(tmp_path, tiny_weights):
    synth = run("--quiet", "mandible", "synth", tmp_path / "head", "--seed", "2", "--shape", "8,64,64")
    assert synth.exit_code == 0, synth.stderr
    printed = synth.stdout.splitlines()
    assert printed == [str(tmp_path / "head" / name) for name in ("dicom", "params.json", "mandible_mask.nii.gz")]
    segment = run("--quiet", "mandible", "segment", tmp_path / "head" / "dicom", "--weights", tiny_weights, "--device", "cpu",
                  "--format", "nifti")
    assert segment.exit_code == 0, segment.stderr
    assert segment.stdout.strip() == str(tmp_path / "head" / "dicom_mandible" / "mask.nii.gz")
    evaluate = run("mandible", "evaluate", tmp_path / "head" / "dicom_mandible", tmp_path / "head", "--json")
    assert evaluate.exit_code == 0, evaluate.stderr
    overall = json.loads(evaluate.stdout)["overall"]
    assert overall["TP"] + overall["FP"] + overall["FN"] + overall["TN"] == 8 * 64 * 64
    truth, _ = read_nifti(tmp_path / "head" / "mandible_mask.nii.gz")
    assert overall["TP"] + overall["FN"] == int(truth.sum())


def test_volume_of_the_spec_series_is_written_on_the_resampled_grid(tmp_path):
    from tests.common.test_dicom_series import spec_like_series

    uid, _ = spec_like_series(tmp_path / "spec")
    result = run("--quiet", "mandible", "volume", tmp_path / "spec", "-o", tmp_path / "out", "--correct-tilt")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "out" / "ct.nii.gz")]
    assert "Warning: variable slice spacing, 2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm (slices 14-27)" in result.stderr
    hu, affine = read_nifti(tmp_path / "out" / "ct.nii.gz")
    fine = 4.22 * np.cos(np.radians(18.5))
    assert hu.shape == (37, 64, 3)  # (slice, row, column) as read_ct_series gives it
    # RAS: the slice axis is the tilted normal (0, sin, cos) in LPS, y flipped, 4.00 mm long.
    np.testing.assert_allclose(affine[:3, 2], np.array([0.0, -np.sin(np.radians(18.5)), np.cos(np.radians(18.5))]) * fine, atol=1e-4)
    np.testing.assert_allclose(hu[1, 0], 10.0 + np.arange(3), atol=1e-3)  # grid slice 1 lies on source slice 1

    refused = run("mandible", "volume", tmp_path / "spec", "-o", tmp_path / "refused", "--correct-tilt", "--no-resample")
    assert refused.exit_code == 1 and refused.stdout == ""
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [line for line in refused.stderr.splitlines() if line.strip()][-1:]
    assert len(errors) == 1 and errors[0].startswith(
        f"Error: expected evenly spaced slices in series {uid}, got 2 spacing runs: 4.00 mm (slices 0-13) and 7.00 mm "
    ) and "rerun without --no-resample" in errors[0]
    assert not (tmp_path / "refused").exists()


def test_a_ct_nifti_with_nan_or_without_air_is_refused_in_one_line(tmp_path):
    import numpy as np

    from medimg.common.nifti import write_nifti

    ct = np.full((4, 32, 32), -1000.0, np.float32)
    ct[:, 8:24, 8:24] = 40.0
    ct[2, 5, 7] = np.nan
    write_nifti(tmp_path / "nan.nii.gz", ct, np.diag([-1.0, -1.0, 1.0, 1.0]))
    mask = np.zeros((4, 32, 32), np.float32)
    mask[:, 8:24, 8:24] = 1.0
    write_nifti(tmp_path / "mask.nii.gz", mask, np.diag([-1.0, -1.0, 1.0, 1.0]))
    for name, message in (("nan.nii.gz", "Error: expected finite CT values (HU), got 1 NaN or infinite voxel(s), the first at (z, y, x) = (2, 5, 7)"),
                          ("mask.nii.gz", "Error: expected a CT in Hounsfield units (air near -1000 HU somewhere, at least below -200), "
                                          "got values 0..1 in 'mask.nii.gz'")):
        result = run("mandible", "infer", tmp_path / name, "-o", tmp_path / "out", "--device", "cpu")
        assert result.exit_code == 1 and result.stdout == "", result.stderr
        assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()
