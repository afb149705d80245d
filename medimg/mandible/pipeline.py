"""The mandible pipeline in one process: ``segment`` (every stage, one series) and ``segment_many``
(several series, one model load), with the format list and the report they write.

The stage subcommands (:mod:`medimg.mandible.stages`) run the same functions through files; the
pieces live in :mod:`~medimg.mandible.inference` (network, slice-wise probabilities),
:mod:`~medimg.mandible.postprocess` (mask, grid, surface) and :mod:`~medimg.mandible.output_folders`
(file names, folders, the all-or-nothing writer).

Steps of ``segment``: read the series (:func:`medimg.common.dicom_series.read_ct_series`), window and resize
each slice to the network's input (:func:`~medimg.mandible.preprocess.to_model_input`), predict
slice batches on the device, bring the logits back to the CT grid
(:func:`~medimg.mandible.preprocess.resize_slices`) and apply the sigmoid
(:func:`~medimg.mandible.inference.predict_volume`), threshold, keep the largest 3-D component,
then write the outputs.

Output files and their coordinates:

========== ================ ========================================================================
format     file             content
========== ================ ========================================================================
nifti      mask.nii.gz      uint8 0/1 mask, array ``[i, j, k]`` with ``CTSeries.affine_ras`` (RAS mm)
                            as sform and qform: opens aligned with the CT in 3D Slicer / ITK-SNAP
stl        mandible.stl     closed, smoothed surface in patient **LPS** millimetres
                            (``CTSeries.affine``; the header says ``SPACE=LPS``, as 3D Slicer expects)
png        overlay.png      montage of axial slices with the mask in orange
json       report.json      volume, slice range, bounding box (LPS mm), timings, weights, notes
seg        seg.dcm          DICOM SEG referencing the CT images (optional; refused after --correct-tilt)
========== ================ ========================================================================

Nothing half-written is left behind: ``segment`` writes into a hidden temporary folder beside
the output folder and moves the files in only once all of them exist
(:class:`~medimg.common.outputs.StagedOutput`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.batch import HERE, BatchEngine, BatchOutcome, run_batch
from medimg.common.clock import StageClock
from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.report import RunReport
from medimg.mandible.inference import InferenceOptions, mandible_network, network_settings, predict_volume
from medimg.common.outputs import StagedOutput
from medimg.mandible.output_folders import FILE_NAMES, check_output_dir, output_dirs, series_output_dir
from medimg.mandible.postprocess import (
    DEFAULT_SMOOTHING,
    DEFAULT_THRESHOLD,
    check_threshold,
    lps_affine,
    mask_from_probabilities,
    stored_affine,
    write_mesh,
)

FORMATS = ("nifti", "stl", "png", "json", "seg", "html")
DEFAULT_FORMATS = ("nifti", "stl", "png", "json", "html")


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"nifti,stl"`` (or an iterable of names) -> the formats in :data:`FORMATS` order."""
    items = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text)]
    items = [item for item in items if item]
    unknown = [item for item in items if item not in FORMATS]
    if unknown or not items:
        raise OptionValueError(expected(f"--format as a comma-separated subset of {','.join(FORMATS)}", repr(",".join(unknown) or text)))
    return tuple(name for name in FORMATS if name in items)


def mask_statistics(mask: np.ndarray, affine: np.ndarray) -> dict:
    """Volume, slice range and bounding box of a mask in patient space.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
    affine : (4, 4) voxel ``(i=column, j=row, k=slice)`` -> LPS mm (``CTSeries.affine``)

    Returns
    -------
    dict
        ``voxels``, ``voxel_volume_mm3`` (``|det affine[:3, :3]|``), ``volume_mm3``,
        ``slice_range`` ``[first, last]`` slice indices holding mandible, ``slice_range_z_mm``
        (their centres' patient z, LPS = RAS z), ``bounding_box_mm`` (LPS, enclosing the voxels
        whole): ``min``, ``max``, ``size``; the last three are None for an empty mask.
    """
    voxels = int(np.count_nonzero(mask))
    voxel_volume = float(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3])))
    stats = {
        "voxels": voxels,
        "voxel_volume_mm3": voxel_volume,
        "volume_mm3": voxels * voxel_volume,
        "slice_range": None,
        "slice_range_z_mm": None,
        "bounding_box_mm": None,
    }
    if not voxels:
        return stats
    slices, rows, columns = (np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    first, last = int(slices[0]), int(slices[-1])
    affine = np.asarray(affine, dtype=np.float64)
    # The box's faces are the outer faces of the extreme voxels (centre +- half a voxel).
    corners = np.array([[i, j, k, 1.0] for i in (columns[0] - 0.5, columns[-1] + 0.5) for j in (rows[0] - 0.5, rows[-1] + 0.5)
                        for k in (first - 0.5, last + 0.5)])
    world = (affine @ corners.T).T[:, :3]
    low, high = world.min(axis=0), world.max(axis=0)
    stats.update({
        "slice_range": [first, last],
        "slice_range_z_mm": [float((affine @ [0.0, 0.0, k, 1.0])[2]) for k in (first, last)],
        "bounding_box_mm": {"space": "LPS", "min": low.tolist(), "max": high.tolist(), "size": (high - low).tolist()},
    })
    return stats


@dataclass
class SegmentResult:
    output_dir: Path
    paths: list[Path]
    report: dict
    notes: list[str] = field(default_factory=list)


def segment(
    dicom_dir: Path | str,
    out_dir: Path | str | None,
    *,
    predictor: Callable[[np.ndarray], np.ndarray],
    input_size: int | None = None,
    series_uid: str | None = None,
    correct_tilt: bool = False,
    resample: bool = True,
    formats: Iterable[str] = DEFAULT_FORMATS,
    threshold: float = DEFAULT_THRESHOLD,
    level: float | None = None,
    width: float | None = None,
    keep_largest: bool = True,
    smoothing: int = DEFAULT_SMOOTHING,
) -> SegmentResult:
    """Segment the mandible in one CT series and write the requested outputs.

    Parameters
    ----------
    dicom_dir : folder with the series (see :func:`medimg.common.dicom_series.read_ct_series`)
    out_dir : output folder (created); None: ``<dicom_dir>_mandible`` beside the input
    predictor : :func:`~medimg.mandible.inference.mandible_network`, or any callable ``(N, 3, S, S) float32 -> (N, 1, S, S)``
        logits (then ``input_size`` = S is required)
    formats : subset of :data:`FORMATS`
    threshold : probability at or above which a voxel is mandible
    level, width : CT window in HU; default: the one the network was trained with
    keep_largest : keep only the largest 26-connected component (the mandible is one bone)
    smoothing : Taubin smoothing iterations of the STL surface

    Returns
    -------
    SegmentResult
        The paths written (in :data:`FORMATS` order) and the report.

    An empty prediction is not an error: it is warned about, mask/overlay/report and an empty SEG
    (no segment frames' content) are written, the STL skipped with a note. On any error nothing is
    left in the output folder, and no output folder is created when no file is written.

    Raises
    ------
    InputError
        Besides the reader's verdicts: ``seg`` asked for a tilt-corrected or resampled (variable
        spacing) series, whose mask does not lie on the source images' pixel grid.
    OutputError
        ``out_dir`` is a file, or is (inside) the DICOM folder.
    """
    from medimg.common.dicom_series import read_ct_series

    dicom_dir = Path(dicom_dir)
    formats = parse_formats(formats)
    check_threshold(threshold)
    out_dir = Path(out_dir) if out_dir is not None else series_output_dir(dicom_dir)
    check_output_dir(out_dir, dicom_dir=dicom_dir)
    clock = StageClock()
    with clock.stage("read"):
        series = read_ct_series(dicom_dir, series_uid=series_uid, correct_tilt=correct_tilt, resample=resample)
    if series.resampled and "seg" in formats:
        done = [word for word, happened in (
            ("tilt-corrected", series.tilt_corrected),
            (f"resampled from {len(series.spacing_runs)} spacing runs (variable slice spacing)", series.resampled_grid is not None),
        ) if happened]
        raise InputError(expected(
            "a series on its own slice grid for DICOM SEG",
            f"a {' and '.join(done)} volume (its mask does not lie on the source images' pixels); drop seg from --format "
            "(mask.nii.gz and mandible.stl are placed right) or reslice the series first",
        ))
    notes = list(series.notes)
    with clock.stage("load_model"):
        settings = network_settings(predictor, input_size=input_size, level=level, width=width)
    level, width, input_size = settings.level, settings.width, settings.input_size

    probabilities = predict_volume(series.volume, predictor, **settings.predict_options(), clock=clock)
    with clock.stage("postprocess"):
        mask, mask_notes = mask_from_probabilities(probabilities, threshold=threshold, keep_largest=keep_largest)
    notes += mask_notes
    stats = mask_statistics(mask, series.affine)
    skipped: list[str] = []
    if not stats["voxels"]:
        message = f"no voxel reached the threshold {threshold:g}: the mask is empty"
        notes.append(message)
        # An empty SEG still says "no mandible found" to a viewer; a surface of nothing cannot be written.
        if "stl" in formats:
            skipped.append("stl")
            notes.append(f"{FILE_NAMES['stl']} not written: no mandible to mesh")
            message += f"; {FILE_NAMES['stl']} not written"
        console.warn(f"{dicom_dir}: {message}")

    report = RunReport(
        command="mandible segment",
        input=str(dicom_dir),
        results={
            "series_uid": series.series_uid,
            "shape": list(series.volume.shape),
            "spacing_mm": list(series.spacing),
            # How the grid above came from the source slices (SPEC section 5: tilt and variable spacing).
            "spacing_runs": [
                {"spacing_mm": run.spacing_mm, "first_slice": run.first_slice, "last_slice": run.last_slice}
                for run in series.spacing_runs
            ],
            "resampled_grid": None if series.resampled_grid is None else {
                "spacing_mm": series.resampled_grid.spacing_mm, "slices": series.resampled_grid.slices,
            },
            "tilt_deg": series.tilt_deg,
            **stats,
            "threshold": threshold,
            "largest_component_only": keep_largest,
            "window": {"level": level, "width": width},
            "input_size": input_size,
            "coordinates": {"nifti": "RAS (affine_ras)", "stl": "LPS mm (CTSeries.affine)", "bounding_box_mm": "LPS"},
            "outputs": [FILE_NAMES[name] for name in formats if name not in skipped],
        },
        weights=settings.weights,
        device=settings.device,
        seconds_per_stage=clock.seconds,
        options={"formats": list(formats), "correct_tilt": correct_tilt, "resample": resample, "smoothing": smoothing},
        notes=notes,
    )
    report.use_model(predictor)
    staged = StagedOutput(out_dir)
    try:
        _write_outputs(staged, formats, skipped, series, mask, report, clock, level=level, width=width, smoothing=smoothing)
    except BaseException:
        staged.discard()
        raise
    paths = staged.commit(stale=[FILE_NAMES[name] for name in skipped])
    return SegmentResult(out_dir, paths, report.to_dict(), notes)


def _write_outputs(staged: StagedOutput, formats, skipped, series, mask, report, clock, *, level, width, smoothing) -> None:
    from medimg.common.images import write_png
    from medimg.common.nifti import write_nifti

    affine_ras = stored_affine(series.affine_ras)
    if "nifti" in formats:
        with clock.stage("write_nifti"):
            write_nifti(staged.path(FILE_NAMES["nifti"]), mask.astype(np.uint8), affine_ras)
    if "stl" in formats and "stl" not in skipped:
        with clock.stage("mesh"):
            report.results["mesh"] = write_mesh(staged.path(FILE_NAMES["stl"]), mask, lps_affine(affine_ras), smoothing=smoothing)
    if "png" in formats:
        from medimg.mandible.overlay import overlay_montage

        with clock.stage("overlay"):
            write_png(staged.path(FILE_NAMES["png"]), overlay_montage(series.volume, mask, level=level, width=width))
    if "seg" in formats:
        from medimg.mandible.seg_export import write_dicom_seg

        with clock.stage("seg"):
            write_dicom_seg(staged.path(FILE_NAMES["seg"]), mask, series.files)
    if "json" in formats:
        report.write_json(staged.path(FILE_NAMES["json"]))
    if "html" in formats:
        from medimg.common.html_report import write_html
        from medimg.mandible.overlay import overlay_montage
        from medimg.mandible.report_page import segment_page

        with clock.stage("html"):
            montage = staged.path(FILE_NAMES["png"]) if "png" in formats else overlay_montage(series.volume, mask, level=level, width=width)
            write_html(staged.path(FILE_NAMES["html"]), segment_page(report.to_dict(), overlay_png=montage))
    # Files in FORMATS order, whatever order they were written in.
    order = {FILE_NAMES[name]: i for i, name in enumerate(FORMATS)}
    staged.names.sort(key=order.__getitem__)


def segment_many(
    dicom_dirs: Sequence[Path | str],
    output: Path | str | None = None,
    *,
    inference: InferenceOptions = InferenceOptions(),
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    engine: BatchEngine = HERE,
    **options,
) -> BatchOutcome[SegmentResult]:
    """:func:`segment` over several series with one model load (per Dask worker with ``engine``), under the common batch policy
    (:func:`medimg.common.batch.run_batch`): a folder that cannot be read or written is reported
    and skipped; model and device errors stop the batch, as they would fail every folder alike."""
    if "formats" in options:
        options["formats"] = parse_formats(options["formats"])  # a bad option fails once, not once per series
    dicom_dirs = [Path(d) for d in dicom_dirs]
    targets = dict(zip(dicom_dirs, output_dirs(dicom_dirs, Path(output) if output is not None else None)))
    network = predictor if predictor is not None else mandible_network(inference)
    outcome = run_batch(dicom_dirs, lambda dicom_dir: segment(dicom_dir, targets[dicom_dir], predictor=network, **options), noun="series",
                        engine=engine)
    formats = options.get("formats", DEFAULT_FORMATS)
    if output is not None and len(dicom_dirs) > 1 and "html" in formats:
        from medimg.common.html_report import write_batch_index

        cases = [(result.report["input"], result.output_dir / FILE_NAMES["html"], {
            "volume_mm3": round(result.report["volume_mm3"], 1), "voxels": result.report["voxels"]}) for result in outcome.results]
        write_batch_index(Path(output), f"Mandible segment: {len(dicom_dirs)} series", cases, outcome.failures)
    return outcome
