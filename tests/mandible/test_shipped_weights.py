"""The shipped weights segment a synthetic head they never saw, far better than thresholding."""

import json

import numpy as np
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.nifti import read_nifti
from medimg.mandible.evaluate import mask_scores
from medimg.mandible.synth import threshold_baseline, write_synthetic_series

runner = CliRunner()


def test_shipped_weights_segment_a_held_out_head(tmp_path):
    # Seed 104 is outside the training seeds (1-10); 16 slices keep the test fast.
    write_synthetic_series(tmp_path / "head", seed=104, shape=(16, 256, 256))
    result = runner.invoke(app, ["--quiet", "mandible", "segment", str(tmp_path / "head" / "dicom"), "-o", str(tmp_path / "out"),
                                 "--format", "nifti,json", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    predicted, _ = read_nifti(tmp_path / "out" / "mask.nii.gz")
    truth, _ = read_nifti(tmp_path / "head" / "mandible_mask.nii.gz")
    network = mask_scores(predicted, truth)
    assert network["Dice"] > 0.85 and network["MIoU"] > 0.85
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["weights"] == "shipped:mandible-res-cbam-unet"
    assert report["voxels"] == int(np.count_nonzero(predicted))

    from medimg.common.dicom_series import read_ct_series

    baseline = mask_scores(threshold_baseline(read_ct_series(tmp_path / "head" / "dicom").volume), truth)
    assert network["Dice"] > baseline["Dice"] + 0.3


def test_shipped_weights_segment_a_head_from_the_held_out_scanner_family(tmp_path):
    # The held-out family: calibration offset, kernel, slice thickness, pixel size, noise and beam
    # hardening outside every range the weights were trained on.
    write_synthetic_series(tmp_path / "head", seed=204, style="held-out")
    result = runner.invoke(app, ["--quiet", "mandible", "segment", str(tmp_path / "head" / "dicom"), "-o", str(tmp_path / "out"),
                                 "--format", "nifti", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    predicted, _ = read_nifti(tmp_path / "out" / "mask.nii.gz")
    truth, _ = read_nifti(tmp_path / "head" / "mandible_mask.nii.gz")
    assert mask_scores(predicted, truth)["Dice"] > 0.85
