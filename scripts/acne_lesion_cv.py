"""Five-fold cross-validation of the shipped acne lesion network on real ACNE04 photos.

    nohup .venv/bin/python scripts/acne_lesion_cv.py ../shared/data/acne04_train runs/acne_lesion_cv [FOLDS [EPOCHS SIZE LR_STEP]] > cv.log 2>&1 &

(the card's 256 px table: ``... 0,1,2,3,4 12 256 9``).

Per fold k (resumable: a finished fold's run folder is reused):

1. ``medimg acne train DATA --model lesion --fold k --size 320 --epochs 18 --lr-step 14 --no-validate``
   (:func:`medimg.acne.lesion_training.train_lesion`, the shipped recipe, about 40 min on 2 CPU
   cores; without per-epoch scores on the test split, which would show the test photos before the
   evaluation);
2. the detector threshold is chosen on fold k's own training photos
   (:func:`~medimg.acne.lesion_training.calibrate_threshold`) and stored in the weights;
3. ``medimg acne evaluate DATA --fold k --weights ...`` scores ``NNEW_test_k.txt``, photos it never saw.

Writes ``cv.json`` (every fold's report) and ``cv.md`` (the model card's table) in the runs
folder. Folds are split by source photo (the three versions of one photo share a fold).

A fold takes most of a working session's CPU, so each finished fold's report is also kept in the
repository (``benchmarks/results/acne_lesion_cv/<recipe>/fold<k>.json``, a few tens of kB with the
per-photo counts); a later run on another machine reads it instead of training that fold again.
Fold 0 of the shipped recipe is the shipped weights themselves: they are evaluated, not retrained.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from medimg.acne.evaluate import evaluate_fold
from medimg.acne.labels import GRADE_NAMES, HAYASHI, answer_counts, grades_of_counts
from medimg.acne.lesion_training import EPOCHS, INPUT_SIZE, LR_STEP_EPOCHS, calibrate_threshold, train_lesion
from medimg.common.weights import sha256_of


#: The answer rule the table's confusion matrix and pooled report show (the shipped weights' ``count_from``)
SHIPPED_COUNT_RULE = "mean"
#: Finished folds, per recipe, kept in the repository
ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "benchmarks" / "results" / "acne_lesion_cv"
#: Folds whose test split was looked at for a choice (recipe and answer rule: folds 0 and 1; see the card)
LOOKED_AT_FOLDS = (0, 1)


def rule_counts(report: dict) -> np.ndarray:
    return answer_counts(np.asarray(report["ldl_counts"]), np.asarray(report["detected_counts"]), SHIPPED_COUNT_RULE)


def fold_row(report: dict, threshold: float) -> dict:
    ldl = np.asarray(report["ldl_counts"])
    truth = np.asarray(report["true_counts"])
    return {
        "fold": report["fold"],
        "photos": report["n_images"],
        "mean_grade_acc": report["mean_grade_acc"],
        "mean_count_mae": report["mean_count_mae"],
        "mean_count_rmse": report["mean_count_rmse"],
        "grade_head_acc": report["grade_head_acc"],
        "ldl_grade_acc": float((grades_of_counts(ldl, HAYASHI) == np.asarray(report["true_grades"])).mean()),
        "ldl_count_mae": float(np.abs(ldl - truth).mean()),
        "ldl_count_rmse": float(np.sqrt(np.mean((ldl - truth) ** 2))),
        "threshold": threshold,
        "detected_grade_acc": report["detected_grade_acc"],
        "detected_count_mae": report["detected_count_mae"],
        "detected_count_rmse": report["detected_count_rmse"],
    }


def confusion(reports: list[dict]) -> np.ndarray:
    matrix = np.zeros((4, 4), dtype=int)
    for report in reports:
        for truth, predicted in zip(report["true_grades"], grades_of_counts(rule_counts(report), HAYASHI)):
            matrix[truth, predicted] += 1
    return matrix


COLUMNS = (("mean_grade_acc", "grade acc, mean count (**shipped**)"), ("mean_count_mae", "mean count MAE (**shipped**)"),
           ("mean_count_rmse", "mean count RMSE"), ("grade_head_acc", "grade acc, grade head"), ("ldl_grade_acc", "grade acc, LDL count"),
           ("ldl_count_mae", "LDL count MAE"), ("ldl_count_rmse", "LDL count RMSE"), ("threshold", "detector threshold"),
           ("detected_grade_acc", "grade acc, detected count"), ("detected_count_mae", "detected count MAE"),
           ("detected_count_rmse", "detected count RMSE"))


def markdown(rows: list[dict], matrix: np.ndarray) -> str:
    lines = ["| fold | test photos | " + " | ".join(title for _, title in COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for row in rows:
        lines.append(f"| {row['fold']} | {row['photos']} | " + " | ".join(f"{row[key]:.3f}" for key, _ in COLUMNS) + " |")
    clean = [r for r in rows if r["fold"] not in LOOKED_AT_FOLDS]
    clean_label = "mean, folds " + ", ".join(str(r["fold"]) for r in clean) + " (no choice looked at them)"
    all_label = "mean ± sd, folds " + ", ".join(str(r["fold"]) for r in rows)
    for label, chosen in ((all_label, rows), (clean_label, clean)):
        if not chosen:
            continue
        cells = [f"{np.mean([r[k] for r in chosen]):.3f}" + (f" ± {np.std([r[k] for r in chosen]):.3f}" if len(chosen) == len(rows) else "")
                 for k, _ in COLUMNS]
        lines.append(f"| {label} | {sum(r['photos'] for r in chosen)} | " + " | ".join(cells) + " |")
    lines += ["", "Confusion matrix of the shipped rule (grade of the mean count) over the test folds (rows: true grade, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(GRADE_NAMES) + " |", "|---" * 5 + "|"]
    for g, name in enumerate(GRADE_NAMES):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in matrix[g]) + " |")
    return "\n".join(lines) + "\n"


def pooled_report_table(reports: list[dict]) -> str:
    """The report's table (per grade Precision, SE, SP, YI; counting MAE, RMSE) over the pooled test folds."""
    from medimg.acne.scores import evaluation_report, report_records

    def pooled(key):
        return np.concatenate([np.asarray(r[key]) for r in reports])

    predicted_counts = np.concatenate([rule_counts(r) for r in reports])
    report = evaluation_report(true_grades=pooled("true_grades"), grade_head=pooled("grade_head_grades"),
                               count_grade=grades_of_counts(predicted_counts, HAYASHI), true_counts=pooled("true_counts"),
                               predicted_counts=predicted_counts)
    lines = ["| table | class | Precision | SE | SP | YI | MAE | RMSE |", "|---|---|---|---|---|---|---|---|"]
    for row in report_records(report):
        cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else "" for k in ("precision", "SE", "SP", "YI", "MAE", "RMSE")]
        name = "grade head" if row["table"] == "grade_head" else "counting (mean count, shipped)"
        lines.append(f"| {name} | {row['class']} | " + " | ".join(cells) + " |")
    accuracy = (report["grading"]["grade_head"]["AVE_ACC"], report["grading"]["count_derived"]["AVE_ACC"])
    lines.append(f"\nPooled over {report['n_images']} test photos: AVE_ACC {accuracy[0]:.3f} (grade head), {accuracy[1]:.3f} "
                 f"(grade of the mean count, shipped); count MAE {report['counting']['MAE']:.2f}, RMSE {report['counting']['RMSE']:.2f}.")
    return "\n".join(lines) + "\n"


def recipe(*, fold: int, epochs: int, size: int, lr_step: int, seed: int = 0) -> dict:
    return {"fold": fold, "epochs": epochs, "size": size, "lr_step": lr_step, "seed": seed}


def recipe_of(metadata: dict) -> dict | None:
    """The recipe a lesion network's weights were trained with (``None`` when their metadata does not say)."""
    try:
        return recipe(fold=int(metadata["fold"]), epochs=int(metadata["epochs_trained"]),
                      size=int(json.loads(metadata["preprocessing"])["input_size"]), lr_step=int(metadata["lr_step_epochs"]),
                      seed=int(metadata["seed"]))
    except (KeyError, ValueError, TypeError):
        return None


def archive_path(wanted: dict, archive: Path = ARCHIVE) -> Path:
    return archive / f"{wanted['size']}px_{wanted['epochs']}ep_step{wanted['lr_step']}_seed{wanted['seed']}" / f"fold{wanted['fold']}.json"


def archived_report(wanted: dict, archive: Path = ARCHIVE) -> dict | None:
    """The archived report of this very recipe and fold, or ``None``."""
    path = archive_path(wanted, archive)
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    if report.get("recipe") != wanted or "detected_counts" not in report:
        return None
    from medimg.common.weights import SHIPPED, SHIPPED_DIR

    shipped = SHIPPED["acne-lesion"]
    if report.get("weights") == str((SHIPPED_DIR / shipped.filename).relative_to(ROOT)) and report.get("weights_sha256") != shipped.sha256:
        return None  # the shipped weights changed since (their threshold or answer rule, say): evaluate them again
    return report


def fold_weights(data_dir: str, run: Path, wanted: dict) -> Path:
    """Weights of the recipe for one fold: the run folder's, else the shipped ones if they are that
    fold's model of the recipe, else trained now (resuming an unfinished run)."""
    from medimg.common.models import load_model
    from medimg.common.weights import shipped_weights

    for candidate in (run / "weights.safetensors", shipped_weights("acne-lesion")):
        if candidate.is_file() and recipe_of(load_model(candidate).metadata) == wanted:
            return candidate
    return train_lesion(data_dir, run, fold=wanted["fold"], epochs=wanted["epochs"], size=wanted["size"],
                        lr_step_epochs=wanted["lr_step"], seed=wanted["seed"], validate=False).weights


def fold_report(data_dir: str, run: Path, wanted: dict, archive: Path = ARCHIVE) -> dict:
    """One fold's evaluation with its ``calibration``: archived, or trained, calibrated, evaluated and archived."""
    from medimg.common.models import load_model

    found = archived_report(wanted, archive)
    if found is not None:
        return found
    weights = fold_weights(data_dir, run, wanted)
    loaded = load_model(weights)
    if "threshold_chosen_on" in loaded.metadata:  # calibrated already (the shipped weights, or an earlier run)
        calibration = {"threshold": loaded.output["threshold"]}
    else:
        calibration = calibrate_threshold(weights, data_dir, fold=wanted["fold"])
    report = evaluate_fold(data_dir, fold=wanted["fold"], weights=weights, batch_size=16, keep_predictions=True)
    # the file's place inside the repository, or its name: the archive must not name one machine's folders
    where = Path(report["weights"]).resolve()
    where = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where.name
    report = {**report, "weights": str(where), "weights_sha256": sha256_of(weights), "calibration": calibration,
              "recipe": wanted}
    path = archive_path(wanted, archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=None, separators=(",", ":")) + "\n")
    return report


def main(data_dir: str, runs_dir: str, folds: str = "0,1,2,3,4", epochs: int = EPOCHS, size: int = INPUT_SIZE,
         lr_step: int = LR_STEP_EPOCHS) -> None:
    runs = Path(runs_dir)
    rows, reports = [], []
    for fold in (int(k) for k in folds.split(",")):
        report = fold_report(data_dir, runs / f"fold{fold}", recipe(fold=fold, epochs=epochs, size=size, lr_step=lr_step))
        rows.append(fold_row(report, report["calibration"]["threshold"]))
        reports.append(report)
        print(json.dumps(rows[-1]), flush=True)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "cv.json").write_text(json.dumps({"rows": rows, "confusion": confusion(reports).tolist()}, indent=1))
    (runs / "cv.md").write_text(markdown(rows, confusion(reports)) + "\n" + pooled_report_table(reports))
    print((runs / "cv.md").read_text())

if __name__ == "__main__":
    main(*sys.argv[1:3], *sys.argv[3:4], *(int(a) for a in sys.argv[4:7]))
