"""Output files: written atomically, never over an input, into a predictable folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medimg.common.errors import OutputError, expected


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
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(temporary_path, target)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


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


def prepare_output_dir(output: Path | None, input_path: Path, tag: str) -> Path:
    """Resolve ``-o/--output`` (or its default) and create the folder."""
    directory = Path(output) if output is not None else default_output_dir(input_path, tag)
    if directory.exists() and not directory.is_dir():
        raise OutputError(expected("an output folder", f"'{directory}' which is a file"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory
