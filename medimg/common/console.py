"""The stderr side of the CLI: logs, warnings and progress bars.

stdout is reserved for results so that scripts can pipe them; everything a
person reads while a command runs goes to stderr through this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

# rich resolves sys.stderr at write time, so test runners that swap it still capture our output.
stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)

_settings = {"quiet": False, "debug": False}


def configure(*, quiet: bool | None = None, debug: bool | None = None) -> None:
    """Set the process-wide verbosity; ``None`` leaves a setting unchanged."""
    if quiet is not None:
        _settings["quiet"] = quiet
    if debug is not None:
        _settings["debug"] = debug


def is_quiet() -> bool:
    return _settings["quiet"]


def is_debug() -> bool:
    return _settings["debug"]


def info(message: str) -> None:
    """A progress note for people; silenced by ``--quiet``."""
    if not _settings["quiet"]:
        stderr_console.print(message, markup=False)


def warn(message: str) -> None:
    """Something the user should know even with ``--quiet`` (data was altered, a fallback was used)."""
    stderr_console.print(f"Warning: {message}", markup=False, style="yellow")


def error_line(message: str) -> None:
    """One ``Error: ...`` line on stderr (newlines folded): the CLI edge's and a failed batch item's."""
    one_line = " ".join(str(message).split())
    stderr_console.print(f"Error: {one_line}", markup=False, style="red")


def track(items: Iterable[T], *, description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (none with ``--quiet`` or when stderr is not a terminal,
    where a redrawn bar would only litter log files)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        disable=_settings["quiet"] or not stderr_console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
