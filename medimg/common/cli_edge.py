"""Where library errors become CLI errors: one ``Error: ...`` line on stderr and an exit code.

Library code raises typed :class:`~medimg.common.errors.MedimgError`; only commands
wrapped by :func:`cli_command` turn them into exits, so the library stays usable from Python.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import TypeVar

import typer

from medimg.common import console
from medimg.common.errors import MedimgError, UsageError

F = TypeVar("F", bound=Callable[..., object])

# Typer's own control flow (exits, aborts, usage errors that exit 2) must pass through untouched.
# Typer vendors click, so its ClickException base is found through a public subclass.
_CLICK_EXCEPTION = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")
_PASS_THROUGH = (typer.Exit, typer.Abort, _CLICK_EXCEPTION)

EXIT_ERROR = 1
EXIT_USAGE = 2  # bad option values, as Typer's own usage errors
EXIT_INTERRUPTED = 130


def fail(message: str, *, code: int = EXIT_ERROR) -> typer.Exit:
    """Print the one-line error and return the exit to raise."""
    console.error_line(str(message))
    return typer.Exit(code)


class _OneLineWarnings(logging.Handler):
    """Library log records of WARNING and above (tifffile logs damaged files this way) as our notes."""

    def emit(self, record: logging.LogRecord) -> None:
        _say_once(f"{record.name}: {record.getMessage()}")


_said: set[str] = set()


def _say_once(message: str) -> None:
    line = " ".join(str(message).split())  # one line, whatever the library put in it
    if line and line not in _said:
        _said.add(line)
        console.warn(line)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say_once(f"{message} ({category.__name__})")


@contextlib.contextmanager
def library_warnings_as_notes():
    """Python warnings (numpy, Pillow, scipy) and library log warnings become one ``Warning: ...``
    line each on stderr, said once per message, never a raw multi-line dump with source lines."""
    handler = _OneLineWarnings(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    _said.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            root.removeHandler(handler)


def cli_command(func: F) -> F:
    """Run a Typer command body, mapping every failure to a one-line error (``--debug`` adds the
    traceback) and library warnings to one-line notes (:func:`library_warnings_as_notes`)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with library_warnings_as_notes():
                return func(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", code=EXIT_INTERRUPTED) from None
        except MedimgError as error:
            if console.is_debug():
                traceback.print_exc(file=sys.stderr)
            raise fail(str(error), code=EXIT_USAGE if isinstance(error, UsageError) else EXIT_ERROR) from None
        except Exception as error:  # noqa: BLE001 - the edge must never show a bare traceback
            if console.is_debug():
                traceback.print_exc(file=sys.stderr)
            detail = str(error) or "no detail"
            raise fail(f"unexpected {type(error).__name__}: {detail} (rerun with --debug for the traceback)") from None

    return wrapper  # type: ignore[return-value]


def exit_for(outcome) -> None:
    """End a batch command: exit code 1 when any input failed (each was told on stderr already)."""
    if outcome.failures:
        raise typer.Exit(outcome.exit_code)


# The batch engine options every batch command shares (medimg.common.batch.BatchEngine).
SchedulerOption = typer.Option(
    None, "--scheduler", metavar="ADDRESS",
    help="Run one Dask task per input on the running Dask scheduler at ADDRESS (tcp://host:8786); workers need medimg and the same paths.")
WorkersOption = typer.Option(
    None, "--workers", min=1, help="Run one Dask task per input on a LocalCluster of N worker processes on this machine.")
