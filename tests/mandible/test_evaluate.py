import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.errors import InputError
from medimg.common.metrics import ConfusionCounts
from medimg.mandible.evaluate import case_name, evaluate, mask_scores, segmentation_scores

AFFINE = np.diag([-0.5, -0.5, 2.0, 1.0])


def hand_made_pair():
    """16 voxels; truth has 4, the prediction finds 3 of them and adds 1: TP 3, FP 1, FN 1, TN 11."""
    truth = np.zeros((2, 2, 4), np.uint8)
    truth[0, 0, :] = 1
    predicted = np.zeros_like(truth)
    predicted[0, 0, :3] = 1
    predicted[1, 1, 0] = 1
    return predicted, truth


def test_scores_of_a_hand_made_pair():
    predicted, truth = hand_made_pair()
    scores = mask_scores(predicted, truth)
    assert (scores["TP"], scores["FP"], scores["FN"], scores["TN"]) == (3, 1, 1, 11)
    assert scores["ACC"] == pytest.approx(14 / 16)
    assert scores["precision"] == pytest.approx(3 / 4) and scores["recall"] == pytest.approx(3 / 4)
    assert scores["IoU_mandible"] == pytest.approx(3 / 5)
    assert scores["IoU_background"] == pytest.approx(11 / 13)
    assert scores["MIoU"] == pytest.approx((3 / 5 + 11 / 13) / 2)
    assert scores["Dice"] == pytest.approx(6 / 8)


def test_paper_table_1_numbers_follow_from_counts():
    # MIoU is the mean of the two IoUs, so a perfect background and half the mandible give 0.75.
    scores = segmentation_scores(ConfusionCounts(tp=1, fp=0, fn=1, tn=98))
    assert scores["IoU_background"] == pytest.approx(98 / 99)
    assert scores["MIoU"] == pytest.approx((0.5 + 98 / 99) / 2)


def test_case_names_pair_segment_outputs_with_synth_folders(tmp_path):
    assert case_name(tmp_path / "case1_mandible" / "mask.nii.gz") == "case1"
    assert case_name(tmp_path / "case1" / "mandible_mask.nii.gz") == "case1"
    assert case_name(tmp_path / "case1_dicom_mandible") == "case1"
    assert case_name(tmp_path / "p7.nii.gz") == "p7"


def test_folders_of_cases_pair_by_name_and_pool_the_counts(tmp_path):
    from medimg.common.nifti import write_nifti

    predicted, truth = hand_made_pair()
    write_nifti(tmp_path / "pred" / "a_mandible" / "mask.nii.gz", predicted, AFFINE)
    write_nifti(tmp_path / "truth" / "a" / "mandible_mask.nii.gz", truth, AFFINE)
    write_nifti(tmp_path / "pred" / "b_mandible" / "mask.nii.gz", truth, AFFINE)  # perfect
    write_nifti(tmp_path / "truth" / "b" / "mandible_mask.nii.gz", truth, AFFINE)
    result = evaluate(tmp_path / "pred", tmp_path / "truth")
    assert [row["case"] for row in result["cases"]] == ["a", "b"]
    assert result["cases"][1]["MIoU"] == 1.0
    overall = result["overall"]
    assert overall["cases"] == 2
    assert (overall["TP"], overall["FP"], overall["FN"], overall["TN"]) == (7, 1, 1, 23)
    assert overall["MIoU"] == pytest.approx((7 / 9 + 23 / 25) / 2)

    runner = CliRunner()
    output = runner.invoke(app, ["mandible", "evaluate", str(tmp_path / "pred" / "a_mandible"), str(tmp_path / "truth" / "a"), "--json"])
    assert output.exit_code == 0, output.stderr
    printed = json.loads(output.stdout)
    assert printed["overall"]["MIoU"] == pytest.approx((3 / 5 + 11 / 13) / 2)
    csv = runner.invoke(app, ["mandible", "evaluate", str(tmp_path / "pred"), str(tmp_path / "truth"), "--csv"])
    lines = csv.stdout.splitlines()
    assert lines[0].startswith("case,ACC,precision,recall,IoU_mandible,IoU_background,MIoU,Dice")
    assert [line.split(",")[0] for line in lines[1:]] == ["a", "b", "overall"]


def test_shape_mismatch_and_unpaired_cases_are_errors(tmp_path):
    from medimg.common.nifti import write_nifti

    write_nifti(tmp_path / "p.nii.gz", np.zeros((2, 3, 4), np.uint8), AFFINE)
    write_nifti(tmp_path / "t.nii.gz", np.zeros((2, 3, 5), np.uint8), AFFINE)
    with pytest.raises(InputError, match=r"expected a predicted mask of shape \(2, 3, 5\) \(the true mask's\) for case 't', got \(2, 3, 4\)"):
        evaluate(tmp_path / "p.nii.gz", tmp_path / "t.nii.gz")
    write_nifti(tmp_path / "pred" / "x.nii.gz", np.zeros((2, 3, 4), np.uint8), AFFINE)
    write_nifti(tmp_path / "truth" / "y.nii.gz", np.zeros((2, 3, 4), np.uint8), AFFINE)
    with pytest.raises(InputError, match="expected a true mask for every predicted case .*got none for 'x'"):
        evaluate(tmp_path / "pred", tmp_path / "truth")
    result = CliRunner().invoke(app, ["mandible", "evaluate", str(tmp_path / "nope"), str(tmp_path / "truth")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: expected an existing mask file or folder")
