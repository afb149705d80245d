"""The stage subcommands (volume, infer, mask, mesh, overlay) chained through files, against ``segment``."""

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.dicom_series import read_ct_series
from medimg.common.nifti import read_nifti, write_nifti
from medimg.mandible.mesh import is_closed, largest_component, mask_to_mesh, read_stl
from medimg.mandible.pipeline import segment
from medimg.mandible.stages import run_infer, run_mask

from .conftest import SYNTH_SHAPE, mask_predictor

runner = CliRunner()

# Voxel (i, j, k) -> RAS mm: 0.5 mm columns and rows, 2 mm slices, origin (10, 20, -30) RAS.
HAND_AFFINE_RAS = np.array([[-0.5, 0, 0, 10.0], [0, -0.5, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])


def run(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


def ok(*args) -> list[str]:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def error_line(*args, code: int = 1) -> str:
    result = run(*args)
    assert result.exit_code == code and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_stage_chain_equals_segment_byte_for_byte(tmp_path, tiny_weights):
    head = tmp_path / "head"
    ok("mandible", "synth", head, "--seed", "2", "--shape", "8,64,64")
    dicom = head / "dicom"
    work = head / "dicom_mandible"  # the default folder of a DICOM input, where segment would write too
    network = ["--weights", tiny_weights, "--device", "cpu", "--batch-size", "3"]

    assert ok("mandible", "volume", dicom) == [str(work / "ct.nii.gz")]
    series = read_ct_series(dicom)
    ct, ct_affine = read_nifti(work / "ct.nii.gz")
    assert ct.dtype == np.float32 and ct.shape == (8, 64, 64)
    np.testing.assert_array_equal(ct, series.volume)  # exactly the HU segment works on
    np.testing.assert_allclose(ct_affine, series.affine_ras, atol=1e-4)

    assert ok("mandible", "infer", work / "ct.nii.gz", *network) == [str(work / "probability.nii.gz")]
    probability, probability_affine = read_nifti(work / "probability.nii.gz")
    assert probability.dtype == np.float32 and probability.shape == (8, 64, 64)
    assert 0.0 <= probability.min() < probability.max() <= 1.0
    np.testing.assert_array_equal(probability_affine, ct_affine)
    # The DICOM folder itself is an equally good input: same HU, same grid, same bytes.
    direct = ok("mandible", "infer", dicom, "-o", tmp_path / "direct", *network)
    assert direct == [str(tmp_path / "direct" / "probability.nii.gz")]
    assert (tmp_path / "direct" / "probability.nii.gz").read_bytes() == (work / "probability.nii.gz").read_bytes()

    # An untrained network: pick a threshold that keeps about a tenth of the head.
    threshold = f"{float(np.quantile(probability, 0.9)):.4f}"
    assert ok("mandible", "mask", work / "probability.nii.gz", "--threshold", threshold) == [str(work / "mask.nii.gz")]
    assert ok("mandible", "mesh", work / "mask.nii.gz") == [str(work / "mandible.stl")]
    assert ok("mandible", "overlay", work / "ct.nii.gz", work / "mask.nii.gz") == [str(work / "overlay.png")]

    whole = tmp_path / "segment"
    printed = ok("mandible", "segment", dicom, "-o", whole, "--threshold", threshold, *network)
    assert printed == [str(whole / name) for name in ("mask.nii.gz", "mandible.stl", "overlay.png", "report.json", "report.html")]
    for name in ("mask.nii.gz", "mandible.stl", "overlay.png"):
        assert (work / name).read_bytes() == (whole / name).read_bytes(), name

    mask, _ = read_nifti(work / "mask.nii.gz")
    report = json.loads((whole / "report.json").read_text())
    assert mask.dtype == np.uint8 and report["voxels"] == int(mask.sum()) > 0
    vertices, faces = read_stl(work / "mandible.stl")
    assert is_closed(faces) and len(faces) == report["mesh"]["faces"]
    assert sorted(p.name for p in work.iterdir()) == ["ct.nii.gz", "mandible.stl", "mask.nii.gz", "overlay.png", "probability.nii.gz"]


def test_in_process_stages_equal_segment_on_the_true_mandible(synthetic_case, tmp_path):
    truth, _ = read_nifti(synthetic_case / "mandible_mask.nii.gz")
    truth = truth != 0
    probability = run_infer(synthetic_case / "dicom", tmp_path / "chain", predictor=mask_predictor(truth), input_size=SYNTH_SHAPE[1])
    chained = run_mask(probability, tmp_path / "chain")
    segment(synthetic_case / "dicom", tmp_path / "whole", predictor=mask_predictor(truth), input_size=SYNTH_SHAPE[1], formats="nifti")
    assert chained.read_bytes() == (tmp_path / "whole" / "mask.nii.gz").read_bytes()
    assert read_nifti(chained)[0].sum() == largest_component(truth).sum() > 0  # the true mandible, not a speck


def test_mask_threshold_and_largest_component_by_hand(tmp_path):
    probability = np.zeros((3, 8, 8), np.float32)
    probability[1, 1:3, 1:3] = 0.5  # 4 voxels exactly at the threshold (>=), 4/9 of the largest: kept
    probability[1, 5:8, 5:8] = 0.9  # 9 voxels: the largest component
    probability[2, 0, 4:6] = 0.8  # 2 voxels, 2/9 of the largest (under a quarter): dropped
    probability[0, 0, 7] = 0.49  # below
    write_nifti(tmp_path / "probability.nii.gz", probability, HAND_AFFINE_RAS)

    assert ok("mandible", "mask", tmp_path / "probability.nii.gz") == [str(tmp_path / "mask.nii.gz")]
    mask, affine = read_nifti(tmp_path / "mask.nii.gz")
    assert mask.dtype == np.uint8 and mask.sum() == 13 and mask[1, 5:8, 5:8].all() and mask[1, 1:3, 1:3].all()
    np.testing.assert_array_equal(affine, HAND_AFFINE_RAS)

    ok("mandible", "mask", tmp_path / "probability.nii.gz", "--all-components", "-o", tmp_path / "all")
    every, _ = read_nifti(tmp_path / "all" / "mask.nii.gz")
    assert every.sum() == 15 and every[2, 0, 4:6].all()


def test_mesh_is_in_lps_millimetres(tmp_path):
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1:3, 3:7, 2:6] = 1  # slices 1..2, rows 3..6, columns 2..5
    write_nifti(tmp_path / "mask.nii.gz", mask, HAND_AFFINE_RAS)
    assert ok("mandible", "mesh", tmp_path / "mask.nii.gz", "--smoothing", "0") == [str(tmp_path / "mandible.stl")]
    vertices, faces = read_stl(tmp_path / "mandible.stl")
    assert is_closed(faces)
    # Unsmoothed, the surface runs through the half-voxel boundaries: columns 1.5..5.5, rows 2.5..6.5,
    # slices 0.5..2.5. LPS = RAS with x and y negated: x = -10 + 0.5 i, y = -20 + 0.5 j, z = -30 + 2 k.
    np.testing.assert_allclose(vertices.min(axis=0), [-9.25, -18.75, -29.0], atol=1e-5)
    np.testing.assert_allclose(vertices.max(axis=0), [-7.25, -16.75, -25.0], atol=1e-5)
    expected_vertices, expected_faces = mask_to_mesh(mask.astype(bool), np.diag([-1.0, -1, 1, 1]) @ HAND_AFFINE_RAS,
                                                     smoothing_iterations=0, largest_component=False)
    np.testing.assert_array_equal(vertices[faces], expected_vertices[expected_faces])


def test_volume_lists_the_series_and_reads_the_chosen_one(tmp_path):
    folder = tmp_path / "study"
    for seed in (2, 5):
        ok("mandible", "synth", tmp_path / f"head{seed}", "--seed", seed, "--shape", "8,32,32")
        shutil.copytree(tmp_path / f"head{seed}" / "dicom", folder / f"s{seed}")
    rows = json.loads("\n".join(ok("mandible", "volume", folder, "--list", "--json")))
    assert len(rows) == 2 and {row["images"] for row in rows} == {8} and {row["modality"] for row in rows} == {"CT"}
    table = ok("mandible", "volume", folder, "--list")
    assert table[0].split() == ["series_number", "modality", "images", "localizers", "description", "series_uid"]
    assert len(table) == 3 and all(row["series_uid"] in "\n".join(table) for row in rows)

    line = error_line("mandible", "volume", folder)
    assert line.startswith("Error: expected") and all(row["series_uid"] in line for row in rows)
    assert not (tmp_path / "study_mandible").exists()

    chosen = rows[1]["series_uid"]
    assert ok("mandible", "volume", folder, "--series", chosen) == [str(tmp_path / "study_mandible" / "ct.nii.gz")]
    ct, _ = read_nifti(tmp_path / "study_mandible" / "ct.nii.gz")
    np.testing.assert_array_equal(ct, read_ct_series(folder, series_uid=chosen).volume)
    assert error_line("mandible", "volume", folder, "--json", code=2) == "Error: expected --json together with --list, got --json alone"


def test_stage_errors_are_one_line_and_write_nothing(synthetic_case, tmp_path):
    work = tmp_path / "work"
    ok("mandible", "volume", synthetic_case / "dicom", "-o", work)
    ct = work / "ct.nii.gz"
    empty = np.zeros(SYNTH_SHAPE, np.uint8)

    write_nifti(tmp_path / "small.nii.gz", np.ones((2, 64, 64), np.uint8), read_nifti(ct)[1])
    line = error_line("mandible", "overlay", ct, tmp_path / "small.nii.gz")
    assert line == "Error: expected a mask of the CT's shape (12, 64, 64), got (2, 64, 64) in 'small.nii.gz'"
    shifted = read_nifti(ct)[1] + np.array([[0, 0, 0, 2.5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    write_nifti(tmp_path / "shifted.nii.gz", empty, shifted)
    line = error_line("mandible", "overlay", ct, tmp_path / "shifted.nii.gz")
    assert line == "Error: expected a mask on the CT's grid (same affine as 'ct.nii.gz'), got an affine 2.5 mm away in 'shifted.nii.gz'"

    write_nifti(tmp_path / "empty.nii.gz", empty, read_nifti(ct)[1])
    assert error_line("mandible", "mesh", tmp_path / "empty.nii.gz") == (
        "Error: expected a mask with at least one mandible voxel, got an empty mask in 'empty.nii.gz'")
    write_nifti(tmp_path / "fraction.nii.gz", np.full(SYNTH_SHAPE, 0.7, np.float32), read_nifti(ct)[1])
    assert "expected a 0/1 mask" in error_line("mandible", "mesh", tmp_path / "fraction.nii.gz")
    write_nifti(tmp_path / "hu.nii.gz", np.full(SYNTH_SHAPE, 40.0, np.float32), read_nifti(ct)[1])
    assert error_line("mandible", "mask", tmp_path / "hu.nii.gz") == "Error: expected probabilities in [0, 1], got 40..40 in 'hu.nii.gz'"
    assert error_line("mandible", "mask", tmp_path / "empty.nii.gz").startswith("Error: expected float probabilities")
    assert error_line("mandible", "infer", ct, "--correct-tilt", code=2) == (
        "Error: expected --series and --correct-tilt only with a DICOM folder, got the file 'ct.nii.gz'")
    assert "does not exist" in error_line("mandible", "mesh", tmp_path / "missing.nii.gz")

    assert sorted(p.name for p in work.iterdir()) == ["ct.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".gz") == ["work"]  # no stl, png or temporary
