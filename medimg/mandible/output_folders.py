"""Mandible output folders: what the files are called (:data:`FILE_NAMES`), where they go
(:func:`output_dirs` for ``segment``, :func:`stage_output_dir` for a stage command), the checks on
the folder (:func:`check_output_dir`); the all-or-nothing writer is :class:`medimg.common.outputs.StagedOutput`.

Nothing half-written is left behind: ``segment`` writes into a hidden temporary folder beside
the output folder and moves the files in only once all of them exist; each stage writes its one
file atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medimg.common.errors import OutputError, expected

OUTPUT_TAG = "mandible"
FILE_NAMES = {"nifti": "mask.nii.gz", "stl": "mandible.stl", "png": "overlay.png", "json": "report.json", "seg": "seg.dcm",
              "html": "report.html"}
CT_FILE = "ct.nii.gz"
PROBABILITY_FILE = "probability.nii.gz"


def check_output_dir(out_dir: Path, *, dicom_dir: Path | None = None) -> None:
    """Refuse an output folder that is a file, or is (inside) the DICOM folder being read."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(expected("an output folder", f"'{out_dir}' which is a file"))
    if dicom_dir is not None and dicom_dir.is_dir():
        # The next read of the folder would find our outputs (seg.dcm is a DICOM image of its own series).
        source, target = dicom_dir.resolve(), out_dir.resolve()
        if target == source or source in target.parents:
            raise OutputError(expected(f"an output folder outside the DICOM folder '{dicom_dir}'", f"'{out_dir}' inside it"))


def series_output_dir(dicom_dir: Path) -> Path:
    """The default output folder of a series: ``<dicom_dir>_mandible`` beside it."""
    from medimg.common.outputs import default_output_dir

    return default_output_dir(dicom_dir, OUTPUT_TAG)


def output_dirs(dicom_dirs: Sequence[Path], output: Path | None) -> list[Path]:
    """Where each series' outputs go (:func:`medimg.common.outputs.batch_output_dirs`)."""
    from medimg.common.outputs import batch_output_dirs

    return batch_output_dirs(dicom_dirs, output, OUTPUT_TAG)


def stage_output_dir(output: Path | str | None, source: Path | str) -> Path:
    """``-o`` itself; by default ``<dicom_dir>_mandible/`` for a DICOM folder, the file's own folder
    for a stage file (so the chain's files gather in one folder, where ``segment`` puts its own).
    The folder is created by the first file written into it, so a failed stage leaves nothing."""
    source = Path(source)
    if output is None:
        output = series_output_dir(source) if source.is_dir() else source.parent
    output = Path(output)
    check_output_dir(output, dicom_dir=source)
    return output
