"""The shipped fusion weights on photos nobody trained on: known lesion counts, and a real photo."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from medimg.acne.synth import synth_skin_photo
from medimg.cli import app

runner = CliRunner()


def test_shipped_weights_count_fresh_synthetic_photos(tmp_path):
    # Seeds 900+ are outside the training set (seed 0 drew every training photo).
    truth = {}
    for index, lesions in enumerate((3, 12, 35, 60)):
        path = tmp_path / f"photo{lesions}.png"
        Image.fromarray(synth_skin_photo(lesions, rng=np.random.default_rng(900 + index), size=(256, 256))).save(path)
        truth[str(path)] = lesions
    result = runner.invoke(app, ["--quiet", "acne", "grade", str(tmp_path), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    records = {record["file"]: record for record in json.loads(result.stdout)}
    assert set(records) == set(truth)
    for path, lesions in truth.items():
        record = records[path]
        assert abs(record["count"] - lesions) <= max(4, lesions // 4), (lesions, record["count"])
    grades = [records[path]["count_grade"] for path in sorted(truth, key=truth.get)]
    assert grades == [0, 1, 2, 3]


def test_shipped_weights_grade_a_real_photo():
    import skimage.data

    astronaut = Path(skimage.data.data_dir) / "astronaut.png"
    result = runner.invoke(app, ["--quiet", "acne", "grade", str(astronaut), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert 1 <= record["count"] <= 65 and record["grade"] in range(4)
    probabilities = [record[key] for key in ("p_mild", "p_moderate", "p_severe", "p_very_severe")]
    assert abs(sum(probabilities) - 1.0) < 1e-5
