"""The mandible pipeline over files: ``segment`` (every stage in one process) and one runner per
stage subcommand, which chain through files so that a batch script can run, cache or replace any stage.

Stage files (volumes ``(Z, Y, X)`` = slice, row, column; NIfTI affine = ``CTSeries.affine_ras``)::

    volume   DICOM_DIR              -> ct.nii.gz           float32 HU (exactly the volume segment works on)
    infer    ct.nii.gz | DICOM_DIR  -> probability.nii.gz  float32 in [0, 1]
    mask     probability.nii.gz     -> mask.nii.gz         uint8 0/1, largest 3-D component
    mesh     mask.nii.gz            -> mandible.stl        LPS mm
    overlay  ct mask.nii.gz         -> overlay.png

``segment`` calls the same functions (:func:`network_settings`, :func:`predict_volume`,
:func:`mask_from_probabilities`, :func:`write_mesh`, :func:`overlay_montage`) on the same grid
(:func:`stored_affine`), so the chain's mask.nii.gz and mandible.stl equal segment's byte for byte.

Steps of ``segment``: read the series (:func:`medimg.common.dicom_series.read_ct_series`), window and resize
each slice to the network's input (:func:`~medimg.mandible.preprocess.to_model_input`), predict
slice batches on the device, bring the probabilities back to the CT grid
(:func:`~medimg.mandible.preprocess.to_original_grid`), threshold, keep the largest 3-D component,
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
the output folder and moves the files in only once all of them exist; each stage writes its one
file atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medimg import __version__
from medimg.common import console
from medimg.common.errors import FormatError, InputError, OutputError, expected

OUTPUT_TAG = "mandible"
FORMATS = ("nifti", "stl", "png", "json", "seg")
DEFAULT_FORMATS = ("nifti", "stl", "png", "json")
FILE_NAMES = {"nifti": "mask.nii.gz", "stl": "mandible.stl", "png": "overlay.png", "json": "report.json", "seg": "seg.dcm"}
CT_FILE = "ct.nii.gz"
PROBABILITY_FILE = "probability.nii.gz"
SLICE_CHUNK = 32  # slices windowed/resized at once: bounds memory at (32, 3, 512, 512) float32 = 100 MB
DEFAULT_THRESHOLD = 0.5
DEFAULT_SMOOTHING = 10


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"nifti,stl"`` (or an iterable of names) -> the formats in :data:`FORMATS` order."""
    items = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text)]
    items = [item for item in items if item]
    unknown = [item for item in items if item not in FORMATS]
    if unknown or not items:
        raise InputError(expected(f"--format as a comma-separated subset of {','.join(FORMATS)}", repr(",".join(unknown) or text)))
    return tuple(name for name in FORMATS if name in items)


@dataclass(frozen=True)
class InferenceOptions:
    arch: str | None = None  # None: the architecture the weights hold (shipped: res-cbam-unet)
    weights: Path | None = None
    device: str = "auto"
    batch_size: int = 8


class LazyNetwork:
    """The network of ``options``, loaded on first use and then shared by every series.

    ``segment`` loads it right after reading a series, so a bad folder fails before the model
    loads and bad weights fail before any output is written.
    """

    def __init__(self, options: InferenceOptions = InferenceOptions()) -> None:
        from medimg.mandible.predictor import check_arch

        check_arch(options.arch)  # a typo in --arch is told before any series is read
        self.options = options
        self._predict: Callable[[np.ndarray], np.ndarray] | None = None
        self.source = "not loaded"
        self.device = "n/a"
        self.input_size: int | None = None
        self.window: tuple[float, float] | None = None

    def load(self) -> None:
        if self._predict is not None:
            return
        from medimg.common.device import resolve_device
        from medimg.mandible.predictor import load_network_with_metadata, network_predictor

        device = resolve_device(self.options.device)
        loaded = load_network_with_metadata(self.options.arch, weights=self.options.weights)
        self._predict = network_predictor(loaded.network, device, batch_size=self.options.batch_size)
        self.source, self.device, self.input_size, self.window = loaded.source, str(device), loaded.input_size, loaded.window
        console.info(f"network {loaded.arch} from {loaded.source}, input {loaded.input_size}x{loaded.input_size}")

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        self.load()
        return self._predict(slices)


class StageClock:
    """Wall-clock seconds per stage (a stage may be entered several times; its times add up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)


def predict_volume(
    hu: np.ndarray,
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    input_size: int,
    level: float,
    width: float,
    clock: StageClock | None = None,
    chunk: int = SLICE_CHUNK,
) -> np.ndarray:
    """Mandible probability of every voxel, slice by slice.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray of float32 (HU)
    predictor : callable, (N, 3, S, S) float32 -> (N, S, S) float32 in [0, 1], S = ``input_size``

    Returns
    -------
    probabilities : (Z, Y, X) ndarray of float32 in [0, 1]
    """
    from medimg.mandible.preprocess import to_model_input, to_original_grid

    clock = clock or StageClock()
    probabilities = np.empty(hu.shape, dtype=np.float32)
    for start in console.track(range(0, hu.shape[0], chunk), description="segment"):
        stop = min(start + chunk, hu.shape[0])
        with clock.stage("preprocess"):
            batch = to_model_input(hu[start:stop], size=input_size, level=level, width=width)
        with clock.stage("infer"):
            predicted = np.asarray(predictor(batch), dtype=np.float32)
        if predicted.shape != (stop - start, input_size, input_size):
            raise InputError(expected(f"predictions of shape {(stop - start, input_size, input_size)}", f"{predicted.shape}"))
        with clock.stage("resample"):
            probabilities[start:stop] = to_original_grid(predicted, shape=hu.shape[1:])
    return probabilities


@dataclass(frozen=True)
class NetworkSettings:
    """What the slice predictor needs around it: input side, CT window (HU), and where it came from."""

    input_size: int
    level: float
    width: float
    weights: str = "custom predictor"
    device: str = "n/a"


def network_settings(
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    input_size: int | None = None,
    level: float | None = None,
    width: float | None = None,
) -> NetworkSettings:
    """Load a :class:`LazyNetwork` and take its input size and window unless given.

    Any other callable needs ``input_size``; the window then defaults to
    :data:`~medimg.mandible.preprocess.DEFAULT_WINDOW`.
    """
    from medimg.mandible.preprocess import DEFAULT_WINDOW

    weights, device = "custom predictor", "n/a"
    if isinstance(predictor, LazyNetwork):
        predictor.load()
        weights, device = predictor.source, predictor.device
        input_size = input_size or predictor.input_size
        level = predictor.window[0] if level is None else level
        width = predictor.window[1] if width is None else width
    if input_size is None:
        raise InputError(expected("the network's input_size with a custom predictor", "none"))
    level = DEFAULT_WINDOW[0] if level is None else level
    width = DEFAULT_WINDOW[1] if width is None else width
    return NetworkSettings(int(input_size), level, width, weights, device)


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold < 1.0:
        raise InputError(expected("a probability threshold in (0, 1)", threshold))
    return threshold


def mask_from_probabilities(
    probabilities: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD, keep_largest: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Threshold the probabilities and keep the largest 26-connected component (the mandible is one bone).

    Parameters
    ----------
    probabilities : (Z, Y, X) ndarray of float32 in [0, 1]
    threshold : probability at or above which a voxel is mandible, in (0, 1)
    keep_largest : drop every component but the largest

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool
    notes : list of str
        What was dropped, for the report.
    """
    from medimg.mandible.mesh import largest_component

    mask = np.asarray(probabilities) >= check_threshold(threshold)
    notes: list[str] = []
    if keep_largest:
        before = int(np.count_nonzero(mask))
        mask = largest_component(mask)
        dropped = before - int(np.count_nonzero(mask))
        if dropped:
            notes.append(f"kept the largest connected component; dropped {dropped} voxel(s) in smaller ones")
    return mask, notes


def stored_affine(affine_ras: np.ndarray) -> np.ndarray:
    """The voxel -> RAS affine as a NIfTI-1 file keeps it (float32 sform), as float64.

    Every output is placed with this one affine, whether it is computed from the DICOM series
    (``segment``) or read back from a stage file: then the chain's mask and mesh equal segment's
    byte for byte, and the STL sits exactly on the NIfTI mask (the rounding is under 1e-5 mm).
    """
    return np.asarray(affine_ras, dtype=np.float64).astype(np.float32).astype(np.float64)


def lps_affine(affine_ras: np.ndarray) -> np.ndarray:
    """Voxel -> RAS mm  to  voxel -> LPS mm (DICOM patient space, the STL's): x and y change sign."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine_ras, dtype=np.float64)


def write_mesh(path: Path | str, mask: np.ndarray, affine_lps: np.ndarray, *, smoothing: int = DEFAULT_SMOOTHING,
               inputs: Iterable[Path] = ()) -> dict:
    """Surface of a (non-empty) mask as a binary STL in LPS mm; returns the report's ``mesh`` entry.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool, already reduced to the component(s) to mesh
    affine_lps : (4, 4) voxel ``(i, j, k)`` -> LPS mm
    smoothing : Taubin smoothing iterations
    """
    from medimg.mandible.mesh import is_closed, mask_to_mesh, write_stl

    vertices, faces = mask_to_mesh(mask, affine_lps, smoothing_iterations=smoothing, largest_component=False)
    write_stl(path, vertices, faces, space="LPS", inputs=inputs)
    return {"vertices": int(len(vertices)), "faces": int(len(faces)), "closed": bool(is_closed(faces)), "smoothing_iterations": smoothing}


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


def _check_output_dir(out_dir: Path, *, dicom_dir: Path | None = None) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{out_dir}' which is a file"))
    if dicom_dir is not None and dicom_dir.is_dir():
        # The next read of the folder would find our outputs (seg.dcm is a DICOM image of its own series).
        source, target = dicom_dir.resolve(), out_dir.resolve()
        if target == source or source in target.parents:
            raise OutputError(expected(f"an output folder outside the DICOM folder '{dicom_dir}'", f"'{out_dir}' inside it"))


class _StagedOutput:
    """Files written into a hidden folder beside ``out_dir``, moved in together by :meth:`commit`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        # The first missing ancestor, removed again when nothing is delivered (it would be left empty).
        self._made = next((folder for folder in reversed(out_dir.parents) if not folder.exists()), None)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        self.names.append(name)
        return self.folder / name

    def commit(self, *, stale: Sequence[str] = ()) -> list[Path]:
        if not self.names:  # nothing to deliver: no (empty) output folder either
            self.discard()
            return []
        created = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        moved: list[Path] = []
        try:
            for name in self.names:
                target = self.out_dir / name
                os.replace(self.folder / name, target)
                moved.append(target)
        except OSError as error:
            for path in moved:
                path.unlink(missing_ok=True)
            if created:
                shutil.rmtree(self.out_dir, ignore_errors=True)
            raise OutputError(expected(f"a writable output folder '{self.out_dir}'", f"{type(error).__name__}: {error}")) from None
        finally:
            self.discard()
        for name in stale:
            (self.out_dir / name).unlink(missing_ok=True)
        return moved

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._made is not None and not self.out_dir.exists():
            for folder in (self.out_dir.parent, *self.out_dir.parent.parents):
                try:
                    folder.rmdir()  # only while empty: never anything another run put there
                except OSError:
                    break
                if folder == self._made:
                    break


def segment(
    dicom_dir: Path | str,
    out_dir: Path | str | None,
    *,
    predictor: Callable[[np.ndarray], np.ndarray],
    input_size: int | None = None,
    series_uid: str | None = None,
    correct_tilt: bool = False,
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
    predictor : a :class:`LazyNetwork`, or any callable ``(N, 3, S, S) float32 -> (N, S, S)``
        probabilities (then ``input_size`` = S is required)
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
        Besides the reader's verdicts: ``seg`` asked for a tilt-corrected (resampled) series, whose
        mask does not lie on the source images' pixel grid.
    OutputError
        ``out_dir`` is a file, or is (inside) the DICOM folder.
    """
    from medimg.common.dicom_series import read_ct_series

    dicom_dir = Path(dicom_dir)
    formats = parse_formats(formats)
    check_threshold(threshold)
    out_dir = Path(out_dir) if out_dir is not None else _default_output_dir(dicom_dir)
    _check_output_dir(out_dir, dicom_dir=dicom_dir)
    clock = StageClock()
    with clock.stage("read"):
        series = read_ct_series(dicom_dir, series_uid=series_uid, correct_tilt=correct_tilt)
    if series.resampled and "seg" in formats:
        raise InputError(expected(
            "a series on its own slice grid for DICOM SEG",
            "a tilt-corrected volume (its mask does not lie on the source images' pixels); drop seg from --format "
            "(mask.nii.gz and mandible.stl are placed right) or reslice the series first",
        ))
    notes = list(series.notes)
    with clock.stage("load_model"):
        settings = network_settings(predictor, input_size=input_size, level=level, width=width)
    level, width, input_size = settings.level, settings.width, settings.input_size

    probabilities = predict_volume(series.volume, predictor, input_size=input_size, level=level, width=width, clock=clock)
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

    report = {
        "medimg_version": __version__,
        "input": str(dicom_dir),
        "series_uid": series.series_uid,
        "shape": list(series.volume.shape),
        "spacing_mm": list(series.spacing),
        **stats,
        "threshold": threshold,
        "largest_component_only": keep_largest,
        "window": {"level": level, "width": width},
        "input_size": input_size,
        "weights": settings.weights,
        "device": settings.device,
        "coordinates": {"nifti": "RAS (affine_ras)", "stl": "LPS mm (CTSeries.affine)", "bounding_box_mm": "LPS"},
        "outputs": [FILE_NAMES[name] for name in formats if name not in skipped],
        "timings_s": clock.seconds,
        "notes": notes,
    }
    staged = _StagedOutput(out_dir)
    try:
        _write_outputs(staged, formats, skipped, series, mask, report, clock, level=level, width=width, smoothing=smoothing)
    except BaseException:
        staged.discard()
        raise
    paths = staged.commit(stale=[FILE_NAMES[name] for name in skipped])
    return SegmentResult(out_dir, paths, report, notes)


def _write_outputs(staged: _StagedOutput, formats, skipped, series, mask, report, clock, *, level, width, smoothing) -> None:
    from medimg.common.images import write_png
    from medimg.common.nifti import write_nifti
    from medimg.common.tables import write_json

    affine_ras = stored_affine(series.affine_ras)
    if "nifti" in formats:
        with clock.stage("write_nifti"):
            write_nifti(staged.path(FILE_NAMES["nifti"]), mask.astype(np.uint8), affine_ras)
    if "stl" in formats and "stl" not in skipped:
        with clock.stage("mesh"):
            report["mesh"] = write_mesh(staged.path(FILE_NAMES["stl"]), mask, lps_affine(affine_ras), smoothing=smoothing)
    if "png" in formats:
        from medimg.mandible.overlay import overlay_montage

        with clock.stage("overlay"):
            write_png(staged.path(FILE_NAMES["png"]), overlay_montage(series.volume, mask, level=level, width=width))
    if "seg" in formats:
        from medimg.mandible.seg_export import write_dicom_seg

        with clock.stage("seg"):
            write_dicom_seg(staged.path(FILE_NAMES["seg"]), mask, series.files)
    if "json" in formats:
        write_json(staged.path(FILE_NAMES["json"]), report)
    # Files in FORMATS order, whatever order they were written in.
    order = {FILE_NAMES[name]: i for i, name in enumerate(FORMATS)}
    staged.names.sort(key=order.__getitem__)


def _default_output_dir(dicom_dir: Path) -> Path:
    from medimg.common.outputs import default_output_dir

    return default_output_dir(dicom_dir, OUTPUT_TAG)


def output_dirs(dicom_dirs: Sequence[Path], output: Path | None) -> list[Path]:
    """Where each series' outputs go: ``-o`` itself for one input; otherwise ``<name>_mandible``
    beside each input, or inside ``-o``. Inputs with the same folder name (``case1/dicom``,
    ``case2/dicom``) are told apart by their parent's name (``case1_dicom_mandible``)."""
    dicom_dirs = [Path(d) for d in dicom_dirs]
    if len(dicom_dirs) == 1:
        return [Path(output) if output is not None else _default_output_dir(dicom_dirs[0])]
    if output is None:
        return [_default_output_dir(d) for d in dicom_dirs]
    names = [_default_output_dir(d).name for d in dicom_dirs]
    if len(set(names)) < len(names):
        names = [f"{d.resolve().parent.name}_{name}" if names.count(name) > 1 else name for d, name in zip(dicom_dirs, names)]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InputError(expected("input folders with distinct names (their outputs go to one folder)", f"two named like '{twice}'"))
    return [Path(output) / name for name in names]


@dataclass
class BatchOutcome:
    results: list[SegmentResult]
    failures: list[tuple[Path, str]]


def segment_many(
    dicom_dirs: Sequence[Path | str],
    output: Path | str | None = None,
    *,
    inference: InferenceOptions = InferenceOptions(),
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    **options,
) -> BatchOutcome:
    """:func:`segment` over several series with one model load.

    A folder that cannot be read or written is reported (one ``Error:`` line) and skipped; with a
    single folder the error is raised. Model and device errors stop the batch: they would fail
    every folder alike.
    """
    dicom_dirs = [Path(d) for d in dicom_dirs]
    targets = output_dirs(dicom_dirs, Path(output) if output is not None else None)
    network = predictor if predictor is not None else LazyNetwork(inference)
    results, failures = [], []
    for dicom_dir, target in zip(dicom_dirs, targets):
        try:
            results.append(segment(dicom_dir, target, predictor=network, **options))
        except (InputError, OutputError) as error:
            if len(dicom_dirs) == 1:
                raise
            console.error_line(f"{dicom_dir}: {error}")
            failures.append((dicom_dir, str(error)))
    return BatchOutcome(results, failures)


# ---- stage runners (one per subcommand; ``segment`` above runs the same functions in memory) ----


@dataclass(frozen=True)
class CTVolume:
    """A CT volume on its grid, from a DICOM folder or a ``ct.nii.gz``."""

    hu: np.ndarray  # (Z, Y, X) float32 HU
    affine_ras: np.ndarray  # (4, 4) voxel (i, j, k) -> RAS mm, as NIfTI keeps it (stored_affine)
    source: Path


def stage_output_dir(output: Path | str | None, source: Path | str) -> Path:
    """``-o`` itself; by default ``<dicom_dir>_mandible/`` for a DICOM folder, the file's own folder
    for a stage file (so the chain's files gather in one folder, where ``segment`` puts its own).
    The folder is created by the first file written into it, so a failed stage leaves nothing."""
    source = Path(source)
    if output is None:
        output = _default_output_dir(source) if source.is_dir() else source.parent
    output = Path(output)
    _check_output_dir(output, dicom_dir=source)
    return output


def series_records(folder: Path | str) -> list[dict]:
    """The image series under ``folder``, one row each (for ``volume --list``), in :func:`list_series` order."""
    from medimg.common.dicom_series import list_series

    return [
        {"series_number": s.number, "modality": s.modality, "images": s.images, "localizers": s.localizers,
         "description": s.description, "series_uid": s.uid}
        for s in list_series(folder)
    ]


def _warn_unusual_orientation(path: Path, affine_ras: np.ndarray) -> None:
    import nibabel as nib

    codes = nib.aff2axcodes(affine_ras)
    # read_ct_series keeps an axial series as stored: columns run to patient left, rows to posterior.
    if codes[:2] != ("L", "P"):
        console.warn(f"{path.name}: voxel axes run {''.join(codes)}, not LP as in an axial DICOM series; slices are "
                     "fed to the network as stored (rotated or mirrored ones segment worse)")


def load_ct(source: Path | str, *, series_uid: str | None = None, correct_tilt: bool = False) -> CTVolume:
    """A CT from a DICOM folder (read as ``segment`` reads it) or from a NIfTI file (``ct.nii.gz``).

    ``series_uid`` and ``correct_tilt`` apply to DICOM folders only.
    """
    from medimg.common.nifti import read_nifti

    source = Path(source)
    if source.is_dir():
        from medimg.common.dicom_series import read_ct_series

        series = read_ct_series(source, series_uid=series_uid, correct_tilt=correct_tilt)
        return CTVolume(series.volume, stored_affine(series.affine_ras), source)
    if series_uid is not None or correct_tilt:
        raise InputError(expected("--series and --correct-tilt only with a DICOM folder", f"the file '{source.name}'"))
    volume, affine_ras = read_nifti(source)
    if not np.issubdtype(volume.dtype, np.number) or np.issubdtype(volume.dtype, np.complexfloating):
        raise InputError(expected("a CT volume of real numbers (HU)", f"dtype {volume.dtype} in '{source.name}'"))
    _warn_unusual_orientation(source, affine_ras)
    return CTVolume(np.asarray(volume, dtype=np.float32), stored_affine(affine_ras), source)


def _read_probability(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from medimg.common.nifti import read_nifti

    probabilities, affine_ras = read_nifti(path)
    if not np.issubdtype(probabilities.dtype, np.floating):
        raise FormatError(expected("float probabilities (probability.nii.gz from 'medimg mandible infer')",
                                   f"dtype {probabilities.dtype} in '{path.name}'"))
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.size and not (probabilities.min() >= 0.0 and probabilities.max() <= 1.0):
        raise FormatError(expected("probabilities in [0, 1]", f"{probabilities.min():.3g}..{probabilities.max():.3g} in '{path.name}'"))
    return probabilities, stored_affine(affine_ras)


def _read_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from medimg.common.nifti import read_nifti

    volume, affine_ras = read_nifti(path)
    volume = np.asarray(volume)
    # A probability map passed by mistake would mesh as one block: nonzero is not "mandible" there.
    if np.issubdtype(volume.dtype, np.floating) and np.any((volume != 0) & (volume != 1)):
        raise FormatError(expected("a 0/1 mask (mask.nii.gz from 'medimg mandible mask')", f"fractional values in '{path.name}'"))
    return volume != 0, stored_affine(affine_ras)


def _check_same_grid(ct: CTVolume, mask: np.ndarray, mask_affine: np.ndarray, mask_path: Path, *, tolerance_mm: float = 1e-3) -> None:
    if mask.shape != ct.hu.shape:
        raise InputError(expected(f"a mask of the CT's shape {ct.hu.shape}", f"{mask.shape} in '{mask_path.name}'"))
    worst = float(np.abs(mask_affine - ct.affine_ras).max())
    if worst > tolerance_mm:
        raise InputError(expected(f"a mask on the CT's grid (same affine as '{ct.source.name}')",
                                  f"an affine {worst:.3g} mm away in '{mask_path.name}'"))


def run_volume(dicom_dir: Path | str, output_dir: Path, *, series_uid: str | None = None, correct_tilt: bool = False) -> Path:
    """DICOM series -> ``ct.nii.gz``: float32 HU (the exact values ``segment`` works on) on ``affine_ras``."""
    from medimg.common.nifti import write_nifti

    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise InputError(expected("a DICOM folder", f"'{dicom_dir}' which is not a folder"))
    ct = load_ct(dicom_dir, series_uid=series_uid, correct_tilt=correct_tilt)
    return write_nifti(Path(output_dir) / CT_FILE, ct.hu, ct.affine_ras)


def run_infer(
    ct_source: Path | str,
    output_dir: Path,
    *,
    inference: InferenceOptions = InferenceOptions(),
    series_uid: str | None = None,
    correct_tilt: bool = False,
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    input_size: int | None = None,
) -> Path:
    """CT (DICOM folder or ``ct.nii.gz``) -> ``probability.nii.gz``, float32 in [0, 1] on the CT's grid.

    ``predictor`` replaces the network of ``inference`` (then ``input_size`` is required).
    """
    from medimg.common.nifti import write_nifti

    predictor = predictor if predictor is not None else LazyNetwork(inference)
    ct = load_ct(ct_source, series_uid=series_uid, correct_tilt=correct_tilt)
    settings = network_settings(predictor, input_size=input_size)
    probabilities = predict_volume(ct.hu, predictor, input_size=settings.input_size, level=settings.level, width=settings.width)
    return write_nifti(Path(output_dir) / PROBABILITY_FILE, probabilities, ct.affine_ras, inputs=[ct.source])


def run_mask(probability_path: Path | str, output_dir: Path, *, threshold: float = DEFAULT_THRESHOLD, keep_largest: bool = True) -> Path:
    """``probability.nii.gz`` -> ``mask.nii.gz``, uint8 0/1 (largest component unless ``keep_largest`` is False)."""
    from medimg.common.nifti import write_nifti

    probability_path = Path(probability_path)
    check_threshold(threshold)
    probabilities, affine_ras = _read_probability(probability_path)
    mask, notes = mask_from_probabilities(probabilities, threshold=threshold, keep_largest=keep_largest)
    for note in notes:
        console.info(note)
    if not mask.any():
        console.warn(f"{probability_path}: no voxel reached the threshold {threshold:g}: the mask is empty")
    return write_nifti(Path(output_dir) / FILE_NAMES["nifti"], mask.astype(np.uint8), affine_ras, inputs=[probability_path])


def run_mesh(mask_path: Path | str, output_dir: Path, *, smoothing: int = DEFAULT_SMOOTHING) -> Path:
    """``mask.nii.gz`` -> ``mandible.stl`` in LPS mm (the mask is meshed as it is: ``mask`` already kept
    the largest component)."""
    mask_path = Path(mask_path)
    mask, affine_ras = _read_mask(mask_path)
    if not mask.any():
        raise InputError(expected("a mask with at least one mandible voxel", f"an empty mask in '{mask_path.name}'"))
    path = Path(output_dir) / FILE_NAMES["stl"]
    write_mesh(path, mask, lps_affine(affine_ras), smoothing=smoothing, inputs=[mask_path])
    return path


def run_overlay(
    ct_source: Path | str,
    mask_path: Path | str,
    output_dir: Path,
    *,
    level: float | None = None,
    width: float | None = None,
    series_uid: str | None = None,
    correct_tilt: bool = False,
) -> Path:
    """CT + ``mask.nii.gz`` -> ``overlay.png`` (default window: :data:`~medimg.mandible.preprocess.DEFAULT_WINDOW`,
    the shipped network's)."""
    from medimg.common.images import write_png
    from medimg.mandible.overlay import overlay_montage
    from medimg.mandible.preprocess import DEFAULT_WINDOW

    mask_path = Path(mask_path)
    ct = load_ct(ct_source, series_uid=series_uid, correct_tilt=correct_tilt)
    mask, mask_affine = _read_mask(mask_path)
    _check_same_grid(ct, mask, mask_affine, mask_path)
    level = DEFAULT_WINDOW[0] if level is None else level
    width = DEFAULT_WINDOW[1] if width is None else width
    montage = overlay_montage(ct.hu, mask, level=level, width=width)
    return write_png(Path(output_dir) / FILE_NAMES["png"], montage, inputs=[ct.source, mask_path])
