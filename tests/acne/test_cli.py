import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.acne.pipeline import RECORD_COLUMNS
from medimg.cli import app

runner = CliRunner()


def grade(*args):
    return runner.invoke(app, ["--quiet", "acne", "grade", *map(str, args)])


def photo(height=128, width=160, seed=0):
    """Skin-toned noise, large enough not to be flagged as out of domain."""
    rng = np.random.default_rng(seed)
    return np.clip(np.array([210, 160, 130]) + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def image_zoo(tmp_path):
    """One file per format and mode the issue lists."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    rgb = Image.fromarray(photo())
    rgb.save(zoo / "rgb.jpg", quality=90)
    rgb.save(zoo / "rgb.png")
    rgb.save(zoo / "rgb.tif")
    rgb.save(zoo / "rgb.bmp")
    rgb.convert("L").save(zoo / "gray.png")
    Image.fromarray(np.dstack([photo(), np.full((128, 160), 128, np.uint8)])).save(zoo / "rgba.png")
    Image.fromarray((photo()[..., 0].astype(np.uint16) * 257)).save(zoo / "deep16.png")
    rgb.convert("CMYK").save(zoo / "cmyk.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.transpose(Image.Transpose.ROTATE_90).save(zoo / "exif_rotated.jpg", quality=90, exif=exif.tobytes())
    return zoo


def test_every_image_mode_is_graded(image_zoo, random_weights):
    from medimg.common.images import read_image

    assert Image.open(image_zoo / "deep16.png").mode.startswith("I;16")
    assert Image.open(image_zoo / "cmyk.jpg").mode == "CMYK"
    assert read_image(image_zoo / "exif_rotated.jpg").shape == (128, 160, 3)
    result = grade(image_zoo, "--weights", random_weights, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    names = sorted(os.path.basename(r["file"]) for r in records)
    assert names == sorted(p.name for p in image_zoo.iterdir())
    for record in records:
        assert list(record) == list(RECORD_COLUMNS)
        assert 1 <= record["count"] <= 65 and record["grade"] in range(4)
        assert sum(record[c] for c in RECORD_COLUMNS if c.startswith("p_")) == pytest.approx(1.0, abs=1e-5)


def test_table_and_csv_output(image_zoo, random_weights):
    files = [image_zoo / "rgb.png", image_zoo / "gray.png"]
    table = grade(*files, "--weights", random_weights, "--device", "cpu")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["file", "count", "grade", "grade_name", "p_mild", "p_moderate", "p_severe", "p_very_severe",
                                "count_grade", "count_grade_name", "cou2cls_grade", "ldl_count", "lesions", "in_domain"]
    assert len(lines) == 3 and lines[1].startswith(str(files[0]))
    as_csv = grade(*files, "--weights", random_weights, "--device", "cpu", "--csv")
    assert as_csv.exit_code == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert list(rows[0]) == list(RECORD_COLUMNS)


def test_thresholds_override_the_criterion(image_zoo, random_weights):
    from medimg.acne.labels import grade_of_count, parse_thresholds

    base = ["--weights", random_weights, "--device", "cpu", "--json", image_zoo / "rgb.png"]
    (hayashi,) = json.loads(grade(*base).stdout)
    (custom,) = json.loads(grade(*base, "--criterion", "report", "--thresholds", "0,1,2").stdout)
    assert custom["count"] == hayashi["count"] and custom["grade"] == hayashi["grade"]
    assert hayashi["count_grade"] == grade_of_count(hayashi["count"])
    assert custom["count_grade"] == grade_of_count(custom["count"], parse_thresholds("0,1,2")) == min(custom["count"], 3)


def test_an_unreadable_file_fails_the_batch_at_the_end(image_zoo, random_weights, tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = grade(image_zoo / "rgb.png", tmp_path / "corrupt.jpg", image_zoo / "rgb.bmp", "--weights", random_weights,
                   "--device", "cpu", "--csv")
    assert result.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [os.path.basename(r["file"]) for r in rows] == ["rgb.png", "rgb.bmp"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and errors[0].startswith("Error: ") and "corrupt.jpg" in errors[0]
    assert errors[1] == "Error: 1 of 3 images failed"  # the tally comes last


def test_the_run_report_tallies_grades_and_failures(image_zoo, random_weights, tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    report_path = tmp_path / "report.json"
    result = grade(image_zoo / "rgb.png", tmp_path / "corrupt.jpg", image_zoo / "rgb.bmp", "--weights", random_weights,
                   "--device", "cpu", "--json", "--report", report_path)
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    report = json.loads(report_path.read_text())
    assert report["command"] == "acne grade" and report["images"] == 3 and report["graded"] == 2
    assert report["grade_counts"] == {name: sum(r["grade_name"] == name for r in records) for name in ("mild", "moderate", "severe", "very severe")}
    assert report["mean_count"] == pytest.approx(np.mean([r["count"] for r in records]))
    assert [f["file"] for f in report["failures"]] == [str(tmp_path / "corrupt.jpg")]
    assert report["arch"] == "acne-fusion" and report["weights"] == str(random_weights) and report["device"] == "cpu"
    assert {"read", "load_model", "preprocess", "infer"} <= set(report["seconds_per_stage"])
    assert report["criterion"].startswith("hayashi: 0-5 mild")


def test_a_real_photo_nobody_here_made(random_weights):
    import skimage

    astronaut = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    result = grade(astronaut, "--weights", random_weights, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["file"] == astronaut and record["grade"] in range(4) and 1 <= record["count"] <= 65
    assert sum(record[c] for c in RECORD_COLUMNS if c.startswith("p_")) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("arguments", "message", "code"),
    [
        (["{tmp}/nothing.jpg"], "expected an existing image file, got '", 1),
        (["{tmp}/*.webp"], "expected images matching", 1),
        # a bad option value is a usage error: exit 2, as Typer's own
        (["{tmp}/a.png", "--model", "bogus"], "expected a model among fusion, lesion, resnet, vit, got 'bogus'", 2),
        (["{tmp}/a.png", "--thresholds", "5,3,9"], "expected thresholds 'a,b,c' with 0 <= a < b < c, got '5,3,9'", 2),
        (["{tmp}/a.png", "--criterion", "strict"], "expected a criterion among hayashi, report, got 'strict'", 2),
        (["{tmp}/a.png", "--model", "vit"], "expected --weights for 'acne-vit' (weights ship for acne-fusion", 1),
        (["{tmp}/a.png", "--weights", "{tmp}/none.safetensors"], "expected an existing weights file", 1),
    ],
)
def test_user_errors_are_one_line(tmp_path, arguments, message, code):
    Image.fromarray(photo()).save(tmp_path / "a.png")
    result = grade(*(a.format(tmp=tmp_path) for a in arguments), "--device", "cpu")
    assert result.exit_code == code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_prints_the_report(tiny_acne04, random_weights):
    base = ["--quiet", "acne", "evaluate", str(tiny_acne04), "--fold", "0", "--weights", str(random_weights), "--device", "cpu"]
    as_json = runner.invoke(app, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert (report["fold"], report["n_images"], report["weights"]) == (0, 4, str(random_weights))
    assert "images" not in report
    assert 0.0 <= report["grading"]["grade_head"]["AVE_ACC"] <= 1.0
    as_csv = runner.invoke(app, [*base, "--csv"])
    assert as_csv.exit_code == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 10  # (4 grades + average) x (grade head, counting)
    assert [r["table"] for r in rows] == ["grade_head"] * 5 + ["counting"] * 5
    assert rows[4]["class"] == "average" and float(rows[4]["AVE_ACC"]) == report["grading"]["grade_head"]["AVE_ACC"]
    table = runner.invoke(app, [*base])
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split()[:3] == ["table", "class", "grade"]


def test_synth_writes_an_acne04_folder_that_trains_and_evaluates(tmp_path):
    from medimg.acne.dataset import load_split

    result = runner.invoke(app, ["--quiet", "acne", "synth", str(tmp_path / "data"), "--n", "10", "--seed", "3", "--size", "64"])
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.splitlines()
    assert paths[0] == str(tmp_path / "data" / "JPEGImages")
    assert sorted(os.path.basename(p) for p in paths[1:]) == sorted(f"NNEW_{part}_{k}.txt" for part in ("trainval", "test") for k in range(5))
    for k in range(5):
        assert len(load_split(tmp_path / "data", k, "trainval")) + len(load_split(tmp_path / "data", k, "test")) == 10


def test_synth_needs_one_test_photo_per_fold(tmp_path):
    result = runner.invoke(app, ["acne", "synth", str(tmp_path / "data"), "--n", "4"])
    assert result.exit_code == 2 and result.stdout == ""
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "--n" in message and "greater than or equal to 5" in message
    assert not (tmp_path / "data").exists()


def test_thresholds_past_the_last_count_bin_warn_and_grade(image_zoo, random_weights):
    result = grade(image_zoo / "rgb.png", "--weights", random_weights, "--device", "cpu", "--json", "--thresholds", "5,20,65")
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["count_grade"] in (0, 1, 2)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == ["Warning: with thresholds 5,20,65 grade 3 needs more than 65 lesions: the count head (counts 1..65) can never give it"]


def test_the_criterion_help_says_report_and_the_grade_head_can_disagree():
    from medimg.acne.cli import CRITERION_HELP

    assert "With report the grade head (trained under Hayashi) and count_grade can disagree by design" in CRITERION_HELP


def test_model_info_lists_the_three_networks():
    result = runner.invoke(app, ["acne", "model-info", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["model"] for row in rows] == ["resnet", "vit", "fusion"]
    fusion = rows[2]
    assert fusion["params"] > max(rows[0]["params"], rows[1]["params"])
    assert fusion["GFLOPs"] == pytest.approx(2 * fusion["GMACs"], rel=1e-3)


REAL_PHOTOS = Path(__file__).parents[1] / "data" / "acne04_photos"


def test_train_lesion_then_evaluate_reports_both_counts(tmp_path):
    from medimg.common.models import load_model

    config = '{"widths": [4, 8, 8, 8], "decoder_width": 8}'
    trained = runner.invoke(app, ["--quiet", "acne", "train", str(REAL_PHOTOS), "--model", "lesion", "-o", str(tmp_path / "run"),
                                  "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--config", config, "--device", "cpu",
                                  "--size", "96", "--no-validate"])
    assert trained.exit_code == 0, trained.stderr
    weights, log, curves = trained.stdout.splitlines()
    assert weights.endswith("weights.safetensors") and log.endswith("train_log.csv")
    # --no-validate: the log holds the loss but no score of the test photos
    header = Path(log).read_text().splitlines()[0].split(",")
    assert "loss" in header and not any(name.startswith(("det", "ldl_")) for name in header)
    assert load_model(weights).preprocessing["input_size"] == 96
    evaluated = runner.invoke(app, ["--quiet", "acne", "evaluate", str(REAL_PHOTOS), "--weights", weights, "--json", "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["n_images"] == 4 and 0.0 <= report["grade_head_acc"] <= 1.0
    # the shipped rule answers with the mean of the two counts, which cannot be further off than
    # their average error plus the half count of rounding (triangle inequality)
    assert report["detected_count_mae"] >= 0.0 and report["mean_count_mae"] == report["counting"]["MAE"]
    assert report["mean_count_mae"] <= (report["ldl_count_mae"] + report["detected_count_mae"]) / 2 + 0.5


def test_lesion_only_options_are_refused_for_ldl_networks_and_size_off_multiples_of_32(tmp_path):
    for model, options, message in (("resnet", ["--size", "96"], "--size applies to the lesion network only"),
                                    ("resnet", ["--no-validate"], "Invalid value for --no-validate: for the lesion network only"),
                                    ("lesion", ["--size", "100"], "expected an input size that is a multiple of 32, at least 64, got 100")):
        result = runner.invoke(app, ["acne", "train", str(REAL_PHOTOS), "--model", model, *options, "-o", str(tmp_path / model)])
        assert result.exit_code != 0 and result.stdout == ""
        assert message in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / model).exists()


def test_overlay_with_a_network_without_detector_is_a_clean_error(tmp_path, random_weights):
    result = grade(REAL_PHOTOS / "JPEGImages" / "levle0_110_v2.jpg", "--weights", random_weights, "--overlay", tmp_path / "marked")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: expected a network with a lesion detector for --overlay")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "marked").exists()
