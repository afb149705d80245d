"""scripts/acne_lesion_cv.py: the card's table from hand-made fold reports."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]


def script():
    spec = importlib.util.spec_from_file_location("acne_lesion_cv", ROOT / "scripts" / "acne_lesion_cv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(fold, true_counts, ldl, detected, grade_head):
    from medimg.acne.labels import answer_counts, grades_of_counts

    truth = np.array(true_counts)
    mean = answer_counts(np.array(ldl), np.array(detected), "mean")
    grades = grades_of_counts(truth)
    rule = {f"{name}_{key}": value for name, counts in (("mean", mean), ("detected", np.array(detected)))
            for key, value in (("count_mae", float(np.abs(counts - truth).mean())),
                               ("count_rmse", float(np.sqrt(np.mean((counts - truth) ** 2)))),
                               ("grade_acc", float((grades_of_counts(counts) == grades).mean())))}
    return {"fold": fold, "n_images": len(truth), "grade_head_acc": float((np.array(grade_head) == grades).mean()), **rule,
            "true_grades": grades.tolist(), "true_counts": truth.tolist(), "ldl_counts": list(ldl),
            "detected_counts": list(detected), "grade_head_grades": list(grade_head)}


def test_fold_rows_table_and_confusion_from_the_mean_rule():
    cv = script()
    # counts 3 (mild), 10 (moderate), 30 (severe), 60 (very severe)
    first = report(0, [3, 10, 30, 60], ldl=[3, 8, 20, 50], detected=[4, 12, 30, 60], grade_head=[0, 1, 1, 3])
    second = report(2, [2, 25], ldl=[2, 15], detected=[2, 21], grade_head=[0, 2])
    rows = [cv.fold_row(first, 0.25), cv.fold_row(second, 0.3)]
    # fold 0: mean counts 4, 10, 25, 55 -> errors 1, 0, 5, 5; LDL errors 0, 2, 10, 10
    assert rows[0]["mean_count_mae"] == pytest.approx(2.75) and rows[0]["ldl_count_mae"] == pytest.approx(5.5)
    # LDL 20 is moderate (truth 30 severe) and LDL 50 severe (truth 60 very severe); the means 25 and 55 are right
    assert rows[0]["mean_grade_acc"] == 1.0 and rows[0]["ldl_grade_acc"] == 0.5
    assert rows[0]["grade_head_acc"] == 0.75 and rows[1]["threshold"] == 0.3
    # fold 2: mean counts 2 and 18 (moderate, truth severe)
    assert rows[1]["mean_grade_acc"] == 0.5
    matrix = cv.confusion([first, second])
    assert matrix.tolist() == [[2, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    table = cv.markdown(rows, matrix)
    # fold 0 was looked at for a choice: the clean mean is fold 2's alone
    assert "| mean, folds 2 (no choice looked at them) | 2 | 0.500 |" in table
    assert "| mean ± sd, folds 0, 2 | 6 | 0.750 ± 0.250 |" in table
    pooled = cv.pooled_report_table([first, second])
    assert "Pooled over 6 test photos: AVE_ACC 0.833 (grade head), 0.833 (grade of the mean count, shipped)" in pooled


def test_the_shipped_weights_are_fold_0_of_the_default_recipe():
    from medimg.acne.lesion_training import EPOCHS, INPUT_SIZE, LR_STEP_EPOCHS
    from medimg.common.models import load_model
    from medimg.common.weights import shipped_weights

    cv = script()
    shipped = shipped_weights("acne-lesion")
    assert cv.recipe_of(load_model(shipped).metadata) == cv.recipe(fold=0, epochs=EPOCHS, size=INPUT_SIZE, lr_step=LR_STEP_EPOCHS)
    assert (EPOCHS, INPUT_SIZE, LR_STEP_EPOCHS) == (18, 320, 14)
    # so fold 0 is evaluated from them, never trained again
    wanted = cv.recipe(fold=0, epochs=18, size=320, lr_step=14)
    assert cv.fold_weights("no-data-needed", Path("missing-run"), wanted) == shipped


def test_recipe_of_weights_without_training_metadata_is_none():
    cv = script()
    assert cv.recipe_of({"fold": "0"}) is None
    assert cv.recipe_of({"fold": "1", "epochs_trained": "12", "preprocessing": '{"input_size": 256}', "lr_step_epochs": "9",
                         "seed": "0"}) == {"fold": 1, "epochs": 12, "size": 256, "lr_step": 9, "seed": 0}


def test_an_archived_fold_is_read_back_instead_of_trained(tmp_path, monkeypatch):
    import json

    cv = script()
    wanted = cv.recipe(fold=3, epochs=18, size=320, lr_step=14)
    stored = {**report(3, [3, 30], ldl=[3, 20], detected=[4, 30], grade_head=[0, 2]), "calibration": {"threshold": 0.25},
              "recipe": wanted}
    path = cv.archive_path(wanted, tmp_path)
    assert path == tmp_path / "320px_18ep_step14_seed0" / "fold3.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stored))

    def no_training(*args, **kwargs):
        raise AssertionError("an archived fold must not be trained again")

    monkeypatch.setattr(cv, "train_lesion", no_training)
    monkeypatch.setattr(cv, "evaluate_fold", no_training)
    found = cv.fold_report("no-data-needed", tmp_path / "run", wanted, archive=tmp_path)
    assert found["detected_counts"] == [4, 30] and found["calibration"]["threshold"] == 0.25
    # another recipe's fold (here 256 px) is not taken for it
    assert cv.archived_report(cv.recipe(fold=3, epochs=18, size=256, lr_step=14), tmp_path) is None
    stored["recipe"] = cv.recipe(fold=3, epochs=12, size=320, lr_step=14)
    path.write_text(json.dumps(stored))
    assert cv.archived_report(wanted, tmp_path) is None


def test_an_archived_report_of_older_shipped_weights_is_evaluated_again(tmp_path):
    import json

    from medimg.common.weights import SHIPPED

    cv = script()
    wanted = cv.recipe(fold=0, epochs=18, size=320, lr_step=14)
    stored = {**report(0, [3], ldl=[3], detected=[4], grade_head=[0]), "calibration": {"threshold": 0.25}, "recipe": wanted,
              "weights": "medimg/weights/acne_lesion.safetensors", "weights_sha256": SHIPPED["acne-lesion"].sha256}
    path = cv.archive_path(wanted, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stored))
    assert cv.archived_report(wanted, tmp_path)["detected_counts"] == [4]
    path.write_text(json.dumps({**stored, "weights_sha256": "0" * 64}))
    assert cv.archived_report(wanted, tmp_path) is None
