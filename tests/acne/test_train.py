import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medimg.acne.labels import HAYASHI, N_COUNT_BINS, cou2cls_matrix
from medimg.acne.models import INPUT_PREPROCESSING
from medimg.acne.train import label_targets, parse_model_config, train
from medimg.common.errors import InputError
from medimg.common.models import load_model
from medimg.common.tables import read_csv
from medimg.common.weights import load_weights

from .conftest import TINY_CONFIG

runner = CliRunner()


def test_targets_are_genld_and_its_cou2cls():
    count_targets, grade_targets = label_targets(np.array([21, 1, 80]), sigma=3.0)
    assert count_targets.shape == (3, N_COUNT_BINS) and grade_targets.shape == (3, 4)
    assert count_targets.argmax(axis=1).tolist() == [20, 0, 64]  # 80 is clipped into the last bin
    np.testing.assert_allclose(count_targets.sum(axis=1), 1.0, atol=1e-6)
    k = np.arange(N_COUNT_BINS)
    gaussian = np.exp(-((k - 20) ** 2) / 18.0)
    np.testing.assert_allclose(count_targets[0], gaussian / gaussian.sum(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(grade_targets, count_targets @ cou2cls_matrix(HAYASHI), atol=1e-6)
    # count 21 sits on the 20/21 boundary: bins 6..20 (moderate) hold just under half its mass
    assert grade_targets[0].argmax() == 2 and 0.4 < grade_targets[0, 1] < 0.5


def tiny_training(data, run, **overrides):
    options = dict(fold=0, model="fusion", model_config=TINY_CONFIG, epochs=1, steps_per_epoch=1, batch_size=2, device="cpu", seed=1)
    return train(data, run, **{**options, **overrides})


def test_train_logs_validation_saves_rebuildable_weights_and_resumes(tmp_path, tiny_acne04):
    run = tmp_path / "run"
    first = tiny_training(tiny_acne04, run)
    rows = read_csv(first.log)
    assert [row["epoch"] for row in rows] == ["1"]
    assert {"loss", "lr", "val_grade_acc", "val_count_grade_acc", "val_count_mae"} <= rows[0].keys()
    assert float(rows[0]["val_grade_acc"]) in (0.0, 0.25, 0.5, 0.75, 1.0)  # 4 test images
    assert float(rows[0]["lr"]) == 1e-4
    loaded = load_model(weights=first.weights)
    assert (loaded.arch, loaded.source, loaded.network.training) == ("acne-fusion", str(first.weights), False)
    assert loaded.config["widths"] == TINY_CONFIG["widths"] and loaded.config["embed_dim"] == 12
    assert loaded.preprocessing == INPUT_PREPROCESSING and loaded.preprocessing["input_size"] == 224
    metadata = loaded.metadata
    assert "model_config" not in metadata and "input_size" not in metadata  # both in the model header now
    assert (metadata["criterion"], metadata["sigma"], metadata["alpha"], metadata["fold"]) == ("hayashi", "3.0", "0.6", "0")
    assert (metadata["criterion_upper"], metadata["weight_decay"], metadata["lr_step_epochs"]) == ("5,20,50", "0.0005", "30")
    assert metadata["grade_target"] == "cou2cls" and "grade_sigma" not in metadata

    weights_before = first.weights.read_bytes()
    again = tiny_training(tiny_acne04, run)  # nothing left to do
    assert again.resumed_from_epoch == 1 and len(again.history) == 1
    assert first.weights.read_bytes() == weights_before
    more = tiny_training(tiny_acne04, run, epochs=2)
    assert more.resumed_from_epoch == 1
    assert [row["epoch"] for row in read_csv(more.log)] == ["1", "2"]


def test_same_seed_same_weights(tmp_path, tiny_acne04):
    # validation does not touch the weights: leaving it out halves the work
    a = tiny_training(tiny_acne04, tmp_path / "a", augment=False, validate=False)
    b = tiny_training(tiny_acne04, tmp_path / "b", augment=False, validate=False)
    tensors_a, _ = load_weights(a.weights)
    tensors_b, _ = load_weights(b.weights)
    assert all(np.array_equal(tensors_a[key].numpy(), tensors_b[key].numpy()) for key in tensors_a)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, tiny_acne04):
    # augmented: each sample's crop, flip and rotation must come back the same after resuming
    options = dict(epochs=2, steps_per_epoch=2, validate=False)
    straight = tiny_training(tiny_acne04, tmp_path / "straight", **options)
    tiny_training(tiny_acne04, tmp_path / "split", **{**options, "epochs": 1})
    resumed = tiny_training(tiny_acne04, tmp_path / "split", **options)
    assert resumed.resumed_from_epoch == 1
    tensors_straight, _ = load_weights(straight.weights)
    tensors_resumed, _ = load_weights(resumed.weights)
    assert all(np.array_equal(tensors_straight[key].numpy(), tensors_resumed[key].numpy()) for key in tensors_straight)


def test_column_grade_targets_are_genld_over_the_grades():
    count_targets, grade_targets = label_targets(np.array([21, 3]), grade_target="column", grades=np.array([1, 3]))
    np.testing.assert_allclose(count_targets, label_targets(np.array([21, 3]))[0])
    near = np.exp(-1 / (2 * 0.5**2))  # neighbour weight at sigma 0.5 grade
    far = np.exp(-4 / (2 * 0.5**2))
    np.testing.assert_allclose(grade_targets[0], np.array([near, 1, near, far]) / (1 + 2 * near + far), rtol=1e-5)
    np.testing.assert_allclose(grade_targets[1], np.array([np.exp(-9 / 0.5), far, near, 1]) / (1 + near + far + np.exp(-18)), rtol=1e-5)
    assert grade_targets[0].argmax() == 1  # the column's grade, although count 21 is Hayashi grade 2
    with pytest.raises(InputError, match="one grade per count"):
        label_targets(np.array([21]), grade_target="column")
    with pytest.raises(InputError, match="a grade target among cou2cls, column"):
        label_targets(np.array([21]), grade_target="onehot")


def disagreeing_trainval(root):
    """The tiny folder with one trainval line whose grade column (0) is not Hayashi's grade of 12 (1)."""
    path = root / "NNEW_trainval_0.txt"
    path.write_text(path.read_text().replace("levle1_6.jpg  1  12", "levle1_6.jpg  0  12"))
    return root


def test_training_says_how_many_grade_columns_differ_from_the_criterion(tmp_path, tiny_acne04, capsys):
    data = disagreeing_trainval(tiny_acne04)
    tiny_training(data, tmp_path / "a", validate=False)
    err = capsys.readouterr().err
    assert err.count("lines have a grade column") == 1
    assert ("1 of 4 lines have a grade column that differs from hayashi(count): "
            "the grade head is trained on cou2cls(count)") in " ".join(err.split())


def test_grade_target_column_trains_on_the_column_and_is_recorded(tmp_path, tiny_acne04, capsys):
    result = tiny_training(disagreeing_trainval(tiny_acne04), tmp_path / "c", grade_target="column", validate=False)
    _, metadata = load_weights(result.weights, arch="acne-fusion")
    assert (metadata["grade_target"], metadata["grade_sigma"]) == ("column", "0.5")
    err = " ".join(capsys.readouterr().err.split())
    assert "1 of 4 lines have a grade column that differs from hayashi(count): the grade head is trained on the column" in err


def test_bad_options_are_refused_before_training(tmp_path, tiny_acne04):
    with pytest.raises(InputError, match="alpha in"):
        tiny_training(tiny_acne04, tmp_path / "r", alpha=1.5)
    with pytest.raises(InputError, match="a grade target among cou2cls, column, got 'labels'"):
        tiny_training(tiny_acne04, tmp_path / "r", grade_target="labels")
    with pytest.raises(InputError, match="NNEW_trainval_2.txt"):
        tiny_training(tiny_acne04, tmp_path / "r", fold=2)
    with pytest.raises(InputError, match="a JSON object of build_model keywords"):
        parse_model_config("[1, 2]")
    assert not (tmp_path / "r").exists()


def test_train_command_prints_weights_and_log(tmp_path, tiny_acne04):
    from medimg.cli import app

    result = runner.invoke(app, ["--quiet", "acne", "train", str(tiny_acne04), "--fold", "0", "-o", str(tmp_path / "run"),
                                 "--config", json.dumps(TINY_CONFIG), "--epochs", "1", "--steps-per-epoch", "1",
                                 "--batch-size", "2", "--sigma", "2.0", "--alpha", "0.5", "--grade-target", "column",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    weights, log, curves = result.stdout.split()
    assert weights == str(tmp_path / "run" / "weights.safetensors") and log.endswith("train_log.csv")
    _, metadata = load_weights(weights, arch="acne-fusion")
    assert (metadata["sigma"], metadata["alpha"], metadata["batch_size"], metadata["grade_target"]) == ("2.0", "0.5", "2", "column")
    assert "grade column" not in result.stderr  # the tiny folder's columns follow Hayashi


def test_train_command_refuses_an_unknown_grade_target(tmp_path, tiny_acne04):
    from medimg.cli import app

    result = runner.invoke(app, ["acne", "train", str(tiny_acne04), "-o", str(tmp_path / "run"), "--grade-target", "onehot"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "Error: expected a grade target among cou2cls, column, got 'onehot'"
    assert not (tmp_path / "run").exists()
