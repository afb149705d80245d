"""``medimg mandible``: head CT series -> mandible mask, mesh and statistics. Parses options, calls one function, prints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medimg.common.cli_edge import SchedulerOption, WorkersOption, cli_command, exit_for
from medimg.common.device import DEVICE_HELP

app = typer.Typer(help="Head CT DICOM series -> mandible mask (NIfTI), surface mesh (STL), overlay and statistics.", no_args_is_help=True)

ARCH_NAMES = "unet, res-unet, cbam-unet, res-cbam-unet"
SEGMENT_OUTPUT_HELP = "Output folder; default: DICOM_DIR_mandible/ beside each input. With several inputs, one subfolder each."
FORMAT_HELP = (
    "Outputs, comma-separated: nifti (mask.nii.gz), stl (mandible.stl, LPS mm), png (overlay.png), json (report.json), "
    "seg (seg.dcm, DICOM SEG; not for a series tilt-corrected or resampled from variable spacing), "
    "html (report.html: overlay montage, volume and mesh statistics, stage times; self-contained)."
)
TILT_HELP = "Shift gantry-tilted slices onto an orthogonal grid instead of refusing them."
RESAMPLE_HELP = (
    "Refuse a series whose slices come in runs of different spacings, instead of resampling it (as dcm2niix does) "
    "onto one regular grid at the smallest spacing."
)
FREEZE_HELP = "Epochs with the encoder frozen (with --encoder-weights) before the lr drops x0.1."
ENCODER_HELP = "Pretrained ResNet-50 encoder: .safetensors or a torch.save .pth state dict (read without unpickling), our keys or torchvision's resnet50 keys."
VALIDATION_CASE_HELP = "Hold out this case (repeatable); overrides --validation-fraction."
STAGE_OUTPUT_HELP = "Output folder (created if missing). Default: "
SERIES_HELP = "SeriesInstanceUID to read when the folder holds several CT series."
DeviceOption = typer.Option("auto", "--device", help=DEVICE_HELP)
BatchOption = typer.Option(8, "--batch-size", min=1, help="Slices per forward pass.")
CbamReductionOption = typer.Option(16, "--cbam-reduction", min=1, help="CBAM channel-attention MLP reduction ratio r.")
CbamKernelOption = typer.Option(7, "--cbam-kernel", min=1, help="CBAM spatial-attention kernel size (odd; paper: 7).")
SeriesOption = typer.Option(None, "--series", help=SERIES_HELP)
StageSeriesOption = typer.Option(None, "--series", help=SERIES_HELP + " (CT given as a DICOM folder)")
StageTiltOption = typer.Option(False, "--correct-tilt", help=TILT_HELP + " (CT given as a DICOM folder)")
NoResampleOption = typer.Option(False, "--no-resample", help=RESAMPLE_HELP)
StageNoResampleOption = typer.Option(False, "--no-resample", help=RESAMPLE_HELP + " (CT given as a DICOM folder)")
WeightsOption = typer.Option(None, "--weights", help="Weights from 'medimg mandible train' (.safetensors); default: shipped.")
ArchOption = typer.Option(None, "--arch", help=f"Require this architecture ({ARCH_NAMES}); default: whatever the weights hold.")
ThresholdOption = typer.Option(0.5, "--threshold", help="Probability at or above which a voxel is mandible, strictly between 0 and 1.")
AllComponentsOption = typer.Option(False, "--all-components", help="Keep every connected component, not only the largest (and any of a quarter of its size or more).")
SmoothingOption = typer.Option(10, "--smoothing", min=0, help="Taubin smoothing iterations of the STL surface.")

TRAIN_HELP = """Train a network: focal loss (gamma 2), Adam, encoder frozen then unfrozen (paper section 2.3).

\b
DATA_DIR holds one folder per case (or is one case folder):
  case1/dicom/*.dcm + case1/mandible_mask.nii.gz   CT series + aligned NIfTI mask (what 'synth' writes;
                                                   mask.nii.gz also works, DICOM files may sit anywhere in case1/)
  case2/images/*.png + case2/masks/*.png|*.json    8-bit grey slices (already windowed, name order) with
                                                   PNG masks (nonzero = mandible) or Labelme JSON polygons
                                                   labelled "mandible" (any case), same names as the images
For DICOM cases, masks/ files are named after the DICOM files (IM0001.dcm -> IM0001.png). Slices
without a mask file are unlabelled and not used. With --encoder-weights (res-* archs) the encoder
is frozen for --freeze-epochs at --lr, then everything trains at --lr x 0.1. Resumes from RUN_DIR.
"""


def _parse_shape(text: str) -> tuple[int, int, int]:
    from medimg.common.errors import OptionValueError, expected

    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise OptionValueError(expected("--shape as three integers Z,Y,X", repr(text))) from None
    if len(shape) != 3:
        raise OptionValueError(expected("--shape as three integers Z,Y,X", repr(text)))
    return shape  # type: ignore[return-value]


def _echo_paths(paths) -> None:
    for path in paths:
        typer.echo(str(path))


@app.command()
@cli_command
def segment(
    dicom_dirs: list[Path] = typer.Argument(..., help="Folders holding a CT series (searched recursively); the model loads once."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=SEGMENT_OUTPUT_HELP),
    formats: str = typer.Option("nifti,stl,png,json,html", "--format", help=FORMAT_HELP),
    series: Optional[str] = SeriesOption,
    correct_tilt: bool = typer.Option(False, "--correct-tilt", help=TILT_HELP),
    no_resample: bool = NoResampleOption,
    weights: Optional[Path] = WeightsOption,
    arch: Optional[str] = ArchOption,
    threshold: float = ThresholdOption,
    all_components: bool = AllComponentsOption,
    smoothing: int = SmoothingOption,
    batch_size: int = BatchOption,
    device: str = DeviceOption,
    scheduler: Optional[str] = SchedulerOption,
    workers: Optional[int] = WorkersOption,
) -> None:
    """All stages in one process: segment the mandible in CT series; prints the files written."""
    from medimg.common.batch import BatchEngine
    from medimg.mandible.inference import InferenceOptions
    from medimg.mandible.pipeline import segment_many

    outcome = segment_many(
        dicom_dirs, output,
        inference=InferenceOptions(model=arch, weights=weights, device=device, batch_size=batch_size),
        series_uid=series, correct_tilt=correct_tilt, resample=not no_resample, formats=formats, threshold=threshold,
        keep_largest=not all_components, smoothing=smoothing, engine=BatchEngine(scheduler=scheduler, workers=workers),
    )
    for result in outcome.results:
        _echo_paths(result.paths)
    exit_for(outcome)


@app.command()
@cli_command
def volume(
    dicom_dir: Path = typer.Argument(..., help="Folder holding a CT series (searched recursively)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=STAGE_OUTPUT_HELP + "DICOM_DIR_mandible/ beside the folder."),
    series: Optional[str] = SeriesOption,
    correct_tilt: bool = typer.Option(False, "--correct-tilt", help=TILT_HELP),
    no_resample: bool = NoResampleOption,
    list_only: bool = typer.Option(False, "--list", help="Only list the series in the folder (pick one for --series); writes nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --list: JSON instead of a table."),
) -> None:
    """Stage 1: read the CT series -> ct.nii.gz (float32 HU, RAS affine). Prints its path."""
    from medimg.mandible.stages import run_volume, series_records

    if as_json and not list_only:
        from medimg.common.errors import OptionValueError, expected

        raise OptionValueError(expected("--json together with --list", "--json alone"))
    if list_only:
        from medimg.common.tables import render_records

        typer.echo(render_records(series_records(dicom_dir), "json" if as_json else "table"))
        return
    typer.echo(str(run_volume(dicom_dir, output, series_uid=series, correct_tilt=correct_tilt, resample=not no_resample)))


@app.command()
@cli_command
def infer(
    ct: Path = typer.Argument(..., help="ct.nii.gz from 'medimg mandible volume', or a DICOM folder."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help=STAGE_OUTPUT_HELP + "the file's folder; DICOM_DIR_mandible/ for a folder."
    ),
    weights: Optional[Path] = WeightsOption,
    arch: Optional[str] = ArchOption,
    batch_size: int = BatchOption,
    device: str = DeviceOption,
    series: Optional[str] = StageSeriesOption,
    correct_tilt: bool = StageTiltOption,
    no_resample: bool = StageNoResampleOption,
) -> None:
    """Stage 2: slice-wise network inference -> probability.nii.gz (float32 in [0, 1], the CT's grid)."""
    from medimg.mandible.inference import InferenceOptions
    from medimg.mandible.stages import run_infer

    inference = InferenceOptions(model=arch, weights=weights, device=device, batch_size=batch_size)
    typer.echo(str(run_infer(
        ct, output, inference=inference, series_uid=series, correct_tilt=correct_tilt, resample=not no_resample
    )))


@app.command()
@cli_command
def mask(
    probability: Path = typer.Argument(..., help="probability.nii.gz from 'medimg mandible infer'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=STAGE_OUTPUT_HELP + "the map's folder."),
    threshold: float = ThresholdOption,
    all_components: bool = AllComponentsOption,
) -> None:
    """Stage 3: threshold, keep the largest 3-D component -> mask.nii.gz (uint8 0/1)."""
    from medimg.mandible.stages import run_mask

    path = run_mask(probability, output, threshold=threshold, keep_largest=not all_components)
    typer.echo(str(path))


@app.command()
@cli_command
def mesh(
    mask_file: Path = typer.Argument(..., metavar="MASK", help="mask.nii.gz from 'medimg mandible mask' (nonzero = mandible)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=STAGE_OUTPUT_HELP + "the mask's folder."),
    smoothing: int = SmoothingOption,
) -> None:
    """Stage 4: marching cubes + Taubin smoothing -> mandible.stl (binary, patient LPS mm)."""
    from medimg.mandible.stages import run_mesh

    typer.echo(str(run_mesh(mask_file, output, smoothing=smoothing)))


@app.command()
@cli_command
def overlay(
    ct: Path = typer.Argument(..., help="ct.nii.gz from 'medimg mandible volume', or a DICOM folder."),
    mask_file: Path = typer.Argument(..., metavar="MASK", help="mask.nii.gz on the CT's grid."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=STAGE_OUTPUT_HELP + "the mask's folder."),
    level: Optional[float] = typer.Option(None, "--level", help="Window level in HU; default: the bone window the shipped network uses."),
    width: Optional[float] = typer.Option(None, "--width", min=0.0, help="Window width in HU; default: the bone window's."),
    series: Optional[str] = StageSeriesOption,
    correct_tilt: bool = StageTiltOption,
    no_resample: bool = StageNoResampleOption,
) -> None:
    """Stage 5: montage of axial slices with the mask in orange -> overlay.png."""
    from medimg.mandible.stages import run_overlay

    path = run_overlay(
        ct, mask_file, output, level=level, width=width, series_uid=series, correct_tilt=correct_tilt,
        resample=not no_resample,
    )
    typer.echo(str(path))


@app.command()
@cli_command
def synth(
    output: Path = typer.Argument(..., help="Folder to write: dicom/IM0001.dcm..., params.json and mandible_mask.nii.gz (prints the three)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same head."),
    shape: str = typer.Option("48,256,256", "--shape", help="Z,Y,X in voxels (slices, rows, columns)."),
    metal: bool = typer.Option(False, "--metal", help="Add metal-artefact streaks (dental fillings)."),
    style: str = typer.Option("default", "--style", help=(
        "Family of heads: default (the shipped weights' training heads), wide (pose, dentition, kernels, slice thickness, "
        "pixel size, calibration, beam hardening varied; the grid is drawn and --shape ignored), held-out (scanner settings wide never uses).")),
) -> None:
    """Write a synthetic head CT as a real DICOM series, with its true mandible mask (NIfTI)."""
    from medimg.mandible.synth import write_synthetic_series

    written = write_synthetic_series(output, seed=seed, shape=_parse_shape(shape), metal=metal, style=style)
    # The series folder stands for its slices: one line per slice would bury the mask path.
    _echo_paths(dict.fromkeys(path.parent if path.suffix == ".dcm" else path for path in written))


@app.command(help=TRAIN_HELP)
@cli_command
def train(
    data_dir: Path = typer.Argument(..., help="Folder of cases (see above)."),
    output: Path = typer.Option(Path("runs/mandible"), "-o", "--output", help="Run folder: weights, checkpoint, log (resumes from it)."),
    arch: str = typer.Option("res-cbam-unet", "--arch", help=f"Network: {ARCH_NAMES} (the paper's ablation)."),
    width: float = typer.Option(0.125, "--width", min=0.0, help="Channel multiplier; 1.0 = the paper-size network."),
    cbam_reduction: int = CbamReductionOption,
    cbam_kernel: int = CbamKernelOption,
    size: int = typer.Option(256, "--size", min=32, help="Input side in pixels, a multiple of 32 (paper: 512)."),
    epochs: int = typer.Option(100, "--epochs", min=1),
    freeze_epochs: int = typer.Option(25, "--freeze-epochs", min=0, help=FREEZE_HELP),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    learning_rate: float = typer.Option(1e-4, "--lr", min=0.0, help="Learning rate of the first --freeze-epochs epochs; then x0.1."),
    encoder_weights: Optional[Path] = typer.Option(None, "--encoder-weights", help=ENCODER_HELP),
    steps: Optional[int] = typer.Option(None, "--steps-per-epoch", min=1, help="Batches per epoch; default: one pass over the training slices."),
    validation_fraction: float = typer.Option(0.2, "--validation-fraction", min=0.0, max=0.95, help="Share of cases held out for validation."),
    validation_cases: Optional[list[str]] = typer.Option(None, "--validation-case", help=VALIDATION_CASE_HELP),
    seed: int = typer.Option(0, "--seed"),
    device: str = DeviceOption,
    no_resume: bool = typer.Option(False, "--no-resume", help="Ignore an existing checkpoint and start over."),
) -> None:
    from medimg.mandible.train import train as run_training

    result = run_training(
        data_dir, output, arch=arch, width=width, cbam_reduction=cbam_reduction, cbam_kernel=cbam_kernel, input_size=size,
        epochs=epochs, freeze_epochs=freeze_epochs, batch_size=batch_size,
        learning_rate=learning_rate, encoder_weights=encoder_weights, steps_per_epoch=steps, seed=seed, device=device,
        resume=not no_resume, validation_fraction=validation_fraction, validation_cases=validation_cases or None,
    )
    _echo_paths(result.paths)


@app.command()
@cli_command
def evaluate(
    predicted: Path = typer.Argument(..., help="Predicted mask: mask.nii.gz, segment's output folder, or a folder of cases."),
    truth: Path = typer.Argument(..., help="True mask: a .nii.gz, synth's folder (mandible_mask.nii.gz), or a folder of cases."),
    as_json: bool = typer.Option(False, "--json", help="JSON (per case and overall) instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV (one row per case, then overall) instead of a table."),
) -> None:
    """ACC, precision, recall, IoU of mandible and background, MIoU and Dice, per case and pooled."""
    from medimg.common.tables import render_records, to_json
    from medimg.mandible.evaluate import evaluate as run_evaluation
    from medimg.mandible.evaluate import evaluation_records

    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both")
    result = run_evaluation(predicted, truth)
    if as_json:
        typer.echo(to_json(result).rstrip("\n"))
    else:
        typer.echo(render_records(evaluation_records(result), "csv" if as_csv else "table"))


@app.command("model-info")
@cli_command
def model_info(
    width: float = typer.Option(1.0, "--width", min=0.0, help="Channel multiplier (1.0 = paper size; shipped: 0.125)."),
    size: int = typer.Option(512, "--size", min=32, help="Input side in pixels (paper: 512)."),
    cbam_reduction: int = CbamReductionOption,
    cbam_kernel: int = CbamKernelOption,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Parameters, MACs and FLOPs of the four variants (the paper's ablation)."""
    from medimg.common.tables import render_records, to_json
    from medimg.mandible.complexity import complexity_table

    rows = complexity_table(width=width, size=size, cbam_reduction=cbam_reduction, cbam_kernel=cbam_kernel)
    typer.echo(to_json(rows).rstrip("\n") if as_json else render_records(rows))
