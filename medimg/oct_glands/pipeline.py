"""The OCT pipeline over files: one runner per stage subcommand, and ``extract`` chaining all seven.

Stage files (all canonical ``(Y, Z, X)`` unless said otherwise)::

    denoise   scan.tif              -> denoised.tif      uint8
    surface   denoised.tif          -> surface.tif       (Y, X) int32
    crop      denoised.tif surface  -> blocks.tif        (B, 80, 80, 80) uint8, corners and tissue levels in its metadata
                                       corners.csv       block, y, z, x
    infer     blocks.tif            -> probability.tif   float32
    threshold probability.tif       -> mask.tif          uint8 0/1
    prune     mask.tif              -> glands.tif        uint16 labels
    project   glands.tif            -> pores.csv

``extract`` runs the same functions in memory, so its pores equal the chain's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.batch import HERE, BatchEngine, BatchOutcome, run_batch
from medimg.common.clock import StageClock
from medimg.common.errors import FormatError, InputError, OutputError, expected
from medimg.common.html_report import write_batch_index, write_html
from medimg.common.images import write_png
from medimg.common.outputs import StagedOutput, check_not_input
from medimg.common.report import RunReport
from medimg.common.tables import write_csv
from medimg.common.tiling import tile_reader
from medimg.common.volumes import read_volume, read_volume_metadata, write_volume, write_volume_pages
from medimg.common.denoisers import DEFAULT_DENOISER
from medimg.oct_glands.denoise import check_rows, denoise_volume
from medimg.oct_glands.bscan_overlay import bscan_overlay
from medimg.oct_glands.enface import draw_pores, fingerprint_image
from medimg.oct_glands.noise import DEFAULT_NOISE_REGION, measure_noise_sigma
from medimg.oct_glands.intensity import tissue_levels
from medimg.oct_glands.depth_window import DepthWindow
from medimg.oct_glands.inference import InferenceOptions, oct_network, predict_probability, predict_probability_window
from medimg.oct_glands.project import PORE_COLUMNS, gland_pores
from medimg.oct_glands.report_page import extract_page
from medimg.oct_glands.prune import (MIN_GLAND_DEPTH, MIN_GLAND_PROBABILITY, MIN_GLAND_VOXELS, drop_glands, faint_glands, label_glands,
                                      label_glands_by_slabs, shallow_glands)
from medimg.oct_glands.roi import BLOCK_SIZE, INFERENCE_STRIDE, TILINGS, band_tiles, clear_outside_band, extract_blocks, roi_corners
from medimg.oct_glands.scan import load_scan
from medimg.oct_glands.surface import detect_surface
from medimg.oct_glands.threshold import binarize, window_threshold

OUTPUT_TAG = "oct"
# The paper's path keeps float32 probabilities (its pores equal the stage chain's); the fast band
# path stores uint8 codes, a quarter of the memory, within 0.002 of the float.
PROBABILITY_STORAGE_OF_TILING = {"paper": "float32", "band": "uint8"}


@dataclass(frozen=True)
class SurfaceOptions:
    method: str = "robust"  # "paper": the largest step, refined by the three options below
    smooth_sigma: float = 0.0
    rising_only: bool = False
    median_size: int = 0


@dataclass(frozen=True)
class DenoiseOptions:
    enabled: bool = True
    sigma: float | None = None
    domain: str = "log"
    stage: str = "full"
    denoiser: str = DEFAULT_DENOISER
    noise_region: str = DEFAULT_NOISE_REGION  # where sigma is measured when not given: air above the skin, or tissue
    rows: str = "surface"  # the rows the ROIs read in a band following the surface, in a rectangle ("tissue"), or "all"
    device: str = "auto"  # where a torch denoiser runs

    def __post_init__(self) -> None:  # bad options fail once, before any scan is read
        from medimg.common.denoisers import denoiser_options
        from medimg.common.errors import OptionValueError
        from medimg.oct_glands.noise import NOISE_REGIONS

        if self.noise_region not in NOISE_REGIONS:
            raise OptionValueError(expected(f"--noise-region among {', '.join(NOISE_REGIONS)}", repr(self.noise_region)))
        from medimg.oct_glands.intensity import check_domain

        check_domain(self.domain)
        check_rows(self.rows)
        denoiser_options(self.denoiser, stage=self.stage, device=self.device)


@dataclass(frozen=True)
class ExtractOptions:
    denoise: DenoiseOptions = field(default_factory=DenoiseOptions)
    surface: SurfaceOptions = field(default_factory=SurfaceOptions)
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    stride: int = INFERENCE_STRIDE
    tiling: str = "band"  # tiles over the surface band, each voxel predicted about once (roi.band_tiles); "paper": 80^3 blocks at stride 40
    threshold: float | None = None
    min_size: int = MIN_GLAND_VOXELS
    connectivity: int = 3
    min_probability: float = MIN_GLAND_PROBABILITY  # glands of a lower mean probability are dropped; 0: the paper's size rule alone
    min_depth: int = MIN_GLAND_DEPTH  # glands whose depth_reached is smaller are dropped (the bright band, not ducts); 0: off
    # band tiles reaching this far past the field's edges over the mirrored scan (roi.band_tiles):
    # 16 gave fresh held-out seeds 407-409 Dice 0.883 against 0.886 and the paper family a false pore, so 0
    field_margin: int = 0

    def __post_init__(self) -> None:
        from medimg.common.errors import OptionValueError

        if self.tiling not in TILINGS:
            raise OptionValueError(expected(f"--tiling among {', '.join(TILINGS)}", repr(self.tiling)))
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:  # 0 would make every voxel of the scan a gland
            raise OptionValueError(expected("--threshold in (0, 1]", self.threshold))
        if not 0.0 <= self.min_probability <= 1.0:
            raise OptionValueError(expected("--min-probability in [0, 1]", self.min_probability))
        if self.min_depth < 0:
            raise OptionValueError(expected("--min-depth >= 0", self.min_depth))
        if self.field_margin < 0:
            raise OptionValueError(expected("a field margin >= 0", self.field_margin))


def _read_labels(path: Path, *, what: str) -> np.ndarray:
    volume = read_volume(path)
    if not np.issubdtype(volume.dtype, np.integer):
        raise FormatError(expected(f"an integer {what} volume", f"dtype {volume.dtype} in '{Path(path).name}'"))
    return np.asarray(volume)


def _read_probability(path: Path) -> np.ndarray:
    probability = np.asarray(read_volume(path), dtype=np.float32)
    if probability.size and (probability.min() < 0 or probability.max() > 1):
        raise FormatError(expected("probabilities in [0, 1]", f"{probability.min():.3g}..{probability.max():.3g} in '{Path(path).name}'"))
    return probability


def _dropped_glands(pores: list[dict], *, min_probability: float, min_depth: int) -> tuple[list[int], int, int]:
    """Ids of the glands the two rules beyond the paper's size drop (faint first), how many are faint, how many shallow."""
    faint = faint_glands({pore["id"]: pore["mean_probability"] for pore in pores}, min_probability=min_probability)
    faint_ids = set(faint)
    kept = [pore for pore in pores if pore["id"] not in faint_ids]
    shallow = shallow_glands({pore["id"]: pore["depth_reached"] for pore in kept}, min_depth=min_depth)
    return sorted(faint + shallow), len(faint), len(shallow)


def _progress(description: str):
    return lambda items: console.track(items, description=description)


# ---- stage runners (one per subcommand) -------------------------------------------------------


def run_denoise(scan: Path, output_dir: Path, *, axes: str, options: DenoiseOptions) -> Path:
    volume = load_scan(scan, axes=axes, require_block=False)
    denoised = denoise_volume(volume, sigma=options.sigma, domain=options.domain, stage=options.stage, denoiser=options.denoiser,
                              noise_region=options.noise_region, rows=options.rows, device=options.device,
                              progress=_progress(options.denoiser))
    return write_volume(output_dir / "denoised.tif", denoised, inputs=[scan])


def run_surface(volume_path: Path, output_dir: Path, *, axes: str, options: SurfaceOptions) -> Path:
    volume = load_scan(volume_path, axes=axes, require_block=False)
    surface = detect_surface(volume, **asdict(options))
    return write_volume(output_dir / "surface.tif", surface, metadata={"axes": "YX", **asdict(options)}, inputs=[volume_path])


def _read_surface(path: Path, volume_shape: tuple[int, int, int]) -> np.ndarray:
    import tifffile

    try:
        surface = tifffile.imread(path)
    except Exception as error:
        raise FormatError(expected("a surface TIFF written by 'medimg oct surface'", f"'{Path(path).name}' ({type(error).__name__})")) from None
    if surface.shape != (volume_shape[0], volume_shape[2]):
        raise InputError(expected(f"a surface map of shape (Y, X) = {(volume_shape[0], volume_shape[2])}", f"{surface.shape}"))
    return surface


def run_crop(volume_path: Path, surface_path: Path, output_dir: Path, *, axes: str, stride: int) -> list[Path]:
    if not Path(surface_path).exists():
        raise InputError(expected("an existing surface TIFF", f"'{surface_path}' which does not exist"))
    volume = load_scan(volume_path, axes=axes)
    surface = _read_surface(surface_path, volume.shape)
    corners = roi_corners(surface, volume.shape, size=BLOCK_SIZE, stride=stride)
    blocks = extract_blocks(volume, corners, size=BLOCK_SIZE)
    metadata = {"volume_shape": list(volume.shape), "block_size": BLOCK_SIZE, "stride": stride, "corners": corners.tolist(),
                "tissue_levels": list(tissue_levels(volume, surface, depth=BLOCK_SIZE))}
    inputs = [volume_path, surface_path]
    blocks_path = write_volume(output_dir / "blocks.tif", blocks, metadata=metadata, inputs=inputs)
    rows = [{"block": i, "y": int(y), "z": int(z), "x": int(x)} for i, (y, z, x) in enumerate(corners)]
    corners_path = write_csv(output_dir / "corners.csv", rows, ["block", "y", "z", "x"], inputs=inputs)
    return [blocks_path, corners_path]


def run_infer(blocks_path: Path, output_dir: Path, *, options: InferenceOptions) -> Path:
    import tifffile

    metadata = read_volume_metadata(blocks_path)
    if not {"volume_shape", "corners", "block_size"} <= metadata.keys():
        raise FormatError(expected("blocks written by 'medimg oct crop' (corners in the TIFF metadata)", f"'{Path(blocks_path).name}' without them"))
    corners = np.asarray(metadata["corners"], dtype=np.int64).reshape(-1, 3)
    size = int(metadata["block_size"])
    try:
        blocks = tifffile.memmap(blocks_path, mode="r")  # blocks hold ~4x the volume: do not load them all
    except (ValueError, OSError):
        blocks = tifffile.imread(blocks_path)
    blocks = blocks.reshape(-1, size, size, size)
    if len(blocks) != len(corners):
        raise FormatError(expected(f"{len(corners)} blocks", f"{len(blocks)} in '{Path(blocks_path).name}'"))
    network = oct_network(options)
    levels = metadata.get("tissue_levels")  # blocks cropped by older versions lack them: measured on the blocks then
    probability = predict_probability(
        lambda batch: blocks[batch], corners, tuple(metadata["volume_shape"]), block_size=size,
        predictor=network, weighting=options.weighting, batch_size=options.batch_size,
        levels=tuple(levels) if levels is not None else None, test_time=options.test_time, progress=_progress("infer"),
    )
    return write_volume(output_dir / "probability.tif", probability, metadata={"weights": network.source}, inputs=[blocks_path])


def run_threshold(probability_path: Path, output_dir: Path, *, value: float | None) -> tuple[Path, float]:
    mask, threshold = binarize(_read_probability(probability_path), threshold=value)
    path = write_volume(output_dir / "mask.tif", mask.astype(np.uint8), metadata={"threshold": threshold}, inputs=[probability_path])
    return path, threshold


def run_prune(mask_path: Path, output_dir: Path, *, min_size: int, connectivity: int, probability_path: Path | None = None,
              min_probability: float | None = None, surface_path: Path | None = None, min_depth: int | None = None) -> tuple[Path, int]:
    """Stage 6; with ``probability_path``, also drops glands of a mean probability under ``min_probability``
    (None: ``extract``'s default with a map, 0 without one); with ``surface_path``, those whose depth
    reached below the surface is under ``min_depth`` (None: ``extract``'s default with a surface, 0 without one)."""
    from medimg.common.errors import OptionValueError

    if min_probability is None:
        min_probability = MIN_GLAND_PROBABILITY if probability_path is not None else 0.0
    if not 0.0 <= min_probability <= 1.0:  # refused before the mask is read
        raise OptionValueError(expected("--min-probability in [0, 1]", min_probability))
    if min_probability > 0 and probability_path is None:
        raise OptionValueError(expected("--probability with --min-probability above 0", "no probability map"))
    if min_depth is None:
        min_depth = MIN_GLAND_DEPTH if surface_path is not None else 0
    if min_depth < 0:
        raise OptionValueError(expected("--min-depth >= 0", min_depth))
    if min_depth > 0 and surface_path is None:
        raise OptionValueError(expected("--surface with --min-depth above 0", "no surface map"))
    labels = label_glands(_read_labels(mask_path, what="mask") > 0, min_size=min_size, connectivity=connectivity)
    probability = _read_probability(probability_path) if probability_path is not None else None
    if probability is not None and probability.shape != labels.shape:
        raise InputError(expected(f"a probability map of the mask's shape {labels.shape}", f"shape {probability.shape}"))
    surface = _read_surface(surface_path, labels.shape) if surface_path is not None else None
    if probability is not None or surface is not None:
        pores = gland_pores(labels, probability=probability, surface=surface)
        drop_glands(labels, _dropped_glands(pores, min_probability=min_probability, min_depth=min_depth)[0])
    metadata = {"min_size": min_size, "connectivity": connectivity, "min_probability": min_probability, "min_depth": min_depth}
    inputs = [mask_path, *(path for path in (probability_path, surface_path) if path is not None)]
    path = write_volume(output_dir / "glands.tif", labels, metadata=metadata, inputs=inputs)
    return path, int(labels.max())


def run_project(labels_path: Path, output_dir: Path, *, probability_path: Path | None, surface_path: Path | None = None) -> tuple[Path, list[dict]]:
    labels = _read_labels(labels_path, what="label")
    probability = _read_probability(probability_path) if probability_path is not None else None
    surface = _read_surface(surface_path, labels.shape) if surface_path is not None else None
    pores = gland_pores(labels, probability=probability, surface=surface)
    inputs = [labels_path, *(path for path in (probability_path, surface_path) if path is not None)]
    return write_csv(output_dir / "pores.csv", pores, PORE_COLUMNS, inputs=inputs), pores


# ---- extract ------------------------------------------------------------------------------------


EXTRACT_FILES = ("pores.csv", "glands.tif", "fingerprint.png", "bscan_overlay.png", "summary.json", "report.html")


@dataclass
class ExtractResult:
    pores_csv: Path
    glands_tif: Path
    fingerprint_png: Path
    bscan_overlay_png: Path
    summary_json: Path
    report_html: Path
    report: RunReport

    @property
    def summary(self) -> dict:
        return self.report.to_dict()

    @property
    def paths(self) -> list[Path]:
        return [self.pores_csv, self.glands_tif, self.fingerprint_png, self.bscan_overlay_png, self.summary_json, self.report_html]


def extract(
    scan: Path,
    output_dir: Path,
    *,
    axes: str = "YZX",
    options: ExtractOptions = ExtractOptions(),
    predictor=None,
) -> ExtractResult:
    """Run all seven stages in one process; write pores CSV, glands TIFF, fingerprint PNG, B-scan
    overlay PNG, summary JSON and the HTML report (the two pictures, stage times, summary).

    ``predictor`` replaces the network (tests pass a lambda returning logits); by default the
    network of ``options.inference`` is loaded (pass :func:`oct_network` to share one across scans).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{output_dir}' which is a file"))
    for name in EXTRACT_FILES:
        check_not_input(output_dir / name, [scan])  # before hours of work, not after
    clock = StageClock(announce=True)
    volume = load_scan(scan, axes=axes, mmap=not options.denoise.enabled)  # denoised in place: read into memory once
    if predictor is None:
        predictor = oct_network(options.inference)
    report = RunReport(command="oct extract", input=str(scan), options=_jsonable_options(options, axes))
    report.use_model(predictor)  # loads the network now: bad weights fail before hours of denoising
    if options.denoise.enabled:
        d = options.denoise
        sigma = d.sigma
        if sigma is None:
            with clock.stage("noise"):  # from a sample of B-scans: a fixed cost, whatever the scan's size
                sigma = measure_noise_sigma(volume, region=d.noise_region, domain=d.domain)
        with clock.stage("denoise"):
            volume = denoise_volume(volume, sigma=sigma, domain=d.domain, stage=d.stage, denoiser=d.denoiser, noise_region=d.noise_region, rows=d.rows,
                                    device=d.device, in_place=True, progress=_progress(d.denoiser))  # the raw scan is not used again
    with clock.stage("surface"):
        surface = detect_surface(volume, **asdict(options.surface))
    with clock.stage("crop"):
        if options.tiling == "band":
            corners, shapes = band_tiles(surface, volume.shape, depth=BLOCK_SIZE, field_margin=options.field_margin)
        else:
            corners, shapes = roi_corners(surface, volume.shape, size=BLOCK_SIZE, stride=options.stride), None
        levels = tissue_levels(volume, surface, depth=BLOCK_SIZE)
    with clock.stage("infer"):
        finish_rows = None
        if shapes is not None:
            def finish_rows(first: int, rows: np.ndarray, top: int) -> None:
                clear_outside_band(rows, surface[first : first + len(rows)], depth=BLOCK_SIZE, top=top)
        probability = predict_probability_window(
            tile_reader(volume, corners, (BLOCK_SIZE,) * 3 if shapes is None else shapes, beyond="reflect"), corners, volume.shape,
            block_size=BLOCK_SIZE, tile_shapes=shapes, predictor=predictor, weighting=options.inference.weighting,
            batch_size=options.inference.batch_size, levels=levels, storage=PROBABILITY_STORAGE_OF_TILING[options.tiling],
            test_time=options.inference.test_time, finish_rows=finish_rows, progress=_progress("infer"),
        )
    with clock.stage("threshold"):
        threshold = window_threshold(probability, threshold=options.threshold)
    with clock.stage("prune"):
        label_rows, mask_voxels = label_glands_by_slabs(lambda rows: probability.values(rows) >= threshold, volume.shape[0],
                                                        min_size=options.min_size, connectivity=options.connectivity)
        labels = DepthWindow(label_rows, top=probability.top, depth=volume.shape[1])
    with clock.stage("project"):
        pores = gland_pores(labels.data, probability=probability.data, top=labels.top, probability_scale=probability.scale, surface=surface)
        dropped, faint, shallow = _dropped_glands(pores, min_probability=options.min_probability, min_depth=options.min_depth)
        if dropped:
            drop_glands(labels.data, dropped)
            pores = gland_pores(labels.data, probability=probability.data, top=labels.top, probability_scale=probability.scale, surface=surface)
        window_depths = [probability.top, probability.bottom]
        del probability

    report.seconds_per_stage = clock.seconds
    report.results = {
        "volume_shape_yzx": list(volume.shape),
        "blocks": len(corners),
        "tiling": options.tiling,
        "largest_tile": [int(n) for n in (shapes[np.argmax(shapes.prod(axis=1))] if shapes is not None and len(shapes) else (BLOCK_SIZE,) * 3)],
        "window_depths": window_depths,  # the depths probabilities and labels are held for: zero above and below
        "tissue_levels": [round(level, 2) for level in levels],
        "threshold": threshold,
        "mask_voxels": mask_voxels,
        "faint_glands_dropped": faint,
        "shallow_glands_dropped": shallow,
        "glands": len(pores),
        "pores": len(pores),
        "gland_voxels": int(sum(p["volume_voxels"] for p in pores)),
    }
    staged = StagedOutput(output_dir)
    try:
        write_csv(staged.path("pores.csv"), pores, PORE_COLUMNS)
        write_volume_pages(staged.path("glands.tif"), labels.bscans(), shape=labels.shape, dtype=labels.data.dtype, metadata={"threshold": threshold})
        write_png(staged.path("fingerprint.png"), draw_pores(fingerprint_image(surface), pores))
        write_png(staged.path("bscan_overlay.png"), bscan_overlay(volume, surface, labels, band=BLOCK_SIZE))
        report.write_json(staged.path("summary.json"))
        write_html(staged.path("report.html"), extract_page(report.to_dict(), fingerprint_png=staged.path("fingerprint.png"),
                                                              bscan_overlay_png=staged.path("bscan_overlay.png")))
    except BaseException:
        staged.discard()
        raise
    pores_csv, glands_tif, fingerprint_png, bscan_overlay_png, summary_json, report_html = staged.commit()
    return ExtractResult(pores_csv, glands_tif, fingerprint_png, bscan_overlay_png, summary_json, report_html, report)


def _jsonable_options(options: ExtractOptions, axes: str) -> dict:
    raw = asdict(options)
    raw["inference"]["weights"] = str(options.inference.weights) if options.inference.weights else None
    raw["axes"] = axes
    return raw


def extract_many(scans: list[Path], output: Path | None, *, axes: str = "YZX", options: ExtractOptions = ExtractOptions(),
                 predictor=None, engine: BatchEngine = HERE) -> BatchOutcome[ExtractResult]:
    """:func:`extract` over several scans with one model load (per Dask worker with ``engine``),
    under the common batch policy (:func:`medimg.common.batch.run_batch`: a bad scan is reported
    and skipped, a bad model stops)."""
    from medimg.common.outputs import batch_output_dirs
    from medimg.common.axes import parse_axes

    parse_axes(axes)  # a bad option fails once, not once per scan
    scans = [Path(scan) for scan in scans]
    network = predictor if predictor is not None else oct_network(options.inference)
    targets = dict(zip(scans, batch_output_dirs(scans, output, OUTPUT_TAG)))

    def run_one(scan: Path) -> ExtractResult:
        if not scan.is_file():
            raise InputError(expected("an existing OCT volume file", f"'{scan}' which does not exist"))
        return extract(scan, targets[scan], axes=axes, options=options, predictor=network)

    outcome = run_batch(scans, run_one, noun="scans", engine=engine)
    if output is not None and len(scans) > 1:
        cases = [(result.report.input, result.report_html, {
            "pores": result.report.results["pores"], "threshold": result.report.results["threshold"]}) for result in outcome.results]
        write_batch_index(Path(output), f"OCT extract: {len(scans)} scans", cases, outcome.failures)
    return outcome
