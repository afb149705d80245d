"""Mandible output folders: what the files are called (:data:`FILE_NAMES`), where they go
(:func:`output_dirs` for ``segment``, :func:`stage_output_dir` for a stage command), the checks on
the folder (:func:`check_output_dir`), and the all-or-nothing writer (:class:`StagedOutput`).

Nothing half-written is left behind: ``segment`` writes into a hidden temporary folder beside
the output folder and moves the files in only once all of them exist; each stage writes its one
file atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from medimg.common.errors import OutputError, expected

OUTPUT_TAG = "mandible"
FILE_NAMES = {"nifti": "mask.nii.gz", "stl": "mandible.stl", "png": "overlay.png", "json": "report.json", "seg": "seg.dcm"}
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


class StagedOutput:
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
