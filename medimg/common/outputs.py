"""Output files: written atomically, never over an input, into a predictable folder."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from medimg.common.errors import InputError, OutputError, expected


def check_not_input(target: Path, inputs: Iterable[Path]) -> None:
    """Refuse to write ``target`` when it is one of the command's inputs."""
    target_resolved = Path(target).resolve()
    for source in inputs:
        if Path(source).resolve() == target_resolved:
            raise OutputError(expected("an output path different from the input", f"'{target}' which is an input"))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path | str, *, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary name keeps the target's suffix so that writers which pick a format from the
    extension (tifffile, Pillow) still do. An exception leaves neither a partial target nor the
    temporary file behind.
    """
    target = Path(target)
    check_not_input(target, inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{target.suffix}", dir=target.parent)
    except OSError as error:
        raise OutputError(expected(f"a writable folder for '{target}'", f"{type(error).__name__}: {error.strerror or error}")) from None
    os.close(handle)
    temporary_path = Path(temporary)
    started = temporary_path.stat().st_mtime
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(temporary_path, target)
        remove_stale_parts(target.parent, f".{target.name}.", f".part{target.suffix}", made_before=started)
    except OSError as error:
        temporary_path.unlink(missing_ok=True)
        raise OutputError(expected(f"'{target}' written", f"{type(error).__name__}: {error.strerror or error}")) from None
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def remove_stale_parts(folder: Path, prefix: str, suffix: str, *, made_before: float) -> list[Path]:
    """Remove what a killed run left of the same output (``prefix*suffix`` temporaries, files or
    staging folders, last touched before ``made_before``, when ours was made) once ours has been
    delivered; returns what was removed."""
    try:
        leftovers = list(folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"))
    except OSError:
        return []
    removed = []
    for path in leftovers:
        try:
            if path.stat().st_mtime >= made_before:
                continue  # as young as ours: another run may still be writing
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


def write_bytes_atomic(target: Path | str, data: bytes, *, inputs: Iterable[Path] = ()) -> Path:
    with atomic_path(target, inputs=inputs) as temporary:
        temporary.write_bytes(data)
    return Path(target)


def write_text_atomic(target: Path | str, text: str, *, inputs: Iterable[Path] = ()) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"), inputs=inputs)


def default_output_dir(input_path: Path, tag: str) -> Path:
    """The folder next to the input, named after it: ``scan.tif`` -> ``scan_<tag>/``."""
    input_path = Path(input_path)
    stem = input_path.name if input_path.is_dir() else input_path.stem
    if stem.endswith(".ome"):
        stem = stem[: -len(".ome")]
    return input_path.parent / f"{stem}_{tag}"


def batch_output_dirs(inputs: Sequence[Path], output: Path | None, tag: str) -> list[Path]:
    """Where each input's outputs go: ``-o`` itself for one input; otherwise ``<name>_<tag>``
    beside each input, or inside ``-o``. Inputs of the same name (``case1/scan.tif``,
    ``case2/scan.tif``) are told apart by their parent folder's name (``case1_scan_<tag>``), so
    one never overwrites another."""
    inputs = [Path(item) for item in inputs]
    if len(inputs) == 1:
        return [Path(output) if output is not None else default_output_dir(inputs[0], tag)]
    if output is None:
        return [default_output_dir(item, tag) for item in inputs]
    names = [default_output_dir(item, tag).name for item in inputs]
    if len(set(names)) < len(names):
        names = [f"{item.resolve().parent.name}_{name}" if names.count(name) > 1 else name for item, name in zip(inputs, names)]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InputError(expected("inputs with distinct names (their outputs go to one folder)", f"two named like '{twice}'"))
    return [Path(output) / name for name in names]


class StagedOutput:
    """Files written into a hidden folder beside ``out_dir``, moved in together by :meth:`commit`:
    a run that fails leaves neither a partial set of outputs nor an empty output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        # The first missing ancestor, removed again when nothing is delivered (it would be left empty).
        self._made = next((folder for folder in reversed(out_dir.parents) if not folder.exists()), None)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
        self._started = self.folder.stat().st_mtime
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write ``name`` (delivered by :meth:`commit`); asked again, the same file, which
        a later output may read (a report inlining a picture)."""
        if name not in self.names:
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
        remove_stale_parts(self.out_dir.parent, f".{self.out_dir.name}.", ".part", made_before=self._started)
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


def prepare_output_dir(output: Path | None, input_path: Path, tag: str) -> Path:
    """Resolve ``-o/--output`` (or its default). The folder is made by the first atomic write into
    it (:func:`atomic_path`), so a run that fails before writing leaves no empty folder behind."""
    directory = Path(output) if output is not None else default_output_dir(input_path, tag)
    if directory.exists() and not directory.is_dir():
        raise OutputError(expected("an output folder", f"'{directory}' which is a file"))
    return directory
