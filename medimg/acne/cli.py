"""``medimg acne``: skin photo -> acne lesion count and severity grade. Parses options, calls one function, prints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medimg.common.cli_edge import SchedulerOption, WorkersOption, cli_command, exit_for
from medimg.common.device import DEVICE_HELP

app = typer.Typer(help="Skin photo -> acne lesion count and severity grade (ResNet, ViT or their fusion, label-distribution learning).", no_args_is_help=True)

MODEL_HELP = "Network: lesion (detector + LDL heads, trained on real ACNE04), fusion (ViT + ResNet, the report's best), resnet or vit."
CRITERION_HELP = (
    "Grading of the count: hayashi (ACNE04's labels: <=5, 6-20, 21-50, >50; default) or report (0-19, 20-50, 51-65, >65). "
    "With report the grade head (trained under Hayashi) and count_grade can disagree by design, and grade 3 is "
    "unreachable from the count head (65 count bins)."
)
TRAIN_CRITERION_HELP = (
    "Grading of the count for cou2cls (the grade head's default target) and the validation: hayashi (ACNE04's "
    "labels: <=5, 6-20, 21-50, >50; default) or report (0-19, 20-50, 51-65, >65; grade 3 unreachable by counts)."
)
THRESHOLDS_HELP = "Own criterion: upper counts of grades 0, 1, 2 as 'a,b,c' (overrides --criterion)."

DeviceOption = typer.Option("auto", "--device", help=DEVICE_HELP)
ModelOption = typer.Option("fusion", "--model", help=MODEL_HELP)
# inference: None takes fusion, or whatever network a --weights file holds
NetworkOption = typer.Option(None, "--model", help=MODEL_HELP + " Default: lesion, or the network --weights holds.", show_default=False)
WeightsOption = typer.Option(None, "--weights", help="Weights file (.safetensors); default: the shipped weights of --model (lesion: trained on real ACNE04).")
CriterionOption = typer.Option(None, "--criterion", help=CRITERION_HELP)
ThresholdsOption = typer.Option(None, "--thresholds", help=THRESHOLDS_HELP)
BatchOption = typer.Option(8, "--batch-size", min=1, help="Images per forward pass.")
JsonOption = typer.Option(False, "--json", help="JSON instead of a table.")
CsvOption = typer.Option(False, "--csv", help="CSV instead of a table.")


def _criterion(criterion: Optional[str], thresholds: Optional[str]):
    from medimg.acne.labels import resolve_criterion

    return resolve_criterion(None if thresholds is not None else criterion, thresholds)


def _format(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both")
    return "json" if as_json else "csv" if as_csv else "table"


@app.command()
@cli_command
def grade(
    images: list[Path] = typer.Argument(..., help="Photos (JPEG, PNG, TIFF, BMP), folders (searched recursively) or glob patterns."),
    model: Optional[str] = NetworkOption,
    weights: Optional[Path] = WeightsOption,
    criterion: Optional[str] = CriterionOption,
    thresholds: Optional[str] = ThresholdsOption,
    as_json: bool = JsonOption,
    as_csv: bool = CsvOption,
    batch_size: int = BatchOption,
    device: str = DeviceOption,
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the run report (JSON): grades tally, failures, model, timings."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Folder for each photo with its detected lesions boxed (<name>_lesions.png; lesion model)."),
    scheduler: Optional[str] = SchedulerOption,
    workers: Optional[int] = WorkersOption,
) -> None:
    """Per photo: lesion count, grade (0-3) with its probabilities, the count-derived grade and the detected lesions. Exit 1 if any photo failed."""
    from medimg.acne.pipeline import RECORD_COLUMNS, InferenceOptions, grade_files
    from medimg.common.tables import render_records

    fmt = _format(as_json, as_csv)
    from medimg.common.batch import BatchEngine

    options = InferenceOptions(model=model, weights=weights, device=device, batch_size=batch_size)
    outcome = grade_files(images, options=options, criterion=_criterion(criterion, thresholds), report_path=report, overlay_dir=overlay,
                          engine=BatchEngine(scheduler=scheduler, workers=workers))
    if outcome.results or fmt != "table":
        text = render_records(outcome.results, fmt) if outcome.results or fmt == "json" else ",".join(RECORD_COLUMNS)
        typer.echo(text)
    exit_for(outcome)


@app.command()
@cli_command
def synth(
    output: Path = typer.Argument(..., help="Data folder to write (ACNE04 layout: JPEGImages/ + NNEW_{trainval,test}_k.txt)."),
    n: int = typer.Option(..., "--n", min=5, help="Number of photos (at least 5: one test photo per fold)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same data set."),
    size: int = typer.Option(256, "--size", min=32, help="Photo edge in pixels."),
) -> None:
    """Write synthetic skin photos with known lesion counts in the ACNE04 layout (five folds)."""
    from medimg.acne.synth import write_synthetic_dataset

    for path in write_synthetic_dataset(output, n=n, seed=seed, size=size):
        typer.echo(str(path))


@app.command()
@cli_command
def train(
    data_dir: Path = typer.Argument(..., help="ACNE04-style folder: JPEGImages/ + NNEW_trainval_k.txt (+ NNEW_test_k.txt for validation)."),
    fold: int = typer.Option(0, "--fold", min=0, help="Cross-validation fold k (split files NNEW_*_k.txt)."),
    model: str = ModelOption,
    output: Path = typer.Option(Path("runs/acne"), "-o", "--output", help="Run folder: weights, checkpoint, log (resumes from it)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Default: 120 (LDL networks), 18 (lesion, the shipped recipe)."),
    steps: Optional[int] = typer.Option(None, "--steps-per-epoch", min=1, help="Default: one pass over the training images."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Default: 64 (LDL networks), 16 (lesion)."),
    learning_rate: Optional[float] = typer.Option(None, "--lr", min=0.0, help="Default: 1e-4 (LDL networks), 2e-3 (lesion)."),
    weight_decay: float = typer.Option(5e-4, "--weight-decay", min=0.0, help="LDL networks only (lesion: 1e-4)."),
    lr_step: Optional[int] = typer.Option(None, "--lr-step", min=0, help=(
        "Divide the learning rate by 10 every this many epochs (0 = constant). Default: 30 (LDL networks); "
        "lesion: once, after this many epochs, default 14.")),
    sigma: float = typer.Option(3.0, "--sigma", min=0.0, help="Width of the count label distribution (genLD), in counts."),
    alpha: float = typer.Option(0.6, "--alpha", min=0.0, max=1.0, help="Loss = a/2 (L_cou2cls + L_cou) + (1 - a) L_cls."),
    weighting: str = typer.Option("report", "--weighting", help="report: a/2 (L_cou2cls + L_cou) + (1-a) L_cls; ldl: the LDL code's a/2 (L_cls + L_cou2cls) + (1-a) L_cou."),
    criterion: Optional[str] = typer.Option(None, "--criterion", help=TRAIN_CRITERION_HELP),
    thresholds: Optional[str] = ThresholdsOption,
    grade_target: str = typer.Option("cou2cls", "--grade-target", help=(
        "Grade head's target: cou2cls (default, the LDL reference: the count's label distribution summed per grade "
        "under the criterion) or column (the split file's grade column, as a label distribution over the 4 grades, "
        "sigma 0.5).")),
    preset: Optional[str] = typer.Option(None, "--preset", help="Network size: small (default, CPU-trainable, ~3 MB) or paper (ResNet-18 + ViT-Base size)."),
    config: Optional[str] = typer.Option(None, "--config", help="build_model keywords as JSON, e.g. '{\"embed_dim\": 64, \"depth\": 2}' (advanced)."),
    no_augment: bool = typer.Option(False, "--no-augment", help="No crop/flip/rotation: resize only."),
    size: Optional[int] = typer.Option(None, "--size", min=64, help="Lesion network only: input edge in pixels, a multiple of 32 (default 320, the shipped recipe); saved in the weights."),
    seed: int = typer.Option(0, "--seed"),
    device: str = DeviceOption,
    no_resume: bool = typer.Option(False, "--no-resume", help="Ignore an existing checkpoint and start over."),
    no_validate: bool = typer.Option(False, "--no-validate", help=(
        "Lesion network only: skip the per-epoch scores on the fold's test split (logged, never used to pick weights); "
        "faster, and the test photos stay unseen until 'acne evaluate'.")),
) -> None:
    """Train with Adam on one fold; prints the weights and log paths.

    LDL networks (fusion, resnet, vit) learn the count and grade distributions; the lesion network
    learns lesion centres from the boxes of DATA_DIR/boxes.csv as well (real ACNE04: see the model card)."""
    from medimg.acne.train import parse_model_config, train as run_training

    if model == "lesion":
        from medimg.acne.lesion_training import train_lesion

        given = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "lr_step_epochs": lr_step, "size": size}
        result = train_lesion(data_dir, output, fold=fold, config=parse_model_config(config), seed=seed, device=device,
                              resume=not no_resume, steps_per_epoch=steps, validate=not no_validate, **{k: v for k, v in given.items() if v is not None})
        for path in result.paths:
            typer.echo(str(path))
        return
    if no_validate:
        raise typer.BadParameter("for the lesion network only", param_hint="--no-validate")
    if size is not None:
        raise typer.BadParameter("--size applies to the lesion network only (LDL networks take the preset's input size)", param_hint="--size")
    epochs, batch_size = epochs or 120, batch_size or 64
    learning_rate, lr_step = learning_rate or 1e-4, 30 if lr_step is None else lr_step
    result = run_training(
        data_dir, output, fold=fold, model=model, model_config=parse_model_config(config), preset=preset, epochs=epochs,
        steps_per_epoch=steps, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay, lr_step_epochs=lr_step,
        sigma=sigma, alpha=alpha, weighting=weighting, criterion=_criterion(criterion, thresholds), grade_target=grade_target, seed=seed, device=device, resume=not no_resume,
        augment=not no_augment,
    )
    for path in result.paths:
        typer.echo(str(path))


@app.command()
@cli_command
def evaluate(
    data_dir: Path = typer.Argument(..., help="ACNE04-style folder with NNEW_test_k.txt."),
    fold: int = typer.Option(0, "--fold", min=0, help="Fold k: scores NNEW_test_k.txt."),
    model: Optional[str] = NetworkOption,
    weights: Optional[Path] = WeightsOption,
    criterion: Optional[str] = CriterionOption,
    thresholds: Optional[str] = ThresholdsOption,
    as_json: bool = JsonOption,
    as_csv: bool = CsvOption,
    batch_size: int = BatchOption,
    device: str = DeviceOption,
) -> None:
    """The report's table: per-grade Precision, SE, SP, YI, averages, AVE_ACC; counting MAE and RMSE."""
    from medimg.acne.evaluate import evaluate_fold
    from medimg.acne.scores import report_records
    from medimg.common.tables import render_records, to_json

    fmt = _format(as_json, as_csv)
    report = evaluate_fold(data_dir, fold=fold, model=model, weights=weights, device=device,
                           criterion=_criterion(criterion, thresholds), batch_size=batch_size)
    typer.echo(to_json(report).rstrip("\n") if fmt == "json" else render_records(report_records(report), fmt))


@app.command("model-info")
@cli_command
def model_info(
    preset: str = typer.Option("small", "--preset", help="small (the shipped size) or paper (ResNet-18 + ViT-Base size)."),
    as_json: bool = JsonOption,
) -> None:
    """Parameters, size, MACs and FLOPs of each network at 224 x 224."""
    from medimg.acne.complexity import complexity_table
    from medimg.common.tables import render_records, to_json

    rows = complexity_table(preset=preset)
    typer.echo(to_json(rows).rstrip("\n") if as_json else render_records(rows))
