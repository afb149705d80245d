"""``medimg oct``: fingertip OCT volume -> sweat glands -> 2-D pore map. Parses options, calls one function, prints."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from medimg.common.cli_edge import SchedulerOption, WorkersOption, cli_command, exit_for
from medimg.common.denoisers import DEFAULT_DENOISER
from medimg.common.device import DEVICE_HELP
from medimg.oct_glands.noise import DEFAULT_NOISE_REGION
from medimg.oct_glands.prune import MIN_GLAND_DEPTH, MIN_GLAND_PROBABILITY, MIN_GLAND_VOXELS, PAPER_MIN_GLAND_VOXELS

app = typer.Typer(help="Fingertip OCT volume -> subcutaneous sweat glands -> 2-D pore map.", no_args_is_help=True)

AXES_HELP = "Order of the axes in the file, a permutation of Y (B-scan), Z (depth), X (A-scan)."
OUTPUT_HELP = "Output folder (created if missing)."

AxesOption = typer.Option("YZX", "--axes", help=AXES_HELP)
DeviceOption = typer.Option("auto", "--device", help=DEVICE_HELP)
ModelOption = typer.Option("light", "--model", help="Network: light (depthwise-separable) or standard.")
NetworkOption = typer.Option(None, "--model", show_default=False,
                             help="Network: light (depthwise-separable) or standard. Default: light, or the network --weights holds.")
WeightsOption = typer.Option(None, "--weights", help="Weights file (.safetensors); default: the shipped light weights.")
BatchOption = typer.Option(4, "--batch-size", min=1, help="Blocks per forward pass.")
WeightingOption = typer.Option(
    "gaussian", "--weighting",
    help="Blend of overlapping blocks' logits: gaussian (centre voxels count most) or constant (a plain mean, as the paper averaged).")
TestTimeOption = typer.Option(
    "flips", "--test-time",
    help="Logits of each tile averaged over its en-face mirror images: flips (Y and X, 4 passes), dihedral (also Y-X swapped, 8) or none (1, 4x faster).")
StrideOption = typer.Option(40, "--stride", min=1, help="Grid step N of the 80^3 blocks (paper: 40 for inference).")
class SurfaceMethod(str, Enum):
    robust = "robust"
    paper = "paper"


SurfaceMethodOption = typer.Option(SurfaceMethod.robust, "--surface-method", help=(
    "robust: first strong, lasting rise below a guard band, continuous across A-scans (real scans); "
    "paper: the largest vertical step (refined by --smooth, --rising-only, --median)."))
SmoothOption = typer.Option(0.0, "--smooth", min=0.0, help="Paper method: Gaussian sigma (voxels) on each B-scan before the gradient; 0 = paper's rule.")
RisingOption = typer.Option(False, "--rising-only", help="Paper method: count only dark-to-bright steps (robust to a glass plate's edge).")
MedianOption = typer.Option(0, "--median", min=0, help="Paper method: median filter size over the surface map (outlier rejection); 0 = off.")
SigmaOption = typer.Option(None, "--sigma", min=0.0, help="Noise sigma in grey levels; default: measured where --noise-region says.")
DomainOption = typer.Option("log", "--domain", help="log: the scan is log-compressed (usual); linear: log-transform first.")
StageOption = typer.Option("full", "--bm3d-stage", help="full (hard thresholding + Wiener) or hard (about 2x faster).")
DenoiserOption = typer.Option(
    DEFAULT_DENOISER, "--denoiser",
    help="Denoising method: bm3d (ours, torch: CPU or GPU, batched) or bm3d-reference (the bm3d package, non-commercial licence).",
)
NoiseRegionOption = typer.Option(DEFAULT_NOISE_REGION, "--noise-region", help=(
    "Where the noise sigma is measured when --sigma is not given: tissue (default; the speckle 2-30 voxels below the "
    "surface, 3-10x the air's on real scans, what the shipped network was trained with) or air above the skin (the paper's)."))
DenoiseRowsOption = typer.Option("surface", "--denoise-rows", help=(
    "surface (default): denoise only the rows the network reads, from just above the surface to the ROI's depth below it, "
    "in a band that follows the smoothed surface column by column; tissue: the same rows as one rectangle per B-scan "
    "(more rows where the skin is curved); "
    "all: every row of every B-scan (about twice the time on a 500-deep scan)."))
MinSizeOption = typer.Option(MIN_GLAND_VOXELS, "--min-size", min=1, help=f"Remove components smaller than this many voxels (the paper: {PAPER_MIN_GLAND_VOXELS}).")
ConnectivityOption = typer.Option(3, "--connectivity", min=1, max=3, help="1 = faces (6), 2 = +edges (18), 3 = +corners (26 neighbours).")
MinProbabilityOption = typer.Option(MIN_GLAND_PROBABILITY, "--min-probability", help=(
    "Also drop glands whose voxels' mean probability is below this (the network unsure of them); 0: the paper's size rule alone."))
MinDepthOption = typer.Option(MIN_GLAND_DEPTH, "--min-depth", min=0, help=(
    "Also drop glands that stay this close to the surface: those whose depth_reached (90th percentile of their voxels' "
    "depths below the surface, in voxels) is smaller; the bright stratum-corneum band, not ducts, which reach the "
    "junction 30-50 px down. 0: off."))


def _output_dir(output: Optional[Path], source: Path, *, beside_input: bool) -> Path:
    from medimg.common.outputs import prepare_output_dir

    if output is None and beside_input:
        output = Path(source).parent
    return prepare_output_dir(output, source, "oct")


def _echo_paths(paths) -> None:
    for path in paths:
        typer.echo(str(path))


@app.command()
@cli_command
def synth(
    output: Path = typer.Argument(..., help="Volume to write (.tif); truth goes beside it as *_glands.tif and *_pores.csv."),
    shape: str = typer.Option("160,128,160", "--shape", help="Y,Z,X in voxels (Z >= 96)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same phantom."),
    style: str = typer.Option("paper", "--style", help=(
        "paper: the phantoms the shipped network was trained on; spec: ranges that include real scans (SPEC section 5: "
        "dark display, bright stratum-corneum band, artefact rows, sagging surface; needs Z >= 400).")),
) -> None:
    """Write a synthetic fingertip OCT volume with its true glands, pores and drawn parameters (OUT_params.json)."""
    from medimg.oct_glands.synth import parse_shape, write_synthetic_scan

    _echo_paths(write_synthetic_scan(output, shape=parse_shape(shape), seed=seed, style=style))


@app.command()
@cli_command
def denoise(
    scan: Path = typer.Argument(..., help="OCT volume (multi-page TIFF)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: SCAN_oct/ beside the scan."),
    axes: str = AxesOption,
    sigma: Optional[float] = SigmaOption,
    domain: str = DomainOption,
    bm3d_stage: str = StageOption,
    denoiser: str = DenoiserOption,
    noise_region: str = NoiseRegionOption,
    denoise_rows: str = DenoiseRowsOption,
    device: str = DeviceOption,
) -> None:
    """Stage 1: denoise every B-scan (BM3D by default) -> denoised.tif."""
    from medimg.oct_glands.pipeline import DenoiseOptions, run_denoise

    options = DenoiseOptions(sigma=sigma, domain=domain, stage=bm3d_stage, denoiser=denoiser, noise_region=noise_region,
                             rows=denoise_rows, device=device)
    typer.echo(str(run_denoise(scan, _output_dir(output, scan, beside_input=False), axes=axes, options=options)))


@app.command()
@cli_command
def surface(
    volume: Path = typer.Argument(..., help="OCT volume, usually denoised.tif."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the volume's folder."),
    axes: str = AxesOption,
    surface_method: SurfaceMethod = SurfaceMethodOption,
    smooth: float = SmoothOption,
    rising_only: bool = RisingOption,
    median: int = MedianOption,
) -> None:
    """Stage 2: stratum-corneum surface depth per A-scan -> surface.tif (Y, X)."""
    from medimg.oct_glands.pipeline import SurfaceOptions, run_surface

    options = SurfaceOptions(method=surface_method.value, smooth_sigma=smooth, rising_only=rising_only, median_size=median)
    typer.echo(str(run_surface(volume, _output_dir(output, volume, beside_input=True), axes=axes, options=options)))


@app.command()
@cli_command
def crop(
    volume: Path = typer.Argument(..., help="OCT volume, usually denoised.tif."),
    surface_map: Path = typer.Option(..., "--surface", help="surface.tif from 'medimg oct surface'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the volume's folder."),
    axes: str = AxesOption,
    stride: int = StrideOption,
) -> None:
    """Stage 3: 80^3 ROIs on the stride-N grid, z* from the surface -> blocks.tif + corners.csv."""
    from medimg.oct_glands.pipeline import run_crop

    _echo_paths(run_crop(volume, surface_map, _output_dir(output, volume, beside_input=True), axes=axes, stride=stride))


@app.command()
@cli_command
def infer(
    blocks: Path = typer.Argument(..., help="blocks.tif from 'medimg oct crop'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the blocks' folder."),
    model: Optional[str] = NetworkOption,
    weights: Optional[Path] = WeightsOption,
    device: str = DeviceOption,
    batch_size: int = BatchOption,
    weighting: str = WeightingOption,
    test_time: str = TestTimeOption,
) -> None:
    """Stage 4: gland probability per block, overlapping logits blended -> probability.tif."""
    from medimg.oct_glands.pipeline import InferenceOptions, run_infer

    options = InferenceOptions(model=model, weights=weights, device=device, batch_size=batch_size, weighting=weighting, test_time=test_time)
    typer.echo(str(run_infer(blocks, _output_dir(output, blocks, beside_input=True), options=options)))


@app.command()
@cli_command
def threshold(
    probability: Path = typer.Argument(..., help="probability.tif from 'medimg oct infer'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the map's folder."),
    value: Optional[float] = typer.Option(None, "--value", min=0.0, max=1.0, help="Fixed threshold; default: Otsu."),
) -> None:
    """Stage 5: M = P >= thr (Otsu by default) -> mask.tif. Prints the path and the threshold."""
    from medimg.oct_glands.pipeline import run_threshold

    path, used = run_threshold(probability, _output_dir(output, probability, beside_input=True), value=value)
    typer.echo(str(path))
    typer.echo(f"threshold={used:.6g}")


@app.command()
@cli_command
def prune(
    mask: Path = typer.Argument(..., help="mask.tif from 'medimg oct threshold'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the mask's folder."),
    min_size: int = MinSizeOption,
    connectivity: int = ConnectivityOption,
    probability: Optional[Path] = typer.Option(None, "--probability", help="probability.tif from 'medimg oct infer': needed by --min-probability."),
    min_probability: Optional[float] = typer.Option(None, "--min-probability", help=(
        f"With --probability: drop glands whose voxels' mean probability is below this [default: {MIN_GLAND_PROBABILITY:g}, as extract].")),
    surface_map: Optional[Path] = typer.Option(None, "--surface", help="surface.tif from 'medimg oct surface': needed by --min-depth."),
    min_depth: Optional[int] = typer.Option(None, "--min-depth", min=0, help=(
        f"With --surface: drop glands whose depth_reached below the surface is smaller [default: {MIN_GLAND_DEPTH}, as extract].")),
) -> None:
    """Stage 6: drop components under --min-size voxels (and, with --probability, those of a mean probability under
    --min-probability; with --surface, those that stay within --min-depth of the surface), label the rest -> glands.tif."""
    from medimg.oct_glands.pipeline import run_prune

    path, count = run_prune(mask, _output_dir(output, mask, beside_input=True), min_size=min_size, connectivity=connectivity,
                            probability_path=probability, min_probability=min_probability, surface_path=surface_map, min_depth=min_depth)
    typer.echo(str(path))
    typer.echo(f"glands={count}")


@app.command()
@cli_command
def project(
    glands: Path = typer.Argument(..., help="glands.tif from 'medimg oct prune'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help=OUTPUT_HELP + " Default: the labels' folder."),
    probability: Optional[Path] = typer.Option(None, "--probability", help="probability.tif, to report each gland's mean probability."),
    surface_map: Optional[Path] = typer.Option(None, "--surface", help="surface.tif, to report how deep below the surface each gland reaches."),
) -> None:
    """Stage 7: gland centroids -> pores.csv (x, y, z, volume, mean probability, depth reached)."""
    from medimg.oct_glands.pipeline import run_project

    path, _ = run_project(glands, _output_dir(output, glands, beside_input=True), probability_path=probability, surface_path=surface_map)
    typer.echo(str(path))


@app.command()
@cli_command
def extract(
    scans: list[Path] = typer.Argument(..., help="OCT volumes (multi-page TIFF); the model loads once."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder; default: SCAN_oct/ beside each scan. With several scans, one subfolder each."),
    axes: str = AxesOption,
    no_denoise: bool = typer.Option(False, "--no-denoise", help="Skip BM3D (the scan is already denoised)."),
    sigma: Optional[float] = SigmaOption,
    domain: str = DomainOption,
    bm3d_stage: str = StageOption,
    denoiser: str = DenoiserOption,
    noise_region: str = NoiseRegionOption,
    denoise_rows: str = DenoiseRowsOption,
    surface_method: SurfaceMethod = SurfaceMethodOption,
    smooth: float = SmoothOption,
    rising_only: bool = RisingOption,
    median: int = MedianOption,
    stride: int = StrideOption,
    tiling: str = typer.Option("band", "--tiling", help="band: tiles over the surface band, each voxel predicted about once; paper: the paper's overlapping 80^3 blocks at --stride (~2-3x slower; what the crop/infer stage chain computes)."),
    model: Optional[str] = NetworkOption,
    weights: Optional[Path] = WeightsOption,
    device: str = DeviceOption,
    batch_size: int = BatchOption,
    weighting: str = WeightingOption,
    test_time: str = TestTimeOption,
    value: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=1.0, help="Fixed probability threshold; default: Otsu."),
    min_size: int = MinSizeOption,
    connectivity: int = ConnectivityOption,
    min_probability: float = MinProbabilityOption,
    min_depth: int = MinDepthOption,
    as_json: bool = typer.Option(False, "--json", help="Print the JSON summary instead of the paths."),
    scheduler: Optional[str] = SchedulerOption,
    workers: Optional[int] = WorkersOption,
) -> None:
    """All seven stages in one process -> pores.csv, glands.tif, fingerprint.png, summary.json."""
    from medimg.oct_glands.pipeline import DenoiseOptions, ExtractOptions, InferenceOptions, SurfaceOptions, extract_many

    options = ExtractOptions(
        denoise=DenoiseOptions(enabled=not no_denoise, sigma=sigma, domain=domain, stage=bm3d_stage, denoiser=denoiser,
                               noise_region=noise_region, rows=denoise_rows, device=device),
        surface=SurfaceOptions(method=surface_method.value, smooth_sigma=smooth, rising_only=rising_only, median_size=median),
        inference=InferenceOptions(model=model, weights=weights, device=device, batch_size=batch_size, weighting=weighting,
                                   test_time=test_time),
        stride=stride,
        tiling=tiling,
        threshold=value,
        min_size=min_size,
        connectivity=connectivity,
        min_probability=min_probability,
        min_depth=min_depth,
    )
    from medimg.common.tables import to_json

    from medimg.common.batch import BatchEngine

    outcome = extract_many(scans, output, axes=axes, options=options, engine=BatchEngine(scheduler=scheduler, workers=workers))
    for result in outcome.results:
        if as_json:
            typer.echo(to_json(result.summary).rstrip("\n"))
        else:
            _echo_paths(result.paths)
    exit_for(outcome)


@app.command()
@cli_command
def train(
    data_dir: Path = typer.Argument(..., help="Folder of NAME.tif volumes with NAME_glands.tif masks."),
    output: Path = typer.Option(Path("runs/oct"), "-o", "--output", help="Run folder: weights, checkpoint, log (resumes from it)."),
    model: str = ModelOption,
    epochs: int = typer.Option(20, "--epochs", min=1),
    steps: int = typer.Option(50, "--steps-per-epoch", min=1),
    batch_size: int = typer.Option(2, "--batch-size", min=1),
    crop_size: int = typer.Option(80, "--crop", help="Training cube edge (divisible by 4, <= 80); smaller is faster on CPU."),
    learning_rate: float = typer.Option(1e-3, "--lr", min=0.0),
    lr_step: int = typer.Option(0, "--lr-step", min=0, help="Divide the learning rate by 10 every this many epochs; 0 = constant."),
    seed: int = typer.Option(0, "--seed"),
    denoise_first: bool = typer.Option(False, "--denoise", help="BM3D the volumes first (cached in the run folder)."),
    device: str = DeviceOption,
    fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint and start over."),
    start_weights: Optional[Path] = typer.Option(None, "--start-weights", help="Fine-tune these safetensors weights (same --model) "
                                                 "instead of starting from random layers; ignored when resuming a checkpoint."),
    axial_scale: str = typer.Option("1", "--axial-scale", help="LOW,HIGH: stretch each block's depth by a log-uniform factor "
                                    "in this range, as scanners of other axial sampling record ducts (1 = off)."),
    loader_workers: int = typer.Option(0, "--loader-workers", min=0, help="Processes drawing and augmenting training blocks "
                                       "beside the training loop (0: in it); keeps a GPU fed."),
) -> None:
    """Train a gland network (Adam, Dice loss) on ROIs at stride 20 with rotations and flips."""
    from medimg.oct_glands.train import parse_axial_scale
    from medimg.oct_glands.train import train as run_training

    result = run_training(
        data_dir, output, model=model, epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, crop=crop_size,
        learning_rate=learning_rate, lr_step_epochs=lr_step, seed=seed, denoise=denoise_first, device=device, resume=not fresh,
        start_weights=start_weights, axial_scale=parse_axial_scale(axial_scale), num_workers=loader_workers,
    )
    _echo_paths(result.paths)


@app.command()
@cli_command
def evaluate(
    pred_mask: Optional[Path] = typer.Option(None, "--pred-mask", help="Predicted glands/mask TIFF."),
    true_mask: Optional[Path] = typer.Option(None, "--true-mask", help="True glands/mask TIFF."),
    pred_pores: Optional[Path] = typer.Option(None, "--pred-pores", help="Predicted pores CSV (x, y columns)."),
    true_pores: Optional[Path] = typer.Option(None, "--true-pores", help="True pores CSV (x, y columns)."),
    radius: float = typer.Option(9.8989, "--radius", min=0.0, help="Match distance in voxels (half the ridge width)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV (header + one row) instead of a table."),
) -> None:
    """Voxel IoU/Dice and pore RT/RF against ground truth."""
    from medimg.common.tables import render_records, to_json
    from medimg.oct_glands.evaluate import evaluate_files

    scores = evaluate_files(predicted_mask=pred_mask, true_mask=true_mask, predicted_pores=pred_pores, true_pores=true_pores, radius=radius)
    if as_json:
        typer.echo(to_json(scores).rstrip("\n"))
    elif as_csv:
        typer.echo(render_records([scores], "csv"))
    else:
        typer.echo(render_records([{"metric": key, "value": value} for key, value in scores.items()]))


@app.command("model-info")
@cli_command
def model_info(as_json: bool = typer.Option(False, "--json", help="JSON instead of a table.")) -> None:
    """Parameters, space and time complexity on an 80^3 input, beside the paper's Table 3."""
    from medimg.common.tables import render_records, to_json
    from medimg.oct_glands.complexity import complexity_table, table3_rows

    typer.echo(to_json(complexity_table()).rstrip("\n") if as_json else render_records(table3_rows()))
